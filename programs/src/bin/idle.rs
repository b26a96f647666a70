//! Sleeps: one beep six seconds out, blocked on. The rig reads the
//! domain's CPU time meanwhile (scripts/scenarios/guests.sh, `xl list`) to
//! check that an idle guest blocks its vCPU (`SCHEDOP_block` until the next
//! deadline) instead of spinning: a program blocked on its only event is
//! the idle case.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::{event, println, time, Status};

ethos::main!(main);

const SLEEP_NS: u64 = 6_000_000_000;

fn main(_: ethos::Args) -> i32 {
    println!("idle: sleeping 6 s on one beep");
    match time::beep_in(SLEEP_NS).and_then(event::block_and_retire) {
        Ok(r) if r.status == Status::Ok => {
            println!("idle: woke up");
            0
        }
        Ok(r) => {
            println!("idle: beep failed: {}", r.status);
            1
        }
        Err(e) => {
            println!("idle: beep failed: {e}");
            1
        }
    }
}
