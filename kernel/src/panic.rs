//! The crash policy: a fault, a panic or a fatal condition is reported on
//! the console, then the domain is crashed so that Xen and the toolstack
//! see it (`on_crash=` in the xl config decides what follows).

use crate::console;
use core::sync::atomic::{AtomicBool, Ordering};
use hal::hypercall;
use log::error;
use xen::fault::FaultReport;
use xen::public::ShutdownReason;

/// Set by the first fault or panic; a second one shuts down at once.
static DYING: AtomicBool = AtomicBool::new(false);

/// Flushes the console and ends the domain.
pub fn shut_down(reason: ShutdownReason) -> ! {
    console::flush();
    hypercall::sched_shutdown(reason)
}

/// The fault policy: report everything, then crash the domain so Xen and
/// the toolstack see it (`on_crash=` in the xl config decides what follows).
pub fn die_with_fault(report: &FaultReport) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        hypercall::sched_shutdown(ShutdownReason::Crash);
    }
    error!("{report}");
    error!("crashing the domain");
    shut_down(ShutdownReason::Crash)
}

/// Reports a fatal condition that is not a CPU fault, then crashes.
pub fn die_with_message(message: core::fmt::Arguments) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        hypercall::sched_shutdown(ShutdownReason::Crash);
    }
    error!("FATAL: {message}");
    error!("crashing the domain");
    shut_down(ShutdownReason::Crash)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        hypercall::sched_shutdown(ShutdownReason::Crash);
    }
    match info.location() {
        Some(loc) => error!(
            "PANIC at {}:{}:{}: {}",
            loc.file(),
            loc.line(),
            loc.column(),
            info.message()
        ),
        None => error!("PANIC: {}", info.message()),
    }
    error!("crashing the domain");
    shut_down(ShutdownReason::Crash)
}

/// Xen could not return to the guest (bad segment state): nothing to resume.
pub fn die_after_failsafe(frame: u64) -> ! {
    die_with_message(format_args!("Xen failsafe callback (frame at {frame:#x})"))
}
