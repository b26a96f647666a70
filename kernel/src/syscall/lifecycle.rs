//! The domain's life as the toolstack drives it, the kernel's part:
//! shutdown and reboot ([`request_shutdown`]), the memory target
//! ([`balloon`]), suspend and resume (`xl save` and `xl restore`, `xl
//! migrate`; hal does the protocol's part, `hal::suspend`). Kernel
//! processes only: the control service calls these when the toolstack
//! writes to the domain's `control/` and `memory/` nodes; no trap reaches
//! them.
//!
//! Suspend. Before: xenstore is held and left quiet (no reply owed, so none is lost
//! with the old connection), and the pool's free frames go back to Xen
//! (the toolstack saves every frame the domain holds; `mm::balloon`), to
//! be taken again after, whether the domain is new or runs on. After, in a new domain: the clock runs on
//! from where it stopped (every deadline keeps its distance: timers are
//! neither early nor lost), the console and xenstore have new event
//! channels, the timer VIRQ is bound again, xenstored is told every watch
//! again, the RPC channel is offered anew with what was unanswered (the
//! daemon answers from its journal, keyed by VM and boot id, not domid,
//! what it had done), and the processes' event channels are made again
//! where they can be (`xen::channels`: `Rebound` or `PeerGone`). A
//! cancelled suspend changes nothing.

use crate::console;
use log::{info, warn};

/// The toolstack asked the domain to stop (the control service read it
/// from xenstore): tells every process holding a shutdown event and starts
/// the grace period. Kernel processes only: no trap reaches this.
pub fn request_shutdown(kind: crate::event::shutdown::Kind) {
    let now = crate::clock::now_ns();
    // The line says the grace period as text, not as a number to format.
    const _: () = assert!(
        abi::shutdown::GRACE_NS == 5_000_000_000,
        "the line says 5 s"
    );
    let what = match crate::event::shutdown::request(kind, now) {
        Some(0) => "no process holds a shutdown event, ending now",
        Some(_) => "told every process holding a shutdown event: 5 s to exit",
        None => "again: already shutting down",
    };
    info!("{} asked: {what}", kind.name());
    super::syscall_return();
}

/// Holds new xenstore requests (or lets them go): before a suspend.
pub fn xs_hold(on: bool) {
    crate::xen::xenstore::hold(on);
    super::syscall_return();
}

/// Whether xenstored owes no reply.
pub fn xs_quiet() -> bool {
    let quiet = crate::xen::xenstore::quiet();
    super::syscall_return();
    quiet
}

/// The toolstack's memory target changed to `target_kib`: frames go back
/// to Xen or come again (`mm::balloon`); what happened is logged.
pub fn balloon(target_kib: u64) {
    let o = crate::mm::balloon::follow(target_kib / 4);
    if o.given > 0 || o.taken > 0 || o.say_short {
        // One line for every case (one format in the image).
        info!(
            "balloon: target {target_kib} KiB: gave back {} frames, took {} again; {} out, {} short",
            o.given, o.taken, o.out, o.short
        );
    }
    if let Some(e) = o.refused {
        warn!("balloon: Xen refused: {e}");
    }
    if o.say_short {
        warn!("balloon: the target cannot be reached");
    }
    super::syscall_return();
}

/// Suspends the domain now; returns when it runs again, everything
/// brought back. Whether it runs on as a new domain.
pub fn suspend() -> bool {
    // The toolstack writes every frame the domain holds into the image:
    // the free ones go back to Xen first (mm::balloon).
    let (given, refused) = crate::mm::balloon::give_for_suspend();
    if let Some(e) = refused {
        warn!("balloon: Xen refused: {e}");
    }
    info!("suspending: the toolstack saves the domain now ({given} frames given back)");
    console::flush();
    let resumed = match hal::suspend::suspend() {
        Ok(r) => r,
        Err(e) => {
            crate::panic::die_with_message(format_args!("no shared info after the suspend: {e}"))
        }
    };
    // Said once the console runs again, below.
    let again = crate::mm::balloon::take_after_suspend();
    let mut done = alloc::vec::Vec::new();
    if resumed.new_domain {
        let away_ms = crate::clock::resume() / 1_000_000;
        console::resume(resumed.console_evtchn);
        done.extend(crate::xen::evtchn::resume(true));
        crate::proc::sched::resumed(Some(crate::xen::evtchn::bind_timer()));
        crate::xen::xenstore::resume(resumed.store_evtchn, true);
        done.extend(crate::rpc::client::resume());
        #[cfg(feature = "net")]
        if crate::net::stack::sever() {
            info!("net: the device went with the old domain; sockets kept until net-setup connects the new backend");
        }
        info!("resumed as a new domain, {away_ms} ms away");
    } else {
        crate::proc::sched::resumed(None);
        crate::xen::xenstore::resume(resumed.store_evtchn, false);
        match resumed.refused {
            Some(e) => warn!("Xen refused the suspend ({e}): running on"),
            None => info!("the suspend was cancelled: running on"),
        }
    }
    info!(
        "balloon: after the suspend {} of {} frames were there still, {} taken again, {} short",
        again.there, again.given, again.taken, again.short
    );
    if let Some(e) = again.refused {
        warn!("balloon: Xen refused: {e}");
    }
    if again.short > 0 {
        warn!("balloon: this host gives fewer frames back: running on with fewer");
    }
    hal::upcall::unmask();
    crate::proc::sched::apply(done);
    super::syscall_return();
    resumed.new_domain
}
