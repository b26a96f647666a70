//! The kernel's event timeline (`ethos.trace=on`; off by default): every
//! event created, completed, blocked on, woken, retired and cancelled,
//! every process exit, context switch, upcall and system call, as 16-byte
//! records with pid, event id and the kernel clock (`rpc::trace`), in a
//! ring of [`BUFFERS`] buffers of [`PER_BUFFER`] records allocated once.
//!
//! The event table tells [`observe`] of its own changes (so the trace
//! agrees with its counters by construction); the scheduler and the trap
//! dispatcher call [`record`] for the rest. Off, each site costs the load
//! and test of one flag (or of the table's observer). The ring never
//! waits: when it is full a record is dropped and counted. The RPC client
//! ships each full buffer to the daemon as one `Trace` RPC, and the rest
//! at power-off ([`take`]).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use events::{Happened, Pid};
use rpc::trace::{Kind, Ring};
use spin::Mutex;

/// Buffers in the ring: one can be in flight to the daemon while the
/// others fill.
pub const BUFFERS: usize = 4;
/// Records per buffer, i.e. per `Trace` RPC (4 KiB).
pub const PER_BUFFER: usize = 256;

static ON: AtomicBool = AtomicBool::new(false);
/// Boxed: `None` is a null pointer, in BSS, not bytes in the image.
static RING: Mutex<Option<Box<Ring>>> = Mutex::new(None);
/// Records in batches that never reached the daemon.
static LOST: AtomicU64 = AtomicU64::new(0);
/// The next batch's number.
static SEQ: AtomicU32 = AtomicU32::new(0);
/// The upcall count the last `Upcall` record went up to.
static UPCALLS_SEEN: AtomicU64 = AtomicU64::new(0);

/// Starts recording (at boot, once the heap is up).
pub fn start() {
    *RING.lock() = Some(Box::new(Ring::new(BUFFERS, PER_BUFFER)));
    ON.store(true, Ordering::Relaxed);
}

/// Stops recording (at power-off, before the last batch goes).
pub fn stop() {
    ON.store(false, Ordering::Relaxed);
}

/// Whether the kernel records.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Records `kind` for `pid` now, if tracing is on.
#[inline]
pub fn record(kind: Kind, pid: u32, word: u64) {
    if on() {
        record_now(kind, pid, word);
    }
}

#[cold]
#[inline(never)]
fn record_now(kind: Kind, pid: u32, word: u64) {
    let now = crate::clock::now_ns();
    if let Some(ring) = RING.lock().as_mut() {
        ring.push(now, kind, pid, word);
    }
}

/// The event table's observer (set only when tracing is on).
pub fn observe(what: Happened, pid: Pid, word: u64) {
    let kind = match what {
        Happened::Created => Kind::Created,
        Happened::Completed => Kind::Completed,
        Happened::Blocked => Kind::Blocked,
        Happened::Woken => Kind::Woken,
        Happened::Retired => Kind::Retired,
        Happened::Cancelled => Kind::Cancelled,
        Happened::Exited => Kind::Exited,
    };
    record_now(kind, pid.0, word);
}

/// The upcall counter is at `total`: one record for those since the last.
pub fn note_upcalls(total: u64) {
    let seen = UPCALLS_SEEN.swap(total, Ordering::Relaxed);
    if total > seen {
        record_now(Kind::Upcall, 0, total - seen);
    }
}

/// The next batch to ship: its number, the records dropped so far, and
/// its records (a full buffer, or with `partial` whatever is left).
pub fn take(partial: bool) -> Option<(u32, u64, Vec<u8>)> {
    let mut guard = RING.lock();
    let ring = guard.as_mut()?;
    let records = ring.take(partial)?;
    let dropped = ring.dropped() + LOST.load(Ordering::Relaxed);
    Some((SEQ.fetch_add(1, Ordering::Relaxed), dropped, records))
}

/// A batch of `bytes` of records never reached the daemon.
pub fn lost(bytes: usize) {
    LOST.fetch_add((bytes / rpc::trace::RECORD_BYTES) as u64, Ordering::Relaxed);
}
