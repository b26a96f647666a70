//! The in-guest test suite: runs under real Xen and checks the event system
//! calls end to end (timers, wait trees, retire, cancel, quotas, ownership).
//! Prints one line per test and a closing `N passed, M failed` line, which
//! the host's rig tests read.

use crate::sys;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use events::{Element, EventId, Status, Tree, Value};
use guest::syserr::SysError;

pub const PROCESSES: &[super::ProcessSpec] = &[("selftest", run_all)];

const MS: u64 = 1_000_000;

type TestResult = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// A named in-guest test.
type Test = (&'static str, fn() -> TestResult);

const TESTS: &[Test] = &[
    ("time_never_goes_backwards", time_never_goes_backwards),
    (
        "timers_fire_in_deadline_order_never_early",
        timers_fire_in_order_never_early,
    ),
    (
        "and_tree_wakes_once_after_last_leaf",
        and_tree_wakes_once_after_last_leaf,
    ),
    (
        "or_tree_wakes_once_on_first_leaf",
        or_tree_wakes_once_on_first_leaf,
    ),
    (
        "threshold_tree_wakes_once_on_kth_leaf",
        threshold_tree_wakes_once_on_kth_leaf,
    ),
    (
        "satisfied_tree_returns_without_switch",
        satisfied_tree_returns_without_switch,
    ),
    ("retire_semantics", retire_semantics),
    (
        "block_and_retire_returns_value",
        block_and_retire_returns_value,
    ),
    ("cancel_semantics", cancel_semantics),
    (
        "invalid_trees_get_named_statuses",
        invalid_trees_get_named_statuses,
    ),
    (
        "event_quota_gives_named_status",
        event_quota_gives_named_status,
    ),
    ("foreign_events_are_refused", foreign_events_are_refused),
];

fn run_all() {
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in TESTS {
        match test() {
            Ok(()) => {
                passed += 1;
                let _ = sys::print(&format!("selftest: {name} ... ok"));
            }
            Err(why) => {
                failed += 1;
                let _ = sys::print(&format!("selftest: {name} ... FAILED: {why}"));
            }
        }
    }
    let _ = sys::print(&format!("selftest: {passed} passed, {failed} failed"));
}

/// Deadlines in the tests are this far past the moment they start, so that
/// setting up several beeps (slow under QEMU) ends before the first fires.
const SETUP_MS: u64 = 20;

fn beeps(start: u64, delays_ms: &[u64]) -> Result<Vec<EventId>, String> {
    delays_ms
        .iter()
        .map(|d| sys::beep(start + d * MS).map_err(|e| format!("beep: {e}")))
        .collect()
}

fn fire_time(id: EventId) -> Result<u64, String> {
    match sys::retire(id) {
        Ok(r) if r.status == Status::Ok => match r.value {
            Value::Word(t) => Ok(t),
            other => Err(format!("beep value {other:?}")),
        },
        Ok(r) => Err(format!("beep retired with {}", r.status)),
        Err(e) => Err(format!("retire: {e}")),
    }
}

/// (wakes, context switches) so far, kernel-wide.
fn wake_counters() -> Result<(u64, u64), String> {
    let (sched, events) = sys::kernel_stats().map_err(|e| format!("kernel_stats: {e}"))?;
    Ok((events.wakes, sched.context_switches))
}

fn spec(tree: Tree) -> Result<Vec<Element>, String> {
    tree.to_spec().map_err(|e| format!("to_spec: {e}"))
}

fn time_never_goes_backwards() -> TestResult {
    let mut last = sys::get_time();
    for i in 0..20_000 {
        let now = sys::get_time();
        ensure!(now >= last, "reading {i}: {now} after {last}");
        last = now;
    }
    Ok(())
}

fn timers_fire_in_order_never_early() -> TestResult {
    let start = sys::get_time() + SETUP_MS * MS;
    let delays = [12u64, 3, 9, 1, 6, 6];
    let ids = beeps(start, &delays)?;
    sys::block(&spec(Tree::all(ids.iter().copied()))?).map_err(|e| format!("block: {e}"))?;
    let mut fired: Vec<(u64, u64)> = Vec::new();
    for (id, d) in ids.iter().zip(delays) {
        let t = fire_time(*id)?;
        let deadline = start + d * MS;
        ensure!(
            t >= deadline,
            "the +{d} ms beep fired {} ns early",
            deadline - t
        );
        fired.push((deadline, t));
    }
    fired.sort();
    ensure!(
        fired.windows(2).all(|w| w[0].1 <= w[1].1),
        "fire times out of deadline order: {fired:?}"
    );
    Ok(())
}

fn and_tree_wakes_once_after_last_leaf() -> TestResult {
    let start = sys::get_time() + SETUP_MS * MS;
    let ids = beeps(start, &[4, 8, 2])?;
    let before = wake_counters()?;
    let leaves =
        sys::block(&spec(Tree::all(ids.iter().copied()))?).map_err(|e| format!("block: {e}"))?;
    let woke = sys::get_time();
    let after = wake_counters()?;
    ensure!(
        after.0 - before.0 == 1,
        "{} wakes for one AND tree",
        after.0 - before.0
    );
    ensure!(
        after.1 - before.1 == 1,
        "{} context switches for one AND tree",
        after.1 - before.1
    );
    ensure!(
        woke >= start + 8 * MS,
        "woke before the last leaf's deadline"
    );
    ensure!(
        leaves.len() == 3,
        "{} leaves reported complete, want 3",
        leaves.len()
    );
    for id in ids {
        fire_time(id)?;
    }
    Ok(())
}

fn or_tree_wakes_once_on_first_leaf() -> TestResult {
    let start = sys::get_time() + SETUP_MS * MS;
    let ids = beeps(start, &[40, 3, 60])?;
    let before = wake_counters()?;
    let leaves =
        sys::block(&spec(Tree::any(ids.iter().copied()))?).map_err(|e| format!("block: {e}"))?;
    let woke = sys::get_time();
    let after = wake_counters()?;
    ensure!(
        after.0 - before.0 == 1,
        "{} wakes for one OR tree",
        after.0 - before.0
    );
    ensure!(woke >= start + 3 * MS, "woke before the first deadline");
    ensure!(
        leaves == [ids[1]],
        "leaves reported {leaves:?}, want only the +3 ms beep"
    );
    let listing = sys::list().map_err(|e| format!("list: {e}"))?;
    ensure!(
        listing.pending.contains(&ids[0]) && listing.pending.contains(&ids[2]),
        "later beeps not pending"
    );
    fire_time(ids[1])?;
    for id in [ids[0], ids[2]] {
        sys::cancel(id).map_err(|e| format!("cancel: {e}"))?;
        sys::retire(id).map_err(|e| format!("retire cancelled: {e}"))?;
    }
    Ok(())
}

fn threshold_tree_wakes_once_on_kth_leaf() -> TestResult {
    let start = sys::get_time() + SETUP_MS * MS;
    let ids = beeps(start, &[2, 30, 5, 60])?;
    let before = wake_counters()?;
    let leaves = sys::block(&spec(Tree::at_least(2, ids.iter().copied()))?)
        .map_err(|e| format!("block: {e}"))?;
    let woke = sys::get_time();
    let after = wake_counters()?;
    ensure!(
        after.0 - before.0 == 1,
        "{} wakes for one threshold tree",
        after.0 - before.0
    );
    ensure!(woke >= start + 5 * MS, "woke before the second deadline");
    let mut want = [ids[0], ids[2]];
    want.sort();
    ensure!(
        leaves == want,
        "leaves reported {leaves:?}, want the +2 and +5 ms beeps"
    );
    for id in [ids[0], ids[2]] {
        fire_time(id)?;
    }
    for id in [ids[1], ids[3]] {
        sys::cancel(id).map_err(|e| format!("cancel: {e}"))?;
        sys::retire(id).map_err(|e| format!("retire: {e}"))?;
    }
    Ok(())
}

fn satisfied_tree_returns_without_switch() -> TestResult {
    // A beep whose deadline has passed completes at the beep's own
    // system-call return point.
    let done = beeps(sys::get_time(), &[0])?;
    let before = wake_counters()?;
    let leaves =
        sys::block(&spec(Tree::any(done.iter().copied()))?).map_err(|e| format!("block: {e}"))?;
    let after = wake_counters()?;
    ensure!(leaves == done, "satisfied tree reported {leaves:?}");
    ensure!(
        after == before,
        "blocking on a satisfied tree switched context ({before:?} -> {after:?})"
    );
    fire_time(done[0])?;
    Ok(())
}

fn retire_semantics() -> TestResult {
    let id = beeps(sys::get_time(), &[20])?[0];
    ensure!(
        sys::retire(id) == Err(SysError::Event(Status::NotComplete)),
        "retire of a pending event gave {:?}",
        sys::retire(id)
    );
    let r = sys::block_and_retire(id).map_err(|e| format!("block_and_retire: {e}"))?;
    ensure!(r.status == Status::Ok, "status {}", r.status);
    let again = sys::retire(id);
    ensure!(
        again == Err(SysError::Event(Status::UnknownEvent)),
        "second retire gave {again:?}"
    );
    ensure!(
        sys::retire(EventId::NULL).is_err(),
        "retire of the null id succeeded"
    );
    Ok(())
}

fn block_and_retire_returns_value() -> TestResult {
    let start = sys::get_time() + SETUP_MS * MS;
    let id = beeps(start, &[5])?[0];
    let r = sys::block_and_retire(id).map_err(|e| format!("block_and_retire: {e}"))?;
    match r.value {
        Value::Word(t) => ensure!(t >= start + 5 * MS, "fired early"),
        other => return Err(format!("value {other:?}")),
    }
    Ok(())
}

fn cancel_semantics() -> TestResult {
    let start = sys::get_time() + SETUP_MS * MS;
    let ids = beeps(start, &[3, 6])?;
    sys::cancel(ids[0]).map_err(|e| format!("cancel: {e}"))?;
    // Wait past the cancelled deadline: its completion must be ignored.
    sys::block_and_retire(ids[1]).map_err(|e| format!("block_and_retire: {e}"))?;
    let r = sys::retire(ids[0]).map_err(|e| format!("retire cancelled: {e}"))?;
    ensure!(
        r.status == Status::Cancelled,
        "cancelled event retired with {}",
        r.status
    );
    ensure!(
        r.value == Value::Empty,
        "cancelled event carried {:?}",
        r.value
    );
    let unknown = sys::cancel(ids[0]);
    ensure!(
        unknown == Err(SysError::Event(Status::UnknownEvent)),
        "cancel of a retired id gave {unknown:?}"
    );
    Ok(())
}

fn invalid_trees_get_named_statuses() -> TestResult {
    let ids = beeps(sys::get_time(), &[50, 51])?;
    let (lo, hi) = if ids[0].0 < ids[1].0 {
        (ids[0], ids[1])
    } else {
        (ids[1], ids[0])
    };
    let root = Element::node(Element::NO_PARENT, 1);
    let cases: [(&str, Vec<Element>, Status); 4] = [
        (
            "unsorted leaves",
            [Element::leaf(hi, 2), Element::leaf(lo, 2), root].into(),
            Status::LeafUnsorted,
        ),
        (
            "count too big",
            [Element::leaf(lo, 1), Element::node(Element::NO_PARENT, 2)].into(),
            Status::CountOutOfRange,
        ),
        (
            "bad parent",
            [Element::leaf(lo, 7), root].into(),
            Status::BadParent,
        ),
        (
            "unknown event",
            [Element::leaf(EventId(0x1234_5678), 1), root].into(),
            Status::UnknownEvent,
        ),
    ];
    for (what, spec, want) in cases {
        let got = sys::block(&spec);
        ensure!(
            got == Err(SysError::Event(want)),
            "{what}: got {got:?}, want {want}"
        );
    }
    let huge = alloc::vec![root; 5000];
    let got = sys::block(&huge);
    ensure!(
        got == Err(SysError::Event(Status::TreeTooLarge)),
        "5000 elements: got {got:?}"
    );
    for id in ids {
        sys::cancel(id).map_err(|e| format!("cancel: {e}"))?;
        sys::retire(id).map_err(|e| format!("retire: {e}"))?;
    }
    Ok(())
}

fn event_quota_gives_named_status() -> TestResult {
    let far = sys::get_time() + 3_600_000 * MS;
    let mut ids = Vec::new();
    let outcome = loop {
        match sys::beep(far) {
            Ok(id) => ids.push(id),
            Err(e) => break e,
        }
        if ids.len() > 100_000 {
            return Err(String::from("no quota after 100000 events"));
        }
    };
    let count = ids.len();
    for id in ids {
        sys::cancel(id).map_err(|e| format!("cancel: {e}"))?;
        sys::retire(id).map_err(|e| format!("retire: {e}"))?;
    }
    ensure!(
        outcome == SysError::Event(Status::QuotaExceeded),
        "beep #{count} failed with {outcome}"
    );
    // After cleaning up, the quota is free again.
    let id = sys::beep(far).map_err(|e| format!("beep after cleanup: {e}"))?;
    sys::cancel(id)
        .and_then(|_| sys::retire(id))
        .map_err(|e| format!("cleanup: {e}"))?;
    Ok(())
}

/// The peer process's event, for the ownership test (linked-in apps share
/// the kernel's address space; this is the test's own channel, not an API).
static PEER_EVENT: AtomicU64 = AtomicU64::new(0);

fn peer() {
    if let Ok(id) = sys::beep(sys::get_time() + 3_600_000 * MS) {
        PEER_EVENT.store(id.0, Ordering::SeqCst);
        // Keep the event alive until the test has tried to touch it.
        let pacer = sys::beep(sys::get_time() + 20 * MS);
        if let Ok(p) = pacer {
            let _ = sys::block_and_retire(p);
        }
        let _ = sys::cancel(id).and_then(|_| sys::retire(id));
    }
    sys::exit(0)
}

fn foreign_events_are_refused() -> TestResult {
    sys::spawn("selftest-peer", peer).map_err(|e| format!("spawn: {e}"))?;
    let me = sys::get_pid().map_err(|e| format!("get_pid: {e}"))?;
    // Let the peer run and create its event.
    let pacer = beeps(sys::get_time(), &[5])?;
    sys::block_and_retire(pacer[0]).map_err(|e| format!("pacer: {e}"))?;
    let theirs = EventId(PEER_EVENT.load(Ordering::SeqCst));
    ensure!(
        !theirs.is_null(),
        "the peer (we are pid {}) created no event",
        me.0
    );
    let not_owner = Err(SysError::Event(Status::NotOwner));
    ensure!(
        sys::retire(theirs).map(|_| ()) == not_owner,
        "retire of a foreign event was not refused"
    );
    ensure!(
        sys::cancel(theirs) == not_owner,
        "cancel of a foreign event was not refused"
    );
    let got = sys::block(&[
        Element::leaf(theirs, 1),
        Element::node(Element::NO_PARENT, 1),
    ])
    .map(|_| ());
    ensure!(got == not_owner, "block on a foreign event gave {got:?}");
    Ok(())
}
