//! Wire compatibility with libxenvchan: this guest offers a vchan server,
//! publishes it in xenstore (one transaction, readable by dom0 alone), and
//! dom0's `vchan-socket-proxy` (Debian's libxenvchan) connects as the
//! client. The rig echoes what the proxy hands it; the guest checks it gets
//! back exactly what it sent.

use crate::syscall as sys;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use events::Value;
use rpc::PeerState;

pub const PROCESSES: &[super::ProcessSpec] = &[("vchan-echo", vchan_echo)];

const NODE: &str = "data/vchan/0/echo";
const MESSAGE: &[u8] = b"hello from ethos over vchan\n";

fn say(text: &str) {
    let _ = sys::print(&format!("vchan-echo: {text}"));
}

/// Waits for the next notification on `port`, or `ms` at most.
fn wait_port(port: u32, ms: u64) -> Result<(), String> {
    let note = sys::evtchn_wait(port).map_err(|e| format!("wait: {e}"))?;
    super::wait_or_timeout(note, ms)?;
    let _ = sys::cancel(note);
    let _ = sys::retire(note);
    Ok(())
}

fn run() -> Result<(), String> {
    let me = match super::wait_ok(sys::xs_read("domid", 0), "read domid")? {
        Value::Bytes(b) => String::from_utf8(b).map_err(|_| String::from("domid not text"))?,
        other => return Err(format!("domid {other:?}")),
    };
    let offer = sys::vchan_offer(0, 4096).map_err(|e| format!("offer: {e}"))?;
    super::publish_vchan(NODE, offer.ring_ref, offer.port, &me)?;
    say(&format!(
        "offered at /local/domain/{me}/{NODE} (ring-ref {}, port {})",
        offer.ring_ref, offer.port
    ));
    // Wait (up to 120 s) for the client.
    for _ in 0..120 {
        if sys::vchan_peer(offer.handle).map_err(|e| format!("peer: {e}"))? == PeerState::Live {
            break;
        }
        wait_port(offer.port, 1000)?;
    }
    if sys::vchan_peer(offer.handle).map_err(|e| format!("peer: {e}"))? != PeerState::Live {
        return Err(String::from("no client connected"));
    }
    say("client connected");
    let mut sent = 0;
    while sent < MESSAGE.len() {
        sent +=
            sys::vchan_write(offer.handle, &MESSAGE[sent..]).map_err(|e| format!("write: {e}"))?;
        if sent < MESSAGE.len() {
            wait_port(offer.port, 1000)?;
        }
    }
    let mut echoed = Vec::new();
    let mut buf = [0u8; 256];
    for _ in 0..120 {
        let n = sys::vchan_read(offer.handle, &mut buf).map_err(|e| format!("read: {e}"))?;
        echoed.extend_from_slice(&buf[..n]);
        if echoed.len() >= MESSAGE.len() {
            break;
        }
        wait_port(offer.port, 1000)?;
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

fn vchan_echo() {
    match run() {
        Ok(()) => say("ok"),
        Err(e) => say(&format!("FAILED: {e}")),
    }
}
