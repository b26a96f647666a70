//! The `control` service: answers the toolstack's requests to stop,
//! suspend or shrink the domain. `xl shutdown` and `xl reboot` write `poweroff` or `reboot` to
//! the domain's `control/shutdown`; the guest acknowledges by writing the
//! node empty, then carries the request out (Linux and Mini-OS do the
//! same). `xl save` and `xl migrate` write `suspend`: the kernel lets the
//! xenstore requests in flight finish, holds new ones, and suspends
//! (`syscall::lifecycle::suspend`); when the domain runs again, here or elsewhere,
//! this loop carries on. Only requests the kernel can carry out are
//! acknowledged: an unknown one gets no acknowledgement, and the toolstack
//! gives up with its own error instead of waiting. `xl mem-set` writes
//! `memory/target`: the kernel follows it (`syscall::lifecycle::balloon`).
//!
//! It also publishes the guest's live figures for dom0 (`shadowdaemon
//! status`, or `xenstore-read`) in [`STATS`], under the guest's `data/`,
//! which xl leaves to the guest: one line (`live_stats`), at start, then at
//! most once a second and only when a figure moved. Its tick is the
//! kernel's lazy timer, which wakes the vCPU only if a process was woken
//! since it was set: a guest where nothing happens is never woken to say
//! so, and one whose work ended publishes what it changed once more, then
//! is left alone. After a restore the tick is due at once
//! (`sched::resumed`): the new domain's store has no figures yet.
//!
//! A service process: it does not keep the kernel running.

use crate::event::shutdown::Kind;
use crate::syscall as sys;
use alloc::format;
use events::{Element, Status, Value};

const NODE: &str = "control/shutdown";
/// The toolstack's memory target for the domain, in KiB (`xl mem-set`).
const TARGET: &str = "memory/target";
/// Where dom0 reads the live figures, under the guest's home.
const STATS: &str = "data/ethos/stats";
/// The figures are written at most this often.
const STATS_EVERY_NS: u64 = 1_000_000_000;

type Figures = [u64; crate::live_stats::COUNT];

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
            complain("cannot advertise", feature, &e);
        }
    }
    let (Some(requests), Some(target)) = (watch(NODE), watch(TARGET)) else {
        return;
    };
    // xenstored fires a new watch once at once, so what was written before
    // the watch was set is seen too.
    let mut next = [sys::xs_watch_next(requests), sys::xs_watch_next(target)];
    // The figures as the last tick left them: none yet, so the first
    // tick, due at once, writes them.
    let mut last: Figures = [u64::MAX; crate::live_stats::COUNT];
    let mut tick = sys::beep_lazy(0);
    loop {
        // Events run out only when the kernel's do (a process holds 2048).
        let ([Ok(a), Ok(b)], Ok(t)) = (next, tick) else {
            return say("control: a watch was lost");
        };
        // Leaves in id order, then the OR root.
        let (mut x, mut y, mut z) = (a, b, t);
        if x.0 > y.0 {
            core::mem::swap(&mut x, &mut y);
        }
        if y.0 > z.0 {
            core::mem::swap(&mut y, &mut z);
        }
        if x.0 > y.0 {
            core::mem::swap(&mut x, &mut y);
        }
        let tree = [
            Element::leaf(x, 3),
            Element::leaf(y, 3),
            Element::leaf(z, 3),
            Element::node(Element::NO_PARENT, 1),
        ];
        let Ok(woke) = sys::block(&tree) else {
            return say("control: cannot wait on the watches");
        };
        if woke.contains(&t) {
            let _ = sys::retire(t);
            tick = on_tick(&mut last);
        }
        if woke.contains(&a) {
            let _ = sys::retire(a);
            on_request();
            next[0] = sys::xs_watch_next(requests);
        }
        if woke.contains(&b) {
            let _ = sys::retire(b);
            on_target();
            next[1] = sys::xs_watch_next(target);
        }
    }
}

// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn watch(node: &str) -> Option<u32> {
    let (watch, ack) = match sys::xs_watch(node) {
        Ok(w) => w,
        Err(e) => {
            complain("cannot watch", node, &e);
            return None;
        }
    };
    match super::wait_ok(Ok(ack), "ack") {
        Ok(_) => Some(watch),
        Err(e) => {
            complain("cannot watch", node, &e);
            None
        }
    }
}

/// The tick fired: writes the live figures to [`STATS`] if one moved
/// since `last` beyond what the tick itself did meanwhile (its beep
/// completed and retired, this process woken and switched in: one each),
/// from a buffer of fixed size (a failure is said once); then sets the
/// next tick and takes the figures anew in `last`. Returns the next tick.
// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn on_tick(last: &mut Figures) -> Result<events::EventId, crate::status::SysError> {
    static SAID: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if let Ok(now) = sys::live_figures() {
        // The uptime (first) always moves; completed, retired, wakes and
        // switches (2 to 5) by one each through the tick alone.
        let own = |i: usize| (2..=5).contains(&i) as u64;
        let moved = (1..now.len()).any(|i| now[i].wrapping_sub(last[i]) > own(i));
        if moved {
            let mut line = [0u8; crate::live_stats::LINE_MAX];
            let len = crate::live_stats::format(&now, &mut line);
            if let Err(e) = super::wait_ok(sys::xs_write(STATS, &line[..len], 0), STATS) {
                if !SAID.swap(true, core::sync::atomic::Ordering::Relaxed) {
                    complain("cannot write", STATS, &e);
                }
            }
        }
    }
    let tick = sys::beep_lazy(sys::get_time() + STATS_EVERY_NS);
    // After this tick's own work, so that the next one tells it apart.
    if let Ok(now) = sys::live_figures() {
        *last = now;
    }
    tick
}

/// The node's value as text, if it has one.
// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn read(node: &str) -> Option<alloc::vec::Vec<u8>> {
    match sys::xs_read(node, 0).and_then(sys::block_and_retire) {
        Ok(r) if r.status == Status::Ok => match r.value {
            Value::Bytes(mut b) => {
                if b.last() == Some(&0) {
                    b.pop();
                }
                Some(b)
            }
            _ => None,
        },
        // Removed, or not readable: nothing asked.
        Ok(_) => None,
        Err(e) => {
            complain("cannot read", node, &e);
            None
        }
    }
}

/// `control/shutdown` changed: carry out what it asks.
// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn on_request() {
    let Some(request) = read(NODE) else { return };
    let kind = match request.as_slice() {
        b"" => return,
        b"poweroff" | b"halt" => Kind::Poweroff,
        b"reboot" => Kind::Reboot,
        b"suspend" => {
            acknowledge();
            return suspend();
        }
        other => {
            let text = core::str::from_utf8(other).unwrap_or("<not text>");
            return say(&format!(
                "control: unknown request {text} in {NODE}: ignored"
            ));
        }
    };
    acknowledge();
    crate::syscall::lifecycle::request_shutdown(kind);
}

/// The toolstack waits for the node to empty before it looks further.
// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn acknowledge() {
    if let Err(e) = super::wait_ok(sys::xs_write(NODE, b"", 0), "acknowledge") {
        complain("cannot acknowledge", NODE, &e);
    }
}

/// `memory/target` changed: follow it (a value that is no number of KiB
/// is said and ignored).
// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn on_target() {
    let Some(value) = read(TARGET) else { return };
    match core::str::from_utf8(&value)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    {
        Some(kib) => crate::syscall::lifecycle::balloon(kib),
        None => say("control: memory/target is not a number of KiB: ignored"),
    }
}

/// One line for every failure (one format in the image).
// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn complain(what: &str, node: &str, e: &dyn core::fmt::Display) {
    say(&format!("control: {what} {node}: {e}"));
}

/// Waits (bounded) until xenstored owes no reply, holding new requests,
/// then suspends.
// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn suspend() {
    use crate::syscall::lifecycle as s;
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

// One copy, not one per caller: the core image must stay small.
#[inline(never)]
fn say(text: &str) {
    let _ = sys::print(text);
}
