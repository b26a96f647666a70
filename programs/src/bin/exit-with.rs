//! Exits with the status it is given: `exit-with STATUS` at once;
//! `exit-with STATUS until-shutdown` first waits for the toolstack to ask
//! the domain to stop (`xl shutdown`), then exits with it. The rig's test
//! of `scripts/run`, which must hand the status back and show the console
//! while the program still runs.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::{println, shutdown};

ethos::main!(main);

fn main(args: ethos::Args) -> i32 {
    let Some(status) = args.get(1).and_then(|a| a.parse::<i32>().ok()) else {
        println!("usage: exit-with STATUS [until-shutdown]");
        return 2;
    };
    if args.get(2) == Some("until-shutdown") {
        println!("exit-with: waiting for the toolstack to ask the domain to stop");
        let asked = shutdown::event().and_then(shutdown::wait);
        match asked {
            Ok(kind) => println!("exit-with: waited; asked to {kind}"),
            Err(e) => println!("exit-with: no shutdown event: {e}"),
        }
    }
    println!("exit-with: exiting with status {status}");
    status
}
