//! The demo: four programs at once. The first (`demo`, no argument)
//! spawns its two parts as programs of their own, `demo and-or` and `demo
//! threshold`, and `hello`, then blocks on one AND tree of their three
//! exit events and retires each for its status: processes, like timers,
//! are events to wait for. The parts beep with different deadlines, block
//! on AND, OR and threshold trees, retire the events and cancel one,
//! narrating as they go (their lines interleave: they run side by side).
//! (`demo and-or` or `demo threshold` runs one part alone.)

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt::{self, Write};

use ethos::process::{self, ExitStatus};
use ethos::{event, println, time, Args, Event, Tree};

ethos::main!(main);

const MS: u64 = time::MS;

/// A span of the kernel clock, printed in milliseconds.
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0 / MS)
    }
}

fn ms_since(start: u64, t: u64) -> Millis {
    Millis(t.saturating_sub(start))
}

fn now() -> u64 {
    time::now().unwrap_or(0)
}

fn main(args: Args) -> i32 {
    let parts: [(&str, fn()); 2] = [("and-or", and_or), ("threshold", threshold)];
    match args.get(1) {
        None => return run_all(),
        Some(which) => match parts.iter().find(|(name, _)| *name == which) {
            Some((_, part)) => part(),
            None => {
                println!("usage: demo [and-or | threshold]");
                return 2;
            }
        },
    }
    0
}

/// The four-program demo: three children, one AND tree of their exits.
fn run_all() -> i32 {
    let children: [(&str, &[&str]); 3] = [
        ("demo", &["and-or"]),
        ("demo", &["threshold"]),
        ("hello", &["from", "the", "demo"]),
    ];
    let mut exits = Vec::new();
    for (name, argv) in children {
        match process::spawn(name, argv) {
            Ok((pid, exit)) => {
                println!("demo: started {name} {} as pid {pid}", argv.join(" "));
                exits.push(exit);
            }
            Err(e) => {
                println!("demo: spawning {name} failed: {e}");
                return 1;
            }
        }
    }
    println!(
        "demo: 4 programs running; blocking on AND of the {} exit events",
        exits.len()
    );
    if let Err(e) = event::wait(&Tree::all(exits.iter().copied())) {
        println!("demo: block failed: {e}");
        return 1;
    }
    let statuses: Vec<Result<ExitStatus, ethos::Status>> =
        exits.into_iter().map(process::wait).collect();
    let all_ok = statuses
        .iter()
        .all(|s| matches!(s, Ok(ExitStatus::Code(0))));
    let mut said = alloc::string::String::new();
    for (i, s) in statuses.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = match s {
            Ok(status) => write!(said, "{sep}{status}"),
            Err(e) => write!(said, "{sep}{e}"),
        };
    }
    println!("demo: woken once: all 3 programs ended: {said}");
    if all_ok {
        0
    } else {
        1
    }
}

fn fired_at(id: Event) -> Option<u64> {
    match event::retire_word(id) {
        Ok(r) => Some(r.value),
        Err(e) => {
            println!("retire({:#x}) failed: {e}", id.id());
            None
        }
    }
}

fn and_or() {
    let start = now();
    let delays = [30u64, 10, 20];
    let ids: Vec<Event> = delays
        .iter()
        .filter_map(|d| event::beep(start + d * MS).ok())
        .collect();
    println!(
        "beeps at +30, +10, +20 ms; blocking on AND of all {}",
        ids.len()
    );
    match event::wait(&Tree::all(ids.iter().copied())) {
        Ok(leaves) => println!(
            "woken once, at +{} ms, with {} leaves complete",
            ms_since(start, now()),
            leaves.len()
        ),
        Err(e) => println!("block failed: {e}"),
    }
    for (id, d) in ids.iter().zip(delays) {
        if let Some(t) = fired_at(*id) {
            println!(
                "  retired the +{d} ms beep: fired at +{} ms",
                ms_since(start, t)
            );
        }
    }

    let start = now();
    let (slow, fast) = match (event::beep(start + 50 * MS), event::beep(start + 15 * MS)) {
        (Ok(s), Ok(f)) => (s, f),
        _ => return println!("beep failed"),
    };
    println!("beeps at +50 and +15 ms; blocking on OR of the two");
    if let Ok(leaves) = event::wait(&Tree::any([slow, fast])) {
        let which = if leaves == [fast] {
            "the +15 ms beep"
        } else {
            "an unexpected leaf"
        };
        println!("woken at +{} ms by {which}", ms_since(start, now()));
    }
    let _ = fired_at(fast);
    match event::cancel(slow).and_then(|()| event::retire_empty(slow)) {
        Ok(r) => println!(
            "cancelled the +50 ms beep; retiring it reports: {}",
            r.status
        ),
        Err(e) => println!("cancel failed: {e}"),
    }
}

fn threshold() {
    let start = now();
    let delays = [5u64, 40, 25];
    let ids: Vec<Event> = delays
        .iter()
        .filter_map(|d| event::beep(start + d * MS).ok())
        .collect();
    if ids.len() != delays.len() {
        return println!("beep failed");
    }
    println!("beeps at +5, +40, +25 ms; blocking until at least 2 of 3");
    if let Ok(leaves) = event::wait(&Tree::at_least(2, ids.iter().copied())) {
        println!(
            "woken at +{} ms with {} leaves complete",
            ms_since(start, now()),
            leaves.len()
        );
    }
    match event::block_and_retire(ids[1]) {
        Ok(r) => println!(
            "block_and_retire on the +40 ms beep: {} at +{} ms",
            r.status,
            ms_since(start, r.value)
        ),
        Err(e) => println!("block_and_retire failed: {e}"),
    }
    for id in [ids[0], ids[2]] {
        let _ = fired_at(id);
    }
}
