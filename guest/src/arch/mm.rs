//! Address translation for the boot-time mapping and the shared-info page.
//!
//! Xen gives machine frame numbers (mfn); the kernel addresses memory by
//! pseudo-physical frame (pfn). The domain builder maps pfn `p` at
//! `VIRT_BASE + p * 4096` for the boot area (image, start_info, console and
//! xenstore rings, page tables), and Xen maps the read-only machine-to-phys
//! table at `MACH2PHYS_VIRT_START`.

use super::hypercall::{update_va_mapping, XenError};
use super::shared::SharedPage;
use super::VIRT_BASE;
use guest::abi::{pte, uvmf, MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START, PAGE_SHIFT, PAGE_SIZE};

/// Looks up the pfn of a machine frame in Xen's M2P table.
pub fn mfn_to_pfn(mfn: u64) -> Option<u64> {
    if mfn >= (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) / 8 {
        return None;
    }
    let entry = (MACH2PHYS_VIRT_START + mfn * 8) as *const u64;
    // SAFETY: Xen maps the M2P read-only in every PV guest; the index was
    // bounds-checked against the table's fixed size.
    Some(unsafe { entry.read_volatile() })
}

/// Virtual address of a frame inside the boot-time mapping.
pub fn pfn_to_virt(pfn: u64) -> u64 {
    VIRT_BASE + (pfn << PAGE_SHIFT)
}

/// A page-aligned slot in BSS whose mapping is replaced by a foreign frame.
#[repr(C, align(4096))]
struct PageSlot([u8; PAGE_SIZE]);

static mut SHARED_INFO_SLOT: PageSlot = PageSlot([0; PAGE_SIZE]);

/// Maps the shared-info page (given by machine address) over a BSS slot.
pub fn map_shared_info(maddr: u64) -> Result<SharedPage, XenError> {
    let va = core::ptr::addr_of_mut!(SHARED_INFO_SLOT) as u64;
    let entry = (maddr & !(PAGE_SIZE as u64 - 1))
        | pte::PRESENT
        | pte::WRITABLE
        | pte::ACCESSED
        | pte::DIRTY;
    // SAFETY: nothing ever references the slot's own contents; from here on
    // the slot is only used through `SharedPage`.
    unsafe { update_va_mapping(va, entry, uvmf::INVLPG)? };
    // SAFETY: the page is now mapped for the kernel's whole life.
    Ok(unsafe { SharedPage::new(va as *mut u8) })
}

/// A special page the domain builder allocated inside the boot mapping (the
/// console or xenstore ring), given by its mfn. `None` if the frame is not
/// one of this domain's first `nr_pages` frames.
pub fn boot_mapped_page(mfn: u64, nr_pages: u64) -> Option<SharedPage> {
    let pfn = mfn_to_pfn(mfn)?;
    if pfn >= nr_pages {
        return None;
    }
    // SAFETY: the builder maps every frame it allocated for the guest at
    // VIRT_BASE + pfn * 4096, and the frame belongs to this domain (its M2P
    // entry points into our pfn range); it stays mapped forever.
    Some(unsafe { SharedPage::new(pfn_to_virt(pfn) as *mut u8) })
}

/// The free, already-mapped tail of the boot mapping, for the heap.
///
/// The builder's boot area ends with the page tables (`pt_base`,
/// `nr_pt_frames`) and then one page of boot stack; the mapping is padded
/// to at least 512 KiB past that and up to a 4 MiB boundary, and never past
/// the domain's own pages.
pub fn boot_heap_region(si: &guest::abi::StartInfo) -> core::ops::Range<u64> {
    const MIB4: u64 = 4 << 20;
    let boot_stack_end = si.pt_base + (si.nr_pt_frames + 1) * PAGE_SIZE as u64;
    let padded = (boot_stack_end + (512 << 10)).div_ceil(MIB4) * MIB4;
    let end = padded.min(VIRT_BASE + si.nr_pages * PAGE_SIZE as u64);
    boot_stack_end..end
}
