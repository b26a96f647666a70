//! The network: TCP and UDP sockets whose operations return events.
//!
//! A socket is a handle, a small number the kernel gave this program
//! ([`Listener`], [`Conn`], [`Udp`]); the kernel aborts a program's sockets
//! when it exits or faults. Accepting, receiving and sending start work and
//! return an [`Event`] at once, so a server waits on one OR tree of every
//! connection's event (see the `net-demo` program). Closing is explicit
//! ([`Conn::close`], ...): the handles are plain values, and a closed one
//! answers [`Status::BadHandle`].
//!
//! Every call needs [`abi::rights::NETWORK`] (given at spawn) except
//! [`stats`]. The errors every call may return are listed in [`abi::net`]:
//! [`Status::NoNetwork`] on an image without networking,
//! [`Status::NetDown`] while the kernel's network is not up (try again
//! later), [`Status::NotPermitted`], [`Status::BadHandle`], ...
//!
//! When the network goes away under a socket, its waiting events complete
//! with [`Status::Remote`] and errno [`abi::net::NET_DOWN`] ([`is_net_down`]),
//! and every handle is gone: start over once it is back.

use abi::{Call, Status};

use crate::event::{Event, Retired};
use crate::raw;
use crate::sys::{self, args, buf};

pub use abi::net::{CLOSED, MAX_BACKLOG, NET_DOWN, REFUSED, UDP_HEADER};

/// A TCP listener: connections are taken with [`Listener::accept`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Listener(u32);

/// A TCP connection (accepted or connected).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Conn(u32);

/// A bound UDP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Udp(u32);

/// The buffers of each of a listener's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffers {
    /// 4 KiB each way: for many small exchanges at once.
    Small,
    /// 128 KiB each way: for bulk transfers.
    Large,
}

fn close_handle(h: u32) -> Result<(), Status> {
    sys::call_unit(Call::SockClose, args([u64::from(h)]))
}

impl Listener {
    /// `TcpListen(port, backlog, large)`: listens on TCP `port` with
    /// `backlog` (1..=[`MAX_BACKLOG`]) sockets kept ready for connections;
    /// a connection beyond them is refused until one is accepted.
    ///
    /// Errors (beyond [`abi::net`]'s): [`Status::InvalidArgument`] for port
    /// 0 or a backlog out of range; [`Status::OutOfMemory`] when the kernel
    /// has no room for the sockets.
    pub fn listen(port: u16, backlog: usize, buffers: Buffers) -> Result<Listener, Status> {
        let large = u64::from(buffers == Buffers::Large);
        sys::call(
            Call::TcpListen,
            args([u64::from(port), backlog as u64, large]),
        )
        .map(|(h, _)| Listener(h as u32))
    }

    /// `TcpAccept(listener)`: an event that completes with the next
    /// connection; retire it with [`accepted`].
    pub fn accept(self) -> Result<Event, Status> {
        sys::call_event(Call::TcpAccept, args([u64::from(self.0)]))
    }

    /// `SockClose(listener)`: stops listening; a waiting accept completes
    /// [`Status::Cancelled`].
    pub fn close(self) -> Result<(), Status> {
        close_handle(self.0)
    }

    /// The kernel's handle.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The socket with the kernel's handle `h` (the kernel checks that it
    /// is this program's and of this kind: [`Status::BadHandle`] if not).
    pub const fn from_raw(h: u32) -> Listener {
        Listener(h)
    }
}

/// The connection an accept event completed with (retired as a word, see
/// [`crate::event::retire_word`]); its own status otherwise.
pub fn accepted(r: Retired<u64>) -> Result<Conn, Status> {
    r.into_result().map(|h| Conn(h as u32))
}

impl Conn {
    /// `TcpConnect(ipv4, port)`: connects to `ip:port`. The connection is
    /// usable (for [`Conn::send`] and [`Conn::recv`], which wait) at once;
    /// the event completes empty once connected, or with
    /// [`Status::Remote`] and errno [`REFUSED`].
    ///
    /// Errors (beyond [`abi::net`]'s): [`Status::InvalidArgument`] for port
    /// 0 or an address the stack cannot reach.
    pub fn connect(ip: [u8; 4], port: u16) -> Result<(Conn, Event), Status> {
        sys::call(
            Call::TcpConnect,
            args([abi::net::ipv4_word(ip), u64::from(port)]),
        )
        .map(|(h, e)| (Conn(h as u32), Event::from_raw(e)))
    }

    /// `SockRecv(conn, max)`: an event that completes with up to `max`
    /// (1..=[`abi::MAX_BUFFER`]) received bytes (retire with
    /// [`crate::event::retire_vec`] or into a buffer of `max` bytes); none
    /// at the end of the stream, [`Status::Remote`] with [`CLOSED`] if the
    /// peer reset it.
    ///
    /// Errors (beyond [`abi::net`]'s): [`Status::BadLength`] for 0 or over
    /// [`abi::MAX_BUFFER`].
    pub fn recv(self, max: usize) -> Result<Event, Status> {
        sys::call_event(Call::SockRecv, args([u64::from(self.0), max as u64]))
    }

    /// `SockSend(conn, data)`: an event that completes with how many of
    /// `data`'s bytes the socket took (a word, at least 1): send the rest
    /// again after it completes. That is the back-pressure: a connection
    /// has one send in flight at a time.
    ///
    /// Errors (beyond [`abi::net`]'s): [`Status::BadLength`] for no bytes
    /// or over [`abi::MAX_BUFFER`].
    pub fn send(self, data: &[u8]) -> Result<Event, Status> {
        let (p, n) = buf(data);
        sys::call_event(Call::SockSend, args([u64::from(self.0), p, n]))
    }

    /// `SockClose(conn)`: closes the connection (a FIN; the kernel keeps
    /// the socket until the exchange ends); waiting events complete
    /// [`Status::Cancelled`].
    pub fn close(self) -> Result<(), Status> {
        close_handle(self.0)
    }

    /// The kernel's handle.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The socket with the kernel's handle `h` (the kernel checks that it
    /// is this program's and of this kind: [`Status::BadHandle`] if not).
    pub const fn from_raw(h: u32) -> Conn {
        Conn(h)
    }
}

impl Udp {
    /// `UdpBind(port)`: a UDP socket on `port`.
    ///
    /// Errors (beyond [`abi::net`]'s): [`Status::InvalidArgument`] for port
    /// 0; [`Status::OutOfMemory`].
    pub fn bind(port: u16) -> Result<Udp, Status> {
        sys::call(Call::UdpBind, args([u64::from(port)])).map(|(h, _)| Udp(h as u32))
    }

    /// `UdpRecv(udp)`: an event that completes with the next datagram, as
    /// bytes (retire with [`crate::event::retire_vec`], read with
    /// [`Datagram::parse`]).
    pub fn recv(self) -> Result<Event, Status> {
        sys::call_event(Call::UdpRecv, args([u64::from(self.0)]))
    }

    /// `UdpSend(udp, ip, port, data)`: sends a datagram at once.
    ///
    /// Errors (beyond [`abi::net`]'s): [`Status::Busy`] while the send
    /// buffer is full; [`Status::BadLength`] over [`abi::MAX_BUFFER`];
    /// [`Status::InvalidArgument`] for port 0.
    pub fn send(self, ip: [u8; 4], port: u16, data: &[u8]) -> Result<(), Status> {
        let (p, n) = buf(data);
        sys::call_unit(
            Call::UdpSend,
            args([
                u64::from(self.0),
                abi::net::ipv4_word(ip),
                u64::from(port),
                p,
                n,
            ]),
        )
    }

    /// `SockClose(udp)`.
    pub fn close(self) -> Result<(), Status> {
        close_handle(self.0)
    }

    /// The kernel's handle.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The socket with the kernel's handle `h` (the kernel checks that it
    /// is this program's and of this kind: [`Status::BadHandle`] if not).
    pub const fn from_raw(h: u32) -> Udp {
        Udp(h)
    }
}

/// A datagram as [`Udp::recv`] completes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The sender's address.
    pub ip: [u8; 4],
    /// The sender's port.
    pub port: u16,
    /// What it sent.
    pub payload: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Decodes an event's bytes; `None` if shorter than [`UDP_HEADER`].
    pub fn parse(b: &'a [u8]) -> Option<Datagram<'a>> {
        if b.len() < UDP_HEADER {
            return None;
        }
        Some(Datagram {
            ip: [b[0], b[1], b[2], b[3]],
            port: u16::from_le_bytes([b[4], b[5]]),
            payload: &b[UDP_HEADER..],
        })
    }
}

/// Whether a socket event ended because the network went away (its
/// status [`Status::Remote`] with errno [`NET_DOWN`]).
pub fn is_net_down<T>(r: &Retired<T>) -> bool {
    r.status == Status::Remote && r.errno == NET_DOWN
}

/// The stack's and the device's counters ([`stats`]), named as
/// [`abi::net::STATS`] lists them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Stats {
    pub sockets: u64,
    pub accepted: u64,
    pub polls: u64,
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub tx_gso: u64,
    pub rx_dropped: u64,
    pub rx_errors: u64,
    pub rx_malformed: u64,
    pub rx_not_ours: u64,
    pub tx_errors: u64,
    pub notifies: u64,
    pub port_events: u64,
    pub half_open: u64,
    pub half_open_reaped: u64,
}

impl Stats {
    /// From the counters in [`abi::net::STATS`] order; missing ones (an
    /// older kernel) read 0.
    pub fn from_counters(c: &[u64]) -> Stats {
        let at = |i: usize| c.get(i).copied().unwrap_or(0);
        Stats {
            sockets: at(0),
            accepted: at(1),
            polls: at(2),
            rx_frames: at(3),
            tx_frames: at(4),
            tx_gso: at(5),
            rx_dropped: at(6),
            rx_errors: at(7),
            rx_malformed: at(8),
            rx_not_ours: at(9),
            tx_errors: at(10),
            notifies: at(11),
            port_events: at(12),
            half_open: at(13),
            half_open_reaped: at(14),
        }
    }
}

/// `NetStats(out)`: the counters now. Needs no right.
///
/// Errors: [`Status::NoNetwork`], [`Status::NetDown`].
pub fn stats() -> Result<Stats, Status> {
    const N: usize = abi::net::STATS.len();
    let mut bytes = [0u8; N * 8];
    let (written, _) = sys::check(raw::net_stats(&mut bytes))?;
    let count = (written as usize).min(N * 8) / 8;
    let mut c = [0u64; N];
    for (o, w) in c.iter_mut().zip(bytes.chunks_exact(8)).take(count) {
        *o = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
    }
    Ok(Stats::from_counters(&c[..count]))
}
