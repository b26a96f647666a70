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
//! Frames come from the pool, the pseudo-physical frames past the heap
//! (`hal::mm::init_memory`). Each frame is zeroed before a process or a
//! peer domain can see it.

use super::frames;
use crate::status::{SysError, SysResult};
use alloc::vec::Vec;
use events::{EventId, Pid};
use hal::grants::{GrantError, GrantTable};
use hal::mm::{self, Frame};
use log::warn;
use spin::Mutex;
use xen::public::PAGE_SIZE;

/// Process regions start at 4 GiB (L4 slot 0, L3 slot 4); each process slot
/// gets one L1 table's worth: 2 MiB, 512 pages.
pub const REGION_BASE: u64 = 4 << 30;

pub const REGION_PAGES: u64 = 512;
/// Process regions there are: one per process slot (`proc` has as many).
pub const MAX_REGIONS: usize = 16;
const REGION_SIZE: u64 = REGION_PAGES * PAGE_SIZE as u64;
/// Pages held at once, all processes.
const MAX_PAGES: usize = 1024;

/// A page capability as processes hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCap(pub u64);

struct PageEntry {
    owner: Pid,
    frame: Frame,
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

pub struct Pages {
    slots: Vec<Slot>,
    key: [u64; 2],
    region_l2: Frame,
    /// The L1 table of each process slot's region, once built.
    region_l1: [Option<Frame>; MAX_REGIONS],
    grants: Option<GrantTable>,
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

/// Sets up the frame pool and the region page tables over the frames hal
/// handed out (every frame past the boot mapping).
pub fn init(key: [u64; 2]) -> Result<(), &'static str> {
    let l2 = frames::take_zeroed().ok_or("no free frame for the region's L2 table")?;
    if let Err(e) = mm::attach_user_l2(REGION_BASE, &l2) {
        frames::give_back(l2);
        return Err(match e {
            mm::TableError::SlotInUse => "the process region's L3 slot is already in use",
            mm::TableError::BootTables => "cannot read the boot page tables",
            mm::TableError::NotUser => "the process region is not a user address",
            mm::TableError::Xen(_) => "mmu_update of L3 refused",
        });
    }
    let grants = match GrantTable::set_up() {
        Some(Ok(table)) => Some(table),
        Some(Err(e)) => {
            warn!("grant table unavailable: {e}");
            None
        }
        None => None,
    };
    *PAGES.lock() = Some(Pages {
        slots: Vec::new(),
        key,
        region_l2: l2,
        region_l1: [const { None }; MAX_REGIONS],
        grants,
        next_seq: 0,
    });
    Ok(())
}

fn grant_error(e: GrantError) -> SysError {
    match e {
        GrantError::Full => SysError::Busy,
        GrantError::BadPage => SysError::BadAddress,
        GrantError::StillMapped => SysError::StillMapped,
        GrantError::NotGranted => SysError::NotGranted,
    }
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
    fn region_l1(&mut self, proc_slot: usize) -> SysResult<()> {
        if self.region_l1[proc_slot].is_some() {
            return Ok(());
        }
        let frame = frames::take_zeroed().ok_or(SysError::OutOfMemory)?;
        if let Err(e) = mm::set_table_entry(&self.region_l2, proc_slot, &frame) {
            frames::give_back(frame);
            return Err(SysError::Hypervisor(e.0));
        }
        self.region_l1[proc_slot] = Some(frame);
        Ok(())
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
        let owner = page.owner;
        if let Some(va) = page.bound_at.take() {
            if let Err(e) = unmap_one(owner, va) {
                warn!("unmapping {va:#x} failed: {e}");
            }
        }
        let page = self.slots[index].page.take().expect("checked");
        self.slots[index].generation = self.slots[index].generation.wrapping_add(1);
        frames::give_back(page.frame);
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
        self.grants
            .as_mut()
            .ok_or(SysError::NotGranted)?
            .end(gref)
            .map_err(grant_error)
    }
}

/// Allocates a zeroed page for `pid`; `revoked` completes if the kernel
/// takes it back. When no frame is free the kernel revokes one (see
/// `revoke_for_pressure`); the second value is that page's revocation
/// event, for the caller to complete.
pub fn alloc(pid: Pid, revoked: EventId) -> SysResult<(PageCap, Option<EventId>)> {
    with_pages(|p| {
        let victim = if frames::free() == 0 {
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
        let frame = frames::take_zeroed().ok_or(SysError::OutOfMemory)?;
        let seq = p.next_seq;
        p.next_seq += 1;
        p.slots[index].page = Some(PageEntry {
            owner: pid,
            frame,
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
        // A user program binds in its own space's heap region; a kernel
        // process in its slot's region of the shared tables.
        let user = super::space::exists(pid);
        let (start, end) = if user {
            (abi::HEAP_START, abi::HEAP_END)
        } else {
            let start = region_address(proc_slot, 0);
            (start, start + REGION_SIZE)
        };
        if !va.is_multiple_of(PAGE_SIZE as u64) || va < start || va >= end {
            return Err(SysError::BadAddress);
        }
        if p.entry(index).bound_at.is_some() {
            return Err(SysError::AlreadyBound);
        }
        let taken = p.slots.iter().any(|s| {
            s.page
                .as_ref()
                .is_some_and(|e| e.owner == pid && e.bound_at == Some(va))
        });
        if taken {
            return Err(SysError::BadAddress);
        }
        if user {
            let page = p.slots[index].page.as_ref().expect("checked");
            super::space::map_bound(pid, va, &page.frame, true)?;
        } else {
            p.region_l1(proc_slot)?;
            let page = p.slots[index].page.as_ref().expect("checked");
            mm::map_user(va, &page.frame, true).map_err(|e| SysError::Hypervisor(e.0))?;
        }
        p.entry(index).bound_at = Some(va);
        Ok(())
    })
}

/// Unmaps a bound page of `owner`: in its own space if it has one, else in
/// the shared region.
fn unmap_one(owner: Pid, va: u64) -> SysResult<()> {
    if super::space::exists(owner) {
        super::space::unmap_bound(owner, &[va])
    } else {
        mm::unmap_user(va).map_err(|e| SysError::Hypervisor(e.0))
    }
}

/// Unbinds the page: its address is unmapped and its TLB entry flushed.
pub fn unbind(pid: Pid, cap: PageCap) -> SysResult<()> {
    with_pages(|p| {
        let index = p.check(pid, cap)?;
        let va = p.entry(index).bound_at.ok_or(SysError::NotBound)?;
        unmap_one(pid, va)?;
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
        let at = va + offset as u64;
        if let Some(out) = out {
            mm::copy_from_user(at, out).map_err(|_| SysError::BadAddress)?;
        }
        if let Some(data) = data {
            mm::copy_to_user(at, data).map_err(|_| SysError::BadAddress)?;
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
        let Pages { slots, grants, .. } = p;
        let page = slots[index].page.as_ref().expect("checked");
        let gref = grants
            .as_mut()
            .ok_or(SysError::ServiceBroken)?
            .grant_frame(&page.frame, peer, readonly)
            .map_err(grant_error)?;
        p.entry(index).granted = Some(gref);
        Ok(gref)
    })
}

/// Grants domain `peer` access to page `n` of a kernel region (a vchan's
/// or the network device's pages); returns the grant reference. The kernel
/// keeps such pages for its life; a channel offered again ends the old
/// grants first ([`end_kernel_grant`]).
pub fn grant_kernel_page(
    region: &hal::shared::SharedRegion,
    n: usize,
    peer: u16,
    readonly: bool,
) -> SysResult<u32> {
    with_pages(|p| {
        p.grants
            .as_mut()
            .ok_or(SysError::ServiceBroken)?
            .grant_region_page(region, n, peer, readonly)
            .map_err(grant_error)
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
        let unmapped = if super::space::exists(pid) {
            super::space::unmap_bound(pid, &vas)
        } else {
            mm::unmap_user_pages(&vas).map_err(|e| SysError::Hypervisor(e.0))
        };
        if let Err(e) = unmapped {
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
            frames::free(),
            p.slots.iter().filter(|s| s.page.is_some()).count(),
        )
    })
}
