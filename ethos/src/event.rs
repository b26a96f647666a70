//! Events: beeps (timers), blocking on a wait tree, retiring, cancelling.
//!
//! A call that starts work returns an [`Event`] at once. The work completes
//! it later; [`block`] waits until a whole tree of events is satisfied, and
//! retiring an event ([`retire_word`], [`retire_bytes`], [`retire_vec`],
//! [`retire_empty`]) reads its outcome and frees its id.
//!
//! Two statuses are in play when retiring, and they are kept apart: the
//! *call's* status is the `Err` of the `Result` (the event is unknown, not
//! complete yet, the buffer too small); the *event's* own status (a timer
//! fired, a file was missing on dom0, the event was cancelled) is inside
//! the [`Retired`] the call returns.

use alloc::vec;
use alloc::vec::Vec;

use abi::{Call, Status, WaitElement};

use crate::sys::{self, args};
use crate::tree::{self, Tree};
use crate::{raw, tree::TreeError};

/// An event id: what a call that starts work returns, and what a wait tree
/// names. Opaque; never 0 for a live event.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event(u64);

impl Event {
    /// The event with the kernel's id `id`.
    pub const fn from_raw(id: u64) -> Event {
        Event(id)
    }

    /// The kernel's id.
    pub const fn id(self) -> u64 {
        self.0
    }
}

/// What retiring an event gave: the event's own status and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retired<T> {
    /// How the work ended: [`Status::Ok`], [`Status::Cancelled`],
    /// [`Status::Remote`] (see [`errno`](Retired::errno)), ...
    pub status: Status,
    /// For [`Status::Remote`], the peer's errno; 0 otherwise.
    pub errno: u32,
    /// The value: a word, the number of bytes written to the buffer, or
    /// nothing.
    pub value: T,
}

impl<T> Retired<T> {
    /// Whether the work succeeded.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The value if the work succeeded, else its status.
    pub fn into_result(self) -> Result<T, Status> {
        match self.status {
            Status::Ok => Ok(self.value),
            s => Err(s),
        }
    }

    /// The same status with another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Retired<U> {
        Retired {
            status: self.status,
            errno: self.errno,
            value: f(self.value),
        }
    }
}

/// Splits result 0 of `Retire`: the status code in the low 32 bits, the
/// errno (for [`Status::Remote`]) in the high 32.
pub fn decode_event_status(word: u64) -> (Status, u32) {
    (sys::status(word & 0xffff_ffff), (word >> 32) as u32)
}

/// `Beep(deadline)`: starts a timer. The event completes at `deadline`
/// (kernel clock, ns, see [`crate::time::now`]) with the time it fired, a
/// word. A deadline already past completes at once.
///
/// Errors: [`Status::TooManyTimers`], [`Status::QuotaExceeded`],
/// [`Status::TableFull`].
pub fn beep(deadline: u64) -> Result<Event, Status> {
    sys::call_event(Call::Beep, args([deadline]))
}

/// `Block(tree, out)`: waits until the root of `tree` (a flat tree, see
/// [`crate::tree`]) completes; returns at once if it already has. The ids
/// of the leaves that had completed are written to `out` (as many as fit);
/// returns how many were written.
///
/// Errors: the tree's ([`Status::EmptyTree`], [`Status::BadTree`],
/// [`Status::TreeTooLarge`], [`Status::UnknownEvent`],
/// [`Status::EventInAnotherTree`]), [`Status::BadAddress`].
pub fn block(tree: &[WaitElement], out: &mut [Event]) -> Result<usize, Status> {
    let mut ids = vec![0u64; out.len()];
    let n = block_ids(tree, &mut ids)?;
    for (o, id) in out.iter_mut().zip(&ids[..n]) {
        *o = Event(*id);
    }
    Ok(n)
}

/// [`block`] with the completed leaves as raw ids, without allocating.
pub fn block_ids(tree: &[WaitElement], out: &mut [u64]) -> Result<usize, Status> {
    let (n, _) = sys::check(raw::block(tree, out))?;
    // The kernel writes at most `out.len()`; trust no larger count.
    Ok((n as usize).min(out.len()))
}

/// Waits for `event` at most `timeout_ns` (an OR tree of it and a beep;
/// the beep is cancelled and retired either way). `Ok(true)`: it
/// completed, and is still the caller's to retire. `Ok(false)`: the time
/// ran out first; it is still pending and the caller's (wait again, or
/// [`cancel`] and retire it). The way to wait for a service that may never
/// answer (an RPC without a shadowdaemon, a peer that is gone).
pub fn wait_timeout(event: Event, timeout_ns: u64) -> Result<bool, Status> {
    let timeout = crate::time::beep_in(timeout_ns)?;
    let woke = wait(&Tree::any([event, timeout]));
    // Pending: cancelled first. Complete: the cancel is refused. Either
    // way the retire frees it.
    let _ = cancel(timeout);
    let _ = retire_empty(timeout);
    Ok(woke?.contains(&event))
}

/// Flattens `tree` and blocks on it; returns the completed leaves.
///
/// Errors: the builder's (as a status, see [`TreeError`]) and [`block`]'s.
pub fn wait(tree: &Tree) -> Result<Vec<Event>, Status> {
    let flat = tree.flatten().map_err(Status::from)?;
    let leaves = flat.iter().filter(|e| e.event != abi::NULL_EVENT).count();
    let mut out = vec![Event(0); leaves];
    let n = block(&flat, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Blocks until `event` completes (a tree of one leaf, no allocation).
pub fn block_one(event: Event) -> Result<(), Status> {
    let flat = tree::single(event).map_err(|e: TreeError| Status::from(e))?;
    block_ids(&flat, &mut [0u64; 1]).map(|_| ())
}

/// Blocks until `event` completes, then retires it as a word
/// ([`retire_word`]): the common "wait for this one thing".
pub fn block_and_retire(event: Event) -> Result<Retired<u64>, Status> {
    block_one(event)?;
    retire_word(event)
}

/// `Retire(event)` of an event whose value is a word (a timer's time, a
/// notification count, a transaction id, an exit status) or nothing (0).
///
/// Errors: [`Status::UnknownEvent`], [`Status::NotComplete`] (still
/// pending: nothing is consumed), [`Status::BufferTooSmall`] (the event
/// carries bytes: use [`retire_bytes`]; nothing is consumed).
pub fn retire_word(event: Event) -> Result<Retired<u64>, Status> {
    retire_raw(event, &mut []).map(|r| r.map(|(_, v)| v))
}

/// `Retire(event)` of an event with no value; any word is dropped.
pub fn retire_empty(event: Event) -> Result<Retired<()>, Status> {
    retire_raw(event, &mut []).map(|r| r.map(|_| ()))
}

/// `Retire(event, buf)` of an event whose value is bytes: copies them into
/// `buf` and says how many. A word event retires too, with its word
/// dropped (0 bytes).
///
/// Errors: [`Status::BufferTooSmall`] when the bytes do not fit: the event
/// stays; [`retire_vec`] learns the length and retires into a vector.
pub fn retire_bytes(event: Event, buf: &mut [u8]) -> Result<Retired<usize>, Status> {
    retire_raw(event, buf).map(|r| r.map(|(len, _)| len))
}

/// `Retire(event)` into a vector of the right size. Asks with an empty
/// buffer first: an event with no bytes (or a word) retires at once with an
/// empty vector; otherwise the kernel says the length ([`Status::BufferTooSmall`]
/// with the length, the event staying) and the bytes are retired into a
/// vector of that length.
///
/// Errors: [`retire_bytes`]'s, and [`Status::TooLarge`] if the kernel asks
/// for more than [`abi::MAX_BUFFER`] bytes.
pub fn retire_vec(event: Event) -> Result<Retired<Vec<u8>>, Status> {
    let (rax, r0, r1) = raw::retire(event.0, &mut []);
    let len = match sys::status(rax) {
        Status::Ok => {
            let (status, errno) = decode_event_status(r0);
            return Ok(Retired {
                status,
                errno,
                value: Vec::new(),
            });
        }
        Status::BufferTooSmall => r1 as usize,
        s => return Err(s),
    };
    if len > abi::MAX_BUFFER {
        return Err(Status::TooLarge);
    }
    let mut buf = vec![0u8; len];
    let r = retire_bytes(event, &mut buf)?;
    buf.truncate(r.value);
    Ok(r.map(|_| buf))
}

/// The caller's events not yet retired, by state ([`list`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Not complete yet.
    pub pending: Vec<Event>,
    /// Complete, waiting to be retired.
    pub completed: Vec<Event>,
    /// Cancelled, waiting to be retired.
    pub cancelled: Vec<Event>,
}

/// `List`: every event of this program not yet retired, by state. Asks
/// with room for 64 ids first and again with what the kernel says it needs
/// (events made in between are not a problem: it asks until they fit, four
/// times at most).
///
/// Errors: [`Status::BufferTooSmall`] if the list kept growing faster than
/// it was read.
pub fn list() -> Result<Listing, Status> {
    let mut room = 64;
    for _ in 0..4 {
        let mut ids = vec![0u64; room];
        let (rax, r0, r1) = raw::list(&mut ids);
        match sys::status(rax) {
            Status::Ok => {
                let pending = r0 as usize;
                let completed = (r1 & 0xffff_ffff) as usize;
                let cancelled = (r1 >> 32) as usize;
                let mut it = ids.into_iter().map(Event);
                let mut take = |n: usize| it.by_ref().take(n).collect::<Vec<Event>>();
                return Ok(Listing {
                    pending: take(pending),
                    completed: take(completed),
                    cancelled: take(cancelled),
                });
            }
            Status::BufferTooSmall => room = (r1 as usize).div_ceil(8) + 16,
            s => return Err(s),
        }
    }
    Err(Status::BufferTooSmall)
}

/// Cancels a pending event: a later completion is ignored, and retiring it
/// reports [`Status::Cancelled`] (a wait tree counts it as done).
///
/// Errors: [`Status::UnknownEvent`], [`Status::AlreadyComplete`] (too late:
/// retire it), [`Status::Cancelled`] (already cancelled).
pub fn cancel(event: Event) -> Result<(), Status> {
    sys::call_unit(Call::Cancel, args([event.0]))
}

/// The one road to `Retire`: `(bytes written or 0, word)` with the event's
/// status. Which of the two is meaningful is up to the typed caller.
fn retire_raw(event: Event, buf: &mut [u8]) -> Result<Retired<(usize, u64)>, Status> {
    let (r0, r1) = sys::check(raw::retire(event.0, buf))?;
    let (status, errno) = decode_event_status(r0);
    let len = if buf.is_empty() {
        0
    } else {
        (r1 as usize).min(buf.len())
    };
    Ok(Retired {
        status,
        errno,
        value: (len, r1),
    })
}
