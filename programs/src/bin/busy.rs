//! Keeps the guest at work until dom0 says stop: rounds of an RPC ping to
//! the shadowdaemon (waited for at most 1 s) and a 50 ms wait on a
//! xenstore watch of `data/busy-stop`, until that node is written (or
//! argument 1 milliseconds pass, default 60000). A guest alive and busy,
//! whose live figures dom0 reads meanwhile (`shadowdaemon status`; the
//! rig's `live` guest): events, wakes and switches, and RPCs sent and
//! answered, all move.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::{event, println, rpc, time, xenstore, Status};

ethos::main!(main);

const NODE: &str = "data/busy-stop";

fn main(args: ethos::Args) -> i32 {
    let max_ms = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60_000);
    match run(max_ms) {
        Ok((rounds, answered, stopped)) => {
            let why = if stopped {
                "told to stop"
            } else {
                "out of time"
            };
            println!("busy: {rounds} rounds, {answered} pings answered; {why}");
            0
        }
        Err(e) => {
            println!("busy: {e}");
            1
        }
    }
}

/// (rounds, pings answered, whether dom0 said stop).
fn run(max_ms: u64) -> Result<(u64, u64, bool), Status> {
    let (watch, ack) = xenstore::watch(NODE)?;
    event::block_and_retire(ack)?;
    // The first firing is the registration's own.
    let first = xenstore::watch_next(watch)?;
    event::block_one(first)?;
    event::retire_vec(first)?;
    let until = time::now()? + max_ms * time::MS;
    println!("busy: at work until {NODE} is written (at most {max_ms} ms)");
    let next = xenstore::watch_next(watch)?;
    let (mut rounds, mut answered) = (0, 0);
    loop {
        rounds += 1;
        let ping = rpc::ping()?;
        if event::wait_timeout(ping, 1_000 * time::MS)? {
            if event::retire_empty(ping)?.is_ok() {
                answered += 1;
            }
        } else {
            // No daemon (or a slow one): the figures move all the same.
            let _ = event::cancel(ping);
            let _ = event::retire_empty(ping);
        }
        if event::wait_timeout(next, 50 * time::MS)? {
            event::retire_vec(next)?;
            return Ok((rounds, answered, true));
        }
        if time::now()? >= until {
            let _ = event::cancel(next);
            let _ = event::retire_vec(next);
            return Ok((rounds, answered, false));
        }
    }
}
