//! Messages over a vchan: the [`Caller`] (the guest: sends requests, receives replies) and
//! the [`Responder`] (the shadowdaemon: receives requests, sends replies).
//!
//! Either is built on either vchan role; in this project the caller is the vchan server.
//!
//! # Driving a channel
//!
//! Nothing blocks. The owner calls [`Caller::call`] / [`Responder::reply`] to queue frames
//! and [`Caller::poll`] / [`Responder::poll`] to push queued bytes and take one incoming
//! message, until `poll` returns `Ok(None)`. Then it calls `take_notify` and kicks the
//! event channel if that says [`Notify::Yes`]: one kick per batch, however many frames
//! moved. Then it waits for the next event-channel notification. Draining until
//! `Ok(None)` is what leaves the "kick me" bits set, so no wake-up is lost.
//!
//! # Bounds
//!
//! * Outgoing bytes that do not fit in the ring wait in an outbox of at most
//!   [`Config::outbox_bytes`]; a frame that would overflow it is refused with
//!   [`Error::Full`] (back-pressure, nothing is lost).
//! * A caller has at most [`Config::max_in_flight`] requests outstanding
//!   ([`Error::TooManyInFlight`]), each under a distinct event id.
//! * An incoming frame costs one allocation of its validated length (≤ 64 KiB).
//!
//! # Violations
//!
//! The caller checks every reply against the request in flight under its event id
//! (unknown id, other op, more data than asked) from the header alone, before reading the
//! payload, like Linux's hardened netfront. Any violation breaks the vchan for good
//! ([`Vchan::broken`]); every later call returns the same [`Error::Broken`]. The owner then
//! fails the outstanding events ([`Caller::abandon_all`]) and closes the channel.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use vecmap::VecMap;

use crate::error::{BrokenReason, Error};
use crate::frame::{
    encode_reply, encode_request, ByteSource, Frame, FrameDecoder, FrameKind, Header,
};
use crate::limits::{HEADER_LEN, MAX_FRAME};
use crate::mem::SharedMem;
use crate::message::{Reply, Request};
use crate::op::Op;
use crate::status::Status;
use crate::vchan::{Notify, Vchan, VchanStats};

/// Limits of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most bytes of encoded frames waiting for ring space. Raised to [`MAX_FRAME`] if
    /// smaller, so that any single frame can be queued.
    pub outbox_bytes: usize,
    /// Most requests a [`Caller`] has in flight (ignored by a [`Responder`]).
    pub max_in_flight: usize,
}

impl Default for Config {
    /// Two full frames of outbox, 256 requests in flight.
    fn default() -> Self {
        Config {
            outbox_bytes: 2 * MAX_FRAME,
            max_in_flight: 256,
        }
    }
}

/// Message-level counters. All only ever grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Frames queued for sending (requests by a caller, replies by a responder).
    pub frames_sent: u64,
    /// Frames received and parsed.
    pub frames_received: u64,
    /// Kicks the owner was told to make ([`Notify::Yes`] from `take_notify`).
    pub kicks: u64,
    /// The vchan's byte-level counters.
    pub vchan: VchanStats,
}

/// The vchan seen as a [`ByteSource`], collecting the notifications its reads produce.
struct Source<'a, M> {
    vchan: &'a mut Vchan<M>,
    notify: &'a mut Notify,
}

impl<M: SharedMem> ByteSource for Source<'_, M> {
    fn take_exact(&mut self, dst: &mut [u8]) -> Result<bool, Error> {
        match self.vchan.recv(dst)? {
            Some(n) => {
                *self.notify |= n;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn take_some(&mut self, dst: &mut [u8]) -> Result<usize, Error> {
        let t = self.vchan.read(dst)?;
        *self.notify |= t.notify;
        Ok(t.bytes)
    }
}

/// What both directions share: the vchan, the incoming decoder, the bounded outbox and
/// the notification that is owed.
struct Framed<M> {
    vchan: Vchan<M>,
    decoder: FrameDecoder,
    outbox: VecDeque<u8>,
    outbox_cap: usize,
    scratch: Vec<u8>,
    notify: Notify,
    stats: ChannelStats,
}

impl<M: SharedMem> Framed<M> {
    fn new(vchan: Vchan<M>, kind: FrameKind, config: &Config) -> Self {
        Framed {
            vchan,
            decoder: FrameDecoder::new(kind),
            outbox: VecDeque::new(),
            outbox_cap: config.outbox_bytes.max(MAX_FRAME),
            scratch: Vec::new(),
            notify: Notify::No,
            stats: ChannelStats::default(),
        }
    }

    /// Turns a violation (from any layer) into the vchan's sticky broken state.
    fn sticky(&mut self, e: Error) -> Error {
        match e {
            Error::Broken(r) => self.vchan.break_with(r),
            other => other,
        }
    }

    /// Fails unless the channel can carry a frame now.
    fn ready_to_send(&mut self) -> Result<(), Error> {
        if let Some(r) = self.vchan.broken() {
            return Err(Error::Broken(r));
        }
        if self.vchan.is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Queues the frame in `scratch`: straight into the ring if nothing waits before it,
    /// the rest (or all) into the outbox; [`Error::Full`] if the outbox cannot take it.
    fn send_scratch(&mut self) -> Result<(), Error> {
        // Make room first: what waits in the outbox may fit in the ring by now.
        self.flush()?;
        if self.outbox.len() + self.scratch.len() > self.outbox_cap {
            return Err(Error::Full);
        }
        let mut sent = 0;
        if self.outbox.is_empty() {
            match self.vchan.write(&self.scratch) {
                Ok(t) => {
                    self.notify |= t.notify;
                    sent = t.bytes;
                }
                Err(e) => return Err(self.sticky(e)),
            }
        }
        self.outbox.extend(&self.scratch[sent..]);
        self.stats.frames_sent += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.ready_to_send()?;
        while !self.outbox.is_empty() {
            let (front, _) = self.outbox.as_slices();
            let t = match self.vchan.write(front) {
                Ok(t) => t,
                Err(e) => return Err(self.sticky(e)),
            };
            self.notify |= t.notify;
            let whole = t.bytes == front.len();
            self.outbox.drain(..t.bytes);
            if !whole {
                break;
            }
        }
        Ok(())
    }

    fn poll_frame(
        &mut self,
        check: impl FnOnce(&Header) -> Result<(), BrokenReason>,
    ) -> Result<Option<Frame>, Error> {
        self.flush()?;
        let mut src = Source {
            vchan: &mut self.vchan,
            notify: &mut self.notify,
        };
        match self.decoder.poll(&mut src, check) {
            Ok(f) => Ok(f),
            Err(e) => Err(self.sticky(e)),
        }
    }

    /// Records a payload that did not parse.
    fn payload_violation(&mut self, r: BrokenReason) -> Error {
        self.decoder.fail(r);
        self.vchan.break_with(r)
    }

    fn take_notify(&mut self) -> Notify {
        let n = core::mem::take(&mut self.notify);
        if n.is_yes() {
            self.stats.kicks += 1;
        }
        n
    }

    fn stats(&self) -> ChannelStats {
        ChannelStats {
            vchan: self.vchan.stats(),
            ..self.stats
        }
    }

    fn close(&mut self) -> Notify {
        let n = self.vchan.close() | core::mem::take(&mut self.notify);
        if n.is_yes() {
            self.stats.kicks += 1;
        }
        n
    }
}

/// What the caller expects back for a request in flight.
#[derive(Clone, Copy, Debug)]
struct Expect {
    op: Op,
    data_limit: u32,
}

impl Expect {
    /// Checks a reply header against the request, before any payload is read.
    fn check(&self, h: &Header) -> Result<(), BrokenReason> {
        if h.op != self.op {
            return Err(BrokenReason::ReplyOpMismatch {
                event_id: h.event_id,
            });
        }
        if h.status != Status::Ok {
            return Ok(());
        }
        // A data reply is a u32 length then the bytes.
        let data = (h.len as usize).saturating_sub(4);
        let limit = self.data_limit as usize;
        let ok = match self.op {
            Op::Random => data == limit,
            Op::FileRead => data <= limit,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(BrokenReason::ReplyDataLength {
                event_id: h.event_id,
            })
        }
    }
}

/// The calling side (the guest): sends requests keyed by event id, receives their replies.
pub struct Caller<M> {
    framed: Framed<M>,
    in_flight: VecMap<u64, Expect>,
    max_in_flight: usize,
}

impl<M: SharedMem> Caller<M> {
    /// Wraps a vchan end.
    pub fn new(vchan: Vchan<M>, config: Config) -> Self {
        Caller {
            framed: Framed::new(vchan, FrameKind::Reply, &config),
            in_flight: VecMap::new(),
            max_in_flight: config.max_in_flight,
        }
    }

    /// Sends a request under `event_id` (queued if the ring is full). On error nothing was
    /// sent and nothing is in flight under that id.
    pub fn call(&mut self, event_id: u64, req: &Request) -> Result<(), Error> {
        let f = &mut self.framed;
        f.ready_to_send()?;
        if self.in_flight.contains_key(&event_id) {
            return Err(Error::DuplicateEventId);
        }
        if self.in_flight.len() >= self.max_in_flight {
            return Err(Error::TooManyInFlight);
        }
        f.scratch.clear();
        encode_request(event_id, req, &mut f.scratch)?;
        f.send_scratch()?;
        self.in_flight.insert(
            event_id,
            Expect {
                op: req.op(),
                data_limit: req.reply_data_limit(),
            },
        );
        Ok(())
    }

    /// Pushes queued bytes, then returns the next complete reply, if any. Call until
    /// `Ok(None)` before waiting for a notification.
    pub fn poll(&mut self) -> Result<Option<Reply>, Error> {
        let in_flight = &self.in_flight;
        let frame = self
            .framed
            .poll_frame(|h| match in_flight.get(&h.event_id) {
                Some(e) => e.check(h),
                None => Err(BrokenReason::UnexpectedReply {
                    event_id: h.event_id,
                }),
            })?;
        let Some(frame) = frame else {
            return Ok(None);
        };
        let reply = frame
            .into_reply()
            .map_err(|r| self.framed.payload_violation(r))?;
        self.in_flight.remove(&reply.event_id);
        self.framed.stats.frames_received += 1;
        Ok(Some(reply))
    }

    /// Pushes queued bytes into the ring as far as they fit.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.framed.flush()
    }

    /// Whether the peer must be kicked for what happened since the last call.
    pub fn take_notify(&mut self) -> Notify {
        self.framed.take_notify()
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether a request is in flight under `event_id`.
    pub fn is_in_flight(&self, event_id: u64) -> bool {
        self.in_flight.contains_key(&event_id)
    }

    /// Forgets every request in flight and returns their event ids (ascending), for the
    /// owner to fail them after the channel broke or closed.
    pub fn abandon_all(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.in_flight).into_keys().collect()
    }

    /// Bytes waiting for ring space.
    pub fn queued_bytes(&self) -> usize {
        self.framed.outbox.len()
    }

    /// Counters.
    pub fn stats(&self) -> ChannelStats {
        self.framed.stats()
    }

    /// The vchan end underneath.
    pub fn vchan(&self) -> &Vchan<M> {
        &self.framed.vchan
    }

    /// The vchan end underneath, e.g. to read [`Vchan::peer_state`].
    pub fn vchan_mut(&mut self) -> &mut Vchan<M> {
        &mut self.framed.vchan
    }

    /// Closes the vchan end; the result includes any kick still owed.
    pub fn close(&mut self) -> Notify {
        self.framed.close()
    }
}

/// A request as the responder receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The event id to answer with.
    pub event_id: u64,
    /// The request.
    pub request: Request,
}

/// The answering side (the shadowdaemon): receives requests, sends replies.
pub struct Responder<M> {
    framed: Framed<M>,
}

impl<M: SharedMem> Responder<M> {
    /// Wraps a vchan end.
    pub fn new(vchan: Vchan<M>, config: Config) -> Self {
        Responder {
            framed: Framed::new(vchan, FrameKind::Request, &config),
        }
    }

    /// Pushes queued bytes, then returns the next complete request, if any. Call until
    /// `Ok(None)` before waiting for a notification; stop calling while [`Self::reply`]
    /// reports [`Error::Full`] (back-pressure travels to the guest through the ring).
    pub fn poll(&mut self) -> Result<Option<Incoming>, Error> {
        let Some(frame) = self.framed.poll_frame(|_| Ok(()))? else {
            return Ok(None);
        };
        let (event_id, request) = frame
            .into_request()
            .map_err(|r| self.framed.payload_violation(r))?;
        self.framed.stats.frames_received += 1;
        Ok(Some(Incoming { event_id, request }))
    }

    /// Sends a reply (queued if the ring is full).
    pub fn reply(&mut self, reply: &Reply) -> Result<(), Error> {
        let f = &mut self.framed;
        f.ready_to_send()?;
        f.scratch.clear();
        encode_reply(reply, &mut f.scratch)?;
        f.send_scratch()
    }

    /// Whether a reply of `payload` bytes would be queued now rather than refused with
    /// [`Error::Full`].
    pub fn has_room(&self, payload: usize) -> bool {
        self.framed.outbox.len() + HEADER_LEN + payload <= self.framed.outbox_cap
    }

    /// Pushes queued bytes into the ring as far as they fit.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.framed.flush()
    }

    /// Whether the peer must be kicked for what happened since the last call.
    pub fn take_notify(&mut self) -> Notify {
        self.framed.take_notify()
    }

    /// Bytes waiting for ring space.
    pub fn queued_bytes(&self) -> usize {
        self.framed.outbox.len()
    }

    /// Counters.
    pub fn stats(&self) -> ChannelStats {
        self.framed.stats()
    }

    /// The vchan end underneath.
    pub fn vchan(&self) -> &Vchan<M> {
        &self.framed.vchan
    }

    /// The vchan end underneath, e.g. to read [`Vchan::peer_state`].
    pub fn vchan_mut(&mut self) -> &mut Vchan<M> {
        &mut self.framed.vchan
    }

    /// Closes the vchan end; the result includes any kick still owed.
    pub fn close(&mut self) -> Notify {
        self.framed.close()
    }
}
