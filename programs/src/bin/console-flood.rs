//! At dom0's word (`data/console-flood-start`), prints far more than the
//! console ring holds, says so in xenstore (`data/console-flood` =
//! `printed`), waits for dom0's next word (`data/console-flood-go`) and
//! prints one more line. The rig stops xenconsoled while it prints: the
//! kernel must not stall with it, but drop what the console cannot take
//! and, once xenconsoled reads again, say how many bytes it dropped (issue
//! 13 item 8).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::xenstore::{self, Tx};
use ethos::{event, println, Event, Status};

ethos::main!(main);

/// 100 lines of about 130 bytes: six times the 2 KiB ring.
const LINES: usize = 100;
const START: &str = "data/console-flood-start";
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

/// Waits until dom0 has written `node`.
fn word_from_dom0(node: &str) -> Result<(), Status> {
    let (watch, ack) = xenstore::watch(node)?;
    done(Ok(ack))?;
    // xenstored fires a new watch once at once: the node is read each time.
    while done(xenstore::read(node, Tx::NONE)).is_err() {
        done(xenstore::watch_next(watch))?;
    }
    done(xenstore::unwatch(watch))
}

fn run() -> Result<(), Status> {
    word_from_dom0(START)?;
    for i in 0..LINES {
        println!(
            "console-flood: line {i:3} of {LINES}, long enough to fill the console ring six times over ......"
        );
    }
    done(xenstore::write(PRINTED, b"printed", Tx::NONE))?;
    word_from_dom0(GO)?;
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
