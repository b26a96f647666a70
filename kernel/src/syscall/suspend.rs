//! Suspend and resume (`xl save` and `xl restore`, `xl migrate`), the
//! kernel's part; hal does the protocol's (`hal::suspend`). Kernel
//! processes only: the control service calls these when the toolstack
//! writes `suspend`, no trap reaches them.
//!
//! Before: xenstore is held and left quiet (no reply owed, so none is lost
//! with the old connection). After, in a new domain: the clock runs on
//! from where it stopped (every deadline keeps its distance: timers are
//! neither early nor lost), the console and xenstore have new event
//! channels, the timer VIRQ is bound again, xenstored is told every watch
//! again, the RPC channel is offered anew with what was unanswered (the
//! daemon answers from its journal, keyed by VM and boot id, not domid,
//! what it had done), and process event channels, which did not survive,
//! end their waits `Cancelled`. A cancelled suspend changes nothing.

use crate::console;
use events::{Completion, Status, Value};
use hal::hypercall;
use log::{info, warn};

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

/// Suspends the domain now; returns when it runs again, everything
/// brought back. Whether it runs on as a new domain.
pub fn suspend() -> bool {
    let before = crate::clock::now_ns();
    info!("suspending: the toolstack saves the domain now");
    console::flush();
    hal::upcall::mask();
    let resumed = match hal::suspend::suspend() {
        Ok(r) => r,
        Err(e) => crate::panic::die_with_message(format_args!(
            "the shared-info page cannot be mapped again after a suspend: {e}"
        )),
    };
    let mut done = alloc::vec::Vec::new();
    if resumed.new_domain {
        let away_ms = crate::clock::resume() / 1_000_000;
        console::resume(resumed.console_evtchn);
        for event in crate::xen::evtchn::resume(true) {
            done.push(Completion {
                event,
                status: Status::Cancelled,
                value: Value::Empty,
            });
        }
        if let Err(e) = hypercall::stop_periodic_timer() {
            warn!("cannot stop the periodic timer (idle will wake every 10 ms): {e}");
        }
        let timer = hypercall::evtchn_bind_timer_virq().unwrap_or_else(|e| {
            crate::panic::die_with_message(format_args!("cannot bind VIRQ_TIMER again: {e}"))
        });
        crate::proc::sched::resumed(Some(timer));
        crate::xen::xenstore::resume(resumed.store_evtchn, true);
        done.extend(crate::rpc::client::resume());
        info!(
            "resumed as a new domain ({away_ms} ms away by Xen's clock; kernel time runs on from {} ms)",
            before / 1_000_000
        );
    } else {
        crate::proc::sched::resumed(None);
        crate::xen::xenstore::resume(resumed.store_evtchn, false);
        match resumed.refused {
            Some(e) => warn!("Xen refused the suspend ({e}): running on"),
            None => info!("the suspend was cancelled: running on"),
        }
    }
    hal::upcall::unmask();
    crate::proc::sched::apply(done);
    super::syscall_return();
    resumed.new_domain
}
