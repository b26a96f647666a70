//! The in-guest test suite: runs under real Xen and checks the event system
//! calls end to end (timers, wait trees, retire, cancel, quotas, ownership).
//! Prints one line per test and a closing `N passed, M failed` line, which
//! the host's rig tests read.

use crate::status::SysError;
use crate::syscall as sys;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use events::{Element, EventId, Status, Tree, Value};

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
        "wall_clock_is_plausible_and_advances",
        wall_clock_is_plausible_and_advances,
    ),
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
    (
        "xenstore_read_write_directory_rm",
        xenstore_read_write_directory_rm,
    ),
    ("xenstore_errors_are_named", xenstore_errors_are_named),
    (
        "xenstore_transactions_commit_and_abort",
        xenstore_transactions_commit_and_abort,
    ),
    (
        "xenstore_watch_firings_are_events",
        xenstore_watch_firings_are_events,
    ),
    ("pages_bind_write_read_unbind", pages_bind_write_read_unbind),
    (
        "page_capabilities_are_checked",
        page_capabilities_are_checked,
    ),
    ("grant_round_trip_with_dom0", grant_round_trip_with_dom0),
    (
        "memory_pressure_revokes_oldest_page",
        memory_pressure_revokes_oldest_page,
    ),
    ("exit_releases_bound_pages", exit_releases_bound_pages),
    (
        "interdomain_event_channel_loop",
        interdomain_event_channel_loop,
    ),
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

fn wall_clock_is_plausible_and_advances() -> TestResult {
    let (s0, n0) = sys::wall_clock();
    // 2020-01-01 and 2100-01-01: dom0's clock comes from the host.
    ensure!(
        (1_577_836_800..4_102_444_800).contains(&s0),
        "wall clock reads {s0} s"
    );
    ensure!(n0 < 1_000_000_000, "nanoseconds {n0}");
    wait(sys::beep(sys::get_time() + 20 * MS), "pause")?;
    let (s1, n1) = sys::wall_clock();
    let elapsed = (s1 - s0) as i64 * 1_000_000_000 + n1 as i64 - n0 as i64;
    ensure!(
        elapsed >= 20_000_000,
        "wall clock advanced {elapsed} ns over a 20 ms beep"
    );
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
/// The peer process's page capability, for the capability test.
static PEER_PAGE: AtomicU64 = AtomicU64::new(0);
/// Set when the tests no longer need the peer.
static PEER_RELEASED: AtomicBool = AtomicBool::new(false);

fn peer() {
    let page = sys::page_alloc().ok();
    if let Some((cap, _)) = page {
        PEER_PAGE.store(cap.0, Ordering::SeqCst);
    }
    let event = sys::beep(sys::get_time() + 3_600_000 * MS).ok();
    if let Some(id) = event {
        PEER_EVENT.store(id.0, Ordering::SeqCst);
    }
    // Stay alive (bounded: 10 s) until the tests that poke at this
    // process's event and page are done.
    for _ in 0..2000 {
        if PEER_RELEASED.load(Ordering::SeqCst) {
            break;
        }
        if let Ok(p) = sys::beep(sys::get_time() + 5 * MS) {
            let _ = sys::block_and_retire(p);
        }
    }
    // Leave nothing behind, so the kernel's counters add up.
    if let Some(id) = event {
        let _ = sys::cancel(id).and_then(|_| sys::retire(id));
    }
    if let Some((cap, revoked)) = page {
        let _ = sys::page_free(cap).and_then(|_| sys::retire(revoked));
    }
    sys::exit(0)
}

fn foreign_events_are_refused() -> TestResult {
    sys::spawn("selftest-peer", peer).map_err(|e| format!("spawn: {e}"))?;
    let me = sys::get_pid().map_err(|e| format!("get_pid: {e}"))?;
    // Let the peer run until it has created its page and event (bounded).
    for _ in 0..200 {
        if PEER_EVENT.load(Ordering::SeqCst) != 0 {
            break;
        }
        wait(sys::beep(sys::get_time() + 5 * MS), "pacer")?;
    }
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

/// Waits for an event and retires it; `Ok` only for a successful completion.
fn wait(id: Result<EventId, SysError>, what: &str) -> Result<Value, String> {
    super::wait_ok(id, what)
}

/// Waits for an event and returns its completion status.
fn wait_status(id: Result<EventId, SysError>, what: &str) -> Result<Status, String> {
    let id = id.map_err(|e| format!("{what}: {e}"))?;
    Ok(sys::block_and_retire(id)
        .map_err(|e| format!("{what}: block_and_retire: {e}"))?
        .status)
}

const ENOENT: Status = Status::Remote(2);
const EAGAIN: Status = Status::Remote(11);
const EACCES: Status = Status::Remote(13);

fn xenstore_read_write_directory_rm() -> TestResult {
    let domid = wait(sys::xs_read("domid", 0), "read domid")?;
    let domid = match &domid {
        Value::Bytes(b) => core::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<u32>().ok()),
        _ => None,
    };
    ensure!(domid.is_some_and(|d| d > 0), "domid read as {domid:?}");
    wait(sys::xs_write("data/ethos-test/a", b"hello", 0), "write")?;
    let v = wait(sys::xs_read("data/ethos-test/a", 0), "read back")?;
    ensure!(v == Value::Bytes(b"hello".to_vec()), "read back {v:?}");
    let dir = wait(sys::xs_directory("data/ethos-test", 0), "directory")?;
    let Value::Bytes(names) = dir else {
        return Err(format!("directory gave {dir:?}"));
    };
    ensure!(
        xen::xenstore::directory_entries(&names).any(|n| n == b"a"),
        "directory lacks a: {names:?}"
    );
    wait(sys::xs_rm("data/ethos-test", 0), "rm")?;
    let gone = wait_status(sys::xs_read("data/ethos-test/a", 0), "read removed")?;
    ensure!(gone == ENOENT, "read of a removed key gave {gone}");
    Ok(())
}

fn xenstore_errors_are_named() -> TestResult {
    let missing = wait_status(sys::xs_read("data/no/such/key", 0), "read missing")?;
    ensure!(missing == ENOENT, "missing key gave {missing}");
    let denied = wait_status(
        sys::xs_write("/local/domain/0/ethos-test", b"x", 0),
        "write dom0's key",
    )?;
    ensure!(denied == EACCES, "writing dom0's tree gave {denied}");
    let nul = sys::xs_read("data/a\0b", 0);
    ensure!(
        nul == Err(SysError::InvalidArgument),
        "path with NUL gave {nul:?}"
    );
    let huge = alloc::vec![b'x'; 5000];
    let big = sys::xs_write("data/big", &huge, 0);
    ensure!(
        big == Err(SysError::TooLarge),
        "5000-byte value gave {big:?}"
    );
    // A failed call leaves no event behind.
    let listing = sys::list().map_err(|e| format!("list: {e}"))?;
    ensure!(
        listing.pending.is_empty() && listing.completed.is_empty(),
        "leftover events: {listing:?}"
    );
    Ok(())
}

/// Runs `body` in a transaction, starting over while the commit reports EAGAIN.
fn transaction(body: impl Fn(u32) -> TestResult) -> Result<u32, String> {
    for attempt in 1..=10 {
        let tx = match wait(sys::xs_transaction_start(), "transaction start")? {
            Value::Word(tx) => tx as u32,
            other => return Err(format!("transaction id {other:?}")),
        };
        body(tx)?;
        match wait_status(sys::xs_transaction_end(tx, true), "commit")? {
            Status::Ok => return Ok(attempt),
            s if s == EAGAIN => continue,
            s => return Err(format!("commit gave {s}")),
        }
    }
    Err(String::from("10 commits in a row met EAGAIN"))
}

fn xenstore_transactions_commit_and_abort() -> TestResult {
    transaction(|tx| {
        wait(sys::xs_write("data/ethos-tx/x", b"1", tx), "write x in tx")?;
        wait(sys::xs_write("data/ethos-tx/y", b"2", tx), "write y in tx")?;
        Ok(())
    })?;
    let x = wait(sys::xs_read("data/ethos-tx/x", 0), "read x")?;
    let y = wait(sys::xs_read("data/ethos-tx/y", 0), "read y")?;
    ensure!(
        x == Value::Bytes(b"1".to_vec()) && y == Value::Bytes(b"2".to_vec()),
        "after commit: {x:?} {y:?}"
    );
    // An aborted transaction changes nothing.
    let tx = match wait(sys::xs_transaction_start(), "start")? {
        Value::Word(tx) => tx as u32,
        other => return Err(format!("transaction id {other:?}")),
    };
    wait(sys::xs_write("data/ethos-tx/z", b"3", tx), "write z in tx")?;
    wait(sys::xs_transaction_end(tx, false), "abort")?;
    let z = wait_status(sys::xs_read("data/ethos-tx/z", 0), "read z")?;
    ensure!(z == ENOENT, "aborted write is visible: {z}");
    wait(sys::xs_rm("data/ethos-tx", 0), "cleanup")?;
    Ok(())
}

fn xenstore_watch_firings_are_events() -> TestResult {
    let (watch, ack) = sys::xs_watch("data/ethos-watch").map_err(|e| format!("watch: {e}"))?;
    wait(Ok(ack), "watch registration")?;
    // xenstored fires every new watch once.
    let first = wait(sys::xs_watch_next(watch), "initial firing")?;
    ensure!(
        first == Value::Bytes(b"data/ethos-watch".to_vec()),
        "initial firing named {first:?}"
    );
    let next = sys::xs_watch_next(watch).map_err(|e| format!("watch_next: {e}"))?;
    let twice = sys::xs_watch_next(watch);
    ensure!(
        twice == Err(SysError::Busy),
        "a second waiter on one watch gave {twice:?}"
    );
    wait(
        sys::xs_write("data/ethos-watch/k", b"v", 0),
        "write under the watch",
    )?;
    let fired = wait(Ok(next), "firing after write")?;
    ensure!(
        fired == Value::Bytes(b"data/ethos-watch/k".to_vec()),
        "firing named {fired:?}"
    );
    let pending = sys::xs_watch_next(watch).map_err(|e| format!("watch_next: {e}"))?;
    wait(sys::xs_unwatch(watch), "unwatch")?;
    let cancelled = sys::retire(pending).map_err(|e| format!("retire: {e}"))?;
    ensure!(
        cancelled.status == Status::Cancelled,
        "waiter of a removed watch: {}",
        cancelled.status
    );
    let stale = sys::xs_watch_next(watch);
    ensure!(
        stale == Err(SysError::BadHandle),
        "removed watch gave {stale:?}"
    );
    wait(sys::xs_rm("data/ethos-watch", 0), "cleanup")?;
    Ok(())
}

fn pages_bind_write_read_unbind() -> TestResult {
    let (cap, revoked) = sys::page_alloc().map_err(|e| format!("page_alloc: {e}"))?;
    let base = sys::region_base().map_err(|e| format!("region_base: {e}"))?;
    let unbound = sys::page_write(cap, 0, b"x");
    ensure!(
        unbound == Err(SysError::NotBound),
        "write to an unbound page gave {unbound:?}"
    );
    sys::page_bind(cap, base).map_err(|e| format!("bind: {e}"))?;
    let mut fresh = [0xffu8; 64];
    sys::page_read(cap, 4000, &mut fresh).map_err(|e| format!("read: {e}"))?;
    ensure!(fresh.iter().all(|&b| b == 0), "a new page is not zeroed");
    sys::page_write(cap, 100, b"ethos page").map_err(|e| format!("write: {e}"))?;
    let mut back = [0u8; 10];
    sys::page_read(cap, 100, &mut back).map_err(|e| format!("read back: {e}"))?;
    ensure!(&back == b"ethos page", "read back {back:?}");
    let past_end = sys::page_write(cap, 4090, b"0123456789");
    ensure!(
        past_end == Err(SysError::BadAddress),
        "write past the page gave {past_end:?}"
    );
    sys::page_unbind(cap).map_err(|e| format!("unbind: {e}"))?;
    let after = sys::page_read(cap, 100, &mut back);
    ensure!(
        after == Err(SysError::NotBound),
        "read after unbind gave {after:?}"
    );
    // Rebinding elsewhere shows the same frame.
    sys::page_bind(cap, base + 8192).map_err(|e| format!("rebind: {e}"))?;
    sys::page_read(cap, 100, &mut back).map_err(|e| format!("read rebound: {e}"))?;
    ensure!(&back == b"ethos page", "rebound page holds {back:?}");
    sys::page_free(cap).map_err(|e| format!("free: {e}"))?;
    let r = sys::retire(revoked).map_err(|e| format!("retire revocation: {e}"))?;
    ensure!(r.status == Status::Ok, "revocation event: {}", r.status);
    Ok(())
}

fn page_capabilities_are_checked() -> TestResult {
    let base = sys::region_base().map_err(|e| format!("region_base: {e}"))?;
    let forged = sys::page_bind(crate::mm::pages::PageCap(0x0000_0001_dead_beef), base);
    ensure!(
        forged == Err(SysError::ForgedCapability),
        "forged cap gave {forged:?}"
    );
    let (cap, revoked) = sys::page_alloc().map_err(|e| format!("page_alloc: {e}"))?;
    let tampered = sys::page_bind(crate::mm::pages::PageCap(cap.0 ^ 1), base);
    ensure!(
        tampered == Err(SysError::ForgedCapability),
        "tampered cap gave {tampered:?}"
    );
    for bad in [base + 1, base - 4096, base + 512 * 4096, 0x40_0000] {
        let got = sys::page_bind(cap, bad);
        ensure!(
            got == Err(SysError::BadAddress),
            "bind at {bad:#x} gave {got:?}"
        );
    }
    sys::page_bind(cap, base).map_err(|e| format!("bind: {e}"))?;
    let twice = sys::page_bind(cap, base + 4096);
    ensure!(
        twice == Err(SysError::AlreadyBound),
        "double bind gave {twice:?}"
    );
    let (other, other_revoked) = sys::page_alloc().map_err(|e| format!("page_alloc: {e}"))?;
    let occupied = sys::page_bind(other, base);
    ensure!(
        occupied == Err(SysError::BadAddress),
        "binding over a bound address gave {occupied:?}"
    );
    sys::page_free(other).map_err(|e| format!("free: {e}"))?;
    sys::retire(other_revoked).map_err(|e| format!("retire: {e}"))?;
    sys::page_free(cap).map_err(|e| format!("free: {e}"))?;
    sys::retire(revoked).map_err(|e| format!("retire: {e}"))?;
    let stale = sys::page_bind(cap, base);
    ensure!(
        stale == Err(SysError::StaleCapability),
        "freed cap gave {stale:?}"
    );
    let theirs = crate::mm::pages::PageCap(PEER_PAGE.load(Ordering::SeqCst));
    ensure!(theirs.0 != 0, "the peer process made no page");
    let foreign = sys::page_bind(theirs, base);
    PEER_RELEASED.store(true, Ordering::SeqCst);
    ensure!(
        foreign == Err(SysError::ForeignCapability),
        "another process's cap gave {foreign:?}"
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The guest grants a page to dom0 and publishes the reference in
/// xenstore; the rig scenario maps it in dom0 (`shadowdaemon debug
/// grant-read`) and writes back what it read.
fn grant_round_trip_with_dom0() -> TestResult {
    const PATTERN: &[u8] = b"ethos grant test";
    let (cap, revoked) = sys::page_alloc().map_err(|e| format!("page_alloc: {e}"))?;
    let base = sys::region_base().map_err(|e| format!("region_base: {e}"))?;
    sys::page_bind(cap, base).map_err(|e| format!("bind: {e}"))?;
    sys::page_write(cap, 0, PATTERN).map_err(|e| format!("write: {e}"))?;
    let gref = sys::page_grant(cap, 0, true).map_err(|e| format!("grant: {e}"))?;
    let again = sys::page_grant(cap, 0, true);
    ensure!(
        again == Err(SysError::AlreadyGranted),
        "second grant gave {again:?}"
    );
    let (watch, ack) =
        sys::xs_watch("data/ethos-grant-result").map_err(|e| format!("watch: {e}"))?;
    wait(Ok(ack), "watch")?;
    wait(sys::xs_watch_next(watch), "initial firing")?;
    wait(
        sys::xs_write("data/ethos-grant", format!("{gref}").as_bytes(), 0),
        "publish gref",
    )?;
    // Wait for dom0's answer, or give up after 60 s: an OR tree.
    let answer = sys::xs_watch_next(watch).map_err(|e| format!("watch_next: {e}"))?;
    let timeout = sys::beep(sys::get_time() + 60_000 * MS).map_err(|e| format!("beep: {e}"))?;
    let woken =
        sys::block(&spec(Tree::any([answer, timeout]))?).map_err(|e| format!("block: {e}"))?;
    ensure!(woken.contains(&answer), "dom0 did not answer within 60 s");
    sys::cancel(timeout)
        .and_then(|_| sys::retire(timeout))
        .map_err(|e| format!("timeout cleanup: {e}"))?;
    sys::retire(answer).map_err(|e| format!("retire answer: {e}"))?;
    let got = wait(sys::xs_read("data/ethos-grant-result", 0), "read result")?;
    let want = hex(PATTERN);
    ensure!(
        got == Value::Bytes(want.clone().into_bytes()),
        "dom0 read {got:?}, want {want}"
    );
    wait(sys::xs_unwatch(watch), "unwatch")?;
    // dom0 has unmapped it, so access can end and the page be freed.
    sys::page_ungrant(cap).map_err(|e| format!("ungrant: {e}"))?;
    sys::page_free(cap).map_err(|e| format!("free: {e}"))?;
    sys::retire(revoked).map_err(|e| format!("retire: {e}"))?;
    wait(sys::xs_rm("data/ethos-grant", 0), "cleanup")?;
    wait(sys::xs_rm("data/ethos-grant-result", 0), "cleanup")?;
    Ok(())
}

fn memory_pressure_revokes_oldest_page() -> TestResult {
    let (first, first_revoked) = sys::page_alloc().map_err(|e| format!("page_alloc: {e}"))?;
    let mut held = Vec::new();
    // More pages than the guest has frames: the kernel must revoke.
    for n in 0..1100 {
        match sys::page_alloc() {
            Ok(page) => held.push(page),
            Err(e) => return Err(format!("page_alloc #{n} failed instead of revoking: {e}")),
        }
        if n % 64 == 0
            && sys::list()
                .map_err(|e| format!("list: {e}"))?
                .completed
                .contains(&first_revoked)
        {
            break;
        }
    }
    let r = sys::retire(first_revoked).map_err(|e| format!("first page never revoked: {e}"))?;
    ensure!(
        r.status == Status::Ok,
        "revocation completed with {}",
        r.status
    );
    let stale = sys::page_bind(first, sys::region_base().map_err(|e| format!("{e}"))?);
    ensure!(
        stale == Err(SysError::StaleCapability),
        "revoked page's cap gave {stale:?}"
    );
    let count = held.len();
    for (cap, revoked) in held {
        match sys::page_free(cap) {
            Ok(()) | Err(SysError::StaleCapability) => {}
            Err(e) => return Err(format!("free: {e}")),
        }
        sys::retire(revoked).map_err(|e| format!("retire revocation: {e}"))?;
    }
    ensure!(count > 900, "revocation came after only {count} pages");
    Ok(())
}

/// Pages a process leaves bound when it exits.
const LEFT_BOUND: u64 = 40;

fn exits_holding_pages() {
    let Ok(base) = sys::region_base() else { return };
    for n in 0..LEFT_BOUND {
        let bound = sys::page_alloc().and_then(|(cap, _)| sys::page_bind(cap, base + n * 4096));
        if let Err(e) = bound {
            let _ = sys::print(&format!("selftest-exiter: page {n}: {e}"));
            break;
        }
    }
    CHILD_HOLDS_PAGES.store(true, Ordering::SeqCst);
    // Sleep a little so the parent sees the pages held, then exit with
    // every page bound and every revocation event unretired.
    if let Ok(p) = sys::beep(sys::get_time() + 30 * MS) {
        let _ = sys::block_and_retire(p);
    }
}

/// Set by the exiting child once its pages are bound.
static CHILD_HOLDS_PAGES: AtomicBool = AtomicBool::new(false);

fn exit_releases_bound_pages() -> TestResult {
    let frames = || {
        sys::kernel_stats()
            .map(|(s, _)| s.frames_free)
            .map_err(|e| format!("kernel_stats: {e}"))
    };
    let before = frames()?;
    sys::spawn("selftest-exiter", exits_holding_pages).map_err(|e| format!("spawn: {e}"))?;
    let mut rounds = 0;
    let (switches_before, _) = wake_counters()?;
    for _ in 0..400 {
        if CHILD_HOLDS_PAGES.load(Ordering::SeqCst) {
            break;
        }
        rounds += 1;
        // Long enough that the wait really sleeps and the child runs.
        wait(sys::beep(sys::get_time() + 5 * MS), "pacer")?;
    }
    let held = frames()?;
    let (switches, _) = wake_counters()?;
    ensure!(
        held + LEFT_BOUND <= before,
        "the child holds {} frames, want {LEFT_BOUND} (after {rounds} waits, {} wakes)",
        before.saturating_sub(held),
        switches - switches_before
    );
    for _ in 0..400 {
        if frames()? + 1 >= before {
            break;
        }
        wait(sys::beep(sys::get_time() + 5 * MS), "pacer")?;
    }
    let after = frames()?;
    // The child's region L1 table stays built for the slot's next user.
    ensure!(
        after + 1 >= before,
        "{before} frames free before, {after} after the exit"
    );
    Ok(())
}

/// An interdomain channel from this guest to itself: allocate an unbound
/// port, bind a second port to it, and notify across, both ways.
fn interdomain_event_channel_loop() -> TestResult {
    let me = xen::public::DOMID_SELF;
    let a = sys::evtchn_alloc_unbound(me).map_err(|e| format!("alloc_unbound: {e}"))?;
    let b = sys::evtchn_bind_interdomain(me, a).map_err(|e| format!("bind_interdomain: {e}"))?;
    ensure!(a != b, "both ends got port {a}");
    // Xen marks a freshly bound port pending (so nothing sent before the
    // bind is lost): let that arrive and claim it first.
    wait(sys::beep(sys::get_time() + 2 * MS), "pause")?;
    let mut waiting = sys::evtchn_wait(b).map_err(|e| format!("wait: {e}"))?;
    if sys::retire(waiting).is_ok() {
        waiting = sys::evtchn_wait(b).map_err(|e| format!("wait: {e}"))?;
    }
    let twice = sys::evtchn_wait(b);
    ensure!(twice == Err(SysError::Busy), "second waiter gave {twice:?}");
    sys::evtchn_notify(a).map_err(|e| format!("notify: {e}"))?;
    let count = wait(Ok(waiting), "notification a -> b")?;
    ensure!(count == Value::Word(1), "a -> b delivered {count:?}");
    // Notifications with nobody waiting are counted (Xen merges repeats
    // while the port is pending, so at least one, at most three).
    for _ in 0..3 {
        sys::evtchn_notify(b).map_err(|e| format!("notify: {e}"))?;
        wait(sys::beep(sys::get_time() + 2 * MS), "pause")?;
    }
    match wait(sys::evtchn_wait(a), "notifications b -> a")? {
        Value::Word(n) => ensure!((1..=3).contains(&n), "b -> a counted {n}"),
        other => return Err(format!("b -> a gave {other:?}")),
    }
    let pending = sys::evtchn_wait(a).map_err(|e| format!("wait: {e}"))?;
    sys::evtchn_close(a).map_err(|e| format!("close: {e}"))?;
    let r = sys::retire(pending).map_err(|e| format!("retire: {e}"))?;
    ensure!(
        r.status == Status::Cancelled,
        "waiter on a closed port: {}",
        r.status
    );
    let closed = sys::evtchn_notify(a);
    ensure!(
        closed == Err(SysError::BadHandle),
        "notify on a closed port gave {closed:?}"
    );
    let foreign = sys::evtchn_notify(1);
    ensure!(
        foreign == Err(SysError::BadHandle),
        "notify on a port not ours gave {foreign:?}"
    );
    sys::evtchn_close(b).map_err(|e| format!("close: {e}"))?;
    Ok(())
}
