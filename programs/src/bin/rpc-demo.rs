//! RPCs to the dom0 shadowdaemon, from user mode: write a file, read it
//! back, its info, list its folder, random bytes, eight pings under one
//! AND tree (one wake), remove it. The same lines as the linked-in app it
//! replaces. The kernel offers the RPC channel itself (its `rpc-offer`
//! service); a program only makes calls.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ethos::rpc::{self, DirPage, FileInfo};
use ethos::{event, println, stats, time, Event, Status, Tree};

ethos::main!(main);

const WAKES: usize = 5;

fn say(text: &str) {
    println!("rpc-demo: {text}");
}

fn err(what: &str) -> impl Fn(Status) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Waits for an RPC's event, or 30 s (without a shadowdaemon in dom0
/// nothing would ever answer), and retires it: its bytes when it succeeded.
fn rpc(id: Result<Event, Status>, what: &str) -> Result<Vec<u8>, String> {
    let id = id.map_err(err(what))?;
    if !event::wait_timeout(id, 30_000 * time::MS).map_err(err(what))? {
        let _ = event::cancel(id);
        let _ = event::retire_empty(id);
        return Err(format!("{what}: no answer from the shadowdaemon in 30 s"));
    }
    let r = event::retire_vec(id).map_err(err(what))?;
    match r.status {
        Status::Ok => Ok(r.value),
        Status::Remote => Err(format!("{what}: remote error {}", r.errno)),
        s => Err(format!("{what}: {s}")),
    }
}

fn run() -> Result<(), String> {
    let start = time::now().map_err(err("time"))?;
    let pinged = rpc(rpc::ping(), "ping");
    let ms = (time::now().map_err(err("time"))? - start) / 100_000;
    // A daemon that will not serve this domain fails it at once (NotServed).
    pinged.map_err(|e| format!("{e} (after {}.{} ms)", ms / 10, ms % 10))?;
    say(&format!("ping answered in {}.{} ms", ms / 10, ms % 10));

    let text = b"written by the Ethos-Xen guest through the shadowdaemon\n";
    let path = "notes/hello.txt";
    if let Err(e) = rpc(rpc::file_write(path, 0, text, true), "write_var") {
        if !e.contains("remote error") {
            return Err(e);
        }
        // The folder may not exist yet: create it and try again.
        rpc(rpc::dir_create("notes"), "create_dir")?;
        rpc(rpc::file_write(path, 0, text, true), "write_var")?;
    }
    say("wrote notes/hello.txt");
    let back = rpc(rpc::file_read(path, 0, 4096), "read_var")?;
    if back != text {
        return Err(format!("read back {back:?}"));
    }
    say(&format!("read it back: {} bytes, identical", text.len()));
    let info = rpc(rpc::file_info(path), "file_info")?;
    let info = FileInfo::parse(&info);
    say(&format!(
        "file_info: kind {} size {:?}",
        info.map_or(0, |i| i.kind),
        info.map(|i| i.size)
    ));
    let listing = rpc(rpc::dir_list("notes", 0), "dir_list")?;
    let names: Vec<&str> = DirPage::parse(&listing)
        .map(|p| {
            p.names()
                .filter_map(|n| core::str::from_utf8(n).ok())
                .collect()
        })
        .unwrap_or_default();
    say(&format!("notes/ holds {names:?}"));
    let bytes = rpc(rpc::random(16), "random")?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    say(&format!("16 random bytes from dom0: {hex}"));

    // Several RPCs in flight at once, waited under one AND tree: one wake
    // at most (none when every answer is in before the block).
    let ids: Vec<Event> = (0..8)
        .map(|_| rpc::ping())
        .collect::<Result<_, _>>()
        .map_err(err("ping"))?;
    let mut before = [0u64; 8];
    stats::read(&mut before).map_err(err("stats"))?;
    event::wait(&Tree::all(ids.iter().copied())).map_err(err("block"))?;
    let mut after = [0u64; 8];
    stats::read(&mut after).map_err(err("stats"))?;
    for id in ids {
        event::retire_empty(id).map_err(err("retire"))?;
    }
    say(&format!(
        "8 pings in flight under one AND tree: {} wake",
        after[WAKES] - before[WAKES]
    ));
    rpc(rpc::remove(path), "remove")?;
    let gone = rpc::file_read(path, 0, 16).map_err(err("read_var"))?;
    let r = event::block_and_retire(gone).map_err(err("read_var"))?;
    let status = match r.status {
        Status::Remote => format!("remote error {}", r.errno),
        s => format!("{s}"),
    };
    say(&format!("removed it; reading it now reports: {status}"));
    Ok(())
}

fn main(_: ethos::Args) -> i32 {
    // Let the kernel's rpc-offer publish the channel and the daemon connect.
    if let Ok(id) = time::now().and_then(|now| event::beep(now + 50 * time::MS)) {
        let _ = event::block_and_retire(id);
    }
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
