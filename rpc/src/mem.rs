//! Access to memory another domain can write.
//!
//! The crate never forms a Rust reference (`&[u8]`, `&u32`) to shared memory: the peer
//! may change it at any moment, which a reference promises cannot happen. Every access
//! goes through [`SharedMem`], whose methods are single loads, stores, atomic
//! read-modify-writes or bulk copies with volatile/atomic semantics. The guest kernel
//! implements it over its granted pages, the shadowdaemon over pages mapped through
//! gntdev; [`HeapMem`] implements it over ordinary heap memory for tests, benchmarks and
//! fuzzing, without `unsafe`.
//!
//! # Contract between the crate and an implementation
//!
//! * The crate checks [`SharedMem::size`] once, when a channel is built, and from then on
//!   only touches `off .. off + n` with `off + n <= size()`. 32-bit accesses are at
//!   offsets that are multiples of 4.
//! * An implementation should still check bounds and panic on a violation: that would be
//!   a bug in this crate (the fuzzers look for exactly that), and a panic beats
//!   corrupting memory.
//! * Multi-byte values are little-endian (Xen x86's native order, which the vchan layout
//!   uses).
//! * `load_u32_acquire`/`store_u32_release` order the data copies around the ring
//!   indices; `fetch_or_u8`/`fetch_and_u8` are sequentially consistent (on x86 a `lock`ed
//!   instruction, which is what libxenvchan's `__sync_*` builtins produce). Where
//!   libxenvchan issues a full barrier (`xen_mb`) the crate issues
//!   `core::sync::atomic::fence(SeqCst)` itself, so implementations need none.
//! * `copy_out`/`copy_in` need no ordering of their own; they must not be elided or
//!   torn into accesses outside the range (volatile or relaxed-atomic copies qualify).

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

/// Memory shared with another domain, accessed only through atomic or volatile operations.
///
/// See the [module documentation](self) for the contract.
pub trait SharedMem {
    /// Size of the region in bytes.
    fn size(&self) -> usize;
    /// Loads one byte.
    fn load_u8(&self, off: usize) -> u8;
    /// Stores one byte.
    fn store_u8(&self, off: usize, v: u8);
    /// Atomically ORs `bits` into a byte and returns its previous value (SeqCst).
    fn fetch_or_u8(&self, off: usize, bits: u8) -> u8;
    /// Atomically ANDs a byte with `bits` and returns its previous value (SeqCst).
    fn fetch_and_u8(&self, off: usize, bits: u8) -> u8;
    /// Loads a little-endian `u32` at a 4-aligned offset with acquire ordering.
    fn load_u32_acquire(&self, off: usize) -> u32;
    /// Stores a little-endian `u32` at a 4-aligned offset with release ordering.
    fn store_u32_release(&self, off: usize, v: u32);
    /// Copies `dst.len()` bytes starting at `off` out of the shared region.
    fn copy_out(&self, off: usize, dst: &mut [u8]);
    /// Copies `src` into the shared region starting at `off`.
    fn copy_in(&self, off: usize, src: &[u8]);
}

macro_rules! forward_shared_mem {
    ($($ty:ty),*) => {$(
        impl<T: SharedMem + ?Sized> SharedMem for $ty {
            fn size(&self) -> usize { (**self).size() }
            fn load_u8(&self, off: usize) -> u8 { (**self).load_u8(off) }
            fn store_u8(&self, off: usize, v: u8) { (**self).store_u8(off, v) }
            fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 { (**self).fetch_or_u8(off, bits) }
            fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
                (**self).fetch_and_u8(off, bits)
            }
            fn load_u32_acquire(&self, off: usize) -> u32 { (**self).load_u32_acquire(off) }
            fn store_u32_release(&self, off: usize, v: u32) {
                (**self).store_u32_release(off, v)
            }
            fn copy_out(&self, off: usize, dst: &mut [u8]) { (**self).copy_out(off, dst) }
            fn copy_in(&self, off: usize, src: &[u8]) { (**self).copy_in(off, src) }
        }
    )*};
}

// A channel holds its memory by value; these let tests share one buffer between the two
// ends of a pair (by reference on one thread, by `Arc` across threads).
forward_shared_mem!(&T, Arc<T>);

/// Heap memory with the [`SharedMem`] semantics, for tests, benchmarks and fuzzing.
///
/// Stored as `AtomicU32` words, so the 32-bit ring indices are single atomic accesses
/// (never torn when two threads play the two domains) and byte accesses are atomic
/// operations on the containing word. Byte `i` is bits `8*(i%4)..` of word `i/4`, i.e. the
/// memory is little-endian. Every access is bounds-checked and panics when out of range.
pub struct HeapMem {
    words: Box<[AtomicU32]>,
    size: usize,
}

impl HeapMem {
    /// A zeroed region of `size` bytes.
    pub fn new(size: usize) -> Self {
        let words = (0..size.div_ceil(4)).map(|_| AtomicU32::new(0)).collect();
        HeapMem { words, size }
    }

    fn check(&self, off: usize, n: usize) {
        let end = off.checked_add(n);
        assert!(
            end.is_some_and(|e| e <= self.size),
            "HeapMem access {off}+{n} outside {} bytes",
            self.size
        );
    }

    fn byte(&self, off: usize) -> (&AtomicU32, u32) {
        self.check(off, 1);
        (&self.words[off / 4], (off % 4) as u32 * 8)
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4);
        assert!(off & 3 == 0, "HeapMem u32 access at unaligned offset {off}");
        &self.words[off / 4]
    }
}

impl SharedMem for HeapMem {
    fn size(&self) -> usize {
        self.size
    }

    fn load_u8(&self, off: usize) -> u8 {
        let (w, sh) = self.byte(off);
        (w.load(Ordering::Acquire) >> sh) as u8
    }

    fn store_u8(&self, off: usize, v: u8) {
        let (w, sh) = self.byte(off);
        let mask = !(0xffu32 << sh);
        // A CAS loop keeps the other three bytes of the word intact even if the other
        // thread writes them meanwhile. The closure never declines, so this cannot fail.
        let _ = w.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
            Some((old & mask) | (u32::from(v) << sh))
        });
    }

    fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 {
        let (w, sh) = self.byte(off);
        (w.fetch_or(u32::from(bits) << sh, Ordering::SeqCst) >> sh) as u8
    }

    fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
        let (w, sh) = self.byte(off);
        let keep_others = !(0xffu32 << sh);
        (w.fetch_and((u32::from(bits) << sh) | keep_others, Ordering::SeqCst) >> sh) as u8
    }

    fn load_u32_acquire(&self, off: usize) -> u32 {
        self.word(off).load(Ordering::Acquire)
    }

    fn store_u32_release(&self, off: usize, v: u32) {
        self.word(off).store(v, Ordering::Release)
    }

    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len());
        let mut done = 0;
        while done < dst.len() {
            let at = off + done;
            let start = at % 4;
            let n = (4 - start).min(dst.len() - done);
            let bytes = self.words[at / 4].load(Ordering::Relaxed).to_le_bytes();
            dst[done..done + n].copy_from_slice(&bytes[start..start + n]);
            done += n;
        }
    }

    fn copy_in(&self, off: usize, src: &[u8]) {
        self.check(off, src.len());
        let mut done = 0;
        while done < src.len() {
            let at = off + done;
            let start = at % 4;
            let n = (4 - start).min(src.len() - done);
            let w = &self.words[at / 4];
            if n == 4 {
                let mut b = [0u8; 4];
                b.copy_from_slice(&src[done..done + 4]);
                w.store(u32::from_le_bytes(b), Ordering::Relaxed);
            } else {
                let part = &src[done..done + n];
                // Partial word: merge, leaving the bytes outside the range untouched.
                let _ = w.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    let mut b = old.to_le_bytes();
                    b[start..start + n].copy_from_slice(part);
                    Some(u32::from_le_bytes(b))
                });
            }
            done += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_words_agree_little_endian() {
        let m = HeapMem::new(8);
        m.store_u32_release(4, 0x4433_2211);
        assert_eq!(
            [m.load_u8(4), m.load_u8(5), m.load_u8(6), m.load_u8(7)],
            [0x11, 0x22, 0x33, 0x44]
        );
        m.store_u8(6, 0xaa);
        assert_eq!(m.load_u32_acquire(4), 0x44aa_2211);
        assert_eq!(m.load_u32_acquire(0), 0);
    }

    #[test]
    fn fetch_or_and_touch_one_byte() {
        let m = HeapMem::new(4);
        m.store_u32_release(0, 0xffff_ffff);
        assert_eq!(m.fetch_and_u8(2, !0x01), 0xff);
        assert_eq!(m.load_u32_acquire(0), 0xfffe_ffff);
        assert_eq!(m.fetch_or_u8(2, 0x01), 0xfe);
        assert_eq!(m.load_u32_acquire(0), 0xffff_ffff);
    }

    #[test]
    fn unaligned_copies_round_trip_and_leave_neighbours() {
        let m = HeapMem::new(16);
        m.copy_in(0, &[0x55; 16]);
        m.copy_in(3, &[1, 2, 3, 4, 5, 6, 7]);
        let mut all = [0u8; 16];
        m.copy_out(0, &mut all);
        assert_eq!(
            all,
            [0x55, 0x55, 0x55, 1, 2, 3, 4, 5, 6, 7, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55]
        );
        let mut mid = [0u8; 5];
        m.copy_out(5, &mut mid);
        assert_eq!(mid, [3, 4, 5, 6, 7]);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn out_of_range_panics() {
        let m = HeapMem::new(6);
        m.copy_out(4, &mut [0u8; 3]);
    }

    #[test]
    #[should_panic(expected = "unaligned")]
    fn unaligned_word_panics() {
        HeapMem::new(8).load_u32_acquire(2);
    }
}
