//! Giving frames back to Xen and taking them again: ballooning, which is
//! how the toolstack (`xl mem-set`) moves memory between domains. A PV
//! guest keeps its own P2M list, so a pfn given back has its entry set to
//! `INVALID_MFN` (a save skips it) and a pfn taken again gets the new
//! machine frame in its entry and in Xen's M2P table.
//!
//! Only pool [`Frame`]s can go: the kernel never maps them, so giving one
//! away cannot pull memory out from under a Rust object. A frame given
//! back becomes a [`Ballooned`] pfn, which only [`take_back`] turns into a
//! frame again.

use crate::hypercall::{memory_op, mmu_update, XenError};
use crate::mm::{self, Frame};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use xen::public::{
    shared_info as layout, xenmem, MemoryReservation, MmuUpdate, DOMID_SELF, INVALID_MFN,
    MMU_MACHPHYS_UPDATE, PAGE_SHIFT,
};

/// A pfn whose frame was given back to Xen: nothing is behind it.
#[derive(Debug, PartialEq, Eq)]
pub struct Ballooned {
    pfn: u64,
}

impl Ballooned {
    pub fn pfn(&self) -> u64 {
        self.pfn
    }
}

/// The P2M list is changing (odd) or changed (even again): a live
/// migration that sees the count move sends the list again.
fn p2m_generation_step() {
    if let Some(si) = crate::shared_info() {
        let g = si.load_u64(layout::ARCH_P2M_GENERATION, Ordering::Relaxed);
        si.store_u64(
            layout::ARCH_P2M_GENERATION,
            g.wrapping_add(1),
            Ordering::Release,
        );
    }
}

fn reservation(list: *mut u64, n: usize) -> MemoryReservation {
    MemoryReservation {
        extent_start: list as u64,
        nr_extents: n as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    }
}

/// What a balloon hypercall did: what moved, what did not (Xen handles a
/// prefix of the list), and its error if it refused.
pub type Moved<A, B> = (Vec<A>, Vec<B>, Option<XenError>);

/// Gives `frames` back to Xen. Returns the pfns given and the frames Xen
/// did not take.
pub fn give_back(frames: Vec<Frame>) -> Moved<Ballooned, Frame> {
    let mut mfns: Vec<u64> = frames.iter().map(Frame::mfn).collect();
    let mut r = reservation(mfns.as_mut_ptr(), mfns.len());
    p2m_generation_step();
    // SAFETY: the list is live for its length; pool frames are mapped by
    // nothing of the kernel's, and the caller owned them (moved in).
    let (done, error) = match unsafe { memory_op(xenmem::DECREASE_RESERVATION, &mut r) } {
        Ok(n) => ((n as usize).min(frames.len()), None),
        Err(e) => (0, Some(e)),
    };
    let mut given = Vec::with_capacity(done);
    let mut kept = Vec::new();
    for (i, frame) in frames.into_iter().enumerate() {
        if i < done {
            mm::set_p2m(frame.pfn(), INVALID_MFN);
            given.push(Ballooned { pfn: frame.pfn() });
        } else {
            kept.push(frame);
        }
    }
    p2m_generation_step();
    (given, kept, error)
}

/// Asks Xen for frames for `pfns`. Returns the frames it gave, and the
/// pfns still without one (none are given when the domain is at its
/// maximum).
pub fn take_back(pfns: Vec<Ballooned>) -> Moved<Frame, Ballooned> {
    let mut mfns = alloc::vec![0u64; pfns.len()];
    let mut r = reservation(mfns.as_mut_ptr(), mfns.len());
    // SAFETY: Xen writes at most `nr_extents` frame numbers into the list.
    let (done, mut error) = match unsafe { memory_op(xenmem::INCREASE_RESERVATION, &mut r) } {
        Ok(n) => ((n as usize).min(pfns.len()), None),
        Err(e) => (0, Some(e)),
    };
    p2m_generation_step();
    let m2p: Vec<MmuUpdate> = pfns[..done]
        .iter()
        .zip(&mfns)
        .map(|(b, mfn)| MmuUpdate {
            ptr: (mfn << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE,
            val: b.pfn,
        })
        .collect();
    // SAFETY: an M2P update changes no mapping, only Xen's table of which
    // pfn a frame of ours is; the frames are the ones Xen just gave.
    if let Err(e) = unsafe { mmu_update(&m2p) } {
        error = Some(e);
    }
    let mut frames = Vec::with_capacity(done);
    let mut still = Vec::new();
    for (i, b) in pfns.into_iter().enumerate() {
        if i < done {
            mm::set_p2m(b.pfn, mfns[i]);
            frames.push(Frame::from_pfn(b.pfn));
        } else {
            still.push(b);
        }
    }
    p2m_generation_step();
    (frames, still, error)
}
