//! Waits for the toolstack to ask the domain to stop (`xl shutdown`, `xl
//! reboot`), in processes blocked on wait trees, and ends cleanly when it
//! does: the shape of any program that must finish its work first.
//!
//! `until-shutdown` starts three helpers (itself, with argument `helper`)
//! and one `sleep` of an hour that takes no shutdown event (it stands for
//! a program that does not listen: the kernel ends it when the grace
//! period is over). Each helper blocks on "the shutdown event, or both of
//! two far beeps"; the parent on "its own shutdown event and every
//! helper's exit". Each says what it saw.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::{event, println, process, shutdown, time, Args, Event, Status, Tree};

ethos::main!(main);

const HELPERS: usize = 3;
const HOUR_MS: u64 = 3_600_000;

fn main(args: Args) -> i32 {
    let run = if args.get(1) == Some("helper") {
        helper()
    } else {
        parent()
    };
    match run {
        Ok(()) => 0,
        Err(e) => {
            println!("until-shutdown: {e}");
            1
        }
    }
}

fn parent() -> Result<(), Status> {
    let stop = shutdown::event()?;
    let mut exits = [Event::from_raw(0); HELPERS];
    for exit in exits.iter_mut() {
        *exit = process::spawn("until-shutdown", &["helper"])?.1;
    }
    let (deaf, _) = process::spawn("sleep", &["3600000"])?;
    println!(
        "until-shutdown: {HELPERS} helpers and one deaf sleep (pid {deaf}) wait for the toolstack"
    );
    event::wait(&Tree::all(exits.iter().copied().chain([stop])))?;
    let kind = shutdown::wait(stop)?;
    let mut clean = 0;
    for exit in exits {
        if process::wait(exit)? == process::ExitStatus::Code(0) {
            clean += 1;
        }
    }
    println!("until-shutdown: asked to {kind}; {clean} of {HELPERS} helpers saw it and exited");
    Ok(())
}

fn helper() -> Result<(), Status> {
    let me = process::pid()?;
    let stop = shutdown::event()?;
    // Two far beeps both due: work that will not finish before the stop.
    let a = time::beep_in(HOUR_MS * time::MS)?;
    let b = time::beep_in(2 * HOUR_MS * time::MS)?;
    event::wait(&Tree::any([Tree::event(stop), Tree::all([a, b])]))?;
    let kind = shutdown::poll(stop)?.ok_or(Status::NotComplete)?;
    for beep in [a, b] {
        event::cancel(beep)?;
        event::retire_word(beep)?;
    }
    println!("until-shutdown: helper pid {me} saw the shutdown event ({kind})");
    Ok(())
}
