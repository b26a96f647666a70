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

/// Ports bound for processes: who owns each, who waits on it, and how many
/// notifications arrived with nobody waiting (counted, not queued).
struct PortState {
    owner: events::Pid,
    waiter: Option<events::EventId>,
    unclaimed: u64,
}

/// Most ports processes may hold at once.
const MAX_PROCESS_PORTS: usize = 64;

static PORTS: spin::Mutex<vecmap::VecMap<u32, PortState>> = spin::Mutex::new(vecmap::VecMap::new());

/// Records `port` as owned by `owner`.
pub fn adopt(owner: events::Pid, port: u32) -> Result<(), crate::status::SysError> {
    let mut ports = PORTS.lock();
    if ports.len() >= MAX_PROCESS_PORTS {
        return Err(crate::status::SysError::Busy);
    }
    ports.insert(
        port,
        PortState {
            owner,
            waiter: None,
            unclaimed: 0,
        },
    );
    Ok(())
}

/// Whether `owner` holds `port`.
pub fn owns(owner: events::Pid, port: u32) -> bool {
    PORTS.lock().get(&port).is_some_and(|p| p.owner == owner)
}

/// A notification arrived on `port` (deferred work). Returns the waiter to
/// complete, with the number of notifications it covers; `None` if the
/// port is not a process's (then it is someone else's business).
pub fn on_process_port(port: u32) -> Option<Option<(events::EventId, u64)>> {
    let mut ports = PORTS.lock();
    let p = ports.get_mut(&port)?;
    p.unclaimed += 1;
    Some(
        p.waiter
            .take()
            .map(|w| (w, core::mem::take(&mut p.unclaimed))),
    )
}

/// Makes `event` complete at the port's next notification, or at once if
/// notifications arrived since the last wait (returns that count then).
pub fn wait(
    owner: events::Pid,
    port: u32,
    event: events::EventId,
    still_waiting: impl Fn(events::EventId) -> bool,
) -> Result<Option<u64>, crate::status::SysError> {
    let mut ports = PORTS.lock();
    let p = ports
        .get_mut(&port)
        .filter(|p| p.owner == owner)
        .ok_or(crate::status::SysError::BadHandle)?;
    if let Some(w) = p.waiter {
        if still_waiting(w) {
            return Err(crate::status::SysError::Busy);
        }
        // The old waiter was cancelled or retired: it waits no more.
        p.waiter = None;
    }
    if p.unclaimed > 0 {
        return Ok(Some(core::mem::take(&mut p.unclaimed)));
    }
    p.waiter = Some(event);
    Ok(None)
}

/// Forgets `port` (it was closed); returns its waiter, to be cancelled.
pub fn disown(
    owner: events::Pid,
    port: u32,
) -> Result<Option<events::EventId>, crate::status::SysError> {
    let mut ports = PORTS.lock();
    match ports.get(&port) {
        Some(p) if p.owner == owner => Ok(ports.remove(&port).and_then(|p| p.waiter)),
        _ => Err(crate::status::SysError::BadHandle),
    }
}

/// The domain is back from a suspend. In a new domain every port is gone,
/// and the restore left every port masked: the masks are cleared (as at
/// boot, the ports bound from now on must be able to raise upcalls), what
/// the upcall recorded before is dropped, and each process's port is
/// forgotten; its waiter is returned, to complete `Cancelled` (the handle
/// then answers `BadHandle`, as a closed port's does).
pub fn resume(new_domain: bool) -> alloc::vec::Vec<events::EventId> {
    if !new_domain {
        return alloc::vec::Vec::new();
    }
    PENDING.take(|_| {});
    if let Some(si) = shared_info() {
        for word in 0..64 {
            si.clear_bits_u64(si_layout::EVTCHN_MASK + word * 8, u64::MAX);
        }
    }
    let ports = core::mem::take(&mut *PORTS.lock());
    if !ports.is_empty() {
        log::warn!(
            "{} process event channels lost with the old domain",
            ports.len()
        );
    }
    ports.into_values().filter_map(|p| p.waiter).collect()
}

/// Ports of an exited process, to close.
pub fn ports_of(owner: events::Pid) -> alloc::vec::Vec<u32> {
    PORTS
        .lock()
        .iter()
        .filter(|(_, p)| p.owner == owner)
        .map(|(&port, _)| port)
        .collect()
}
