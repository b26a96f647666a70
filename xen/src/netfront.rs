//! The data path of a Xen netfront: the transmit and receive rings
//! (`xen/io/netif.h` on top of `xen/io/ring.h`), front-end side, hardened
//! against a hostile backend.
//!
//! Each direction is one shared 4096-byte page: a 64-byte header
//! (`req_prod, req_event, rsp_prod, rsp_event`, then `pvt` and padding) and
//! 256 entries, each the union of a request and a response. This module
//! writes requests, publishes them with the `req_event` notification rule of
//! `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`, and consumes responses with the
//! final check of `RING_FINAL_CHECK_FOR_RESPONSES`. It knows nothing of
//! grants, event channels or packet buffers: the caller owns a buffer and
//! its grant per request, and finds them again by the request's id.
//!
//! The backend (Linux netback in dom0) writes the response entries and
//! `rsp_prod`/`req_event` whenever it likes. After the 2021 Linux netfront
//! hardening (XSA-376):
//!
//! * `rsp_prod` is read once per pass over the ring, then checked: the
//!   backend may not answer more requests than were published and are still
//!   unanswered (which also bounds it by the ring size, wrapping arithmetic).
//!   Indices this end owns (`req_prod_pvt`, the published `req_prod`,
//!   `rsp_cons`) are private copies, never read back from the page.
//! * Each response is copied into private memory once, then validated: its
//!   id must be below the ring size and belong to a published request that
//!   has no response yet (so a duplicate or an invented id is caught); a
//!   receive response must carry no flag this driver did not negotiate (no
//!   scatter-gather, no GSO on receive: `more_data`, `extra_info`,
//!   `gso_prefix` are violations), a length that ends within the page, or a
//!   named error.
//! * Transmit may send a packet in several requests (`more_data`) with one
//!   GSO extra-info entry after the first ([`TxRing::push_packet`]). The
//!   extra entry takes a ring slot but no id; netback answers it with a
//!   `NETIF_RSP_NULL` response written right after the response of the
//!   request that carried it. Exactly that is accepted: one NULL directly
//!   after each such response (even if `rsp_prod` stops in between), and a
//!   NULL anywhere else, or anything else where a NULL is due, is a
//!   violation.
//! * Any violation marks the ring broken with a [`BrokenReason`]. From then
//!   on every call reports it (or does nothing) without touching shared
//!   memory again. Nothing here panics on what the page holds, and every
//!   structure is fixed-size (no allocation).
//!
//! One ring breaking should stop the device (both rings); that is the
//! caller's decision, which it takes on the first error it sees. The owner
//! logs the reason once.
//!
//! Request ids come from a free list: an id is handed out by
//! [`TxRing::push`] / [`TxRing::push_packet`] (one per data slot) /
//! [`RxRing::post`] and only returns to the list when its response has been
//! delivered, so a buffer indexed by id is never reused while the backend
//! may still use it. Pushing without enough free ids or ring entries is
//! back-pressure ([`PushError::Full`]), never an overwrite.

use core::fmt;
use core::sync::atomic::{fence, Ordering};

use rpc::SharedMem;

/// Bytes in a ring page, and in a packet buffer page.
pub const PAGE_SIZE: usize = 4096;

/// Offsets and sizes in a shared ring page (`struct netif_{tx,rx}_sring`).
pub mod layout {
    /// `req_prod`: written by the front end.
    pub const REQ_PROD: usize = 0;
    /// `req_event`: written by the back end (notify it when `req_prod` passes this).
    pub const REQ_EVENT: usize = 4;
    /// `rsp_prod`: written by the back end.
    pub const RSP_PROD: usize = 8;
    /// `rsp_event`: written by the front end (notify me when `rsp_prod` passes this).
    pub const RSP_EVENT: usize = 12;
    /// `pvt` (4 bytes, netif's `smartpoll_active`) and `__pad[44]`.
    pub const PVT: usize = 16;
    /// `ring[0]`: 16 bytes of indices + 4 `pvt` + 44 `__pad`.
    pub const ENTRIES: usize = 64;
    /// `union netif_tx_sring_entry`: the 12-byte `netif_tx_request`.
    pub const TX_ENTRY: usize = 12;
    /// `union netif_rx_sring_entry`: both halves are 8 bytes.
    pub const RX_ENTRY: usize = 8;
}

/// `__CONST_RING_SIZE`: the largest power of two of entries that fits.
const fn entries_in_page(entry: usize) -> usize {
    let fit = (PAGE_SIZE - layout::ENTRIES) / entry;
    let mut n = 1;
    while n * 2 <= fit {
        n *= 2;
    }
    n
}

/// Entries in the transmit ring (`NET_TX_RING_SIZE`).
pub const TX_RING_SIZE: usize = entries_in_page(layout::TX_ENTRY);
/// Entries in the receive ring (`NET_RX_RING_SIZE`).
pub const RX_RING_SIZE: usize = entries_in_page(layout::RX_ENTRY);

/// Both rings have 256 entries; the fixed-size bookkeeping below relies on it.
const SLOTS: usize = 256;
const _: () = assert!(TX_RING_SIZE == SLOTS && RX_RING_SIZE == SLOTS);

/// Most data slots one transmitted packet may use: 64 KiB in pages, plus
/// one for an unaligned start (Linux netfront's `MAX_XEN_SKB_FRAGS`).
/// Netback drops a packet whose first request is followed by more than
/// `XEN_NETBK_LEGACY_SLOTS_MAX` (18) others and disconnects a front end
/// past `fatal_skb_slots` (20 by default); 17 stays clear of both.
pub const MAX_PACKET_SLOTS: usize = 17;

/// One piece of a transmitted packet: `len` bytes at `offset` of the page
/// granted as `gref`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxSlot {
    pub gref: u32,
    pub offset: u16,
    pub len: u16,
}

/// `NETTXF_*`, the flags of a transmit request.
pub mod txflags {
    /// The protocol checksum field is blank (to be filled by offload).
    pub const CSUM_BLANK: u16 = 1 << 0;
    /// The packet's checksum has been validated.
    pub const DATA_VALIDATED: u16 = 1 << 1;
    /// The packet continues in the next request (scatter-gather); set by
    /// [`TxRing::push_packet`](super::TxRing::push_packet) itself.
    pub const MORE_DATA: u16 = 1 << 2;
    /// An extra-info entry follows this request (GSO); set by
    /// [`TxRing::push_packet`](super::TxRing::push_packet) itself.
    pub const EXTRA_INFO: u16 = 1 << 3;
    /// The flags a caller may pass to [`TxRing::push`](super::TxRing::push)
    /// and [`TxRing::push_packet`](super::TxRing::push_packet).
    pub const ALLOWED: u16 = CSUM_BLANK | DATA_VALIDATED;
}

/// `struct netif_extra_info`, the entry that follows a transmit request
/// flagged [`txflags::EXTRA_INFO`] (8 bytes of the 12-byte tx entry).
pub mod extra {
    /// Byte 0, `type`: `XEN_NETIF_EXTRA_TYPE_GSO`.
    pub const TYPE_GSO: u8 = 1;
    /// Byte 1, `flags`: `XEN_NETIF_EXTRA_FLAG_MORE` (another extra follows;
    /// never sent).
    pub const FLAG_MORE: u8 = 1 << 0;
    /// Bytes 2..4, `u.gso.size`: the segment size (MSS), never 0.
    pub const GSO_SIZE: usize = 2;
    /// Byte 4, `u.gso.type`: `XEN_NETIF_GSO_TYPE_TCPV4`.
    pub const GSO_TYPE: usize = 4;
    pub const GSO_TYPE_TCPV4: u8 = 1;
    /// Byte 5 is `u.gso.pad`; bytes 6..8, `u.gso.features`, stay 0.
    pub const GSO_FEATURES: usize = 6;
}

/// `NETRXF_*`, the flags of a receive response (note the order differs from tx).
pub mod rxflags {
    /// The packet's checksum has been validated.
    pub const DATA_VALIDATED: u16 = 1 << 0;
    /// The protocol checksum field is blank.
    pub const CSUM_BLANK: u16 = 1 << 1;
    /// The packet continues in the next response (scatter-gather; not negotiated).
    pub const MORE_DATA: u16 = 1 << 2;
    /// Extra info responses follow (GSO etc.; not negotiated).
    pub const EXTRA_INFO: u16 = 1 << 3;
    /// A GSO prefix (deprecated; not negotiated).
    pub const GSO_PREFIX: u16 = 1 << 4;
    /// What a response may carry; any other bit breaks the ring.
    pub const ALLOWED: u16 = DATA_VALIDATED | CSUM_BLANK;
}

/// `NETIF_RSP_*`, response statuses (an rx status above zero is a length).
pub mod status {
    pub const DROPPED: i16 = -2;
    pub const ERROR: i16 = -1;
    pub const OKAY: i16 = 0;
    /// The answer to a tx extra-info entry: netback writes it right after
    /// the response of the request that carried the extra info, with a
    /// stale id.
    pub const NULL: i16 = 1;
}

/// Which ring of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ring {
    Tx,
    Rx,
}

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ring::Tx => "tx",
            Ring::Rx => "rx",
        })
    }
}

/// Why a ring was given up. Once set it never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenReason {
    /// The memory given for the ring is smaller than a page (a caller bug:
    /// the ring never touches it).
    PageTooSmall { ring: Ring, size: usize },
    /// `rsp_prod` claims more new responses than there are published,
    /// unanswered requests (it jumped ahead or moved backwards).
    IndexJump {
        ring: Ring,
        rsp_prod: u32,
        rsp_cons: u32,
        /// Published requests without a response when it was read.
        outstanding: u32,
    },
    /// A response id at or beyond the ring size.
    IdOutOfRange { ring: Ring, id: u16 },
    /// A response for an id that has no published request awaiting one:
    /// never handed out, not yet published, or already answered (a duplicate).
    IdNotInFlight { ring: Ring, id: u16 },
    /// A transmit response whose status is not OKAY, ERROR, DROPPED (or
    /// NULL, which is judged by where it stands).
    TxStatus { id: u16, status: i16 },
    /// A NULL transmit response where none is due: not directly after the
    /// response of a request that carried extra info. `id` is whatever its
    /// id field held.
    UnexpectedNull { id: u16 },
    /// Where the NULL answering the extra info of request `after` was due,
    /// a response with another status (for `id`).
    MissingNull { after: u16, id: u16, status: i16 },
    /// A receive response with a negative status other than ERROR or DROPPED.
    RxStatus { id: u16, status: i16 },
    /// A receive response with flags outside [`rxflags::ALLOWED`].
    RxFlags { id: u16, flags: u16 },
    /// A receive response whose `offset + length` passes the page.
    RxBeyondPage { id: u16, offset: u16, len: u16 },
}

impl BrokenReason {
    /// The ring the violation was seen on.
    pub fn ring(&self) -> Ring {
        match *self {
            BrokenReason::PageTooSmall { ring, .. }
            | BrokenReason::IndexJump { ring, .. }
            | BrokenReason::IdOutOfRange { ring, .. }
            | BrokenReason::IdNotInFlight { ring, .. } => ring,
            BrokenReason::TxStatus { .. }
            | BrokenReason::UnexpectedNull { .. }
            | BrokenReason::MissingNull { .. } => Ring::Tx,
            BrokenReason::RxStatus { .. }
            | BrokenReason::RxFlags { .. }
            | BrokenReason::RxBeyondPage { .. } => Ring::Rx,
        }
    }
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "netfront {} ring: ", self.ring())?;
        match *self {
            BrokenReason::PageTooSmall { size, .. } => {
                write!(f, "shared memory of {size} bytes is smaller than a page")
            }
            BrokenReason::IndexJump {
                rsp_prod,
                rsp_cons,
                outstanding,
                ..
            } => write!(
                f,
                "response index {rsp_prod} is {} past ours ({rsp_cons}) \
                 with {outstanding} requests outstanding",
                rsp_prod.wrapping_sub(rsp_cons)
            ),
            BrokenReason::IdOutOfRange { id, .. } => {
                write!(f, "response id {id} beyond the ring size {SLOTS}")
            }
            BrokenReason::IdNotInFlight { id, .. } => {
                write!(f, "response for id {id}, which has no request in flight")
            }
            BrokenReason::TxStatus { id, status } => {
                write!(f, "response for id {id} with unknown status {status}")
            }
            BrokenReason::UnexpectedNull { id } => write!(
                f,
                "NULL response (id field {id}) where no extra info awaits one"
            ),
            BrokenReason::MissingNull { after, id, status } => write!(
                f,
                "response for id {id} with status {status} where the NULL \
                 answering the extra info of id {after} was due"
            ),
            BrokenReason::RxStatus { id, status } => {
                write!(f, "response for id {id} with unknown error status {status}")
            }
            BrokenReason::RxFlags { id, flags } => write!(
                f,
                "response for id {id} with flags {flags:#x} (not negotiated: {:#x})",
                flags & !rxflags::ALLOWED
            ),
            BrokenReason::RxBeyondPage { id, offset, len } => write!(
                f,
                "response for id {id}: {len} bytes at offset {offset} pass the page"
            ),
        }
    }
}

/// Why a request was not queued. Nothing was written and no id was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// Not enough free ids or free ring entries for the request(s): they
    /// are held by requests awaiting responses. Poll and try again.
    Full,
    /// `offset + len` passes the 4096-byte buffer page (netback would
    /// declare this front end malicious).
    BeyondPage { offset: u16, len: u16 },
    /// Flags outside [`txflags::ALLOWED`] (`more_data` and `extra_info` are
    /// the ring's to set).
    Flags(u16),
    /// A packet of no slots, or of more than [`MAX_PACKET_SLOTS`].
    SlotCount(usize),
    /// A slot of zero bytes (slot `index` of the packet).
    EmptySlot { index: usize },
    /// The slots add up to more than the 16-bit `size` of the first request.
    TooLong { total: usize },
    /// A GSO segment size of 0 (netback disconnects a front end sending it).
    GsoSizeZero,
    /// `ids` has room for `ids` ids, not one per slot (`slots`): a caller bug.
    IdsLength { slots: usize, ids: usize },
    /// The ring is broken.
    Broken(BrokenReason),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PushError::Full => f.write_str(
                "netfront ring full: not enough free ids or entries until responses come back",
            ),
            PushError::BeyondPage { offset, len } => write!(
                f,
                "netfront request of {len} bytes at offset {offset} passes the page"
            ),
            PushError::Flags(flags) => write!(f, "netfront request flags {flags:#x} not allowed"),
            PushError::SlotCount(n) => write!(
                f,
                "netfront packet of {n} slots (1 to {MAX_PACKET_SLOTS} allowed)"
            ),
            PushError::EmptySlot { index } => {
                write!(f, "netfront packet slot {index} is empty")
            }
            PushError::TooLong { total } => {
                write!(f, "netfront packet of {total} bytes exceeds 65535")
            }
            PushError::GsoSizeZero => f.write_str("netfront GSO segment size of 0"),
            PushError::IdsLength { slots, ids } => write!(
                f,
                "netfront packet of {slots} slots given room for {ids} ids"
            ),
            PushError::Broken(why) => write!(f, "{why}"),
        }
    }
}

impl From<BrokenReason> for PushError {
    fn from(why: BrokenReason) -> Self {
        PushError::Broken(why)
    }
}

/// The outcome of a transmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// `NETIF_RSP_OKAY`: sent.
    Okay,
    /// `NETIF_RSP_ERROR`: the backend refused the request.
    Error,
    /// `NETIF_RSP_DROPPED`: the backend dropped the packet.
    Dropped,
}

impl TxStatus {
    pub fn is_ok(self) -> bool {
        self == TxStatus::Okay
    }
}

/// A received packet: `len` bytes at `offset` in the buffer page of its id
/// (`offset + len <= 4096` is checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxPacket {
    pub offset: u16,
    pub len: u16,
    /// `NETRXF_data_validated`: the checksum was verified by the sender side.
    pub data_validated: bool,
    /// `NETRXF_csum_blank`: the checksum field was left blank (offload).
    pub csum_blank: bool,
}

/// A receive response carrying an error instead of a packet; the buffer
/// came back unused (post it again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// `NETIF_RSP_ERROR`.
    Error,
    /// `NETIF_RSP_DROPPED`.
    Dropped,
}

/// A set of ids below [`SLOTS`].
#[derive(Clone, Copy)]
struct IdSet([u64; SLOTS / 64]);

impl IdSet {
    fn contains(&self, id: u16) -> bool {
        let i = usize::from(id);
        i < SLOTS && self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn insert(&mut self, id: u16) {
        let i = usize::from(id) % SLOTS;
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, id: u16) {
        let i = usize::from(id) % SLOTS;
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The direction-independent front end of one ring (`struct *_front_ring`
/// plus the id bookkeeping).
struct Front<M> {
    mem: M,
    ring: Ring,
    /// Bytes between entries.
    stride: usize,
    /// Requests written (`req_prod_pvt`).
    req_prod_pvt: u32,
    /// Requests published: our copy of the shared `req_prod`.
    req_published: u32,
    /// Responses consumed (`rsp_cons`).
    rsp_cons: u32,
    /// The id of the request written into each slot (private copy), or
    /// [`NO_ID`] for an extra-info entry.
    slot_id: [u16; SLOTS],
    /// Free ids; the top is `free[free_len - 1]`.
    free: [u16; SLOTS],
    free_len: usize,
    /// Ids of published requests awaiting their response.
    awaited: IdSet,
    /// Ids whose request was followed by an extra-info entry: their
    /// response must be followed by a NULL one.
    with_extra: IdSet,
    /// The id whose response was delivered and whose NULL has not been
    /// consumed yet; kept across passes and calls, as `rsp_prod` may stop
    /// between the two.
    null_due: Option<u16>,
    /// Where a response's status lies, on a ring whose extra-info entries
    /// are answered by `NETIF_RSP_NULL` (tx; on rx a status of 1 is a length).
    null_status_at: Option<usize>,
    /// Ask to be notified only once half of what is outstanding is answered
    /// (tx: completions only free buffers, so one event per response would
    /// be mostly wasted; Linux netfront does the same). Rx wants every one.
    half_event: bool,
    broken: Option<BrokenReason>,
}

/// The `slot_id` of a ring entry that holds extra info, not a request: no
/// id, so nothing to await when it is published.
const NO_ID: u16 = u16::MAX;
const _: () = assert!(NO_ID as usize >= SLOTS);

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl<M: SharedMem> Front<M> {
    /// `SHARED_RING_INIT` + `FRONT_RING_INIT`, after zeroing the page (so no
    /// stale data is shown to the backend).
    fn new(mem: M, ring: Ring, stride: usize) -> Self {
        let mut free = [0u16; SLOTS];
        for (i, f) in free.iter_mut().enumerate() {
            // Id 0 on top: handed out first.
            *f = (SLOTS - 1 - i) as u16;
        }
        let size = mem.size();
        let broken = (size < PAGE_SIZE).then_some(BrokenReason::PageTooSmall { ring, size });
        if broken.is_none() {
            let zero = [0u8; 64];
            for at in (0..PAGE_SIZE).step_by(zero.len()) {
                mem.copy_in(at, &zero);
            }
            mem.store_u32_release(layout::REQ_EVENT, 1);
            mem.store_u32_release(layout::RSP_EVENT, 1);
        }
        Front {
            mem,
            ring,
            stride,
            req_prod_pvt: 0,
            req_published: 0,
            rsp_cons: 0,
            slot_id: [0; SLOTS],
            free,
            free_len: SLOTS,
            awaited: IdSet([0; SLOTS / 64]),
            with_extra: IdSet([0; SLOTS / 64]),
            null_due: None,
            null_status_at: None,
            half_event: false,
            broken,
        }
    }

    fn entry(&self, idx: u32) -> usize {
        layout::ENTRIES + (idx as usize & (SLOTS - 1)) * self.stride
    }

    fn fail(&mut self, why: BrokenReason) -> BrokenReason {
        self.broken = Some(why);
        why
    }

    fn in_flight(&self) -> usize {
        SLOTS - self.free_len
    }

    /// Checks that `entries` ring entries and `ids` ids are free, so that
    /// what follows cannot fail halfway. Entries are `RING_FULL` counted
    /// from our private indices; they run out before ids when extra-info
    /// entries (which take no id) are in the ring.
    fn reserve(&self, entries: usize, ids: usize) -> Result<(), PushError> {
        if let Some(why) = self.broken {
            return Err(PushError::Broken(why));
        }
        let used = self.req_prod_pvt.wrapping_sub(self.rsp_cons) as usize;
        if used + entries > SLOTS || ids > self.free_len {
            return Err(PushError::Full);
        }
        Ok(())
    }

    /// Takes a free id; only after [`Self::reserve`] said there is one.
    fn take_id(&mut self) -> u16 {
        self.free_len -= 1;
        self.free[self.free_len]
    }

    /// Writes `entry` into the next slot for request `id` (or [`NO_ID`]);
    /// not yet visible to the backend. Only after [`Self::reserve`].
    fn write(&mut self, id: u16, entry: &[u8]) {
        let at = self.entry(self.req_prod_pvt);
        self.mem.copy_in(at, entry);
        self.slot_id[self.req_prod_pvt as usize & (SLOTS - 1)] = id;
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
    }

    /// Takes a free id and writes the request `build(id)` into the next slot
    /// (not yet visible to the backend).
    fn push<const N: usize>(
        &mut self,
        build: impl FnOnce(u16) -> [u8; N],
    ) -> Result<u16, PushError> {
        self.reserve(1, 1)?;
        let id = self.take_id();
        self.write(id, &build(id));
        Ok(id)
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`, with the old `req_prod` taken
    /// from our private copy.
    fn publish(&mut self) -> bool {
        let (old, new) = (self.req_published, self.req_prod_pvt);
        if self.broken.is_some() || old == new {
            return false;
        }
        let mut idx = old;
        while idx != new {
            let id = self.slot_id[idx as usize & (SLOTS - 1)];
            if id != NO_ID {
                self.awaited.insert(id);
            }
            idx = idx.wrapping_add(1);
        }
        self.req_published = new;
        // Release: the backend sees the requests before the index.
        self.mem.store_u32_release(layout::REQ_PROD, new);
        // Full barrier: the index is visible before we look at req_event.
        fence(Ordering::SeqCst);
        let req_event = self.mem.load_u32_acquire(layout::REQ_EVENT);
        new.wrapping_sub(req_event) < new.wrapping_sub(old)
    }

    /// Consumes every response, validating indices, ids and the place of
    /// NULL responses here and the rest with `decode`; hands each good one
    /// to `deliver` and frees its id (a NULL is consumed, not delivered).
    /// Returns how many were delivered. Ends with
    /// `RING_FINAL_CHECK_FOR_RESPONSES`.
    fn poll<const N: usize, T>(
        &mut self,
        decode: impl Fn(u16, &[u8; N]) -> Result<T, BrokenReason>,
        deliver: &mut impl FnMut(u16, T),
    ) -> Result<usize, BrokenReason> {
        if let Some(why) = self.broken {
            return Err(why);
        }
        let mut consumed = 0;
        // Each pass reads rsp_prod once; a pass ends by re-arming rsp_event
        // and reading it again. Every pass that goes on consumes at least one
        // of the at most SLOTS outstanding ring entries, so this ends.
        let mut rsp_prod = self.mem.load_u32_acquire(layout::RSP_PROD);
        loop {
            let ready = rsp_prod.wrapping_sub(self.rsp_cons);
            let outstanding = self.req_published.wrapping_sub(self.rsp_cons);
            if ready > outstanding {
                return Err(self.fail(BrokenReason::IndexJump {
                    ring: self.ring,
                    rsp_prod,
                    rsp_cons: self.rsp_cons,
                    outstanding,
                }));
            }
            while self.rsp_cons != rsp_prod {
                let mut rsp = [0u8; N];
                self.mem.copy_out(self.entry(self.rsp_cons), &mut rsp);
                let id = u16_at(&rsp, 0);
                let ring = self.ring;
                // Judged before the id: a NULL's id field is stale by design.
                if let Some(at) = self.null_status_at {
                    let status = u16_at(&rsp, at) as i16;
                    match (self.null_due, status == status::NULL) {
                        (Some(_), true) => {
                            self.null_due = None;
                            self.rsp_cons = self.rsp_cons.wrapping_add(1);
                            continue;
                        }
                        (Some(after), false) => {
                            return Err(self.fail(BrokenReason::MissingNull { after, id, status }));
                        }
                        (None, true) => return Err(self.fail(BrokenReason::UnexpectedNull { id })),
                        (None, false) => {}
                    }
                }
                if usize::from(id) >= SLOTS {
                    return Err(self.fail(BrokenReason::IdOutOfRange { ring, id }));
                }
                if !self.awaited.contains(id) {
                    return Err(self.fail(BrokenReason::IdNotInFlight { ring, id }));
                }
                let value = decode(id, &rsp).map_err(|why| self.fail(why))?;
                self.awaited.remove(id);
                if self.with_extra.contains(id) {
                    self.with_extra.remove(id);
                    self.null_due = Some(id);
                }
                self.free[self.free_len] = id;
                self.free_len += 1;
                self.rsp_cons = self.rsp_cons.wrapping_add(1);
                consumed += 1;
                deliver(id, value);
            }
            let ahead = if self.half_event {
                // Outstanding (published, unanswered) entries / 2, at least 1.
                (self.req_published.wrapping_sub(self.rsp_cons) / 2).max(1)
            } else {
                1
            };
            self.mem
                .store_u32_release(layout::RSP_EVENT, self.rsp_cons.wrapping_add(ahead));
            // Full barrier: rsp_event is visible before we look again.
            fence(Ordering::SeqCst);
            rsp_prod = self.mem.load_u32_acquire(layout::RSP_PROD);
            if rsp_prod == self.rsp_cons {
                return Ok(consumed);
            }
        }
    }

    /// Starts every index at `idx` (`FRONT_RING_ATTACH`), to test wrapping.
    #[cfg(test)]
    fn start_at(&mut self, idx: u32) {
        self.req_prod_pvt = idx;
        self.req_published = idx;
        self.rsp_cons = idx;
        self.mem.store_u32_release(layout::REQ_PROD, idx);
        self.mem.store_u32_release(layout::RSP_PROD, idx);
        self.mem
            .store_u32_release(layout::REQ_EVENT, idx.wrapping_add(1));
        self.mem
            .store_u32_release(layout::RSP_EVENT, idx.wrapping_add(1));
    }
}

/// The transmit ring: packets out, `(id, status)` back.
pub struct TxRing<M> {
    front: Front<M>,
}

impl<M: SharedMem> TxRing<M> {
    /// Initialises the shared page as a front end does (the page is zeroed,
    /// then `SHARED_RING_INIT` + `FRONT_RING_INIT`). A region smaller than a
    /// page gives a ring that is broken from the start
    /// ([`BrokenReason::PageTooSmall`]) and never touched.
    pub fn new(page: M) -> Self {
        TxRing {
            front: Front {
                half_event: true,
                // netif_tx_response: u16 id, then i16 status.
                null_status_at: Some(2),
                ..Front::new(page, Ring::Tx, layout::TX_ENTRY)
            },
        }
    }

    /// Entries in the ring, which is also the number of ids (`0..size`).
    pub fn size(&self) -> usize {
        SLOTS
    }

    /// Queues a request to send `len` (> 0) bytes at `offset` of the page
    /// granted as `gref`; returns its id. The backend sees it after
    /// [`Self::publish`]; the page must stay granted and unchanged until the
    /// id comes back from [`Self::poll`].
    pub fn push(&mut self, gref: u32, offset: u16, len: u16, flags: u16) -> Result<u16, PushError> {
        let mut id = [0];
        self.push_packet(&[TxSlot { gref, offset, len }], flags, None, &mut id)?;
        Ok(id[0])
    }

    /// Queues one packet made of `slots` (in order), with `flags` (checksum
    /// offload, [`txflags::ALLOWED`]) and, if `gso_size` is given, a TCPv4
    /// GSO extra-info entry asking the backend to cut it into segments of
    /// that many payload bytes. `ids[i]` receives the id of `slots[i]`;
    /// each id comes back from [`Self::poll`] on its own, in any order, and
    /// its page must stay granted and unchanged until then.
    ///
    /// Scatter-gather and GSO must have been negotiated (`feature-sg`,
    /// `feature-gso-tcpv4`); a backend without them answers otherwise and
    /// the ring breaks. Everything is checked before anything is written:
    /// on an error nothing was written and no id was taken.
    pub fn push_packet(
        &mut self,
        slots: &[TxSlot],
        flags: u16,
        gso_size: Option<u16>,
        ids: &mut [u16],
    ) -> Result<(), PushError> {
        if let Some(why) = self.front.broken {
            return Err(PushError::Broken(why));
        }
        if slots.is_empty() || slots.len() > MAX_PACKET_SLOTS {
            return Err(PushError::SlotCount(slots.len()));
        }
        if ids.len() != slots.len() {
            return Err(PushError::IdsLength {
                slots: slots.len(),
                ids: ids.len(),
            });
        }
        let mut total = 0usize;
        for (index, slot) in slots.iter().enumerate() {
            // An empty slot carries nothing, and netbacks without the
            // XSA-448 fix crash on a zero-length request within a packet.
            if slot.len == 0 {
                return Err(PushError::EmptySlot { index });
            }
            if u32::from(slot.offset) + u32::from(slot.len) > PAGE_SIZE as u32 {
                return Err(PushError::BeyondPage {
                    offset: slot.offset,
                    len: slot.len,
                });
            }
            total += usize::from(slot.len);
        }
        let Ok(total) = u16::try_from(total) else {
            return Err(PushError::TooLong { total });
        };
        if flags & !txflags::ALLOWED != 0 {
            return Err(PushError::Flags(flags));
        }
        if gso_size == Some(0) {
            return Err(PushError::GsoSizeZero);
        }
        let extra_entries = usize::from(gso_size.is_some());
        self.front
            .reserve(slots.len() + extra_entries, slots.len())?;
        // From here nothing fails, and the whole packet is written before a
        // publish can show any of it: netback treats a packet cut short by
        // req_prod as fatal.
        let last = slots.len() - 1;
        for (i, (slot, id_out)) in slots.iter().zip(ids.iter_mut()).enumerate() {
            let more = if i < last { txflags::MORE_DATA } else { 0 };
            // The first request carries the packet's flags and total size;
            // netback subtracts the others' sizes to find its own.
            let (req_flags, size) = if i == 0 {
                let extra = if gso_size.is_some() {
                    txflags::EXTRA_INFO
                } else {
                    0
                };
                (flags | more | extra, total)
            } else {
                (more, slot.len)
            };
            let id = self.front.take_id();
            self.front
                .write(id, &tx_request(slot.gref, slot.offset, req_flags, id, size));
            *id_out = id;
            if let (0, Some(mss)) = (i, gso_size) {
                self.front.with_extra.insert(id);
                self.front.write(NO_ID, &gso_extra(mss));
            }
        }
        Ok(())
    }

    /// Makes the pushed requests visible; `true` when the backend asked to
    /// be notified (send an event). A broken ring publishes nothing.
    pub fn publish(&mut self) -> bool {
        self.front.publish()
    }

    /// Consumes the backend's responses, handing each `(id, status)` to `out`
    /// and freeing the id (free once `out` returns), then re-arms the
    /// notification (`rsp_event`) and checks once more. NULL responses to
    /// extra-info entries are consumed, not handed over. Returns how many
    /// were handed over. Responses validated before a violation are
    /// delivered; the violation breaks the ring.
    pub fn poll(&mut self, out: &mut impl FnMut(u16, TxStatus)) -> Result<usize, BrokenReason> {
        self.front.poll(
            |id, rsp: &[u8; 4]| match u16_at(rsp, 2) as i16 {
                status::OKAY => Ok(TxStatus::Okay),
                status::ERROR => Ok(TxStatus::Error),
                status::DROPPED => Ok(TxStatus::Dropped),
                status => Err(BrokenReason::TxStatus { id, status }),
            },
            out,
        )
    }

    /// Ids pushed whose response has not been delivered yet (one per data
    /// slot; extra-info entries take no id).
    pub fn in_flight(&self) -> usize {
        self.front.in_flight()
    }

    /// Why the ring was given up, if it was.
    pub fn broken(&self) -> Option<BrokenReason> {
        self.front.broken
    }
}

/// A `netif_tx_request`.
fn tx_request(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> [u8; layout::TX_ENTRY] {
    let mut req = [0u8; layout::TX_ENTRY];
    req[0..4].copy_from_slice(&gref.to_le_bytes());
    req[4..6].copy_from_slice(&offset.to_le_bytes());
    req[6..8].copy_from_slice(&flags.to_le_bytes());
    req[8..10].copy_from_slice(&id.to_le_bytes());
    req[10..12].copy_from_slice(&size.to_le_bytes());
    req
}

/// A `netif_extra_info` of type GSO (TCPv4, segments of `mss` bytes, no
/// further extras), padded to a whole tx entry with zeros.
fn gso_extra(mss: u16) -> [u8; layout::TX_ENTRY] {
    let mut entry = [0u8; layout::TX_ENTRY];
    entry[0] = extra::TYPE_GSO;
    entry[extra::GSO_SIZE..extra::GSO_SIZE + 2].copy_from_slice(&mss.to_le_bytes());
    entry[extra::GSO_TYPE] = extra::GSO_TYPE_TCPV4;
    entry
}

/// The receive ring: empty buffers out, packets (or errors) back.
pub struct RxRing<M> {
    front: Front<M>,
}

impl<M: SharedMem> RxRing<M> {
    /// Initialises the shared page as a front end does; see [`TxRing::new`].
    pub fn new(page: M) -> Self {
        RxRing {
            front: Front::new(page, Ring::Rx, layout::RX_ENTRY),
        }
    }

    /// Entries in the ring, which is also the number of ids (`0..size`).
    pub fn size(&self) -> usize {
        SLOTS
    }

    /// Queues the page granted (writable) as `gref` for a packet; returns
    /// its id. The backend sees it after [`Self::publish`].
    pub fn post(&mut self, gref: u32) -> Result<u16, PushError> {
        self.front.push(|id| {
            let mut req = [0u8; layout::RX_ENTRY];
            req[0..2].copy_from_slice(&id.to_le_bytes());
            req[4..8].copy_from_slice(&gref.to_le_bytes());
            req
        })
    }

    /// Makes the posted buffers visible; `true` when the backend asked to be
    /// notified. A broken ring publishes nothing.
    pub fn publish(&mut self) -> bool {
        self.front.publish()
    }

    /// Consumes the backend's responses, handing each id with its packet or
    /// error to `out` and freeing the id (the caller posts the buffer again),
    /// then re-arms the notification and checks once more. Returns how many
    /// were consumed. The id is free once `out` returns: the next
    /// [`Self::post`] may hand it out again, so map it to its buffer inside
    /// `out`, not after `poll`.
    pub fn poll(
        &mut self,
        out: &mut impl FnMut(u16, Result<RxPacket, RxError>),
    ) -> Result<usize, BrokenReason> {
        self.front.poll(Self::decode, out)
    }

    fn decode(id: u16, rsp: &[u8; 8]) -> Result<Result<RxPacket, RxError>, BrokenReason> {
        let offset = u16_at(rsp, 2);
        let flags = u16_at(rsp, 4);
        let status = u16_at(rsp, 6) as i16;
        if flags & !rxflags::ALLOWED != 0 {
            return Err(BrokenReason::RxFlags { id, flags });
        }
        match status {
            status::ERROR => Ok(Err(RxError::Error)),
            status::DROPPED => Ok(Err(RxError::Dropped)),
            s if s < 0 => Err(BrokenReason::RxStatus { id, status }),
            s => {
                let len = s as u16;
                if u32::from(offset) + u32::from(len) > PAGE_SIZE as u32 {
                    return Err(BrokenReason::RxBeyondPage { id, offset, len });
                }
                Ok(Ok(RxPacket {
                    offset,
                    len,
                    data_validated: flags & rxflags::DATA_VALIDATED != 0,
                    csum_blank: flags & rxflags::CSUM_BLANK != 0,
                }))
            }
        }
    }

    /// Buffers posted whose response has not been delivered yet.
    pub fn in_flight(&self) -> usize {
        self.front.in_flight()
    }

    /// Why the ring was given up, if it was.
    pub fn broken(&self) -> Option<BrokenReason> {
        self.front.broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use rpc::HeapMem;
    use std::boxed::Box;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::vec;
    use std::vec::Vec;

    /// A transmit request as netback reads it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct TxReq {
        gref: u32,
        offset: u16,
        flags: u16,
        id: u16,
        size: u16,
    }

    fn tx_req(b: &[u8]) -> TxReq {
        TxReq {
            gref: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            offset: u16_at(b, 4),
            flags: u16_at(b, 6),
            id: u16_at(b, 8),
            size: u16_at(b, 10),
        }
    }

    /// A receive request as netback reads it: (id, gref).
    fn rx_req(b: &[u8]) -> (u16, u32) {
        (u16_at(b, 0), u32::from_le_bytes([b[4], b[5], b[6], b[7]]))
    }

    fn tx_rsp(id: u16, status: i16) -> Vec<u8> {
        [id.to_le_bytes(), status.to_le_bytes()].concat()
    }

    fn rx_rsp(id: u16, offset: u16, flags: u16, status: i16) -> Vec<u8> {
        [
            id.to_le_bytes(),
            offset.to_le_bytes(),
            flags.to_le_bytes(),
            status.to_le_bytes(),
        ]
        .concat()
    }

    /// The back end of one ring, as netback drives it (`BACK_RING_*`).
    struct Backend<'a> {
        mem: &'a HeapMem,
        stride: usize,
        req_cons: u32,
        rsp_prod_pvt: u32,
    }

    impl<'a> Backend<'a> {
        fn tx(mem: &'a HeapMem) -> Self {
            Self::new(mem, layout::TX_ENTRY)
        }
        fn rx(mem: &'a HeapMem) -> Self {
            Self::new(mem, layout::RX_ENTRY)
        }
        fn new(mem: &'a HeapMem, stride: usize) -> Self {
            // Attaches where the front end started: rsp_prod is written only
            // by the backend, so it still holds the initial index.
            let start = mem.load_u32_acquire(layout::RSP_PROD);
            Backend {
                mem,
                stride,
                req_cons: start,
                rsp_prod_pvt: start,
            }
        }
        fn at(&self, idx: u32) -> usize {
            layout::ENTRIES + (idx as usize % SLOTS) * self.stride
        }
        fn get(&self, off: usize) -> u32 {
            self.mem.load_u32_acquire(off)
        }
        fn set(&self, off: usize, v: u32) {
            self.mem.store_u32_release(off, v)
        }
        /// Takes up to `max` published requests.
        fn take(&mut self, max: usize) -> Vec<Vec<u8>> {
            let prod = self.get(layout::REQ_PROD);
            let mut out = Vec::new();
            while self.req_cons != prod && out.len() < max {
                let mut b = vec![0u8; self.stride];
                self.mem.copy_out(self.at(self.req_cons), &mut b);
                out.push(b);
                self.req_cons = self.req_cons.wrapping_add(1);
            }
            out
        }
        fn take_all(&mut self) -> Vec<Vec<u8>> {
            self.take(usize::MAX)
        }
        /// `RING_FINAL_CHECK_FOR_REQUESTS`: asks to be woken by the next
        /// request; true if there is one already.
        fn final_check(&mut self) -> bool {
            if self.get(layout::REQ_PROD) != self.req_cons {
                return true;
            }
            self.set(layout::REQ_EVENT, self.req_cons.wrapping_add(1));
            fence(Ordering::SeqCst);
            self.get(layout::REQ_PROD) != self.req_cons
        }
        /// Writes a response into the next slot (not yet visible).
        fn respond(&mut self, rsp: &[u8]) {
            self.mem.copy_in(self.at(self.rsp_prod_pvt), rsp);
            self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        }
        /// Answers an extra-info entry as netback's `make_tx_response` does:
        /// only the status is written; the id field keeps whatever the slot
        /// held (the request that was there).
        fn respond_null(&mut self) {
            self.mem
                .copy_in(self.at(self.rsp_prod_pvt) + 2, &status::NULL.to_le_bytes());
            self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        }
        /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`.
        fn push(&mut self) -> bool {
            let old = self.get(layout::RSP_PROD);
            let new = self.rsp_prod_pvt;
            self.set(layout::RSP_PROD, new);
            fence(Ordering::SeqCst);
            new.wrapping_sub(self.get(layout::RSP_EVENT)) < new.wrapping_sub(old)
        }
    }

    fn page() -> HeapMem {
        HeapMem::new(PAGE_SIZE)
    }

    fn tx_poll(tx: &mut TxRing<&HeapMem>) -> Result<Vec<(u16, TxStatus)>, BrokenReason> {
        let mut got = Vec::new();
        tx.poll(&mut |id, s| got.push((id, s)))?;
        Ok(got)
    }

    type RxResult = Result<RxPacket, RxError>;

    fn rx_poll<M: SharedMem>(rx: &mut RxRing<M>) -> Result<Vec<(u16, RxResult)>, BrokenReason> {
        let mut got = Vec::new();
        rx.poll(&mut |id, r| got.push((id, r)))?;
        Ok(got)
    }

    fn pkt(offset: u16, len: u16) -> RxPacket {
        RxPacket {
            offset,
            len,
            data_validated: false,
            csum_blank: false,
        }
    }

    #[test]
    fn layout_matches_ring_h_and_netif_h() {
        // struct netif_tx_sring: 4 indices, pvt[4], __pad[44], then entries.
        assert_eq!(layout::ENTRIES, 4 * 4 + 4 + 44);
        // union { netif_tx_request (4+2+2+2+2); netif_tx_response (2+2) }.
        assert_eq!(layout::TX_ENTRY, 12);
        // union { netif_rx_request (2+2+4); netif_rx_response (2+2+2+2) }.
        assert_eq!(layout::RX_ENTRY, 8);
        // (4096 - 64) / 12 = 336 -> 256; (4096 - 64) / 8 = 504 -> 256.
        assert_eq!((TX_RING_SIZE, RX_RING_SIZE), (256, 256));
        assert_eq!(entries_in_page(4), 512);
        assert_eq!(
            (
                txflags::CSUM_BLANK,
                txflags::DATA_VALIDATED,
                txflags::MORE_DATA
            ),
            (1, 2, 4)
        );
        assert_eq!(txflags::EXTRA_INFO, 8);
        assert_eq!(
            (
                rxflags::DATA_VALIDATED,
                rxflags::CSUM_BLANK,
                rxflags::MORE_DATA
            ),
            (1, 2, 4)
        );
        assert_eq!((rxflags::EXTRA_INFO, rxflags::GSO_PREFIX), (8, 16));
        assert_eq!(
            (status::DROPPED, status::ERROR, status::OKAY, status::NULL),
            (-2, -1, 0, 1)
        );
    }

    #[test]
    fn new_zeroes_the_page_and_initialises_the_header() {
        let mem = page();
        mem.copy_in(0, &[0xa5; PAGE_SIZE]);
        let tx = TxRing::new(&mem);
        assert_eq!(tx.size(), 256);
        assert_eq!(tx.in_flight(), 0);
        assert_eq!(tx.broken(), None);
        let mut all = vec![0u8; PAGE_SIZE];
        mem.copy_out(0, &mut all);
        let word = |o: usize| u32::from_le_bytes(all[o..o + 4].try_into().unwrap());
        assert_eq!(word(layout::REQ_PROD), 0);
        assert_eq!(word(layout::REQ_EVENT), 1);
        assert_eq!(word(layout::RSP_PROD), 0);
        assert_eq!(word(layout::RSP_EVENT), 1);
        assert!(all[layout::PVT..].iter().all(|&b| b == 0));
    }

    #[test]
    fn too_small_memory_is_broken_from_the_start_and_untouched() {
        let mem = HeapMem::new(PAGE_SIZE - 4);
        mem.copy_in(0, &[7; 8]);
        let mut tx = TxRing::new(&mem);
        let why = BrokenReason::PageTooSmall {
            ring: Ring::Tx,
            size: PAGE_SIZE - 4,
        };
        assert_eq!(tx.broken(), Some(why));
        assert_eq!(tx.push(1, 0, 60, 0), Err(PushError::Broken(why)));
        assert!(!tx.publish());
        assert_eq!(tx.poll(&mut |_, _| panic!()), Err(why));
        let mut rx = RxRing::new(&mem);
        assert!(rx.post(1).is_err());
        let mut b = [0u8; 8];
        mem.copy_out(0, &mut b);
        assert_eq!(b, [7; 8]);
    }

    #[test]
    fn tx_round_trip() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let mut be = Backend::tx(&mem);
        let a = tx.push(100, 0, 60, 0).unwrap();
        let b = tx
            .push(
                101,
                2048,
                1514,
                txflags::CSUM_BLANK | txflags::DATA_VALIDATED,
            )
            .unwrap();
        let c = tx.push(102, 10, 42, 0).unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(tx.in_flight(), 3);
        assert!(be.take_all().is_empty(), "nothing visible before publish");
        assert!(tx.publish());
        let reqs: Vec<TxReq> = be.take_all().iter().map(|r| tx_req(r)).collect();
        assert_eq!(
            reqs,
            [
                TxReq {
                    gref: 100,
                    offset: 0,
                    flags: 0,
                    id: a,
                    size: 60
                },
                TxReq {
                    gref: 101,
                    offset: 2048,
                    flags: 3,
                    id: b,
                    size: 1514
                },
                TxReq {
                    gref: 102,
                    offset: 10,
                    flags: 0,
                    id: c,
                    size: 42
                },
            ]
        );
        // Responses in any order, with every status netback uses.
        be.respond(&tx_rsp(b, status::OKAY));
        be.respond(&tx_rsp(a, status::DROPPED));
        be.respond(&tx_rsp(c, status::ERROR));
        assert!(be.push(), "rsp_event starts at 1");
        assert_eq!(
            tx_poll(&mut tx).unwrap(),
            [
                (b, TxStatus::Okay),
                (a, TxStatus::Dropped),
                (c, TxStatus::Error)
            ]
        );
        assert_eq!(tx.in_flight(), 0);
        assert_eq!(mem.load_u32_acquire(layout::RSP_EVENT), 4);
        assert_eq!(tx_poll(&mut tx).unwrap(), []);
        assert!(TxStatus::Okay.is_ok() && !TxStatus::Dropped.is_ok());
    }

    #[test]
    fn rx_round_trip() {
        let mem = page();
        let mut rx = RxRing::new(&mem);
        let mut be = Backend::rx(&mem);
        let ids: Vec<u16> = (0..4).map(|g| rx.post(500 + g).unwrap()).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        assert!(rx.publish());
        let reqs: Vec<(u16, u32)> = be.take_all().iter().map(|r| rx_req(r)).collect();
        assert_eq!(reqs, [(0, 500), (1, 501), (2, 502), (3, 503)]);
        be.respond(&rx_rsp(1, 0, rxflags::DATA_VALIDATED, 1514));
        be.respond(&rx_rsp(0, 16, rxflags::CSUM_BLANK, 60));
        be.respond(&rx_rsp(3, 0, 0, status::ERROR));
        be.respond(&rx_rsp(2, 0, 0, status::DROPPED));
        assert!(be.push());
        let got = rx_poll(&mut rx).unwrap();
        assert_eq!(
            got,
            [
                (
                    1,
                    Ok(RxPacket {
                        data_validated: true,
                        ..pkt(0, 1514)
                    })
                ),
                (
                    0,
                    Ok(RxPacket {
                        csum_blank: true,
                        ..pkt(16, 60)
                    })
                ),
                (3, Err(RxError::Error)),
                (2, Err(RxError::Dropped)),
            ]
        );
        assert_eq!(rx.in_flight(), 0);
        // Buffers go back out with the freed ids; a packet may fill the page.
        let id = rx.post(600).unwrap();
        assert!(rx.publish() || mem.load_u32_acquire(layout::REQ_EVENT) != 5);
        let (rid, gref) = rx_req(&be.take_all()[0]);
        assert_eq!((rid, gref), (id, 600));
        be.respond(&rx_rsp(id, 0, 0, 4096));
        be.push();
        assert_eq!(rx_poll(&mut rx).unwrap(), [(id, Ok(pkt(0, 4096)))]);
    }

    #[test]
    fn publish_notifies_only_when_the_backend_asked() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let mut be = Backend::tx(&mem);
        assert!(!tx.publish(), "nothing to publish");
        tx.push(1, 0, 60, 0).unwrap();
        assert!(tx.publish(), "req_event = 1 asks for the first request");
        // The backend has not come back for more: req_event still 1.
        tx.push(1, 0, 60, 0).unwrap();
        assert!(!tx.publish());
        // It consumes everything and re-arms (req_event = req_cons + 1 = 3).
        assert_eq!(be.take_all().len(), 2);
        assert!(!be.final_check());
        assert_eq!(mem.load_u32_acquire(layout::REQ_EVENT), 3);
        tx.push(1, 0, 60, 0).unwrap();
        tx.push(1, 0, 60, 0).unwrap();
        assert!(tx.publish(), "the batch passes req_event");
        assert_eq!(mem.load_u32_acquire(layout::REQ_PROD), 4);
        // Busy backend: consumed one, no re-arm; no notification needed.
        be.take(1);
        tx.push(1, 0, 60, 0).unwrap();
        assert!(!tx.publish());
        // A backend scribbling over req_prod does not change our decision:
        // the old value comes from our private copy.
        mem.store_u32_release(layout::REQ_PROD, 0xdead_beef);
        mem.store_u32_release(layout::REQ_EVENT, 6);
        tx.push(1, 0, 60, 0).unwrap();
        assert!(tx.publish(), "5 -> 6 passes req_event 6");
        assert_eq!(mem.load_u32_acquire(layout::REQ_PROD), 6);
    }

    #[test]
    fn poll_rearms_rsp_event_so_the_backend_notifies() {
        let mem = page();
        let mut rx = RxRing::new(&mem);
        let mut be = Backend::rx(&mem);
        for g in 0..3 {
            rx.post(g).unwrap();
        }
        rx.publish();
        be.take_all();
        be.respond(&rx_rsp(0, 0, 0, 60));
        assert!(be.push(), "first response passes rsp_event 1");
        be.respond(&rx_rsp(1, 0, 0, 60));
        assert!(
            !be.push(),
            "the front has not polled: no second notification"
        );
        assert_eq!(rx_poll(&mut rx).unwrap().len(), 2);
        assert_eq!(mem.load_u32_acquire(layout::RSP_EVENT), 3);
        be.respond(&rx_rsp(2, 0, 0, 60));
        assert!(be.push(), "after a poll the next response notifies");
    }

    /// What a test's backend does at a chosen moment.
    type Hook<'a> = Box<dyn FnMut(&HeapMem) + 'a>;

    /// Memory that counts accesses and can run a hook when the front end
    /// writes `rsp_event` (to play a backend racing with the final check).
    struct Spy<'a> {
        mem: &'a HeapMem,
        accesses: Cell<usize>,
        on_rsp_event: RefCell<Option<Hook<'a>>>,
    }

    impl<'a> Spy<'a> {
        fn new(mem: &'a HeapMem) -> Self {
            Spy {
                mem,
                accesses: Cell::new(0),
                on_rsp_event: RefCell::new(None),
            }
        }
        fn touch(&self) {
            self.accesses.set(self.accesses.get() + 1);
        }
    }

    impl SharedMem for Spy<'_> {
        fn size(&self) -> usize {
            self.mem.size()
        }
        fn load_u8(&self, off: usize) -> u8 {
            self.touch();
            self.mem.load_u8(off)
        }
        fn store_u8(&self, off: usize, v: u8) {
            self.touch();
            self.mem.store_u8(off, v)
        }
        fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 {
            self.touch();
            self.mem.fetch_or_u8(off, bits)
        }
        fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
            self.touch();
            self.mem.fetch_and_u8(off, bits)
        }
        fn load_u32_acquire(&self, off: usize) -> u32 {
            self.touch();
            self.mem.load_u32_acquire(off)
        }
        fn store_u32_release(&self, off: usize, v: u32) {
            self.touch();
            // The hook runs just before the store lands: the backend acts on
            // the old rsp_event.
            if off == layout::RSP_EVENT {
                if let Some(hook) = self.on_rsp_event.borrow_mut().as_mut() {
                    hook(self.mem);
                }
            }
            self.mem.store_u32_release(off, v);
        }
        fn copy_out(&self, off: usize, dst: &mut [u8]) {
            self.touch();
            self.mem.copy_out(off, dst)
        }
        fn copy_in(&self, off: usize, src: &[u8]) {
            self.touch();
            self.mem.copy_in(off, src)
        }
    }

    #[test]
    fn final_check_catches_a_response_racing_the_rearm() {
        let mem = page();
        let raced = Cell::new(false);
        let spy = Spy::new(&mem);
        let mut rx = RxRing::new(&spy);
        for g in 0..2 {
            rx.post(g).unwrap();
        }
        rx.publish();
        let mut be = Backend::rx(&mem);
        be.take_all();
        be.respond(&rx_rsp(0, 0, 0, 60));
        be.push();
        // After the front end consumed response 0 but before its new
        // rsp_event (2) lands, the backend pushes one more response; it sees
        // the old rsp_event (1), decides not to notify, so the re-check after
        // the barrier must find it.
        *spy.on_rsp_event.borrow_mut() = Some(Box::new(|m: &HeapMem| {
            if !raced.replace(true) {
                let mut late = Backend::rx(m);
                late.rsp_prod_pvt = 1;
                late.respond(&rx_rsp(1, 0, 0, 61));
                assert!(!late.push(), "1 -> 2 does not pass the old rsp_event 1");
            }
        }));
        let got = rx_poll(&mut rx);
        assert!(raced.get());
        assert_eq!(got.unwrap(), [(0, Ok(pkt(0, 60))), (1, Ok(pkt(0, 61)))]);
        assert_eq!(mem.load_u32_acquire(layout::RSP_EVENT), 3);
    }

    #[test]
    fn ring_full_is_back_pressure_and_overwrites_nothing() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let mut be = Backend::tx(&mem);
        let ids: Vec<u16> = (0..256).map(|i| tx.push(i, 0, 60, 0).unwrap()).collect();
        assert_eq!(ids, (0..256).collect::<Vec<u16>>());
        assert_eq!(tx.in_flight(), 256);
        let before = {
            let mut b = vec![0u8; PAGE_SIZE];
            mem.copy_out(0, &mut b);
            b
        };
        assert_eq!(tx.push(999, 0, 60, 0), Err(PushError::Full));
        let mut after = vec![0u8; PAGE_SIZE];
        mem.copy_out(0, &mut after);
        assert_eq!(before, after);
        assert!(tx.publish());
        assert_eq!(tx.push(999, 0, 60, 0), Err(PushError::Full), "still full");
        let reqs = be.take_all();
        assert_eq!(reqs.len(), 256);
        be.respond(&tx_rsp(tx_req(&reqs[17]).id, status::OKAY));
        be.push();
        assert_eq!(tx_poll(&mut tx).unwrap(), [(17, TxStatus::Okay)]);
        assert_eq!(tx.push(1000, 0, 60, 0), Ok(17));
        assert_eq!(tx.push(1001, 0, 60, 0), Err(PushError::Full));
    }

    #[test]
    fn ids_are_reused_only_after_their_response() {
        let mem = page();
        let mut rx = RxRing::new(&mem);
        let mut be = Backend::rx(&mem);
        let first: Vec<u16> = (0..8).map(|g| rx.post(g).unwrap()).collect();
        rx.publish();
        be.take_all();
        be.respond(&rx_rsp(5, 0, 0, 60));
        be.respond(&rx_rsp(2, 0, 0, 60));
        be.push();
        rx_poll(&mut rx).unwrap();
        // The two answered ids come back (last freed first); the other six
        // stay out of reach until answered.
        let again: Vec<u16> = (0..3).map(|g| rx.post(g).unwrap()).collect();
        assert_eq!(again, [2, 5, 8]);
        assert!(first.iter().all(|&i| i < 8));
        assert_eq!(rx.in_flight(), 9);
    }

    #[test]
    fn tx_push_rejects_what_netback_would_punish() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        assert_eq!(
            tx.push(1, 4000, 97, 0),
            Err(PushError::BeyondPage {
                offset: 4000,
                len: 97
            })
        );
        assert_eq!(
            tx.push(1, 0, 4097, 0),
            Err(PushError::BeyondPage {
                offset: 0,
                len: 4097
            })
        );
        assert_eq!(
            tx.push(1, 0, 60, txflags::MORE_DATA),
            Err(PushError::Flags(txflags::MORE_DATA))
        );
        assert_eq!(
            tx.push(1, 0, 60, txflags::EXTRA_INFO),
            Err(PushError::Flags(txflags::EXTRA_INFO))
        );
        assert_eq!(
            tx.push(1, 100, 0, 0),
            Err(PushError::EmptySlot { index: 0 })
        );
        assert_eq!(tx.in_flight(), 0);
        assert!(!tx.publish());
        assert_eq!(tx.push(1, 4000, 96, 0), Ok(0));
    }

    /// Publishes `n` tx requests and lets the backend take them.
    fn tx_with_requests(mem: &HeapMem, n: u16) -> (TxRing<&HeapMem>, Backend<'_>) {
        let mut tx = TxRing::new(mem);
        for i in 0..n {
            tx.push(u32::from(i), 0, 60, 0).unwrap();
        }
        tx.publish();
        let mut be = Backend::tx(mem);
        be.take_all();
        (tx, be)
    }

    fn rx_with_requests(mem: &HeapMem, n: u16) -> (RxRing<&HeapMem>, Backend<'_>) {
        let mut rx = RxRing::new(mem);
        for i in 0..n {
            rx.post(u32::from(i)).unwrap();
        }
        rx.publish();
        let mut be = Backend::rx(mem);
        be.take_all();
        (rx, be)
    }

    #[test]
    fn index_jump_breaks() {
        let mem = page();
        let (mut tx, _be) = tx_with_requests(&mem, 3);
        // Four responses to three requests.
        mem.store_u32_release(layout::RSP_PROD, 4);
        let why = BrokenReason::IndexJump {
            ring: Ring::Tx,
            rsp_prod: 4,
            rsp_cons: 0,
            outstanding: 3,
        };
        assert_eq!(tx.poll(&mut |_, _| panic!()), Err(why));
        assert_eq!(tx.broken(), Some(why));
        assert!(why.to_string().contains("tx ring"));

        // Far ahead, and backwards (wraps to a huge distance).
        for bad in [0x8000_0000, u32::MAX] {
            let mem = page();
            let (mut rx, _be) = rx_with_requests(&mem, 5);
            mem.store_u32_release(layout::RSP_PROD, bad);
            assert!(matches!(
                rx_poll(&mut rx),
                Err(BrokenReason::IndexJump { rsp_prod, .. }) if rsp_prod == bad
            ));
        }

        // Responses to requests pushed but not yet published.
        let mem = page();
        let (mut rx, _be) = rx_with_requests(&mem, 2);
        rx.post(9).unwrap();
        mem.store_u32_release(layout::RSP_PROD, 3);
        assert!(matches!(
            rx_poll(&mut rx),
            Err(BrokenReason::IndexJump { outstanding: 2, .. })
        ));

        // A ring with nothing outstanding accepts no responses at all.
        let mem = page();
        let mut tx = TxRing::new(&mem);
        mem.store_u32_release(layout::RSP_PROD, 1);
        assert!(matches!(
            tx_poll(&mut tx),
            Err(BrokenReason::IndexJump { outstanding: 0, .. })
        ));
    }

    #[test]
    fn id_out_of_range_breaks() {
        let mem = page();
        let (mut tx, mut be) = tx_with_requests(&mem, 1);
        be.respond(&tx_rsp(256, status::OKAY));
        be.push();
        let why = BrokenReason::IdOutOfRange {
            ring: Ring::Tx,
            id: 256,
        };
        assert_eq!(tx_poll(&mut tx), Err(why));
        let mem = page();
        let (mut rx, mut be) = rx_with_requests(&mem, 1);
        be.respond(&rx_rsp(0xffff, 0, 0, 60));
        be.push();
        assert_eq!(
            rx_poll(&mut rx),
            Err(BrokenReason::IdOutOfRange {
                ring: Ring::Rx,
                id: 0xffff
            })
        );
    }

    #[test]
    fn id_not_in_flight_breaks() {
        // Never handed out.
        let mem = page();
        let (mut tx, mut be) = tx_with_requests(&mem, 2);
        be.respond(&tx_rsp(7, status::OKAY));
        be.push();
        assert_eq!(
            tx_poll(&mut tx),
            Err(BrokenReason::IdNotInFlight {
                ring: Ring::Tx,
                id: 7
            })
        );
        // Handed out but not yet published: the backend cannot know it.
        let mem = page();
        let (mut rx, mut be) = rx_with_requests(&mem, 1);
        let hidden = rx.post(5).unwrap();
        be.respond(&rx_rsp(hidden, 0, 0, 60));
        be.push();
        assert_eq!(
            rx_poll(&mut rx),
            Err(BrokenReason::IdNotInFlight {
                ring: Ring::Rx,
                id: hidden
            })
        );
    }

    #[test]
    fn duplicate_responses_break() {
        // Twice within one poll: the first is delivered, the second breaks.
        let mem = page();
        let (mut tx, mut be) = tx_with_requests(&mem, 2);
        be.respond(&tx_rsp(1, status::OKAY));
        be.respond(&tx_rsp(1, status::OKAY));
        be.push();
        let mut got = Vec::new();
        let r = tx.poll(&mut |id, s| got.push((id, s)));
        assert_eq!(
            r,
            Err(BrokenReason::IdNotInFlight {
                ring: Ring::Tx,
                id: 1
            })
        );
        assert_eq!(got, [(1, TxStatus::Okay)]);
        // Again in a later poll, after the id went back to the free list
        // (and was not handed out again).
        let mem = page();
        let (mut rx, mut be) = rx_with_requests(&mem, 2);
        be.respond(&rx_rsp(0, 0, 0, 60));
        be.push();
        assert_eq!(rx_poll(&mut rx).unwrap().len(), 1);
        be.respond(&rx_rsp(0, 0, 0, 60));
        be.push();
        assert_eq!(
            rx_poll(&mut rx),
            Err(BrokenReason::IdNotInFlight {
                ring: Ring::Rx,
                id: 0
            })
        );
    }

    #[test]
    fn rx_beyond_the_page_breaks() {
        for (offset, len) in [(1, 4096), (4096, 1), (2048, 2049), (0xffff, 0x7fff)] {
            let mem = page();
            let (mut rx, mut be) = rx_with_requests(&mem, 1);
            be.respond(&rx_rsp(0, offset, 0, len as i16));
            be.push();
            assert_eq!(
                rx_poll(&mut rx),
                Err(BrokenReason::RxBeyondPage { id: 0, offset, len })
            );
        }
        // The limits themselves are fine, and an error status ignores offset.
        let mem = page();
        let (mut rx, mut be) = rx_with_requests(&mem, 3);
        be.respond(&rx_rsp(0, 4096, 0, 0));
        be.respond(&rx_rsp(1, 4000, 0, 96));
        be.respond(&rx_rsp(2, 0xffff, 0, status::ERROR));
        be.push();
        assert_eq!(
            rx_poll(&mut rx).unwrap(),
            [
                (0, Ok(pkt(4096, 0))),
                (1, Ok(pkt(4000, 96))),
                (2, Err(RxError::Error))
            ]
        );
    }

    #[test]
    fn rx_unexpected_flags_break() {
        for flags in [
            rxflags::MORE_DATA,
            rxflags::EXTRA_INFO,
            rxflags::GSO_PREFIX,
            rxflags::DATA_VALIDATED | 1 << 5,
            0x8000,
        ] {
            let mem = page();
            let (mut rx, mut be) = rx_with_requests(&mem, 1);
            be.respond(&rx_rsp(0, 0, flags, 60));
            be.push();
            assert_eq!(
                rx_poll(&mut rx),
                Err(BrokenReason::RxFlags { id: 0, flags })
            );
        }
        // Even on an error response.
        let mem = page();
        let (mut rx, mut be) = rx_with_requests(&mem, 1);
        be.respond(&rx_rsp(0, 0, rxflags::MORE_DATA, status::ERROR));
        be.push();
        assert!(matches!(
            rx_poll(&mut rx),
            Err(BrokenReason::RxFlags { .. })
        ));
    }

    #[test]
    fn statuses_are_named_or_break() {
        // rx: ERROR and DROPPED are per-packet errors; other negatives break.
        for status in [-3i16, i16::MIN] {
            let mem = page();
            let (mut rx, mut be) = rx_with_requests(&mem, 1);
            be.respond(&rx_rsp(0, 0, 0, status));
            be.push();
            assert_eq!(
                rx_poll(&mut rx),
                Err(BrokenReason::RxStatus { id: 0, status })
            );
        }
        // tx: only OKAY, ERROR, DROPPED; anything else breaks. (NULL is
        // judged by its place: see the extra-info tests.)
        for status in [-3, 2, i16::MAX, i16::MIN] {
            let mem = page();
            let (mut tx, mut be) = tx_with_requests(&mem, 1);
            be.respond(&tx_rsp(0, status));
            be.push();
            assert_eq!(
                tx_poll(&mut tx),
                Err(BrokenReason::TxStatus { id: 0, status })
            );
        }
    }

    #[test]
    fn broken_stays_broken_and_touches_nothing() {
        let mem = page();
        let spy = Spy::new(&mem);
        let mut tx = TxRing::new(&spy);
        tx.push(1, 0, 60, 0).unwrap();
        tx.push(2, 0, 60, 0).unwrap();
        tx.publish();
        let mut be = Backend::tx(&mem);
        be.take_all();
        be.respond(&tx_rsp(300, status::OKAY));
        be.push();
        let why = tx.poll(&mut |_, _| panic!()).unwrap_err();
        assert_eq!(
            why,
            BrokenReason::IdOutOfRange {
                ring: Ring::Tx,
                id: 300
            }
        );
        // The backend repents and answers properly: too late.
        be.rsp_prod_pvt = 0;
        be.respond(&tx_rsp(0, status::OKAY));
        be.respond(&tx_rsp(1, status::OKAY));
        be.push();
        let seen = spy.accesses.get();
        for _ in 0..3 {
            assert_eq!(
                tx.poll(&mut |_, _| panic!("broken rings deliver nothing")),
                Err(why)
            );
            assert_eq!(tx.push(3, 0, 60, 0), Err(PushError::Broken(why)));
            assert_eq!(
                tx.push_packet(&[slot(3, 0, 60)], 0, Some(1448), &mut [0]),
                Err(PushError::Broken(why))
            );
            assert!(!tx.publish());
            assert_eq!(tx.broken(), Some(why));
        }
        assert_eq!(spy.accesses.get(), seen, "no shared access after breaking");
        assert_eq!(tx.in_flight(), 2);
        assert!(PushError::Broken(why).to_string().contains("id 300"));
    }

    #[test]
    fn indices_wrap_at_2_pow_32() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        tx.front.start_at(u32::MAX - 2);
        let mut be = Backend::tx(&mem);
        assert_eq!(be.req_cons, u32::MAX - 2);
        for round in 0..3u32 {
            for i in 0..5 {
                tx.push(round * 10 + i, 0, 60, 0).unwrap();
            }
            tx.publish();
            let reqs = be.take_all();
            assert_eq!(reqs.len(), 5);
            for r in reqs.iter().rev() {
                be.respond(&tx_rsp(tx_req(r).id, status::OKAY));
            }
            be.push();
            assert_eq!(tx_poll(&mut tx).unwrap().len(), 5);
            assert!(!be.final_check());
        }
        assert_eq!(mem.load_u32_acquire(layout::REQ_PROD), 12);
        assert_eq!(tx.in_flight(), 0);
        // An index jump is still measured across the wrap.
        tx.push(1, 0, 60, 0).unwrap();
        tx.publish();
        mem.store_u32_release(layout::RSP_PROD, 14);
        assert!(matches!(
            tx_poll(&mut tx),
            Err(BrokenReason::IndexJump {
                rsp_prod: 14,
                rsp_cons: 12,
                outstanding: 1,
                ..
            })
        ));
    }

    #[test]
    fn display_names_every_reason() {
        let reasons = [
            BrokenReason::PageTooSmall {
                ring: Ring::Rx,
                size: 12,
            },
            BrokenReason::IndexJump {
                ring: Ring::Tx,
                rsp_prod: 9,
                rsp_cons: 2,
                outstanding: 3,
            },
            BrokenReason::IdOutOfRange {
                ring: Ring::Rx,
                id: 999,
            },
            BrokenReason::IdNotInFlight {
                ring: Ring::Tx,
                id: 4,
            },
            BrokenReason::TxStatus { id: 1, status: 1 },
            BrokenReason::UnexpectedNull { id: 0xbeef },
            BrokenReason::MissingNull {
                after: 3,
                id: 4,
                status: 0,
            },
            BrokenReason::RxStatus { id: 1, status: -9 },
            BrokenReason::RxFlags { id: 1, flags: 0x5 },
            BrokenReason::RxBeyondPage {
                id: 1,
                offset: 4000,
                len: 200,
            },
        ];
        let texts: Vec<std::string::String> = reasons.iter().map(|r| r.to_string()).collect();
        assert!(texts[1].contains("7 past ours (2)"));
        assert!(texts[5].contains("NULL") && texts[5].contains("48879"));
        assert!(texts[6].contains("extra info of id 3"));
        assert!(texts[8].contains("0x4"));
        for (r, t) in reasons.iter().zip(&texts) {
            assert!(
                t.starts_with(&std::format!("netfront {} ring: ", r.ring())),
                "{t}"
            );
        }
        assert_eq!(
            PushError::Full.to_string(),
            "netfront ring full: not enough free ids or entries until responses come back"
        );
        for (e, text) in [
            (PushError::SlotCount(18), "18 slots (1 to 17"),
            (PushError::EmptySlot { index: 2 }, "slot 2 is empty"),
            (PushError::TooLong { total: 70000 }, "70000 bytes"),
            (PushError::GsoSizeZero, "segment size of 0"),
            (PushError::IdsLength { slots: 3, ids: 2 }, "3 slots"),
        ] {
            assert!(e.to_string().contains(text), "{e}");
        }
    }

    /// A small deterministic generator for the randomised runs (no
    /// dependency): xorshift64*.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Property: against a correct backend that answers any subset of what
    /// it has taken, in any order, at any time, the ring never breaks; every
    /// id handed out comes back exactly once with what the backend said;
    /// an id is never handed out twice while in flight; and no wake-up is
    /// lost in either direction (a sleeping backend is notified by a
    /// publish, a sleeping front end by a push of responses).
    #[test]
    fn random_schedules_against_a_correct_backend() {
        let (mut delivered, mut full, mut wakes) = (0usize, 0usize, 0usize);
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mem = page();
            let mut rx = RxRing::new(&mem);
            let start = rng.next() as u32;
            rx.front.start_at(start);
            let mut be = Backend::rx(&mem);
            // Model: ids out (posted), taken by the backend and not answered,
            // answered and not yet polled (with the expected result).
            let mut out: Vec<u16> = Vec::new();
            let mut taken: Vec<u16> = Vec::new();
            let mut answered: Vec<(u16, RxResult)> = Vec::new();
            let mut backend_asleep = false;
            let mut front_asleep = true;
            for _ in 0..400 {
                match rng.below(6) {
                    0 | 1 => {
                        for _ in 0..rng.below(20) {
                            match rx.post(rng.next() as u32) {
                                Ok(id) => {
                                    assert!(!out.contains(&id), "seed {seed}: id {id} twice");
                                    assert!(usize::from(id) < rx.size());
                                    out.push(id);
                                }
                                Err(PushError::Full) => {
                                    assert_eq!(out.len(), 256);
                                    full += 1;
                                }
                                Err(e) => panic!("seed {seed}: {e}"),
                            }
                        }
                        assert_eq!(rx.in_flight(), out.len());
                    }
                    2 => {
                        let published_new =
                            mem.load_u32_acquire(layout::REQ_PROD) != rx.front.req_prod_pvt;
                        let notify = rx.publish();
                        if backend_asleep && published_new {
                            assert!(notify, "seed {seed}: lost wake-up of the backend");
                            wakes += 1;
                        }
                        if notify {
                            backend_asleep = false;
                        }
                    }
                    3 => {
                        let n = rng.below(40) as usize;
                        for r in be.take(n) {
                            taken.push(rx_req(&r).0);
                        }
                        if !backend_asleep && n > 0 && !be.final_check() {
                            backend_asleep = true;
                        }
                    }
                    4 => {
                        for _ in 0..rng.below(taken.len() as u64 + 1) {
                            let i = rng.below(taken.len() as u64) as usize;
                            let id = taken.swap_remove(i);
                            let (offset, status) = match rng.below(5) {
                                0 => (rng.below(0x10000) as u16, status::ERROR),
                                1 => (0, status::DROPPED),
                                _ => {
                                    let off = rng.below(4097) as u16;
                                    (off, rng.below(4097 - u64::from(off)) as i16)
                                }
                            };
                            let flags = rng.below(4) as u16;
                            be.respond(&rx_rsp(id, offset, flags, status));
                            let expect = match status {
                                status::ERROR => Err(RxError::Error),
                                status::DROPPED => Err(RxError::Dropped),
                                len => Ok(RxPacket {
                                    offset,
                                    len: len as u16,
                                    data_validated: flags & 1 != 0,
                                    csum_blank: flags & 2 != 0,
                                }),
                            };
                            answered.push((id, expect));
                        }
                        let pushed_new = mem.load_u32_acquire(layout::RSP_PROD) != be.rsp_prod_pvt;
                        let notify = be.push();
                        if front_asleep && pushed_new {
                            assert!(notify, "seed {seed}: lost wake-up of the front end");
                            wakes += 1;
                        }
                        if notify {
                            front_asleep = false;
                        }
                    }
                    _ => {
                        let got = rx_poll(&mut rx).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                        assert_eq!(got, answered, "seed {seed}");
                        delivered += got.len();
                        for (id, _) in answered.drain(..) {
                            out.retain(|&o| o != id);
                        }
                        front_asleep = true;
                        assert_eq!(rx.in_flight(), out.len());
                    }
                }
            }
            assert_eq!(rx.broken(), None);
        }
        // The schedules reach the interesting states often (about 200 000,
        // 19 000 and 7 000 times).
        assert!(delivered > 100_000 && full > 100 && wakes > 1_000);
    }

    fn slot(gref: u32, offset: u16, len: u16) -> TxSlot {
        TxSlot { gref, offset, len }
    }

    /// A GSO extra-info entry as netback reads it, spelled out byte by byte
    /// from `struct netif_extra_info` (not built with the code under test).
    fn gso_entry(mss: u16) -> Vec<u8> {
        let [lo, hi] = mss.to_le_bytes();
        // type GSO, flags 0, u.gso.size, u.gso.type TCPV4, pad, features 0,
        // then the rest of the 12-byte tx entry.
        vec![1, 0, lo, hi, 1, 0, 0, 0, 0, 0, 0, 0]
    }

    fn snapshot(mem: &HeapMem) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_SIZE];
        mem.copy_out(0, &mut b);
        b
    }

    /// Reads taken tx entries as netback does: each request, with whether
    /// an extra-info entry followed it (checked to be GSO, then skipped).
    fn netback_parse(entries: &[Vec<u8>]) -> Vec<(TxReq, bool)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let req = tx_req(&entries[i]);
            let extra = req.flags & txflags::EXTRA_INFO != 0;
            if extra {
                i += 1;
                assert_eq!(entries[i][0], extra::TYPE_GSO);
                assert_eq!(entries[i][1] & extra::FLAG_MORE, 0);
            }
            out.push((req, extra));
            i += 1;
        }
        out
    }

    /// Answers one request as netback's `make_tx_response` does: its
    /// response, and for a request that carried extra info a NULL right
    /// behind it.
    fn netback_answer(be: &mut Backend<'_>, id: u16, extra: bool, status: i16) {
        be.respond(&tx_rsp(id, status));
        if extra {
            be.respond_null();
        }
    }

    /// Pushes and publishes one GSO packet of `n` slots; the backend takes it.
    fn tx_with_gso_packet(mem: &HeapMem, n: usize) -> (TxRing<&HeapMem>, Backend<'_>, Vec<u16>) {
        let mut tx = TxRing::new(mem);
        let slots: Vec<TxSlot> = (0..n).map(|i| slot(i as u32, 0, 1000)).collect();
        let mut ids = vec![0; n];
        tx.push_packet(&slots, txflags::CSUM_BLANK, Some(1448), &mut ids)
            .unwrap();
        tx.publish();
        let mut be = Backend::tx(mem);
        assert_eq!(be.take_all().len(), n + 1);
        (tx, be, ids)
    }

    #[test]
    fn tx_gso_packet_round_trip() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let mut be = Backend::tx(&mem);
        let slots = [slot(10, 100, 1000), slot(11, 0, 4096), slot(12, 0, 500)];
        let flags = txflags::CSUM_BLANK | txflags::DATA_VALIDATED;
        let mut ids = [0u16; 3];
        tx.push_packet(&slots, flags, Some(1448), &mut ids).unwrap();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(tx.in_flight(), 3, "the extra entry takes no id");
        assert!(be.take_all().is_empty(), "nothing visible before publish");
        assert!(tx.publish());
        assert_eq!(mem.load_u32_acquire(layout::REQ_PROD), 4);
        let entries = be.take_all();
        assert_eq!(entries.len(), 4);
        assert_eq!(
            tx_req(&entries[0]),
            TxReq {
                gref: 10,
                offset: 100,
                flags: flags | txflags::MORE_DATA | txflags::EXTRA_INFO,
                id: 0,
                size: 5596
            }
        );
        assert_eq!(entries[1], [1, 0, 0xa8, 0x05, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(entries[1], gso_entry(1448));
        assert_eq!(
            tx_req(&entries[2]),
            TxReq {
                gref: 11,
                offset: 0,
                flags: txflags::MORE_DATA,
                id: 1,
                size: 4096
            }
        );
        assert_eq!(
            tx_req(&entries[3]),
            TxReq {
                gref: 12,
                offset: 0,
                flags: 0,
                id: 2,
                size: 500
            }
        );
        // The last slot first, then the first with its NULL, then the middle.
        be.respond(&tx_rsp(2, status::OKAY));
        netback_answer(&mut be, 0, true, status::OKAY);
        be.respond(&tx_rsp(1, status::OKAY));
        assert!(be.push());
        assert_eq!(
            tx_poll(&mut tx).unwrap(),
            [
                (2, TxStatus::Okay),
                (0, TxStatus::Okay),
                (1, TxStatus::Okay)
            ]
        );
        assert_eq!(tx.in_flight(), 0);
        assert_eq!(tx.broken(), None);
        // Every entry was answered, so the next packet's responses line up;
        // the ids are free again (last freed first).
        tx.push_packet(&slots[..2], 0, Some(536), &mut ids[..2])
            .unwrap();
        assert_eq!(ids[..2], [1, 0]);
        tx.publish();
        let entries = be.take_all();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1], gso_entry(536));
        netback_answer(&mut be, 1, true, status::ERROR);
        be.respond(&tx_rsp(0, status::DROPPED));
        be.push();
        assert_eq!(
            tx_poll(&mut tx).unwrap(),
            [(1, TxStatus::Error), (0, TxStatus::Dropped)]
        );
        assert_eq!(tx.in_flight(), 0);
        assert_eq!(tx.broken(), None);
    }

    #[test]
    fn tx_multi_slot_packet_without_gso_has_no_extra() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let mut be = Backend::tx(&mem);
        let mut ids = [0u16; 2];
        tx.push_packet(
            &[slot(20, 4000, 96), slot(21, 0, 1400)],
            txflags::CSUM_BLANK,
            None,
            &mut ids,
        )
        .unwrap();
        tx.publish();
        let reqs: Vec<TxReq> = be.take_all().iter().map(|r| tx_req(r)).collect();
        assert_eq!(
            reqs,
            [
                TxReq {
                    gref: 20,
                    offset: 4000,
                    flags: txflags::CSUM_BLANK | txflags::MORE_DATA,
                    id: ids[0],
                    size: 1496
                },
                TxReq {
                    gref: 21,
                    offset: 0,
                    flags: 0,
                    id: ids[1],
                    size: 1400
                },
            ]
        );
        be.respond(&tx_rsp(ids[1], status::ERROR));
        be.respond(&tx_rsp(ids[0], status::OKAY));
        be.push();
        assert_eq!(
            tx_poll(&mut tx).unwrap(),
            [(ids[1], TxStatus::Error), (ids[0], TxStatus::Okay)]
        );
        assert_eq!((tx.in_flight(), tx.broken()), (0, None));
        // No NULL was due: the ring is even, requests and responses.
        assert_eq!(
            mem.load_u32_acquire(layout::REQ_PROD),
            mem.load_u32_acquire(layout::RSP_PROD)
        );
    }

    #[test]
    fn push_packet_checks_everything_before_writing() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let before = snapshot(&mem);
        let ok = slot(1, 0, 1000);
        // (slots, flags, gso_size, room for ids, the error)
        type Case = (Vec<TxSlot>, u16, Option<u16>, usize, PushError);
        let cases: Vec<Case> = vec![
            (vec![], 0, None, 0, PushError::SlotCount(0)),
            (vec![ok; 18], 0, Some(1448), 18, PushError::SlotCount(18)),
            (
                vec![ok, ok],
                0,
                None,
                3,
                PushError::IdsLength { slots: 2, ids: 3 },
            ),
            (
                vec![ok, ok],
                0,
                Some(1448),
                1,
                PushError::IdsLength { slots: 2, ids: 1 },
            ),
            (
                vec![ok, slot(2, 10, 0), ok],
                0,
                Some(1448),
                3,
                PushError::EmptySlot { index: 1 },
            ),
            (
                vec![ok, ok, slot(3, 4000, 97)],
                0,
                Some(1448),
                3,
                PushError::BeyondPage {
                    offset: 4000,
                    len: 97,
                },
            ),
            (
                vec![slot(1, 0, 4096); 17],
                0,
                Some(1448),
                17,
                PushError::TooLong { total: 17 * 4096 },
            ),
            (
                vec![ok, ok],
                txflags::MORE_DATA,
                None,
                2,
                PushError::Flags(txflags::MORE_DATA),
            ),
            (
                vec![ok],
                txflags::EXTRA_INFO,
                Some(1448),
                1,
                PushError::Flags(txflags::EXTRA_INFO),
            ),
            (vec![ok], 1 << 4, None, 1, PushError::Flags(1 << 4)),
            (vec![ok, ok], 0, Some(0), 2, PushError::GsoSizeZero),
        ];
        let mut ids = [0xaaaa_u16; 18];
        for (slots, flags, gso, n, err) in cases {
            assert_eq!(tx.push_packet(&slots, flags, gso, &mut ids[..n]), Err(err));
            assert!(ids.iter().all(|&i| i == 0xaaaa), "no id written");
            assert_eq!(snapshot(&mem), before, "{err}");
            assert_eq!(tx.in_flight(), 0);
        }
        assert!(!tx.publish(), "nothing to publish");
        // The largest packet: 17 slots of 65535 bytes in all, and it gets
        // the first id and the first entry as if nothing had happened.
        tx.push_packet(&[slot(9, 241, 3855); 17], 0, Some(1448), &mut ids[..17])
            .unwrap();
        assert_eq!(ids[..17], (0..17).collect::<Vec<u16>>());
        assert!(tx.publish());
        let entries = Backend::tx(&mem).take_all();
        assert_eq!(entries.len(), 18);
        assert_eq!(tx_req(&entries[0]).size, 65535);
        assert_eq!(tx_req(&entries[0]).id, 0);
        let parsed = netback_parse(&entries);
        assert_eq!(parsed.len(), 17);
        assert!(parsed[1..16]
            .iter()
            .all(|(r, _)| r.flags == txflags::MORE_DATA && r.size == 3855));
        assert_eq!(parsed[16].0.flags, 0);
    }

    #[test]
    fn push_packet_needs_room_for_every_entry_and_id() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let mut be = Backend::tx(&mem);
        let two = [slot(1, 0, 100), slot(2, 0, 100)];
        let mut ids = [0u16; 2];
        // 85 GSO packets of two slots: 255 entries, 170 ids.
        for _ in 0..85 {
            tx.push_packet(&two, 0, Some(1448), &mut ids).unwrap();
        }
        assert_eq!(tx.in_flight(), 170);
        // Ids are left, entries are not.
        let before = snapshot(&mem);
        assert_eq!(
            tx.push_packet(&two, 0, None, &mut ids),
            Err(PushError::Full)
        );
        assert_eq!(
            tx.push_packet(&two[..1], 0, Some(1448), &mut ids[..1]),
            Err(PushError::Full)
        );
        assert_eq!(snapshot(&mem), before);
        assert_eq!(tx.push(3, 0, 60, 0), Ok(170));
        assert_eq!(tx.push(4, 0, 60, 0), Err(PushError::Full));
        assert_eq!(tx.in_flight(), 171);
        tx.publish();
        assert_eq!(be.take_all().len(), 256);
        // The first packet's two responses and its NULL free three entries.
        be.respond(&tx_rsp(1, status::OKAY));
        netback_answer(&mut be, 0, true, status::OKAY);
        be.push();
        assert_eq!(
            tx_poll(&mut tx).unwrap(),
            [(1, TxStatus::Okay), (0, TxStatus::Okay)]
        );
        tx.push_packet(&two, 0, Some(1448), &mut ids).unwrap();
        assert_eq!(ids, [0, 1]);
        assert_eq!(tx.push(5, 0, 60, 0), Err(PushError::Full));

        // Without extras, ids and entries run out together.
        let mem = page();
        let mut tx = TxRing::new(&mem);
        for i in 0..255 {
            tx.push(i, 0, 60, 0).unwrap();
        }
        assert_eq!(
            tx.push_packet(&two, 0, None, &mut ids),
            Err(PushError::Full)
        );
        assert_eq!(tx.push(9, 0, 60, 0), Ok(255));
    }

    #[test]
    fn null_where_none_is_due_breaks() {
        // Nothing carried extra info.
        let mem = page();
        let (mut tx, mut be) = tx_with_requests(&mem, 2);
        be.respond(&tx_rsp(7, status::NULL));
        be.push();
        assert_eq!(
            tx_poll(&mut tx),
            Err(BrokenReason::UnexpectedNull { id: 7 })
        );
        assert_eq!(tx.in_flight(), 2);
        // After a response that carried none.
        let mem = page();
        let (mut tx, mut be) = tx_with_requests(&mem, 2);
        be.respond(&tx_rsp(0, status::OKAY));
        be.respond(&tx_rsp(1, status::NULL));
        be.push();
        let mut got = Vec::new();
        assert_eq!(
            tx.poll(&mut |id, s| got.push((id, s))),
            Err(BrokenReason::UnexpectedNull { id: 1 })
        );
        assert_eq!(got, [(0, TxStatus::Okay)]);
        // Before the response of the request that carried the extra info,
        // after a data slot of the same packet, or twice.
        type Answer = fn(&mut Backend<'_>, &[u16]);
        let answers: [Answer; 3] = [
            |be, _| be.respond_null(),
            |be, ids| {
                be.respond(&tx_rsp(ids[1], status::OKAY));
                be.respond_null();
            },
            |be, ids| {
                netback_answer(be, ids[0], true, status::OKAY);
                be.respond_null();
            },
        ];
        for answer in answers {
            let mem = page();
            let (mut tx, mut be, ids) = tx_with_gso_packet(&mem, 2);
            answer(&mut be, &ids);
            be.push();
            assert!(matches!(
                tx_poll(&mut tx),
                Err(BrokenReason::UnexpectedNull { .. })
            ));
        }
    }

    #[test]
    fn missing_null_breaks() {
        // Another response right where the NULL is due.
        let mem = page();
        let (mut tx, mut be, ids) = tx_with_gso_packet(&mem, 2);
        be.respond(&tx_rsp(ids[0], status::OKAY));
        be.respond(&tx_rsp(ids[1], status::OKAY));
        be.push();
        let mut got = Vec::new();
        let why = BrokenReason::MissingNull {
            after: ids[0],
            id: ids[1],
            status: status::OKAY,
        };
        assert_eq!(tx.poll(&mut |id, s| got.push((id, s))), Err(why));
        assert_eq!(got, [(ids[0], TxStatus::Okay)]);
        assert_eq!((tx.in_flight(), tx.broken()), (1, Some(why)));
        // The expectation outlives the poll: a later response is judged by
        // it first, even one naming an impossible id.
        let mem = page();
        let (mut tx, mut be, ids) = tx_with_gso_packet(&mem, 3);
        be.respond(&tx_rsp(ids[0], status::ERROR));
        be.push();
        assert_eq!(tx_poll(&mut tx).unwrap(), [(ids[0], TxStatus::Error)]);
        be.respond(&tx_rsp(300, status::DROPPED));
        be.push();
        assert_eq!(
            tx_poll(&mut tx),
            Err(BrokenReason::MissingNull {
                after: ids[0],
                id: 300,
                status: status::DROPPED
            })
        );
    }

    #[test]
    fn null_may_come_in_a_later_poll() {
        let mem = page();
        let (mut tx, mut be, ids) = tx_with_gso_packet(&mem, 3);
        be.respond(&tx_rsp(ids[0], status::OKAY));
        be.push();
        assert_eq!(tx_poll(&mut tx).unwrap(), [(ids[0], TxStatus::Okay)]);
        assert_eq!(tx_poll(&mut tx).unwrap(), []);
        be.respond_null();
        be.push();
        assert_eq!(tx_poll(&mut tx).unwrap(), [], "a NULL delivers nothing");
        be.respond(&tx_rsp(ids[2], status::OKAY));
        be.respond(&tx_rsp(ids[1], status::OKAY));
        be.push();
        assert_eq!(
            tx_poll(&mut tx).unwrap(),
            [(ids[2], TxStatus::Okay), (ids[1], TxStatus::Okay)]
        );
        assert_eq!((tx.in_flight(), tx.broken()), (0, None));
    }

    #[test]
    fn null_may_come_between_the_passes_of_one_poll() {
        let mem = page();
        let raced = Cell::new(false);
        let spy = Spy::new(&mem);
        let mut tx = TxRing::new(&spy);
        let mut ids = [0u16; 2];
        tx.push_packet(&[slot(1, 0, 100), slot(2, 0, 100)], 0, Some(1448), &mut ids)
            .unwrap();
        tx.publish();
        let mut be = Backend::tx(&mem);
        be.take_all();
        be.respond(&tx_rsp(ids[0], status::OKAY));
        be.push();
        // rsp_prod stops right after the response that carried the extra
        // info; the NULL and the last response come while the front end
        // re-arms rsp_event, and its final check finds them.
        let (second, raced_ref) = (ids[1], &raced);
        *spy.on_rsp_event.borrow_mut() = Some(Box::new(move |m: &HeapMem| {
            if !raced_ref.replace(true) {
                let mut late = Backend::tx(m);
                late.respond_null();
                late.respond(&tx_rsp(second, status::OKAY));
                late.push();
            }
        }));
        let mut got = Vec::new();
        assert_eq!(tx.poll(&mut |id, s| got.push((id, s))), Ok(2));
        assert!(raced.get());
        assert_eq!(got, [(ids[0], TxStatus::Okay), (second, TxStatus::Okay)]);
        assert_eq!((tx.in_flight(), tx.broken()), (0, None));
    }

    #[test]
    fn extra_entries_count_in_the_index_check() {
        // Two data slots and an extra: three responses are owed, not four.
        let mem = page();
        let (mut tx, _be, _ids) = tx_with_gso_packet(&mem, 2);
        mem.store_u32_release(layout::RSP_PROD, 4);
        assert_eq!(
            tx_poll(&mut tx),
            Err(BrokenReason::IndexJump {
                ring: Ring::Tx,
                rsp_prod: 4,
                rsp_cons: 0,
                outstanding: 3
            })
        );
        // With both ids answered, only the NULL is still owed.
        let mem = page();
        let (mut tx, mut be, ids) = tx_with_gso_packet(&mem, 2);
        be.respond(&tx_rsp(ids[1], status::OKAY));
        be.respond(&tx_rsp(ids[0], status::OKAY));
        be.push();
        assert_eq!(tx_poll(&mut tx).unwrap().len(), 2);
        assert_eq!(tx.in_flight(), 0);
        mem.store_u32_release(layout::RSP_PROD, 4);
        assert!(matches!(
            tx_poll(&mut tx),
            Err(BrokenReason::IndexJump { outstanding: 1, .. })
        ));
    }

    #[test]
    fn gso_packets_across_the_index_wrap() {
        let mem = page();
        let mut tx = TxRing::new(&mem);
        let start = u32::MAX - 5;
        tx.front.start_at(start);
        let mut be = Backend::tx(&mem);
        let mut ids = [0u16; 4];
        for round in 0..4u32 {
            let slots = [
                slot(round, 0, 1000),
                slot(round, 1000, 1000),
                slot(round, 2000, 2000),
                slot(round, 4000, 96),
            ];
            tx.push_packet(&slots, txflags::CSUM_BLANK, Some(1448), &mut ids)
                .unwrap();
            tx.push(round, 0, 60, 0).unwrap();
            tx.publish();
            let entries = be.take_all();
            assert_eq!(entries.len(), 6);
            assert_eq!(entries[1], gso_entry(1448));
            for (req, extra) in netback_parse(&entries).into_iter().rev() {
                netback_answer(&mut be, req.id, extra, status::OKAY);
            }
            be.push();
            assert_eq!(tx_poll(&mut tx).unwrap().len(), 5);
            assert_eq!((tx.in_flight(), tx.broken()), (0, None));
        }
        assert_eq!(
            mem.load_u32_acquire(layout::REQ_PROD),
            start.wrapping_add(24)
        );
        assert_eq!(mem.load_u32_acquire(layout::RSP_PROD), 18);
    }

    /// Property: transmitting random packets (one to 17 slots, with or
    /// without GSO) against a backend that answers as netback does (every
    /// slot once, in any order, a NULL right behind the response of a
    /// request that carried extra info, sometimes pushed apart from it), the
    /// ring never breaks; the backend reads exactly the entries the packets
    /// call for; every id comes back once with what the backend said; and
    /// `Full` is reported exactly when ids or entries are short.
    #[test]
    fn random_packets_against_a_netback_like_backend() {
        let (mut delivered, mut full, mut nulls, mut split) = (0usize, 0usize, 0usize, 0usize);
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mem = page();
            let mut tx = TxRing::new(&mem);
            let start = rng.next() as u32;
            tx.front.start_at(start);
            let mut be = Backend::tx(&mem);
            // Model: ids out (pushed, not delivered); entries pushed and not
            // yet read by the backend; taken and not answered (with whether
            // a NULL follows); answered, not yet polled.
            let mut out: Vec<u16> = Vec::new();
            let mut unread: VecDeque<Vec<u8>> = VecDeque::new();
            let mut taken: Vec<(u16, bool)> = Vec::new();
            let mut answered: Vec<(u16, TxStatus)> = Vec::new();
            // Entries pushed, and entries the front end has consumed
            // responses for (all pushed responses, as of its last poll).
            let (mut pushed_entries, mut consumed_entries) = (0u32, 0u32);
            for _ in 0..400 {
                match rng.below(6) {
                    0 | 1 => {
                        let n = if rng.below(4) == 0 {
                            1 + rng.below(17)
                        } else {
                            1 + rng.below(3)
                        } as usize;
                        let slots: Vec<TxSlot> = (0..n)
                            .map(|_| {
                                let offset = rng.below(4096) as u16;
                                let len = 1 + rng.below(4096 - u64::from(offset)) as u16;
                                slot(rng.next() as u32, offset, len)
                            })
                            .collect();
                        let gso = (rng.below(2) == 0).then(|| 1 + rng.below(9000) as u16);
                        let flags = rng.below(4) as u16;
                        let total: usize = slots.iter().map(|s| usize::from(s.len)).sum();
                        let entries = n + usize::from(gso.is_some());
                        let used = pushed_entries.wrapping_sub(consumed_entries) as usize;
                        let short = out.len() + n > 256 || used + entries > 256;
                        let mut ids = vec![0u16; n];
                        match tx.push_packet(&slots, flags, gso, &mut ids) {
                            Ok(()) => {
                                assert!(total <= 0xffff && !short, "seed {seed}");
                                for (i, (s, &id)) in slots.iter().zip(&ids).enumerate() {
                                    assert!(!out.contains(&id), "seed {seed}: id {id} twice");
                                    out.push(id);
                                    let more = if i + 1 < n { txflags::MORE_DATA } else { 0 };
                                    let (f, size) = if i == 0 {
                                        let extra = if gso.is_some() {
                                            txflags::EXTRA_INFO
                                        } else {
                                            0
                                        };
                                        (flags | more | extra, total as u16)
                                    } else {
                                        (more, s.len)
                                    };
                                    unread.push_back(
                                        [
                                            &s.gref.to_le_bytes()[..],
                                            &s.offset.to_le_bytes(),
                                            &f.to_le_bytes(),
                                            &id.to_le_bytes(),
                                            &size.to_le_bytes(),
                                        ]
                                        .concat(),
                                    );
                                    if let (0, Some(mss)) = (i, gso) {
                                        unread.push_back(gso_entry(mss));
                                    }
                                }
                                pushed_entries += entries as u32;
                            }
                            Err(PushError::TooLong { total: t }) => {
                                assert!(t == total && total > 0xffff, "seed {seed}")
                            }
                            Err(PushError::Full) => {
                                assert!(total <= 0xffff && short, "seed {seed}");
                                full += 1;
                            }
                            Err(e) => panic!("seed {seed}: {e}"),
                        }
                        assert_eq!(tx.in_flight(), out.len());
                    }
                    2 => {
                        tx.publish();
                    }
                    3 => {
                        // Netback reads whole packets: publishes only ever
                        // show whole ones.
                        let entries = be.take_all();
                        for e in &entries {
                            assert_eq!(Some(e), unread.pop_front().as_ref(), "seed {seed}");
                        }
                        for (req, extra) in netback_parse(&entries) {
                            taken.push((req.id, extra));
                        }
                    }
                    4 => {
                        // A few at a time, so that the ring fills up.
                        for _ in 0..rng.below(8).min(taken.len() as u64) {
                            let i = rng.below(taken.len() as u64) as usize;
                            let (id, extra) = taken.swap_remove(i);
                            let (status, result) = match rng.below(6) {
                                0 => (status::ERROR, TxStatus::Error),
                                1 => (status::DROPPED, TxStatus::Dropped),
                                _ => (status::OKAY, TxStatus::Okay),
                            };
                            be.respond(&tx_rsp(id, status));
                            if extra {
                                // Not netback's habit, but allowed: rsp_prod
                                // stops between the response and its NULL.
                                if rng.below(6) == 0 {
                                    be.push();
                                    split += 1;
                                }
                                be.respond_null();
                                nulls += 1;
                            }
                            answered.push((id, result));
                        }
                        be.push();
                    }
                    _ => {
                        let got = tx_poll(&mut tx).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                        assert_eq!(got, answered, "seed {seed}");
                        delivered += got.len();
                        for (id, _) in answered.drain(..) {
                            out.retain(|&o| o != id);
                        }
                        consumed_entries = be.rsp_prod_pvt.wrapping_sub(start);
                        assert_eq!(tx.in_flight(), out.len());
                    }
                }
            }
            assert_eq!(tx.broken(), None);
        }
        // The schedules reach the interesting states often (about 42 000,
        // 2 700, 5 900 and 1 000 times).
        assert!(delivered > 20_000 && full > 1_000 && nulls > 2_000 && split > 300);
    }
}
