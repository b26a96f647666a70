//! Started by the kernel before any app when RPC is on: publishes the
//! kernel's RPC channel to dom0 (`data/vchan/0/rpc`), where the
//! shadowdaemon finds it, and publishes it again each time the kernel
//! offers it anew (the daemon went away). A service process: the kernel
//! powers off once only service processes are left.

use crate::syscall as sys;
use alloc::format;
use alloc::string::String;
use events::Value;

pub const NODE: &str = "data/vchan/0/rpc";

pub fn rpc_offer() {
    loop {
        let word = match super::wait_ok(sys::rpc_next_offer(), "next offer") {
            Ok(Value::Word(w)) => w,
            Ok(_) => {
                let _ = sys::print("rpc: no offer to publish: not a word");
                return;
            }
            Err(e) => {
                let _ = sys::print(&format!("rpc: no offer to publish: {e}"));
                return;
            }
        };
        let (ring_ref, port) = ((word >> 32) as u32, word as u32);
        // Read at each offer: a restored or migrated domain has another domid,
        // and the nodes must be readable by this domain, whichever it is.
        let me = match super::wait_ok(sys::xs_read("domid", 0), "read domid") {
            Ok(Value::Bytes(b)) => String::from_utf8(b).unwrap_or_default(),
            // Messages by Display only: Debug of text would pull the escaping
            // tables into the image, which must stay small.
            Ok(_) => {
                let _ = sys::print("rpc: cannot read our domid: not text");
                return;
            }
            Err(e) => {
                let _ = sys::print(&format!("rpc: cannot read our domid: {e}"));
                return;
            }
        };
        match super::publish_vchan(NODE, ring_ref, port, &me) {
            Ok(()) => {
                let _ = sys::print(&format!(
                    "rpc: channel published at /local/domain/{me}/{NODE} (ring-ref {ring_ref}, port {port})"
                ));
            }
            Err(e) => {
                let _ = sys::print(&format!("rpc: cannot publish the channel: {e}"));
                return;
            }
        }
    }
}
