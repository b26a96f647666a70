//! The user-mode benchmarks (scripts/bench), from a program under Xen: the
//! null system call round trip, spawning a program to its exit event,
//! wakes and context switches for 64 beeps under one AND tree and one by
//! one, and what a process costs the kernel. One `ubench:` line each; the
//! Linux side is scripts/lib/lbench.c in the same rig run.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use ethos::process::{self, ExitStatus};
use ethos::{event, println, stats, time, Status, Tree};

ethos::main!(main);

// Indexes of `KernelStats` (kernel/src/syscall/program.rs).
const WAKES: usize = 5;
const SWITCHES: usize = 7;
const FRAMES_FREE: usize = 14;
const HEAP_USED: usize = 15;
const TABLES: usize = 18;
const MAPPED: usize = 19;

fn counters() -> Result<[u64; 20], Status> {
    let mut c = [0u64; 20];
    stats::read(&mut c)?;
    Ok(c)
}

fn main(_: ethos::Args) -> i32 {
    match run() {
        Ok(()) => 0,
        Err(e) => {
            println!("ubench: failed: {e}");
            1
        }
    }
}

fn run() -> Result<(), Status> {
    const CALLS: u64 = 2000;
    let t0 = time::now()?;
    for _ in 0..CALLS {
        process::pid()?;
    }
    let t1 = time::now()?;
    println!("ubench: null_syscall_ns={}", (t1 - t0) / CALLS);

    const SPAWNS: u64 = 20;
    let t0 = time::now()?;
    for _ in 0..SPAWNS {
        let (_, exit) = process::spawn("true", &[])?;
        if process::wait(exit)? != ExitStatus::Code(0) {
            return Err(Status::InvalidArgument);
        }
    }
    let t1 = time::now()?;
    println!("ubench: spawn_exit_us={}", (t1 - t0) / SPAWNS / 1000);

    // Far enough ahead that none has fired before the block: 64 calls
    // take a few ms under emulation.
    let before = counters()?;
    let now = time::now()?;
    let mut beeps = Vec::new();
    for i in 0..64 {
        beeps.push(event::beep(now + 50 * time::MS + i * 100_000)?);
    }
    event::wait(&Tree::all(beeps.iter().copied()))?;
    for b in beeps {
        event::retire_word(b)?;
    }
    let after = counters()?;
    println!(
        "ubench: and_tree_64 wakes={} switches={}",
        after[WAKES] - before[WAKES],
        after[SWITCHES] - before[SWITCHES]
    );

    let before = counters()?;
    for _ in 0..64 {
        event::block_and_retire(event::beep(time::now()? + 5 * time::MS)?)?;
    }
    let after = counters()?;
    println!(
        "ubench: one_by_one_64 wakes={} switches={}",
        after[WAKES] - before[WAKES],
        after[SWITCHES] - before[SWITCHES]
    );

    // A child alive and asleep: what it holds of the kernel's frames (its
    // page tables and its own pages) and heap (process, kernel stack,
    // records).
    let before = counters()?;
    let (_, exit) = process::spawn("sleep", &["300"])?;
    let during = counters()?;
    process::wait(exit)?;
    let after = counters()?;
    println!(
        "ubench: per_process frames={} table_frames={} own_pages={} heap_bytes={} frames_back={}",
        before[FRAMES_FREE] - during[FRAMES_FREE],
        during[TABLES] - before[TABLES],
        during[MAPPED] - before[MAPPED],
        during[HEAP_USED].saturating_sub(before[HEAP_USED]),
        after[FRAMES_FREE] == before[FRAMES_FREE]
    );
    Ok(())
}
