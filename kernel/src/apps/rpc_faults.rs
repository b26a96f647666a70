//! The RPC fault scenarios of the rig (scripts/scenarios/guests.sh), one app
//! each; dom0 does the harm, the guest reports what it saw:
//!
//! * `rpc-restart`: many changing requests in flight; dom0 kills the daemon
//!   with SIGKILL when it sees "requests in flight" and starts it again. Every
//!   request must complete once, successfully (a `create_dir` run twice would
//!   answer `Exists`), and the folder must hold exactly what was asked.
//! * `rpc-flood`: RPCs without end; dom0 destroys the domain in the middle
//!   and checks the daemon let go of it.
//! * `rpc-hostile` (with `ethos.rpc=off`): offers its own channel at the RPC
//!   node and breaks the protocol there three ways (garbage, a length beyond
//!   any frame, a ring index jump); each time the daemon must close it.

use crate::syscall as sys;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use events::{EventId, Status, Value};
use rpc::PeerState;

pub const RESTART: &[super::ProcessSpec] = &[("rpc-restart", rpc_restart)];
pub const FLOOD: &[super::ProcessSpec] = &[("rpc-flood", rpc_flood)];
pub const HOSTILE: &[super::ProcessSpec] = &[("rpc-hostile", rpc_hostile)];

/// Directories and files the restart test creates (2 requests each).
const PAIRS: usize = 24;

fn report(app: &str, result: Result<String, String>) {
    let line = match result {
        Ok(done) => format!("{app}: {done}"),
        Err(e) => format!("{app}: FAILED: {e}"),
    };
    let _ = sys::print(&line);
}

fn say(app: &str, text: &str) {
    let _ = sys::print(&format!("{app}: {text}"));
}

/// Waits for `id` up to `ms`, then retires it.
fn finish(id: EventId, ms: u64, what: &str) -> Result<events::Retired, String> {
    if !super::wait_or_timeout(id, ms)? {
        let _ = sys::cancel(id).and_then(|_| sys::retire(id));
        return Err(format!("{what}: no answer in {} s", ms / 1000));
    }
    sys::retire(id).map_err(|e| format!("{what}: retire: {e}"))
}

fn content(i: usize) -> String {
    format!("file {i:02} written once by rpc-restart\n")
}

fn rpc_restart() {
    report("rpc-restart", restart());
}

fn restart() -> Result<String, String> {
    let app = "rpc-restart";
    finish(sys::ping().map_err(|e| e.to_string())?, 120_000, "ping")?;
    say(app, "daemon answers");
    let mut requests: Vec<(String, EventId)> = Vec::new();
    let mut issue = |what: String, id: Result<EventId, crate::status::SysError>| {
        id.map(|id| requests.push((what.clone(), id)))
            .map_err(|e| format!("{what}: {e}"))
    };
    for i in 0..PAIRS {
        issue(
            format!("create_dir d{i:02}"),
            sys::create_dir(&format!("d{i:02}")),
        )?;
        issue(
            format!("write f{i:02}"),
            sys::write_var(&format!("f{i:02}"), 0, content(i).as_bytes(), true),
        )?;
    }
    for i in 0..8 {
        issue(format!("ping {i}"), sys::ping())?;
    }
    // dom0 kills the daemon when it reads this line.
    say(app, &format!("{} requests in flight", requests.len()));
    let mut failed = Vec::new();
    for (what, id) in &requests {
        let r = finish(*id, 180_000, what)?;
        if r.status != Status::Ok {
            failed.push(format!("{what}: {}", r.status));
        }
    }
    if !failed.is_empty() {
        return Err(format!("not all succeeded once: {failed:?}"));
    }
    say(app, &format!("all {} completed, each once", requests.len()));

    // The folder holds exactly what was asked, each file written once.
    let mut names = Vec::new();
    let mut cursor = 0;
    loop {
        let r = finish(
            sys::dir_list(".", cursor).map_err(|e| e.to_string())?,
            60_000,
            "dir_list",
        )?;
        let Value::Bytes(b) = r.value else {
            return Err(format!("dir_list: {}", r.status));
        };
        let page: Vec<String> = b[1..]
            .split(|&c| c == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        cursor += page.len() as u32;
        names.extend(page);
        if b[0] != 0 {
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
        let r = finish(
            sys::read_var(&format!("f{i:02}"), 0, 4096).map_err(|e| e.to_string())?,
            60_000,
            "read_var",
        )?;
        if r.value != Value::Bytes(content(i).into_bytes()) {
            return Err(format!("f{i:02} holds {:?}", r.value));
        }
    }
    Ok(format!(
        "folder holds exactly {} directories and {} files, contents intact: ok",
        PAIRS, PAIRS
    ))
}

fn rpc_flood() {
    report("rpc-flood", flood());
}

fn flood() -> Result<String, String> {
    let app = "rpc-flood";
    finish(sys::ping().map_err(|e| e.to_string())?, 120_000, "ping")?;
    let mut rounds = 0u64;
    loop {
        let mut ids = Vec::new();
        for i in 0..16 {
            let id = if i % 2 == 0 {
                sys::ping()
            } else {
                sys::write_var(&format!("flood{i}"), 0, b"flood", true)
            };
            ids.push(id.map_err(|e| e.to_string())?);
        }
        for id in ids {
            finish(id, 60_000, "flood")?;
        }
        rounds += 1;
        if rounds == 1 {
            // dom0 destroys the domain when it reads this line.
            say(app, "busy");
        }
    }
}

fn rpc_hostile() {
    report("rpc-hostile", hostile());
}

/// Waits until the daemon's end is in `want` (up to `secs`).
fn wait_peer(handle: u32, port: u32, want: PeerState, secs: u32) -> Result<(), String> {
    for _ in 0..secs {
        if sys::vchan_peer(handle).map_err(|e| format!("peer: {e}"))? == want {
            return Ok(());
        }
        let note = sys::evtchn_wait(port).map_err(|e| format!("wait: {e}"))?;
        super::wait_or_timeout(note, 1000)?;
        let _ = sys::cancel(note).and_then(|_| sys::retire(note));
    }
    Err(format!("the daemon's end never became {want:?}"))
}

/// One way of breaking the protocol, given the channel's handle.
type Harm = fn(u32) -> Result<(), String>;

fn hostile() -> Result<String, String> {
    let app = "rpc-hostile";
    let me = match super::wait_ok(sys::xs_read("domid", 0), "read domid")? {
        Value::Bytes(b) => String::from_utf8(b).map_err(|_| String::from("domid not text"))?,
        other => return Err(format!("domid {other:?}")),
    };
    let rounds: [(&str, Harm); 3] = [
        ("garbage", |h| write_all(h, &[0xee; 64])),
        ("oversized length", |h| {
            // A well-formed Ping header claiming a 4 GiB payload.
            let mut header = [0u8; 16];
            header[0..8].copy_from_slice(&7u64.to_le_bytes());
            header[8..10].copy_from_slice(&rpc::Op::Ping.code().to_le_bytes());
            header[12..16].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
            write_all(h, &header)
        }),
        ("ring index jump", |h| {
            sys::vchan_corrupt_for_test(h).map_err(|e| format!("corrupt: {e}"))
        }),
    ];
    for (n, (name, harm)) in rounds.iter().enumerate() {
        let offer = sys::vchan_offer(0, 64 * 1024).map_err(|e| format!("offer: {e}"))?;
        super::publish_vchan(super::rpc_offer::NODE, offer.ring_ref, offer.port, &me)?;
        wait_peer(offer.handle, offer.port, PeerState::Live, 120)?;
        say(
            app,
            &format!("round {}: daemon attached; sending {name}", n + 1),
        );
        harm(offer.handle)?;
        wait_peer(offer.handle, offer.port, PeerState::Closed, 60)?;
        say(
            app,
            &format!("round {}: the daemon closed the channel", n + 1),
        );
    }
    Ok(String::from("all 3 rounds refused: ok"))
}

fn write_all(handle: u32, bytes: &[u8]) -> Result<(), String> {
    let n = sys::vchan_write(handle, bytes).map_err(|e| format!("write: {e}"))?;
    if n != bytes.len() {
        return Err(format!("wrote {n} of {} bytes", bytes.len()));
    }
    Ok(())
}
