//! Wire compatibility with libxenvchan, from user mode: this program
//! offers a vchan server to dom0 ([`ethos::vchan`]: its own pages, granted,
//! and an unbound port), publishes it in xenstore in one transaction, and
//! dom0's `vchan-socket-proxy` (Debian's libxenvchan) connects as the
//! client. The rig echoes what the proxy hands it; the program checks it
//! gets back exactly what it sent.
//!
//! The keys are written under the guest's `data/` node and their
//! permissions set to `n<domid>` in the same transaction (`XsSetPerms`):
//! owned by this domain, readable by nobody else but dom0, which reads
//! everything, whatever the node inherited.
//!
//! Needs the rights FOREIGN and XENSTORE_WRITE (run it as `ethos.init=`).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ethos::vchan::{PeerState, Server};
use ethos::xenstore::{self, Tx};
use ethos::{event, evtchn, pages, println, time, Event, Status};

ethos::main!(main);

const NODE: &str = "data/vchan/0/echo";
const MESSAGE: &[u8] = b"hello from ethos over vchan\n";
/// The client is dom0.
const DOM0: u16 = 0;
const RING: usize = 4096;

fn say(text: &str) {
    println!("vchan-echo: {text}");
}

fn err(what: &str) -> impl Fn(Status) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Blocks on a xenstore request's event and retires it: its bytes if it
/// succeeded, its status (and errno) otherwise.
fn xs(id: Result<Event, Status>, what: &str) -> Result<Vec<u8>, String> {
    let r = xs_retired(id, what)?;
    match r.status {
        Status::Ok => Ok(r.value),
        Status::Remote => Err(format!("{what}: xenstored refused (errno {})", r.errno)),
        s => Err(format!("{what}: {s}")),
    }
}

fn xs_retired(id: Result<Event, Status>, what: &str) -> Result<ethos::Retired<Vec<u8>>, String> {
    let id = id.map_err(err(what))?;
    event::block_one(id).map_err(err(what))?;
    event::retire_vec(id).map_err(err(what))
}

/// Publishes the vchan's `ring-ref` and `event-channel` under `NODE` in
/// one transaction, retrying while the commit meets EAGAIN, as
/// libxenvchan's server does.
fn publish(ring_ref: u32, port: u32, me: &str) -> Result<(), String> {
    const EAGAIN: u32 = 11;
    for _ in 0..10 {
        let id = xenstore::transaction_start().map_err(err("transaction"))?;
        event::block_one(id).map_err(err("transaction"))?;
        let r = event::retire_word(id).map_err(err("transaction"))?;
        let tx = Tx(r.into_result().map_err(err("transaction"))? as u32);
        for (key, value) in [("ring-ref", ring_ref), ("event-channel", port)] {
            let path = format!("{NODE}/{key}");
            let owner = format!("n{me}");
            let written = xs(
                xenstore::write(&path, format!("{value}").as_bytes(), tx),
                "write key",
            )
            .and_then(|_| xs(xenstore::set_perms(&path, &[&owner], tx), "set perms"));
            if let Err(e) = written {
                let _ = xs(xenstore::transaction_end(tx, false), "abort");
                return Err(e);
            }
        }
        let end = xs_retired(xenstore::transaction_end(tx, true), "commit")?;
        match (end.status, end.errno) {
            (Status::Ok, _) => return Ok(()),
            (Status::Remote, EAGAIN) => continue,
            (Status::Remote, errno) => return Err(format!("commit: errno {errno}")),
            (s, _) => return Err(format!("commit: {s}")),
        }
    }
    Err(String::from("ten commits met EAGAIN"))
}

/// Waits for the next notification on the server's port, or `ms` at most.
fn wait_port(server: &Server, ms: u64) -> Result<(), String> {
    let note = evtchn::wait(server.channel()).map_err(err("wait"))?;
    let woke = event::wait_timeout(note, ms * time::MS).map_err(err("block"));
    let _ = event::cancel(note);
    let _ = event::retire_empty(note);
    woke.map(|_| ())
}

fn run() -> Result<(), String> {
    let me = xs(xenstore::read("domid", Tx::NONE), "read domid")?;
    let me = String::from_utf8(me).map_err(|_| String::from("domid not text"))?;
    let mut server = Server::offer(DOM0, RING, pages::USER_REGION.start).map_err(err("offer"))?;
    publish(server.ring_ref(), server.port(), &me)?;
    say(&format!(
        "offered at /local/domain/{me}/{NODE} (ring-ref {}, port {})",
        server.ring_ref(),
        server.port()
    ));
    // Wait (up to 120 s) for the client.
    for _ in 0..120 {
        if server.peer().map_err(err("peer"))? == PeerState::Live {
            break;
        }
        wait_port(&server, 1000)?;
    }
    if server.peer().map_err(err("peer"))? != PeerState::Live {
        return Err(String::from("no client connected"));
    }
    say("client connected");
    let mut sent = 0;
    while sent < MESSAGE.len() {
        sent += server.write(&MESSAGE[sent..]).map_err(err("write"))?;
        if sent < MESSAGE.len() {
            wait_port(&server, 1000)?;
        }
    }
    let mut echoed = Vec::new();
    let mut buf = [0u8; 256];
    for _ in 0..120 {
        let n = server.read(&mut buf).map_err(err("read"))?;
        echoed.extend_from_slice(&buf[..n]);
        if echoed.len() >= MESSAGE.len() {
            break;
        }
        wait_port(&server, 1000)?;
    }
    if echoed != MESSAGE {
        return Err(format!(
            "echo mismatch: got {:?}",
            String::from_utf8_lossy(&echoed)
        ));
    }
    say(&format!("echo matched ({} bytes)", echoed.len()));
    Ok(())
}

fn main(_: ethos::Args) -> i32 {
    match run() {
        Ok(()) => {
            say("ok");
            0
        }
        Err(e) => {
            say(&format!("FAILED: {e}"));
            1
        }
    }
}
