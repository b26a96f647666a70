//! Accessors for memory another domain (or Xen) can write: the shared-info
//! page and shared rings.
//!
//! Rule of the house: no Rust reference to such memory is ever formed. Reads
//! are single atomic or volatile loads, so each value is read exactly once
//! and the compiler cannot re-read it behind our back; callers validate what
//! they read before using it.

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// A page shared with another domain or with Xen, addressed by byte offset.
#[derive(Clone, Copy, Debug)]
pub struct SharedPage {
    base: *mut u8,
}

// SAFETY: every access goes through atomics or volatile operations; the
// kernel runs on one vCPU and the page stays mapped for the kernel's life.
unsafe impl Send for SharedPage {}
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
            offset + core::mem::size_of::<T>() <= guest::abi::PAGE_SIZE,
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
