//! Prints far more than the console ring holds, says so in xenstore
//! (`data/console-flood` = `printed`), waits for dom0's word
//! (`data/console-flood-go`) and prints one more line. The rig stops
//! xenconsoled while it prints: the kernel must not stall with it, but drop
//! what the console cannot take and, once xenconsoled reads again, say how
//! many bytes it dropped (issue 13 item 8).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::xenstore::{self, Tx};
use ethos::{event, println, Event, Status};

ethos::main!(main);

/// 100 lines of about 130 bytes: six times the 2 KiB ring.
const LINES: usize = 100;
const PRINTED: &str = "data/console-flood";
const GO: &str = "data/console-flood-go";

fn done(id: Result<Event, Status>) -> Result<(), Status> {
    let id = id?;
    event::block_one(id)?;
    match event::retire_vec(id)?.status {
        Status::Ok => Ok(()),
        s => Err(s),
    }
}

fn run() -> Result<(), Status> {
    for i in 0..LINES {
        println!(
            "console-flood: line {i:3} of {LINES}, long enough to fill the console ring six times over ......"
        );
    }
    done(xenstore::write(PRINTED, b"printed", Tx::NONE))?;
    let (watch, ack) = xenstore::watch(GO)?;
    done(Ok(ack))?;
    // xenstored fires a new watch once at once: the node is read each time.
    while done(xenstore::read(GO, Tx::NONE)).is_err() {
        done(xenstore::watch_next(watch))?;
    }
    println!("console-flood: dom0 said go; done");
    Ok(())
}

fn main(_: ethos::Args) -> i32 {
    match run() {
        Ok(()) => 0,
        Err(e) => {
            println!("console-flood: FAILED: {e}");
            1
        }
    }
}
