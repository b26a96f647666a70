//! Sleeps: one beep N milliseconds ahead (default 1000), blocks on it,
//! exits 0. A process that is alive but asks for no CPU.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::{event, time};

ethos::main!(main);

fn main(args: ethos::Args) -> i32 {
    let ms: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let slept = time::now()
        .and_then(|now| event::beep(now + ms * time::MS))
        .and_then(event::block_and_retire);
    match slept {
        Ok(r) if r.status == ethos::Status::Ok => 0,
        Ok(r) => {
            ethos::println!("sleep: the beep ended {}", r.status);
            1
        }
        Err(e) => {
            ethos::println!("sleep: {e}");
            1
        }
    }
}
