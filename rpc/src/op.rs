//! Op codes, and how long each op's payload may be in each direction.
//!
//! The bounds let the frame decoder reject a bad length from the header alone, before it
//! allocates or reads a byte of payload; the payload decoder then checks the exact
//! structure. Every bound is at most [`MAX_PAYLOAD`].

use core::ops::RangeInclusive;

use crate::limits::{MAX_IO, MAX_PATH, MAX_PAYLOAD};

/// What a request asks for. The wire code is a little-endian `u16`; 0 is not an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum Op {
    /// Liveness and latency probe; no payload either way.
    Ping = 1,
    /// `n` random bytes from dom0.
    Random = 2,
    /// Up to `len` bytes of a file from `offset`.
    FileRead = 3,
    /// Bytes into a file at `offset`.
    FileWrite = 4,
    /// Kind, permissions, size and modification time of a path.
    FileInfo = 5,
    /// Create one directory.
    DirCreate = 6,
    /// Entries of a directory, from a cursor.
    DirList = 7,
    /// Remove a file or an empty directory.
    Remove = 8,
    /// A batch of the kernel's trace records (see [`crate::trace`]), appended to the
    /// guest's timeline.
    Trace = 9,
}

/// Encoded length of a path field: `u16` length + 1..=MAX_PATH bytes.
const PATH: RangeInclusive<usize> = 3..=2 + MAX_PATH;

const fn add(r: &RangeInclusive<usize>, lo: usize, hi: usize) -> RangeInclusive<usize> {
    *r.start() + lo..=*r.end() + hi
}

impl Op {
    /// Every op, in code order.
    pub const ALL: [Op; 9] = [
        Op::Ping,
        Op::Random,
        Op::FileRead,
        Op::FileWrite,
        Op::FileInfo,
        Op::DirCreate,
        Op::DirList,
        Op::Remove,
        Op::Trace,
    ];

    /// The wire code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The op with this wire code, if any.
    pub fn from_code(code: u16) -> Option<Op> {
        Op::ALL.get(usize::from(code).wrapping_sub(1)).copied()
    }

    /// Allowed payload lengths of a request.
    pub fn request_len(self) -> RangeInclusive<usize> {
        match self {
            Op::Ping => 0..=0,
            Op::Random => 4..=4,
            // path, offset u64, len u32
            Op::FileRead => add(&PATH, 12, 12),
            // path, offset u64, flags u8, data u32-length-prefixed
            Op::FileWrite => add(&PATH, 13, 13 + MAX_IO),
            Op::FileInfo | Op::DirCreate | Op::Remove => PATH,
            // path, cursor u32
            Op::DirList => add(&PATH, 4, 4),
            // seq u64, dropped u64, records u32-length-prefixed
            Op::Trace => 20..=20 + MAX_IO,
        }
    }

    /// Allowed payload lengths of a successful reply (an error reply has none).
    pub fn reply_len(self) -> RangeInclusive<usize> {
        match self {
            Op::Ping | Op::DirCreate | Op::Remove | Op::Trace => 0..=0,
            Op::Random | Op::FileRead => 4..=4 + MAX_IO,
            Op::FileWrite => 4..=4,
            // kind u8, perm u16, size u64, mtime s i64, mtime ns u32
            Op::FileInfo => 23..=23,
            // done u8, count u16, entries
            Op::DirList => 3..=MAX_PAYLOAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(usize::from(op.code()), i + 1);
            assert_eq!(Op::from_code(op.code()), Some(*op));
        }
        assert_eq!(Op::from_code(0), None);
        assert_eq!(Op::from_code(10), None);
        assert_eq!(Op::from_code(u16::MAX), None);
    }

    #[test]
    fn every_bound_fits_in_a_frame() {
        for op in Op::ALL {
            assert!(*op.request_len().end() <= MAX_PAYLOAD, "{op:?}");
            assert!(*op.reply_len().end() <= MAX_PAYLOAD, "{op:?}");
            assert!(op.request_len().start() <= op.request_len().end());
        }
    }
}
