//! What can go wrong, each with a name.
//!
//! Three families, kept apart because callers react to them differently:
//!
//! * [`BrokenReason`]: the peer broke the protocol (shared indices, liveness bytes, frame
//!   headers, payload structure). The channel stops for good and every later call reports
//!   the same reason; the owner closes it and tells whoever is waiting.
//! * [`SetupError`]: a shared page or a requested layout that cannot make a channel.
//!   Nothing was built, nothing needs undoing in shared memory.
//! * [`Error`]: what a channel operation returns: a sticky [`Error::Broken`], the end of
//!   the conversation ([`Error::PeerClosed`], [`Error::Closed`]), back-pressure that a
//!   later retry resolves ([`Error::Full`], [`Error::TooManyInFlight`]), or a message the
//!   caller built wrong ([`Error::Encode`], [`Error::DuplicateEventId`],
//!   [`Error::ExceedsRing`]).

use core::fmt;

use crate::layout::Side;
use crate::status::Status;

/// Why a channel was declared broken. Once set it never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenReason {
    /// The peer's producer index on the ring we read is outside
    /// `[last value seen, our consumer index + ring size]`: it claims more unread bytes
    /// than the ring holds (`prod - cons > size`) or it moved backwards.
    ProducerOutOfRange {
        /// The ring, by its vchan name.
        ring: Side,
    },
    /// The peer's consumer index on the ring we write is outside
    /// `[last value seen, our producer index]`: it claims to have read bytes never written
    /// (or more than a ring's worth), or it moved backwards.
    ConsumerOutOfRange {
        /// The ring, by its vchan name.
        ring: Side,
    },
    /// The peer overwrote an index only we may write (our consumer index on the ring we
    /// read, or our producer index on the ring we write).
    OwnIndexChanged {
        /// The ring, by its vchan name.
        ring: Side,
    },
    /// The peer's liveness byte holds a value the protocol does not define, or made a
    /// transition it cannot make (e.g. live back to "not yet connected").
    LivenessInvalid {
        /// The byte as read.
        value: u8,
    },
    /// A frame header names an op code this crate does not know.
    UnknownOp {
        /// The code as read.
        code: u16,
    },
    /// A reply header carries a status code this crate does not know.
    UnknownStatus {
        /// The code as read.
        code: u16,
    },
    /// A request header carries a non-zero status (requests have none).
    StatusInRequest,
    /// A reply with an error status carries a payload (error replies are header-only).
    PayloadWithError,
    /// A frame's length is outside what its op allows in its direction (at most
    /// [`MAX_PAYLOAD`](crate::MAX_PAYLOAD) for every op, often much less).
    LengthOutOfRange {
        /// The op code.
        op: u16,
        /// The length as read.
        len: u32,
    },
    /// A reply names an event id that has no request in flight.
    UnexpectedReply {
        /// The event id as read.
        event_id: u64,
    },
    /// A reply's op differs from the op of the request in flight under its event id.
    ReplyOpMismatch {
        /// The event id.
        event_id: u64,
    },
    /// A reply carries more data than its request asked for (`FileRead`), or a different
    /// amount than asked (`Random`).
    ReplyDataLength {
        /// The event id.
        event_id: u64,
    },
    /// A payload does not follow the encoding of its op.
    Payload(PayloadError),
}

/// Structural errors in a payload: anything the encoder would never produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// The payload ends inside a field.
    Truncated,
    /// Bytes are left over after the last field.
    TrailingBytes,
    /// A path is empty.
    PathEmpty,
    /// A path is longer than [`MAX_PATH`](crate::MAX_PATH) bytes.
    PathTooLong,
    /// A path or name is not UTF-8.
    NotUtf8,
    /// A path contains a NUL byte.
    PathHasNul,
    /// A directory entry name is empty, longer than [`MAX_NAME`](crate::MAX_NAME), is `.`
    /// or `..`, or contains `/` or NUL.
    NameInvalid,
    /// A data length or byte count exceeds [`MAX_IO`](crate::MAX_IO).
    DataTooLong,
    /// A file kind byte is not one of [`FileKind`](crate::FileKind)'s codes.
    BadFileKind,
    /// Permission bits above `0o7777`.
    BadPermissions,
    /// Nanoseconds of a timestamp are `>= 1_000_000_000`.
    BadNanoseconds,
    /// A flags byte has bits this protocol does not define.
    BadFlags,
    /// A boolean byte is neither 0 nor 1.
    BadBool,
    /// A `DirList` reply with more than [`MAX_DIR_ENTRIES`](crate::MAX_DIR_ENTRIES)
    /// entries.
    TooManyEntries,
    /// A `Trace` batch whose records are not a whole number of
    /// [`RECORD_BYTES`](crate::trace::RECORD_BYTES).
    PartialRecord,
}

/// Why a channel could not be set up. Nothing was changed in shared memory unless the
/// error says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// A ring order outside `10..=20` (1 KiB to 1 MiB).
    OrderOutOfRange {
        /// The ring.
        side: Side,
        /// The order as given or read.
        order: u16,
    },
    /// Both rings have the same in-page order (10 or 11), so they would overlap.
    SharedInPageRing,
    /// The grant list (4 bytes per granted ring page, from offset 24) would reach into a
    /// ring inside the interface page or past the page.
    GrantsOverlapRing {
        /// Grants the layout needs.
        grants: usize,
    },
    /// A memory region is smaller than the layout needs.
    MemoryTooSmall {
        /// The ring, or `None` for the interface page.
        side: Option<Side>,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// Separate memory was missing for a ring the layout puts in granted pages, or given
    /// for a ring the layout puts inside the interface page.
    RingMemoryMismatch {
        /// The ring.
        side: Side,
    },
    /// The server was given a different number of grant references than the layout needs.
    GrantCount {
        /// Grants the layout needs.
        expected: usize,
        /// Grants given.
        got: usize,
    },
    /// The client found the server's liveness byte not 1 (live).
    ServerNotLive {
        /// The byte as read.
        srv_live: u8,
    },
    /// The client found the client liveness byte not 2 (awaiting a client): another client
    /// is or was connected.
    NotAwaitingClient {
        /// The byte as read.
        cli_live: u8,
    },
}

/// The outcome of a failed channel operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The channel is broken (sticky); see the reason.
    Broken(BrokenReason),
    /// The peer closed its end (its liveness byte is 0) and nothing more is left to read.
    PeerClosed,
    /// This end was closed by its owner.
    Closed,
    /// Back-pressure: the outgoing buffer has no room for this frame now. Retry after the
    /// peer has read (a flush makes progress and the peer kicks when it reads).
    Full,
    /// Back-pressure: as many requests are in flight as the channel allows.
    TooManyInFlight,
    /// A request is already in flight under this event id.
    DuplicateEventId,
    /// The message cannot be encoded: [`Status::TooLarge`] (over a size limit) or
    /// [`Status::Invalid`] (a path with NUL, an error reply carrying `Ok`, ...).
    Encode(Status),
    /// An all-or-nothing `send`/`recv` larger than the ring can ever hold.
    ExceedsRing,
}

impl From<BrokenReason> for Error {
    fn from(r: BrokenReason) -> Self {
        Error::Broken(r)
    }
}

impl From<PayloadError> for BrokenReason {
    fn from(e: PayloadError) -> Self {
        BrokenReason::Payload(e)
    }
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
