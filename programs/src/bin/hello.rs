//! Says hello with its pid and arguments, beeps twice, waits for both on
//! one AND tree, retires them and says when they fired.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::fmt;

use ethos::tree::{self, Need};
use ethos::{event, println, process, time, Args, Event, Status, WaitElement};

ethos::main!(main);

/// The arguments, space-separated, without allocating.
struct Joined<'a>(Args<'a>);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(a)?;
        }
        Ok(())
    }
}

fn main(args: Args) -> i32 {
    let pid = process::pid().unwrap_or(args.pid());
    println!("hello from pid {pid}, args: [{}]", Joined(args));
    match beeps() {
        Ok(()) => {
            println!("hello: done");
            0
        }
        Err(s) => {
            println!("hello: failed: {s}");
            1
        }
    }
}

fn beeps() -> Result<(), Status> {
    let start = time::now()?;
    let a = event::beep(start + 10 * time::MS)?;
    let b = event::beep(start + 20 * time::MS)?;
    println!("beeps at +10 and +20 ms; blocking on AND of both");
    let mut flat = [WaitElement {
        event: 0,
        parent: 0,
        count: 0,
    }; 3];
    let tree = tree::flat(Need::All, &[a, b], &mut flat)?;
    let mut done = [Event::from_raw(0); 2];
    let n = event::block(tree, &mut done)?;
    let woke = time::now()?.saturating_sub(start) / time::MS;
    println!("woken once, at +{woke} ms, with {n} leaves complete");
    for (e, name) in [(a, "+10"), (b, "+20")] {
        let r = event::retire_word(e)?;
        println!(
            "  retired the {name} ms beep: {} at +{} ms",
            r.status,
            r.value.saturating_sub(start) / time::MS
        );
    }
    Ok(())
}
