//! Event channels across `xl save` and `xl restore` (or a migration): what
//! a program holds is a handle, and the kernel makes each channel again in
//! the new domain where it can.
//!
//! It allocates a channel for dom0 and publishes its port at
//! `data/evtchn-restore/port`; dom0 notifies it once (`shadowdaemon debug
//! evtchn-notify`) and the program says it is ready to be saved. It also
//! makes a loop within the guest: a channel allocated for itself and one
//! bound to it. Then it waits on the dom0 channel and the loop's bound end.
//! After the restore:
//! - the dom0 channel's wait completes `Rebound` with its new port, which
//!   the program publishes at `data/evtchn-restore/rebound`; dom0 notifies
//!   that port and the next wait completes with the notification;
//! - the loop's bound end's wait completes `PeerGone`; a notify and a
//!   second wait say so too, and it closes;
//! - the loop's unbound end, on which nothing waited, tells its next wait
//!   `Rebound` at once.
//!
//! All within two minutes, or it says what it missed and exits 1.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use ethos::evtchn::{self, Channel, Woke};
use ethos::{event, println, time, xenstore, Event, Status, Tree};

ethos::main!(main);

const DOM0: u16 = 0;
/// This guest itself, as the remote end of an event channel.
const DOMID_SELF: u16 = 0x7ff0;
const NODE: &str = "data/evtchn-restore";

fn main(_args: ethos::Args) -> i32 {
    match run() {
        Ok(()) => {
            println!("evtchn-restore: all channels accounted for");
            0
        }
        Err(e) => {
            println!("evtchn-restore: {e}");
            1
        }
    }
}

fn err(what: &'static str) -> impl Fn(Status) -> String {
    move |s| format!("{what}: {s}")
}

/// Writes `value` at `NODE/key` and waits for xenstored's answer.
fn publish(key: &str, value: u32) -> Result<(), String> {
    let path = format!("{NODE}/{key}");
    let w = xenstore::write(&path, format!("{value}").as_bytes(), xenstore::Tx::NONE)
        .map_err(err("xenstore write"))?;
    event::block_and_retire(w)
        .and_then(|r| r.into_result())
        .map(|_| ())
        .map_err(err("xenstore write"))
}

/// What one wait on a channel gave: the channel lives on, or its status.
fn retire_wait(wait: Event) -> Result<Result<Woke, Status>, String> {
    Ok(evtchn::woke(
        event::retire_word(wait).map_err(err("retire"))?,
    ))
}

fn run() -> Result<(), String> {
    let deadline =
        event::beep(time::now().map_err(err("time"))? + 120_000 * time::MS).map_err(err("beep"))?;
    let (to_dom0, dom0_port) = evtchn::alloc_unbound(DOM0).map_err(err("alloc for dom0"))?;
    let (loop_unbound, loop_port) =
        evtchn::alloc_unbound(DOMID_SELF).map_err(err("alloc for itself"))?;
    let (loop_bound, _) =
        evtchn::bind_interdomain(DOMID_SELF, loop_port).map_err(err("bind to itself"))?;
    publish("port", dom0_port)?;
    println!("evtchn-restore: dom0 port {dom0_port}, loop port {loop_port}; waiting for dom0");

    // Before the save: dom0 notifies the port it was told.
    let mut dom0_wait = evtchn::wait(to_dom0).map_err(err("wait"))?;
    if !event::wait(&Tree::any([dom0_wait, deadline]))
        .map_err(err("block"))?
        .contains(&dom0_wait)
    {
        return Err(String::from("dom0 never notified the first port"));
    }
    match retire_wait(dom0_wait)? {
        Ok(Woke::Notified(n)) => println!("evtchn-restore: notified on port {dom0_port} ({n})"),
        other => return Err(format!("the first wait gave {other:?}")),
    }
    dom0_wait = evtchn::wait(to_dom0).map_err(err("wait"))?;
    let mut loop_wait = Some(evtchn::wait(loop_bound).map_err(err("wait"))?);
    println!("evtchn-restore: ready for the save");

    let (mut rebound_to, mut dom0_done, mut loop_done) = (None, false, false);
    while !(dom0_done && loop_done) {
        let woke = event::wait(&Tree::any(
            [Some(dom0_wait), loop_wait, Some(deadline)]
                .into_iter()
                .flatten(),
        ))
        .map_err(err("block"))?;
        if woke.contains(&dom0_wait) {
            match (retire_wait(dom0_wait)?, rebound_to) {
                (Ok(Woke::Rebound(port)), None) => {
                    println!("evtchn-restore: dom0 channel Rebound: port {dom0_port} -> {port}");
                    rebound_to = Some(port);
                    publish("rebound", port)?;
                }
                (Ok(Woke::Notified(n)), Some(port)) => {
                    println!("evtchn-restore: dom0 notified the new port {port} ({n})");
                    dom0_done = true;
                }
                (other, _) => return Err(format!("the dom0 channel's wait gave {other:?}")),
            }
            if !dom0_done {
                dom0_wait = evtchn::wait(to_dom0).map_err(err("wait"))?;
            }
        }
        if let Some(w) = loop_wait.filter(|w| woke.contains(w)) {
            loop_wait = None;
            match retire_wait(w)? {
                // Xen marks a freshly bound port pending: that one (nobody
                // else notifies the loop).
                Ok(Woke::Notified(_)) => {
                    loop_wait = Some(evtchn::wait(loop_bound).map_err(err("wait"))?);
                }
                Err(Status::PeerGone) => {
                    lost_end_says_so(loop_bound)?;
                    told_once(loop_unbound, loop_port)?;
                    loop_done = true;
                }
                other => return Err(format!("the loop's bound end's wait gave {other:?}")),
            }
        }
        if woke.contains(&deadline) {
            return Err(format!(
                "two minutes passed: dom0 channel rebound {}, notified {dom0_done}; loop done {loop_done}",
                rebound_to.is_some()
            ));
        }
    }
    evtchn::close(to_dom0).map_err(err("close"))?;
    evtchn::close(loop_unbound).map_err(err("close"))
}

/// The loop's bound end is lost: notify says so, a second wait completes
/// with it at once, and it closes (once).
fn lost_end_says_so(lost: Channel) -> Result<(), String> {
    let notify = evtchn::notify(lost);
    let again = evtchn::wait(lost).map_err(err("wait"))?;
    event::block_one(again).map_err(err("block"))?;
    let again = retire_wait(again)?;
    evtchn::close(lost).map_err(err("close"))?;
    let closed_again = evtchn::close(lost);
    println!(
        "evtchn-restore: loop's bound end PeerGone; notify: {:?}; wait again: {:?}; close again: {:?}",
        notify, again, closed_again
    );
    if notify != Err(Status::PeerGone)
        || again != Err(Status::PeerGone)
        || closed_again != Err(Status::BadHandle)
    {
        return Err(String::from("the lost channel said something else"));
    }
    Ok(())
}

/// The loop's unbound end had no wait at the restore: its next wait is
/// told `Rebound` at once.
fn told_once(unbound: Channel, old_port: u32) -> Result<(), String> {
    let w = evtchn::wait(unbound).map_err(err("wait"))?;
    event::block_one(w).map_err(err("block"))?;
    match retire_wait(w)? {
        Ok(Woke::Rebound(port)) => {
            println!("evtchn-restore: loop's unbound end Rebound, told its next wait: port {old_port} -> {port}");
            Ok(())
        }
        other => Err(format!("the loop's unbound end's wait gave {other:?}")),
    }
}
