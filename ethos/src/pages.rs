//! Pages, exokernel style: allocate a page (a capability), bind it at an
//! address of the heap region, unbind, free, grant it to another domain.
//!
//! The runtime's own heap ([`crate::rt::heap`]) grows upward from
//! [`abi::HEAP_START`] inside [`crate::rt::heap::REGION`], the lower half
//! of the heap region; [`bind`] refuses addresses there, so a program's own
//! bindings ([`USER_REGION`], the upper half) can never land on memory
//! Rust is using.

use core::ops::Range;

use abi::{Call, Status, HEAP_END, HEAP_START, PAGE_SIZE};

use crate::event::Event;
use crate::raw;
use crate::sys::{self, args};

/// Where [`bind`] may map pages: the upper half of the heap region.
pub const USER_REGION: Range<u64> = HEAP_START + (HEAP_END - HEAP_START) / 2..HEAP_END;

/// A page capability: names one page the kernel gave this program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Page(u64);

impl Page {
    /// The capability with the kernel's value `cap`.
    pub const fn from_raw(cap: u64) -> Page {
        Page(cap)
    }

    /// The kernel's value.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

/// `PageAlloc()`: a zeroed page, and its revoked event, which completes if
/// the page is taken away (and when it is freed).
///
/// Errors: [`Status::OutOfMemory`], [`Status::QuotaExceeded`].
pub fn alloc() -> Result<(Page, Event), Status> {
    sys::call(Call::PageAlloc, args([])).map(|(cap, ev)| (Page(cap), Event::from_raw(ev)))
}

/// `PageBind(page, va)`: maps the page at `va`, a page-aligned address of
/// [`USER_REGION`] (checked here: [`Status::InvalidArgument`] outside it,
/// [`Status::BadAlignment`] if not aligned).
///
/// Errors: [`Status::AlreadyBound`], [`Status::ForgedCapability`],
/// [`Status::StaleCapability`], [`Status::ForeignCapability`].
pub fn bind(page: Page, va: u64) -> Result<(), Status> {
    if !va.is_multiple_of(PAGE_SIZE) {
        return Err(Status::BadAlignment);
    }
    if !USER_REGION.contains(&va) {
        return Err(Status::InvalidArgument);
    }
    sys::check(raw::page_call(Call::PageBind, page.0, va)).map(|_| ())
}

/// Copies `data` to `va`..`va + data.len()`, which must lie inside
/// [`USER_REGION`] (else [`Status::InvalidArgument`], nothing copied):
/// where this program binds its own pages, so the copy never touches
/// memory Rust is using. Each page of the range must be bound: an address
/// whose page is not (never bound, unbound, freed, revoked) faults like any
/// access, and the kernel ends the program (vector 14).
pub fn write_at(va: u64, data: &[u8]) -> Result<(), Status> {
    in_user_region(va, data.len())?;
    raw::region_write(va, data);
    Ok(())
}

/// Copies `va`..`va + out.len()` into `out`; the range's rules are
/// [`write_at`]'s.
pub fn read_at(va: u64, out: &mut [u8]) -> Result<(), Status> {
    in_user_region(va, out.len())?;
    raw::region_read(va, out);
    Ok(())
}

/// Whether `va`..`va + len` lies inside [`USER_REGION`].
fn in_user_region(va: u64, len: usize) -> Result<(), Status> {
    let end = va.checked_add(len as u64).ok_or(Status::InvalidArgument)?;
    if va < USER_REGION.start || end > USER_REGION.end {
        return Err(Status::InvalidArgument);
    }
    Ok(())
}

/// The runtime heap's bind: any page-aligned address of the heap region.
pub(crate) fn bind_heap(page: Page, va: u64) -> Result<(), Status> {
    sys::check(raw::page_call(Call::PageBind, page.0, va)).map(|_| ())
}

/// `PageUnbind(page)`: unmaps it; it stays this program's.
///
/// Errors: [`Status::NotBound`], the capability errors of [`bind`].
pub fn unbind(page: Page) -> Result<(), Status> {
    sys::check(raw::page_call(Call::PageUnbind, page.0, 0)).map(|_| ())
}

/// `PageFree(page)`: gives it back (unbinding it first if bound); its
/// revoked event completes.
pub fn free(page: Page) -> Result<(), Status> {
    sys::check(raw::page_call(Call::PageFree, page.0, 0)).map(|_| ())
}

/// `PageGrant(page, peer, readonly)`: lets domain `peer` map the page;
/// returns the grant reference to tell it.
///
/// Errors: [`Status::AlreadyGranted`], [`Status::Hypervisor`], the
/// capability errors.
pub fn grant(page: Page, peer: u16, readonly: bool) -> Result<u32, Status> {
    sys::call(
        Call::PageGrant,
        args([page.0, u64::from(peer), u64::from(readonly)]),
    )
    .map(|(gref, _)| gref as u32)
}

/// `PageUngrant(page)`: ends the grant.
///
/// Errors: [`Status::NotGranted`], [`Status::StillMapped`] (the peer still
/// maps it: try again later).
pub fn ungrant(page: Page) -> Result<(), Status> {
    sys::call_unit(Call::PageUngrant, args([page.0]))
}
