//! The PV suspend protocol, hal's part: what the toolstack needs to save the
//! domain (`xl save`, `xl migrate`), the suspend itself, and what must be
//! mapped again when the domain runs on.
//!
//! To save a PV domain the toolstack reads its P2M list (pfn to machine
//! frame) and rewrites every page table from machine frames to pfns; on
//! restore it does the reverse on the new frames. So:
//! - the P2M list is published in shared info ([`publish_p2m`]), as a
//!   virtually mapped list under the boot root (the toolstack walks the
//!   tables to find its frames);
//! - no page table may map a frame that is not the domain's own when it
//!   suspends: the shared-info page and the grant-table frame are unmapped
//!   first, and mapped again after (on a new machine frame, in a new
//!   domain);
//! - start_info's two ring frames are named by pfn while suspended (the
//!   toolstack turns them back into the new machine frames, with the new
//!   event channels, on restore; a cancelled suspend turns them back here).
//!
//! Page tables and the P2M list are rewritten by the toolstack; every other
//! machine frame number the kernel holds would be stale, which is why a
//! [`crate::mm::Frame`] keeps only its pfn.

use crate::hypercall::XenError;
use crate::mm;
use core::sync::atomic::Ordering;
use xen::public::{shared_info as layout, StartInfo, PAGE_SHIFT};

/// Tells the toolstack where the P2M list is (at boot, and again after each
/// resume: the boot root is on another frame then).
pub fn publish_p2m() {
    let (Some(si), Some(root)) = (crate::shared_info(), mm::boot_root_mfn()) else {
        return;
    };
    let start = mm::start_info();
    si.store_u64(layout::ARCH_MAX_PFN, start.nr_pages, Ordering::Relaxed);
    si.store_u64(layout::ARCH_FRAME_LIST_LIST, 0, Ordering::Relaxed);
    si.store_u64(layout::ARCH_P2M_VADDR, start.mfn_list, Ordering::Relaxed);
    si.store_u64(layout::ARCH_P2M_GENERATION, 0, Ordering::Relaxed);
    // Last: a non-zero cr3 says the list is there to be walked.
    si.store_u64(layout::ARCH_P2M_CR3, root << PAGE_SHIFT, Ordering::Release);
}

/// How the suspend ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The domain runs on as a new one (restored, migrated): its event
    /// channels and grants are gone and xenstored knows none of its
    /// watches. `false`: the suspend was cancelled (or refused), and
    /// everything is as it was.
    pub new_domain: bool,
    /// The console's and xenstore's event channels now (start_info's).
    pub console_evtchn: u32,
    pub store_evtchn: u32,
    /// Why Xen refused the suspend, if it did.
    pub refused: Option<XenError>,
}

/// Reads a start_info field the toolstack may have rewritten while the
/// domain was suspended (never through the `&StartInfo` kept at entry,
/// which Rust may assume unchanged).
macro_rules! read_start_info {
    ($p:expr, $field:ident) => {
        // SAFETY: start_info is mapped for the kernel's life; the toolstack
        // writes it only while the domain is suspended.
        unsafe { core::ptr::addr_of!((*$p).$field).read_volatile() }
    };
}
macro_rules! write_start_info {
    ($p:expr, $field:ident, $value:expr) => {
        // SAFETY: as `read_start_info`; the domain's own page, written only
        // here, with upcalls masked, on the one vCPU.
        unsafe { core::ptr::addr_of_mut!((*$p).$field).write_volatile($value) }
    };
}

/// Suspends the domain and brings what hal owns back after: returns once
/// it runs again, with upcalls masked (the caller unmasks them once its own
/// state is back). Upcalls are masked first: between the unmapping and the
/// remapping nothing may touch the shared-info page (the upcall handler,
/// the clock, the console), and on this one vCPU nothing else runs.
pub fn suspend() -> Result<Resumed, XenError> {
    crate::upcall::mask();
    let si: *mut StartInfo = (mm::start_info() as *const StartInfo).cast_mut();
    let start_info_pfn = (si as u64 - crate::VIRT_BASE) >> PAGE_SHIFT;
    let start_info_mfn = mm::pfn_to_mfn(start_info_pfn).ok_or(XenError(-22))?;
    let store_mfn = read_start_info!(si, store_mfn);
    let console_mfn = read_start_info!(si, console_mfn);
    let (Some(store_pfn), Some(console_pfn)) =
        (mm::mfn_to_pfn(store_mfn), mm::mfn_to_pfn(console_mfn))
    else {
        return Err(XenError(-22));
    };
    publish_p2m();
    let grants_mapped = crate::grants::is_set_up();
    mm::unmap_foreign_slots(grants_mapped)?;
    write_start_info!(si, store_mfn, store_pfn);
    write_start_info!(si, console_mfn, console_pfn);
    // SAFETY: the only foreign mappings (shared info, the grant table) are
    // gone; user spaces map pool frames only.
    let result = unsafe { crate::hypercall::sched_suspend(start_info_mfn) };
    let (new_domain, refused) = match result {
        Ok(0) => (true, None),
        Ok(_) => (false, None),
        Err(e) => (false, Some(e)),
    };
    if !new_domain {
        // Still this domain: the frames are the same machine frames.
        write_start_info!(si, store_mfn, store_mfn);
        write_start_info!(si, console_mfn, console_mfn);
    }
    let shared_info_maddr = read_start_info!(si, shared_info);
    mm::remap_shared_info(shared_info_maddr)?;
    if grants_mapped {
        let frame = crate::hypercall::gnttab_setup_one_frame()?;
        mm::map_grant_table_page(frame)?;
    }
    publish_p2m();
    Ok(Resumed {
        new_domain,
        console_evtchn: read_start_info!(si, console_evtchn),
        store_evtchn: read_start_info!(si, store_evtchn),
        refused,
    })
}
