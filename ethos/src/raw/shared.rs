//! Memory shared with another domain: pages this program bound and granted,
//! which the peer may write at any moment. Nothing forms a Rust reference
//! to it; every access is one atomic operation (bytes and 32-bit words) so
//! that a concurrent write by the peer is never a data race in Rust's
//! sense. [`SharedRegion`] implements the `rpc` crate's [`rpc::SharedMem`]
//! over it, which is what the vchan code needs.
//!
//! On the host there is no mapping: a region is zeroed heap memory,
//! leaked, with the same access code over it, so the vchan logic is tested
//! by `cargo test` with a client end over the same bytes.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use alloc::vec::Vec;

use abi::{Status, PAGE_SIZE};
use rpc::SharedMem;

use crate::event;
use crate::pages::{self, Page};

const PAGE: usize = PAGE_SIZE as usize;

/// Allocates `count` zeroed pages, binds them at `va ..` (page-aligned,
/// inside [`crate::pages::USER_REGION`]) and grants each to domain `peer`
/// (writable: the rights [`abi::rights::FOREIGN`]). Returns the region and
/// the grant reference of each page, in order.
///
/// The pages stay bound and granted for the rest of the program: their
/// capabilities never leave this function, so no call can unmap memory a
/// [`SharedRegion`] still points at. (If the kernel took a page away, an
/// access would fault and the kernel would end the program.) Their revoked
/// events are cancelled and retired at once, as the heap's are.
///
/// Errors: [`Status::InvalidArgument`] for no pages or a range outside the
/// region, and those of [`crate::pages::alloc`], [`crate::pages::bind`],
/// [`crate::pages::grant`]. On an error the pages bound so far are ungranted
/// and freed: nobody has been told their grant references yet.
pub fn share(va: u64, count: usize, peer: u16) -> Result<(SharedRegion, Vec<u32>), Status> {
    let len = count.checked_mul(PAGE).ok_or(Status::InvalidArgument)?;
    let end = va.checked_add(len as u64).ok_or(Status::InvalidArgument)?;
    if count == 0 || !pages::USER_REGION.contains(&va) || end > pages::USER_REGION.end {
        return Err(Status::InvalidArgument);
    }
    let mut held: Vec<(Page, Option<u32>)> = Vec::with_capacity(count);
    let undo = |held: &[(Page, Option<u32>)]| {
        for &(page, grant) in held {
            if grant.is_some() {
                let _ = pages::ungrant(page);
            }
            let _ = pages::free(page);
        }
    };
    for i in 0..count {
        let (page, revoked) = match pages::alloc() {
            Ok(p) => p,
            Err(e) => {
                undo(&held);
                return Err(e);
            }
        };
        let _ = event::cancel(revoked);
        let _ = event::retire_empty(revoked);
        held.push((page, None));
        let granted = pages::bind(page, va + (i * PAGE) as u64)
            .and_then(|()| pages::grant(page, peer, false));
        match granted {
            Ok(gref) => held[i].1 = Some(gref),
            Err(e) => {
                undo(&held);
                return Err(e);
            }
        }
    }
    let grants = held.iter().filter_map(|&(_, g)| g).collect();
    Ok((SharedRegion::bound(va, len), grants))
}

/// A run of shared pages, or a sub-range of one. Cheap to copy: the pages
/// stay bound for the program's life (see [`SharedRegion::bound`]), so a
/// copy can never outlive them.
#[derive(Clone, Copy, Debug)]
pub struct SharedRegion {
    base: *mut u8,
    len: usize,
}

impl SharedRegion {
    /// The `len` bytes at `va`, which [`share`] bound: pages of
    /// [`crate::pages::USER_REGION`] (never memory Rust uses), whose
    /// capabilities it keeps to itself, so nothing unbinds them.
    #[cfg(target_os = "none")]
    fn bound(va: u64, len: usize) -> SharedRegion {
        SharedRegion {
            base: va as *mut u8,
            len,
        }
    }

    /// The host's stand-in: `len` zeroed bytes of leaked heap memory, page
    /// aligned (the fake kernel maps nothing at `va`).
    #[cfg(not(target_os = "none"))]
    fn bound(_va: u64, len: usize) -> SharedRegion {
        let words = alloc::vec![0u64; len.div_ceil(PAGE) * (PAGE / 8) + PAGE / 8];
        let leaked: &'static mut [u64] = alloc::vec::Vec::leak(words);
        let start = leaked.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        SharedRegion {
            base: aligned as *mut u8,
            len,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages `first .. first + count` of it. Panics outside it (a bug of
    /// the caller, who laid the pages out).
    pub fn pages(&self, first: usize, count: usize) -> SharedRegion {
        let end = first.checked_add(count).and_then(|e| e.checked_mul(PAGE));
        assert!(
            end.is_some_and(|e| e <= self.len),
            "pages {first}+{count} outside a shared region of {} bytes",
            self.len
        );
        SharedRegion {
            // In bounds, as just checked; wrapping_add keeps this safe code.
            base: self.base.wrapping_add(first * PAGE),
            len: count * PAGE,
        }
    }

    /// The address of `off .. off + n`, checked to lie inside the region
    /// (the `SharedMem` contract: a violation is the caller's bug, and a
    /// panic beats touching memory outside).
    fn at(&self, off: usize, n: usize) -> *mut u8 {
        assert!(
            off.checked_add(n).is_some_and(|e| e <= self.len),
            "shared access {off}+{n} outside {} bytes",
            self.len
        );
        self.base.wrapping_add(off)
    }

    fn byte(&self, off: usize) -> &AtomicU8 {
        // SAFETY: in bounds (checked by `at`); the region is mapped for the
        // program's life (the constructor's contract); an AtomicU8 has the
        // size and alignment of u8, and every access to these bytes, ours
        // and (by the protocol) the peer's, is atomic.
        unsafe { AtomicU8::from_ptr(self.at(off, 1)) }
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        let p = self.at(off, 4);
        assert!(
            (p as usize).is_multiple_of(4),
            "shared u32 access at unaligned offset {off}"
        );
        // SAFETY: in bounds and 4-aligned (checked above), mapped for the
        // program's life, accessed only atomically.
        unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }
    }
}

impl SharedMem for SharedRegion {
    fn size(&self) -> usize {
        self.len
    }

    fn load_u8(&self, off: usize) -> u8 {
        self.byte(off).load(Ordering::Acquire)
    }

    fn store_u8(&self, off: usize, v: u8) {
        self.byte(off).store(v, Ordering::Release)
    }

    fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 {
        self.byte(off).fetch_or(bits, Ordering::SeqCst)
    }

    fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
        self.byte(off).fetch_and(bits, Ordering::SeqCst)
    }

    fn load_u32_acquire(&self, off: usize) -> u32 {
        // x86 is little-endian, the layout's order: no swap.
        self.word(off).load(Ordering::Acquire)
    }

    fn store_u32_release(&self, off: usize, v: u32) {
        self.word(off).store(v, Ordering::Release)
    }

    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        self.at(off, dst.len());
        for (i, d) in dst.iter_mut().enumerate() {
            *d = self.byte(off + i).load(Ordering::Relaxed);
        }
    }

    fn copy_in(&self, off: usize, src: &[u8]) {
        self.at(off, src.len());
        for (i, &s) in src.iter().enumerate() {
            self.byte(off + i).store(s, Ordering::Relaxed);
        }
    }
}
