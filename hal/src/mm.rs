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
//! - a [`Frame`] is one of this domain's frames past the heap, which the
//!   kernel never maps or references; zeroing it,
//!   mapping it at a user address or making it a page table cannot touch a
//!   Rust object. Frames come from the one [`FramePool`].
//! - user addresses are checked against [`USER`], a range that never holds
//!   kernel memory, before any mapping or copy.
//!
//! Everything else Xen validates (frame ownership, page-table typing, no
//! writable mapping of a page table).

use crate::hypercall::{mmu_update, multicall, update_va_mapping, XenError};
use crate::pool::{self, FrameSet};
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
pub(crate) fn mfn_to_pfn(mfn: u64) -> Option<u64> {
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

/// Sets the P2M entry of `pfn` (ballooning: a frame given back or taken
/// again). Only for a pfn of the pool, which no mapping of the kernel's
/// reaches.
pub(crate) fn set_p2m(pfn: u64, mfn: u64) {
    let si = start_info();
    if pfn >= si.nr_pages {
        return;
    }
    // SAFETY: the P2M list has `nr_pages` entries in the boot mapping,
    // writable; the domain's own memory, which only this vCPU writes.
    unsafe { ((si.mfn_list + pfn * 8) as *mut u64).write_volatile(mfn) }
}

/// A page-aligned slot in BSS whose mapping is replaced by a foreign frame.
#[repr(C, align(4096))]
struct PageSlot([u8; PAGE_SIZE]);

static mut SHARED_INFO_SLOT: PageSlot = PageSlot([0; PAGE_SIZE]);
static mut GRANT_TABLE_SLOT: PageSlot = PageSlot([0; PAGE_SIZE]);

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

/// Maps the shared-info page again after a suspend, at the same address
/// (a new domain has it on another machine frame).
pub(crate) fn remap_shared_info(maddr: u64) -> Result<(), XenError> {
    let va = core::ptr::addr_of_mut!(SHARED_INFO_SLOT) as u64;
    let entry = (maddr & !(PAGE_SIZE as u64 - 1)) | KERNEL_RW;
    // SAFETY: the slot is only used through `SharedPage`, as at boot.
    unsafe { update_va_mapping(va, entry, uvmf::INVLPG) }
}

/// Unmaps the shared-info page (and the grant-table frame, if mapped)
/// before a suspend: frames that are not the domain's own cannot be saved.
/// Until they are mapped again nothing may touch them.
pub(crate) fn unmap_foreign_slots(grant_table: bool) -> Result<(), XenError> {
    let shared = core::ptr::addr_of_mut!(SHARED_INFO_SLOT) as u64;
    let grants = core::ptr::addr_of_mut!(GRANT_TABLE_SLOT) as u64;
    // SAFETY: an empty entry maps nothing; the slots hold no Rust object,
    // and the caller maps them again before anything reads them.
    unsafe {
        if grant_table {
            update_va_mapping(grants, 0, uvmf::INVLPG)?;
        }
        update_va_mapping(shared, 0, uvmf::INVLPG)
    }
}

/// Maps the domain's grant-table frame (machine frame `mfn`) over a BSS
/// slot (at boot, and again after a suspend: `grants` keeps the page).
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

/// The free, already-mapped tail of the boot mapping.
///
/// The builder's boot area ends with the page tables (`pt_base`,
/// `nr_pt_frames`) and then one page of boot stack; the mapping is padded
/// to at least 512 KiB past that and up to a 4 MiB boundary, and never past
/// the domain's own pages.
fn boot_tail(si: &StartInfo) -> Range<u64> {
    const MIB4: u64 = 4 << 20;
    let boot_stack_end = si.pt_base + (si.nr_pt_frames + 1) * PAGE_SIZE as u64;
    let padded = (boot_stack_end + (512 << 10)).div_ceil(MIB4) * MIB4;
    let end = padded.min(VIRT_BASE + si.nr_pages * PAGE_SIZE as u64);
    boot_stack_end..end
}

/// One of this domain's frames that no mapping of the kernel's reaches:
/// past the heap (the boot mapping's tail beyond the heap is unmapped
/// before its frames join the pool). Only [`FramePool`] makes them; it is
/// not `Clone`, so one frame has one owner.
///
/// It keeps only its pfn: the machine frame behind it is looked up in the
/// P2M list at each use, because a restore or a migration gives the domain
/// other machine frames (the toolstack rewrites the P2M list and every page
/// table, but not a number the kernel kept).
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pfn: u64,
}

impl Frame {
    pub fn pfn(&self) -> u64 {
        self.pfn
    }
    pub fn mfn(&self) -> u64 {
        // A frame is minted only for a pfn inside the P2M list.
        pfn_to_mfn(self.pfn).unwrap_or(0)
    }
}

/// The frames past the heap, for processes and page tables: a bitmap of
/// the free ones, handing out the lowest first, and one of those given back
/// to Xen (`balloon`); one bit per frame of the domain each, in the heap,
/// which grew by as much at boot.
pub struct FramePool {
    pub(crate) free: FrameSet,
    pub(crate) out: FrameSet,
}

impl FramePool {
    /// A free frame, not yet zeroed.
    pub fn take(&mut self) -> Option<Frame> {
        self.free.take().map(|pfn| Frame { pfn })
    }

    /// Returns a frame. Its old contents stay until it is zeroed again
    /// ([`zero`]) before the next user sees it.
    pub fn give_back(&mut self, frame: Frame) {
        self.free.insert(frame.pfn);
    }

    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }

    /// Frames given back to Xen.
    pub fn ballooned(&self) -> usize {
        self.out.len()
    }
}

/// The boot-time memory layout, once set up.
pub struct Memory {
    /// The heap's address range: the boot mapping's free tail, cut short in
    /// a small domain, or grown past it (by `heap_frames`).
    pub heap: Range<u64>,
    /// Frames past the boot mapping the heap took, and the page tables
    /// mapping them.
    pub heap_frames: u64,
    pub heap_tables: u64,
    /// Every other frame.
    pub frames: FramePool,
}

static MEMORY_TAKEN: spin::Once<()> = spin::Once::new();

/// Sets up the heap and returns the pool of the frames past it. The heap
/// is the boot mapping's free tail, but at least `heap_min` bytes and the
/// pool's bitmap: where the tail is shorter (a large domain: the P2M list
/// and the boot page tables fill the boot mapping), the first frames past
/// it are mapped at their own addresses, right after it. A domain whose
/// pool would have fewer than `pool_min` frames keeps only that much heap,
/// and the rest of the tail is unmapped and joins the pool.
///
/// Only the first call gets the pool: two pools would hand out the same
/// frames twice; `None` then.
pub fn init_memory(heap_min: u64, pool_min: u64) -> Option<Memory> {
    if MEMORY_TAKEN.is_completed() {
        return None;
    }
    MEMORY_TAKEN.call_once(|| ());
    let si = start_info();
    let nr = si.nr_pages;
    let tail = boot_tail(si);
    let pfn = |va: u64| (va - VIRT_BASE) >> PAGE_SHIFT;
    let first = pfn(tail.end);
    // The two bitmaps and what the allocator keeps beside them.
    let want = heap_min.saturating_add(2 * FrameSet::bytes_for(nr) + 128);
    let split = pool::split(tail.clone(), nr - first, want, pool_min);
    let table_pfns = first + split.extended;
    let mut tables = table_pfns..table_pfns + split.tables;
    let mut heap_end = split.heap_end.min(USER.start);
    // The tail's frames unmapped for the pool end here.
    let mut unmapped = tail.end;
    if heap_end > tail.end {
        // SAFETY: the frames (and the tables') are the domain's own, past
        // the boot mapping: nothing maps or uses them (the pool is not made
        // yet); their own addresses lie past the boot mapping, below USER.
        heap_end = unsafe { set_boot_ptes(tail.end..heap_end, true, &mut tables) };
    } else if heap_end < tail.end {
        // SAFETY: the heap, not set up yet, ends at `heap_end`: nothing
        // lives in the tail past it.
        unmapped = unsafe { set_boot_ptes(heap_end..tail.end, false, &mut tables) };
    }
    crate::heap::init(tail.start, heap_end);
    // The heap was sized for them (should a table or a page have been
    // refused, the allocator says it has no room, and the kernel stops).
    let mut free = FrameSet::new(nr);
    for p in pfn(heap_end)..nr {
        // Not the tail's frames still mapped, nor the new tables.
        if !(pfn(unmapped)..first).contains(&p) && !(table_pfns..tables.start).contains(&p) {
            free.insert(p);
        }
    }
    Some(Memory {
        heap: tail.start..heap_end,
        heap_frames: pfn(heap_end).saturating_sub(first),
        heap_tables: tables.start - table_pfns,
        frames: FramePool {
            free,
            out: FrameSet::new(nr),
        },
    })
}

/// Sets the boot root's entries for the pages `range` (page-aligned,
/// below [`USER`]): each maps its own frame (`VIRT_BASE + pfn * 4096`),
/// writable and not executable (`map`), or nothing. A 2 MiB with no L1
/// table gets one, a frame from `tables` (cleared, hung in the boot L2).
/// Returns where it stopped: `range.end`, or the first page it could not
/// set.
///
/// # Safety
/// Mapping: the frames are the domain's own and nothing else maps or uses
/// them. Unmapping: no Rust object lives in `range`.
unsafe fn set_boot_ptes(range: Range<u64>, map: bool, tables: &mut Range<u64>) -> u64 {
    let mut va = range.start;
    while va < range.end {
        let mfn = pfn_to_mfn((va - VIRT_BASE) >> PAGE_SHIFT).unwrap_or(0);
        let pte = if map {
            (mfn << PAGE_SHIFT) | KERNEL_RW | pte::NX
        } else {
            0
        };
        // SAFETY: by the caller's guarantee; Xen refuses an address with
        // no L1 table: one is made, and the page set again.
        if unsafe { update_va_mapping(va, pte, uvmf::INVLPG) }.is_ok() {
            va += PAGE_SIZE as u64;
            // SAFETY: `tables` are the caller's frames, which nothing uses.
        } else if unsafe { new_boot_l1(va, tables) }.is_none() {
            break;
        }
    }
    va
}

/// Hangs a new L1 table for `va` in the boot L2 (slot 0 of the boot root,
/// whose L3 and L2 tables the builder made and mapped): a frame from
/// `tables`, cleared first.
///
/// # Safety
/// The frames of `tables` are the domain's own, and nothing maps or uses
/// them.
unsafe fn new_boot_l1(va: u64, tables: &mut Range<u64>) -> Option<()> {
    let table =
        |e: u64| (e & pte::PRESENT != 0).then_some((e & 0x000f_ffff_ffff_f000) >> PAGE_SHIFT);
    let l3 = table(boot_table_entry(
        boot_root_mfn()?,
        (va >> 39) as usize & 511,
    )?)?;
    let l2 = table(boot_table_entry(l3, (va >> 30) as usize & 511)?)?;
    let index = (va >> 21) as usize & 511;
    if table(boot_table_entry(l2, index)?).is_some() {
        // There is one: Xen refused the entry itself.
        return None;
    }
    let l1 = pfn_to_mfn(tables.next()?)?;
    let clear = [mmuext_op(xen::public::MMUEXT_CLEAR_PAGE, l1)];
    // SAFETY: a frame nothing maps or uses (the caller's guarantee):
    // clearing it changes no mapping and no Rust object.
    unsafe { crate::hypercall::mmuext(&clear) }.ok()?;
    set_entry(l2, index, l1).ok()
}

/// Fills `frame` with zeros: Xen clears it (`MMUEXT_CLEAR_PAGE`), so
/// the kernel never maps it, and one hypercall does it.
pub fn zero(frame: &Frame) -> Result<(), XenError> {
    let op = [mmuext_op(xen::public::MMUEXT_CLEAR_PAGE, frame.mfn())];
    // SAFETY: clearing a pool frame (not kernel memory; Xen refuses a page
    // table) changes no mapping and no Rust object.
    unsafe { crate::hypercall::mmuext(&op) }
}

/// Reads entry `index` of a page table built by the domain builder (it lies
/// in the boot mapping, mapped read-only); `None` for any other frame.
#[inline(never)]
fn boot_table_entry(table_mfn: u64, index: usize) -> Option<u64> {
    let si = start_info();
    let first = (si.pt_base - VIRT_BASE) >> PAGE_SHIFT;
    let pfn = mfn_to_pfn(table_mfn)?;
    if !(first..first + si.nr_pt_frames).contains(&pfn) || index >= 512 {
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
    set_entry(l3_mfn, index, l2.mfn()).map_err(TableError::Xen)
}

/// Makes `child` (a zeroed frame) the table at `index` of `table`, a page
/// table built from frames (Xen refuses a `table` that is not one, and a
/// `child` that is mapped writable anywhere).
pub fn set_table_entry(table: &Frame, index: usize, child: &Frame) -> Result<(), XenError> {
    if index >= 512 {
        return Err(XenError(-22));
    }
    set_entry(table.mfn(), index, child.mfn())
}

fn set_entry(table_mfn: u64, index: usize, child_mfn: u64) -> Result<(), XenError> {
    let req = MmuUpdate {
        ptr: ((table_mfn << PAGE_SHIFT) + index as u64 * 8) | MMU_NORMAL_PT_UPDATE,
        val: (child_mfn << PAGE_SHIFT) | TABLE_FLAGS,
    };
    // SAFETY: the entry gains a table made of pool frames, which map only
    // user addresses, or (`boot_l1`) a cleared one, which maps nothing: no
    // kernel mapping changes. Xen validates the entry.
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
    unsafe { update_va_mapping(va, (frame.mfn() << PAGE_SHIFT) | flags, uvmf::INVLPG) }
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

/// The user half of a process's address space: L4 slots 1 to 255. Slot 0
/// holds the kernel (in the kernel root only); Xen owns the upper half.
pub const USER_HALF: Range<u64> = 512 << 30..0x0000_8000_0000_0000;
/// The part of the user half this kernel builds tables for: L4 slot 1.
const USER_SLOT: usize = 1;

/// A table `map_new_pages` adds: an L2 by its L3 index, an L1 by its L3
/// and L2 indices.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    L2(usize),
    L1(usize, usize),
}

/// A page for [`AddressSpace::map_new_pages`]: `frame` mapped at `va`
/// with `perms`, holding `bytes` at `offset` and zero elsewhere.
pub struct NewPage<'a> {
    pub va: u64,
    pub frame: &'a Frame,
    pub perms: Perms,
    pub offset: usize,
    pub bytes: &'a [u8],
}

/// What a user page allows besides reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub writable: bool,
    pub executable: bool,
}

/// The mfn of the root the domain builder made (the kernel's own tables).
pub(crate) fn boot_root_mfn() -> Option<u64> {
    pfn_to_mfn((start_info().pt_base - VIRT_BASE) >> PAGE_SHIFT)
}

/// The id of the address space whose roots are loaded (0: the boot root,
/// no user root).
static ACTIVE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// What ACTIVE stands for (the L3 in the boot root's slot 1, the user
/// root), so that a space loaded for a moment
/// (`AddressSpace::map_new_pages`) can load the previous one again.
static ACTIVE_ROOTS: spin::Mutex<(u64, u64)> = spin::Mutex::new((0, 0));
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// Whether a user root is loaded (entering user mode without one would
/// crash the domain).
pub(crate) fn user_root_loaded() -> bool {
    ACTIVE.load(core::sync::atomic::Ordering::Relaxed) != 0
}

fn mmuext_op(cmd: u32, mfn: u64) -> MmuextOp {
    MmuextOp {
        cmd,
        arg1: mfn,
        arg2: 0,
    }
}

/// `mmu_update(updates)` then `mmuext_op(ops)`, in one multicall: one
/// guest exit for a change of page tables and the TLB work it needs.
///
/// # Safety
/// As [`mmu_update`] for `updates` and [`crate::hypercall::mmuext`] for
/// `ops`.
unsafe fn update_then_mmuext(updates: &[MmuUpdate], ops: &[MmuextOp]) -> Result<(), XenError> {
    let entry = |op: usize, ptr: u64, len: usize| MulticallEntry {
        op: op as u64,
        result: 0,
        args: [ptr, len as u64, 0, xen::public::DOMID_SELF as u64, 0, 0],
    };
    let mut batch = [
        entry(nr::MMU_UPDATE, updates.as_ptr() as u64, updates.len()),
        entry(nr::MMUEXT_OP, ops.as_ptr() as u64, ops.len()),
    ];
    // SAFETY: by the caller's guarantee; both slices are live for the call.
    unsafe { multicall(&mut batch) }.map_err(|(_, e)| e)
}

/// Loads a process's memory, or none: hangs `l3` (0: none) in slot 1 of
/// the boot root, which is every process's kernel root, loads `user_root`
/// (0: none) as the user root, and flushes the TLB of the previous
/// process's pages; one multicall. `id` is what ACTIVE says afterwards.
///
/// # Safety
/// `l3` and `user_root` are 0 or the tables of one live address space
/// (pinned until it is destroyed, which unloads it first).
unsafe fn load_roots(id: u64, l3: u64, user_root: u64) -> Result<(), XenError> {
    let root = boot_root_mfn().ok_or(XenError(-22))?;
    let slot1 = [MmuUpdate {
        ptr: ((root << PAGE_SHIFT) + USER_SLOT as u64 * 8) | MMU_NORMAL_PT_UPDATE,
        val: if l3 == 0 {
            0
        } else {
            (l3 << PAGE_SHIFT) | TABLE_FLAGS
        },
    }];
    let ops = [
        mmuext_op(xen::public::MMUEXT_NEW_USER_BASEPTR, user_root),
        mmuext_op(MMUEXT_TLB_FLUSH_LOCAL, 0),
    ];
    // SAFETY: slot 1 of the boot root maps only the user half (USER_SLOT),
    // where no kernel memory is, so no kernel mapping changes; the tables
    // are live by the caller's guarantee.
    unsafe { update_then_mmuext(&slot1, &ops)? };
    ACTIVE.store(id, core::sync::atomic::Ordering::Relaxed);
    *ACTIVE_ROOTS.lock() = (l3, user_root);
    Ok(())
}

/// Unloads every process's memory: the boot root's slot 1 and the user
/// root are cleared; no process's page is reachable afterwards.
pub fn activate_kernel_only() -> Result<(), XenError> {
    // SAFETY: no tables at all.
    unsafe { load_roots(0, 0, 0) }
}

/// Why an address space could not be built or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpaceError {
    /// No free frame for a table.
    OutOfFrames,
    /// The address is not a page of the user half this kernel maps.
    NotUser,
    /// A page's bytes do not fit in it at their offset.
    BadFill,
    Xen(XenError),
}

impl From<XenError> for SpaceError {
    fn from(e: XenError) -> Self {
        SpaceError::Xen(e)
    }
}

/// A process's address space: its own pinned user root (slot 1 only: the
/// kernel is simply absent from it) and the tables under slot 1. Its
/// kernel root is the boot root, shared by every process: loading the
/// space hangs its L3 in the boot root's slot 1 too, so the kernel reaches
/// the process's pages at their user addresses. Every table is a pool
/// [`Frame`]; [`AddressSpace::destroy`] gives them all back.
pub struct AddressSpace {
    id: u64,
    user_l4: Frame,
    l3: Frame,
    l2: vecmap::VecMap<usize, Frame>,
    l1: vecmap::VecMap<(usize, usize), Frame>,
}

const USER_TABLE: u64 = TABLE_FLAGS;

impl AddressSpace {
    /// Builds and pins the user root over an empty L3 (2 frames): Xen
    /// clears both and pins the root in one `mmuext_op`, and one
    /// `mmu_update` hangs the L3 in slot 1.
    pub fn new(pool: &mut FramePool) -> Result<AddressSpace, SpaceError> {
        let l3 = pool.take().ok_or(SpaceError::OutOfFrames)?;
        let Some(user_l4) = pool.take() else {
            pool.give_back(l3);
            return Err(SpaceError::OutOfFrames);
        };
        let ops = [
            mmuext_op(xen::public::MMUEXT_CLEAR_PAGE, l3.mfn()),
            mmuext_op(xen::public::MMUEXT_CLEAR_PAGE, user_l4.mfn()),
            mmuext_op(xen::public::MMUEXT_PIN_L4_TABLE, user_l4.mfn()),
        ];
        let hang = [MmuUpdate {
            ptr: Self::entry_ptr(&user_l4, USER_SLOT),
            val: (l3.mfn() << PAGE_SHIFT) | USER_TABLE,
        }];
        // SAFETY: clearing pool frames touches no kernel memory; pinning
        // types the new root; the update writes slot 1 of the new root,
        // which nothing has loaded. No mapping in use changes.
        let built = unsafe { crate::hypercall::mmuext(&ops) }.and_then(|()| {
            // SAFETY: as above.
            unsafe { mmu_update(&hang) }
        });
        if let Err(e) = built {
            // Xen stops at the first failing operation: unpin the root in
            // case it was pinned (if not, the unpin just fails), so both
            // frames are plain pages again.
            let unpin = [mmuext_op(xen::public::MMUEXT_UNPIN_TABLE, user_l4.mfn())];
            // SAFETY: the root was never loaded.
            let _ = unsafe { crate::hypercall::mmuext(&unpin) };
            pool.give_back(user_l4);
            pool.give_back(l3);
            return Err(SpaceError::Xen(e));
        }
        Ok(AddressSpace {
            id: NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            user_l4,
            l3,
            l2: vecmap::VecMap::new(),
            l1: vecmap::VecMap::new(),
        })
    }

    fn indices(va: u64) -> Result<(usize, usize, usize), SpaceError> {
        if !USER_HALF.contains(&va)
            || !va.is_multiple_of(PAGE_SIZE as u64)
            || (va >> 39) as usize & 511 != USER_SLOT
        {
            return Err(SpaceError::NotUser);
        }
        Ok((
            (va >> 30) as usize & 511,
            (va >> 21) as usize & 511,
            (va >> 12) as usize & 511,
        ))
    }

    fn entry_ptr(table: &Frame, index: usize) -> u64 {
        ((table.mfn() << PAGE_SHIFT) + index as u64 * 8) | MMU_NORMAL_PT_UPDATE
    }

    /// Maps `frame` at the user address `va` with `perms` (readable always,
    /// user-accessible), building the L2 and L1 tables on the way from
    /// `pool`. All entries go to Xen in one `mmu_update`.
    pub fn map(
        &mut self,
        pool: &mut FramePool,
        va: u64,
        frame: &Frame,
        perms: Perms,
    ) -> Result<(), SpaceError> {
        let (i3, i2, i1) = Self::indices(va)?;
        let mut reqs: Vec<MmuUpdate> = Vec::with_capacity(3);
        let mut new_l2 = None;
        let mut new_l1 = None;
        if !self.l2.contains_key(&i3) {
            let t = pool.take().ok_or(SpaceError::OutOfFrames)?;
            if let Err(e) = zero(&t) {
                pool.give_back(t);
                return Err(e.into());
            }
            reqs.push(MmuUpdate {
                ptr: Self::entry_ptr(&self.l3, i3),
                val: (t.mfn() << PAGE_SHIFT) | USER_TABLE,
            });
            new_l2 = Some(t);
        }
        if !self.l1.contains_key(&(i3, i2)) {
            let Some(t) = pool.take() else {
                if let Some(t) = new_l2 {
                    pool.give_back(t);
                }
                return Err(SpaceError::OutOfFrames);
            };
            if let Err(e) = zero(&t) {
                pool.give_back(t);
                if let Some(t) = new_l2 {
                    pool.give_back(t);
                }
                return Err(e.into());
            }
            let l2 = new_l2.as_ref().or(self.l2.get(&i3)).expect("an L2 table");
            reqs.push(MmuUpdate {
                ptr: Self::entry_ptr(l2, i2),
                val: (t.mfn() << PAGE_SHIFT) | USER_TABLE,
            });
            new_l1 = Some(t);
        }
        let l1 = new_l1
            .as_ref()
            .or(self.l1.get(&(i3, i2)))
            .expect("an L1 table");
        let mut flags = pte::PRESENT | pte::USER | pte::ACCESSED;
        if perms.writable {
            flags |= pte::WRITABLE | pte::DIRTY;
        }
        if !perms.executable {
            flags |= pte::NX;
        }
        reqs.push(MmuUpdate {
            ptr: Self::entry_ptr(l1, i1),
            val: (frame.mfn() << PAGE_SHIFT) | flags,
        });
        // SAFETY: every entry is in this space's own tables (pool frames,
        // user half only) and maps a pool frame: no kernel mapping changes.
        // Xen validates each entry and applies them in order.
        if let Err(e) = unsafe { mmu_update(&reqs) } {
            // Xen stops at the first bad entry; a table it already hung
            // stays typed, so keep it rather than reuse a typed frame.
            if let Some(t) = new_l2 {
                self.l2.insert(i3, t);
            }
            if let Some(t) = new_l1 {
                self.l1.insert((i3, i2), t);
            }
            return Err(e.into());
        }
        if let Some(t) = new_l2 {
            self.l2.insert(i3, t);
        }
        if let Some(t) = new_l1 {
            self.l1.insert((i3, i2), t);
        }
        Ok(())
    }

    /// Unmaps the user pages `vas` (one `mmu_update`, then one TLB flush):
    /// accesses fault from then on. Addresses with no table are skipped.
    pub fn unmap(&mut self, vas: &[u64]) -> Result<(), SpaceError> {
        let mut reqs = Vec::new();
        for &va in vas {
            let (i3, i2, i1) = Self::indices(va)?;
            if let Some(l1) = self.l1.get(&(i3, i2)) {
                reqs.push(MmuUpdate {
                    ptr: Self::entry_ptr(l1, i1),
                    val: 0,
                });
            }
        }
        if reqs.is_empty() {
            return Ok(());
        }
        // SAFETY: clears entries of this space's own tables only.
        unsafe { mmu_update(&reqs)? };
        let flush = [mmuext_op(MMUEXT_TLB_FLUSH_LOCAL, 0)];
        // SAFETY: a flush changes no mapping.
        unsafe { crate::hypercall::mmuext(&flush)? };
        Ok(())
    }

    /// Loads this space (its L3 into the shared kernel root, its user
    /// root; one multicall); a no-op if it is loaded already.
    pub fn activate(&self) -> Result<(), XenError> {
        if ACTIVE.load(core::sync::atomic::Ordering::Relaxed) == self.id {
            return Ok(());
        }
        // SAFETY: this space's own tables, pinned while it lives.
        unsafe { load_roots(self.id, self.l3.mfn(), self.user_l4.mfn()) }
    }

    /// Loads what was loaded before this space was (`previous`: what
    /// `ACTIVE` and `ACTIVE_ROOTS` held).
    fn restore(&self, previous: (u64, (u64, u64))) -> Result<(), XenError> {
        let (id, (l3, user)) = previous;
        if id == self.id {
            return Ok(());
        }
        // SAFETY: these were the tables of a live space, loaded until a
        // moment ago: pinned still (a space is unloaded before it is
        // destroyed, and none was destroyed meanwhile: `&mut self` of
        // another space is held), or none (id 0).
        unsafe { load_roots(id, l3, user) }
    }

    /// Maps new pages, each zeroed and then given its bytes, in a fixed
    /// number of hypercalls however many there are (a whole program image,
    /// its arguments and stack at spawn): one `mmuext_op` clears every
    /// frame and every new table; one `mmu_update` hangs the new tables and
    /// maps every page, writable for now; the bytes are copied in through
    /// this space's kernel root (loaded for the copy, the previous roots
    /// loaded again after); one multicall takes the write right back from
    /// the pages that must not have it and flushes the TLB.
    ///
    /// The pages' frames are the caller's, as with [`AddressSpace::map`];
    /// tables come from `pool`.
    pub fn map_new_pages(
        &mut self,
        pool: &mut FramePool,
        pages: &[NewPage],
    ) -> Result<(), SpaceError> {
        for p in pages {
            Self::indices(p.va)?;
            if p.offset
                .checked_add(p.bytes.len())
                .is_none_or(|end| end > PAGE_SIZE)
            {
                return Err(SpaceError::BadFill);
            }
        }
        // The tables the pages need that this space does not have yet: few
        // (one maps 2 MiB or 1 GiB), so plain lists, which keep the code
        // small.
        let mut new_tables: Vec<(Table, Frame)> = Vec::new();
        let has = |tables: &[(Table, Frame)], t: Table| tables.iter().any(|(k, _)| *k == t);
        for p in pages {
            let (i3, i2, _) = Self::indices(p.va)?;
            for t in [Table::L2(i3), Table::L1(i3, i2)] {
                let present = match t {
                    Table::L2(i3) => self.l2.contains_key(&i3),
                    Table::L1(i3, i2) => self.l1.contains_key(&(i3, i2)),
                };
                if present || has(&new_tables, t) {
                    continue;
                }
                let Some(frame) = pool.take() else {
                    new_tables.into_iter().for_each(|(_, f)| pool.give_back(f));
                    return Err(SpaceError::OutOfFrames);
                };
                new_tables.push((t, frame));
            }
        }
        // 1. Clear the tables and the pages.
        let clears: Vec<MmuextOp> = new_tables
            .iter()
            .map(|(_, t)| t.mfn())
            .chain(pages.iter().map(|p| p.frame.mfn()))
            .map(|mfn| mmuext_op(xen::public::MMUEXT_CLEAR_PAGE, mfn))
            .collect();
        // SAFETY: clearing pool frames (not kernel memory, not tables yet)
        // changes no mapping and no Rust object.
        if let Err(e) = unsafe { crate::hypercall::mmuext(&clears) } {
            new_tables.into_iter().for_each(|(_, f)| pool.give_back(f));
            return Err(e.into());
        }
        // 2. Hang the tables (every L2 before the L1s under it: the list
        // has each L2 before its L1) and map the pages, writable while they
        // are filled. The tables join this space first, even should Xen
        // refuse an entry: one it typed must not return to the pool as a
        // plain frame.
        let mut reqs: Vec<MmuUpdate> = Vec::with_capacity(new_tables.len() + pages.len());
        for (t, frame) in new_tables {
            let (parent, index) = match t {
                Table::L2(i3) => (&self.l3, i3),
                Table::L1(i3, i2) => (self.l2.get(&i3).expect("its L2 came first"), i2),
            };
            reqs.push(MmuUpdate {
                ptr: Self::entry_ptr(parent, index),
                val: (frame.mfn() << PAGE_SHIFT) | USER_TABLE,
            });
            match t {
                Table::L2(i3) => self.l2.insert(i3, frame),
                Table::L1(i3, i2) => self.l1.insert((i3, i2), frame),
            };
        }
        let leaf = |p: &NewPage, writable: bool| {
            let (i3, i2, i1) = Self::indices(p.va).expect("checked above");
            let l1 = self.l1.get(&(i3, i2)).expect("an L1 table");
            let mut flags = pte::PRESENT | pte::USER | pte::ACCESSED;
            if writable {
                flags |= pte::WRITABLE | pte::DIRTY;
            }
            if !p.perms.executable {
                flags |= pte::NX;
            }
            MmuUpdate {
                ptr: Self::entry_ptr(l1, i1),
                val: (p.frame.mfn() << PAGE_SHIFT) | flags,
            }
        };
        reqs.extend(pages.iter().map(|p| leaf(p, true)));
        let protect: Vec<MmuUpdate> = pages
            .iter()
            .filter(|p| !p.perms.writable)
            .map(|p| leaf(p, false))
            .collect();
        // SAFETY: every entry is in this space's own tables (pool frames,
        // user half only) and maps a pool frame: no kernel mapping changes.
        unsafe { mmu_update(&reqs)? };
        // 3. Copy the bytes in through this space's kernel root.
        let previous = (
            ACTIVE.load(core::sync::atomic::Ordering::Relaxed),
            *ACTIVE_ROOTS.lock(),
        );
        self.activate()?;
        for p in pages.iter().filter(|p| !p.bytes.is_empty()) {
            // SAFETY: the loaded kernel root maps `p.va` to `p.frame`,
            // writable (step 2); the frame is not kernel memory and no
            // reference to it exists; the copy stays within the page
            // (checked above).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    p.bytes.as_ptr(),
                    (p.va as *mut u8).add(p.offset),
                    p.bytes.len(),
                )
            };
        }
        // 4. Read-only pages lose the write right; one flush for all.
        let protected = if protect.is_empty() {
            Ok(())
        } else {
            let flush = [mmuext_op(MMUEXT_TLB_FLUSH_LOCAL, 0)];
            // SAFETY: the update lowers the rights of entries of this
            // space's own tables (as step 2); the flush changes no mapping.
            unsafe { update_then_mmuext(&protect, &flush) }
        };
        let restored = self.restore(previous);
        protected?;
        restored?;
        Ok(())
    }

    /// Page-table frames this space holds (roots included).
    pub fn table_frames(&self) -> usize {
        2 + self.l2.len() + self.l1.len()
    }

    /// Unpins the root and returns every table frame to `pool`; if the
    /// space is loaded, it is unloaded first (its L3 leaves the shared
    /// kernel root). The pages it mapped are the caller's: they are plain
    /// frames again once the tables go.
    pub fn destroy(self, pool: &mut FramePool) -> Result<(), XenError> {
        if ACTIVE.load(core::sync::atomic::Ordering::Relaxed) == self.id {
            activate_kernel_only()?;
        }
        let ops = [mmuext_op(
            xen::public::MMUEXT_UNPIN_TABLE,
            self.user_l4.mfn(),
        )];
        // SAFETY: the space is not loaded (checked above): neither root
        // refers to its tables, so unpinning removes no mapping in use;
        // Xen drops the tables' types.
        unsafe { crate::hypercall::mmuext(&ops)? };
        pool.give_back(self.user_l4);
        pool.give_back(self.l3);
        self.l2.into_values().for_each(|f| pool.give_back(f));
        self.l1.into_values().for_each(|f| pool.give_back(f));
        Ok(())
    }
}

/// The boot module (the xl config's `ramdisk=`), as the domain builder
/// loaded it into the boot mapping; `None` without one, or if start_info
/// places it anywhere but between the image and the boot page tables.
pub fn boot_module() -> Option<&'static [u8]> {
    let si = start_info();
    if si.mod_len == 0 || si.flags & xen::public::SIF_MOD_START_PFN != 0 {
        return None;
    }
    let start = si.mod_start;
    let end = start.checked_add(si.mod_len)?;
    extern "C" {
        static __image_end: u8;
    }
    let image_end = core::ptr::addr_of!(__image_end) as u64;
    if start < image_end || end > si.pt_base {
        return None;
    }
    // SAFETY: the range lies in the boot mapping between the end of the
    // image and the boot page tables (checked): memory the builder filled
    // with the module, which nothing else uses (the heap starts past the
    // page tables, frames past the boot mapping) and no one writes, mapped
    // for the kernel's life. A shared reference for the kernel's life is
    // therefore sound.
    Some(unsafe { core::slice::from_raw_parts(start as *const u8, si.mod_len as usize) })
}
