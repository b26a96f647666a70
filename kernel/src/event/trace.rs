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
//!
//! Reading the clock is the dear part of a record (under Xen PV each
//! `rdtsc` traps, tens of µs under QEMU/TCG), so it is read once per kernel
//! entry, lazily, by the entry's first record, and every record of the entry
//! carries that time ([`new_entry`]; the scheduler's own readings of the
//! clock are handed over, [`read_clock`]). An entry is a return from user mode (a
//! system call, an upcall, a fault), a pass of the scheduler's loop (which a
//! wake from idle ends in), and each kernel system call's return (kernel
//! processes make calls without leaving the kernel). The kernel clock is
//! monotonic and an entry's stamp is taken when it begins, so times in the
//! ring never go backwards; records of one entry share a time and keep their
//! order. A process's name goes in when it is created ([`name`]).

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
/// The clock as the current kernel entry read it (0: not read yet).
static STAMP: AtomicU64 = AtomicU64::new(0);

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

/// A kernel entry begins: its first record reads the clock.
#[inline]
pub fn new_entry() {
    STAMP.store(0, Ordering::Relaxed);
}

/// The kernel clock now, which the current entry's later records carry
/// too (for the kernel's own readings: they cost the timeline nothing).
#[inline(never)]
pub fn read_clock() -> u64 {
    let now = crate::clock::now_ns();
    STAMP.store(now, Ordering::Relaxed);
    now
}

/// The current entry's time, read now if this is its first record.
fn stamp() -> u64 {
    match STAMP.load(Ordering::Relaxed) {
        0 => read_clock(),
        now => now,
    }
}

#[cold]
#[inline(never)]
fn record_now(kind: Kind, pid: u32, word: u64) {
    record_all(kind, pid, &[word]);
}

/// Records one `kind` per word, all at once (one stamp, one buffer).
fn record_all(kind: Kind, pid: u32, words: &[u64]) {
    let now = stamp();
    if let Some(ring) = RING.lock().as_mut() {
        ring.push_all(now, kind, pid, words);
    }
}

/// A process was created as `pid`: its name goes on its row.
#[cold]
#[inline(never)]
pub fn name(pid: u32, name: &str) {
    if on() {
        let (words, parts) = rpc::trace::name_words(name);
        record_all(Kind::Name, pid, &words[..parts]);
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
