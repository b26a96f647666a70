//! Giving frames back to Xen and taking them again: ballooning, which is
//! how the toolstack (`xl mem-set`) moves memory between domains. A PV
//! guest keeps its own P2M list, so a pfn given back has its entry set to
//! `INVALID_MFN` (a save skips it) and a pfn taken again gets the new
//! machine frame in its entry and in Xen's M2P table.
//!
//! Only free frames of the pool go: the kernel never maps them, so giving
//! one away cannot pull memory out from under a Rust object. The pool keeps
//! a frame given back in its set of ballooned pfns (a bit per frame, like
//! its free frames: what the domain gives back costs no heap), which only
//! [`take_back`] (or [`keep_populated`]) turns into a free frame again.
//!
//! The P2M list's `p2m_generation` in shared info is left alone: it tells
//! the toolstack that the list's own frames moved (ours never do), and a
//! saver (Xen 4.17's libxc) that sees it change during a live migration
//! aborts the migration. Entries the toolstack reads through its mapping
//! of the list, as they are when it reads them.

use crate::hypercall::{memory_op, mmu_update, XenError};
use crate::mm::{self, FramePool};
use alloc::vec::Vec;
use xen::public::{
    xenmem, MemoryReservation, MmuUpdate, DOMID_SELF, INVALID_MFN, MMU_MACHPHYS_UPDATE, PAGE_SHIFT,
};

fn reservation(list: *mut u64, n: usize) -> MemoryReservation {
    MemoryReservation {
        extent_start: list as u64,
        nr_extents: n as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    }
}

/// Frames one hypercall moves at most: its list is a heap buffer of this
/// many entries, whatever the domain's size and the target.
const BATCH: usize = 512;

/// Gives up to `n` free frames of `pool` back to Xen. Returns how many
/// went, and Xen's error if it refused (then fewer did).
pub fn give_back(pool: &mut FramePool, n: usize) -> (usize, Option<XenError>) {
    let mut given = 0;
    let mut error = None;
    while given < n {
        let pfns: Vec<u64> = (given..n.min(given + BATCH))
            .map_while(|_| pool.free.take())
            .collect();
        let mut mfns: Vec<u64> = pfns
            .iter()
            .map(|&p| mm::pfn_to_mfn(p).unwrap_or(0))
            .collect();
        let mut r = reservation(mfns.as_mut_ptr(), mfns.len());
        // SAFETY: the list is live for its length; free pool frames are
        // mapped by nothing and held by no one.
        let done = match unsafe { memory_op(xenmem::DECREASE_RESERVATION, &mut r) } {
            Ok(done) => (done as usize).min(pfns.len()),
            Err(e) => {
                error = Some(e);
                0
            }
        };
        for (i, &pfn) in pfns.iter().enumerate() {
            if i < done {
                mm::set_p2m(pfn, INVALID_MFN);
                pool.out.insert(pfn);
            } else {
                pool.free.insert(pfn);
            }
        }
        given += done;
        if done < BATCH {
            break;
        }
    }
    (given, error)
}

/// Asks Xen for frames for up to `n` of the pool's ballooned pfns; they
/// join its free frames. Returns how many came (none when the domain is at
/// its maximum), and Xen's error if it refused.
pub fn take_back(pool: &mut FramePool, n: usize) -> (usize, Option<XenError>) {
    let mut taken = 0;
    let mut error = None;
    while taken < n {
        let pfns: Vec<u64> = (taken..n.min(taken + BATCH))
            .map_while(|_| pool.out.take())
            .collect();
        let mut mfns = alloc::vec![0u64; pfns.len()];
        let mut r = reservation(mfns.as_mut_ptr(), mfns.len());
        // SAFETY: Xen writes at most `nr_extents` frame numbers into the list.
        let done = match unsafe { memory_op(xenmem::INCREASE_RESERVATION, &mut r) } {
            Ok(done) => (done as usize).min(pfns.len()),
            Err(e) => {
                error = Some(e);
                0
            }
        };
        let m2p: Vec<MmuUpdate> = pfns[..done]
            .iter()
            .zip(&mfns)
            .map(|(&pfn, mfn)| MmuUpdate {
                ptr: (mfn << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE,
                val: pfn,
            })
            .collect();
        // SAFETY: an M2P update changes no mapping, only Xen's table of
        // which pfn a frame of ours is; the frames are the ones Xen just gave.
        if let Err(e) = unsafe { mmu_update(&m2p) } {
            error = Some(e);
        }
        for (i, &pfn) in pfns.iter().enumerate() {
            if i < done {
                mm::set_p2m(pfn, mfns[i]);
                pool.free.insert(pfn);
            } else {
                pool.out.insert(pfn);
            }
        }
        taken += done;
        if done < BATCH {
            break;
        }
    }
    (taken, error)
}

/// Ballooned pfns of `pool` that have a machine frame of the domain's own
/// again join its free frames, with no hypercall; returns how many. After
/// a live migration: the destination populated every pfn the first rounds
/// sent, and frames given back after those (for the suspend) are still
/// there, in its P2M list as the restore rewrote it, and counted in the
/// domain's pages. Taking them again would take a second frame for each
/// (past the domain's maximum, or lost to it).
pub fn keep_populated(pool: &mut FramePool) -> usize {
    let mut kept = 0;
    let nr_pages = mm::start_info().nr_pages;
    // The ballooned pfns not yet looked at: the walk ends at the last one.
    let mut left = pool.out.len();
    let mut pfn = 0;
    while left > 0 && pfn < nr_pages {
        if pool.out.contains(pfn) {
            left -= 1;
            let mfn = mm::pfn_to_mfn(pfn).unwrap_or(INVALID_MFN);
            // Ours only if Xen's M2P names the same pfn.
            if mfn != INVALID_MFN && mm::mfn_to_pfn(mfn) == Some(pfn) {
                pool.out.remove(pfn);
                pool.free.insert(pfn);
                kept += 1;
            }
        }
        pfn += 1;
    }
    kept
}
