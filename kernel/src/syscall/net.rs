//! The networking system calls (feature `net`): sockets whose operations
//! return event ids (user programs reach them through the traps of
//! `program.rs`, `abi::Call::TcpListen` ..), and the calls the `net-setup`
//! kernel process uses to hand the device over, which have no trap: the
//! device's handshake is the kernel's own. See `net::stack` for the
//! semantics.

use crate::proc::sched;
use crate::proc::sched::with_current;
use crate::status::SysResult;
use crate::syscall::{start_event, syscall_return};
use alloc::vec::Vec;
use events::{EventId, Pid, ValueKind};

/// The `net-setup` process: allocates the device for backend domain
/// `backend`; returns (tx-ring-ref, rx-ring-ref, event-channel) to publish.
pub fn net_attach(backend: u16) -> SysResult<(u32, u32, u32)> {
    with_current(|_, _| Ok(()))?;
    let r = crate::net::stack::attach(backend);
    syscall_return();
    r
}

/// The `net-setup` process: the backend is connected (and takes GSO
/// packets, if `gso`); start the stack.
pub fn net_up(mac: [u8; 6], gso: bool) -> SysResult<()> {
    with_current(|_, _| Ok(()))?;
    let r = crate::net::stack::up(mac, gso);
    syscall_return();
    r
}

/// The `net-setup` process: an old backend has closed; frees the devices
/// it no longer maps. Returns how many are still held.
pub fn net_release() -> SysResult<usize> {
    with_current(|_, _| Ok(()))?;
    let r = crate::net::stack::release_retired();
    syscall_return();
    Ok(r)
}

/// The `net-setup` process: whether the stack waits for a new device
/// after a restore (then the old backend's going is no detach: the
/// sockets stay).
pub fn net_severed() -> bool {
    let severed = crate::net::stack::severed();
    syscall_return();
    severed
}

/// The `net-setup` process: the domain was told to use the network
/// (`ethos.ip=`) and has no network device. Says why and powers the
/// domain off, as for a first program the boot archive does not have:
/// a guest waiting for a device that will not come is worse.
pub fn net_absent(why: &str) -> ! {
    log::error!("net-setup: {why}; powering off");
    crate::panic::shut_down(xen::public::ShutdownReason::Poweroff)
}

/// The `net-setup` process: the backend went away; end every socket.
pub fn net_down() -> SysResult<()> {
    with_current(|_, _| Ok(()))?;
    let done = crate::net::stack::down();
    sched::apply(done);
    syscall_return();
    Ok(())
}

fn net_op<R>(f: impl FnOnce(Pid) -> SysResult<R>) -> SysResult<R> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = f(pid);
    syscall_return();
    r
}

/// Listens on TCP `port` with `backlog` sockets ready for connections
/// (`large`: 128 KiB buffers each way instead of 4 KiB). Returns a handle.
pub fn tcp_listen(port: u16, backlog: usize, large: bool) -> SysResult<u32> {
    net_op(|pid| crate::net::stack::tcp_listen(pid, port, backlog, large))
}

/// An event that completes with the handle (Word) of the next connection.
pub fn tcp_accept(listener: u32) -> SysResult<EventId> {
    start_event(ValueKind::Word, |pid, id| {
        crate::net::stack::accept(pid, listener, id)
    })
}

/// Connects to `ip:port`: the handle now, and an event that completes
/// once connected (`Remote(2)` if refused).
pub fn tcp_connect(ip: [u8; 4], port: u16) -> SysResult<(u32, EventId)> {
    let mut handle = 0;
    let id = start_event(ValueKind::Empty, |pid, id| {
        handle = crate::net::stack::tcp_connect(pid, ip, port, id)?;
        Ok(())
    })?;
    Ok((handle, id))
}

/// An event that completes with up to `max` received bytes (empty at the
/// end of the stream).
pub fn sock_recv(handle: u32, max: usize) -> SysResult<EventId> {
    start_event(ValueKind::Bytes, |pid, id| {
        crate::net::stack::recv(pid, handle, max, id)
    })
}

/// An event that completes with how many of `data`'s bytes the socket
/// took (at least 1; the caller sends the rest again): back-pressure.
/// `data` is the caller's copy, handed on without another.
pub fn sock_send(handle: u32, data: Vec<u8>) -> SysResult<EventId> {
    start_event(ValueKind::Word, |pid, id| {
        crate::net::stack::send(pid, handle, data, id)
    })
}

/// Closes a socket (TCP: sends FIN); its waiting events complete `Cancelled`.
pub fn sock_close(handle: u32) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = crate::net::stack::close(pid, handle).map(sched::apply);
    syscall_return();
    r
}

/// Binds a UDP socket to `port`.
pub fn udp_bind(port: u16) -> SysResult<u32> {
    net_op(|pid| crate::net::stack::udp_bind(pid, port))
}

/// An event that completes with the next datagram: the sender's IPv4
/// address (4 bytes), its port (2, little-endian), then the payload.
pub fn udp_recv(handle: u32) -> SysResult<EventId> {
    start_event(ValueKind::Bytes, |pid, id| {
        crate::net::stack::udp_recv(pid, handle, id)
    })
}

/// Sends a datagram (`Busy` while the send buffer is full).
pub fn udp_send(handle: u32, ip: [u8; 4], port: u16, data: &[u8]) -> SysResult<()> {
    net_op(|pid| crate::net::stack::udp_send(pid, handle, ip, port, data))
}

/// The stack's and the device's counters (`NetDown` while the network is down).
pub fn net_stats() -> SysResult<(
    crate::net::stack::NetStats,
    crate::drivers::netfront::DevStats,
)> {
    net_op(|_| crate::net::stack::stats().ok_or(crate::status::SysError::NetDown))
}
