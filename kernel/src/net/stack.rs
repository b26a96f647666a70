//! The guest's TCP/IP stack: smoltcp over the netfront device, with sockets
//! as event sources.
//!
//! Socket system calls never block: each returns an event id, and the event
//! completes when the socket can do what was asked (a connection arrived,
//! bytes came in, the send buffer took some bytes). The interface is polled
//! in the deferred work — after the device's port fired, after a socket call,
//! or when smoltcp's own next poll time has come — and before the vCPU
//! blocks, smoltcp's next poll time joins the timer deadline.
//!
//! `accept` over smoltcp (which has no accept): a listener keeps `backlog`
//! sockets listening on its port; one that gets a SYN is half-open until the
//! handshake completes, then handed to the next accept; each is replaced by a
//! fresh listening socket (at once, or as soon as sockets free up when all
//! [`MAX_SOCKETS`] are in use).
//!
//! A flood of SYNs from addresses that never answer (issue 13, item 9) costs
//! bounded work and memory: a listener's listening and half-open sockets
//! together are at most its `backlog` (a half-open one is replaced only
//! once it completes or goes), and each half-open one is aborted
//! [`HALF_OPEN_TIMEOUT_NS`] after its SYN, so the listener serves
//! again within seconds of the flood's end. Connections that complete the
//! handshake and then say nothing are the application's to time out (an OR
//! tree of its receive and a timer), as net-demo does; the queue of
//! connections not yet accepted is bounded by the backlog too.
//!
//! Bounds: at most [`MAX_SOCKETS`] smoltcp sockets (listening, connected
//! and closing ones together), each with fixed buffers; a full send buffer
//! holds a send's event until space frees (back-pressure, nothing dropped
//! by the stack); a closed socket stays until its FIN exchange ends.
//!
//! Unpredictable to a peer (issue 13, item 7): TCP initial sequence numbers
//! are RFC 6528's (`net::isn`, through the hook `Config::tcp_isn` that the
//! vendored smoltcp adds), ephemeral ports random draws under the same
//! boot secret.
//!
//! IPv4 fragments (item 10) are reassembled in at most 4 buffers of 4 KiB
//! at once, each given back when its datagram completes or 15 s after its
//! first fragment; larger datagrams are refused. Fragments received are
//! counted (the log says so at each power of two).

use crate::drivers::netfront::NetDevice;
use crate::net::isn::{PortPicker, Secret};
use crate::status::{SysError, SysResult};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use events::Completion;
use events::{EventId, Pid, Status, Value};
use log::{info, warn};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use spin::Mutex;
use xen::cmdline::NetConfig;

/// smoltcp sockets at once, all processes together.
pub const MAX_SOCKETS: usize = 192;
/// Listening sockets per listener (the ABI's figure).
pub const MAX_BACKLOG: usize = abi::net::MAX_BACKLOG;
/// How long the fragments of a datagram may take to arrive: far beyond
/// any gap on a LAN, and short, so that fragments that never complete
/// (each held in one of smoltcp's 4 reassembly buffers of 4 KiB) free
/// their buffer soon (RFC 791 suggests 15 s to start with).
const REASSEMBLY_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(15);
/// How long a connection may stay half-open (SYN received, our SYN-ACK
/// unanswered): long enough for smoltcp to send its SYN-ACK several times
/// (a lost one is sent again after about a second, then doubling), short
/// enough that a flood of SYNs from silent addresses holds a listener's
/// sockets for seconds, not for ever (Linux gives up after about 63 s but
/// has SYN cookies to serve meanwhile; we have none).
pub const HALF_OPEN_TIMEOUT_NS: u64 = 8_000_000_000;
/// Buffer sizes each way: small for the many, large for bulk transfers.
pub const SMALL_BUFFER: usize = 4 * 1024;
pub const LARGE_BUFFER: usize = 128 * 1024;

/// `Status::Remote` codes of network events.
pub mod code {
    /// The peer closed or reset the connection.
    pub const CLOSED: u32 = abi::net::CLOSED;
    /// The connection was refused or timed out.
    pub const REFUSED: u32 = abi::net::REFUSED;
    /// The network interface went away (backend detached).
    pub const NET_DOWN: u32 = abi::net::NET_DOWN;
}

enum Kind {
    Listener {
        port: u16,
        buffer: usize,
        /// Listening sockets this listener keeps ready.
        backlog: usize,
        /// The backlog ran short (no room for sockets); logged once.
        short: bool,
        listening: Vec<SocketHandle>,
        /// Sockets in the handshake (SYN-RECEIVED), with the kernel time
        /// at which they are given up: at most `backlog`.
        half_open: Vec<(SocketHandle, u64)>,
        /// `half_open` reached `backlog` (said once, until it empties).
        flooded: bool,
        /// Connections not yet accepted (handles of this table).
        ready: VecDeque<u32>,
    },
    Tcp(SocketHandle),
    Udp(SocketHandle),
}

/// What a socket's waiting event wants.
enum Want {
    Accept,
    Connect,
    Recv(usize),
    Send(Vec<u8>),
    UdpRecv,
}

struct Sock {
    owner: Pid,
    kind: Kind,
    waiters: Vec<(EventId, Want)>,
}

/// Counters for the statistics line and the benchmarks.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetStats {
    pub polls: u64,
    pub accepted: u64,
    pub sockets: usize,
    /// IPv4 fragments received (smoltcp counts neither those it holds
    /// nor those it drops).
    pub fragments: u64,
    /// Connections now half-open, all listeners together.
    pub half_open: u64,
    /// Half-open connections given up after [`HALF_OPEN_TIMEOUT_NS`].
    pub half_open_reaped: u64,
}

struct Net {
    dev: NetDevice,
    /// The domain was restored: `dev`'s rings, grants and port went with
    /// the old domain. The stack and its sockets wait, not polled, until
    /// net-setup has connected the new backend and [`up`] swaps its device
    /// in (TCP peers retransmit meanwhile).
    severed: bool,
    iface: Interface,
    sockets: SocketSet<'static>,
    table: BTreeMap<u32, Sock>,
    /// Sockets closed by their owner, kept until the FIN exchange ends.
    closing: Vec<SocketHandle>,
    next: u32,
    /// Something happened that smoltcp must see.
    dirty: bool,
    /// smoltcp's next poll time (µs), if any.
    poll_at: Option<u64>,
    stats: NetStats,
    /// Local ports of the connections the guest opens.
    ports: PortPicker,
}

static NET: Mutex<Option<Net>> = Mutex::new(None);

fn now() -> Instant {
    Instant::from_micros((crate::clock::now_ns() / 1000) as i64)
}

fn ipv4(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::new(a[0], a[1], a[2], a[3])
}

/// The configuration from the command line and the boot secret, set at boot.
static CONFIG: Mutex<Option<(NetConfig, Secret)>> = Mutex::new(None);
/// The key of RFC 6528's hash, for [`tcp_isn`] (which smoltcp calls as a
/// plain function).
static ISN_SECRET: spin::Once<Secret> = spin::Once::new();

/// smoltcp's `Config::tcp_isn`: RFC 6528's number for the connection.
fn tcp_isn(local: IpEndpoint, remote: IpEndpoint, now: Instant) -> u32 {
    let v4 = |e: IpEndpoint| {
        let IpAddress::Ipv4(a) = e.addr;
        (a.octets(), e.port)
    };
    // Set before any interface exists (`configure`, then `start`).
    let secret = ISN_SECRET.get().copied().unwrap_or_default();
    crate::net::isn::initial_sequence_number(
        secret,
        v4(local),
        v4(remote),
        now.total_micros().max(0) as u64,
    )
}
/// A device attached and waiting for the backend to connect.
static PENDING: Mutex<Option<NetDevice>> = Mutex::new(None);
/// Devices whose pages the old backend still mapped when the network went
/// down; released once it lets go. Bounded: a new device is refused while
/// [`MAX_RETIRED`] are held.
static RETIRED: Mutex<Vec<NetDevice>> = Mutex::new(Vec::new());
const MAX_RETIRED: usize = 2;

/// Tries again to release retired devices; returns how many are still held.
pub fn release_retired() -> usize {
    let mut retired = RETIRED.lock();
    let before = retired.len();
    for mut dev in core::mem::take(&mut *retired) {
        if dev.release() {
            dev.recycle();
        } else {
            retired.push(dev);
        }
    }
    if retired.len() < before {
        info!(
            "net: {} old device(s) released, {} still held",
            before - retired.len(),
            retired.len()
        );
    }
    retired.len()
}

fn retire(mut dev: NetDevice) {
    dev.shed_buffers();
    if dev.release() {
        dev.recycle();
    } else {
        RETIRED.lock().push(dev);
    }
}

/// Boot: remembers the address configuration and the 128-bit secret that
/// keys sequence numbers and port draws.
pub fn configure(config: NetConfig, secret: Secret) {
    ISN_SECRET.call_once(|| secret);
    *CONFIG.lock() = Some((config, secret));
}

/// Allocates the device for `backend` (replacing one never connected).
pub fn attach(backend: u16) -> SysResult<(u32, u32, u32)> {
    if NET.lock().as_ref().is_some_and(|n| !n.severed) {
        return Err(SysError::Busy);
    }
    release_retired();
    if RETIRED.lock().len() >= MAX_RETIRED {
        warn!("net: earlier backends still map {MAX_RETIRED} devices' pages; no new device");
        return Err(SysError::Busy);
    }
    let dev = NetDevice::attach(backend)?;
    let offer = dev.offer();
    if let Some(old) = PENDING.lock().replace(dev) {
        retire(old);
    }
    Ok(offer)
}

/// The backend connected: starts the stack over the attached device.
/// `gso`: the backend takes GSO packets (used unless `ethos.tso=off`).
pub fn up(mac: [u8; 6], gso: bool) -> SysResult<()> {
    let (config, secret) = (*CONFIG.lock()).ok_or(SysError::InvalidArgument)?;
    // Every socket slot up front: the set never grows (and never asks the
    // heap for a larger block) while connections come and go.
    let mut slots = Vec::new();
    if slots.try_reserve_exact(MAX_SOCKETS).is_err() {
        warn!("net: no memory for {MAX_SOCKETS} socket slots");
        return Err(SysError::OutOfMemory);
    }
    let mut dev = PENDING.lock().take().ok_or(SysError::BadHandle)?;
    dev.set_tso(gso && config.tso);
    if let Some(n) = NET.lock().as_mut().filter(|n| n.severed) {
        // After a restore: the new device under the same stack, sockets
        // and connections as they were.
        let old = core::mem::replace(&mut n.dev, dev);
        n.severed = false;
        n.dirty = true;
        retire(old);
        // First, before anything else goes out: the bridge must learn the
        // new port before the peers' frames can find the guest.
        let announced = announce(&mut n.dev, mac, config.ip);
        info!(
            "net: the new backend is connected after the restore; {} sockets kept; {}",
            n.table.len(),
            announced
        );
        return Ok(());
    }
    info!(
        "net: segmentation offload {} (backend {}, ethos.tso={})",
        if dev.tso() { "on" } else { "off" },
        if gso {
            "offers it"
        } else {
            "does not offer it"
        },
        if config.tso { "on" } else { "off" }
    );
    start(dev, mac, config, secret, slots);
    if let Some(n) = NET.lock().as_mut() {
        info!("net: {}", announce(&mut n.dev, mac, config.ip));
    }
    Ok(())
}

/// Broadcasts the gratuitous ARP (`net::announce`) through `dev`, just
/// connected, so that the bridge forwards the guest's frames to its port
/// from now on; returns what happened, for the log.
fn announce(dev: &mut NetDevice, mac: [u8; 6], ip: [u8; 4]) -> &'static str {
    use smoltcp::phy::{Device, TxToken};
    let frame = crate::net::announce::gratuitous_arp(mac, ip);
    let Some(token) = dev.transmit(now()) else {
        return "no tx buffer for the gratuitous ARP";
    };
    token.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
    dev.flush_tx();
    "gratuitous ARP sent: the bridge learns this port"
}

/// The domain runs on as a new one (restored): the device went with the
/// old domain. Its port is forgotten (not closed: the number is not ours
/// any more); the stack keeps its sockets until net-setup connects the new
/// backend. Whether the stack was up.
pub fn sever() -> bool {
    if let Some(mut dev) = PENDING.lock().take() {
        dev.forget_port();
        retire(dev);
    }
    match NET.lock().as_mut() {
        Some(n) => {
            n.dev.forget_port();
            n.severed = true;
            true
        }
        None => false,
    }
}

/// Whether the stack waits for a new device after a restore.
pub fn severed() -> bool {
    NET.lock().as_ref().is_some_and(|n| n.severed)
}

/// The backend went away: ends every socket and releases the device.
pub fn down() -> Vec<Completion> {
    let (done, dev) = stop();
    if let Some(dev) = dev {
        retire(dev);
    }
    if let Some(dev) = PENDING.lock().take() {
        retire(dev);
    }
    done
}

/// Starts the stack over a connected device.
fn start(
    mut dev: NetDevice,
    mac: [u8; 6],
    config: NetConfig,
    secret: Secret,
    slots: Vec<smoltcp::iface::SocketStorage<'static>>,
) {
    let mut c = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    // smoltcp's own generator now only picks the first IPv4 ident.
    c.random_seed = crate::net::isn::stack_seed(secret);
    c.tcp_isn = Some(tcp_isn);
    let mut iface = Interface::new(c, &mut dev, now());
    iface.set_reassembly_timeout(REASSEMBLY_TIMEOUT);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ipv4(config.ip)), config.prefix));
    });
    if let Some(gw) = config.gateway {
        let _ = iface.routes_mut().add_default_ipv4_route(ipv4(gw));
    }
    let ip = config.ip;
    info!(
        "net: up: {}.{}.{}.{}/{} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        ip[0], ip[1], ip[2], ip[3], config.prefix, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    *NET.lock() = Some(Net {
        dev,
        severed: false,
        iface,
        sockets: SocketSet::new(slots),
        table: BTreeMap::new(),
        closing: Vec::new(),
        next: 1,
        dirty: true,
        poll_at: None,
        stats: NetStats::default(),
        // Drawing from where the last interface stopped would repeat
        // nothing either, but a fresh picker per attach is simpler and the
        // secret keeps it unpredictable.
        ports: PortPicker::new(secret),
    });
}

/// The device's port, if the network is up.
pub fn port() -> Option<u32> {
    NET.lock()
        .as_ref()
        .filter(|n| !n.severed)
        .map(|n| n.dev.port())
}

/// The device's port fired: take what the backend sent.
pub fn on_port() {
    if let Some(n) = NET.lock().as_mut().filter(|n| !n.severed) {
        n.dev.note_port_event();
        n.dev.service();
        n.dirty = true;
    }
}

/// smoltcp's next poll time in kernel ns, for the idle timer.
pub fn next_deadline_ns() -> Option<u64> {
    NET.lock()
        .as_ref()
        .filter(|n| !n.severed)
        .and_then(|n| n.poll_at)
        .map(|us| us * 1000)
}

/// Polls the interface if anything is due; returns the events that completed.
pub fn poll() -> Vec<Completion> {
    let mut guard = NET.lock();
    let Some(n) = guard.as_mut().filter(|n| !n.severed) else {
        return Vec::new();
    };
    let t = now();
    let due = n.poll_at.is_some_and(|at| t.total_micros() as u64 >= at);
    if !n.dirty && !due {
        return Vec::new();
    }
    n.dirty = false;
    n.reap_half_open(crate::clock::now_ns());
    let mut done = Vec::new();
    // Poll until the stack settles: a poll can make room for more sends.
    let fragments_before = n.stats.fragments;
    for _ in 0..8 {
        n.stats.polls += 1;
        let mut dev = Counted {
            dev: &mut n.dev,
            fragments: &mut n.stats.fragments,
        };
        n.iface.poll(t, &mut dev, &mut n.sockets);
        n.dev.flush_tx();
        n.dev.service();
        let before = done.len();
        n.serve_waiters(&mut done);
        if done.len() == before && !n.dev.has_rx() {
            break;
        }
    }
    note_fragments(fragments_before, n.stats.fragments);
    n.reap_closing();
    let reap_at = n.first_half_open_deadline_ns().map(|ns| ns / 1000 + 1);
    n.poll_at = n
        .iface
        .poll_at(t, &n.sockets)
        .map(|at| at.total_micros().max(0) as u64)
        .into_iter()
        .chain(reap_at)
        .min();
    done
}

/// Says how many IPv4 fragments came in each time the count reaches a
/// power of two: a flood shows in the log in a few lines.
fn note_fragments(before: u64, now: u64) {
    // A power of two in (before, now]: the first fragment, or log2 grew.
    if now > before && (before == 0 || now.ilog2() > before.ilog2()) {
        info!(
            "net: {now} IPv4 fragments received (reassembly: {} datagrams of {} bytes at most \
             at once, {} s to complete)",
            smoltcp::config::REASSEMBLY_BUFFER_COUNT,
            smoltcp::config::REASSEMBLY_BUFFER_SIZE,
            REASSEMBLY_TIMEOUT.secs()
        );
    }
}

/// The device as smoltcp polls it, counting the IPv4 fragments it hands
/// over.
struct Counted<'d> {
    dev: &'d mut NetDevice,
    fragments: &'d mut u64,
}

struct CountedRx<'c> {
    frame: crate::drivers::netfront::RxToken,
    fragments: &'c mut u64,
}

impl smoltcp::phy::RxToken for CountedRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let fragments = self.fragments;
        self.frame.consume(|frame| {
            if crate::net::netcheck::is_ipv4_fragment(frame) {
                *fragments += 1;
            }
            f(frame)
        })
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        self.frame.meta()
    }
}

impl smoltcp::phy::Device for Counted<'_> {
    type RxToken<'a>
        = CountedRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = crate::drivers::netfront::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (frame, tx) = self.dev.receive(now)?;
        let rx = CountedRx {
            frame,
            fragments: self.fragments,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.dev.transmit(now)
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.dev.capabilities()
    }
}

impl Net {
    fn insert(&mut self, owner: Pid, kind: Kind) -> SysResult<u32> {
        let h = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.table.insert(
            h,
            Sock {
                owner,
                kind,
                waiters: Vec::new(),
            },
        );
        self.dirty = true;
        Ok(h)
    }

    fn room(&self, n: usize) -> SysResult<()> {
        if self.sockets.iter().count() + n > MAX_SOCKETS {
            return Err(SysError::Busy);
        }
        Ok(())
    }

    fn tcp_socket(&mut self, port: u16, buffer: usize) -> SysResult<SocketHandle> {
        self.room(1)?;
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(zeroed(buffer)?),
            tcp::SocketBuffer::new(zeroed(buffer)?),
        );
        if port != 0 {
            s.listen(port).map_err(|_| SysError::InvalidArgument)?;
        }
        Ok(self.sockets.add(s))
    }

    fn sock(&mut self, owner: Pid, h: u32) -> SysResult<&mut Sock> {
        self.table
            .get_mut(&h)
            .filter(|s| s.owner == owner)
            .ok_or(SysError::BadHandle)
    }

    /// Moves sockets along a listener's path: listening → half-open (a SYN
    /// came) → ready for accept (the handshake completed). A half-open one
    /// that is reset goes back to listening (smoltcp returns it to LISTEN).
    /// Then keeps each listener's backlog full: a socket that could not be
    /// made for want of room (MAX_SOCKETS) is made later, once connections
    /// have closed.
    fn accept_connections(&mut self) {
        let deadline = crate::clock::now_ns().saturating_add(HALF_OPEN_TIMEOUT_NS);
        let mut moved = Vec::new();
        let mut ended = Vec::new();
        let mut half_open_now = 0;
        for (&h, s) in self.table.iter_mut() {
            let Kind::Listener {
                listening,
                half_open,
                ..
            } = &mut s.kind
            else {
                continue;
            };
            let sockets = &self.sockets;
            let state = |sh| sockets.get::<tcp::Socket>(sh).state();
            let mut back = Vec::new();
            half_open.retain(|&(sh, _)| match state(sh) {
                tcp::State::SynReceived => true,
                tcp::State::Listen => {
                    back.push(sh);
                    false
                }
                // Ended in the handshake: nothing to accept.
                tcp::State::Closed => {
                    ended.push(sh);
                    false
                }
                _ => {
                    moved.push((h, s.owner, sh));
                    false
                }
            });
            listening.retain(|&sh| match state(sh) {
                tcp::State::Listen => true,
                tcp::State::SynReceived => {
                    half_open.push((sh, deadline));
                    false
                }
                _ => {
                    moved.push((h, s.owner, sh));
                    false
                }
            });
            listening.extend(back);
            half_open_now += half_open.len();
            note_flood(s);
        }
        self.stats.half_open = half_open_now as u64;
        for sh in ended {
            self.sockets.remove(sh);
        }
        for (listener, owner, sh) in moved {
            self.stats.accepted += 1;
            let Ok(conn) = self.insert(owner, Kind::Tcp(sh)) else {
                continue;
            };
            if let Some(Kind::Listener { ready, .. }) =
                self.table.get_mut(&listener).map(|s| &mut s.kind)
            {
                ready.push_back(conn);
            }
        }
        self.refill_backlogs();
    }

    /// When the next half-open connection is given up (the stack is polled
    /// then even if no segment comes).
    fn first_half_open_deadline_ns(&self) -> Option<u64> {
        self.table
            .values()
            .filter_map(|s| match &s.kind {
                Kind::Listener { half_open, .. } => half_open.iter().map(|&(_, t)| t).min(),
                _ => None,
            })
            .min()
    }

    /// Aborts the half-open connections whose time is up (before smoltcp
    /// sees new segments, so that a SYN arriving now finds the listening
    /// socket that takes their place). No reset goes out: the peer never
    /// answered, and a late ACK of a real one meets smoltcp's reset for a
    /// segment no socket takes.
    fn reap_half_open(&mut self, now_ns: u64) {
        let mut reaped = 0;
        for s in self.table.values_mut() {
            if let Kind::Listener { half_open, .. } = &mut s.kind {
                let sockets = &mut self.sockets;
                half_open.retain(|&(sh, until)| {
                    let expired = until <= now_ns
                        && sockets.get::<tcp::Socket>(sh).state() == tcp::State::SynReceived;
                    if expired {
                        sockets.remove(sh);
                        reaped += 1;
                    }
                    !expired
                });
                note_flood(s);
            }
        }
        if reaped > 0 {
            self.stats.half_open_reaped += reaped;
            self.stats.half_open = self.stats.half_open.saturating_sub(reaped);
            self.refill_backlogs();
        }
    }

    /// Tops every listener up to its backlog of listening and half-open
    /// sockets, while its queue of connections not yet accepted is short of
    /// the backlog too.
    fn refill_backlogs(&mut self) {
        let listeners: Vec<u32> = self
            .table
            .iter()
            .filter(|(_, s)| {
                matches!(&s.kind, Kind::Listener { listening, half_open, ready, backlog, .. }
                    if listening.len() + half_open.len() < *backlog && ready.len() < *backlog)
            })
            .map(|(&h, _)| h)
            .collect();
        for h in listeners {
            let Some(Kind::Listener {
                port,
                buffer,
                backlog,
                listening,
                half_open,
                ..
            }) = self.table.get(&h).map(|s| &s.kind)
            else {
                continue;
            };
            let (port, buffer, backlog) = (*port, *buffer, *backlog);
            // Half-open sockets take the place of listening ones: a flood
            // holds at most `backlog` sockets of a listener.
            let missing = backlog - listening.len() - half_open.len();
            let mut fresh = Vec::new();
            let mut error = None;
            for _ in 0..missing {
                match self.tcp_socket(port, buffer) {
                    Ok(sh) => fresh.push(sh),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let Some(Kind::Listener {
                listening, short, ..
            }) = self.table.get_mut(&h).map(|s| &mut s.kind)
            else {
                continue;
            };
            listening.extend(fresh);
            // Said once when the backlog runs short, once when it is whole.
            match (error, *short) {
                (Some(e), false) => {
                    let why = match e {
                        SysError::OutOfMemory => "no memory for socket buffers",
                        _ => "all sockets in use",
                    };
                    warn!(
                        "net: listener on port {port} cannot keep its backlog of {backlog} \
                         ({why}); connections beyond it are refused"
                    );
                    *short = true;
                }
                (None, true) => {
                    info!("net: listener on port {port} has its whole backlog again");
                    *short = false;
                }
                _ => {}
            }
        }
    }

    fn serve_waiters(&mut self, done: &mut Vec<Completion>) {
        self.accept_connections();
        let handles: Vec<u32> = self.table.keys().copied().collect();
        for h in handles {
            let Some(mut s) = self.table.remove(&h) else {
                continue;
            };
            let mut kept = Vec::new();
            for (event, want) in core::mem::take(&mut s.waiters) {
                match self.try_complete(&mut s, event, want) {
                    Ok(c) => done.push(c),
                    Err(w) => kept.push(w),
                }
            }
            s.waiters = kept;
            self.table.insert(h, s);
        }
    }

    /// Completes a waiter if its socket is ready; gives it back otherwise.
    fn try_complete(
        &mut self,
        s: &mut Sock,
        event: EventId,
        want: Want,
    ) -> Result<Completion, (EventId, Want)> {
        let ok = |value| Completion {
            event,
            status: Status::Ok,
            value,
        };
        let fail = |code| Completion {
            event,
            status: Status::Remote(code),
            value: Value::Empty,
        };
        match (&mut s.kind, want) {
            (Kind::Listener { ready, .. }, Want::Accept) => match ready.pop_front() {
                Some(conn) => Ok(ok(Value::Word(u64::from(conn)))),
                None => Err((event, Want::Accept)),
            },
            (Kind::Tcp(sh), want) => {
                let sock = self.sockets.get_mut::<tcp::Socket>(*sh);
                // A connection handed to accept (or connecting) may still be in
                // its handshake: neither data nor end of stream yet.
                let opening = matches!(sock.state(), tcp::State::SynReceived | tcp::State::SynSent);
                match want {
                    Want::Connect => match sock.state() {
                        tcp::State::Established => Ok(ok(Value::Empty)),
                        tcp::State::Closed | tcp::State::TimeWait => Ok(fail(code::REFUSED)),
                        _ => Err((event, Want::Connect)),
                    },
                    Want::Recv(max) => {
                        if opening {
                            Err((event, Want::Recv(max)))
                        } else if sock.can_recv() {
                            let mut buf = vec![0u8; max.min(sock.recv_queue())];
                            let n = sock.recv_slice(&mut buf).unwrap_or(0);
                            buf.truncate(n);
                            Ok(ok(Value::Bytes(buf)))
                        } else if !sock.may_recv() {
                            // The peer closed: end of stream.
                            Ok(ok(Value::Bytes(Vec::new())))
                        } else {
                            Err((event, Want::Recv(max)))
                        }
                    }
                    Want::Send(data) => {
                        if opening {
                            Err((event, Want::Send(data)))
                        } else if !sock.may_send() {
                            Ok(fail(code::CLOSED))
                        } else if send_room(sock) >= data.len().min(sock.send_capacity() / 4) {
                            // Like Linux's writer wake-up: wait for a good
                            // part of the buffer (or the whole send) to be
                            // free, so each wake moves much, not one ACK's worth.
                            let n = sock.send_slice(&data).unwrap_or(0);
                            self.dirty = true;
                            Ok(ok(Value::Word(n as u64)))
                        } else {
                            Err((event, Want::Send(data)))
                        }
                    }
                    other => Err((event, other)),
                }
            }
            (Kind::Udp(sh), Want::UdpRecv) => {
                let sock = self.sockets.get_mut::<udp::Socket>(*sh);
                match sock.recv() {
                    Ok((data, meta)) => {
                        let mut out = Vec::with_capacity(6 + data.len());
                        let IpAddress::Ipv4(a) = meta.endpoint.addr;
                        out.extend_from_slice(&a.octets());
                        out.extend_from_slice(&meta.endpoint.port.to_le_bytes());
                        out.extend_from_slice(data);
                        Ok(ok(Value::Bytes(out)))
                    }
                    Err(_) => Err((event, Want::UdpRecv)),
                }
            }
            (_, want) => Err((event, want)),
        }
    }

    fn reap_closing(&mut self) {
        let sockets = &mut self.sockets;
        self.closing.retain(|&sh| {
            let st = sockets.get::<tcp::Socket>(sh).state();
            if matches!(st, tcp::State::Closed | tcp::State::TimeWait) {
                sockets.remove(sh);
                false
            } else {
                true
            }
        });
    }

    /// Frees a socket of the table (abort: no FIN exchange kept).
    fn drop_sock(&mut self, s: Sock, graceful: bool) {
        let handles = match s.kind {
            Kind::Listener {
                mut listening,
                half_open,
                ready,
                ..
            } => {
                for conn in ready {
                    if let Some(c) = self.table.remove(&conn) {
                        self.drop_sock(c, false);
                    }
                }
                listening.extend(half_open.into_iter().map(|(sh, _)| sh));
                listening
            }
            Kind::Tcp(sh) => vec![sh],
            Kind::Udp(sh) => {
                self.sockets.remove(sh);
                Vec::new()
            }
        };
        for sh in handles {
            let sock = self.sockets.get_mut::<tcp::Socket>(sh);
            if graceful && sock.is_active() {
                sock.close();
                self.closing.push(sh);
            } else {
                sock.abort();
                self.sockets.remove(sh);
            }
        }
        self.dirty = true;
    }
}

/// Says once when a listener's half-open connections reach its backlog (a
/// SYN flood, or a burst of clients on a lossy link) and once when they are
/// all gone again.
fn note_flood(s: &mut Sock) {
    if let Kind::Listener {
        port,
        backlog,
        half_open,
        flooded,
        ..
    } = &mut s.kind
    {
        if !*flooded && half_open.len() >= *backlog {
            warn!(
                "net: listener on port {port} holds {backlog} half-open connections (a SYN flood?); \
                 more are refused until these complete or are given up after {} s",
                HALF_OPEN_TIMEOUT_NS / 1_000_000_000
            );
            *flooded = true;
        } else if *flooded && half_open.is_empty() {
            info!("net: listener on port {port} has no half-open connections left");
            *flooded = false;
        }
    }
}

/// Heap that socket buffers leave alone: the kernel's small allocations
/// (received frames, events, replies) must always find room, or the guest
/// would crash where it should only refuse a connection.
pub const HEAP_RESERVE: usize = 384 * 1024;

/// A buffer of `n` zero bytes, or `OutOfMemory` when it would leave less
/// than [`HEAP_RESERVE`] free: a socket the heap has no room for is
/// refused, not a reason to crash the guest.
fn zeroed(n: usize) -> SysResult<Vec<u8>> {
    let (_, free) = hal::heap::usage();
    if free < n + HEAP_RESERVE {
        return Err(SysError::OutOfMemory);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| SysError::OutOfMemory)?;
    v.resize(n, 0);
    Ok(v)
}

/// Free bytes in a TCP socket's send buffer.
fn send_room(sock: &tcp::Socket) -> usize {
    sock.send_capacity() - sock.send_queue()
}

fn with_net<R>(f: impl FnOnce(&mut Net) -> SysResult<R>) -> SysResult<R> {
    let mut guard = NET.lock();
    // Not up yet (net-setup is still talking to netback) or gone (the
    // backend detached): the caller may try again later.
    let n = guard.as_mut().ok_or(SysError::NetDown)?;
    f(n)
}

/// Listens on TCP `port` with `backlog` sockets; returns the listener handle.
pub fn tcp_listen(owner: Pid, port: u16, backlog: usize, large: bool) -> SysResult<u32> {
    if port == 0 || backlog == 0 || backlog > MAX_BACKLOG {
        return Err(SysError::InvalidArgument);
    }
    let buffer = if large { LARGE_BUFFER } else { SMALL_BUFFER };
    with_net(|n| {
        n.room(backlog)?;
        let mut listening = Vec::with_capacity(backlog);
        for _ in 0..backlog {
            match n.tcp_socket(port, buffer) {
                Ok(sh) => listening.push(sh),
                Err(e) => {
                    // Nothing half made stays behind.
                    for sh in listening {
                        n.sockets.remove(sh);
                    }
                    return Err(e);
                }
            }
        }
        n.insert(
            owner,
            Kind::Listener {
                port,
                buffer,
                backlog,
                short: false,
                listening,
                half_open: Vec::new(),
                flooded: false,
                ready: VecDeque::new(),
            },
        )
    })
}

/// Connects to `ip:port`; returns the connection's handle. The event given
/// completes once connected (or `Remote(REFUSED)`).
pub fn tcp_connect(owner: Pid, ip: [u8; 4], port: u16, event: EventId) -> SysResult<u32> {
    with_net(|n| {
        let sockets = &n.sockets;
        let local = n
            .ports
            .pick(|p| port_in_use(sockets, p))
            .ok_or(SysError::Busy)?;
        let sh = n.tcp_socket(0, LARGE_BUFFER)?;
        let remote = IpEndpoint::new(IpAddress::Ipv4(ipv4(ip)), port);
        let cx = n.iface.context();
        if n.sockets
            .get_mut::<tcp::Socket>(sh)
            .connect(cx, remote, local)
            .is_err()
        {
            n.sockets.remove(sh);
            return Err(SysError::InvalidArgument);
        }
        let h = n.insert(owner, Kind::Tcp(sh))?;
        n.sock(owner, h)?.waiters.push((event, Want::Connect));
        Ok(h)
    })
}

/// Whether a socket of the guest has `port` as its local port.
fn port_in_use(sockets: &SocketSet, port: u16) -> bool {
    sockets.iter().any(|(_, s)| match s {
        smoltcp::socket::Socket::Tcp(t) => {
            t.listen_endpoint().port == port || t.local_endpoint().is_some_and(|e| e.port == port)
        }
        smoltcp::socket::Socket::Udp(u) => u.endpoint().port == port,
    })
}

/// Binds a UDP socket to `port`.
pub fn udp_bind(owner: Pid, port: u16) -> SysResult<u32> {
    with_net(|n| {
        n.room(1)?;
        let meta = || vec![udp::PacketMetadata::EMPTY; 16];
        let mut s = udp::Socket::new(
            udp::PacketBuffer::new(meta(), zeroed(16 * 1024)?),
            udp::PacketBuffer::new(meta(), zeroed(16 * 1024)?),
        );
        s.bind(port).map_err(|_| SysError::InvalidArgument)?;
        let sh = n.sockets.add(s);
        n.insert(owner, Kind::Udp(sh))
    })
}

/// Sends a datagram at once (`Busy` if the send buffer is full).
pub fn udp_send(owner: Pid, h: u32, ip: [u8; 4], port: u16, data: &[u8]) -> SysResult<()> {
    with_net(|n| {
        let Kind::Udp(sh) = n.sock(owner, h)?.kind else {
            return Err(SysError::BadHandle);
        };
        let to = IpEndpoint::new(IpAddress::Ipv4(ipv4(ip)), port);
        n.sockets
            .get_mut::<udp::Socket>(sh)
            .send_slice(data, to)
            .map_err(|e| match e {
                udp::SendError::BufferFull => SysError::Busy,
                udp::SendError::Unaddressable => SysError::InvalidArgument,
            })?;
        n.dirty = true;
        Ok(())
    })
}

/// Registers `event` to complete when the socket can do `want`.
fn wait(owner: Pid, h: u32, event: EventId, want: Want) -> SysResult<()> {
    with_net(|n| {
        let s = n.sock(owner, h)?;
        let fits = matches!(
            (&s.kind, &want),
            (Kind::Listener { .. }, Want::Accept)
                | (Kind::Tcp(_), Want::Recv(_) | Want::Send(_))
                | (Kind::Udp(_), Want::UdpRecv)
        );
        if !fits {
            return Err(SysError::BadHandle);
        }
        if s.waiters.len() >= 16 {
            return Err(SysError::Busy);
        }
        s.waiters.push((event, want));
        n.dirty = true;
        Ok(())
    })
}

pub fn accept(owner: Pid, h: u32, event: EventId) -> SysResult<()> {
    wait(owner, h, event, Want::Accept)
}

pub fn recv(owner: Pid, h: u32, max: usize, event: EventId) -> SysResult<()> {
    wait(owner, h, event, Want::Recv(max.clamp(1, LARGE_BUFFER)))
}

pub fn send(owner: Pid, h: u32, data: Vec<u8>, event: EventId) -> SysResult<()> {
    if data.is_empty() || data.len() > LARGE_BUFFER {
        return Err(SysError::InvalidArgument);
    }
    wait(owner, h, event, Want::Send(data))
}

pub fn udp_recv(owner: Pid, h: u32, event: EventId) -> SysResult<()> {
    wait(owner, h, event, Want::UdpRecv)
}

/// Closes a socket (TCP: a FIN, kept until the exchange ends); its waiting
/// events complete `Cancelled`.
pub fn close(owner: Pid, h: u32) -> SysResult<Vec<Completion>> {
    with_net(|n| {
        n.sock(owner, h)?;
        let s = n.table.remove(&h).expect("checked");
        let done = cancelled(&s);
        n.drop_sock(s, true);
        Ok(done)
    })
}

fn cancelled(s: &Sock) -> Vec<Completion> {
    s.waiters
        .iter()
        .map(|(event, _)| Completion {
            event: *event,
            status: Status::Cancelled,
            value: Value::Empty,
        })
        .collect()
}

/// Aborts the sockets of an exited process.
pub fn forget(owner: Pid) {
    let mut guard = NET.lock();
    let Some(n) = guard.as_mut() else { return };
    let mine: Vec<u32> = n
        .table
        .iter()
        .filter(|(_, s)| s.owner == owner)
        .map(|(&h, _)| h)
        .collect();
    for h in mine {
        if let Some(s) = n.table.remove(&h) {
            n.drop_sock(s, false);
        }
    }
}

/// The backend went away: every socket ends, its waiters complete with
/// `Remote(NET_DOWN)`; the stack stops. Returns the completions and the
/// device (for the caller to release).
fn stop() -> (Vec<Completion>, Option<NetDevice>) {
    let Some(mut n) = NET.lock().take() else {
        return (Vec::new(), None);
    };
    let mut done = Vec::new();
    for (_, s) in core::mem::take(&mut n.table) {
        for (event, _) in s.waiters {
            done.push(Completion {
                event,
                status: Status::Remote(code::NET_DOWN),
                value: Value::Empty,
            });
        }
    }
    info!("net: down; {} waiting events ended", done.len());
    (done, Some(n.dev))
}

/// Counters.
pub fn stats() -> Option<(NetStats, crate::drivers::netfront::DevStats)> {
    NET.lock().as_ref().map(|n| {
        let mut s = n.stats;
        s.sockets = n.sockets.iter().count();
        (s, n.dev.stats())
    })
}

/// The network stack as an event source: the device's port takes what
/// netback sent, every pass polls smoltcp (socket events complete there),
/// its timers wake the idle loop, an exited process's sockets are aborted.
pub struct NetSource;

impl crate::event::Source for NetSource {
    fn name(&self) -> &'static str {
        "net"
    }
    fn port(&self) -> Option<u32> {
        port()
    }
    fn on_port(&self) -> Vec<Completion> {
        on_port();
        Vec::new()
    }
    fn poll(&self) -> Vec<Completion> {
        poll()
    }
    fn next_deadline(&self) -> Option<u64> {
        next_deadline_ns()
    }
    fn forget(&self, pid: Pid) {
        forget(pid)
    }
}
