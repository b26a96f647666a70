//! In-guest benchmarks (run by `scripts/bench`, never by the tests). Each
//! result is one line `bench: name key=value ...`; times are Xen system
//! time, so under QEMU/TCG they compare runs with each other, not with
//! hardware.

use crate::syscall as sys;
use alloc::format;
use alloc::vec::Vec;
use events::{EventId, Tree};

pub const PROCESSES: &[super::ProcessSpec] = &[("bench", bench)];

const MS: u64 = 1_000_000;

fn report(line: &str) {
    let _ = sys::print(&format!("bench: {line}"));
}

fn counters() -> (u64, u64, u64) {
    sys::kernel_stats().map_or((0, 0, 0), |(s, e)| (s.context_switches, e.wakes, s.upcalls))
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn bench() {
    syscall_round_trip();
    beep_wake_latency();
    and_tree_versus_one_by_one(64);
    events_per_second();
    timer_storm(1000);
}

/// The cheapest system call, many times.
fn syscall_round_trip() {
    const N: u64 = 20_000;
    let start = sys::get_time();
    for _ in 0..N {
        let _ = sys::get_pid();
    }
    let ns = (sys::get_time() - start) / N;
    report(&format!("syscall_round_trip ns={ns} calls={N}"));
}

/// From a beep's deadline to the moment its process runs again.
fn beep_wake_latency() {
    let mut lateness = Vec::new();
    for _ in 0..50 {
        let deadline = sys::get_time() + 2 * MS;
        if sys::beep(deadline).and_then(sys::block_and_retire).is_ok() {
            lateness.push(sys::get_time().saturating_sub(deadline));
        }
    }
    let max = lateness.iter().copied().max().unwrap_or(0);
    report(&format!(
        "beep_wake_latency median_us={} max_us={} samples={}",
        median(lateness) / 1000,
        max / 1000,
        50
    ));
}

fn beeps(n: u64, spacing_ns: u64) -> Vec<EventId> {
    let start = sys::get_time() + 20 * MS;
    (0..n)
        .filter_map(|i| sys::beep(start + i * spacing_ns).ok())
        .collect()
}

/// N parallel beeps waited under one AND tree (one wake), then the same N
/// waited one by one (N wakes). 2 ms apart, so each one-by-one wait sleeps.
fn and_tree_versus_one_by_one(n: u64) {
    let ids = beeps(n, 2 * MS);
    let (s0, w0, _) = counters();
    let spec = Tree::all(ids.iter().copied()).to_spec().unwrap_or_default();
    let _ = sys::block(&spec);
    let (s1, w1, _) = counters();
    for id in ids {
        let _ = sys::retire(id);
    }
    report(&format!(
        "and_tree n={n} context_switches={} wakes={}",
        s1 - s0,
        w1 - w0
    ));

    let ids = beeps(n, 2 * MS);
    let (s0, w0, _) = counters();
    for id in ids {
        let _ = sys::block_and_retire(id);
    }
    let (s1, w1, _) = counters();
    report(&format!(
        "one_by_one n={n} context_switches={} wakes={}",
        s1 - s0,
        w1 - w0
    ));
}

/// Events through create, complete (at the system-call return point),
/// propagate up an AND tree and retire, per second.
fn events_per_second() {
    const ROUNDS: u64 = 50;
    const N: u64 = 64;
    let start = sys::get_time();
    for _ in 0..ROUNDS {
        // Deadline already passed: each beep completes at its own return point.
        let now = sys::get_time();
        let ids: Vec<EventId> = (0..N).filter_map(|_| sys::beep(now).ok()).collect();
        let _ = sys::block(&Tree::all(ids.iter().copied()).to_spec().unwrap_or_default());
        for id in ids {
            let _ = sys::retire(id);
        }
    }
    let ns = sys::get_time() - start;
    report(&format!(
        "events_per_second value={} events={}",
        ROUNDS * N * 1_000_000_000 / ns.max(1),
        ROUNDS * N
    ));
}

/// Many timers firing close together, waited under one tree: how many
/// upcalls the storm caused against how many wakes the process saw.
fn timer_storm(n: u64) {
    let ids = beeps(n, 20_000);
    let (s0, w0, u0) = counters();
    let _ = sys::block(&Tree::all(ids.iter().copied()).to_spec().unwrap_or_default());
    let (s1, w1, u1) = counters();
    for id in ids {
        let _ = sys::retire(id);
    }
    report(&format!(
        "timer_storm timers={n} upcalls={} wakes={} context_switches={}",
        u1 - u0,
        w1 - w0,
        s1 - s0
    ));
}
