//! The two ends of a vchan: byte streams over the shared page, with libxenvchan's
//! semantics so that libxenvchan (e.g. Debian's `vchan-socket-proxy`) can be the peer.
//!
//! * The **server** (the guest) owns the pages. [`Vchan::server`] initialises the header
//!   as `libxenvchan_server_init` does: indices 0, the orders and grant list, `cli_live =
//!   2` (no client yet), `srv_live = 1`, `cli_notify = NOTIFY_WRITE` (tell the server when
//!   you write). It reads the left ring and writes the right one.
//! * The **client** (the shadowdaemon) maps them: [`Probe::read`] gives the validated
//!   orders and the grant references to map, then [`Vchan::client`] attaches, sets
//!   `cli_live = 1` and `srv_notify = NOTIFY_WRITE`, and asks for a kick to wake the
//!   server. It writes the left ring and reads the right one.
//!
//! # Notifications
//!
//! Nothing here talks to Xen. Whenever an operation moved an index and the peer had asked
//! to hear about it, the operation returns [`Notify::Yes`] and the caller kicks the event
//! channel (once per batch is enough: kicks only wake, they carry nothing). The bits work
//! as in libxenvchan: a reader that finds fewer bytes than it wants sets `NOTIFY_WRITE`
//! in the peer's byte and re-reads the index (so a write racing the request is not
//! missed); a writer that finds too little space sets `NOTIFY_READ` likewise. After
//! writing (reading), an end clears `NOTIFY_WRITE` (`NOTIFY_READ`) in its own byte and
//! kicks only if it was set. A busy peer that keeps finding data never asks, so a busy
//! channel needs few kicks.
//!
//! Before waiting for a kick, drain: call `read`/`recv` until it returns less than asked
//! (that leaves the request bit set), and retry pending writes until they stall.
//!
//! # Liveness
//!
//! `read` keeps delivering bytes after the peer closed and reports
//! [`Error::PeerClosed`] once none are left; `write` reports it at once. A closed peer
//! stays closed for this end; reconnecting needs a new channel.

use alloc::vec::Vec;
use core::ops::{BitOr, BitOrAssign};
use core::sync::atomic::{fence, Ordering};

use crate::error::{BrokenReason, Error, SetupError};
use crate::layout::{
    Layout, Placement, Side, CLI_LIVE, CLI_NOTIFY, HEADER_BYTES, LEFT_CONS, LEFT_PROD, LIVE_CLOSED,
    LIVE_CONNECTED, LIVE_WAITING, NOTIFY_READ, NOTIFY_WRITE, PAGE_SIZE, RIGHT_CONS, RIGHT_PROD,
    SRV_LIVE, SRV_NOTIFY,
};
use crate::mem::SharedMem;
use crate::ring::{Consumer, Producer, RingPlace};

/// Whether the caller must kick the event channel.
#[must_use = "a Notify::Yes that is dropped is a lost wake-up"]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Notify {
    /// The peer is not waiting for what just happened.
    #[default]
    No,
    /// The peer asked to be told: send an event-channel notification.
    Yes,
}

impl Notify {
    /// `true` for [`Notify::Yes`].
    pub fn is_yes(self) -> bool {
        self == Notify::Yes
    }
}

impl BitOr for Notify {
    type Output = Notify;
    fn bitor(self, o: Notify) -> Notify {
        if self.is_yes() || o.is_yes() {
            Notify::Yes
        } else {
            Notify::No
        }
    }
}

impl BitOrAssign for Notify {
    fn bitor_assign(&mut self, o: Notify) {
        *self = *self | o;
    }
}

/// Which end of the vchan this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Grants the pages; reads left, writes right.
    Server,
    /// Maps the pages; writes left, reads right.
    Client,
}

/// The peer's liveness byte, as last validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// (Server only) no client has connected yet: `cli_live == 2`. Writes still queue.
    Waiting,
    /// The peer is connected.
    Live,
    /// The peer has gone: its liveness byte is 0.
    Closed,
}

/// The result of a partial read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes moved.
    pub bytes: usize,
    /// Whether the peer must be kicked.
    pub notify: Notify,
}

impl Transfer {
    const NONE: Transfer = Transfer {
        bytes: 0,
        notify: Notify::No,
    };
}

/// Byte-level counters of one end. All only ever grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VchanStats {
    /// Bytes copied out of the ring we read.
    pub bytes_read: u64,
    /// Bytes copied into the ring we write.
    pub bytes_written: u64,
    /// Times we set a bit in the peer's notify byte (we were about to run dry or full).
    pub notify_requests: u64,
    /// Operations that returned [`Notify::Yes`] (the peer had asked; before any batching).
    pub notifies: u64,
}

/// What a client learns from the interface page before mapping anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The validated orders.
    pub layout: Layout,
    /// Grant references of the left ring's pages (empty for an in-page ring).
    pub left_grants: Vec<u32>,
    /// Grant references of the right ring's pages (empty for an in-page ring).
    pub right_grants: Vec<u32>,
}

impl Probe {
    /// Reads the orders (validated) and the grant list (bounded by them) from a mapped
    /// interface page. Read once: [`Vchan::client`] uses this copy, not the page, so the
    /// server cannot change the layout between the two steps.
    pub fn read<M: SharedMem + ?Sized>(ctrl: &M) -> Result<Probe, SetupError> {
        let layout = Layout::read(ctrl)?;
        Ok(Probe {
            layout,
            left_grants: layout.read_grants(ctrl, Side::Left),
            right_grants: layout.read_grants(ctrl, Side::Right),
        })
    }
}

/// One end of a vchan over memory `M`.
pub struct Vchan<M> {
    role: Role,
    layout: Layout,
    ctrl: M,
    rx: Consumer<M>,
    tx: Producer<M>,
    broken: Option<BrokenReason>,
    closed: bool,
    peer: PeerState,
    stats: VchanStats,
}

impl<M: SharedMem + Clone> Vchan<M> {
    /// Builds the server end and initialises the interface page `ctrl` (at least a page).
    /// `left`/`right` are the memories of rings the layout puts in granted pages (`None`
    /// for in-page rings); `grants` are their grant references, left's pages first.
    pub fn server(
        layout: Layout,
        ctrl: M,
        left: Option<M>,
        right: Option<M>,
        grants: &[u32],
    ) -> Result<Self, SetupError> {
        check_page(&ctrl)?;
        if grants.len() != layout.grant_count() {
            return Err(SetupError::GrantCount {
                expected: layout.grant_count(),
                got: grants.len(),
            });
        }
        let left = ring_place(&layout, Side::Left, &ctrl, left)?;
        let right = ring_place(&layout, Side::Right, &ctrl, right)?;
        ctrl.copy_in(0, &[0u8; HEADER_BYTES]);
        layout.write(&ctrl, grants);
        ctrl.store_u8(CLI_LIVE, LIVE_WAITING);
        ctrl.store_u8(SRV_LIVE, LIVE_CONNECTED);
        ctrl.store_u8(CLI_NOTIFY, NOTIFY_WRITE);
        Ok(Vchan {
            role: Role::Server,
            layout,
            ctrl,
            rx: Consumer::new(left, 0),
            tx: Producer::new(right, 0),
            broken: None,
            closed: false,
            peer: PeerState::Waiting,
            stats: VchanStats::default(),
        })
    }

    /// Attaches the client end to a server's page, with the layout from [`Probe::read`].
    /// Requires `srv_live == 1` and `cli_live == 2`. The returned [`Notify::Yes`] is the
    /// kick that tells the server a client arrived.
    pub fn client(
        layout: Layout,
        ctrl: M,
        left: Option<M>,
        right: Option<M>,
    ) -> Result<(Self, Notify), SetupError> {
        check_page(&ctrl)?;
        let left = ring_place(&layout, Side::Left, &ctrl, left)?;
        let right = ring_place(&layout, Side::Right, &ctrl, right)?;
        let srv_live = ctrl.load_u8(SRV_LIVE);
        if srv_live != LIVE_CONNECTED {
            return Err(SetupError::ServerNotLive { srv_live });
        }
        let cli_live = ctrl.load_u8(CLI_LIVE);
        if cli_live != LIVE_WAITING {
            return Err(SetupError::NotAwaitingClient { cli_live });
        }
        // Start from whatever the indices say now (the server may already have written);
        // the first checks validate them against each other.
        let rx = Consumer::new(right, ctrl.load_u32_acquire(RIGHT_CONS));
        let tx = Producer::new(left, ctrl.load_u32_acquire(LEFT_PROD));
        ctrl.store_u8(CLI_LIVE, LIVE_CONNECTED);
        ctrl.store_u8(SRV_NOTIFY, NOTIFY_WRITE);
        let end = Vchan {
            role: Role::Client,
            layout,
            ctrl,
            rx,
            tx,
            broken: None,
            closed: false,
            peer: PeerState::Live,
            stats: VchanStats::default(),
        };
        Ok((end, Notify::Yes))
    }
}

fn check_page<M: SharedMem>(ctrl: &M) -> Result<(), SetupError> {
    if ctrl.size() < PAGE_SIZE {
        return Err(SetupError::MemoryTooSmall {
            side: None,
            needed: PAGE_SIZE,
            got: ctrl.size(),
        });
    }
    Ok(())
}

fn ring_place<M: SharedMem + Clone>(
    layout: &Layout,
    side: Side,
    ctrl: &M,
    ext: Option<M>,
) -> Result<RingPlace<M>, SetupError> {
    let size = layout.ring_size(side);
    let (data, base) = match (layout.placement(side), ext) {
        (Placement::InPage { offset }, None) => (ctrl.clone(), offset),
        (Placement::Granted { .. }, Some(mem)) => {
            if mem.size() < size {
                return Err(SetupError::MemoryTooSmall {
                    side: Some(side),
                    needed: size,
                    got: mem.size(),
                });
            }
            (mem, 0)
        }
        _ => return Err(SetupError::RingMemoryMismatch { side }),
    };
    let (cons_off, prod_off) = match side {
        Side::Left => (LEFT_CONS, LEFT_PROD),
        Side::Right => (RIGHT_CONS, RIGHT_PROD),
    };
    Ok(RingPlace {
        side,
        cons_off,
        prod_off,
        data,
        base,
        size: size as u32,
    })
}

impl<M: SharedMem> Vchan<M> {
    /// Server or client.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The ring orders.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Size of the ring this end reads.
    pub fn read_ring_size(&self) -> usize {
        self.rx.place.size as usize
    }

    /// Size of the ring this end writes.
    pub fn write_ring_size(&self) -> usize {
        self.tx.place.size as usize
    }

    /// Why the channel is broken, if it is.
    pub fn broken(&self) -> Option<BrokenReason> {
        self.broken
    }

    /// Whether this end was closed by its owner.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Counters.
    pub fn stats(&self) -> VchanStats {
        self.stats
    }

    /// Declares the channel broken (the first reason sticks; it is logged once) and
    /// returns the error every later call will report. Used by the framing layer for
    /// violations it finds above the byte stream.
    pub fn break_with(&mut self, reason: BrokenReason) -> Error {
        match self.broken {
            Some(first) => Error::Broken(first),
            None => {
                log::warn!("vchan ({:?} end) broken: {reason}", self.role);
                self.broken = Some(reason);
                Error::Broken(reason)
            }
        }
    }

    fn usable(&self) -> Result<(), Error> {
        match (self.broken, self.closed) {
            (Some(r), _) => Err(Error::Broken(r)),
            (None, true) => Err(Error::Closed),
            (None, false) => Ok(()),
        }
    }

    /// Reads and validates the peer's liveness byte.
    pub fn peer_state(&mut self) -> Result<PeerState, Error> {
        self.usable()?;
        if self.peer == PeerState::Closed {
            return Ok(PeerState::Closed);
        }
        let off = match self.role {
            Role::Server => CLI_LIVE,
            Role::Client => SRV_LIVE,
        };
        let value = self.ctrl.load_u8(off);
        let next = match (self.role, self.peer, value) {
            (_, _, LIVE_CLOSED) => PeerState::Closed,
            (Role::Server, PeerState::Waiting, LIVE_WAITING) => PeerState::Waiting,
            (_, _, LIVE_CONNECTED) => PeerState::Live,
            _ => return Err(self.break_with(BrokenReason::LivenessInvalid { value })),
        };
        self.peer = next;
        Ok(next)
    }

    /// The byte we test and clear after acting (the peer sets bits in it).
    fn own_notify(&self) -> usize {
        match self.role {
            Role::Server => SRV_NOTIFY,
            Role::Client => CLI_NOTIFY,
        }
    }

    /// The byte we set bits in to ask the peer for a kick.
    fn peer_notify(&self) -> usize {
        match self.role {
            Role::Server => CLI_NOTIFY,
            Role::Client => SRV_NOTIFY,
        }
    }

    fn request_notify(&mut self, bit: u8) {
        self.ctrl.fetch_or_u8(self.peer_notify(), bit);
        // The request must be visible before we re-read the index.
        fence(Ordering::SeqCst);
        self.stats.notify_requests += 1;
    }

    fn send_notify(&mut self, bit: u8) -> Notify {
        // The index update must be visible before we look at the request.
        fence(Ordering::SeqCst);
        let prev = self.ctrl.fetch_and_u8(self.own_notify(), !bit);
        if prev & bit != 0 {
            self.stats.notifies += 1;
            Notify::Yes
        } else {
            Notify::No
        }
    }

    fn raw_ready(&mut self) -> Result<usize, Error> {
        match self.rx.ready(&self.ctrl) {
            Ok(n) => Ok(n as usize),
            Err(r) => Err(self.break_with(r)),
        }
    }

    fn raw_space(&mut self) -> Result<usize, Error> {
        match self.tx.space(&self.ctrl) {
            Ok(n) => Ok(n as usize),
            Err(r) => Err(self.break_with(r)),
        }
    }

    /// Bytes ready, asking for a kick on the next write if fewer than `want`.
    fn fast_ready(&mut self, want: usize) -> Result<usize, Error> {
        let ready = self.raw_ready()?;
        if ready >= want {
            return Ok(ready);
        }
        self.request_notify(NOTIFY_WRITE);
        self.raw_ready()
    }

    /// Free space, asking for a kick on the next read if less than `want`.
    fn fast_space(&mut self, want: usize) -> Result<usize, Error> {
        let space = self.raw_space()?;
        if space >= want {
            return Ok(space);
        }
        self.request_notify(NOTIFY_READ);
        self.raw_space()
    }

    /// Bytes ready to read now (`libxenvchan_data_ready`: also asks to be kicked on the
    /// next write, since the caller is about to act on the answer).
    pub fn data_ready(&mut self) -> Result<usize, Error> {
        self.usable()?;
        self.request_notify(NOTIFY_WRITE);
        self.raw_ready()
    }

    /// Bytes we wrote that the peer has not read yet, by its consumer index (checked as
    /// every other read of it is: an index out of range breaks the channel). Unlike
    /// [`Self::buffer_space`] it asks for no kick, and it works on a closed end too:
    /// it tells what the peer really read, e.g. before its pages went with a domain
    /// that was saved while we wrote.
    pub fn unread_by_peer(&mut self) -> Result<usize, Error> {
        let space = self.raw_space()?;
        Ok(self.write_ring_size() - space)
    }

    /// Free space in the ring we write (`libxenvchan_buffer_space`: also asks to be
    /// kicked on the next read).
    pub fn buffer_space(&mut self) -> Result<usize, Error> {
        self.usable()?;
        self.request_notify(NOTIFY_READ);
        self.raw_space()
    }

    fn take(&mut self, dst: &mut [u8]) -> Notify {
        self.rx.take(&self.ctrl, dst);
        self.stats.bytes_read += dst.len() as u64;
        self.send_notify(NOTIFY_READ)
    }

    fn put(&mut self, src: &[u8]) -> Notify {
        self.tx.put(&self.ctrl, src);
        self.stats.bytes_written += src.len() as u64;
        self.send_notify(NOTIFY_WRITE)
    }

    /// Reads up to `buf.len()` bytes (`libxenvchan_read`, non-blocking). Zero bytes means
    /// none are ready; a kick will come when some are.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Transfer, Error> {
        self.usable()?;
        let ready = self.fast_ready(buf.len())?;
        let n = ready.min(buf.len());
        if n == 0 {
            if !buf.is_empty() && self.peer_state()? == PeerState::Closed {
                return Err(Error::PeerClosed);
            }
            return Ok(Transfer::NONE);
        }
        let notify = self.take(&mut buf[..n]);
        Ok(Transfer { bytes: n, notify })
    }

    /// Reads exactly `buf.len()` bytes, or nothing if fewer are ready (`libxenvchan_recv`,
    /// non-blocking). `Ok(None)`: not enough yet; a kick will come when more arrive.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<Notify>, Error> {
        self.usable()?;
        if buf.len() > self.read_ring_size() {
            return Err(Error::ExceedsRing);
        }
        if self.fast_ready(buf.len())? < buf.len() {
            if self.peer_state()? == PeerState::Closed {
                return Err(Error::PeerClosed);
            }
            return Ok(None);
        }
        Ok(Some(self.take(buf)))
    }

    /// Writes as many bytes of `data` as fit (`libxenvchan_write`, non-blocking). Fewer
    /// than asked means the ring is full; a kick will come when the peer reads.
    pub fn write(&mut self, data: &[u8]) -> Result<Transfer, Error> {
        self.usable()?;
        if self.peer_state()? == PeerState::Closed {
            return Err(Error::PeerClosed);
        }
        let n = self.fast_space(data.len())?.min(data.len());
        if n == 0 {
            return Ok(Transfer::NONE);
        }
        let notify = self.put(&data[..n]);
        Ok(Transfer { bytes: n, notify })
    }

    /// Writes all of `data` or nothing (`libxenvchan_send`, non-blocking). `Ok(None)`:
    /// not enough space yet; a kick will come when the peer reads.
    pub fn send(&mut self, data: &[u8]) -> Result<Option<Notify>, Error> {
        self.usable()?;
        if data.len() > self.write_ring_size() {
            return Err(Error::ExceedsRing);
        }
        if self.peer_state()? == PeerState::Closed {
            return Err(Error::PeerClosed);
        }
        if self.fast_space(data.len())? < data.len() {
            return Ok(None);
        }
        Ok(Some(self.put(data)))
    }

    /// Closes this end: writes 0 to our liveness byte. The peer learns of it by the kick
    /// (always [`Notify::Yes`] the first time, as libxenvchan always kicks on close).
    /// A broken channel keeps reporting its reason afterwards.
    pub fn close(&mut self) -> Notify {
        if self.closed {
            return Notify::No;
        }
        let off = match self.role {
            Role::Server => SRV_LIVE,
            Role::Client => CLI_LIVE,
        };
        self.ctrl.store_u8(off, LIVE_CLOSED);
        self.closed = true;
        Notify::Yes
    }
}
