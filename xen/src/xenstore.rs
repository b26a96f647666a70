//! The xenstore wire protocol (`xen/io/xs_wire.h`) and the shared ring that
//! carries it, client side.
//!
//! The ring page is written by xenstored in dom0, indices included. The
//! indices we own (`req_prod` of the requests we write, `rsp_cons` of the
//! replies we read) are kept privately and only published, never read back:
//! a peer that rewrites them cannot make us send bytes again or skip any.
//! Of the peer's indices (`req_cons`, `rsp_prod`), each is read once per
//! step and checked against ours: at most a ring apart, never moving
//! backwards. Every reply is copied into private memory before it is
//! parsed, and a bad index, a malformed header or a length past the
//! 4096-byte payload limit breaks the connection (named reason) instead of
//! being trusted. Nothing here allocates more than one maximal message.

use alloc::vec::Vec;
use core::fmt;

pub const RING_SIZE: usize = 1024;
/// `XENSTORE_PAYLOAD_MAX`: no message body may be longer.
pub const PAYLOAD_MAX: usize = 4096;
pub const HEADER_LEN: usize = 16;

/// Offsets in `struct xenstore_domain_interface`.
pub mod layout {
    pub const REQ: usize = 0;
    pub const RSP: usize = 1024;
    pub const REQ_CONS: usize = 2048;
    pub const REQ_PROD: usize = 2052;
    pub const RSP_CONS: usize = 2056;
    pub const RSP_PROD: usize = 2060;
}

/// Message types (`enum xsd_sockmsg_type`) this client sends or accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MsgType {
    Directory = 1,
    Read = 2,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
}

impl MsgType {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => MsgType::Directory,
            2 => MsgType::Read,
            4 => MsgType::Watch,
            5 => MsgType::Unwatch,
            6 => MsgType::TransactionStart,
            7 => MsgType::TransactionEnd,
            11 => MsgType::Write,
            12 => MsgType::Mkdir,
            13 => MsgType::Rm,
            14 => MsgType::SetPerms,
            15 => MsgType::WatchEvent,
            16 => MsgType::Error,
            _ => return None,
        })
    }
}

/// A request, borrowing its arguments.
#[derive(Clone, Copy, Debug)]
pub enum Request<'a> {
    Read(&'a str),
    Write(&'a str, &'a [u8]),
    Directory(&'a str),
    Mkdir(&'a str),
    Rm(&'a str),
    Watch {
        path: &'a str,
        token: &'a str,
    },
    Unwatch {
        path: &'a str,
        token: &'a str,
    },
    TransactionStart,
    TransactionEnd {
        commit: bool,
    },
    /// Sets a node's permissions: the first entry names the owner and what
    /// everyone else may do (`n5`: owner 5, others nothing), the rest grant
    /// domains access (`r0`: dom0 may read).
    SetPerms {
        path: &'a str,
        perms: &'a [&'a str],
    },
}

/// Why a request could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The body would pass `PAYLOAD_MAX`.
    TooLarge,
    /// A path or token is empty or holds a NUL byte.
    BadString,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::TooLarge => "xenstore request larger than 4096 bytes",
            EncodeError::BadString => "xenstore path or token empty or holding a NUL",
        })
    }
}

fn check_str(s: &str) -> Result<&[u8], EncodeError> {
    if s.is_empty() || s.as_bytes().contains(&0) {
        Err(EncodeError::BadString)
    } else {
        Ok(s.as_bytes())
    }
}

impl Request<'_> {
    pub fn msg_type(&self) -> MsgType {
        match self {
            Request::Read(_) => MsgType::Read,
            Request::Write(..) => MsgType::Write,
            Request::Directory(_) => MsgType::Directory,
            Request::Mkdir(_) => MsgType::Mkdir,
            Request::Rm(_) => MsgType::Rm,
            Request::Watch { .. } => MsgType::Watch,
            Request::Unwatch { .. } => MsgType::Unwatch,
            Request::TransactionStart => MsgType::TransactionStart,
            Request::TransactionEnd { .. } => MsgType::TransactionEnd,
            Request::SetPerms { .. } => MsgType::SetPerms,
        }
    }

    /// Appends header and body to `out`.
    pub fn encode(&self, req_id: u32, tx_id: u32, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // Body pieces; strings are NUL-terminated except a write's value.
        let mut parts: [&[u8]; 4] = [&[]; 4];
        match *self {
            Request::Read(p) | Request::Directory(p) | Request::Mkdir(p) | Request::Rm(p) => {
                parts = [check_str(p)?, b"\0", &[], &[]];
            }
            Request::Write(p, value) => parts = [check_str(p)?, b"\0", value, &[]],
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                parts = [check_str(path)?, b"\0", check_str(token)?, b"\0"];
            }
            Request::TransactionStart => parts[0] = b"\0",
            Request::TransactionEnd { commit } => parts[0] = if commit { b"T\0" } else { b"F\0" },
            Request::SetPerms { path, perms } => {
                let strings = core::iter::once(path).chain(perms.iter().copied());
                return encode_strings(MsgType::SetPerms, req_id, tx_id, strings, out);
            }
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > PAYLOAD_MAX {
            return Err(EncodeError::TooLarge);
        }
        out.try_reserve(HEADER_LEN + len)
            .map_err(|_| EncodeError::TooLarge)?;
        for word in [self.msg_type() as u32, req_id, tx_id, len as u32] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for p in parts {
            out.extend_from_slice(p);
        }
        Ok(())
    }
}

/// Encodes a message whose body is NUL-terminated strings.
fn encode_strings<'s>(
    kind: MsgType,
    req_id: u32,
    tx_id: u32,
    strings: impl Iterator<Item = &'s str> + Clone,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut len = 0;
    for st in strings.clone() {
        len += check_str(st)?.len() + 1;
    }
    if len > PAYLOAD_MAX {
        return Err(EncodeError::TooLarge);
    }
    out.try_reserve(HEADER_LEN + len)
        .map_err(|_| EncodeError::TooLarge)?;
    for word in [kind as u32, req_id, tx_id, len as u32] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for st in strings {
        out.extend_from_slice(st.as_bytes());
        out.push(0);
    }
    Ok(())
}

/// A whole message from xenstored, copied out of the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: MsgType,
    pub req_id: u32,
    pub tx_id: u32,
    pub body: Vec<u8>,
}

/// What a reply means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The request succeeded; the body (without a trailing NUL for
    /// string-valued replies other than `Read`).
    Ok(Vec<u8>),
    /// xenstored refused it: the errno it named.
    Error(Errno),
}

/// Errors xenstored names in `XS_ERROR` replies (`xsd_errors`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    Inval,
    Acces,
    Exist,
    IsDir,
    NoEnt,
    NoMem,
    NoSpc,
    Io,
    NotEmpty,
    NoSys,
    RoFs,
    Busy,
    Again,
    IsConn,
    TooBig,
    Perm,
    /// An error name this client does not know.
    Other,
}

impl Errno {
    fn from_name(name: &[u8]) -> Errno {
        match name {
            b"EINVAL" => Errno::Inval,
            b"EACCES" => Errno::Acces,
            b"EEXIST" => Errno::Exist,
            b"EISDIR" => Errno::IsDir,
            b"ENOENT" => Errno::NoEnt,
            b"ENOMEM" => Errno::NoMem,
            b"ENOSPC" => Errno::NoSpc,
            b"EIO" => Errno::Io,
            b"ENOTEMPTY" => Errno::NotEmpty,
            b"ENOSYS" => Errno::NoSys,
            b"EROFS" => Errno::RoFs,
            b"EBUSY" => Errno::Busy,
            b"EAGAIN" => Errno::Again,
            b"EISCONN" => Errno::IsConn,
            b"E2BIG" => Errno::TooBig,
            b"EPERM" => Errno::Perm,
            _ => Errno::Other,
        }
    }

    /// The Linux errno number (what `events::Status::Remote` carries).
    pub const fn number(self) -> u32 {
        match self {
            Errno::Perm => 1,
            Errno::NoEnt => 2,
            Errno::Io => 5,
            Errno::TooBig => 7,
            Errno::Again => 11,
            Errno::NoMem => 12,
            Errno::Acces => 13,
            Errno::Busy => 16,
            Errno::Exist => 17,
            Errno::IsDir => 21,
            Errno::Inval => 22,
            Errno::NoSpc => 28,
            Errno::RoFs => 30,
            Errno::NoSys => 38,
            Errno::NotEmpty => 39,
            Errno::IsConn => 106,
            Errno::Other => 255,
        }
    }
}

impl Message {
    /// Interprets the message as the reply to a request.
    pub fn reply(&self) -> Reply {
        let trimmed = self.body.strip_suffix(b"\0").unwrap_or(&self.body);
        match self.kind {
            MsgType::Error => Reply::Error(Errno::from_name(trimmed)),
            // A read returns the value exactly as written.
            MsgType::Read => Reply::Ok(self.body.clone()),
            _ => Reply::Ok(trimmed.to_vec()),
        }
    }

    /// For a watch event: `(path, token)`.
    pub fn watch_event(&self) -> Option<(&[u8], &[u8])> {
        if self.kind != MsgType::WatchEvent {
            return None;
        }
        let mut parts = self.body.split(|&b| b == 0);
        let path = parts.next()?;
        let token = parts.next()?;
        (!path.is_empty()).then_some((path, token))
    }
}

/// Splits a directory listing (NUL-separated names) into names.
pub fn directory_entries(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == 0).filter(|n| !n.is_empty())
}

/// Parses the decimal transaction id of a `TransactionStart` reply.
pub fn parse_tx_id(body: &[u8]) -> Option<u32> {
    let s = core::str::from_utf8(body).ok()?;
    s.parse().ok().filter(|&id| id != 0)
}

/// Access to the shared ring page (atomics/volatile in the kernel).
pub trait StoreMemory {
    fn load_u32_acquire(&self, offset: usize) -> u32;
    fn store_u32_release(&self, offset: usize, value: u32);
    fn load_u8(&self, offset: usize) -> u8;
    fn store_u8(&self, offset: usize, value: u8);
}

/// Why the connection to xenstored was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// A producer and its consumer are more than a ring apart, or the
    /// consumer is ahead.
    BadIndex { prod: u32, cons: u32 },
    /// The peer's index moved backwards (from `was` to `now`).
    IndexMovedBack { was: u32, now: u32 },
    /// A reply header named a type this client does not know.
    UnknownType(u32),
    /// A reply header claimed a body longer than `PAYLOAD_MAX`.
    TooLong(u32),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::BadIndex { prod, cons } => {
                write!(f, "ring index out of range (prod {prod}, cons {cons})")
            }
            Broken::IndexMovedBack { was, now } => {
                write!(f, "ring index moved backwards (from {was} to {now})")
            }
            Broken::UnknownType(t) => write!(f, "reply of unknown type {t}"),
            Broken::TooLong(n) => write!(f, "reply body of {n} bytes passes the 4096-byte limit"),
        }
    }
}

/// The client end of the store ring: writes requests, assembles replies.
pub struct StoreRing<M> {
    mem: M,
    /// Our producer index of the request ring: published, never read back.
    req_prod: u32,
    /// xenstored's consumer index of the request ring, as last checked.
    req_cons: u32,
    /// Our consumer index of the reply ring: published, never read back.
    /// Every read takes all there is, so it is also xenstored's producer
    /// index as last checked.
    rsp_cons: u32,
    /// Bytes of the reply being assembled (header then body), private.
    partial: Vec<u8>,
    broken: Option<Broken>,
}

impl<M: StoreMemory> StoreRing<M> {
    /// Starts from the indices in the page, read once: the domain builder
    /// (or an earlier kernel) may have left the rings anywhere. From then on
    /// only the peer's are read.
    pub fn new(mem: M) -> Self {
        let req_prod = mem.load_u32_acquire(layout::REQ_PROD);
        let req_cons = mem.load_u32_acquire(layout::REQ_CONS);
        let rsp_cons = mem.load_u32_acquire(layout::RSP_CONS);
        StoreRing {
            mem,
            req_prod,
            req_cons,
            rsp_cons,
            partial: Vec::new(),
            broken: None,
        }
    }

    pub fn broken(&self) -> Option<Broken> {
        self.broken
    }

    fn fail(&mut self, why: Broken) -> Broken {
        self.broken = Some(why);
        why
    }

    /// xenstored's consumer index of the request ring, checked: not more
    /// than a ring behind our producer, not past it, not moving backwards.
    fn peer_req_cons(&mut self) -> Result<u32, Broken> {
        let cons = self.mem.load_u32_acquire(layout::REQ_CONS);
        let prod = self.req_prod;
        if prod.wrapping_sub(cons) as usize > RING_SIZE {
            return Err(self.fail(Broken::BadIndex { prod, cons }));
        }
        if cons.wrapping_sub(self.req_cons) > prod.wrapping_sub(self.req_cons) {
            let was = self.req_cons;
            return Err(self.fail(Broken::IndexMovedBack { was, now: cons }));
        }
        self.req_cons = cons;
        Ok(cons)
    }

    /// xenstored's producer index of the reply ring, checked: not more than
    /// a ring ahead of our consumer, not behind it.
    fn peer_rsp_prod(&mut self) -> Result<u32, Broken> {
        let prod = self.mem.load_u32_acquire(layout::RSP_PROD);
        let cons = self.rsp_cons;
        if prod.wrapping_sub(cons) as usize > RING_SIZE {
            // Our consumer index is where its producer was last seen.
            let why = if cons.wrapping_sub(prod) as usize <= RING_SIZE {
                Broken::IndexMovedBack {
                    was: cons,
                    now: prod,
                }
            } else {
                Broken::BadIndex { prod, cons }
            };
            return Err(self.fail(why));
        }
        Ok(prod)
    }

    /// Writes as much of `bytes` as fits; returns how many were written.
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, Broken> {
        if let Some(b) = self.broken {
            return Err(b);
        }
        let cons = self.peer_req_cons()?;
        let prod = self.req_prod;
        let used = prod.wrapping_sub(cons) as usize;
        let n = (RING_SIZE - used).min(bytes.len());
        for (i, &b) in bytes[..n].iter().enumerate() {
            self.mem.store_u8(
                layout::REQ + (prod.wrapping_add(i as u32) as usize % RING_SIZE),
                b,
            );
        }
        if n > 0 {
            self.req_prod = prod.wrapping_add(n as u32);
            self.mem.store_u32_release(layout::REQ_PROD, self.req_prod);
        }
        Ok(n)
    }

    /// Takes every byte xenstored produced and hands each completed message
    /// to `on_message`. Returns whether any byte was consumed (the peer
    /// should then be notified: there is space again).
    pub fn read(&mut self, mut on_message: impl FnMut(Message)) -> Result<bool, Broken> {
        if let Some(b) = self.broken {
            return Err(b);
        }
        let prod = self.peer_rsp_prod()?;
        let cons = self.rsp_cons;
        let available = prod.wrapping_sub(cons) as usize;
        let mut taken = 0;
        while taken < available {
            let want = self.bytes_wanted()?;
            let n = want.min(available - taken);
            for i in 0..n {
                let idx = cons.wrapping_add((taken + i) as u32) as usize % RING_SIZE;
                self.partial.push(self.mem.load_u8(layout::RSP + idx));
            }
            taken += n;
            if self.bytes_wanted()? == 0 {
                let header = &self.partial[..HEADER_LEN];
                let word = |i: usize| {
                    u32::from_le_bytes(header[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]))
                };
                let kind = MsgType::from_u32(word(0)).ok_or(Broken::UnknownType(word(0)))?;
                let msg = Message {
                    kind,
                    req_id: word(1),
                    tx_id: word(2),
                    body: self.partial.split_off(HEADER_LEN),
                };
                self.partial.clear();
                on_message(msg);
            }
        }
        if taken > 0 {
            self.rsp_cons = cons.wrapping_add(taken as u32);
            self.mem.store_u32_release(layout::RSP_CONS, self.rsp_cons);
        }
        Ok(taken > 0)
    }

    /// How many more bytes the message being assembled needs (0: complete).
    /// Validates the header as soon as it is whole.
    fn bytes_wanted(&mut self) -> Result<usize, Broken> {
        if self.partial.len() < HEADER_LEN {
            return Ok(HEADER_LEN - self.partial.len());
        }
        let h = &self.partial[..HEADER_LEN];
        let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let len = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        if MsgType::from_u32(kind).is_none() {
            return Err(self.fail(Broken::UnknownType(kind)));
        }
        if len as usize > PAYLOAD_MAX {
            return Err(self.fail(Broken::TooLong(len)));
        }
        Ok(HEADER_LEN + len as usize - self.partial.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use core::cell::RefCell;
    use std::vec;

    /// A ring page in ordinary memory.
    struct Page(RefCell<std::vec::Vec<u8>>);

    impl Page {
        fn new() -> Self {
            Page(RefCell::new(vec![0; 4096]))
        }
        fn u32_at(&self, off: usize) -> u32 {
            let b = self.0.borrow();
            u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
        }
        fn set_u32(&self, off: usize, v: u32) {
            self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        /// xenstored's side: put reply bytes into the rsp ring.
        fn server_send(&self, bytes: &[u8]) {
            let prod = self.u32_at(layout::RSP_PROD);
            for (i, &b) in bytes.iter().enumerate() {
                self.0.borrow_mut()[layout::RSP + (prod as usize + i) % RING_SIZE] = b;
            }
            self.set_u32(layout::RSP_PROD, prod.wrapping_add(bytes.len() as u32));
        }
        /// xenstored's side: take request bytes.
        fn server_take(&self) -> std::vec::Vec<u8> {
            let (cons, prod) = (self.u32_at(layout::REQ_CONS), self.u32_at(layout::REQ_PROD));
            let n = prod.wrapping_sub(cons);
            let out = (0..n)
                .map(|i| self.0.borrow()[layout::REQ + cons.wrapping_add(i) as usize % RING_SIZE])
                .collect();
            self.set_u32(layout::REQ_CONS, prod);
            out
        }
    }

    impl StoreMemory for &Page {
        fn load_u32_acquire(&self, offset: usize) -> u32 {
            self.u32_at(offset)
        }
        fn store_u32_release(&self, offset: usize, value: u32) {
            self.set_u32(offset, value)
        }
        fn load_u8(&self, offset: usize) -> u8 {
            self.0.borrow()[offset]
        }
        fn store_u8(&self, offset: usize, value: u8) {
            self.0.borrow_mut()[offset] = value
        }
    }

    fn msg(kind: u32, req_id: u32, body: &[u8]) -> std::vec::Vec<u8> {
        let mut v = std::vec::Vec::new();
        for w in [kind, req_id, 0, body.len() as u32] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn encodes_requests_like_xs_wire() {
        let mut out = std::vec::Vec::new();
        Request::Write("data/x", b"hi")
            .encode(7, 3, &mut out)
            .unwrap();
        assert_eq!(
            out,
            msg(11, 7, b"data/x\0hi")
                .iter()
                .enumerate()
                .map(|(i, &b)| if i == 8 { 3 } else { b })
                .collect::<std::vec::Vec<_>>()
        );
        out.clear();
        Request::Watch {
            path: "a",
            token: "t1",
        }
        .encode(1, 0, &mut out)
        .unwrap();
        assert_eq!(&out[16..], b"a\0t1\0");
        out.clear();
        Request::TransactionEnd { commit: false }
            .encode(1, 9, &mut out)
            .unwrap();
        assert_eq!(&out[16..], b"F\0");
        assert_eq!(
            Request::Read("a\0b").encode(1, 0, &mut out),
            Err(EncodeError::BadString)
        );
        assert_eq!(
            Request::Read("").encode(1, 0, &mut out),
            Err(EncodeError::BadString)
        );
        let big = vec![b'x'; PAYLOAD_MAX];
        assert_eq!(
            Request::Write("p", &big).encode(1, 0, &mut out),
            Err(EncodeError::TooLarge)
        );
    }

    #[test]
    fn encodes_set_perms() {
        let mut out = std::vec::Vec::new();
        Request::SetPerms {
            path: "data/k",
            perms: &["n5", "r0"],
        }
        .encode(2, 0, &mut out)
        .unwrap();
        assert_eq!(&out[..4], &14u32.to_le_bytes());
        assert_eq!(&out[16..], b"data/k\0n5\0r0\0");
        let bad = Request::SetPerms {
            path: "p",
            perms: &["a\0"],
        }
        .encode(1, 0, &mut out);
        assert_eq!(bad, Err(EncodeError::BadString));
    }

    #[test]
    fn round_trip_through_the_ring_with_wraparound() {
        let page = Page::new();
        // Start both rings near the u32 wrap point.
        for off in [
            layout::REQ_CONS,
            layout::REQ_PROD,
            layout::RSP_CONS,
            layout::RSP_PROD,
        ] {
            page.set_u32(off, u32::MAX - 5);
        }
        let mut ring = StoreRing::new(&page);
        let mut req = std::vec::Vec::new();
        Request::Read("name").encode(42, 0, &mut req).unwrap();
        assert_eq!(ring.write(&req), Ok(req.len()));
        assert_eq!(page.server_take(), req);
        // A reply delivered in two halves assembles into one message.
        let reply = msg(2, 42, b"guest-1");
        page.server_send(&reply[..10]);
        let mut got = std::vec::Vec::new();
        assert_eq!(ring.read(|m| got.push(m)), Ok(true));
        assert!(got.is_empty());
        page.server_send(&reply[10..]);
        ring.read(|m| got.push(m)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].req_id, 42);
        assert_eq!(got[0].reply(), Reply::Ok(b"guest-1".to_vec()));
    }

    #[test]
    fn full_request_ring_takes_what_fits() {
        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        assert_eq!(ring.write(&[1u8; 1000]), Ok(1000));
        assert_eq!(ring.write(&[2u8; 100]), Ok(24));
        assert_eq!(ring.write(&[3u8; 1]), Ok(0));
        page.server_take();
        assert_eq!(ring.write(&[3u8; 1]), Ok(1));
    }

    #[test]
    fn errors_watch_events_directories_and_tx_ids() {
        let m = Message {
            kind: MsgType::Error,
            req_id: 1,
            tx_id: 0,
            body: b"ENOENT\0".to_vec(),
        };
        assert_eq!(m.reply(), Reply::Error(Errno::NoEnt));
        assert_eq!(Errno::NoEnt.number(), 2);
        let m = Message {
            kind: MsgType::Error,
            req_id: 1,
            tx_id: 0,
            body: b"EWHAT\0".to_vec(),
        };
        assert_eq!(m.reply(), Reply::Error(Errno::Other));
        let w = Message {
            kind: MsgType::WatchEvent,
            req_id: 0,
            tx_id: 0,
            body: b"data/x\0tok\0".to_vec(),
        };
        assert_eq!(w.watch_event(), Some((&b"data/x"[..], &b"tok"[..])));
        let bad = Message {
            kind: MsgType::WatchEvent,
            req_id: 0,
            tx_id: 0,
            body: b"\0".to_vec(),
        };
        assert_eq!(bad.watch_event(), None);
        let names: std::vec::Vec<&[u8]> = directory_entries(b"a\0bb\0\0c\0").collect();
        assert_eq!(names, [&b"a"[..], b"bb", b"c"]);
        assert_eq!(parse_tx_id(b"17"), Some(17));
        assert_eq!(parse_tx_id(b"0"), None);
        assert_eq!(parse_tx_id(b"x"), None);
    }

    #[test]
    fn hostile_replies_break_the_connection() {
        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        page.server_send(&msg(2, 1, b"")[..12]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&(PAYLOAD_MAX as u32 + 1).to_le_bytes());
        page.server_send(&len);
        assert_eq!(
            ring.read(|_| panic!("no message")),
            Err(Broken::TooLong(4097))
        );
        assert!(ring.write(b"x").is_err(), "a broken ring stays broken");

        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        page.server_send(&msg(99, 1, b""));
        assert_eq!(
            ring.read(|_| panic!("no message")),
            Err(Broken::UnknownType(99))
        );

        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        page.set_u32(layout::RSP_PROD, 5000);
        assert!(matches!(ring.read(|_| ()), Err(Broken::BadIndex { .. })));
    }

    #[test]
    fn many_messages_in_one_read() {
        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        page.server_send(&msg(11, 1, b"OK\0"));
        page.server_send(&msg(15, 0, b"p\0t\0"));
        page.server_send(&msg(13, 2, b"OK\0"));
        let mut ids = std::vec::Vec::new();
        ring.read(|m| ids.push((m.kind, m.req_id))).unwrap();
        assert_eq!(
            ids,
            [
                (MsgType::Write, 1),
                (MsgType::WatchEvent, 0),
                (MsgType::Rm, 2)
            ]
        );
    }

    /// xenstored (or anyone writing the page) rewrites the indices we own:
    /// we neither send bytes again nor skip any, in either ring.
    #[test]
    fn a_peer_rewriting_our_own_indices_changes_nothing() {
        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        let mut first = std::vec::Vec::new();
        Request::Read("a").encode(1, 0, &mut first).unwrap();
        assert_eq!(ring.write(&first), Ok(first.len()));
        assert_eq!(page.server_take(), first);
        // Our producer index moved back (we would send the request again)
        // and forward (we would leave a gap of stale bytes).
        for scribble in [0, first.len() as u32 + 500] {
            page.set_u32(layout::REQ_PROD, scribble);
            let mut next = std::vec::Vec::new();
            Request::Read("bb").encode(2, 0, &mut next).unwrap();
            assert_eq!(ring.write(&next), Ok(next.len()));
            assert_eq!(page.server_take(), next, "exactly the new request");
        }
        // Our consumer index of the replies moved back: the reply already
        // delivered must not come again.
        page.server_send(&msg(2, 1, b"one"));
        let mut got = std::vec::Vec::new();
        ring.read(|m| got.push(m.req_id)).unwrap();
        page.set_u32(layout::RSP_CONS, 0);
        assert_eq!(ring.read(|m| got.push(m.req_id)), Ok(false));
        page.server_send(&msg(2, 2, b"two"));
        ring.read(|m| got.push(m.req_id)).unwrap();
        assert_eq!(got, [1, 2]);
        assert_eq!(page.u32_at(layout::RSP_CONS), page.u32_at(layout::RSP_PROD));
        assert_eq!(ring.broken(), None);
    }

    #[test]
    fn peer_indices_moving_back_break_the_connection() {
        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        assert_eq!(ring.write(&[7u8; 100]), Ok(100));
        page.set_u32(layout::REQ_CONS, 60);
        assert_eq!(ring.write(b"x"), Ok(1));
        page.set_u32(layout::REQ_CONS, 20);
        assert_eq!(
            ring.write(b"y"),
            Err(Broken::IndexMovedBack { was: 60, now: 20 })
        );

        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        page.server_send(&msg(2, 1, b"one"));
        ring.read(|_| ()).unwrap();
        page.set_u32(layout::RSP_PROD, 5);
        assert_eq!(
            ring.read(|_| panic!("no message")),
            Err(Broken::IndexMovedBack { was: 19, now: 5 })
        );

        // A consumer index past our producer.
        let page = Page::new();
        let mut ring = StoreRing::new(&page);
        page.set_u32(layout::REQ_CONS, 3);
        assert!(matches!(ring.write(b"z"), Err(Broken::BadIndex { .. })));
    }
}
