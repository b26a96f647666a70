//! Reads each xenstore node named by its arguments and says what xenstored
//! answered: `xs-read PATH: ok N bytes`, or the refusal
//! (`xs-read PATH: remote error, errno 13`: EACCES). Never the value itself: the
//! rig runs it to show that one domain cannot read another's boot seed
//! (scripts/scenarios/guests.sh). Exits 0 when every read was answered
//! (whatever the answer), 1 when a request could not be made or waited for.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use ethos::xenstore::{self, Tx};
use ethos::{event, println, Args, Status};

ethos::main!(main);

fn main(args: Args) -> i32 {
    let mut code = 0;
    for path in args.iter().skip(1) {
        match read(path) {
            Ok((Status::Ok, _, len)) => println!("xs-read {path}: ok {len} bytes"),
            Ok((status, errno, _)) => println!("xs-read {path}: {status}, errno {errno}"),
            Err(s) => {
                println!("xs-read {path}: cannot ask: {s}");
                code = 1;
            }
        }
    }
    code
}

/// The read's status, errno and the value's length.
fn read(path: &str) -> Result<(Status, u32, usize), Status> {
    let id = xenstore::read(path, Tx::NONE)?;
    event::block_one(id)?;
    let r = event::retire_vec(id)?;
    Ok((r.status, r.errno, r.value.len()))
}
