//! What a program costs (scripts/bench), from a program under Xen: the
//! null system call round trip, spawning a program to its exit event, and
//! what a process holds of the kernel. One `ubench:` line each; the Linux
//! side is scripts/lib/lbench.c in the same rig run. The event system's
//! benchmarks (wakes and switches of trees, wake latency, timer storms) are
//! the `bench` program's.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use ethos::process::{self, ExitStatus};
use ethos::{println, stats, time, Status};

ethos::main!(main);

// Indexes of `KernelStats` (kernel/src/syscall/program.rs).
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
