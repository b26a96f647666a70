//! The rig's destroyed-mid-RPC scenario (scripts/scenarios/guests.sh):
//! RPCs without end, sixteen in flight at a time (pings and file writes);
//! dom0 destroys the domain once it reads "rpc-flood: busy" and checks the
//! shadowdaemon let go of its pages and port. It only ends by itself on a
//! failure. The same lines as the linked-in app it replaces.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ethos::{event, println, rpc, time, Event, Status};

ethos::main!(main);

const APP: &str = "rpc-flood";

fn err(what: &str) -> impl Fn(Status) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Waits for `id` up to `ms` (an OR tree of it and a beep) and retires it;
/// on the timeout it is cancelled and retired, and that is the error.
fn finish(id: Event, ms: u64, what: &str) -> Result<(), String> {
    if !event::wait_timeout(id, ms * time::MS).map_err(err(what))? {
        let _ = event::cancel(id);
        let _ = event::retire_empty(id);
        return Err(format!("{what}: no answer in {} s", ms / 1000));
    }
    // Only that an answer came matters here, not what it said.
    event::retire_vec(id).map(|_| ()).map_err(err(what))
}

fn run() -> Result<(), String> {
    finish(rpc::ping().map_err(err("ping"))?, 120_000, "ping")?;
    let payloads: Vec<String> = (0..16).map(|i| format!("flood{i}")).collect();
    let mut rounds = 0u64;
    loop {
        let mut ids = Vec::with_capacity(16);
        for (i, path) in payloads.iter().enumerate() {
            let id = if i % 2 == 0 {
                rpc::ping()
            } else {
                rpc::file_write(path, 0, b"flood", true)
            };
            ids.push(id.map_err(err("flood"))?);
        }
        for id in ids {
            finish(id, 60_000, "flood")?;
        }
        rounds += 1;
        if rounds == 1 {
            // dom0 destroys the domain when it reads this line.
            println!("{APP}: busy");
        }
    }
}

fn main(_: ethos::Args) -> i32 {
    match run() {
        Ok(()) => 0,
        Err(e) => {
            println!("{APP}: FAILED: {e}");
            1
        }
    }
}
