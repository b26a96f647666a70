//! The event-system benchmarks (scripts/bench, never the tests), from user
//! mode: the cheapest system call, a beep's lateness from its deadline to
//! the program running again, wakes and context switches for N beeps under
//! one AND tree and one by one, events through create, complete, tree and
//! retire per second, and a storm of timers under one tree. One line
//! `bench: name key=value ...` each; times are Xen system time, so under
//! QEMU/TCG they compare runs with each other, not with hardware.
//!
//! `ubench` is the other benchmark program: what a program costs (the null
//! call and spawning against Linux, a process's memory). Its
//! `null_syscall_ns` and this `syscall_round_trip` are the same call; the
//! one here keeps the event benchmarks' own baseline in their log.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use ethos::{event, println, process, stats, time, Event, Status, Tree};

ethos::main!(main);

const MS: u64 = time::MS;

// Indexes of `KernelStats` (kernel/src/syscall/program.rs).
const WAKES: usize = 5;
const SWITCHES: usize = 7;
const UPCALLS: usize = 10;

/// (context switches, wakes, upcalls) so far.
fn counters() -> Result<(u64, u64, u64), Status> {
    let mut c = [0u64; 11];
    stats::read(&mut c)?;
    Ok((c[SWITCHES], c[WAKES], c[UPCALLS]))
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn main(_: ethos::Args) -> i32 {
    let all = syscall_round_trip()
        .and_then(|()| beep_wake_latency())
        .and_then(|()| and_tree_versus_one_by_one(64))
        .and_then(|()| events_per_second())
        .and_then(|()| timer_storm(1000));
    match all {
        Ok(()) => 0,
        Err(e) => {
            println!("bench: failed: {e}");
            1
        }
    }
}

/// The cheapest system call, many times.
fn syscall_round_trip() -> Result<(), Status> {
    const N: u64 = 20_000;
    let start = time::now()?;
    for _ in 0..N {
        process::pid()?;
    }
    let ns = (time::now()? - start) / N;
    println!("bench: syscall_round_trip ns={ns} calls={N}");
    Ok(())
}

/// From a beep's deadline to the moment its program runs again.
fn beep_wake_latency() -> Result<(), Status> {
    const SAMPLES: usize = 50;
    let mut lateness = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let deadline = time::now()? + 2 * MS;
        event::block_and_retire(event::beep(deadline)?)?;
        lateness.push(time::now()?.saturating_sub(deadline));
    }
    let max = lateness.iter().copied().max().unwrap_or(0);
    println!(
        "bench: beep_wake_latency median_us={} max_us={} samples={SAMPLES}",
        median(lateness) / 1000,
        max / 1000,
    );
    Ok(())
}

/// What one `Beep` costs, from a few made far ahead and cancelled.
fn beep_cost_ns() -> Result<u64, Status> {
    const PROBES: u64 = 16;
    let far = time::now()? + 10_000 * MS;
    let t0 = time::now()?;
    let ids = (0..PROBES)
        .map(|_| event::beep(far))
        .collect::<Result<Vec<_>, _>>()?;
    let ns = (time::now()? - t0) / PROBES;
    for id in ids {
        event::cancel(id)?;
        event::retire_empty(id)?;
    }
    Ok(ns)
}

/// `n` beeps `spacing_ns` apart, the first far enough from now that none
/// has fired before the caller blocks: 20 ms plus twice what making them
/// costs (a system call is a trap now, and under TCG a thousand of them
/// take longer than a storm of 20 us spacing lasts).
fn beeps(n: u64, spacing_ns: u64) -> Result<Vec<Event>, Status> {
    let lead = 20 * MS + 2 * n * beep_cost_ns()?;
    let start = time::now()? + lead;
    (0..n)
        .map(|i| event::beep(start + i * spacing_ns))
        .collect()
}

fn retire_all(ids: Vec<Event>) -> Result<(), Status> {
    for id in ids {
        event::retire_word(id)?;
    }
    Ok(())
}

/// N parallel beeps waited under one AND tree (one wake), then the same N
/// waited one by one (N wakes). 2 ms apart, so each one-by-one wait sleeps.
fn and_tree_versus_one_by_one(n: u64) -> Result<(), Status> {
    let ids = beeps(n, 2 * MS)?;
    let (s0, w0, _) = counters()?;
    event::wait(&Tree::all(ids.iter().copied()))?;
    let (s1, w1, _) = counters()?;
    retire_all(ids)?;
    println!(
        "bench: and_tree n={n} context_switches={} wakes={}",
        s1 - s0,
        w1 - w0
    );

    let ids = beeps(n, 2 * MS)?;
    let (s0, w0, _) = counters()?;
    for &id in &ids {
        event::block_and_retire(id)?;
    }
    let (s1, w1, _) = counters()?;
    println!(
        "bench: one_by_one n={n} context_switches={} wakes={}",
        s1 - s0,
        w1 - w0
    );
    Ok(())
}

/// Events through create, complete (at the system-call return point),
/// propagate up an AND tree and retire, per second.
fn events_per_second() -> Result<(), Status> {
    const ROUNDS: u64 = 50;
    const N: u64 = 64;
    let start = time::now()?;
    for _ in 0..ROUNDS {
        // Deadline already passed: each beep completes at its own return point.
        let now = time::now()?;
        let ids = (0..N)
            .map(|_| event::beep(now))
            .collect::<Result<Vec<_>, _>>()?;
        event::wait(&Tree::all(ids.iter().copied()))?;
        retire_all(ids)?;
    }
    let ns = time::now()? - start;
    println!(
        "bench: events_per_second value={} events={}",
        ROUNDS * N * 1_000_000_000 / ns.max(1),
        ROUNDS * N
    );
    Ok(())
}

/// Many timers firing close together (20 us apart), waited under one tree:
/// how many upcalls the storm caused against how many wakes the program
/// saw.
fn timer_storm(n: u64) -> Result<(), Status> {
    let ids = beeps(n, 20_000)?;
    let (s0, w0, u0) = counters()?;
    event::wait(&Tree::all(ids.iter().copied()))?;
    let (s1, w1, u1) = counters()?;
    retire_all(ids)?;
    println!(
        "bench: timer_storm timers={n} upcalls={} wakes={} context_switches={}",
        u1 - u0,
        w1 - w0,
        s1 - s0
    );
    Ok(())
}
