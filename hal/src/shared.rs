//! Accessors for memory another domain (or Xen) can write: the shared-info
//! page and shared rings.
//!
//! Rule of the house: no Rust reference to such memory is ever formed. Reads
//! are single atomic or volatile loads, so each value is read exactly once
//! and the compiler cannot re-read it behind our back; callers validate what
//! they read before using it.

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use xen::public::PAGE_SIZE;

/// A page shared with another domain or with Xen, addressed by byte offset.
#[derive(Clone, Copy, Debug)]
pub struct SharedPage {
    base: *mut u8,
}

// SAFETY: every access goes through atomics or volatile operations; the
// kernel runs on one vCPU and the page stays mapped for the kernel's life.
unsafe impl Send for SharedPage {}
// SAFETY: as for `Send`: shared use only ever makes atomic or volatile accesses.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    /// # Safety
    /// `base` must be the page-aligned address of a 4 KiB page that stays
    /// mapped (readable and writable) for as long as the value is used.
    pub const unsafe fn new(base: *mut u8) -> Self {
        SharedPage { base }
    }

    fn at<T>(&self, offset: usize) -> *mut T {
        assert!(
            offset + core::mem::size_of::<T>() <= xen::public::PAGE_SIZE,
            "offset outside the shared page"
        );
        assert!(
            offset.is_multiple_of(core::mem::align_of::<T>()),
            "misaligned shared access"
        );
        // SAFETY: in bounds of the page, as just checked.
        unsafe { self.base.add(offset).cast() }
    }

    pub fn load_u8(&self, offset: usize, order: Ordering) -> u8 {
        // SAFETY: aligned, in bounds, mapped for our lifetime (see `new`).
        unsafe { AtomicU8::from_ptr(self.at(offset)) }.load(order)
    }

    pub fn store_u8(&self, offset: usize, value: u8, order: Ordering) {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU8::from_ptr(self.at(offset)) }.store(value, order)
    }

    pub fn load_u16(&self, offset: usize, order: Ordering) -> u16 {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU16::from_ptr(self.at(offset)) }.load(order)
    }

    pub fn store_u16(&self, offset: usize, value: u16, order: Ordering) {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU16::from_ptr(self.at(offset)) }.store(value, order)
    }

    /// Replaces the u16 at `offset` with `new` if it still holds `current`;
    /// returns the value found.
    pub fn cmpxchg_u16(&self, offset: usize, current: u16, new: u16) -> u16 {
        // SAFETY: as `load_u8`; a locked cmpxchg is what Xen's grant protocol requires.
        match unsafe { AtomicU16::from_ptr(self.at(offset)) }.compare_exchange(
            current,
            new,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(v) | Err(v) => v,
        }
    }

    pub fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU32::from_ptr(self.at(offset)) }.load(order)
    }

    pub fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU32::from_ptr(self.at(offset)) }.store(value, order)
    }

    pub fn load_u64(&self, offset: usize, order: Ordering) -> u64 {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU64::from_ptr(self.at(offset)) }.load(order)
    }

    pub fn store_u64(&self, offset: usize, value: u64, order: Ordering) {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU64::from_ptr(self.at(offset)) }.store(value, order)
    }

    /// Atomically replaces the word at `offset`, returning the old value.
    pub fn swap_u64(&self, offset: usize, value: u64) -> u64 {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU64::from_ptr(self.at(offset)) }.swap(value, Ordering::SeqCst)
    }

    /// Atomically sets the bits of `mask` in the word at `offset`.
    pub fn set_bits_u64(&self, offset: usize, mask: u64) {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU64::from_ptr(self.at(offset)) }.fetch_or(mask, Ordering::SeqCst);
    }

    /// Atomically clears the bits of `mask` in the word at `offset`.
    pub fn clear_bits_u64(&self, offset: usize, mask: u64) {
        // SAFETY: as `load_u8`; a locked RMW is what Xen expects for bitmaps.
        unsafe { AtomicU64::from_ptr(self.at(offset)) }.fetch_and(!mask, Ordering::SeqCst);
    }
}

/// Page-aligned, zeroed kernel memory shared with another domain over
/// grants (a vchan's pages), as `rpc::SharedMem`.
///
/// Same rule as `SharedPage`: every access is atomic or volatile; no Rust
/// reference into it is ever formed. Allocated from the heap and never
/// freed (the kernel holds a bounded number of channels for its life), so
/// a peer that still maps it can never see a reused allocation.
#[derive(Clone, Copy, Debug)]
pub struct SharedRegion {
    base: *mut u8,
    len: usize,
}

// SAFETY: as for `SharedPage`.
unsafe impl Send for SharedRegion {}
// SAFETY: as for `SharedPage`.
unsafe impl Sync for SharedRegion {}

impl SharedRegion {
    /// `pages` zeroed 4 KiB pages, page-aligned; `None` when out of memory.
    pub fn alloc(pages: usize) -> Option<SharedRegion> {
        let len = pages.checked_mul(PAGE_SIZE)?;
        let layout = core::alloc::Layout::from_size_align(len, PAGE_SIZE).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc::alloc::alloc_zeroed(layout) };
        (!base.is_null()).then_some(SharedRegion { base, len })
    }

    /// The machine frame of page `n` (for granting it), if it has one.
    pub fn page_mfn(&self, n: usize) -> Option<u64> {
        if (n + 1) * PAGE_SIZE > self.len {
            return None;
        }
        // Every heap page lies at its own frame's address, `VIRT_BASE +
        // pfn * 4096`: the boot mapping's, and the frames past it that
        // `mm::init_memory` maps for the heap.
        let va = self.page_address(n);
        crate::mm::pfn_to_mfn((va.checked_sub(crate::VIRT_BASE)?) >> 12)
    }

    /// Virtual address of page `n`.
    pub fn page_address(&self, n: usize) -> u64 {
        self.base as u64 + (n * PAGE_SIZE) as u64
    }

    /// The region's page `n` alone, as its own region.
    pub fn page(&self, n: usize) -> SharedRegion {
        assert!((n + 1) * PAGE_SIZE <= self.len, "page outside the region");
        SharedRegion {
            // SAFETY: in bounds, as just checked.
            base: unsafe { self.base.add(n * PAGE_SIZE) },
            len: PAGE_SIZE,
        }
    }

    /// The pages `first..first + count`, as their own region.
    pub fn pages(&self, first: usize, count: usize) -> SharedRegion {
        assert!(
            (first + count) * PAGE_SIZE <= self.len,
            "pages outside the region"
        );
        SharedRegion {
            // SAFETY: in bounds, as just checked.
            base: unsafe { self.base.add(first * PAGE_SIZE) },
            len: count * PAGE_SIZE,
        }
    }

    /// Zeroes every page (volatile writes): pages handed to a new peer
    /// show nothing of what an earlier one exchanged.
    pub fn zero(&self) {
        const ZERO: [u8; PAGE_SIZE] = [0; PAGE_SIZE];
        for at in (0..self.len).step_by(PAGE_SIZE) {
            rpc::SharedMem::copy_in(self, at, &ZERO);
        }
    }

    fn at(&self, off: usize, n: usize) -> *mut u8 {
        assert!(
            off.checked_add(n).is_some_and(|end| end <= self.len),
            "access outside the region"
        );
        // SAFETY: in bounds, as just checked.
        unsafe { self.base.add(off) }
    }
}

impl rpc::SharedMem for SharedRegion {
    fn size(&self) -> usize {
        self.len
    }
    fn load_u8(&self, off: usize) -> u8 {
        // SAFETY: in bounds; live for the kernel's life (never freed).
        unsafe { AtomicU8::from_ptr(self.at(off, 1)) }.load(Ordering::SeqCst)
    }
    fn store_u8(&self, off: usize, v: u8) {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU8::from_ptr(self.at(off, 1)) }.store(v, Ordering::SeqCst)
    }
    fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU8::from_ptr(self.at(off, 1)) }.fetch_or(bits, Ordering::SeqCst)
    }
    fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
        // SAFETY: as `load_u8`.
        unsafe { AtomicU8::from_ptr(self.at(off, 1)) }.fetch_and(bits, Ordering::SeqCst)
    }
    fn load_u32_acquire(&self, off: usize) -> u32 {
        assert!(off.is_multiple_of(4), "misaligned shared access");
        // SAFETY: as `load_u8`, and 4-aligned (the region is page-aligned).
        unsafe { AtomicU32::from_ptr(self.at(off, 4).cast()) }.load(Ordering::Acquire)
    }
    fn store_u32_release(&self, off: usize, v: u32) {
        assert!(off.is_multiple_of(4), "misaligned shared access");
        // SAFETY: as `load_u32_acquire`.
        unsafe { AtomicU32::from_ptr(self.at(off, 4).cast()) }.store(v, Ordering::Release)
    }
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        let src = self.at(off, dst.len());
        // Bytes up to an 8-byte boundary of the shared side, then whole
        // aligned words, then the tail: volatile, so each is read exactly
        // once, and 8 times fewer accesses than byte by byte.
        let head = src.align_offset(8).min(dst.len());
        let words = (dst.len() - head) / 8;
        for (i, d) in dst[..head].iter_mut().enumerate() {
            // SAFETY: in bounds (checked by `at`); a volatile byte read.
            *d = unsafe { src.add(i).read_volatile() };
        }
        for w in 0..words {
            let at = head + w * 8;
            // SAFETY: in bounds, and 8-aligned by the choice of `head`.
            let word = unsafe { src.add(at).cast::<u64>().read_volatile() };
            dst[at..at + 8].copy_from_slice(&word.to_ne_bytes());
        }
        for (i, d) in dst.iter_mut().enumerate().skip(head + words * 8) {
            // SAFETY: in bounds; a volatile byte read.
            *d = unsafe { src.add(i).read_volatile() };
        }
    }
    fn copy_in(&self, off: usize, src: &[u8]) {
        let dst = self.at(off, src.len());
        // As `copy_out`: bytes to an 8-byte boundary, aligned words, tail.
        let head = dst.align_offset(8).min(src.len());
        let words = (src.len() - head) / 8;
        for (i, &b) in src[..head].iter().enumerate() {
            // SAFETY: in bounds; volatile, so the write is not elided.
            unsafe { dst.add(i).write_volatile(b) };
        }
        for w in 0..words {
            let at = head + w * 8;
            let word = u64::from_ne_bytes(src[at..at + 8].try_into().expect("8 bytes"));
            // SAFETY: in bounds, and 8-aligned by the choice of `head`.
            unsafe { dst.add(at).cast::<u64>().write_volatile(word) };
        }
        for (i, &b) in src.iter().enumerate().skip(head + words * 8) {
            // SAFETY: in bounds; volatile.
            unsafe { dst.add(i).write_volatile(b) };
        }
    }
}
