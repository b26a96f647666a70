//! Frames on the byte stream: a fixed header, then the payload.
//!
//! ```text
//! offset  size  field
//!  0      8     event_id  u64 LE   the guest's event id; a reply carries its request's
//!  8      2     op        u16 LE   Op code (1..=8)
//! 10      2     status    u16 LE   0 in requests; Status code in replies
//! 12      4     len       u32 LE   payload bytes that follow, within the op's bounds
//! 16      len   payload
//! ```
//!
//! [`FrameDecoder`] takes bytes from a [`ByteSource`] (the vchan, or a slice in tests and
//! fuzzing) only when a whole header is there, validates op, status and length (plus any
//! check the caller adds, such as "this event id is in flight") before it allocates or
//! reads payload, then copies the payload into a private buffer of exactly `len` bytes as
//! it arrives. Each byte is copied out of shared memory once; validation and parsing work
//! on the private copy.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{BrokenReason, Error};
use crate::limits::HEADER_LEN;
use crate::message::{Reply, ReplyBody, Request};
use crate::op::Op;
use crate::status::Status;

/// Which way frames go, which decides how a header is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Guest → daemon: status must be 0, lengths per [`Op::request_len`].
    Request,
    /// Daemon → guest: a known status; `Ok` with a length per [`Op::reply_len`], any other
    /// status with length 0.
    Reply,
}

/// A validated frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The event id.
    pub event_id: u64,
    /// The op.
    pub op: Op,
    /// [`Status::Ok`] in requests.
    pub status: Status,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// The header's wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.event_id.to_le_bytes());
        b[8..10].copy_from_slice(&self.op.code().to_le_bytes());
        b[10..12].copy_from_slice(&self.status.code().to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Parses and validates header bytes (in private memory) for frames of `kind`.
    pub fn parse(kind: FrameKind, b: &[u8; HEADER_LEN]) -> Result<Header, BrokenReason> {
        let event_id = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let op_code = u16::from_le_bytes([b[8], b[9]]);
        let status_code = u16::from_le_bytes([b[10], b[11]]);
        let len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        let op = Op::from_code(op_code).ok_or(BrokenReason::UnknownOp { code: op_code })?;
        let status = match kind {
            FrameKind::Request if status_code != 0 => return Err(BrokenReason::StatusInRequest),
            FrameKind::Request => Status::Ok,
            FrameKind::Reply => Status::from_code(status_code)
                .ok_or(BrokenReason::UnknownStatus { code: status_code })?,
        };
        let range = match (kind, status) {
            (FrameKind::Request, _) => op.request_len(),
            (FrameKind::Reply, Status::Ok) => op.reply_len(),
            (FrameKind::Reply, _) if len != 0 => return Err(BrokenReason::PayloadWithError),
            (FrameKind::Reply, _) => 0..=0,
        };
        if !range.contains(&(len as usize)) {
            return Err(BrokenReason::LengthOutOfRange { op: op_code, len });
        }
        Ok(Header {
            event_id,
            op,
            status,
            len,
        })
    }
}

fn frame(
    out: &mut Vec<u8>,
    event_id: u64,
    op: Op,
    status: Status,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    if let Err(e) = body(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start - HEADER_LEN;
    let header = Header {
        event_id,
        op,
        status,
        len: len as u32,
    };
    out[start..start + HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(())
}

/// Appends a whole request frame to `out` (unchanged on error).
pub fn encode_request(event_id: u64, req: &Request, out: &mut Vec<u8>) -> Result<(), Error> {
    frame(out, event_id, req.op(), Status::Ok, |out| {
        req.encode_payload(out)
            .map_err(|e| Error::Encode(e.status()))
    })
}

/// Appends a whole reply frame to `out` (unchanged on error). Refuses an error reply
/// carrying [`Status::Ok`] and a body whose op differs from `reply.op`.
pub fn encode_reply(reply: &Reply, out: &mut Vec<u8>) -> Result<(), Error> {
    let (status, body) = match &reply.result {
        Ok(body) if body.op() == reply.op => (Status::Ok, Some(body)),
        Err(status) if *status != Status::Ok => (*status, None),
        _ => return Err(Error::Encode(Status::Invalid)),
    };
    frame(out, reply.event_id, reply.op, status, |out| match body {
        Some(b) => b.encode_payload(out).map_err(|e| Error::Encode(e.status())),
        None => Ok(()),
    })
}

/// Where a decoder gets bytes. Implemented by the vchan adapter and by byte slices.
pub trait ByteSource {
    /// Copies exactly `dst.len()` bytes if that many are ready, else takes nothing and
    /// returns `false`.
    fn take_exact(&mut self, dst: &mut [u8]) -> Result<bool, Error>;
    /// Copies up to `dst.len()` bytes; returns how many (0: none ready).
    fn take_some(&mut self, dst: &mut [u8]) -> Result<usize, Error>;
}

impl ByteSource for &[u8] {
    fn take_exact(&mut self, dst: &mut [u8]) -> Result<bool, Error> {
        if self.len() < dst.len() {
            return Ok(false);
        }
        let (head, rest) = self.split_at(dst.len());
        dst.copy_from_slice(head);
        *self = rest;
        Ok(true)
    }

    fn take_some(&mut self, dst: &mut [u8]) -> Result<usize, Error> {
        let n = dst.len().min(self.len());
        let (head, rest) = self.split_at(n);
        dst[..n].copy_from_slice(head);
        *self = rest;
        Ok(n)
    }
}

/// A frame in private memory: a validated header and its payload, not yet parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// Exactly `header.len` bytes.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Parses a request frame's payload.
    pub fn into_request(self) -> Result<(u64, Request), BrokenReason> {
        let req = Request::decode_payload(self.header.op, &self.payload)?;
        Ok((self.header.event_id, req))
    }

    /// Parses a reply frame's payload.
    pub fn into_reply(self) -> Result<Reply, BrokenReason> {
        let h = self.header;
        let result = match h.status {
            Status::Ok => Ok(ReplyBody::decode_payload(h.op, &self.payload)?),
            other => Err(other),
        };
        Ok(Reply {
            event_id: h.event_id,
            op: h.op,
            result,
        })
    }
}

/// A partly received frame.
struct Partial {
    header: Header,
    payload: Vec<u8>,
    filled: usize,
}

/// Reassembles frames from a byte stream; see the [module documentation](self).
pub struct FrameDecoder {
    kind: FrameKind,
    partial: Option<Partial>,
    broken: Option<BrokenReason>,
}

impl FrameDecoder {
    /// A decoder for frames of `kind`.
    pub fn new(kind: FrameKind) -> Self {
        FrameDecoder {
            kind,
            partial: None,
            broken: None,
        }
    }

    /// Whether the decoder is between frames (no header taken without its payload).
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// The violation that stopped this decoder, if any.
    pub fn broken(&self) -> Option<BrokenReason> {
        self.broken
    }

    /// Makes progress on the next frame: `Ok(Some)` when one is complete, `Ok(None)` when
    /// the source has run dry first. `check` sees each header after the built-in
    /// validation and may refuse it. A violation is sticky: every later call returns it.
    pub fn poll<S: ByteSource>(
        &mut self,
        src: &mut S,
        check: impl FnOnce(&Header) -> Result<(), BrokenReason>,
    ) -> Result<Option<Frame>, Error> {
        if let Some(r) = self.broken {
            return Err(Error::Broken(r));
        }
        let mut part = match self.partial.take() {
            Some(p) => p,
            None => {
                let mut raw = [0u8; HEADER_LEN];
                if !src.take_exact(&mut raw)? {
                    return Ok(None);
                }
                let header = Header::parse(self.kind, &raw)
                    .and_then(|h| check(&h).map(|()| h))
                    .map_err(|r| self.fail(r))?;
                Partial {
                    header,
                    payload: vec![0u8; header.len as usize],
                    filled: 0,
                }
            }
        };
        if part.filled < part.payload.len() {
            let got = match src.take_some(&mut part.payload[part.filled..]) {
                Ok(n) => n,
                Err(e) => {
                    self.partial = Some(part);
                    return Err(e);
                }
            };
            part.filled += got;
        }
        if part.filled < part.payload.len() {
            self.partial = Some(part);
            return Ok(None);
        }
        Ok(Some(Frame {
            header: part.header,
            payload: part.payload,
        }))
    }

    /// Records a violation found above the frame layer (a payload that does not parse), so
    /// this decoder reports it from now on too.
    pub fn fail(&mut self, reason: BrokenReason) -> Error {
        Error::Broken(*self.broken.get_or_insert(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Path;

    fn header_bytes(event_id: u64, op: u16, status: u16, len: u32) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&event_id.to_le_bytes());
        b[8..10].copy_from_slice(&op.to_le_bytes());
        b[10..12].copy_from_slice(&status.to_le_bytes());
        b[12..16].copy_from_slice(&len.to_le_bytes());
        b
    }

    #[test]
    fn header_layout_is_little_endian() {
        let h = Header {
            event_id: 0x0102_0304_0506_0708,
            op: Op::FileRead,
            status: Status::NotFound,
            len: 0,
        };
        assert_eq!(h.to_bytes(), header_bytes(0x0102_0304_0506_0708, 3, 1, 0));
        assert_eq!(Header::parse(FrameKind::Reply, &h.to_bytes()), Ok(h));
    }

    #[test]
    fn header_violations_are_named() {
        let p = |k, b: [u8; 16]| Header::parse(k, &b);
        use FrameKind::{Reply as Rep, Request as Req};
        assert_eq!(
            p(Req, header_bytes(1, 0, 0, 0)),
            Err(BrokenReason::UnknownOp { code: 0 })
        );
        assert_eq!(
            p(Req, header_bytes(1, 10, 0, 0)),
            Err(BrokenReason::UnknownOp { code: 10 })
        );
        assert_eq!(
            p(Req, header_bytes(1, 1, 1, 0)),
            Err(BrokenReason::StatusInRequest)
        );
        assert_eq!(
            p(Rep, header_bytes(1, 1, 99, 0)),
            Err(BrokenReason::UnknownStatus { code: 99 })
        );
        assert_eq!(
            p(Rep, header_bytes(1, 3, 1, 4)),
            Err(BrokenReason::PayloadWithError)
        );
        assert_eq!(
            p(Req, header_bytes(1, 1, 0, 1)),
            Err(BrokenReason::LengthOutOfRange { op: 1, len: 1 })
        );
        assert_eq!(
            p(Req, header_bytes(1, 4, 0, u32::MAX)),
            Err(BrokenReason::LengthOutOfRange {
                op: 4,
                len: u32::MAX
            })
        );
        assert_eq!(
            p(Rep, header_bytes(1, 7, 0, 65521)),
            Err(BrokenReason::LengthOutOfRange { op: 7, len: 65521 })
        );
        assert!(p(Rep, header_bytes(1, 7, 0, 65520)).is_ok());
    }

    #[test]
    fn decoder_waits_for_a_whole_header_then_streams_the_payload() {
        let mut bytes = Vec::new();
        let req = Request::FileInfo {
            path: Path::new("a/b").unwrap(),
        };
        encode_request(42, &req, &mut bytes).unwrap();
        let mut d = FrameDecoder::new(FrameKind::Request);
        let mut fed = 0;
        let mut got = None;
        // Feed one byte at a time: nothing is taken until 16 are there.
        for end in 1..=bytes.len() {
            let mut src = &bytes[fed..end];
            let before = src.len();
            let r = d.poll(&mut src, |_| Ok(())).unwrap();
            fed += before - src.len();
            if end < HEADER_LEN {
                assert_eq!(fed, 0);
            }
            if let Some(f) = r {
                got = Some(f);
            }
        }
        assert_eq!(got.unwrap().into_request(), Ok((42, req)));
    }

    #[test]
    fn violations_are_sticky_and_check_hook_runs() {
        let mut bytes = Vec::new();
        encode_request(7, &Request::Ping, &mut bytes).unwrap();
        let mut d = FrameDecoder::new(FrameKind::Request);
        let refuse = |h: &Header| {
            Err(BrokenReason::UnexpectedReply {
                event_id: h.event_id,
            })
        };
        let err = Error::Broken(BrokenReason::UnexpectedReply { event_id: 7 });
        assert_eq!(d.poll(&mut &bytes[..], refuse), Err(err));
        assert_eq!(d.poll(&mut &bytes[..], |_| Ok(())), Err(err));
        assert_eq!(
            d.broken(),
            Some(BrokenReason::UnexpectedReply { event_id: 7 })
        );
    }

    #[test]
    fn encoder_refuses_inconsistent_replies() {
        let mut out = vec![9];
        let bad = Reply {
            event_id: 1,
            op: Op::Ping,
            result: Ok(ReplyBody::Remove),
        };
        assert_eq!(
            encode_reply(&bad, &mut out),
            Err(Error::Encode(Status::Invalid))
        );
        let ok_as_err = Reply::err(1, Op::Ping, Status::Ok);
        assert_eq!(
            encode_reply(&ok_as_err, &mut out),
            Err(Error::Encode(Status::Invalid))
        );
        let big = Reply::ok(1, ReplyBody::FileRead(vec![0; crate::MAX_IO + 1]));
        assert_eq!(
            encode_reply(&big, &mut out),
            Err(Error::Encode(Status::TooLarge))
        );
        assert_eq!(out, [9], "a refused frame leaves the buffer as it was");
    }
}
