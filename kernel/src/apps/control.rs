//! The `control` service: answers the toolstack's requests to stop the
//! domain. `xl shutdown` and `xl reboot` write `poweroff` or `reboot` to
//! the domain's `control/shutdown`; the guest acknowledges by writing the
//! node empty, then carries the request out (Linux and Mini-OS do the
//! same). `xl save` and `xl migrate` write `suspend`: the kernel lets the
//! xenstore requests in flight finish, holds new ones, and suspends
//! (`syscall::suspend`); when the domain runs again, here or elsewhere,
//! this loop carries on. Only requests the kernel can carry out are
//! acknowledged: an unknown one gets no acknowledgement, and the toolstack
//! gives up with its own error instead of waiting.
//!
//! A service process: it does not keep the kernel running.

use crate::event::shutdown::Kind;
use crate::syscall as sys;
use alloc::format;
use events::{Status, Value};

const NODE: &str = "control/shutdown";

pub fn control() {
    // What the guest answers, for tools that look before they ask
    // (libxl's `feature-*` convention). The nodes are the toolstack's,
    // writable by the guest.
    for feature in [
        "control/feature-poweroff",
        "control/feature-reboot",
        "control/feature-suspend",
    ] {
        if let Err(e) = super::wait_ok(sys::xs_write(feature, b"1", 0), feature) {
            say(&format!("control: cannot advertise: {e}"));
        }
    }
    let watch = match sys::xs_watch(NODE) {
        Ok((watch, ack)) => match super::wait_ok(Ok(ack), "watch") {
            Ok(_) => watch,
            Err(e) => return say(&format!("control: cannot watch {NODE}: {e}")),
        },
        Err(e) => return say(&format!("control: cannot watch {NODE}: {e}")),
    };
    // xenstored fires a new watch once at once, so a request written
    // before the watch was set is seen too.
    loop {
        if let Err(e) = super::wait_ok(sys::xs_watch_next(watch), "watch") {
            return say(&format!("control: watch on {NODE} lost: {e}"));
        }
        let request = match sys::xs_read(NODE, 0).and_then(sys::block_and_retire) {
            Ok(r) if r.status == Status::Ok => match r.value {
                Value::Bytes(b) => b,
                _ => continue,
            },
            // Removed, or not readable: nothing asked.
            Ok(_) => continue,
            Err(e) => {
                say(&format!("control: cannot read {NODE}: {e}"));
                continue;
            }
        };
        let kind = match request.strip_suffix(b"\0").unwrap_or(&request) {
            b"" => continue,
            b"poweroff" | b"halt" => Kind::Poweroff,
            b"reboot" => Kind::Reboot,
            b"suspend" => {
                if let Err(e) = super::wait_ok(sys::xs_write(NODE, b"", 0), "acknowledge") {
                    say(&format!("control: {e}"));
                }
                suspend();
                continue;
            }
            other => {
                let text = core::str::from_utf8(other).unwrap_or("<not text>");
                say(&format!(
                    "control: unknown request {text} in {NODE}: ignored"
                ));
                continue;
            }
        };
        // Acknowledge first: the toolstack waits for the node to empty.
        if let Err(e) = super::wait_ok(sys::xs_write(NODE, b"", 0), "acknowledge") {
            say(&format!("control: {e}"));
        }
        sys::request_shutdown(kind);
    }
}

/// Waits (bounded) until xenstored owes no reply, holding new requests,
/// then suspends.
fn suspend() {
    use crate::syscall::suspend as s;
    s::xs_hold(true);
    // 2 s at most: a reply xenstored never sends must not keep the
    // toolstack waiting; the request is then lost with the connection.
    for _ in 0..200 {
        if s::xs_quiet() {
            break;
        }
        let _ = sys::beep(sys::get_time() + 10_000_000).and_then(sys::block_and_retire);
    }
    if !s::xs_quiet() {
        say("control: a xenstore reply is still owed; suspending without it");
    }
    s::suspend();
}

fn say(text: &str) {
    let _ = sys::print(text);
}
