//! Following the toolstack's memory target (`xl mem-set` writes the
//! domain's `memory/target`, in KiB): frames the kernel does not need go
//! back to Xen, and come back when the target rises again.
//!
//! Only free frames of the pool go, and never the last
//! [`RESERVE_FRAMES`] of them: what the kernel and its processes hold is
//! never taken. A target below that is followed as far as it can be, and
//! said once. The heap is not ballooned. The pool keeps which frames are
//! out (a bit each), so a domain ballooned far down costs no heap.

use crate::mm::frames;
use hal::balloon;
use spin::Mutex;

/// Free frames the balloon always leaves in the pool: a few new processes'
/// tables and pages (a process costs 5 table frames and its own pages).
pub const RESERVE_FRAMES: usize = 64;

struct Balloon {
    /// The last target that could not be reached, already said.
    said_short: Option<u64>,
    given_total: u64,
    taken_total: u64,
}

static BALLOON: Mutex<Balloon> = Mutex::new(Balloon {
    said_short: None,
    given_total: 0,
    taken_total: 0,
});

/// What following a target did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Frames given back to Xen and taken again, this time.
    pub given: usize,
    pub taken: usize,
    /// Frames the target asked for that could not be given (or taken).
    pub short: usize,
    /// Whether that shortfall is new (to be said once).
    pub say_short: bool,
    /// Frames the domain holds now, and frames given back in all.
    pub holding: u64,
    pub out: usize,
    /// Xen refused the hypercall (its error), if it did.
    pub refused: Option<hal::hypercall::XenError>,
}

/// Moves the domain's reservation towards `target_pages` (4 KiB frames).
pub fn follow(target_pages: u64) -> Outcome {
    let nr_pages = hal::mm::start_info().nr_pages;
    let mut b = BALLOON.lock();
    let mut o = Outcome::default();
    frames::with_pool(|pool| {
        let holding = nr_pages - pool.ballooned() as u64;
        if target_pages < holding {
            let want = (holding - target_pages) as usize;
            let can = pool.len().saturating_sub(RESERVE_FRAMES).min(want);
            (o.given, o.refused) = balloon::give_back(pool, can);
            o.short = want - o.given;
        } else if target_pages > holding {
            let want = ((target_pages - holding) as usize).min(pool.ballooned());
            (o.taken, o.refused) = balloon::take_back(pool, want);
            o.short = want - o.taken;
        }
        o.out = pool.ballooned();
    });
    b.given_total += o.given as u64;
    b.taken_total += o.taken as u64;
    if o.short > 0 {
        o.say_short = b.said_short != Some(target_pages);
        b.said_short = Some(target_pages);
    } else {
        b.said_short = None;
    }
    o.holding = nr_pages - o.out as u64;
    o
}

/// Frames given back to Xen now, and given and taken since boot.
pub fn counts() -> (usize, u64, u64) {
    let b = BALLOON.lock();
    let out = frames::with_pool(|p| p.ballooned()).unwrap_or(0);
    (out, b.given_total, b.taken_total)
}
