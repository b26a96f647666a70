//! The xenbus handshake with Linux netback, as a service process (started
//! by the kernel when the command line gives `ethos.ip=`). The data path is
//! the kernel's (`netdev`, `netstack`); this process only talks xenstore:
//!
//! 0. a domain with no network device at all (no `vif=` in the xl config)
//!    was told to use a network it cannot have: after [`FIRST_DEVICE_MS`]
//!    it says so and powers the domain off, instead of waiting for ever;
//! 1. reads `device/vif/0/{backend,backend-id,mac}`;
//! 2. waits for the backend to reach InitWait, asks the kernel to attach
//!    (`net_attach`: rings, buffers, grants, port), publishes the ring
//!    references, port and features (`request-rx-copy`, no checksum offload,
//!    no scatter-gather) and state Connected in one transaction;
//! 3. waits for the backend to be Connected and starts the stack (`net_up`);
//! 4. watches the backend: when it closes or disappears (`xl
//!    network-detach`), ends the stack (`net_down`: every socket's waiting
//!    events complete with NET_DOWN), and starts over when a backend
//!    appears again (`xl network-attach`); after a restore (the old
//!    backend went with the old domain) it connects the new backend and
//!    the stack keeps its sockets.

use crate::syscall::{self as sys, net as sysnet};
use alloc::format;
use alloc::string::String;
use events::Value;

/// Where the toolstack lists our network devices (the first one is used).
const VIFS: &str = "device/vif";
/// How long a domain that never had a network device waits for one: the
/// toolstack writes its devices before the domain runs, so this only
/// leaves time for an `xl network-attach` right after `xl create`.
const FIRST_DEVICE_MS: u64 = 5_000;
const _: () = assert!(FIRST_DEVICE_MS == 5_000, "the line says 5 s");
/// XenbusState values (io/xenbus.h).
const INIT_WAIT: u32 = 2;
const CONNECTED: u32 = 4;
const CLOSING: u32 = 5;
const CLOSED: u32 = 6;

fn say(text: &str) {
    let _ = sys::print(&format!("net-setup: {text}"));
}

fn read(path: &str) -> Option<String> {
    match super::wait_ok(sys::xs_read(path, 0), path) {
        Ok(Value::Bytes(b)) => String::from_utf8(b).ok(),
        _ => None,
    }
}

fn state(path: &str) -> Option<u32> {
    read(&format!("{path}/state"))?.trim().parse().ok()
}

/// Parses `aa:bb:cc:dd:ee:ff`.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Waits (watching `node`) until `done` holds, or `ms` pass.
fn wait_for(node: &str, ms: u64, done: impl Fn() -> bool) -> Result<bool, String> {
    let (watch, ack) = sys::xs_watch(node).map_err(|e| format!("watch {node}: {e}"))?;
    super::wait_ok(Ok(ack), "watch")?;
    let start = sys::get_time();
    let mut ok = done();
    while !ok && sys::get_time() - start < ms * 1_000_000 {
        let next = sys::xs_watch_next(watch).map_err(|e| format!("watch_next: {e}"))?;
        let left = (ms * 1_000_000).saturating_sub(sys::get_time() - start) / 1_000_000;
        if super::wait_or_timeout(next, left.max(1))? {
            let _ = sys::retire(next);
        } else {
            let _ = sys::cancel(next).and_then(|_| sys::retire(next));
        }
        ok = done();
    }
    if let Ok(id) = sys::xs_unwatch(watch) {
        let _ = sys::block_and_retire(id);
    }
    Ok(ok)
}

/// Connects device `vif` (`device/vif/N`); returns its backend's path.
fn connect_once(vif: &str) -> Result<String, String> {
    // The toolstack writes these before the domain starts (or on attach).
    let backend = read(&format!("{vif}/backend")).ok_or("no vif")?;
    let backend_id: u16 = read(&format!("{vif}/backend-id"))
        .and_then(|s| s.trim().parse().ok())
        .ok_or("bad backend-id")?;
    let mac = read(&format!("{vif}/mac"))
        .as_deref()
        .and_then(parse_mac)
        .ok_or("bad mac")?;
    if !wait_for(&format!("{backend}/state"), 30_000, || {
        state(&backend).is_some_and(|s| s >= INIT_WAIT)
    })? {
        return Err(format!("backend {backend} never reached InitWait"));
    }
    let (tx, rx, port) = sysnet::net_attach(backend_id).map_err(|e| format!("attach: {e}"))?;
    for _ in 0..10 {
        let tx_id = match super::wait_ok(sys::xs_transaction_start(), "transaction")? {
            Value::Word(t) => t as u32,
            other => return Err(format!("transaction {other:?}")),
        };
        let keys = [
            ("tx-ring-ref", format!("{tx}")),
            ("rx-ring-ref", format!("{rx}")),
            ("event-channel", format!("{port}")),
            ("request-rx-copy", String::from("1")),
            ("feature-rx-notify", String::from("1")),
            ("feature-no-csum-offload", String::from("1")),
            ("feature-sg", String::from("0")),
            ("feature-gso-tcpv4", String::from("0")),
            ("state", format!("{CONNECTED}")),
        ];
        for (k, v) in keys {
            super::wait_ok(sys::xs_write(&format!("{vif}/{k}"), v.as_bytes(), tx_id), k)?;
        }
        let end = sys::xs_transaction_end(tx_id, true).map_err(|e| format!("commit: {e}"))?;
        match sys::block_and_retire(end) {
            Ok(r) if r.status == events::Status::Ok => break,
            // EAGAIN (11): someone wrote meanwhile; try again.
            Ok(r) if r.status == events::Status::Remote(11) => continue,
            other => return Err(format!("commit: {other:?}")),
        }
    }
    if !wait_for(&format!("{backend}/state"), 30_000, || {
        state(&backend) == Some(CONNECTED)
    })? {
        return Err(String::from("backend never connected"));
    }
    // Segmentation offload out of the guest needs the backend to take
    // multi-slot packets with a GSO descriptor (netback offers both).
    let offers = |key: &str| read(&format!("{backend}/{key}")).is_some_and(|v| v.trim() == "1");
    let gso = offers("feature-sg") && offers("feature-gso-tcpv4");
    sysnet::net_up(mac, gso).map_err(|e| format!("up: {e}"))?;
    Ok(backend)
}

/// The first network device's frontend node (`device/vif/N`), if any.
fn current_vif() -> Option<String> {
    let Ok(Value::Bytes(names)) = super::wait_ok(sys::xs_directory(VIFS, 0), VIFS) else {
        return None;
    };
    let first = xen::xenstore::directory_entries(&names)
        .filter_map(|n| core::str::from_utf8(n).ok()?.parse::<u32>().ok())
        .min()?;
    Some(format!("{VIFS}/{first}"))
}

/// Whether a device is there whose backend is not `old` or not closing.
fn fresh_vif(old: Option<&str>) -> bool {
    current_vif()
        .and_then(|v| read(&format!("{v}/backend")))
        .is_some_and(|b| Some(b.as_str()) != old || state(&b).is_some_and(|s| s < CLOSING))
}

pub fn net_setup() {
    let mut old: Option<String> = None;
    let mut had_device = false;
    loop {
        if !had_device && !fresh_vif(None) {
            match wait_for(VIFS, FIRST_DEVICE_MS, || fresh_vif(None)) {
                Ok(true) => continue,
                Ok(false) => sysnet::net_absent(
                    "ethos.ip is set but the domain has no network device \
                     (no device/vif after 5 s): give the xl config a vif=",
                ),
                Err(e) => sysnet::net_absent(&e),
            }
        }
        had_device = true;
        if !fresh_vif(old.as_deref()) {
            say("waiting for a network device");
            let _ = wait_for(VIFS, 3_600_000, || fresh_vif(old.as_deref()));
            continue;
        }
        let Some(vif) = current_vif() else { continue };
        let backend = match connect_once(&vif) {
            Ok(b) => b,
            Err(e) => {
                say(&format!("no network on {vif}: {e}"));
                let _ = sysnet::net_down();
                old = read(&format!("{vif}/backend"));
                continue;
            }
        };
        say(&format!("{vif} connected to {backend}"));
        // Until the backend leaves (xl network-detach).
        let _ = wait_for(&format!("{backend}/state"), u64::MAX / 2_000_000, || {
            state(&backend).is_none_or(|s| s >= CLOSING)
        });
        if sysnet::net_severed() {
            // Restored: the old backend belonged to the old domain. The
            // same device node has a new backend now; the stack keeps its
            // sockets while the handshake is made again.
            say("the domain was restored: connecting the new backend");
            old = None;
            continue;
        }
        say("backend closing: network down");
        let _ = sysnet::net_down();
        // Closed (6): we let go too; the toolstack then removes the device.
        let _ = super::wait_ok(sys::xs_write(&format!("{vif}/state"), b"6", 0), "state");
        // netback unmaps our rings as it closes: then the old device's
        // pages can go back to the heap (they are half a megabyte).
        let _ = wait_for(&format!("{backend}/state"), 30_000, || {
            state(&backend).is_none_or(|s| s == CLOSED)
        });
        match sysnet::net_release() {
            Ok(0) => {}
            Ok(held) => say(&format!(
                "{held} old device(s) still mapped by a backend; kept"
            )),
            Err(e) => say(&format!("release: {e}")),
        }
        old = Some(backend);
    }
}
