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

/// Reads every path at once: the requests go out together, so their round
/// trips to xenstored overlap (one wait instead of one per key). The values
/// in order; None for a key that is missing or not text.
fn read_all<const N: usize>(paths: [String; N]) -> [Option<String>; N] {
    let ids = paths.each_ref().map(|p| sys::xs_read(p, 0));
    // Every reply is waited for (and its event retired), whatever came before.
    ids.map(|id| match super::wait_ok(id, "read") {
        Ok(Value::Bytes(b)) => String::from_utf8(b).ok(),
        _ => None,
    })
}

/// The backend as one batch of reads shows it: its state, and whether it
/// takes GSO packets (segmentation offload out of the guest needs
/// multi-slot packets with a GSO descriptor; netback offers both).
#[derive(Clone, Copy)]
struct Look {
    state: Option<u32>,
    gso: bool,
}

fn look(backend: &str) -> Look {
    let [state, sg, gso] = read_all([
        format!("{backend}/state"),
        format!("{backend}/feature-sg"),
        format!("{backend}/feature-gso-tcpv4"),
    ]);
    let offers = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim() == "1");
    Look {
        state: state.and_then(|s| s.trim().parse().ok()),
        gso: offers(&sg) && offers(&gso),
    }
}

/// Waits (on `watch`, set on the backend's state) until the backend's
/// state satisfies `done`, or `ms` pass; `seen` is the last look, kept
/// up to date. Whether `done` held.
fn wait_state(
    watch: u32,
    backend: &str,
    ms: u64,
    seen: &mut Look,
    done: impl Fn(u32) -> bool,
) -> Result<bool, String> {
    let start = sys::get_time();
    loop {
        if seen.state.is_some_and(&done) {
            return Ok(true);
        }
        let elapsed = sys::get_time() - start;
        if elapsed >= ms * 1_000_000 {
            return Ok(false);
        }
        let next = sys::xs_watch_next(watch).map_err(|e| format!("watch_next: {e}"))?;
        let left = (ms * 1_000_000 - elapsed) / 1_000_000;
        if super::wait_or_timeout(next, left.max(1))? {
            let _ = sys::retire(next);
        } else {
            let _ = sys::cancel(next).and_then(|_| sys::retire(next));
        }
        *seen = look(backend);
    }
}

/// Connects device `vif` (`device/vif/N`); returns its backend's path.
/// After a restore this is the downtime a peer sees, so every wait that can
/// overlap another does: the frontend's keys are read together, the watch
/// on the backend's state is set once (with the first look at the backend
/// beside it) for both waits, the transaction's writes go out together,
/// and the stack starts before the watch is taken down.
fn connect_once(vif: &str) -> Result<String, String> {
    // The toolstack writes these before the domain starts (or on attach).
    let [backend, backend_id, mac] = read_all([
        format!("{vif}/backend"),
        format!("{vif}/backend-id"),
        format!("{vif}/mac"),
    ]);
    let backend = backend.ok_or("no vif")?;
    let backend_id: u16 = backend_id
        .and_then(|s| s.trim().parse().ok())
        .ok_or("bad backend-id")?;
    let mac = mac.as_deref().and_then(parse_mac).ok_or("bad mac")?;
    let node = format!("{backend}/state");
    let (watch, ack) = sys::xs_watch(&node).map_err(|e| format!("watch {node}: {e}"))?;
    let result = connect_watched(vif, &backend, backend_id, mac, watch, ack);
    if let Ok(id) = sys::xs_unwatch(watch) {
        let _ = sys::block_and_retire(id);
    }
    result.map(|()| backend)
}

fn connect_watched(
    vif: &str,
    backend: &str,
    backend_id: u16,
    mac: [u8; 6],
    watch: u32,
    ack: events::EventId,
) -> Result<(), String> {
    // Read while xenstored registers the watch: one round trip for both.
    let mut seen = look(backend);
    super::wait_ok(Ok(ack), "watch")?;
    if !wait_state(watch, backend, 30_000, &mut seen, |s| s >= INIT_WAIT)? {
        return Err(format!("backend {backend} never reached InitWait"));
    }
    let (tx, rx, port) = sysnet::net_attach(backend_id).map_err(|e| format!("attach: {e}"))?;
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
    for _ in 0..10 {
        let tx_id = match super::wait_ok(sys::xs_transaction_start(), "transaction")? {
            Value::Word(t) => t as u32,
            other => return Err(format!("transaction {other:?}")),
        };
        // All nine writes in flight at once; every reply is waited for.
        let ids = keys
            .each_ref()
            .map(|(k, v)| sys::xs_write(&format!("{vif}/{k}"), v.as_bytes(), tx_id));
        let mut failed = None;
        for (id, (k, _)) in ids.into_iter().zip(&keys) {
            if let Err(e) = super::wait_ok(id, k) {
                failed.get_or_insert(e);
            }
        }
        if let Some(e) = failed {
            if let Ok(end) = sys::xs_transaction_end(tx_id, false) {
                let _ = sys::block_and_retire(end);
            }
            return Err(e);
        }
        let end = sys::xs_transaction_end(tx_id, true).map_err(|e| format!("commit: {e}"))?;
        match sys::block_and_retire(end) {
            Ok(r) if r.status == events::Status::Ok => break,
            // EAGAIN (11): someone wrote meanwhile; try again.
            Ok(r) if r.status == events::Status::Remote(11) => continue,
            other => return Err(format!("commit: {other:?}")),
        }
    }
    if !wait_state(watch, backend, 30_000, &mut seen, |s| s == CONNECTED)? {
        return Err(String::from("backend never connected"));
    }
    // The features as read with the Connected state (written before it).
    sysnet::net_up(mac, seen.gso).map_err(|e| format!("up: {e}"))
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
    // After a restore: the device node to connect at once (the same node,
    // with a new backend), without the search a first boot makes.
    let mut restored: Option<String> = None;
    loop {
        let vif = match restored.take() {
            Some(vif) => vif,
            None => {
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
                vif
            }
        };
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
        // Until the backend leaves (xl network-detach), or the domain was
        // restored (asked first: no round trip to xenstored for it).
        let _ = wait_for(&format!("{backend}/state"), u64::MAX / 2_000_000, || {
            sysnet::net_severed() || state(&backend).is_none_or(|s| s >= CLOSING)
        });
        if sysnet::net_severed() {
            // Restored: the old backend belonged to the old domain. The
            // same device node has a new backend now; the stack keeps its
            // sockets while the handshake is made again.
            say("the domain was restored: connecting the new backend");
            old = None;
            // None (no device now): the search below waits for one.
            restored = current_vif();
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
