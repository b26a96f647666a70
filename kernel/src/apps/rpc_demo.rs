//! RPCs to the dom0 shadowdaemon: write a file, read it back, list a
//! directory, get random bytes, and several RPCs waited under one tree.

use crate::syscall as sys;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use events::{Tree, Value};

pub const PROCESSES: &[super::ProcessSpec] = &[("rpc-demo", rpc_demo)];

const MS: u64 = 1_000_000;

fn say(text: &str) {
    let _ = sys::print(&format!("rpc-demo: {text}"));
}

/// Waits for an RPC's event, or 30 s: without a shadowdaemon in dom0
/// nothing would ever answer.
fn rpc(id: Result<events::EventId, crate::status::SysError>, what: &str) -> Result<Value, String> {
    let id = id.map_err(|e| format!("{what}: {e}"))?;
    if !super::wait_or_timeout(id, 30_000)? {
        let _ = sys::cancel(id).and_then(|_| sys::retire(id));
        return Err(format!("{what}: no answer from the shadowdaemon in 30 s"));
    }
    super::wait_ok(Ok(id), what)
}

fn run() -> Result<(), String> {
    let start = sys::get_time();
    rpc(sys::ping(), "ping")?;
    say(&format!(
        "ping answered in {} ms",
        super::Millis(sys::get_time() - start)
    ));

    let text = b"written by the Ethos-Xen guest through the shadowdaemon\n";
    match super::wait_ok(
        sys::write_var("notes/hello.txt", 0, text, true),
        "write_var",
    ) {
        Err(e) if e.contains("remote error") => {
            // The folder may not exist yet: create it and try again.
            rpc(sys::create_dir("notes"), "create_dir")?;
            super::wait_ok(
                sys::write_var("notes/hello.txt", 0, text, true),
                "write_var",
            )?;
        }
        other => {
            other?;
        }
    }
    say("wrote notes/hello.txt");
    let back = rpc(sys::read_var("notes/hello.txt", 0, 4096), "read_var")?;
    if back != Value::Bytes(text.to_vec()) {
        return Err(format!("read back {back:?}"));
    }
    say(&format!("read it back: {} bytes, identical", text.len()));
    if let Value::Bytes(info) = rpc(sys::file_info("notes/hello.txt"), "file_info")? {
        let size = info
            .get(3..11)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes);
        say(&format!(
            "file_info: kind {} size {size:?}",
            info.first().copied().unwrap_or(0)
        ));
    }

    if let Value::Bytes(listing) = rpc(sys::dir_list("notes", 0), "dir_list")? {
        let names: Vec<&str> = listing[1..]
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .filter_map(|n| core::str::from_utf8(n).ok())
            .collect();
        say(&format!("notes/ holds {names:?}"));
    }
    if let Value::Bytes(bytes) = rpc(sys::random(16), "random")? {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        say(&format!("16 random bytes from dom0: {hex}"));
    }

    // Several RPCs in flight at once, waited under one AND tree: one wake.
    let ids: Vec<_> = (0..8)
        .map(|_| sys::ping())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ping: {e}"))?;
    let (_, before) = sys::kernel_stats().map_err(|e| format!("{e}"))?;
    sys::block(
        &Tree::all(ids.iter().copied())
            .to_spec()
            .map_err(|e| format!("{e}"))?,
    )
    .map_err(|e| format!("block: {e}"))?;
    let (_, after) = sys::kernel_stats().map_err(|e| format!("{e}"))?;
    for id in ids {
        sys::retire(id).map_err(|e| format!("retire: {e}"))?;
    }
    say(&format!(
        "8 pings in flight under one AND tree: {} wake",
        after.wakes - before.wakes
    ));
    rpc(sys::remove("notes/hello.txt"), "remove")?;
    let gone = sys::read_var("notes/hello.txt", 0, 16).map_err(|e| format!("{e}"))?;
    let r = sys::block_and_retire(gone).map_err(|e| format!("{e}"))?;
    say(&format!("removed it; reading it now reports: {}", r.status));
    Ok(())
}

fn rpc_demo() {
    // Let the kernel's rpc-offer publish the channel and the daemon connect.
    if let Ok(id) = sys::beep(sys::get_time() + 50 * MS) {
        let _ = sys::block_and_retire(id);
    }
    match run() {
        Ok(()) => say("ok"),
        Err(e) => say(&format!("FAILED: {e}")),
    }
}
