//! Following the toolstack's memory target (`xl mem-set` writes the
//! domain's `memory/target`, in KiB): frames the kernel does not need go
//! back to Xen, and come back when the target rises again.
//!
//! Only free frames of the pool go, and never the last
//! [`RESERVE_FRAMES`] of them: what the kernel and its processes hold is
//! never taken. A target below that is followed as far as it can be, and
//! said once. The heap is not ballooned. The pool keeps which frames are
//! out (a bit each), so a domain ballooned far down costs no heap.
//!
//! A suspend gives back the same way ([`give_for_suspend`]): the
//! toolstack saves every frame the domain holds, and ours holds mostly
//! free ones. After it ([`take_after_suspend`]) the domain takes as many
//! again, and the `memory/target` watch, which fires again in a new
//! domain, moves it to the target from there.

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
    /// Frames given back for the suspend in progress, to be taken again.
    for_suspend: usize,
}

static BALLOON: Mutex<Balloon> = Mutex::new(Balloon {
    said_short: None,
    given_total: 0,
    taken_total: 0,
    for_suspend: 0,
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

/// Gives every free frame of the pool back to Xen but [`RESERVE_FRAMES`]
/// (the resume itself takes none; they are what the domain runs with if
/// the new host gives none back), just before the suspend. Returns how
/// many went, and Xen's error if it refused some.
pub fn give_for_suspend() -> (usize, Option<hal::hypercall::XenError>) {
    let mut b = BALLOON.lock();
    let (given, refused) = frames::with_pool(|pool| {
        let can = pool.len().saturating_sub(RESERVE_FRAMES);
        balloon::give_back(pool, can)
    })
    .unwrap_or((0, None));
    b.given_total += given as u64;
    b.for_suspend += given;
    (given, refused)
}

/// What taking the frames again after a suspend did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfterSuspend {
    /// Frames given back for the suspend.
    pub given: usize,
    /// Ballooned frames the domain held again without asking (a live
    /// migration's destination kept what its first rounds had sent).
    pub there: usize,
    /// Frames Xen gave again, and those it did not (they stay out).
    pub taken: usize,
    pub short: usize,
    pub refused: Option<hal::hypercall::XenError>,
}

/// Takes again, after the suspend (a new domain or a cancelled suspend),
/// the frames [`give_for_suspend`] gave: first those the domain holds
/// already, then from Xen. What the host refuses stays out, counted.
pub fn take_after_suspend() -> AfterSuspend {
    let mut b = BALLOON.lock();
    let mut o = AfterSuspend {
        given: core::mem::take(&mut b.for_suspend),
        ..AfterSuspend::default()
    };
    frames::with_pool(|pool| {
        o.there = balloon::keep_populated(pool);
        let want = o.given.saturating_sub(o.there).min(pool.ballooned());
        (o.taken, o.refused) = balloon::take_back(pool, want);
        o.short = want - o.taken;
    });
    b.taken_total += (o.there + o.taken) as u64;
    o
}

/// Frames given back to Xen now, and given and taken since boot.
pub fn counts() -> (usize, u64, u64) {
    let b = BALLOON.lock();
    let out = frames::with_pool(|p| p.ballooned()).unwrap_or(0);
    (out, b.given_total, b.taken_total)
}
