//! Address translation for the boot-time mapping and the shared-info page.
//!
//! Xen gives machine frame numbers (mfn); the kernel addresses memory by
//! pseudo-physical frame (pfn). The domain builder maps pfn `p` at
//! `VIRT_BASE + p * 4096` for the boot area (image, start_info, console and
//! xenstore rings, page tables), and Xen maps the read-only machine-to-phys
//! table at `MACH2PHYS_VIRT_START`.

use super::hypercall::{mmu_update, multicall, update_va_mapping, XenError};
use super::shared::SharedPage;
use crate::VIRT_BASE;
use xen::public::{
    hypercall as nr, pte, uvmf, MmuUpdate, MmuextOp, MulticallEntry, MACH2PHYS_VIRT_END,
    MACH2PHYS_VIRT_START, MMUEXT_TLB_FLUSH_LOCAL, MMU_NORMAL_PT_UPDATE, PAGE_SHIFT, PAGE_SIZE,
};

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
static mut GRANT_TABLE_SLOT: PageSlot = PageSlot([0; PAGE_SIZE]);
/// Where the kernel maps a frame for a moment (to zero it).
static mut SCRATCH_SLOT: PageSlot = PageSlot([0; PAGE_SIZE]);

/// Maps the shared-info page (given by machine address) over a BSS slot
/// (once: [`crate::map_shared_info`] keeps the result).
pub(crate) fn map_shared_info_page(maddr: u64) -> Result<SharedPage, XenError> {
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
pub fn boot_heap_region(si: &xen::public::StartInfo) -> core::ops::Range<u64> {
    const MIB4: u64 = 4 << 20;
    let boot_stack_end = si.pt_base + (si.nr_pt_frames + 1) * PAGE_SIZE as u64;
    let padded = (boot_stack_end + (512 << 10)).div_ceil(MIB4) * MIB4;
    let end = padded.min(VIRT_BASE + si.nr_pages * PAGE_SIZE as u64);
    boot_stack_end..end
}

/// The machine frame of pseudo-physical frame `pfn`, from the P2M list the
/// builder left at `mfn_list` (a virtual address in the boot mapping).
pub fn pfn_to_mfn(mfn_list: u64, nr_pages: u64, pfn: u64) -> Option<u64> {
    if pfn >= nr_pages {
        return None;
    }
    // SAFETY: the P2M list has `nr_pages` entries and lies in the boot
    // mapping; it is this domain's private memory and nobody writes it.
    Some(unsafe { ((mfn_list + pfn * 8) as *const u64).read_volatile() })
}

/// Maps the domain's grant-table frame (machine frame `mfn`) over a BSS slot.
pub fn map_grant_table(mfn: u64) -> Result<SharedPage, XenError> {
    let va = core::ptr::addr_of_mut!(GRANT_TABLE_SLOT) as u64;
    // SAFETY: the slot's own contents are never referenced.
    unsafe { update_va_mapping(va, (mfn << PAGE_SHIFT) | KERNEL_RW, uvmf::INVLPG)? };
    // SAFETY: mapped for the kernel's whole life from here on.
    Ok(unsafe { SharedPage::new(va as *mut u8) })
}

const KERNEL_RW: u64 = pte::PRESENT | pte::WRITABLE | pte::ACCESSED | pte::DIRTY;

/// Fills machine frame `mfn` with zeros through the scratch slot, then
/// unmaps it again so no writable mapping of it is left.
pub fn zero_frame(mfn: u64) -> Result<(), XenError> {
    let va = core::ptr::addr_of_mut!(SCRATCH_SLOT) as u64;
    // SAFETY: the scratch slot is only used here, on one vCPU, and never
    // referenced otherwise.
    unsafe { update_va_mapping(va, (mfn << PAGE_SHIFT) | KERNEL_RW, uvmf::INVLPG)? };
    // SAFETY: the slot now maps `mfn`, writable, 4096 bytes.
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, PAGE_SIZE) };
    // SAFETY: as above; the frame is left unmapped.
    unsafe { update_va_mapping(va, 0, uvmf::INVLPG) }
}

/// Installs `child_mfn` as the table (or page) at `index` of the page table
/// whose machine frame is `table_mfn`, through a checked `mmu_update`.
/// `flags` are the entry's low bits.
pub fn set_table_entry(
    table_mfn: u64,
    index: usize,
    child_mfn: u64,
    flags: u64,
) -> Result<(), XenError> {
    let req = MmuUpdate {
        ptr: ((table_mfn << PAGE_SHIFT) + index as u64 * 8) | MMU_NORMAL_PT_UPDATE,
        val: (child_mfn << PAGE_SHIFT) | flags,
    };
    // SAFETY: only entries for addresses the kernel has not handed out yet
    // (fresh page tables) are changed here; Xen validates the new entry.
    unsafe { mmu_update(&[req]) }
}

/// Reads entry `index` of a page table built by the domain builder (it lies
/// in the boot mapping, mapped read-only).
pub fn boot_table_entry(table_mfn: u64, index: usize, nr_pages: u64) -> Option<u64> {
    let pfn = mfn_to_pfn(table_mfn)?;
    if pfn >= nr_pages || index >= 512 {
        return None;
    }
    // SAFETY: boot page tables are mapped (read-only) in the boot area and
    // only Xen changes them, on our own requests.
    Some(unsafe { ((pfn_to_virt(pfn) + index as u64 * 8) as *const u64).read_volatile() })
}

/// Maps machine frame `mfn` at `va` (user-accessible, writable or not) and
/// flushes that one TLB entry. The page tables for `va` must exist.
pub fn map_page(va: u64, mfn: u64, writable: bool) -> Result<(), XenError> {
    let flags = pte::PRESENT
        | pte::USER
        | pte::ACCESSED
        | if writable {
            pte::WRITABLE | pte::DIRTY
        } else {
            0
        };
    // SAFETY: `va` is in a process region, which nothing in the kernel
    // references; the process gave up any claim to the old mapping by binding.
    unsafe { update_va_mapping(va, (mfn << PAGE_SHIFT) | flags, uvmf::INVLPG) }
}

/// Removes the mapping at `va` and flushes its TLB entry: later accesses fault.
pub fn unmap_page(va: u64) -> Result<(), XenError> {
    // SAFETY: as `map_page`; after this no access through `va` reaches the frame.
    unsafe { update_va_mapping(va, 0, uvmf::INVLPG) }
}

/// Copies `out.len()` bytes from a bound process page at `va`.
pub fn copy_from_bound(va: u64, out: &mut [u8]) {
    // SAFETY: the caller (the system-call layer) checked the capability and
    // that `va..va+len` lies in one page the kernel has bound.
    unsafe { core::ptr::copy_nonoverlapping(va as *const u8, out.as_mut_ptr(), out.len()) }
}

/// Copies `data` into a bound process page at `va`.
pub fn copy_to_bound(va: u64, data: &[u8]) {
    // SAFETY: as `copy_from_bound`, and the page is bound writable.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) }
}

/// Unmaps many pages in one `multicall` per 31: the entries are cleared
/// without a flush each, and the batch ends with one
/// `mmuext_op(MMUEXT_TLB_FLUSH_LOCAL)`, so a batch costs one guest exit and
/// one TLB flush instead of one of each per page.
pub fn unmap_pages(vas: &[u64]) -> Result<(), XenError> {
    let flush = MmuextOp {
        cmd: MMUEXT_TLB_FLUSH_LOCAL,
        ..Default::default()
    };
    for chunk in vas.chunks(31) {
        let mut batch = [MulticallEntry::default(); 32];
        for (entry, &va) in batch.iter_mut().zip(chunk) {
            *entry = MulticallEntry {
                op: nr::UPDATE_VA_MAPPING as u64,
                result: 0,
                args: [va, 0, 0, 0, 0, 0],
            };
        }
        batch[chunk.len()] = MulticallEntry {
            op: nr::MMUEXT_OP as u64,
            result: 0,
            args: [
                &flush as *const MmuextOp as u64,
                1,
                0,
                xen::public::DOMID_SELF as u64,
                0,
                0,
            ],
        };
        // SAFETY: each entry is `update_va_mapping(va, 0, 0)` on a
        // process-region address (as `unmap_page`, with the flush deferred
        // to the batch's last entry, `flush`, which is live for the call).
        unsafe { multicall(&mut batch[..=chunk.len()]) }.map_err(|(_, e)| e)?;
    }
    Ok(())
}
