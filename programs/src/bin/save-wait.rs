//! Waits across `xl save` and `xl restore` (or a migration): 8 beeps
//! pending when the toolstack saves the domain, due 1 s apart (or the
//! milliseconds of argument 1) from 4 s after the start, and a xenstore
//! watch on `data/save-wait`. Each beep
//! must fire once, in deadline order, never before its deadline (kernel
//! time runs on from where it stopped while the domain was away); then the
//! watch, which the restored domain's xenstored never saw registered, must
//! fire when dom0 writes the node. It says the kernel's free frames and
//! heap at the start and at the end: suspends must cost nothing.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::{event, println, stats, time, xenstore, Event, Status, Tree};

ethos::main!(main);

const BEEPS: usize = 8;
const NODE: &str = "data/save-wait";

fn main(args: ethos::Args) -> i32 {
    let spacing_ms = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    match run(spacing_ms) {
        Ok(()) => 0,
        Err(e) => {
            println!("save-wait: {e}");
            1
        }
    }
}

fn run(spacing_ms: u64) -> Result<(), Status> {
    let (watch, ack) = xenstore::watch(NODE)?;
    event::block_and_retire(ack)?;
    // The first firing is the registration's own.
    let first = xenstore::watch_next(watch)?;
    event::block_one(first)?;
    event::retire_vec(first)?;
    let start = time::now()?;
    let mut pending: [(Event, u64, usize); BEEPS] = [(Event::from_raw(0), 0, 0); BEEPS];
    for (i, p) in pending.iter_mut().enumerate() {
        let due = start + (4_000 + i as u64 * spacing_ms) * time::MS;
        *p = (event::beep(due)?, due, i);
    }
    say_memory("start")?;
    println!(
        "save-wait: {BEEPS} beeps pending, due from +4000 ms to +{} ms",
        4_000 + (BEEPS as u64 - 1) * spacing_ms
    );
    let mut left = BEEPS;
    let mut order = [usize::MAX; BEEPS];
    let mut early = 0;
    let mut fired_count = 0;
    while left > 0 {
        let live = pending[..left].iter().map(|p| p.0);
        let woke = event::wait(&Tree::any(live))?;
        let mut i = 0;
        while i < left {
            let (e, due, n) = pending[i];
            if !woke.contains(&e) {
                i += 1;
                continue;
            }
            let fired = event::retire_word(e)?.into_result()?;
            if fired < due {
                early += 1;
            }
            println!(
                "save-wait: beep {n} fired at +{} ms (due +{} ms)",
                (fired - start) / time::MS,
                (due - start) / time::MS
            );
            order[fired_count] = n;
            fired_count += 1;
            left -= 1;
            pending.swap(i, left);
        }
    }
    let in_order = order.iter().enumerate().all(|(i, n)| *n == i);
    println!(
        "save-wait: {fired_count} beeps fired once each, in deadline order: {in_order}, early: {early}"
    );
    println!("save-wait: waiting for {NODE} to be written");
    // A restored domain's xenstored fires each watch registered again once,
    // as a new one (ten restores, ten firings queued): the firing that
    // counts is the one that finds "go", within two minutes.
    let until = time::now()? + 120_000 * time::MS;
    loop {
        let next = xenstore::watch_next(watch)?;
        let left = until.saturating_sub(time::now()?);
        if left == 0 || !event::wait_timeout(next, left)? {
            println!("save-wait: {NODE} never read go");
            return Err(Status::Busy);
        }
        event::retire_vec(next)?.into_result()?;
        let read = xenstore::read(NODE, xenstore::Tx::NONE)?;
        event::block_one(read)?;
        if let Ok(value) = event::retire_vec(read)?.into_result() {
            if value == b"go" {
                println!("save-wait: the watch fired and {NODE} reads go");
                return say_memory("end");
            }
        }
    }
}

fn say_memory(when: &str) -> Result<(), Status> {
    let c = stats::counters()?;
    println!(
        "save-wait: at the {when}: {} frames free, {} heap bytes used",
        c.frames_free, c.heap_used
    );
    Ok(())
}
