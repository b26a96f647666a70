//! The numbers that bound everything a peer can make this crate hold.
//!
//! A frame is at most [`MAX_FRAME`] bytes (64 KiB), so the receiver allocates at most
//! [`MAX_PAYLOAD`] bytes per message, and only after the header has been validated. Bulk
//! data moves in chunks of at most [`MAX_IO`] bytes: `FileRead` and `FileWrite` carry an
//! offset, so a larger file is read or written in several requests (the guest splits; the
//! daemon never sees a request it cannot answer in one frame). [`MAX_IO`] is 60 KiB, which
//! leaves room for the longest path and the other fields inside one frame.

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 16;
/// Largest frame, header included (64 KiB).
pub const MAX_FRAME: usize = 64 * 1024;
/// Largest payload (64 KiB minus the header).
pub const MAX_PAYLOAD: usize = MAX_FRAME - HEADER_LEN;
/// Longest path in bytes (UTF-8, no NUL).
pub const MAX_PATH: usize = 1024;
/// Longest directory entry name in bytes (Linux's `NAME_MAX`).
pub const MAX_NAME: usize = 255;
/// Most data bytes in one `FileRead`/`FileWrite`/`Random` (60 KiB).
pub const MAX_IO: usize = 60 * 1024;
/// Most entries in one `DirList` reply; more are fetched with a later cursor. Bounds the
/// number of allocations a reply can cause, whatever the names' lengths.
pub const MAX_DIR_ENTRIES: usize = 1024;
