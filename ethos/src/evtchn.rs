//! Event channels to other domains.

use abi::{Call, Status};

use crate::event::Event;
use crate::sys::{self, args};

/// A local event-channel port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port(pub u32);

/// `EvtchnAllocUnbound(remote)`: a port domain `remote` may bind to.
pub fn alloc_unbound(remote: u16) -> Result<Port, Status> {
    sys::call(Call::EvtchnAllocUnbound, args([u64::from(remote)])).map(|(p, _)| Port(p as u32))
}

/// `EvtchnBindInterdomain(remote, remote_port)`: a local port connected to
/// `remote_port` of domain `remote`.
pub fn bind_interdomain(remote: u16, remote_port: u32) -> Result<Port, Status> {
    sys::call(
        Call::EvtchnBindInterdomain,
        args([u64::from(remote), u64::from(remote_port)]),
    )
    .map(|(p, _)| Port(p as u32))
}

/// `EvtchnNotify(port)`: signals the other end.
pub fn notify(port: Port) -> Result<(), Status> {
    sys::call_unit(Call::EvtchnNotify, args([u64::from(port.0)]))
}

/// `EvtchnWait(port)`: an event that completes at the next notification,
/// with the number of notifications it covers (a word).
pub fn wait(port: Port) -> Result<Event, Status> {
    sys::call_event(Call::EvtchnWait, args([u64::from(port.0)]))
}

/// `EvtchnClose(port)`.
pub fn close(port: Port) -> Result<(), Status> {
    sys::call_unit(Call::EvtchnClose, args([u64::from(port.0)]))
}
