//! Serving one guest's RPCs over a byte stream: requests framed by the
//! `rpc` crate come in on one stream and replies go out on another.
//!
//! This is the transport while the daemon does not yet map the guest's
//! vchan rings itself: Debian's `vchan-socket-proxy` (libxenvchan) connects
//! as the vchan client and hands the bytes over on its standard input and
//! output. Requests are handled one after another here (the native
//! transport uses the worker pool); frames are validated by the same
//! decoder as on the ring, and a violation ends the stream with its reason.

use crate::confine::GuestRoot;
use crate::service;
use log::{info, warn};
use rpc::{encode_reply, FrameDecoder, FrameKind, Reply};
use std::io::{Read, Write};

/// How a stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// The peer closed its side.
    Closed {
        /// Requests answered before that.
        served: u64,
    },
    /// The peer sent something the protocol forbids.
    Broken(String),
    /// Reading or writing failed.
    Io(std::io::Error),
}

/// Serves requests from `input`, replying on `output`, until the input ends.
pub fn serve_stream(
    root: &GuestRoot,
    who: &str,
    mut input: impl Read,
    mut output: impl Write,
) -> StreamEnd {
    let mut decoder = FrameDecoder::new(FrameKind::Request);
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut served = 0u64;
    let mut out = Vec::new();
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => {
                info!("{who}: stream closed after {served} requests");
                return StreamEnd::Closed { served };
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return StreamEnd::Io(e),
        };
        pending.extend_from_slice(&chunk[..n]);
        let mut src: &[u8] = &pending;
        loop {
            let frame = match decoder.poll(&mut src, |_| Ok(())) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    warn!("{who}: stream broken: {e:?}");
                    return StreamEnd::Broken(format!("{e:?}"));
                }
            };
            let (event_id, request) = match frame.into_request() {
                Ok(r) => r,
                Err(reason) => {
                    warn!("{who}: malformed request: {reason:?}");
                    return StreamEnd::Broken(format!("{reason:?}"));
                }
            };
            let op = request.op();
            let reply = match service::handle(root, request) {
                Ok(body) => Reply::ok(event_id, body),
                Err(e) => Reply::err(event_id, op, e.status()),
            };
            out.clear();
            if let Err(e) = encode_reply(&reply, &mut out) {
                warn!("{who}: reply to {event_id:#x} does not encode ({e:?}); sending an error");
                out.clear();
                let _ = encode_reply(&Reply::err(event_id, op, rpc::Status::Io), &mut out);
            }
            if let Err(e) = output.write_all(&out).and_then(|()| output.flush()) {
                return StreamEnd::Io(e);
            }
            served += 1;
        }
        // Keep what the decoder did not take (a partial header).
        let consumed = pending.len() - src.len();
        pending.drain(..consumed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::{GuestName, Share};
    use rpc::{encode_request, Path, ReplyBody, Request};

    fn root() -> (tempfile::TempDir, GuestRoot) {
        let dir = tempfile::tempdir().unwrap();
        let share = Share::open(dir.path()).unwrap();
        let guest = share.guest(&GuestName::new("g1").unwrap()).unwrap();
        (dir, guest)
    }

    fn replies(bytes: &[u8]) -> Vec<Reply> {
        let mut d = FrameDecoder::new(FrameKind::Reply);
        let mut src = bytes;
        let mut out = Vec::new();
        while let Some(f) = d.poll(&mut src, |_| Ok(())).unwrap() {
            out.push(f.into_reply().unwrap());
        }
        out
    }

    #[test]
    fn serves_requests_split_anywhere_in_the_stream() {
        let (_dir, root) = root();
        let mut input = Vec::new();
        encode_request(1, &Request::Ping, &mut input).unwrap();
        let path = Path::new("f.txt").unwrap();
        let write = Request::FileWrite {
            path: path.clone(),
            offset: 0,
            flags: rpc::WRITE_CREATE,
            data: b"abc".to_vec(),
        };
        encode_request(2, &write, &mut input).unwrap();
        encode_request(
            3,
            &Request::FileRead {
                path,
                offset: 0,
                len: 10,
            },
            &mut input,
        )
        .unwrap();
        // A reader that hands over 5 bytes at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(5).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut output = Vec::new();
        match serve_stream(&root, "g1", Trickle(&input), &mut output) {
            StreamEnd::Closed { served } => assert_eq!(served, 3),
            other => panic!("{other:?}"),
        }
        let r = replies(&output);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].result, Ok(ReplyBody::Ping));
        assert_eq!(r[1].result, Ok(ReplyBody::FileWrite { written: 3 }));
        assert_eq!(r[2].result, Ok(ReplyBody::FileRead(b"abc".to_vec())));
        assert_eq!(r.iter().map(|r| r.event_id).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn errors_are_replies_and_garbage_ends_the_stream() {
        let (_dir, root) = root();
        let mut input = Vec::new();
        encode_request(
            7,
            &Request::FileRead {
                path: Path::new("missing").unwrap(),
                offset: 0,
                len: 1,
            },
            &mut input,
        )
        .unwrap();
        input.extend_from_slice(&[0xff; 16]);
        let mut output = Vec::new();
        assert!(matches!(
            serve_stream(&root, "g1", &input[..], &mut output),
            StreamEnd::Broken(_)
        ));
        let r = replies(&output);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].result, Err(rpc::Status::NotFound));
    }
}
