//! Event channels to other domains.
//!
//! A [`Channel`] is the kernel's handle for one of the program's event
//! channels, not a Xen port number: ports belong to the domain, and a
//! restore or a migration makes a new domain where every old port is
//! gone. The handle survives it. A channel made with [`alloc_unbound`] is
//! allocated again by the kernel for the same remote domain, under a new
//! port: the channel's wait completes [`Status::Rebound`] with the new
//! port as its word ([`Woke::Rebound`] through [`woke`]), and the program
//! tells its peer that port (the old one means nothing any more). A
//! channel made with [`bind_interdomain`] cannot be bound again by this
//! domain alone (the peer's side went with the old domain): its waits
//! complete [`Status::PeerGone`] and [`notify`] answers it, until it is
//! closed. Nothing waits forever on a port that no longer exists.
//!
//! ```no_run
//! use ethos::evtchn::{self, Woke};
//! # fn main() -> Result<(), ethos::Status> {
//! let (channel, port) = evtchn::alloc_unbound(0)?;
//! // ... tell dom0 `port` (in xenstore, say) ...
//! loop {
//!     let wait = evtchn::wait(channel)?;
//!     match evtchn::woke(ethos::event::block_and_retire(wait)?)? {
//!         Woke::Notified(_count) => { /* the peer notified */ }
//!         Woke::Rebound(_new_port) => { /* restored: tell dom0 the new port */ }
//!     }
//! }
//! # }
//! ```

use abi::{Call, Status};

use crate::event::{Event, Retired};
use crate::sys::{self, args};

/// One of the program's event channels: the kernel's handle for it
/// (meaningful to this process only), not a Xen port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Channel(pub u32);

/// `EvtchnAllocUnbound(remote)`: a channel domain `remote` may bind; its
/// handle and the Xen port to tell the peer. After a restore the port
/// changes (the wait says [`Woke::Rebound`]); the handle does not.
pub fn alloc_unbound(remote: u16) -> Result<(Channel, u32), Status> {
    sys::call(Call::EvtchnAllocUnbound, args([u64::from(remote)]))
        .map(|(h, p)| (Channel(h as u32), p as u32))
}

/// `EvtchnBindInterdomain(remote, remote_port)`: a channel connected to
/// `remote_port` of domain `remote`; its handle and the local Xen port.
/// Lost at a restore ([`Status::PeerGone`]).
pub fn bind_interdomain(remote: u16, remote_port: u32) -> Result<(Channel, u32), Status> {
    sys::call(
        Call::EvtchnBindInterdomain,
        args([u64::from(remote), u64::from(remote_port)]),
    )
    .map(|(h, p)| (Channel(h as u32), p as u32))
}

/// `EvtchnNotify(channel)`: signals the other end.
///
/// Errors: [`Status::BadHandle`], [`Status::PeerGone`] (lost at a restore).
pub fn notify(channel: Channel) -> Result<(), Status> {
    sys::call_unit(Call::EvtchnNotify, args([u64::from(channel.0)]))
}

/// `EvtchnWait(channel)`: an event that completes at the next
/// notification, with the number of notifications it covers (a word); or,
/// after a restore, [`Status::Rebound`] (the new port its word) or
/// [`Status::PeerGone`]. [`woke`] reads the retired event.
pub fn wait(channel: Channel) -> Result<Event, Status> {
    sys::call_event(Call::EvtchnWait, args([u64::from(channel.0)]))
}

/// `EvtchnClose(channel)`.
pub fn close(channel: Channel) -> Result<(), Status> {
    sys::call_unit(Call::EvtchnClose, args([u64::from(channel.0)]))
}

/// What a channel's wait completed with, when the channel lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// The peer notified, this many times since the last wait.
    Notified(u64),
    /// The domain was restored or migrated and the channel allocated
    /// again under this new port: tell the peer.
    Rebound(u32),
}

/// Reads a retired [`wait`]: the channel lives on ([`Woke`]), or the
/// event's status: [`Status::PeerGone`] (lost at a restore: close it),
/// [`Status::Cancelled`] (closed meanwhile).
pub fn woke(retired: Retired<u64>) -> Result<Woke, Status> {
    match retired.status {
        Status::Ok => Ok(Woke::Notified(retired.value)),
        Status::Rebound => Ok(Woke::Rebound(retired.value as u32)),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocating_gives_the_handle_and_the_port_apart() {
        assert_eq!(alloc_unbound(0), Ok((Channel(5), 41)));
        assert_eq!(bind_interdomain(0, 7), Ok((Channel(5), 41)));
    }

    #[test]
    fn a_retired_wait_reads_as_what_became_of_the_channel() {
        let retired = |status, value| Retired {
            status,
            errno: 0,
            value,
        };
        assert_eq!(woke(retired(Status::Ok, 3)), Ok(Woke::Notified(3)));
        assert_eq!(woke(retired(Status::Rebound, 57)), Ok(Woke::Rebound(57)));
        assert_eq!(woke(retired(Status::PeerGone, 0)), Err(Status::PeerGone));
        assert_eq!(woke(retired(Status::Cancelled, 0)), Err(Status::Cancelled));
    }
}
