//! This vCPU's view of Xen: the shared-info page (mapped once, kept for the
//! kernel's life), the fault address Xen saved, the time-stamp counter.

use crate::shared::SharedPage;
use core::sync::atomic::Ordering;
use xen::public::{shared_info as layout, vcpu_info};

/// Where the image is linked and where the domain builder maps frame 0
/// (`VIRT_BASE` in the ELF notes; `link.ld` uses the same address).
pub const VIRT_BASE: u64 = 0x40_0000;

static SHARED_INFO: spin::Once<SharedPage> = spin::Once::new();

/// Maps the shared-info page (machine address from `start_info`) with
/// event upcalls masked, once: later calls return the first mapping.
pub fn map_shared_info(maddr: u64) -> Result<&'static SharedPage, crate::hypercall::XenError> {
    if let Some(page) = SHARED_INFO.get() {
        return Ok(page);
    }
    let page = crate::mm::map_shared_info_page(maddr)?;
    page.store_u8(
        layout::VCPU_INFO + vcpu_info::UPCALL_MASK,
        1,
        Ordering::SeqCst,
    );
    Ok(SHARED_INFO.call_once(|| page))
}

/// The shared-info page, once mapped.
pub fn shared_info() -> Option<&'static SharedPage> {
    SHARED_INFO.get()
}

/// The faulting address Xen saved for the last page fault.
pub fn vcpu_cr2() -> Option<u64> {
    shared_info().map(|si| si.load_u64(layout::VCPU_INFO + vcpu_info::ARCH_CR2, Ordering::Relaxed))
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads a counter; PV guests may execute it.
    unsafe { core::arch::x86_64::_rdtsc() }
}
