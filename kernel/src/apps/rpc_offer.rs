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
//!
//! It also watches [`REFUSED`], where a daemon that will not serve this
//! domain says why (a short word), and tells the RPC client, whose events
//! then complete `NotServed` at once instead of waiting for nothing. The
//! node is dom0's; its value is trusted no further than a bounded word of
//! `[a-z0-9-]` to print: anything else present there still means refused.

use crate::syscall as sys;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use events::{Element, EventId, Status, Value};

pub const NODE: &str = "data/vchan/0/rpc";
/// Written by the daemon when it will not serve this domain, removed when
/// it does (the daemon's `REFUSED_NODE`).
pub const REFUSED: &str = "data/vchan/0/rpc-refused";
/// Longest reason word printed.
const MAX_REASON: usize = 32;

fn say(text: &str) {
    let _ = sys::print(text);
}

/// This boot's id; 0 until the kernel sets it (then none is published).
static BOOT_ID: AtomicU64 = AtomicU64::new(0);

/// Sets this boot's id, drawn once at boot from the kernel's secret source,
/// before rpc-offer starts. Kept in memory, it survives a save and restore.
pub fn set_boot_id(id: u64) {
    BOOT_ID.store(id, Ordering::Relaxed);
}

pub fn rpc_offer() {
    // Without the watch the channel is still published: only the refusal
    // would go unheard (RPCs then wait, as they did before).
    let watch = match sys::xs_watch(REFUSED) {
        Ok((watch, ack)) => match super::wait_ok(Ok(ack), "watch") {
            Ok(_) => Some(watch),
            Err(e) => {
                say(&format!("rpc: cannot watch {REFUSED}: {e}"));
                None
            }
        },
        Err(e) => {
            say(&format!("rpc: cannot watch {REFUSED}: {e}"));
            None
        }
    };
    let mut offer: Option<EventId> = None;
    let mut firing: Option<EventId> = None;
    loop {
        let o = match offer {
            Some(o) => o,
            None => match sys::rpc_next_offer() {
                Ok(o) => *offer.insert(o),
                Err(e) => return say(&format!("rpc: no offer to publish: {e}")),
            },
        };
        if firing.is_none() {
            firing = watch.and_then(|w| sys::xs_watch_next(w).ok());
        }
        // Either of them (an OR: the root needs one), leaves sorted by id;
        // spelled out, as the tree builder would pull a sort into the image.
        let root = |n| Element::node(Element::NO_PARENT, n);
        let woke = match firing {
            Some(f) => {
                let (a, b) = if f.0 < o.0 { (f, o) } else { (o, f) };
                sys::block(&[Element::leaf(a, 2), Element::leaf(b, 2), root(1)])
            }
            None => sys::block(&[Element::leaf(o, 1), root(1)]),
        };
        let woke = match woke {
            Ok(w) => w,
            Err(e) => return say(&format!("rpc: block: {e}")),
        };
        if let Some(f) = firing.filter(|f| woke.contains(f)) {
            firing = None;
            let _ = sys::retire(f);
            sys::rpc_not_served(refusal().as_deref());
        }
        if woke.contains(&o) {
            offer = None;
            if !publish(o) {
                return;
            }
        }
    }
}

/// Publishes the offer event `o` completed with; false if that failed.
fn publish(o: EventId) -> bool {
    let word = match sys::retire(o) {
        Ok(r) => match (r.status, r.value) {
            (Status::Ok, Value::Word(w)) => w,
            (s, _) => {
                say(&format!("rpc: no offer to publish: {s}"));
                return false;
            }
        },
        Err(e) => {
            say(&format!("rpc: no offer to publish: {e}"));
            return false;
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
            say("rpc: cannot read our domid: not text");
            return false;
        }
        Err(e) => {
            say(&format!("rpc: cannot read our domid: {e}"));
            return false;
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
            say(&format!(
                "rpc: channel published at /local/domain/{me}/{NODE} (ring-ref {ring_ref}, port {port})"
            ));
            true
        }
        Err(e) => {
            say(&format!("rpc: cannot publish the channel: {e}"));
            false
        }
    }
}

/// The daemon's refusal as it stands: `None` if [`REFUSED`] is absent or
/// empty (or unreadable: no word from the daemon), else its reason word,
/// or `?` for a value that is not a short word.
fn refusal() -> Option<String> {
    let r = sys::xs_read(REFUSED, 0)
        .and_then(sys::block_and_retire)
        .ok()?;
    let Value::Bytes(value) = r.value else {
        return None;
    };
    if r.status != Status::Ok || value.is_empty() {
        return None;
    }
    let word = value.len() <= MAX_REASON
        && value
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    Some(if word {
        // Only ASCII passed.
        String::from_utf8(value).unwrap_or_default()
    } else {
        String::from("?")
    })
}
