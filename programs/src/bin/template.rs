//! The program to copy when writing a new one.
//!
//! 1. Copy this file to `src/bin/NAME.rs` (the file name is the program's
//!    name in the boot archive).
//! 2. `scripts/build-programs` builds it with the others.
//! 3. Boot the guest with `ethos.init=NAME` to run it first.

// A program has no standard library (there is no OS below it but ours) and
// no Rust-provided `main`: the ethos runtime provides the entry point.
#![no_std]
#![no_main]
// Programs are safe code: the one unsafe layer is inside ethos.
#![forbid(unsafe_code)]

// Vec, String and Box are there if you want them: the runtime's allocator
// grows the heap page by page. Remove this line if you do not.
extern crate alloc;

use ethos::{event, println, time, Status};

// Registers `main` as the program's entry. The runtime calls it with the
// arguments the kernel gave (argument 0 is the program's name) and exits
// with the value it returns.
ethos::main!(main);

fn main(args: ethos::Args) -> i32 {
    // println! formats into a stack buffer and sends one Print call per
    // line; it never allocates and never fails loudly.
    println!("{} started as pid {}", args.name(), args.pid());

    // Every call returns Result<_, Status>: a small `run` that uses `?`
    // keeps main about exit codes.
    match run() {
        Ok(()) => 0,
        Err(status) => {
            println!("failed: {status}");
            1
        }
    }
}

fn run() -> Result<(), Status> {
    // A call that takes time never blocks: it returns an event at once.
    let beep = time::beep_in(5 * time::MS)?;
    // Waiting is explicit: block until the event completes, then retire it
    // to read its value (a timer's is the time it fired) and free its id.
    let fired = event::block_and_retire(beep)?;
    println!("beep fired at {} ns", fired.value);
    Ok(())
}
