//! Memory as hal hands it out: the heap, frames, user mappings, the
//! special pages of the boot area.
//!
//! Xen gives machine frame numbers (mfn); the kernel addresses memory by
//! pseudo-physical frame (pfn). The domain builder maps pfn `p` at
//! `VIRT_BASE + p * 4096` for the boot area (image, start_info, console and
//! xenstore rings, page tables), and Xen maps the read-only machine-to-phys
//! table at `MACH2PHYS_VIRT_START`.
//!
//! Soundness rests on two values only this module mints:
//! - a [`Frame`] is one of this domain's frames past the boot mapping and
//!   the heap, which the kernel never maps or references; zeroing it,
//!   mapping it at a user address or making it a page table cannot touch a
//!   Rust object. Frames come from the one [`FramePool`].
//! - user addresses are checked against [`USER`], a range that never holds
//!   kernel memory, before any mapping or copy.
//!
//! Everything else Xen validates (frame ownership, page-table typing, no
//! writable mapping of a page table).

use crate::hypercall::{mmu_update, multicall, update_va_mapping, XenError};
use crate::shared::SharedPage;
use crate::VIRT_BASE;
use alloc::vec::Vec;
use core::ops::Range;
use xen::public::{
    hypercall as nr, pte, uvmf, MmuUpdate, MmuextOp, MulticallEntry, StartInfo, MACH2PHYS_VIRT_END,
    MACH2PHYS_VIRT_START, MMUEXT_TLB_FLUSH_LOCAL, MMU_NORMAL_PT_UPDATE, PAGE_SHIFT, PAGE_SIZE,
};

/// Addresses that never hold kernel memory: from 4 GiB (the boot mapping,
/// image and heap are far below) to the end of the lower half. Process
/// pages are mapped here and only here.
pub const USER: Range<u64> = 4 << 30..0x0000_8000_0000_0000;

const KERNEL_RW: u64 = pte::PRESENT | pte::WRITABLE | pte::ACCESSED | pte::DIRTY;
/// Entries of tables above a user page: present, writable, user.
const TABLE_FLAGS: u64 = pte::PRESENT | pte::WRITABLE | pte::USER | pte::ACCESSED;

static START_INFO: spin::Once<&'static StartInfo> = spin::Once::new();

/// Keeps the start_info page Xen passed (from `entry`, once).
pub(crate) fn set_start_info(si: &'static StartInfo) {
    START_INFO.call_once(|| si);
}

/// The start_info page Xen passed at entry.
pub fn start_info() -> &'static StartInfo {
    START_INFO
        .get()
        .expect("start_info is kept before the kernel runs")
}

/// Looks up the pfn of a machine frame in Xen's M2P table.
fn mfn_to_pfn(mfn: u64) -> Option<u64> {
    if mfn >= (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) / 8 {
        return None;
    }
    let entry = (MACH2PHYS_VIRT_START + mfn * 8) as *const u64;
    // SAFETY: Xen maps the M2P read-only in every PV guest; the index was
    // bounds-checked against the table's fixed size.
    Some(unsafe { entry.read_volatile() })
}

/// Virtual address of a frame inside the boot-time mapping.
fn pfn_to_virt(pfn: u64) -> u64 {
    VIRT_BASE + (pfn << PAGE_SHIFT)
}

/// The machine frame of pseudo-physical frame `pfn`, from the P2M list the
/// builder left at `mfn_list` (a virtual address in the boot mapping).
pub(crate) fn pfn_to_mfn(pfn: u64) -> Option<u64> {
    let si = start_info();
    if pfn >= si.nr_pages {
        return None;
    }
    // SAFETY: the P2M list has `nr_pages` entries and lies in the boot
    // mapping; it is this domain's private memory and nobody writes it.
    Some(unsafe { ((si.mfn_list + pfn * 8) as *const u64).read_volatile() })
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
    let entry = (maddr & !(PAGE_SIZE as u64 - 1)) | KERNEL_RW;
    // SAFETY: nothing ever references the slot's own contents; from here on
    // the slot is only used through `SharedPage`.
    unsafe { update_va_mapping(va, entry, uvmf::INVLPG)? };
    // SAFETY: the page is now mapped for the kernel's whole life.
    Ok(unsafe { SharedPage::new(va as *mut u8) })
}

/// Maps the domain's grant-table frame (machine frame `mfn`) over a BSS
/// slot (once: `grants` keeps the result).
pub(crate) fn map_grant_table_page(mfn: u64) -> Result<SharedPage, XenError> {
    let va = core::ptr::addr_of_mut!(GRANT_TABLE_SLOT) as u64;
    // SAFETY: the slot's own contents are never referenced.
    unsafe { update_va_mapping(va, (mfn << PAGE_SHIFT) | KERNEL_RW, uvmf::INVLPG)? };
    // SAFETY: mapped for the kernel's whole life from here on.
    Ok(unsafe { SharedPage::new(va as *mut u8) })
}

/// A special page the domain builder allocated inside the boot mapping, by
/// its mfn; `None` if the frame is not one of this domain's boot frames.
fn boot_special_page(mfn: u64) -> Option<SharedPage> {
    let pfn = mfn_to_pfn(mfn)?;
    if pfn >= start_info().nr_pages {
        return None;
    }
    // SAFETY: the builder maps every frame it allocated for the guest at
    // VIRT_BASE + pfn * 4096, and the frame belongs to this domain (its M2P
    // entry points into our pfn range); it stays mapped forever. The mfn
    // comes from start_info, which Xen wrote: it names the console or
    // xenstore ring, which the kernel reaches only through `SharedPage`.
    Some(unsafe { SharedPage::new(pfn_to_virt(pfn) as *mut u8) })
}

/// The console ring page named in start_info.
pub fn console_page() -> Option<SharedPage> {
    boot_special_page(start_info().console_mfn)
}

/// The xenstore ring page named in start_info.
pub fn store_page() -> Option<SharedPage> {
    boot_special_page(start_info().store_mfn)
}

/// The free, already-mapped tail of the boot mapping, for the heap.
///
/// The builder's boot area ends with the page tables (`pt_base`,
/// `nr_pt_frames`) and then one page of boot stack; the mapping is padded
/// to at least 512 KiB past that and up to a 4 MiB boundary, and never past
/// the domain's own pages.
fn boot_heap_region(si: &StartInfo) -> Range<u64> {
    const MIB4: u64 = 4 << 20;
    let boot_stack_end = si.pt_base + (si.nr_pt_frames + 1) * PAGE_SIZE as u64;
    let padded = (boot_stack_end + (512 << 10)).div_ceil(MIB4) * MIB4;
    let end = padded.min(VIRT_BASE + si.nr_pages * PAGE_SIZE as u64);
    boot_stack_end..end
}

/// One of this domain's frames that the kernel never maps for itself (past
/// the boot mapping). Only [`FramePool`] makes them; it is not `Clone`, so
/// one frame has one owner.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pfn: u64,
    mfn: u64,
}

impl Frame {
    pub fn pfn(&self) -> u64 {
        self.pfn
    }
    pub fn mfn(&self) -> u64 {
        self.mfn
    }
}

/// The frames past the boot mapping, for processes and page tables.
pub struct FramePool {
    free: Vec<Frame>,
}

impl FramePool {
    /// A free frame, not yet zeroed.
    pub fn take(&mut self) -> Option<Frame> {
        self.free.pop()
    }

    /// Returns a frame. Its old contents stay until it is zeroed again
    /// ([`zero`]) before the next user sees it.
    pub fn give_back(&mut self, frame: Frame) {
        self.free.push(frame);
    }

    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}

/// The boot-time memory layout, once set up.
pub struct Memory {
    /// The heap's address range (the boot mapping's free tail).
    pub heap: Range<u64>,
    /// Every frame past the boot mapping.
    pub frames: FramePool,
}

static MEMORY_TAKEN: spin::Once<()> = spin::Once::new();

/// Sets up the heap over the boot mapping's free tail and returns the pool
/// of the frames past it. Only the first call gets the pool: two pools
/// would hand out the same frames twice.
pub fn init_memory() -> Option<Memory> {
    if MEMORY_TAKEN.is_completed() {
        return None;
    }
    MEMORY_TAKEN.call_once(|| ());
    let si = start_info();
    let heap = boot_heap_region(si);
    crate::heap::init(heap.start, heap.end);
    let first_free_pfn = (heap.end - VIRT_BASE) >> PAGE_SHIFT;
    let mut free = Vec::new();
    for pfn in (first_free_pfn..si.nr_pages).rev() {
        if let Some(mfn) = pfn_to_mfn(pfn) {
            free.push(Frame { pfn, mfn });
        }
    }
    Some(Memory {
        heap,
        frames: FramePool { free },
    })
}

/// Fills `frame` with zeros through the scratch slot, then unmaps it again
/// so no writable mapping of it is left.
pub fn zero(frame: &Frame) -> Result<(), XenError> {
    let va = core::ptr::addr_of_mut!(SCRATCH_SLOT) as u64;
    // SAFETY: the scratch slot is only used here, on one vCPU, and never
    // referenced otherwise.
    unsafe { update_va_mapping(va, (frame.mfn << PAGE_SHIFT) | KERNEL_RW, uvmf::INVLPG)? };
    // SAFETY: the slot now maps the frame, writable, 4096 bytes; the frame
    // is not kernel memory (a `Frame`).
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, PAGE_SIZE) };
    // SAFETY: as above; the frame is left unmapped.
    unsafe { update_va_mapping(va, 0, uvmf::INVLPG) }
}

/// Reads entry `index` of a page table built by the domain builder (it lies
/// in the boot mapping, mapped read-only).
fn boot_table_entry(table_mfn: u64, index: usize) -> Option<u64> {
    let pfn = mfn_to_pfn(table_mfn)?;
    if pfn >= start_info().nr_pages || index >= 512 {
        return None;
    }
    // SAFETY: boot page tables are mapped (read-only) in the boot area and
    // only Xen changes them, on our own requests.
    Some(unsafe { ((pfn_to_virt(pfn) + index as u64 * 8) as *const u64).read_volatile() })
}

/// Why a table could not be attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The address is outside [`USER`] or not aligned to what the table maps.
    NotUser,
    /// The boot tables have no entry on the way there, or it is in use.
    SlotInUse,
    /// The boot page tables could not be read.
    BootTables,
    Xen(XenError),
}

/// Hangs `l2` (a zeroed frame) under the boot L3 table as the L2 table for
/// the 1 GiB at `va` in [`USER`]: from then on Xen owns it as a page table.
pub fn attach_user_l2(va: u64, l2: &Frame) -> Result<(), TableError> {
    if !USER.contains(&va) || !va.is_multiple_of(1 << 30) || va >= 512 << 30 {
        return Err(TableError::NotUser);
    }
    let si = start_info();
    let l4_pfn = (si.pt_base - VIRT_BASE) >> PAGE_SHIFT;
    let l4_mfn = pfn_to_mfn(l4_pfn).ok_or(TableError::BootTables)?;
    let l4e = boot_table_entry(l4_mfn, 0).ok_or(TableError::BootTables)?;
    if l4e & pte::PRESENT == 0 {
        return Err(TableError::BootTables);
    }
    let l3_mfn = (l4e & 0x000f_ffff_ffff_f000) >> PAGE_SHIFT;
    let index = (va >> 30) as usize;
    if boot_table_entry(l3_mfn, index).is_some_and(|e| e & pte::PRESENT != 0) {
        return Err(TableError::SlotInUse);
    }
    set_entry(l3_mfn, index, l2.mfn).map_err(TableError::Xen)
}

/// Makes `child` (a zeroed frame) the table at `index` of `table`, a page
/// table built from frames (Xen refuses a `table` that is not one, and a
/// `child` that is mapped writable anywhere).
pub fn set_table_entry(table: &Frame, index: usize, child: &Frame) -> Result<(), XenError> {
    if index >= 512 {
        return Err(XenError(-22));
    }
    set_entry(table.mfn, index, child.mfn)
}

fn set_entry(table_mfn: u64, index: usize, child_mfn: u64) -> Result<(), XenError> {
    let req = MmuUpdate {
        ptr: ((table_mfn << PAGE_SHIFT) + index as u64 * 8) | MMU_NORMAL_PT_UPDATE,
        val: (child_mfn << PAGE_SHIFT) | TABLE_FLAGS,
    };
    // SAFETY: the entry gains a table made of pool frames, which map only
    // user addresses; no kernel mapping changes. Xen validates the entry.
    unsafe { mmu_update(&[req]) }
}

fn user_page(va: u64) -> Result<(), XenError> {
    if USER.contains(&va) && va.is_multiple_of(PAGE_SIZE as u64) {
        Ok(())
    } else {
        Err(XenError(-22))
    }
}

/// Maps `frame` at the user address `va` (writable or not) and flushes that
/// one TLB entry. The page tables for `va` must exist (Xen refuses else).
pub fn map_user(va: u64, frame: &Frame, writable: bool) -> Result<(), XenError> {
    user_page(va)?;
    let flags = pte::PRESENT
        | pte::USER
        | pte::ACCESSED
        | if writable {
            pte::WRITABLE | pte::DIRTY
        } else {
            0
        };
    // SAFETY: `va` is a user address, where the kernel holds no objects.
    unsafe { update_va_mapping(va, (frame.mfn << PAGE_SHIFT) | flags, uvmf::INVLPG) }
}

/// Removes the mapping at the user address `va` and flushes its TLB entry:
/// later accesses fault.
pub fn unmap_user(va: u64) -> Result<(), XenError> {
    user_page(va)?;
    // SAFETY: as `map_user`.
    unsafe { update_va_mapping(va, 0, uvmf::INVLPG) }
}

/// Unmaps many user pages in one `multicall` per 31: the entries are
/// cleared without a flush each, and the batch ends with one
/// `mmuext_op(MMUEXT_TLB_FLUSH_LOCAL)`, so a batch costs one guest exit and
/// one TLB flush instead of one of each per page.
pub fn unmap_user_pages(vas: &[u64]) -> Result<(), XenError> {
    for &va in vas {
        user_page(va)?;
    }
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
        // SAFETY: each entry is `update_va_mapping(va, 0, 0)` on a user
        // address (checked above; as `unmap_user`, with the flush deferred
        // to the batch's last entry, `flush`, which is live for the call).
        unsafe { multicall(&mut batch[..=chunk.len()]) }.map_err(|(_, e)| e)?;
    }
    Ok(())
}

fn user_range(va: u64, len: usize) -> Result<(), XenError> {
    let end = va.checked_add(len as u64).ok_or(XenError(-14))?;
    if len == 0 || (USER.contains(&va) && end <= USER.end) {
        Ok(())
    } else {
        Err(XenError(-14))
    }
}

/// Copies `out.len()` bytes from the user address `va`. An address in
/// [`USER`] with nothing mapped faults (the kernel's fault policy then
/// ends the domain): callers check the mapping first.
pub fn copy_from_user(va: u64, out: &mut [u8]) -> Result<(), XenError> {
    user_range(va, out.len())?;
    // SAFETY: the range is user memory, where the kernel holds no objects,
    // so no Rust reference aliases it; `out` is a distinct kernel buffer.
    unsafe { core::ptr::copy_nonoverlapping(va as *const u8, out.as_mut_ptr(), out.len()) };
    Ok(())
}

/// Copies `data` to the user address `va` (see [`copy_from_user`]).
pub fn copy_to_user(va: u64, data: &[u8]) -> Result<(), XenError> {
    user_range(va, data.len())?;
    // SAFETY: as `copy_from_user`.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) };
    Ok(())
}
