//! Xenstore, through the kernel's client: every call starts a request and
//! returns its event; the reply is the event's value. A refusal by
//! xenstored is the event status [`Status::Remote`] with its errno.

use abi::{Call, Status};

use crate::event::Event;
use crate::sys::{self, args, buf};

/// A transaction id; [`Tx::NONE`] outside a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tx(pub u32);

impl Tx {
    /// No transaction.
    pub const NONE: Tx = Tx(0);
}

/// A watch handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Watch(pub u64);

/// `XsRead(path, tx)`: completes with the value (bytes).
pub fn read(path: &str, tx: Tx) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::XsRead, args([p, n, u64::from(tx.0)]))
}

/// `XsWrite(path, value, tx)`: completes empty.
pub fn write(path: &str, value: &[u8], tx: Tx) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    let (v, vn) = buf(value);
    sys::call_event(Call::XsWrite, args([p, n, v, vn, u64::from(tx.0)]))
}

/// `XsDirectory(path, tx)`: completes with the children's names,
/// NUL-separated (bytes); [`names`] splits them.
pub fn directory(path: &str, tx: Tx) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::XsDirectory, args([p, n, u64::from(tx.0)]))
}

/// The names of a [`directory`] reply.
pub fn names(reply: &[u8]) -> impl Iterator<Item = &[u8]> {
    reply.split(|&b| b == 0).filter(|n| !n.is_empty())
}

/// `XsRm(path, tx)`: completes empty.
pub fn rm(path: &str, tx: Tx) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::XsRm, args([p, n, u64::from(tx.0)]))
}

/// Sets the permissions of `path`: `perms[0]` names the owner and what
/// every other domain may do, each further word one domain's access, as
/// xenstore writes them (`"n5"`: domain 5 owns it, others have no access;
/// `"r0"`: dom0 may read). Needs `rights::XENSTORE_WRITE`.
pub fn set_perms(path: &str, perms: &[&str], tx: Tx) -> Result<Event, Status> {
    if perms.is_empty() || perms.len() > abi::MAX_PERMS {
        return Err(Status::InvalidArgument);
    }
    let mut words = alloc::vec::Vec::new();
    for p in perms {
        if !abi::perm_word_valid(p) {
            return Err(Status::InvalidArgument);
        }
        words.extend_from_slice(p.as_bytes());
        words.push(0);
    }
    let (p, n) = sys::buf(path.as_bytes());
    let (w, wn) = sys::buf(&words);
    sys::call_event(Call::XsSetPerms, args([p, n, w, wn, u64::from(tx.0)]))
}

/// `XsTransactionStart()`: completes with the transaction id (a word;
/// `Tx(word as u32)`).
pub fn transaction_start() -> Result<Event, Status> {
    sys::call_event(Call::XsTransactionStart, args([]))
}

/// `XsTransactionEnd(tx, commit)`: completes empty, or with
/// [`Status::Remote`] (EAGAIN: retry the transaction).
pub fn transaction_end(tx: Tx, commit: bool) -> Result<Event, Status> {
    sys::call_event(
        Call::XsTransactionEnd,
        args([u64::from(tx.0), u64::from(commit)]),
    )
}

/// `XsWatch(path)`: the watch, and an event that completes when xenstored
/// has set it up.
pub fn watch(path: &str) -> Result<(Watch, Event), Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call(Call::XsWatch, args([p, n])).map(|(w, e)| (Watch(w), Event::from_raw(e)))
}

/// `XsWatchNext(watch)`: completes with the path that fired (bytes).
pub fn watch_next(w: Watch) -> Result<Event, Status> {
    sys::call_event(Call::XsWatchNext, args([w.0]))
}

/// `XsUnwatch(watch)`: completes empty.
pub fn unwatch(w: Watch) -> Result<Event, Status> {
    sys::call_event(Call::XsUnwatch, args([w.0]))
}
