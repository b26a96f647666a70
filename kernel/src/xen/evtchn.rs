//! Event channels, deferred: the upcall only records, the kernel handles.
//!
//! `on_upcall` runs in the event callback with upcalls masked. It reads
//! which ports are pending and not masked, masks them (so a busy port cannot
//! raise a storm of upcalls), records them in [`PendingPorts`] and returns.
//! `drain` runs at the system-call return point and in the idle loop: for each
//! recorded port it clears Xen's pending bit, runs the handler, and unmasks
//! the port race-free: clear the mask, then look at the pending bit again, and
//! if the port was raised while masked (Xen set the bit but, the port being
//! masked, raised no upcall) record it again for the next round.

use core::sync::atomic::{AtomicU64, Ordering};
use hal::shared_info;
use xen::pending::PendingPorts;
use xen::public::{shared_info as si_layout, vcpu_info};

static PENDING: PendingPorts = PendingPorts::new();
static UPCALLS: AtomicU64 = AtomicU64::new(0);
static HANDLED: AtomicU64 = AtomicU64::new(0);

/// How many rounds one drain makes before leaving the rest for the next:
/// a port that is raised again during every round cannot starve processes.
const MAX_ROUNDS: usize = 16;

const VCPU0: usize = si_layout::VCPU_INFO;

fn word_bit(port: u32) -> (usize, u64) {
    ((port / 64) as usize * 8, 1u64 << (port % 64))
}

/// The event callback's work. Records, masks, nothing more.
pub fn on_upcall() {
    let Some(si) = shared_info() else { return };
    UPCALLS.fetch_add(1, Ordering::Relaxed);
    si.store_u8(VCPU0 + vcpu_info::UPCALL_PENDING, 0, Ordering::SeqCst);
    let mut sel = si.swap_u64(VCPU0 + vcpu_info::PENDING_SEL, 0);
    while sel != 0 {
        let w = sel.trailing_zeros() as usize;
        sel &= sel - 1;
        let pending = si.load_u64(si_layout::EVTCHN_PENDING + w * 8, Ordering::SeqCst);
        let masked = si.load_u64(si_layout::EVTCHN_MASK + w * 8, Ordering::SeqCst);
        let fresh = pending & !masked;
        if fresh != 0 {
            si.set_bits_u64(si_layout::EVTCHN_MASK + w * 8, fresh);
            PENDING.record_word(w, fresh);
        }
    }
}

/// Whether the upcall left work for `drain`.
pub fn has_pending() -> bool {
    !PENDING.is_empty()
}

/// Handles every recorded port with `handle`, then unmasks it. Returns the
/// number of port events handled.
pub fn drain(mut handle: impl FnMut(u32)) -> usize {
    let Some(si) = shared_info() else { return 0 };
    let mut handled = 0;
    for _ in 0..MAX_ROUNDS {
        let n = PENDING.take(|port| {
            let (word, bit) = word_bit(port);
            si.clear_bits_u64(si_layout::EVTCHN_PENDING + word, bit);
            handle(port);
            si.clear_bits_u64(si_layout::EVTCHN_MASK + word, bit);
            if si.load_u64(si_layout::EVTCHN_PENDING + word, Ordering::SeqCst) & bit != 0 {
                // Raised while masked: Xen sent no upcall for it. Mask again
                // and keep it for the next round.
                si.set_bits_u64(si_layout::EVTCHN_MASK + word, bit);
                PENDING.record(port);
            }
        });
        if n == 0 {
            break;
        }
        handled += n;
    }
    HANDLED.fetch_add(handled as u64, Ordering::Relaxed);
    handled
}

/// Binds the timer VIRQ (at boot, and again in a restored domain) with
/// Xen's periodic timer off: the kernel programs one-shot deadlines only.
/// Without a timer the kernel cannot keep its promises: it stops.
pub fn bind_timer() -> u32 {
    if let Err(e) = hal::hypercall::stop_periodic_timer() {
        log::warn!("cannot stop the periodic timer (idle will wake every 10 ms): {e}");
    }
    hal::hypercall::evtchn_bind_timer_virq().unwrap_or_else(|e| {
        crate::panic::die_with_message(format_args!("cannot bind VIRQ_TIMER: {e}"))
    })
}

/// Upcalls taken and port events handled since boot.
pub fn counters() -> (u64, u64) {
    (
        UPCALLS.load(Ordering::Relaxed),
        HANDLED.load(Ordering::Relaxed),
    )
}

pub use super::channels::{Binding, Channels};

static CHANNELS: spin::Mutex<Channels> = spin::Mutex::new(Channels::new());

/// The processes' channels, for the system calls.
pub fn channels() -> spin::MutexGuard<'static, Channels> {
    CHANNELS.lock()
}

/// A notification arrived on `port` (deferred work): see [`Channels::on_port`].
pub fn on_process_port(port: u32) -> Option<Option<(events::EventId, u64)>> {
    CHANNELS.lock().on_port(port)
}

/// The domain is back from a suspend. In a new domain every port is gone,
/// and the restore left every port masked: the masks are cleared (as at
/// boot, the ports bound from now on must be able to raise upcalls), what
/// the upcall recorded before is dropped, and the processes' channels are
/// made again where they can be ([`Channels::resume`]). Returns the
/// completions for the waiters.
pub fn resume(new_domain: bool) -> alloc::vec::Vec<events::Completion> {
    if !new_domain {
        return alloc::vec::Vec::new();
    }
    PENDING.take(|_| {});
    if let Some(si) = shared_info() {
        for word in 0..64 {
            si.clear_bits_u64(si_layout::EVTCHN_MASK + word * 8, u64::MAX);
        }
    }
    let (done, rebound, lost) = CHANNELS
        .lock()
        .resume(|remote| hal::hypercall::evtchn_alloc_unbound(remote).map_err(|e| e.0));
    if rebound + lost > 0 {
        log::info!(
            "process event channels: {rebound} allocated again, {lost} lost with the old domain"
        );
    }
    done
}
