//! Exokernel page binding: frames, capabilities, per-process regions and
//! grants.
//!
//! A process allocates a page and receives a capability: a 64-bit value
//! naming a kernel table slot, that slot's generation, and a keyed tag, so
//! it cannot be forged or reused after the page is freed. Every operation
//! checks the capability once (forged, stale, foreign) and then acts through
//! hypercalls: binding installs the frame at an address of the process's
//! region with `update_va_mapping`; unbinding removes it and flushes the
//! TLB entry, so a later access faults instead of reaching a reused frame.
//! Region page tables are built with checked `mmu_update`s.
//!
//! Frames come from the pseudo-physical frames past the boot mapping (the
//! heap owns the boot mapping's tail). Each frame is zeroed before a
//! process or a peer domain can see it.

use crate::status::{SysError, SysResult};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use events::{EventId, Pid};
use hal::mm;
use log::warn;
use spin::Mutex;
use xen::public::{gnttab, pte, PAGE_SIZE};

/// Process regions start at 4 GiB (L4 slot 0, L3 slot 4); each process slot
/// gets one L1 table's worth: 2 MiB, 512 pages.
pub const REGION_BASE: u64 = 4 << 30;
const REGION_L3_INDEX: usize = 4;
pub const REGION_PAGES: u64 = 512;
/// Process regions there are: one per process slot (`proc` has as many).
pub const MAX_REGIONS: usize = 16;
const REGION_SIZE: u64 = REGION_PAGES * PAGE_SIZE as u64;
/// Pages held at once, all processes.
const MAX_PAGES: usize = 1024;
/// Grant references this kernel hands out (one grant-table frame: 512
/// entries, the first 8 reserved).
const GRANT_REFS: u32 = 512;

/// A page capability as processes hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCap(pub u64);

struct PageEntry {
    owner: Pid,
    pfn: u64,
    mfn: u64,
    bound_at: Option<u64>,
    granted: Option<u32>,
    /// Completes when the kernel takes the page back.
    revoked: EventId,
    /// Allocation order, for choosing what to revoke under pressure.
    seq: u64,
}

struct Slot {
    generation: u16,
    page: Option<PageEntry>,
}

struct Grants {
    table: hal::shared::SharedPage,
    free: Vec<u32>,
}

impl Grants {
    /// Fills a free entry: `peer` may map machine frame `mfn`.
    fn grant(&mut self, mfn: u64, peer: u16, readonly: bool) -> SysResult<u32> {
        let gref = self.free.pop().ok_or(SysError::Busy)?;
        let at = gref as usize * gnttab::ENTRY_SIZE;
        self.table
            .store_u16(at + gnttab::ENTRY_DOMID, peer, Ordering::Relaxed);
        self.table
            .store_u32(at + gnttab::ENTRY_FRAME, mfn as u32, Ordering::Relaxed);
        // Frame and domid must be visible before the entry becomes valid.
        let flags = gnttab::GTF_PERMIT_ACCESS | if readonly { gnttab::GTF_READONLY } else { 0 };
        self.table
            .store_u16(at + gnttab::ENTRY_FLAGS, flags, Ordering::SeqCst);
        Ok(gref)
    }
}

pub struct Pages {
    mfn_list: u64,
    nr_pages: u64,
    free_frames: Vec<u64>,
    slots: Vec<Slot>,
    key: [u64; 2],
    region_l2_mfn: u64,
    /// The L1 table of each process slot's region, once built.
    region_l1: [Option<u64>; MAX_REGIONS],
    grants: Option<Grants>,
    next_seq: u64,
}

static PAGES: Mutex<Option<Pages>> = Mutex::new(None);

fn with_pages<R>(f: impl FnOnce(&mut Pages) -> SysResult<R>) -> SysResult<R> {
    let mut guard = PAGES.lock();
    f(guard.as_mut().ok_or(SysError::OutOfMemory)?)
}

/// A keyed 32-bit tag for (slot, generation): SipHash-like mixing of a
/// secret key, so a process cannot compute the tag of a slot it was never
/// given.
fn tag(key: [u64; 2], index: usize, generation: u16) -> u32 {
    let mut x = key[0] ^ ((index as u64) << 16 | generation as u64);
    for _ in 0..3 {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd) ^ key[1];
        x ^= x >> 29;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    }
    (x >> 32) as u32
}

const PT_FLAGS: u64 = pte::PRESENT | pte::WRITABLE | pte::USER | pte::ACCESSED;

/// Sets up the frame pool and the region page tables. `first_free_pfn` is
/// the first frame past the boot mapping.
pub fn init(
    si: &xen::public::StartInfo,
    first_free_pfn: u64,
    key: [u64; 2],
) -> Result<(), &'static str> {
    let mut free_frames: Vec<u64> = (first_free_pfn..si.nr_pages).rev().collect();
    // The region's L2 table hangs under the boot L3 table.
    let l4_pfn = (si.pt_base - hal::VIRT_BASE) >> 12;
    let l4_mfn =
        mm::pfn_to_mfn(si.mfn_list, si.nr_pages, l4_pfn).ok_or("no P2M entry for the L4 table")?;
    let l4e = mm::boot_table_entry(l4_mfn, 0, si.nr_pages).ok_or("cannot read L4[0]")?;
    if l4e & pte::PRESENT == 0 {
        return Err("L4[0] not present");
    }
    let l3_mfn = (l4e & 0x000f_ffff_ffff_f000) >> 12;
    if mm::boot_table_entry(l3_mfn, REGION_L3_INDEX, si.nr_pages)
        .is_some_and(|e| e & pte::PRESENT != 0)
    {
        return Err("the process region's L3 slot is already in use");
    }
    let l2_pfn = free_frames
        .pop()
        .ok_or("no free frame for the region's L2 table")?;
    let l2_mfn = mm::pfn_to_mfn(si.mfn_list, si.nr_pages, l2_pfn).ok_or("no P2M entry")?;
    mm::zero_frame(l2_mfn).map_err(|_| "cannot zero the L2 table")?;
    mm::set_table_entry(l3_mfn, REGION_L3_INDEX, l2_mfn, PT_FLAGS)
        .map_err(|_| "mmu_update of L3 refused")?;

    let grants = match hal::hypercall::gnttab_setup_one_frame().and_then(mm::map_grant_table) {
        Ok(table) => Some(Grants {
            table,
            free: (gnttab::FIRST_FREE_REF..GRANT_REFS).rev().collect(),
        }),
        Err(e) => {
            warn!("grant table unavailable: {e}");
            None
        }
    };
    *PAGES.lock() = Some(Pages {
        mfn_list: si.mfn_list,
        nr_pages: si.nr_pages,
        free_frames,
        slots: Vec::new(),
        key,
        region_l2_mfn: l2_mfn,
        region_l1: [None; MAX_REGIONS],
        grants,
        next_seq: 0,
    });
    Ok(())
}

impl Pages {
    fn cap_of(&self, index: usize) -> PageCap {
        let g = self.slots[index].generation;
        PageCap((index as u64) << 48 | (g as u64) << 32 | tag(self.key, index, g) as u64)
    }

    /// The one capability check: returns the slot index of a live page
    /// owned by `pid`.
    fn check(&self, pid: Pid, cap: PageCap) -> SysResult<usize> {
        let index = (cap.0 >> 48) as usize;
        let generation = (cap.0 >> 32) as u16;
        if index >= self.slots.len() || tag(self.key, index, generation) != cap.0 as u32 {
            return Err(SysError::ForgedCapability);
        }
        let slot = &self.slots[index];
        match &slot.page {
            Some(p) if slot.generation == generation => {
                if p.owner == pid {
                    Ok(index)
                } else {
                    Err(SysError::ForeignCapability)
                }
            }
            _ => Err(SysError::StaleCapability),
        }
    }

    fn entry(&mut self, index: usize) -> &mut PageEntry {
        self.slots[index].page.as_mut().expect("checked")
    }

    /// The L1 table of a process slot's region, built on first use.
    fn region_l1(&mut self, proc_slot: usize) -> SysResult<u64> {
        if let Some(mfn) = self.region_l1[proc_slot] {
            return Ok(mfn);
        }
        let pfn = self.free_frames.pop().ok_or(SysError::OutOfMemory)?;
        let mfn = mm::pfn_to_mfn(self.mfn_list, self.nr_pages, pfn).ok_or(SysError::OutOfMemory)?;
        let built = mm::zero_frame(mfn)
            .and_then(|_| mm::set_table_entry(self.region_l2_mfn, proc_slot, mfn, PT_FLAGS));
        if let Err(e) = built {
            self.free_frames.push(pfn);
            return Err(SysError::Hypervisor(e.0));
        }
        self.region_l1[proc_slot] = Some(mfn);
        Ok(mfn)
    }

    /// Takes a page back: unmaps it, ends its grant if the peer let go, and
    /// frees the frame. Returns the event to complete for the owner, or
    /// the error that kept it (a peer still mapping it).
    fn release(&mut self, index: usize) -> SysResult<EventId> {
        let page = self.entry(index);
        if let Some(gref) = page.granted {
            self.end_grant(gref)?;
            self.entry(index).granted = None;
        }
        let page = self.entry(index);
        if let Some(va) = page.bound_at.take() {
            if let Err(e) = mm::unmap_page(va) {
                warn!("unmapping {va:#x} failed: {e}");
            }
        }
        let page = self.slots[index].page.take().expect("checked");
        self.slots[index].generation = self.slots[index].generation.wrapping_add(1);
        self.free_frames.push(page.pfn);
        Ok(page.revoked)
    }

    /// Memory pressure: takes back the oldest page of the process holding
    /// the most pages (granted pages excepted: a peer may map them).
    /// Returns the owner's revocation event to complete.
    fn revoke_for_pressure(&mut self) -> Option<EventId> {
        let mut held: Vec<(Pid, usize)> = Vec::new();
        for e in self.slots.iter().filter_map(|s| s.page.as_ref()) {
            match held.iter_mut().find(|(pid, _)| *pid == e.owner) {
                Some((_, n)) => *n += 1,
                None => held.push((e.owner, 1)),
            }
        }
        let (victim_owner, _) = held.into_iter().max_by_key(|&(_, n)| n)?;
        let index = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i]
                    .page
                    .as_ref()
                    .is_some_and(|e| e.owner == victim_owner && e.granted.is_none())
            })
            .min_by_key(|&i| self.slots[i].page.as_ref().map_or(u64::MAX, |e| e.seq))?;
        warn!("memory pressure: revoking a page of pid {}", victim_owner.0);
        self.release(index).ok()
    }

    fn end_grant(&mut self, gref: u32) -> SysResult<()> {
        let g = self.grants.as_mut().ok_or(SysError::NotGranted)?;
        let flags_at = gref as usize * gnttab::ENTRY_SIZE + gnttab::ENTRY_FLAGS;
        let flags = g.table.load_u16(flags_at, Ordering::SeqCst);
        if flags & (gnttab::GTF_READING | gnttab::GTF_WRITING) != 0 {
            return Err(SysError::StillMapped);
        }
        // Xen sets the reading/writing bits when the peer maps: clear the
        // entry only if they are still clear at this very moment.
        let found = g.table.cmpxchg_u16(flags_at, flags, 0);
        if found != flags {
            return Err(SysError::StillMapped);
        }
        g.free.push(gref);
        Ok(())
    }
}

/// Allocates a zeroed page for `pid`; `revoked` completes if the kernel
/// takes it back. When no frame is free the kernel revokes one (see
/// `revoke_for_pressure`); the second value is that page's revocation
/// event, for the caller to complete.
pub fn alloc(pid: Pid, revoked: EventId) -> SysResult<(PageCap, Option<EventId>)> {
    with_pages(|p| {
        let victim = if p.free_frames.is_empty() {
            p.revoke_for_pressure()
        } else {
            None
        };
        let index = match p.slots.iter().position(|s| s.page.is_none()) {
            Some(i) => i,
            None if p.slots.len() < MAX_PAGES => {
                p.slots.push(Slot {
                    generation: 0,
                    page: None,
                });
                p.slots.len() - 1
            }
            None => return Err(SysError::OutOfMemory),
        };
        let pfn = p.free_frames.pop().ok_or(SysError::OutOfMemory)?;
        let Some(mfn) = mm::pfn_to_mfn(p.mfn_list, p.nr_pages, pfn) else {
            p.free_frames.push(pfn);
            return Err(SysError::OutOfMemory);
        };
        if let Err(e) = mm::zero_frame(mfn) {
            p.free_frames.push(pfn);
            return Err(SysError::Hypervisor(e.0));
        }
        let seq = p.next_seq;
        p.next_seq += 1;
        p.slots[index].page = Some(PageEntry {
            owner: pid,
            pfn,
            mfn,
            bound_at: None,
            granted: None,
            revoked,
            seq,
        });
        Ok((p.cap_of(index), victim))
    })
}

/// The address of page `n` of a process slot's region.
pub fn region_address(proc_slot: usize, n: u64) -> u64 {
    REGION_BASE + proc_slot as u64 * REGION_SIZE + n * PAGE_SIZE as u64
}

/// Binds the page at `va`, which must be a page-aligned, unused address of
/// the caller's region.
pub fn bind(pid: Pid, proc_slot: usize, cap: PageCap, va: u64) -> SysResult<()> {
    with_pages(|p| {
        let index = p.check(pid, cap)?;
        let start = region_address(proc_slot, 0);
        if !va.is_multiple_of(PAGE_SIZE as u64) || va < start || va >= start + REGION_SIZE {
            return Err(SysError::BadAddress);
        }
        if p.entry(index).bound_at.is_some() {
            return Err(SysError::AlreadyBound);
        }
        let taken = p
            .slots
            .iter()
            .any(|s| s.page.as_ref().is_some_and(|e| e.bound_at == Some(va)));
        if taken {
            return Err(SysError::BadAddress);
        }
        p.region_l1(proc_slot)?;
        let mfn = p.entry(index).mfn;
        mm::map_page(va, mfn, true).map_err(|e| SysError::Hypervisor(e.0))?;
        p.entry(index).bound_at = Some(va);
        Ok(())
    })
}

/// Unbinds the page: its address is unmapped and its TLB entry flushed.
pub fn unbind(pid: Pid, cap: PageCap) -> SysResult<()> {
    with_pages(|p| {
        let index = p.check(pid, cap)?;
        let va = p.entry(index).bound_at.ok_or(SysError::NotBound)?;
        mm::unmap_page(va).map_err(|e| SysError::Hypervisor(e.0))?;
        p.entry(index).bound_at = None;
        Ok(())
    })
}

/// Gives the page back. Returns the revocation event, which the caller
/// discards (the owner asked for it).
pub fn free(pid: Pid, cap: PageCap) -> SysResult<EventId> {
    with_pages(|p| {
        let index = p.check(pid, cap)?;
        p.release(index)
    })
}

/// Copies between a bound page and kernel memory: the system-call layer's
/// one path into process pages. `offset + len` must stay in the page.
pub fn copy(
    pid: Pid,
    cap: PageCap,
    offset: usize,
    out: Option<&mut [u8]>,
    data: Option<&[u8]>,
) -> SysResult<()> {
    with_pages(|p| {
        let index = p.check(pid, cap)?;
        let va = p.entry(index).bound_at.ok_or(SysError::NotBound)?;
        let len = out
            .as_ref()
            .map_or(0, |o| o.len())
            .max(data.map_or(0, |d| d.len()));
        if offset.checked_add(len).is_none_or(|end| end > PAGE_SIZE) {
            return Err(SysError::BadAddress);
        }
        if let Some(out) = out {
            mm::copy_from_bound(va + offset as u64, out);
        }
        if let Some(data) = data {
            mm::copy_to_bound(va + offset as u64, data);
        }
        Ok(())
    })
}

/// Grants domain `peer` access to the page (read-only or writable);
/// returns the grant reference to tell the peer.
pub fn grant(pid: Pid, cap: PageCap, peer: u16, readonly: bool) -> SysResult<u32> {
    with_pages(|p| {
        let index = p.check(pid, cap)?;
        if p.entry(index).granted.is_some() {
            return Err(SysError::AlreadyGranted);
        }
        let mfn = p.entry(index).mfn;
        let gref = p
            .grants
            .as_mut()
            .ok_or(SysError::ServiceBroken)?
            .grant(mfn, peer, readonly)?;
        p.entry(index).granted = Some(gref);
        Ok(gref)
    })
}

/// Grants domain `peer` access to a kernel heap page at `va` (a vchan's
/// pages); returns the grant reference. The kernel keeps such pages for
/// its life; a channel offered again ends the old grants first
/// ([`end_kernel_grant`]).
pub fn grant_kernel_page(va: u64, peer: u16, readonly: bool) -> SysResult<u32> {
    with_pages(|p| {
        let pfn = va.checked_sub(hal::VIRT_BASE).ok_or(SysError::BadAddress)? >> 12;
        let mfn = mm::pfn_to_mfn(p.mfn_list, p.nr_pages, pfn).ok_or(SysError::BadAddress)?;
        p.grants
            .as_mut()
            .ok_or(SysError::ServiceBroken)?
            .grant(mfn, peer, readonly)
    })
}

/// Ends the peer's access to a kernel page granted with
/// [`grant_kernel_page`]; `StillMapped` while the peer maps it (then the
/// page must not be reused yet).
pub fn end_kernel_grant(gref: u32) -> SysResult<()> {
    with_pages(|p| p.end_grant(gref))
}

/// Ends the peer's access, only if it no longer maps the page
/// (`StillMapped` otherwise: the page is never reused under the peer).
pub fn ungrant(pid: Pid, cap: PageCap) -> SysResult<()> {
    with_pages(|p| {
        let index = p.check(pid, cap)?;
        let gref = p.entry(index).granted.ok_or(SysError::NotGranted)?;
        p.end_grant(gref)?;
        p.entry(index).granted = None;
        Ok(())
    })
}

/// Takes back every page of an exited process. Pages a peer still maps
/// stay held (never reused under the peer) and are logged.
pub fn release_all(pid: Pid) {
    let _ = with_pages(|p| {
        // Unmap them all in one batch first.
        let mut vas = Vec::new();
        for e in p
            .slots
            .iter_mut()
            .filter_map(|s| s.page.as_mut())
            .filter(|e| e.owner == pid)
        {
            if let Some(va) = e.bound_at.take() {
                vas.push(va);
            }
        }
        if let Err(e) = mm::unmap_pages(&vas) {
            warn!("unmapping the pages of exited pid {} failed: {e}", pid.0);
        }
        for index in 0..p.slots.len() {
            if p.slots[index].page.as_ref().is_some_and(|e| e.owner == pid) {
                if let Err(e) = p.release(index) {
                    warn!("page of exited pid {} kept: {e}", pid.0);
                }
            }
        }
        Ok(())
    });
}

/// (frames free, pages held).
pub fn usage() -> (usize, usize) {
    PAGES.lock().as_ref().map_or((0, 0), |p| {
        (
            p.free_frames.len(),
            p.slots.iter().filter(|s| s.page.is_some()).count(),
        )
    })
}
