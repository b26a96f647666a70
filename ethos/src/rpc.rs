//! Requests to the dom0 daemon (the shadowdaemon), keyed by the event:
//! each call returns at once; the reply completes the event. A refusal by
//! the daemon is the event status [`Status::Remote`] with its errno
//! ([`crate::Retired::errno`]). A daemon that will not serve this domain at
//! all (its name is refused, or served for another domain) says so, and
//! then every request's event completes [`Status::NotServed`], at once.

use abi::{Call, Status};

use crate::event::Event;
use crate::sys::{self, args, buf};

/// `Ping()`: completes when the daemon answers (empty).
pub fn ping() -> Result<Event, Status> {
    sys::call_event(Call::Ping, args([]))
}

/// `Random(len)`: completes with `len` random bytes from dom0.
pub fn random(len: usize) -> Result<Event, Status> {
    sys::call_event(Call::Random, args([len as u64]))
}

/// `FileRead(path, offset, count)`: completes with up to `count` bytes of
/// the file from `offset`.
pub fn file_read(path: &str, offset: u64, count: usize) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::FileRead, args([p, n, offset, count as u64]))
}

/// `FileWrite(path, offset, data, truncate)`: completes with the number of
/// bytes written (a word); `truncate` cuts the file after them.
pub fn file_write(path: &str, offset: u64, data: &[u8], truncate: bool) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    let (d, dn) = buf(data);
    sys::call_event(
        Call::FileWrite,
        args([p, n, offset, d, dn, u64::from(truncate)]),
    )
}

/// `FileInfo(path)`: completes with a [`FileInfo`] record (bytes; decode
/// with [`FileInfo::parse`]).
pub fn file_info(path: &str) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::FileInfo, args([p, n]))
}

/// `DirList(path, cursor)`: completes with a page of names (bytes; decode
/// with [`DirPage::parse`]); list on from `cursor` + the names seen.
pub fn dir_list(path: &str, cursor: u64) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::DirList, args([p, n, cursor]))
}

/// `DirCreate(path)`: completes empty.
pub fn dir_create(path: &str) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::DirCreate, args([p, n]))
}

/// `Remove(path)`: completes empty.
pub fn remove(path: &str) -> Result<Event, Status> {
    let (p, n) = buf(path.as_bytes());
    sys::call_event(Call::Remove, args([p, n]))
}

/// What [`file_info`] completes with: the fields in the order the ABI
/// lists them, little-endian, packed (23 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The kind (file, directory, ...), as the daemon numbers it.
    pub kind: u8,
    /// Permission bits.
    pub perm: u16,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime_s: i64,
    /// And nanoseconds.
    pub mtime_ns: u32,
}

impl FileInfo {
    /// The record's length.
    pub const LEN: usize = 1 + 2 + 8 + 8 + 4;

    /// Decodes a reply; `None` if it is not [`FileInfo::LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<FileInfo> {
        if b.len() != Self::LEN {
            return None;
        }
        let le = |r: core::ops::Range<usize>| {
            let mut w = [0u8; 8];
            w[..r.len()].copy_from_slice(&b[r]);
            u64::from_le_bytes(w)
        };
        Some(FileInfo {
            kind: b[0],
            perm: le(1..3) as u16,
            size: le(3..11),
            mtime_s: le(11..19) as i64,
            mtime_ns: le(19..23) as u32,
        })
    }
}

/// A page of [`dir_list`]: whether the listing is done, and the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirPage<'a> {
    /// No names after these.
    pub done: bool,
    names: &'a [u8],
}

impl<'a> DirPage<'a> {
    /// Decodes a reply: a done byte (0 or 1), then NUL-terminated names.
    /// `None` for an empty reply, a done byte other than 0 or 1, or a last
    /// name without its NUL.
    pub fn parse(b: &'a [u8]) -> Option<DirPage<'a>> {
        let (&done, names) = b.split_first()?;
        if done > 1 || names.last().is_some_and(|&c| c != 0) {
            return None;
        }
        Some(DirPage {
            done: done == 1,
            names,
        })
    }

    /// The names, as bytes.
    pub fn names(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let names = self.names;
        let body = names.strip_suffix(&[0]).unwrap_or(names);
        body.split(|&c| c == 0)
            .take(if names.is_empty() { 0 } else { usize::MAX })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn file_info_decodes_the_packed_record() {
        let mut b = Vec::new();
        b.push(2u8);
        b.extend_from_slice(&0o644u16.to_le_bytes());
        b.extend_from_slice(&12345u64.to_le_bytes());
        b.extend_from_slice(&(-5i64).to_le_bytes());
        b.extend_from_slice(&999u32.to_le_bytes());
        assert_eq!(
            FileInfo::parse(&b),
            Some(FileInfo {
                kind: 2,
                perm: 0o644,
                size: 12345,
                mtime_s: -5,
                mtime_ns: 999
            })
        );
        assert_eq!(FileInfo::parse(&b[..22]), None);
    }

    #[test]
    fn dir_pages_split_names() {
        let p = DirPage::parse(b"\x01a\0bc\0").unwrap();
        assert!(p.done);
        assert_eq!(p.names().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
        let p = DirPage::parse(b"\x00").unwrap();
        assert!(!p.done);
        assert_eq!(p.names().count(), 0);
        assert_eq!(DirPage::parse(b""), None);
        assert_eq!(DirPage::parse(b"\x02"), None);
        assert_eq!(DirPage::parse(b"\x01abc"), None);
    }
}
