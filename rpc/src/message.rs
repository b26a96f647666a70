//! Requests and replies, and the payload encoding of each op.
//!
//! Fields are little-endian; `path` is a `u16` byte length then UTF-8 bytes
//! (1..=[`MAX_PATH`], no NUL); `data` is a `u32` byte length then the bytes
//! (at most [`MAX_IO`]); `name` is a `u16` length then 1..=[`MAX_NAME`] UTF-8 bytes, no
//! `/`, no NUL, not `.` or `..`; `bool` is one byte, 0 or 1.
//!
//! | op | request payload | `Ok` reply payload |
//! |---|---|---|
//! | `Ping` (1) | — | — |
//! | `Random` (2) | `n: u32` (≤ `MAX_IO`) | `data` (exactly `n` bytes) |
//! | `FileRead` (3) | `path, offset: u64, len: u32` (≤ `MAX_IO`) | `data` (≤ `len`; shorter at end of file) |
//! | `FileWrite` (4) | `path, offset: u64, flags: u8, data` | `written: u32` |
//! | `FileInfo` (5) | `path` | `kind: u8, perm: u16, size: u64, mtime_s: i64, mtime_ns: u32` |
//! | `DirCreate` (6) | `path` | — |
//! | `DirList` (7) | `path, cursor: u32` | `done: bool, count: u16, count × (kind: u8, name)` |
//! | `Remove` (8) | `path` | — |
//! | `Trace` (9) | `seq: u64, dropped: u64, data` (whole [`crate::trace`] records) | — |
//!
//! `FileWrite` flags: bit 0 `CREATE` (create the file if missing), bit 1 `TRUNCATE`
//! (truncate it to 0 before writing); other bits must be 0. `kind`: 1 file, 2 directory,
//! 3 symbolic link, 4 other. `perm`: the low 12 mode bits. `DirList` returns entries from
//! index `cursor` of the daemon's listing (in its order, without `.` and `..`); `done` says
//! none are left, otherwise the next request uses `cursor + count`. A reply with a status
//! other than `Ok` has no payload.
//!
//! Paths are relative to the guest's share in dom0; the daemon decides what they may name
//! (and answers [`Status::Invalid`] or [`Status::PermissionDenied`] otherwise). The
//! encoding rules here are structural only: a payload that breaks them is a protocol
//! violation ([`PayloadError`]), which the encoder never produces.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::PayloadError;
use crate::limits::{MAX_DIR_ENTRIES, MAX_IO, MAX_NAME, MAX_PATH, MAX_PAYLOAD};
use crate::op::Op;
use crate::status::Status;
use crate::wire::{Put, Take};

impl PayloadError {
    /// The status a local caller gets when it tries to *send* something that breaks this
    /// rule: [`Status::TooLarge`] for size limits, [`Status::Invalid`] otherwise.
    pub fn status(self) -> Status {
        match self {
            PayloadError::PathTooLong
            | PayloadError::DataTooLong
            | PayloadError::TooManyEntries => Status::TooLarge,
            _ => Status::Invalid,
        }
    }
}

/// A path: 1..=[`MAX_PATH`] bytes of UTF-8 without NUL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path(String);

impl Path {
    /// Validates a path.
    pub fn new(s: impl Into<String>) -> Result<Path, PayloadError> {
        let s = s.into();
        if s.is_empty() {
            Err(PayloadError::PathEmpty)
        } else if s.len() > MAX_PATH {
            Err(PayloadError::PathTooLong)
        } else if s.as_bytes().contains(&0) {
            Err(PayloadError::PathHasNul)
        } else {
            Ok(Path(s))
        }
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn put(&self, p: &mut Put<'_>) {
        p.str16(&self.0);
    }

    fn take(t: &mut Take<'_>) -> Result<Path, PayloadError> {
        Path::new(t.str16()?)
    }
}

/// A directory entry name: 1..=[`MAX_NAME`] bytes of UTF-8, no `/`, no NUL, not `.`/`..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Validates a name.
    pub fn new(s: impl Into<String>) -> Result<Name, PayloadError> {
        let s = s.into();
        let bad = s.is_empty()
            || s.len() > MAX_NAME
            || s == "."
            || s == ".."
            || s.bytes().any(|b| b == b'/' || b == 0);
        if bad {
            Err(PayloadError::NameInvalid)
        } else {
            Ok(Name(s))
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FileKind {
    /// A regular file.
    File = 1,
    /// A directory.
    Dir = 2,
    /// A symbolic link.
    Symlink = 3,
    /// Anything else (device, socket, fifo).
    Other = 4,
}

impl FileKind {
    fn from_code(b: u8) -> Result<FileKind, PayloadError> {
        match b {
            1 => Ok(FileKind::File),
            2 => Ok(FileKind::Dir),
            3 => Ok(FileKind::Symlink),
            4 => Ok(FileKind::Other),
            _ => Err(PayloadError::BadFileKind),
        }
    }
}

/// The `FileInfo` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// What the path names.
    pub kind: FileKind,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u16,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime_s: i64,
    /// Modification time, nanoseconds within the second (`< 1_000_000_000`).
    pub mtime_ns: u32,
}

/// One `DirList` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// What the entry is.
    pub kind: FileKind,
    /// Its name within the directory.
    pub name: Name,
}

impl DirEntry {
    /// Bytes this entry takes in a `DirList` reply.
    pub fn encoded_len(&self) -> usize {
        1 + 2 + self.name.0.len()
    }
}

/// `FileWrite` flag: create the file if it does not exist.
pub const WRITE_CREATE: u8 = 0x1;
/// `FileWrite` flag: truncate the file to 0 bytes before writing.
pub const WRITE_TRUNCATE: u8 = 0x2;
const WRITE_FLAGS: u8 = WRITE_CREATE | WRITE_TRUNCATE;

/// A request, as the guest sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Liveness and latency probe.
    Ping,
    /// `len` random bytes (at most [`MAX_IO`]).
    Random {
        /// Bytes wanted.
        len: u32,
    },
    /// Up to `len` bytes (at most [`MAX_IO`]) of a file from `offset`.
    FileRead {
        /// The file.
        path: Path,
        /// Byte offset to read from.
        offset: u64,
        /// Most bytes wanted.
        len: u32,
    },
    /// Writes `data` (at most [`MAX_IO`] bytes) into a file at `offset`.
    FileWrite {
        /// The file.
        path: Path,
        /// Byte offset to write at.
        offset: u64,
        /// [`WRITE_CREATE`] | [`WRITE_TRUNCATE`].
        flags: u8,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Kind, permissions, size and mtime of a path.
    FileInfo {
        /// The path.
        path: Path,
    },
    /// Creates a directory (its parent must exist).
    DirCreate {
        /// The new directory.
        path: Path,
    },
    /// Entries of a directory, starting at index `cursor`.
    DirList {
        /// The directory.
        path: Path,
        /// Index of the first entry wanted (0 to start).
        cursor: u32,
    },
    /// Removes a file or an empty directory.
    Remove {
        /// The path.
        path: Path,
    },
    /// Appends a batch of the kernel's trace records to the guest's timeline
    /// ([`crate::trace`]).
    Trace {
        /// The batch's number in this boot, from 0: the daemon appends a batch once,
        /// starts the timeline afresh at 0, and answers one it already has without
        /// appending it again.
        seq: u64,
        /// Records the guest has dropped since boot (its ring was full, or a batch never
        /// reached the daemon).
        dropped: u64,
        /// The records, [`crate::trace::RECORD_BYTES`] each (at most [`MAX_IO`] bytes).
        records: Vec<u8>,
    },
}

fn check_records(n: usize) -> Result<(), PayloadError> {
    check_io(n)?;
    if !n.is_multiple_of(crate::trace::RECORD_BYTES) {
        Err(PayloadError::PartialRecord)
    } else {
        Ok(())
    }
}

fn check_io(n: usize) -> Result<(), PayloadError> {
    if n > MAX_IO {
        Err(PayloadError::DataTooLong)
    } else {
        Ok(())
    }
}

impl Request {
    /// The op code of this request.
    pub fn op(&self) -> Op {
        match self {
            Request::Ping => Op::Ping,
            Request::Random { .. } => Op::Random,
            Request::FileRead { .. } => Op::FileRead,
            Request::FileWrite { .. } => Op::FileWrite,
            Request::FileInfo { .. } => Op::FileInfo,
            Request::DirCreate { .. } => Op::DirCreate,
            Request::DirList { .. } => Op::DirList,
            Request::Remove { .. } => Op::Remove,
            Request::Trace { .. } => Op::Trace,
        }
    }

    /// How many data bytes the reply may carry (`Random`: exactly this many; `FileRead`:
    /// at most this many); 0 for other ops.
    pub fn reply_data_limit(&self) -> u32 {
        match self {
            Request::Random { len } | Request::FileRead { len, .. } => *len,
            _ => 0,
        }
    }

    /// Appends the payload; refuses what the decoder would reject.
    pub fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        let mut p = Put(out);
        match self {
            Request::Ping => {}
            Request::Random { len } => {
                check_io(*len as usize)?;
                p.u32(*len);
            }
            Request::FileRead { path, offset, len } => {
                check_io(*len as usize)?;
                path.put(&mut p);
                p.u64(*offset);
                p.u32(*len);
            }
            Request::FileWrite {
                path,
                offset,
                flags,
                data,
            } => {
                check_io(data.len())?;
                if flags & !WRITE_FLAGS != 0 {
                    return Err(PayloadError::BadFlags);
                }
                path.put(&mut p);
                p.u64(*offset);
                p.u8(*flags);
                p.bytes32(data);
            }
            Request::FileInfo { path } | Request::DirCreate { path } | Request::Remove { path } => {
                path.put(&mut p)
            }
            Request::DirList { path, cursor } => {
                path.put(&mut p);
                p.u32(*cursor);
            }
            Request::Trace {
                seq,
                dropped,
                records,
            } => {
                check_records(records.len())?;
                p.u64(*seq);
                p.u64(*dropped);
                p.bytes32(records);
            }
        }
        Ok(())
    }

    /// Parses a request payload (already in private memory) for `op`.
    pub fn decode_payload(op: Op, payload: &[u8]) -> Result<Request, PayloadError> {
        let mut t = Take::new(payload);
        let req = match op {
            Op::Ping => Request::Ping,
            Op::Random => {
                let len = t.u32()?;
                check_io(len as usize)?;
                Request::Random { len }
            }
            Op::FileRead => {
                let path = Path::take(&mut t)?;
                let offset = t.u64()?;
                let len = t.u32()?;
                check_io(len as usize)?;
                Request::FileRead { path, offset, len }
            }
            Op::FileWrite => {
                let path = Path::take(&mut t)?;
                let offset = t.u64()?;
                let flags = t.u8()?;
                if flags & !WRITE_FLAGS != 0 {
                    return Err(PayloadError::BadFlags);
                }
                let data = t.bytes32(MAX_IO)?.to_vec();
                Request::FileWrite {
                    path,
                    offset,
                    flags,
                    data,
                }
            }
            Op::FileInfo => Request::FileInfo {
                path: Path::take(&mut t)?,
            },
            Op::DirCreate => Request::DirCreate {
                path: Path::take(&mut t)?,
            },
            Op::DirList => Request::DirList {
                path: Path::take(&mut t)?,
                cursor: t.u32()?,
            },
            Op::Remove => Request::Remove {
                path: Path::take(&mut t)?,
            },
            Op::Trace => {
                let seq = t.u64()?;
                let dropped = t.u64()?;
                let records = t.bytes32(MAX_IO)?;
                check_records(records.len())?;
                Request::Trace {
                    seq,
                    dropped,
                    records: records.to_vec(),
                }
            }
        };
        t.finish()?;
        Ok(req)
    }
}

/// The result of a successful request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyBody {
    /// `Ping` done.
    Ping,
    /// The random bytes.
    Random(Vec<u8>),
    /// The bytes read (fewer than asked at the end of the file).
    FileRead(Vec<u8>),
    /// Bytes written.
    FileWrite {
        /// How many.
        written: u32,
    },
    /// What `FileInfo` found.
    FileInfo(FileInfo),
    /// `DirCreate` done.
    DirCreate,
    /// A slice of a directory listing.
    DirList {
        /// The entries, at most [`MAX_DIR_ENTRIES`].
        entries: Vec<DirEntry>,
        /// No entries are left after these.
        done: bool,
    },
    /// `Remove` done.
    Remove,
    /// The `Trace` batch is in the timeline (or was already).
    Trace,
}

impl ReplyBody {
    /// The op this body answers.
    pub fn op(&self) -> Op {
        match self {
            ReplyBody::Ping => Op::Ping,
            ReplyBody::Random(_) => Op::Random,
            ReplyBody::FileRead(_) => Op::FileRead,
            ReplyBody::FileWrite { .. } => Op::FileWrite,
            ReplyBody::FileInfo(_) => Op::FileInfo,
            ReplyBody::DirCreate => Op::DirCreate,
            ReplyBody::DirList { .. } => Op::DirList,
            ReplyBody::Remove => Op::Remove,
            ReplyBody::Trace => Op::Trace,
        }
    }

    /// Data bytes carried (`Random`, `FileRead`), else 0.
    pub fn data_len(&self) -> usize {
        match self {
            ReplyBody::Random(d) | ReplyBody::FileRead(d) => d.len(),
            _ => 0,
        }
    }

    /// Appends the payload; refuses what the decoder would reject.
    pub fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        let mut p = Put(out);
        match self {
            ReplyBody::Ping | ReplyBody::DirCreate | ReplyBody::Remove | ReplyBody::Trace => {}
            ReplyBody::Random(d) | ReplyBody::FileRead(d) => {
                check_io(d.len())?;
                p.bytes32(d);
            }
            ReplyBody::FileWrite { written } => p.u32(*written),
            ReplyBody::FileInfo(i) => {
                if i.perm > 0o7777 {
                    return Err(PayloadError::BadPermissions);
                }
                if i.mtime_ns >= 1_000_000_000 {
                    return Err(PayloadError::BadNanoseconds);
                }
                p.u8(i.kind as u8);
                p.u16(i.perm);
                p.u64(i.size);
                p.i64(i.mtime_s);
                p.u32(i.mtime_ns);
            }
            ReplyBody::DirList { entries, done } => {
                if entries.len() > MAX_DIR_ENTRIES
                    || 3 + entries.iter().map(DirEntry::encoded_len).sum::<usize>() > MAX_PAYLOAD
                {
                    return Err(PayloadError::TooManyEntries);
                }
                p.u8(u8::from(*done));
                p.u16(entries.len() as u16);
                for e in entries {
                    p.u8(e.kind as u8);
                    p.str16(&e.name.0);
                }
            }
        }
        Ok(())
    }

    /// Parses a successful reply's payload (already in private memory) for `op`.
    pub fn decode_payload(op: Op, payload: &[u8]) -> Result<ReplyBody, PayloadError> {
        let mut t = Take::new(payload);
        let body = match op {
            Op::Ping => ReplyBody::Ping,
            Op::DirCreate => ReplyBody::DirCreate,
            Op::Remove => ReplyBody::Remove,
            Op::Trace => ReplyBody::Trace,
            Op::Random => ReplyBody::Random(t.bytes32(MAX_IO)?.to_vec()),
            Op::FileRead => ReplyBody::FileRead(t.bytes32(MAX_IO)?.to_vec()),
            Op::FileWrite => ReplyBody::FileWrite { written: t.u32()? },
            Op::FileInfo => {
                let kind = FileKind::from_code(t.u8()?)?;
                let perm = t.u16()?;
                if perm > 0o7777 {
                    return Err(PayloadError::BadPermissions);
                }
                let size = t.u64()?;
                let mtime_s = t.i64()?;
                let mtime_ns = t.u32()?;
                if mtime_ns >= 1_000_000_000 {
                    return Err(PayloadError::BadNanoseconds);
                }
                ReplyBody::FileInfo(FileInfo {
                    kind,
                    perm,
                    size,
                    mtime_s,
                    mtime_ns,
                })
            }
            Op::DirList => {
                let done = t.bool()?;
                let count = usize::from(t.u16()?);
                if count > MAX_DIR_ENTRIES {
                    return Err(PayloadError::TooManyEntries);
                }
                // Each entry takes at least 4 bytes, so `count` is also bounded by the
                // payload; reserve only what the payload can really hold.
                let mut entries = Vec::with_capacity(count.min(payload.len() / 4));
                for _ in 0..count {
                    let kind = FileKind::from_code(t.u8()?)?;
                    let name = Name::new(t.str16()?)?;
                    entries.push(DirEntry { kind, name });
                }
                ReplyBody::DirList { entries, done }
            }
        };
        t.finish()?;
        Ok(body)
    }
}

/// A reply, as the daemon sends it: the event id of the request, its op, and either a
/// result or a status other than [`Status::Ok`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The event id the request carried.
    pub event_id: u64,
    /// The request's op.
    pub op: Op,
    /// The result, or why there is none.
    pub result: Result<ReplyBody, Status>,
}

impl Reply {
    /// A successful reply (its op is the body's).
    pub fn ok(event_id: u64, body: ReplyBody) -> Reply {
        Reply {
            event_id,
            op: body.op(),
            result: Ok(body),
        }
    }

    /// A failed reply.
    pub fn err(event_id: u64, op: Op, status: Status) -> Reply {
        Reply {
            event_id,
            op,
            result: Err(status),
        }
    }
}

/// Builds a `DirList` reply that is sure to fit in one frame: the daemon pushes entries
/// until one is refused, then finishes with `done = false` and the guest asks again from
/// `cursor + count`.
#[derive(Clone, Debug, Default)]
pub struct DirListBuilder {
    entries: Vec<DirEntry>,
    bytes: usize,
}

impl DirListBuilder {
    /// An empty listing.
    pub fn new() -> Self {
        DirListBuilder::default()
    }

    /// Adds an entry if it fits (by count and bytes); gives it back otherwise.
    pub fn try_push(&mut self, entry: DirEntry) -> Result<(), DirEntry> {
        let len = entry.encoded_len();
        if self.entries.len() >= MAX_DIR_ENTRIES || 3 + self.bytes + len > MAX_PAYLOAD {
            return Err(entry);
        }
        self.bytes += len;
        self.entries.push(entry);
        Ok(())
    }

    /// Entries so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The reply body; `done` says whether the listing ends here.
    pub fn finish(self, done: bool) -> ReplyBody {
        ReplyBody::DirList {
            entries: self.entries,
            done,
        }
    }
}
