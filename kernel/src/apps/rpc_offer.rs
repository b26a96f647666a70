//! Started by the kernel before any app when RPC is on: publishes the
//! kernel's RPC channel to dom0 (`data/vchan/0/rpc`), where the
//! shadowdaemon finds it, and publishes it again each time the kernel
//! offers it anew (the daemon went away, the domain was restored). A
//! service process: the kernel powers off once only service processes are
//! left.
//!
//! Beside the channel's keys, in the same transaction, goes this boot's id
//! (`boot-id`, 16 lowercase hex digits): the daemon keys its journal of
//! this guest's requests by the VM and the boot, so that a restored or
//! migrated domain (a new domid, the same memory, so the same id) is
//! answered from it what the daemon had done before the save, and a reboot
//! (a new id) starts afresh.

use crate::syscall as sys;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use events::Value;

pub const NODE: &str = "data/vchan/0/rpc";

/// This boot's id; 0 until the kernel sets it (then none is published).
static BOOT_ID: AtomicU64 = AtomicU64::new(0);

/// Sets this boot's id, drawn once at boot from the kernel's secret source,
/// before rpc-offer starts. Kept in memory, it survives a save and restore.
pub fn set_boot_id(id: u64) {
    BOOT_ID.store(id, Ordering::Relaxed);
}

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
        let boot_id = BOOT_ID.load(Ordering::Relaxed);
        let boot_hex = format!("{boot_id:016x}");
        let extra: &[(&str, &str)] = if boot_id == 0 {
            &[]
        } else {
            &[("boot-id", &boot_hex)]
        };
        match super::publish_vchan(NODE, ring_ref, port, extra, &me) {
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
