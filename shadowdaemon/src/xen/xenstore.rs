//! A small xenstore client for dom0: enough to find guests and their rings
//! (`read`, `directory`, `is_domain_introduced`), to tell who may write a node
//! (`get_perms`), to hear when they come and go (`watch`, `unwatch`, watch
//! events), and to tell a guest it is not served (`write`, `set_perms`, `rm`).
//!
//! It speaks the wire protocol of Xen's `xen/include/public/io/xs_wire.h`: every
//! message is a 16-byte little-endian header `{type, req_id, tx_id, len}`
//! followed by `len <= 4096` payload bytes. The transport is any `Read + Write`
//! that carries whole messages in order: xenstored's Unix socket or Linux's
//! `/dev/xen/xenbus` device ([`Xenstore::open_default`] tries both).
//!
//! Every byte that comes back is treated as hostile, as for any foreign input of
//! the daemon: a length is checked against the payload limit before anything is
//! allocated from it, a reply must carry the request's id and type, names must
//! be UTF-8 and well formed, and the first violation breaks the client for good
//! ([`XsError::Broken`] with a named [`BrokenReason`]): once the stream cannot be
//! trusted to be in step, no later reply can be either. The owner drops the
//! client, opens a new one and rescans.
//!
//! The encoding and decoding are pure functions ([`encode`], [`Header::parse`],
//! [`read_message`]) so that unit tests and the fuzz target
//! (`shadowdaemon/fuzz`, which includes this file by path) reach them without a
//! xenstored. This file therefore uses `std` only.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

/// `XENSTORE_PAYLOAD_MAX`: no message body may be longer, in either direction.
pub const PAYLOAD_MAX: usize = 4096;

/// Size of `struct xsd_sockmsg`, the header in front of every payload.
pub const HEADER_LEN: usize = 16;

/// Where xenstored listens, newest convention first.
pub const SOCKET_PATHS: [&str; 2] = ["/run/xenstored/socket", "/var/run/xenstored/socket"];

/// Linux's xenbus device: the same protocol, relayed by the kernel.
pub const XENBUS_DEVICE: &str = "/dev/xen/xenbus";

/// At most this many watch events wait in the queue; beyond it the oldest is
/// dropped (and counted in [`Xenstore::dropped_events`]).
pub const EVENT_QUEUE_MAX: usize = 1024;

/// The message types (`enum xsd_sockmsg_type` in xs_wire.h) this client sends
/// or accepts; the discriminants are the wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MsgType {
    /// `XS_DIRECTORY`: `path\0` → child names, each followed by a NUL.
    Directory = 1,
    /// `XS_READ`: `path\0` → the value's raw bytes (no NUL).
    Read = 2,
    /// `XS_GET_PERMS`: `path\0` → permission entries, each followed by a NUL.
    GetPerms = 3,
    /// `XS_WATCH`: `path\0token\0` → `OK\0`.
    Watch = 4,
    // Not needed by the daemon today; kept whole for the tests and the fuzz target.
    #[allow(dead_code)]
    /// `XS_UNWATCH`: `path\0token\0` → `OK\0`.
    Unwatch = 5,
    /// `XS_WRITE`: `path\0value` → `OK\0`.
    Write = 11,
    /// `XS_RM`: `path\0` → `OK\0`.
    Rm = 13,
    /// `XS_SET_PERMS`: `path\0perm\0perm\0...` → `OK\0`.
    SetPerms = 14,
    /// `XS_WATCH_EVENT`, unsolicited: `path\0token\0`.
    WatchEvent = 15,
    /// `XS_ERROR`, instead of a reply: an errno name, `ENOENT\0`.
    Error = 16,
    /// `XS_IS_DOMAIN_INTRODUCED`: `domid\0` → `T\0` or `F\0`.
    IsDomainIntroduced = 17,
}

/// A message header as it came off the wire. Only the length is checked
/// (by [`Header::parse`]); the other fields are whatever the peer sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message type, possibly one this client does not know.
    pub kind: u32,
    /// Echo of the request's id (meaningless on watch events).
    pub req_id: u32,
    /// Transaction id; this client uses none, so always 0 on requests.
    pub tx_id: u32,
    /// Payload length, at most [`PAYLOAD_MAX`].
    pub len: u32,
}

impl Header {
    /// Decodes a header, refusing a length beyond [`PAYLOAD_MAX`] so that no
    /// caller ever allocates from an unchecked length.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header, BrokenReason> {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let header = Header {
            kind: word(0),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        };
        if header.payload_len() > PAYLOAD_MAX {
            return Err(BrokenReason::Oversize { len: header.len });
        }
        Ok(header)
    }

    /// The payload length as a `usize`.
    pub fn payload_len(&self) -> usize {
        // u32 always fits a usize on the 32- and 64-bit targets dom0 runs on.
        self.len as usize
    }
}

/// One whole message: its header and exactly `header.len` payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The checked header.
    pub header: Header,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Encodes one message. Fails only if `payload` passes [`PAYLOAD_MAX`], which
/// xenstored would answer by dropping the connection.
pub fn encode(kind: MsgType, req_id: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, ArgError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&len| len as usize <= PAYLOAD_MAX)
        .ok_or(ArgError::TooLong)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    for word in [kind as u32, req_id, tx_id, len] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(payload);
    Ok(out)
}

/// Reads exactly one message: the header, then (once its length is checked)
/// the payload. End of stream, even mid-message, is [`BrokenReason::Closed`];
/// other transport failures are [`XsError::Io`].
pub fn read_message<R: Read>(reader: &mut R) -> Result<Message, XsError> {
    let mut bytes = [0u8; HEADER_LEN];
    read_all(reader, &mut bytes)?;
    let header = Header::parse(&bytes).map_err(XsError::Broken)?;
    let mut payload = vec![0u8; header.payload_len()];
    read_all(reader, &mut payload)?;
    Ok(Message { header, payload })
}

fn read_all<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<(), XsError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => XsError::Broken(BrokenReason::Closed),
        _ => XsError::Io(e),
    })
}

/// Parses a decimal `u32` as xenstore values such as `ring-ref` or
/// `event-channel` spell it: ASCII digits only (at least one), no sign, no
/// spaces, nothing before or after, and no overflow. Leading zeros are
/// accepted: they still name one number.
pub fn parse_u32_decimal(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u32, |acc, &b| {
        let digit = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// A watch fired: something at or below the watched path changed (or the watch
/// was just registered: xenstored fires every new watch once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The path that changed (or a special path such as `@introduceDomain`).
    pub path: String,
    /// The token given to [`Xenstore::watch`].
    pub token: String,
}

/// What one permission entry grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    /// Whether it lets the domain write.
    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One entry of a node's permissions, as `XS_GET_PERMS` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain it names.
    pub domid: u32,
    /// What it grants.
    pub access: Access,
}

/// A node's permissions: the first entry names the owner (who may do anything)
/// and what every domain not listed may do; the others grant named domains more
/// or less than that.
/// Never empty (the parser refuses an empty list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms(Vec<Perm>);

impl Perms {
    /// The owning domain.
    pub fn owner(&self) -> Option<u32> {
        self.0.first().map(|p| p.domid)
    }

    /// Whether domain `domid` may write the node (dom0's own privilege aside).
    pub fn writable_by(&self, domid: u32) -> bool {
        let [first, rest @ ..] = self.0.as_slice() else {
            return false;
        };
        if first.domid == domid {
            return true;
        }
        match rest.iter().rev().find(|p| p.domid == domid) {
            Some(p) => p.access.writes(),
            None => first.access.writes(),
        }
    }
}

/// Why a path or token was refused before anything was sent; the client stays
/// usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// A path or token is empty.
    Empty,
    /// A path or token holds a NUL byte, which would split it on the wire.
    HoldsNul,
    /// The request would pass [`PAYLOAD_MAX`].
    TooLong,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgError::Empty => "empty xenstore path or token",
            ArgError::HoldsNul => "xenstore path or token holds a NUL byte",
            ArgError::TooLong => "xenstore request longer than 4096 bytes",
        })
    }
}

/// Why the client stopped trusting the stream. Once one of these is seen the
/// client is broken: every later call returns it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenReason {
    /// A header announced more than [`PAYLOAD_MAX`] payload bytes.
    Oversize {
        /// The announced length.
        len: u32,
    },
    /// The transport reached its end (xenstored went away), possibly mid-message.
    Closed,
    /// The transport failed (the error was returned once as [`XsError::Io`]).
    Transport(io::ErrorKind),
    /// A reply carried another request's id.
    UnexpectedReqId {
        /// The id of the request in flight.
        expected: u32,
        /// The id the reply carried.
        got: u32,
    },
    /// A reply named a transaction although none was used.
    UnexpectedTxId {
        /// The transaction id the reply carried.
        got: u32,
    },
    /// A reply was neither of the request's type nor an error.
    UnexpectedType {
        /// The request's type.
        expected: u32,
        /// The type the reply carried.
        got: u32,
    },
    /// A message other than a watch event arrived with no request in flight.
    UnsolicitedReply {
        /// Its type.
        kind: u32,
    },
    /// A watch event's payload was not exactly `path\0token\0`.
    BadWatchEvent,
    /// A directory reply was not a list of NUL-terminated, non-empty names
    /// without `/`.
    BadDirectory,
    /// An error reply was not one NUL-terminated errno name (`[A-Z0-9]`, at
    /// most 16 characters).
    BadErrorName,
    /// A watch or unwatch reply was not `OK\0`.
    BadAck,
    /// An `IS_DOMAIN_INTRODUCED` reply was neither `T\0` nor `F\0`.
    BadBool,
    /// A `GET_PERMS` reply was not a non-empty list of NUL-terminated entries,
    /// each one of `n r w b` and a domain id.
    BadPerms,
    /// A name, path or token was not UTF-8.
    NotUtf8,
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenReason::Oversize { len } => write!(
                f,
                "message of {len} bytes passes the {PAYLOAD_MAX}-byte payload limit"
            ),
            BrokenReason::Closed => f.write_str("xenstore connection closed"),
            BrokenReason::Transport(kind) => write!(f, "xenstore transport failed: {kind}"),
            BrokenReason::UnexpectedReqId { expected, got } => {
                write!(f, "reply for request {got} while waiting for {expected}")
            }
            BrokenReason::UnexpectedTxId { got } => {
                write!(f, "reply names transaction {got}, none was used")
            }
            BrokenReason::UnexpectedType { expected, got } => {
                write!(f, "reply of type {got} to a request of type {expected}")
            }
            BrokenReason::UnsolicitedReply { kind } => {
                write!(f, "message of type {kind} with no request in flight")
            }
            BrokenReason::BadWatchEvent => f.write_str("watch event is not path\\0token\\0"),
            BrokenReason::BadDirectory => f.write_str("malformed directory listing"),
            BrokenReason::BadErrorName => f.write_str("malformed error name"),
            BrokenReason::BadAck => f.write_str("watch reply is not OK"),
            BrokenReason::BadBool => f.write_str("domain-introduced reply is neither T nor F"),
            BrokenReason::BadPerms => f.write_str("malformed permission list"),
            BrokenReason::NotUtf8 => f.write_str("name is not UTF-8"),
        }
    }
}

/// What a call can fail with.
#[derive(Debug)]
pub enum XsError {
    /// The caller's path or token was refused; nothing was sent.
    BadArgument(ArgError),
    /// xenstored answered with an error, named as in xs_wire.h's `xsd_errors`
    /// (`EACCES`, `EINVAL`, `E2BIG`, ...). The client stays usable.
    Remote(String),
    /// The transport failed; the client is broken from now on
    /// ([`BrokenReason::Transport`]).
    Io(io::Error),
    /// The stream broke or broke earlier; the client is unusable.
    Broken(BrokenReason),
    /// [`Xenstore::open_default`] found no way in: each path it tried and why.
    Unavailable(Vec<(&'static str, io::Error)>),
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::BadArgument(e) => e.fmt(f),
            XsError::Remote(name) => write!(f, "xenstored refused: {name}"),
            XsError::Io(e) => write!(f, "xenstore transport failed: {e}"),
            XsError::Broken(reason) => write!(f, "xenstore client broken: {reason}"),
            XsError::Unavailable(tried) => {
                f.write_str("no xenstore")?;
                for (i, (path, e)) in tried.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(f, "{sep}{path}: {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for XsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            XsError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The transport [`Xenstore::open_default`] found.
#[derive(Debug)]
pub enum Transport {
    /// xenstored's Unix socket.
    Socket(UnixStream),
    /// Linux's `/dev/xen/xenbus`.
    Device(File),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Socket(s) => s.read(buf),
            Transport::Device(d) => d.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Socket(s) => s.write(buf),
            Transport::Device(d) => d.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Socket(s) => s.flush(),
            Transport::Device(d) => d.flush(),
        }
    }
}

/// A reply that passed the id and type checks.
enum Reply {
    /// The request's own type: its payload.
    Done(Vec<u8>),
    /// `XS_ERROR`: the error's name.
    Refused(String),
}

/// A synchronous xenstore client: one request in flight at a time, watch events
/// queued while a reply is awaited.
///
/// The transport must not have a read timeout: a timeout mid-message would leave
/// the stream out of step, so any I/O error breaks the client.
#[derive(Debug)]
pub struct Xenstore<T> {
    transport: T,
    /// The id of the next request; replies must echo it.
    next_req_id: u32,
    /// Watch events that arrived while a reply was awaited.
    events: VecDeque<WatchEvent>,
    /// Events dropped because the queue was full.
    dropped_events: u64,
    /// Set by the first protocol or transport failure, never cleared.
    broken: Option<BrokenReason>,
}

impl Xenstore<Transport> {
    /// Connects to xenstored's socket ([`SOCKET_PATHS`]), or failing that opens
    /// [`XENBUS_DEVICE`]. [`XsError::Unavailable`] lists every path tried.
    pub fn open_default() -> Result<Self, XsError> {
        let mut tried = Vec::new();
        for path in SOCKET_PATHS {
            match UnixStream::connect(path) {
                Ok(s) => return Ok(Xenstore::new(Transport::Socket(s))),
                Err(e) => tried.push((path, e)),
            }
        }
        match OpenOptions::new()
            .read(true)
            .write(true)
            .open(XENBUS_DEVICE)
        {
            Ok(d) => Ok(Xenstore::new(Transport::Device(d))),
            Err(e) => {
                tried.push((XENBUS_DEVICE, e));
                Err(XsError::Unavailable(tried))
            }
        }
    }
}

impl<T: Read + Write> Xenstore<T> {
    /// A client over an already open transport.
    pub fn new(transport: T) -> Self {
        Xenstore {
            transport,
            next_req_id: 1,
            events: VecDeque::new(),
            dropped_events: 0,
            broken: None,
        }
    }

    /// The value at `path`, raw bytes; `None` if the node does not exist.
    pub fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        let payload = strings_payload(&[path])?;
        match self.call(MsgType::Read, &payload)? {
            Reply::Done(value) => Ok(Some(value)),
            Reply::Refused(name) if name == "ENOENT" => Ok(None),
            Reply::Refused(name) => Err(XsError::Remote(name)),
        }
    }

    /// The names of the children of `path`; `None` if the node does not exist.
    /// xenstored answers `E2BIG` ([`XsError::Remote`]) when the list passes the
    /// payload limit (hundreds of children).
    pub fn directory(&mut self, path: &str) -> Result<Option<Vec<String>>, XsError> {
        let payload = strings_payload(&[path])?;
        match self.call(MsgType::Directory, &payload)? {
            Reply::Done(list) => self.check(parse_directory(&list)).map(Some),
            Reply::Refused(name) if name == "ENOENT" => Ok(None),
            Reply::Refused(name) => Err(XsError::Remote(name)),
        }
    }

    /// Whether xenstored knows domain `domid` (introduced and not yet released).
    pub fn is_domain_introduced(&mut self, domid: u16) -> Result<bool, XsError> {
        let payload = format!("{domid}\0").into_bytes();
        match self.call(MsgType::IsDomainIntroduced, &payload)? {
            Reply::Done(answer) => self.check(match answer.as_slice() {
                b"T\0" => Ok(true),
                b"F\0" => Ok(false),
                _ => Err(BrokenReason::BadBool),
            }),
            Reply::Refused(name) => Err(XsError::Remote(name)),
        }
    }

    /// The permissions of `path`; `None` if the node does not exist.
    pub fn get_perms(&mut self, path: &str) -> Result<Option<Perms>, XsError> {
        let payload = strings_payload(&[path])?;
        match self.call(MsgType::GetPerms, &payload)? {
            Reply::Done(list) => self.check(parse_perms(&list)).map(Some),
            Reply::Refused(name) if name == "ENOENT" => Ok(None),
            Reply::Refused(name) => Err(XsError::Remote(name)),
        }
    }

    /// Writes `value` at `path`, creating the node (and its parents) if need
    /// be; a new node inherits its parent's permissions.
    // The fuzz target includes this file and does not call it.
    #[allow(dead_code)]
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut payload = strings_payload(&[path])?;
        payload.extend_from_slice(value);
        if payload.len() > PAYLOAD_MAX {
            return Err(XsError::BadArgument(ArgError::TooLong));
        }
        self.ack_op(MsgType::Write, &payload)
    }

    /// Sets the permissions of `path`: the first entry names the owner and
    /// what every other domain may do (`n0`), the rest grant named domains
    /// (`r5`: domain 5 may read).
    // The fuzz target includes this file and does not call it.
    #[allow(dead_code)]
    pub fn set_perms(&mut self, path: &str, perms: &[&str]) -> Result<(), XsError> {
        let mut parts = vec![path];
        parts.extend_from_slice(perms);
        let payload = strings_payload(&parts)?;
        self.ack_op(MsgType::SetPerms, &payload)
    }

    /// Removes `path` and everything below it; a node already gone is fine.
    // The fuzz target includes this file and does not call it.
    #[allow(dead_code)]
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        let payload = strings_payload(&[path])?;
        match self.ack_op(MsgType::Rm, &payload) {
            Err(XsError::Remote(name)) if name == "ENOENT" => Ok(()),
            other => other,
        }
    }

    /// Watches `path` and everything below it; events carry `token`. xenstored
    /// fires a new watch once right away, so a scan can start from that event.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.watch_op(MsgType::Watch, path, token)
    }

    /// Removes a watch set with the same `path` and `token` (`ENOENT` if none).
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.watch_op(MsgType::Unwatch, path, token)
    }

    /// The next watch event: a queued one first, else blocks until one arrives.
    pub fn next_watch_event(&mut self) -> Result<WatchEvent, XsError> {
        self.usable()?;
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        let received = self.receive_event();
        self.check_xs(received)
    }

    // Not needed by the daemon today; kept whole for the tests and the fuzz target.
    #[allow(dead_code)]
    /// A queued watch event, if any; never reads the transport.
    pub fn take_queued_event(&mut self) -> Option<WatchEvent> {
        self.events.pop_front()
    }

    // The fuzz target includes this file and does not call it.
    #[allow(dead_code)]
    /// How many watch events were dropped because [`EVENT_QUEUE_MAX`] were
    /// already queued. A consumer that rescans only the watched subtree of an
    /// event's token should rescan everything when this grows.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    fn watch_op(&mut self, kind: MsgType, path: &str, token: &str) -> Result<(), XsError> {
        let payload = strings_payload(&[path, token])?;
        self.ack_op(kind, &payload)
    }

    /// A request answered `OK\0`.
    fn ack_op(&mut self, kind: MsgType, payload: &[u8]) -> Result<(), XsError> {
        match self.call(kind, payload)? {
            Reply::Done(ack) if ack == b"OK\0" => Ok(()),
            Reply::Done(_) => self.check(Err(BrokenReason::BadAck)),
            Reply::Refused(name) => Err(XsError::Remote(name)),
        }
    }

    /// Sends one request and returns its reply, queueing watch events that
    /// arrive first.
    fn call(&mut self, kind: MsgType, payload: &[u8]) -> Result<Reply, XsError> {
        self.usable()?;
        let req_id = self.next_req_id;
        let request = encode(kind, req_id, 0, payload).map_err(XsError::BadArgument)?;
        self.next_req_id = req_id.wrapping_add(1);
        let exchanged = self.exchange(kind, req_id, &request);
        self.check_xs(exchanged)
    }

    fn exchange(&mut self, kind: MsgType, req_id: u32, request: &[u8]) -> Result<Reply, XsError> {
        self.transport.write_all(request).map_err(XsError::Io)?;
        self.transport.flush().map_err(XsError::Io)?;
        loop {
            let Message { header, payload } = read_message(&mut self.transport)?;
            if header.kind == MsgType::WatchEvent as u32 {
                // Events carry no meaningful ids (Linux's xenbus device leaves
                // them uninitialised), so they are told apart by type alone.
                let event = parse_watch_event(&payload).map_err(XsError::Broken)?;
                self.queue(event);
                continue;
            }
            let broken = |reason| Err(XsError::Broken(reason));
            if header.req_id != req_id {
                return broken(BrokenReason::UnexpectedReqId {
                    expected: req_id,
                    got: header.req_id,
                });
            }
            if header.tx_id != 0 {
                return broken(BrokenReason::UnexpectedTxId { got: header.tx_id });
            }
            if header.kind == MsgType::Error as u32 {
                return parse_error_name(&payload)
                    .map(Reply::Refused)
                    .map_err(XsError::Broken);
            }
            if header.kind != kind as u32 {
                return broken(BrokenReason::UnexpectedType {
                    expected: kind as u32,
                    got: header.kind,
                });
            }
            return Ok(Reply::Done(payload));
        }
    }

    fn receive_event(&mut self) -> Result<WatchEvent, XsError> {
        let Message { header, payload } = read_message(&mut self.transport)?;
        if header.kind != MsgType::WatchEvent as u32 {
            return Err(XsError::Broken(BrokenReason::UnsolicitedReply {
                kind: header.kind,
            }));
        }
        parse_watch_event(&payload).map_err(XsError::Broken)
    }

    /// Queues an event, dropping the oldest when full. Dropping is safe: an
    /// event only means "something here changed, rescan", and a full queue still
    /// holds later events that trigger that rescan, so losing the oldest ones
    /// coalesces rescans instead of missing changes (see [`Self::dropped_events`]).
    fn queue(&mut self, event: WatchEvent) {
        if self.events.len() >= EVENT_QUEUE_MAX {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(event);
    }

    fn usable(&self) -> Result<(), XsError> {
        match self.broken {
            Some(reason) => Err(XsError::Broken(reason)),
            None => Ok(()),
        }
    }

    /// Passes a result on, breaking the client if it is a protocol violation.
    fn check<R>(&mut self, result: Result<R, BrokenReason>) -> Result<R, XsError> {
        self.check_xs(result.map_err(XsError::Broken))
    }

    /// Passes a result on, breaking the client on a protocol violation or a
    /// transport failure (after either, the stream may be out of step).
    fn check_xs<R>(&mut self, result: Result<R, XsError>) -> Result<R, XsError> {
        let reason = match &result {
            Err(XsError::Broken(reason)) => *reason,
            Err(XsError::Io(e)) => BrokenReason::Transport(e.kind()),
            _ => return result,
        };
        self.broken = Some(reason);
        // A client that has lost step is replaced and everything rescanned, so
        // the events it queued mean nothing more.
        self.events.clear();
        result
    }
}

/// `a\0` or `a\0b\0`: the strings, each NUL-terminated, checked for the wire.
fn strings_payload(parts: &[&str]) -> Result<Vec<u8>, XsError> {
    let mut payload = Vec::new();
    for part in parts {
        let bad = |e| Err(XsError::BadArgument(e));
        if part.is_empty() {
            return bad(ArgError::Empty);
        }
        if part.as_bytes().contains(&0) {
            return bad(ArgError::HoldsNul);
        }
        payload.extend_from_slice(part.as_bytes());
        payload.push(0);
        if payload.len() > PAYLOAD_MAX {
            return bad(ArgError::TooLong);
        }
    }
    Ok(payload)
}

/// Splits `a\0b\0...` into its strings; `None` unless the payload is non-empty
/// and ends with a NUL.
fn nul_terminated(payload: &[u8]) -> Option<Vec<&[u8]>> {
    let body = payload.strip_suffix(&[0])?;
    Some(body.split(|&b| b == 0).collect())
}

fn utf8(bytes: &[u8]) -> Result<String, BrokenReason> {
    String::from_utf8(bytes.to_vec()).map_err(|_| BrokenReason::NotUtf8)
}

/// A directory listing: every name non-empty, without `/`, UTF-8, followed by a
/// NUL; an empty payload is a node without children.
fn parse_directory(payload: &[u8]) -> Result<Vec<String>, BrokenReason> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    let names = nul_terminated(payload).ok_or(BrokenReason::BadDirectory)?;
    names
        .into_iter()
        .map(|name| {
            if name.is_empty() || name.contains(&b'/') {
                return Err(BrokenReason::BadDirectory);
            }
            utf8(name)
        })
        .collect()
}

/// `n0\0r5\0`: at least one entry, each a letter of `n r w b` and a decimal
/// domain id, each followed by a NUL.
fn parse_perms(payload: &[u8]) -> Result<Perms, BrokenReason> {
    let entries = nul_terminated(payload).ok_or(BrokenReason::BadPerms)?;
    let perms = entries
        .into_iter()
        .map(|e| {
            let (&letter, id) = e.split_first().ok_or(BrokenReason::BadPerms)?;
            let access = match letter {
                b'n' => Access::None,
                b'r' => Access::Read,
                b'w' => Access::Write,
                b'b' => Access::Both,
                _ => return Err(BrokenReason::BadPerms),
            };
            let domid = parse_u32_decimal(id).ok_or(BrokenReason::BadPerms)?;
            Ok(Perm { domid, access })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Perms(perms))
}

/// `path\0token\0`, both non-empty UTF-8, nothing else.
fn parse_watch_event(payload: &[u8]) -> Result<WatchEvent, BrokenReason> {
    match nul_terminated(payload).as_deref() {
        Some([path, token]) if !path.is_empty() && !token.is_empty() => Ok(WatchEvent {
            path: utf8(path)?,
            token: utf8(token)?,
        }),
        _ => Err(BrokenReason::BadWatchEvent),
    }
}

/// `ENOENT\0`: one errno name, short and of `[A-Z0-9]` only, so it is safe to
/// log and compare.
fn parse_error_name(payload: &[u8]) -> Result<String, BrokenReason> {
    match nul_terminated(payload).as_deref() {
        Some([name])
            if (1..=16).contains(&name.len())
                && name
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) =>
        {
            utf8(name)
        }
        _ => Err(BrokenReason::BadErrorName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::{self, JoinHandle};

    /// A fake xenstored on the far end of a socket pair, running `script`.
    fn fake(
        script: impl FnOnce(&mut UnixStream) + Send + 'static,
    ) -> (Xenstore<UnixStream>, JoinHandle<()>) {
        let (client, mut server) = UnixStream::pair().unwrap();
        let handle = thread::spawn(move || script(&mut server));
        (Xenstore::new(client), handle)
    }

    /// Reads one request, checks its type and payload, returns its id.
    fn expect(s: &mut UnixStream, kind: MsgType, payload: &[u8]) -> u32 {
        let msg = read_message(s).unwrap();
        assert_eq!(msg.header.kind, kind as u32);
        assert_eq!(msg.header.tx_id, 0);
        assert_eq!(msg.payload, payload);
        msg.header.req_id
    }

    fn send(s: &mut UnixStream, kind: MsgType, req_id: u32, payload: &[u8]) {
        s.write_all(&encode(kind, req_id, 0, payload).unwrap())
            .unwrap();
    }

    fn raw_header(kind: u32, req_id: u32, tx_id: u32, len: u32) -> Vec<u8> {
        [kind, req_id, tx_id, len]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    fn assert_broken<R: fmt::Debug>(result: Result<R, XsError>, want: BrokenReason) {
        match result {
            Err(XsError::Broken(got)) => assert_eq!(got, want),
            other => panic!("expected Broken({want:?}), got {other:?}"),
        }
    }

    #[test]
    fn message_numbers_match_xs_wire_h() {
        let numbers = [
            (MsgType::Directory, 1),
            (MsgType::Read, 2),
            (MsgType::GetPerms, 3),
            (MsgType::Watch, 4),
            (MsgType::Unwatch, 5),
            (MsgType::WatchEvent, 15),
            (MsgType::Error, 16),
            (MsgType::IsDomainIntroduced, 17),
        ];
        for (kind, value) in numbers {
            assert_eq!(kind as u32, value, "{kind:?}");
        }
    }

    #[test]
    fn perms_parse_and_say_who_writes() {
        let p = parse_perms(b"n0\0r5\0").unwrap();
        assert_eq!(p.owner(), Some(0));
        assert!(!p.writable_by(5) && !p.writable_by(6));
        let p = parse_perms(b"r0\0b5\0").unwrap();
        assert!(p.writable_by(5) && !p.writable_by(6));
        assert!(
            parse_perms(b"w0\0").unwrap().writable_by(9),
            "anyone writes"
        );
        assert!(parse_perms(b"n5\0").unwrap().writable_by(5), "the owner");
        assert!(!parse_perms(b"b0\0n5\0").unwrap().writable_by(5));
        for bad in [
            &b""[..],
            b"n0",
            b"x0\0",
            b"n\0",
            b"n-1\0",
            b"n0\0\0",
            b"nA\0",
        ] {
            assert_eq!(parse_perms(bad), Err(BrokenReason::BadPerms), "{bad:?}");
        }
    }

    #[test]
    fn get_perms_of_a_node() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::GetPerms, b"/local/domain/5/name\0");
            send(s, MsgType::GetPerms, id, b"n0\0r5\0");
            let id = expect(s, MsgType::GetPerms, b"/nope\0");
            send(s, MsgType::Error, id, b"ENOENT\0");
        });
        let perms = xs.get_perms("/local/domain/5/name").unwrap().unwrap();
        assert_eq!(perms.owner(), Some(0));
        assert_eq!(xs.get_perms("/nope").unwrap(), None);
        server.join().unwrap();
    }

    #[test]
    fn encode_and_parse_round_trip() {
        let bytes = encode(MsgType::Read, 7, 0, b"/a\0").unwrap();
        assert_eq!(&bytes[..HEADER_LEN], raw_header(2, 7, 0, 3));
        let msg = read_message(&mut bytes.as_slice()).unwrap();
        assert_eq!(
            msg.header,
            Header {
                kind: 2,
                req_id: 7,
                tx_id: 0,
                len: 3
            }
        );
        assert_eq!(msg.payload, b"/a\0");
        assert!(encode(MsgType::Read, 1, 0, &[b'a'; PAYLOAD_MAX]).is_ok());
        assert_eq!(
            encode(MsgType::Read, 1, 0, &[b'a'; PAYLOAD_MAX + 1]),
            Err(ArgError::TooLong)
        );
    }

    #[test]
    fn header_length_is_checked_before_any_allocation() {
        let max: [u8; HEADER_LEN] = raw_header(2, 1, 0, 4096).try_into().unwrap();
        assert_eq!(Header::parse(&max).unwrap().payload_len(), 4096);
        let over: [u8; HEADER_LEN] = raw_header(2, 1, 0, 4097).try_into().unwrap();
        assert_eq!(
            Header::parse(&over),
            Err(BrokenReason::Oversize { len: 4097 })
        );
        let huge: [u8; HEADER_LEN] = raw_header(2, 1, 0, u32::MAX).try_into().unwrap();
        assert_eq!(
            Header::parse(&huge),
            Err(BrokenReason::Oversize { len: u32::MAX })
        );
    }

    #[test]
    fn truncated_message_is_closed() {
        let mut bytes = encode(MsgType::Read, 1, 0, b"value").unwrap();
        bytes.pop();
        assert_broken(read_message(&mut bytes.as_slice()), BrokenReason::Closed);
        assert_broken(read_message(&mut &bytes[..5]), BrokenReason::Closed);
    }

    #[test]
    fn decimal_values() {
        assert_eq!(parse_u32_decimal(b"0"), Some(0));
        assert_eq!(parse_u32_decimal(b"8"), Some(8));
        assert_eq!(parse_u32_decimal(b"007"), Some(7));
        assert_eq!(parse_u32_decimal(b"4294967295"), Some(u32::MAX));
        for bad in [
            &b""[..],
            b"4294967296",
            b"99999999999999999999",
            b"-1",
            b"+1",
            b" 1",
            b"1 ",
            b"1\0",
            b"0x10",
            b"1a",
            "١".as_bytes(),
        ] {
            assert_eq!(parse_u32_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reply_parsers() {
        assert_eq!(parse_directory(b""), Ok(vec![]));
        assert_eq!(
            parse_directory(b"0\x001\0"),
            Ok(vec!["0".into(), "1".into()])
        );
        for bad in [&b"a"[..], b"\0", b"a\0\0", b"a/b\0", b"\0a\0"] {
            assert_eq!(
                parse_directory(bad),
                Err(BrokenReason::BadDirectory),
                "{bad:?}"
            );
        }
        assert_eq!(parse_directory(b"\xff\0"), Err(BrokenReason::NotUtf8));
        for bad in [&b""[..], b"p\0", b"p\0t", b"p\0t\0x\0", b"\0t\0", b"p\0\0"] {
            assert_eq!(
                parse_watch_event(bad),
                Err(BrokenReason::BadWatchEvent),
                "{bad:?}"
            );
        }
        assert_eq!(parse_watch_event(b"p\0\xc0\0"), Err(BrokenReason::NotUtf8));
        assert_eq!(parse_error_name(b"E2BIG\0"), Ok("E2BIG".into()));
        for bad in [&b""[..], b"EIO", b"\0", b"eio\0", b"EIO\0X\0", b"E\nIO\0"] {
            assert_eq!(
                parse_error_name(bad),
                Err(BrokenReason::BadErrorName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn read_returns_the_value() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/local/domain/3/name\0");
            send(s, MsgType::Read, id, b"guest-a");
        });
        assert_eq!(
            xs.read("/local/domain/3/name").unwrap(),
            Some(b"guest-a".to_vec())
        );
        server.join().unwrap();
    }

    #[test]
    fn read_of_missing_node_is_none() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/nope\0");
            send(s, MsgType::Error, id, b"ENOENT\0");
            let id = expect(s, MsgType::Read, b"/empty\0");
            send(s, MsgType::Read, id, b"");
        });
        assert_eq!(xs.read("/nope").unwrap(), None);
        assert_eq!(xs.read("/empty").unwrap(), Some(vec![]));
        server.join().unwrap();
    }

    #[test]
    fn directory_lists_children() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Directory, b"/local/domain\0");
            send(s, MsgType::Directory, id, b"0\x003\x0012\0");
            let id = expect(s, MsgType::Directory, b"/leaf\0");
            send(s, MsgType::Directory, id, b"");
            let id = expect(s, MsgType::Directory, b"/gone\0");
            send(s, MsgType::Error, id, b"ENOENT\0");
        });
        assert_eq!(
            xs.directory("/local/domain").unwrap(),
            Some(vec!["0".to_string(), "3".to_string(), "12".to_string()])
        );
        assert_eq!(xs.directory("/leaf").unwrap(), Some(vec![]));
        assert_eq!(xs.directory("/gone").unwrap(), None);
        server.join().unwrap();
    }

    #[test]
    fn non_utf8_directory_name_breaks() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Directory, b"/d\0");
            send(s, MsgType::Directory, id, b"ok\0\xfe\0");
        });
        assert_broken(xs.directory("/d"), BrokenReason::NotUtf8);
        server.join().unwrap();
    }

    #[test]
    fn watch_event_before_a_reply_is_queued_for_later() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Watch, b"@introduceDomain\0dom\0");
            send(s, MsgType::Watch, id, b"OK\0");
            let id = expect(s, MsgType::Read, b"/x\0");
            // The event overtakes the reply; its ids are junk, as Linux's
            // xenbus device may send them.
            s.write_all(&raw_header(15, 0xdead, 0xbeef, 21)).unwrap();
            s.write_all(b"@introduceDomain\0dom\0").unwrap();
            send(s, MsgType::Read, id, b"1");
            send(s, MsgType::WatchEvent, 0, b"/local/domain/4\0dom\0");
            let id = expect(s, MsgType::Unwatch, b"@introduceDomain\0dom\0");
            send(s, MsgType::Unwatch, id, b"OK\0");
        });
        xs.watch("@introduceDomain", "dom").unwrap();
        assert_eq!(xs.take_queued_event(), None);
        assert_eq!(xs.read("/x").unwrap(), Some(b"1".to_vec()));
        let first = WatchEvent {
            path: "@introduceDomain".into(),
            token: "dom".into(),
        };
        assert_eq!(xs.take_queued_event(), Some(first));
        assert_eq!(xs.take_queued_event(), None);
        assert_eq!(
            xs.next_watch_event().unwrap(),
            WatchEvent {
                path: "/local/domain/4".into(),
                token: "dom".into()
            }
        );
        xs.unwatch("@introduceDomain", "dom").unwrap();
        server.join().unwrap();
    }

    #[test]
    fn queued_events_come_before_blocking_and_are_bounded() {
        let extra = 3u64;
        let (mut xs, server) = fake(move |s| {
            let id = expect(s, MsgType::Read, b"/x\0");
            for i in 0..EVENT_QUEUE_MAX as u64 + extra {
                send(s, MsgType::WatchEvent, 0, format!("/p/{i}\0t\0").as_bytes());
            }
            send(s, MsgType::Read, id, b"v");
        });
        xs.read("/x").unwrap();
        server.join().unwrap();
        assert_eq!(xs.dropped_events(), extra);
        // The oldest were dropped; the rest come out in order, without reading.
        for i in extra..EVENT_QUEUE_MAX as u64 + extra {
            assert_eq!(xs.next_watch_event().unwrap().path, format!("/p/{i}"));
        }
        assert_broken(xs.next_watch_event(), BrokenReason::Closed);
    }

    #[test]
    fn is_domain_introduced_true_and_false() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::IsDomainIntroduced, b"7\0");
            send(s, MsgType::IsDomainIntroduced, id, b"T\0");
            let id = expect(s, MsgType::IsDomainIntroduced, b"65535\0");
            send(s, MsgType::IsDomainIntroduced, id, b"F\0");
        });
        assert!(xs.is_domain_introduced(7).unwrap());
        assert!(!xs.is_domain_introduced(u16::MAX).unwrap());
        server.join().unwrap();
    }

    #[test]
    fn malformed_bool_breaks() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::IsDomainIntroduced, b"1\0");
            send(s, MsgType::IsDomainIntroduced, id, b"T");
        });
        assert_broken(xs.is_domain_introduced(1), BrokenReason::BadBool);
        server.join().unwrap();
    }

    #[test]
    fn remote_error_is_named_and_leaves_the_client_usable() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/secret\0");
            send(s, MsgType::Error, id, b"EACCES\0");
            let id = expect(s, MsgType::Watch, b"/w\0t\0");
            send(s, MsgType::Error, id, b"E2BIG\0");
            let id = expect(s, MsgType::Read, b"/open\0");
            send(s, MsgType::Read, id, b"ok");
        });
        match xs.read("/secret") {
            Err(XsError::Remote(name)) => assert_eq!(name, "EACCES"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(xs.watch("/w", "t"), Err(XsError::Remote(n)) if n == "E2BIG"));
        assert_eq!(xs.read("/open").unwrap(), Some(b"ok".to_vec()));
        server.join().unwrap();
    }

    #[test]
    fn bad_arguments_are_refused_before_sending() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/fine\0");
            send(s, MsgType::Read, id, b"");
        });
        let long = "a".repeat(PAYLOAD_MAX);
        for (path, want) in [
            ("", ArgError::Empty),
            ("/a\0b", ArgError::HoldsNul),
            (long.as_str(), ArgError::TooLong),
        ] {
            assert!(matches!(xs.read(path), Err(XsError::BadArgument(e)) if e == want));
        }
        assert!(matches!(
            xs.watch("/p", ""),
            Err(XsError::BadArgument(ArgError::Empty))
        ));
        assert_eq!(xs.read("/fine").unwrap(), Some(vec![]));
        server.join().unwrap();
    }

    #[test]
    fn oversize_length_breaks() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/x\0");
            s.write_all(&raw_header(2, id, 0, 4097)).unwrap();
        });
        assert_broken(xs.read("/x"), BrokenReason::Oversize { len: 4097 });
        server.join().unwrap();
    }

    #[test]
    fn wrong_req_id_breaks() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/x\0");
            send(s, MsgType::Read, id.wrapping_add(1), b"v");
        });
        let reason = BrokenReason::UnexpectedReqId {
            expected: 1,
            got: 2,
        };
        assert_broken(xs.read("/x"), reason);
        server.join().unwrap();
    }

    #[test]
    fn wrong_reply_type_breaks() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Directory, b"/x\0");
            send(s, MsgType::Read, id, b"v");
        });
        let reason = BrokenReason::UnexpectedType {
            expected: 1,
            got: 2,
        };
        assert_broken(xs.directory("/x"), reason);
        server.join().unwrap();
    }

    #[test]
    fn bad_watch_event_breaks() {
        let (mut xs, server) = fake(|s| {
            expect(s, MsgType::Read, b"/x\0");
            send(s, MsgType::WatchEvent, 0, b"/only-a-path\0");
        });
        assert_broken(xs.read("/x"), BrokenReason::BadWatchEvent);
        server.join().unwrap();
    }

    #[test]
    fn garbage_header_breaks() {
        // Unknown type, right id.
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/x\0");
            s.write_all(&raw_header(0xdead_beef, id, 0, 0)).unwrap();
        });
        let reason = BrokenReason::UnexpectedType {
            expected: 2,
            got: 0xdead_beef,
        };
        assert_broken(xs.read("/x"), reason);
        server.join().unwrap();

        // Sixteen bytes of noise: whatever it decodes to, it is refused.
        let (mut xs, server) = fake(|s| {
            expect(s, MsgType::Read, b"/x\0");
            s.write_all(b"\x13\x37garbage!garbage").unwrap();
        });
        assert!(matches!(xs.read("/x"), Err(XsError::Broken(_))));
        server.join().unwrap();

        // A short header, then the connection closes.
        let (mut xs, server) = fake(|s| {
            expect(s, MsgType::Read, b"/x\0");
            s.write_all(b"\x02\0\0").unwrap();
        });
        assert_broken(xs.read("/x"), BrokenReason::Closed);
        server.join().unwrap();
    }

    #[test]
    fn reply_with_no_request_in_flight_breaks() {
        let (mut xs, server) = fake(|s| {
            send(s, MsgType::Read, 1, b"v");
        });
        assert_broken(
            xs.next_watch_event(),
            BrokenReason::UnsolicitedReply { kind: 2 },
        );
        server.join().unwrap();
    }

    #[test]
    fn broken_stays_broken_and_sends_nothing_more() {
        let (mut xs, server) = fake(|s| {
            let id = expect(s, MsgType::Read, b"/x\0");
            // A queued event, then a reply for another request.
            send(s, MsgType::WatchEvent, 0, b"/p\0t\0");
            send(s, MsgType::Read, id + 5, b"v");
            // Nothing else may arrive: the next read sees the client close.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "a broken client sent {rest:?}");
        });
        let reason = BrokenReason::UnexpectedReqId {
            expected: 1,
            got: 6,
        };
        assert_broken(xs.read("/x"), reason);
        assert_broken(xs.read("/x"), reason);
        assert_broken(xs.directory("/"), reason);
        assert_broken(xs.is_domain_introduced(1), reason);
        assert_broken(xs.watch("/p", "t"), reason);
        assert_broken(xs.unwatch("/p", "t"), reason);
        assert_broken(xs.next_watch_event(), reason);
        assert_eq!(xs.take_queued_event(), None);
        assert_eq!(
            XsError::Broken(reason).to_string(),
            "xenstore client broken: reply for request 6 while waiting for 1"
        );
        drop(xs);
        server.join().unwrap();
    }

    #[test]
    fn closed_connection_breaks() {
        let (mut xs, server) = fake(|s| {
            expect(s, MsgType::Read, b"/x\0");
        });
        assert_broken(xs.read("/x"), BrokenReason::Closed);
        server.join().unwrap();
        assert_broken(xs.read("/x"), BrokenReason::Closed);
    }

    #[test]
    fn transport_error_is_reported_then_breaks() {
        let (client, server) = UnixStream::pair().unwrap();
        drop(server);
        let mut xs = Xenstore::new(client);
        // Writing to a socket whose peer is gone fails with EPIPE.
        assert!(matches!(xs.read("/x"), Err(XsError::Io(_))));
        assert_broken(
            xs.read("/x"),
            BrokenReason::Transport(io::ErrorKind::BrokenPipe),
        );
    }

    #[test]
    fn unavailable_lists_every_path_tried() {
        let err = XsError::Unavailable(vec![
            ("/a", io::Error::from(io::ErrorKind::NotFound)),
            ("/b", io::Error::from(io::ErrorKind::PermissionDenied)),
        ]);
        let text = err.to_string();
        assert!(text.starts_with("no xenstore: /a: "), "{text}");
        assert!(text.contains("; /b: "), "{text}");
    }
}
