//! The rig's daemon-restart scenario (scripts/scenarios/guests.sh): many
//! changing requests in flight; dom0 kills the shadowdaemon with SIGKILL
//! when it sees "requests in flight" and starts it again. Every request
//! must complete once, successfully (a `dir_create` run twice would answer
//! `Exists`), and the folder must hold exactly what was asked. The kernel's
//! RPC client does the resending; this program only makes the calls and
//! checks what came back. The same lines as the linked-in app it replaces.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ethos::rpc::{self, DirPage};
use ethos::{event, println, time, Event, Retired, Status};

ethos::main!(main);

const APP: &str = "rpc-restart";

/// Directories and files it creates (2 requests each).
const PAIRS: usize = 24;

fn say(text: &str) {
    println!("{APP}: {text}");
}

fn err(what: &str) -> impl Fn(Status) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Waits for `id` up to `ms` (an OR tree of it and a beep), then retires
/// it; on the timeout it is cancelled and retired, and that is the error.
fn finish(id: Event, ms: u64, what: &str) -> Result<Retired<Vec<u8>>, String> {
    if !event::wait_timeout(id, ms * time::MS).map_err(err(what))? {
        let _ = event::cancel(id);
        let _ = event::retire_empty(id);
        return Err(format!("{what}: no answer in {} s", ms / 1000));
    }
    event::retire_vec(id).map_err(err(what))
}

/// An event's status as the kernel app printed it: the errno with a
/// remote refusal.
fn status_text(r: &Retired<Vec<u8>>) -> String {
    match r.status {
        Status::Remote => format!("remote error {}", r.errno),
        s => format!("{s}"),
    }
}

fn content(i: usize) -> String {
    format!("file {i:02} written once by rpc-restart\n")
}

fn run() -> Result<String, String> {
    finish(rpc::ping().map_err(err("ping"))?, 120_000, "ping")?;
    say("daemon answers");
    let mut requests: Vec<(String, Event)> = Vec::new();
    let mut issue = |what: String, id: Result<Event, Status>| {
        id.map(|id| requests.push((what.clone(), id)))
            .map_err(|e| format!("{what}: {e}"))
    };
    for i in 0..PAIRS {
        issue(
            format!("create_dir d{i:02}"),
            rpc::dir_create(&format!("d{i:02}")),
        )?;
        issue(
            format!("write f{i:02}"),
            rpc::file_write(&format!("f{i:02}"), 0, content(i).as_bytes(), true),
        )?;
    }
    for i in 0..8 {
        issue(format!("ping {i}"), rpc::ping())?;
    }
    // dom0 kills the daemon when it reads this line.
    say(&format!("{} requests in flight", requests.len()));
    let mut failed = Vec::new();
    for (what, id) in &requests {
        let r = finish(*id, 180_000, what)?;
        if r.status != Status::Ok {
            failed.push(format!("{what}: {}", status_text(&r)));
        }
    }
    if !failed.is_empty() {
        return Err(format!("not all succeeded once: {failed:?}"));
    }
    say(&format!("all {} completed, each once", requests.len()));

    // The folder holds exactly what was asked, each file written once.
    let mut names = Vec::new();
    let mut cursor = 0u64;
    loop {
        let id = rpc::dir_list(".", cursor).map_err(err("dir_list"))?;
        let r = finish(id, 60_000, "dir_list")?;
        if r.status != Status::Ok {
            return Err(format!("dir_list: {}", status_text(&r)));
        }
        let page =
            DirPage::parse(&r.value).ok_or_else(|| format!("dir_list: page {:?}", r.value))?;
        let before = names.len();
        names.extend(
            page.names()
                .filter(|n| !n.is_empty())
                .map(|n| String::from_utf8_lossy(n).into_owned()),
        );
        cursor += (names.len() - before) as u64;
        if page.done {
            break;
        }
    }
    names.sort();
    let mut expected: Vec<String> = (0..PAIRS)
        .flat_map(|i| [format!("d{i:02}"), format!("f{i:02}")])
        .collect();
    expected.sort();
    if names != expected {
        return Err(format!("folder holds {names:?}"));
    }
    for i in 0..PAIRS {
        let id = rpc::file_read(&format!("f{i:02}"), 0, 4096).map_err(err("read_var"))?;
        let r = finish(id, 60_000, "read_var")?;
        if r.status != Status::Ok || r.value != content(i).as_bytes() {
            return Err(format!(
                "f{i:02} holds {:?} ({})",
                String::from_utf8_lossy(&r.value),
                status_text(&r)
            ));
        }
    }
    Ok(format!(
        "folder holds exactly {PAIRS} directories and {PAIRS} files, contents intact: ok"
    ))
}

fn main(_: ethos::Args) -> i32 {
    match run() {
        Ok(done) => {
            say(&done);
            0
        }
        Err(e) => {
            say(&format!("FAILED: {e}"));
            1
        }
    }
}
