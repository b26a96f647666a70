//! The RPC wire format keyed by eventId, and the vchan-compatible shared ring between the
//! guest (vchan server, RPC caller) and the dom0 shadowdaemon (vchan client, RPC
//! responder).
//!
//! Layers, bottom up, one module each:
//!
//! * [`mem`]: [`SharedMem`], the only way this crate touches memory another domain can
//!   write (no Rust references to it); [`HeapMem`] implements it for tests.
//! * [`layout`]: the `vchan_interface` page of Xen's `io/libxenvchan.h` and where the rings
//!   live.
//! * `ring` (private): one byte ring with hardened index handling.
//! * [`vchan`]: the server and client ends ([`Vchan`]) with libxenvchan's notify bits and
//!   liveness bytes; operations say when to kick ([`Notify`]) instead of calling Xen.
//! * [`limits`], [`op`], [`status`], [`message`]: sizes, op codes, named statuses, and the
//!   payload encoding of each op ([`Request`], [`Reply`]); `wire` (private) holds the
//!   field primitives.
//! * [`frame`]: the 16-byte header and the streaming [`FrameDecoder`].
//! * [`channel`]: [`Caller`] and [`Responder`], messages over a vchan with bounded queues.
//! * [`trace`]: the kernel's event timeline as fixed-size binary records, the bounded ring
//!   that gathers them in the guest, and the checks the daemon makes of a batch.
//! * [`error`]: named reasons for everything that can go wrong.
//!
//! # Wire format
//!
//! A frame is a 16-byte little-endian header `{event_id: u64, op: u16, status: u16, len:
//! u32}` followed by `len` payload bytes, at most [`MAX_PAYLOAD`] (64 KiB − 16) and within
//! the op's bounds. The payloads are documented in [`message`]; larger files move in
//! [`MAX_IO`]-byte chunks addressed by offset.
//!
//! # Hostile peers
//!
//! Shared indices are read once per decision and checked (`prod - cons <= size`, no
//! movement backwards, our own index untouched); each frame is copied into private memory
//! once and validated there. Any violation puts the channel in a sticky broken state with
//! a [`BrokenReason`]; nothing panics, loops on peer data, or allocates more than one
//! bounded frame.
//!
//! # Testing
//!
//! * `cargo test -p rpc`: unit tests per module; `tests/` has each named violation and
//!   status, two ends on two threads, and property tests (round trips, random partial
//!   reads and writes).
//! * `cargo bench -p rpc`: messages through a ring pair with 1/16/256 outstanding, and
//!   kicks per message.
//! * Fuzzing (cargo-fuzz needs nightly flags; `RUSTC_BOOTSTRAP=1` lets stable accept them):
//!   `cd rpc && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none decode -- -max_total_time=N`, and
//!   likewise `ring_consumer`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod channel;
pub mod error;
pub mod frame;
pub mod layout;
pub mod limits;
pub mod mem;
pub mod message;
pub mod op;
mod ring;
pub mod status;
pub mod trace;
pub mod vchan;
mod wire;

pub use channel::{Caller, ChannelStats, Config, Incoming, Responder};
pub use error::{BrokenReason, Error, PayloadError, SetupError};
pub use frame::{encode_reply, encode_request, ByteSource, Frame, FrameDecoder, FrameKind, Header};
pub use layout::{Layout, Placement, Side};
pub use limits::{HEADER_LEN, MAX_DIR_ENTRIES, MAX_FRAME, MAX_IO, MAX_NAME, MAX_PATH, MAX_PAYLOAD};
pub use mem::{HeapMem, SharedMem};
pub use message::{
    DirEntry, DirListBuilder, FileInfo, FileKind, Name, Path, Reply, ReplyBody, Request,
    WRITE_CREATE, WRITE_TRUNCATE,
};
pub use op::Op;
pub use status::Status;
pub use vchan::{Notify, PeerState, Probe, Role, Transfer, Vchan, VchanStats};
