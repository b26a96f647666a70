//! Started by the kernel before any app when RPC is on: publishes the
//! kernel's RPC channel to dom0 (`data/vchan/0/rpc`), where the
//! shadowdaemon finds it, then exits.

use crate::sys;
use alloc::format;
use alloc::string::String;
use events::Value;

pub const NODE: &str = "data/vchan/0/rpc";

pub fn rpc_offer() {
    let run = || -> Result<(), String> {
        let (ring_ref, port) =
            crate::rpcclient::offer().ok_or_else(|| String::from("no RPC channel"))?;
        let me = match super::wait_ok(sys::xs_read("domid", 0), "read domid")? {
            Value::Bytes(b) => String::from_utf8(b).map_err(|_| String::from("domid not text"))?,
            other => return Err(format!("domid {other:?}")),
        };
        super::publish_vchan(NODE, ring_ref, port, &me)?;
        let _ = sys::print(&format!(
            "rpc: channel published at /local/domain/{me}/{NODE}"
        ));
        Ok(())
    };
    if let Err(e) = run() {
        let _ = sys::print(&format!("rpc: cannot publish the channel: {e}"));
    }
}
