//! The system calls: the only code that copies between processes and the
//! kernel (Ethos's rule), so moving processes to user mode later changes
//! this one module. Every call returns a named status; none blocks except
//! `block` and `block_and_retire`, which are what blocking means.

use crate::sched::{self, with_current};
use alloc::vec::Vec;
use events::{Element, EventId, Listing, Pid, Retired, ValueKind};
use guest::syserr::{SysError, SysResult};

/// The Xen system time now, in ns.
pub fn get_time() -> u64 {
    let now = crate::kernel::now_ns();
    syscall_return();
    now
}

/// The caller's process id.
pub fn get_pid() -> SysResult<Pid> {
    let r = with_current(|_, pid| Ok(pid));
    syscall_return();
    r
}

/// Starts a timer that completes the returned event at `deadline_ns` (Xen
/// system time) with the time it fired as a word.
pub fn beep(deadline_ns: u64) -> SysResult<EventId> {
    let r = with_current(|k, pid| {
        let id = k.events().create(pid, ValueKind::Word)?;
        if let Err(e) = k.set_timer(pid, deadline_ns, id) {
            // Leave nothing behind: the event must not wait forever.
            let _ = k.events().cancel(pid, id);
            let _ = k.events().retire(pid, id);
            return Err(e);
        }
        Ok(id)
    });
    sched::reprogram_timer();
    syscall_return();
    r
}

/// Writes a line on the console, tagged with the caller's pid.
pub fn print(text: &str) -> SysResult<()> {
    // Copy in first: the kernel never logs from process memory directly.
    let mut copy = Vec::new();
    copy.try_reserve_exact(text.len())
        .map_err(|_| SysError::OutOfMemory)?;
    copy.extend_from_slice(text.as_bytes());
    let pid = with_current(|_, pid| Ok(pid))?;
    log::info!(target: "app", "[pid {}] {}", pid.0, core::str::from_utf8(&copy).unwrap_or("<invalid utf-8>"));
    syscall_return();
    Ok(())
}

/// Blocks on a wait tree (Ethos's flat spec) until its root completes.
/// Returns the leaves that had completed. If the tree is already
/// satisfied, returns at once without a context switch.
pub fn block(spec: &[Element]) -> SysResult<Vec<EventId>> {
    let mut copy = Vec::new();
    copy.try_reserve_exact(spec.len())
        .map_err(|_| SysError::OutOfMemory)?;
    copy.extend_from_slice(spec);
    let r = with_current(|k, pid| Ok(k.events().block(pid, &copy)?));
    let leaves = match r {
        Ok(events::Blocked::Satisfied(leaves)) => Ok(leaves),
        Ok(events::Blocked::Waiting) => sched::sleep_current(),
        Err(e) => Err(e),
    };
    syscall_return();
    leaves
}

/// Retires a completed event: its status and value; the id is dead after.
pub fn retire(id: EventId) -> SysResult<Retired> {
    let r = with_current(|k, pid| Ok(k.events().retire(pid, id)?));
    syscall_return();
    r
}

/// Blocks until `id` completes, then retires it.
pub fn block_and_retire(id: EventId) -> SysResult<Retired> {
    block(&[Element::leaf(id, 1), Element::node(Element::NO_PARENT, 1)])?;
    retire(id)
}

/// Cancels a pending event: a later completion is ignored and retiring it
/// reports `Cancelled`.
pub fn cancel(id: EventId) -> SysResult<()> {
    let r = with_current(|k, pid| {
        // A running process has no tree installed (blocking either returns
        // at once or sleeps), so a cancel cannot wake anyone: no wake to act on.
        k.events().cancel(pid, id)?;
        Ok(())
    });
    syscall_return();
    r
}

/// The caller's pending and completed events.
pub fn list() -> SysResult<Listing> {
    let r = with_current(|k, pid| Ok(k.events().list(pid)));
    syscall_return();
    r
}

/// Ends the calling process.
pub fn exit(code: i32) -> ! {
    sched::exit_current(code)
}

/// The system-call return point: deferred work runs here.
fn syscall_return() {
    sched::deferred_work();
}

/// Starts another linked-in process running `entry`.
pub fn spawn(name: &'static str, entry: fn()) -> SysResult<Pid> {
    with_current(|_, _| Ok(()))?;
    let r = sched::spawn(name, entry);
    syscall_return();
    r
}

/// The kernel's counters: scheduler and events (all processes).
pub fn kernel_stats() -> SysResult<(sched::SchedStats, events::Stats)> {
    with_current(|_, _| Ok(()))?;
    let r = sched::stats();
    syscall_return();
    Ok(r)
}
