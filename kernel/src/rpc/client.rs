//! The guest's end of the RPC service: one long-lived vchan to the dom0
//! shadowdaemon, multiplexed by eventId. A system call sends a request
//! tagged with its event's id and returns the id at once; each reply,
//! taken at the system-call return point, completes that event.
//!
//! # When the daemon goes away
//!
//! The daemon arms a grant-unmap notification on its liveness byte, so when
//! it exits or is killed, Linux clears the byte and kicks our port. The
//! replies it had already put in the ring are our memory and are taken
//! first; then the channel is offered again: old grants ended (pages the
//! peer still maps are set aside, never reused under it), the same pages
//! granted afresh with a new port, and every request still unanswered sent
//! again under its own event id, in the order first sent. The `rpc-offer`
//! process publishes the new keys (it waits on [`watch_offer`]). The daemon
//! answers a request it already carried out from its journal, so each event
//! completes exactly once. While no daemon is connected, new requests queue
//! in the ring.
//!
//! # When the daemon will not serve this domain
//!
//! A daemon that refuses the domain (its name cannot name a folder, or is
//! served for another domain already) says so in xenstore, and the
//! `rpc-offer` process tells [`not_served`]. Every request in flight then
//! completes with `NotServed`, and so does every later one, at once,
//! instead of waiting for an answer that would never come. The channel is
//! offered afresh if requests were in flight, so that none of them is
//! carried out later by a daemon that does serve the domain after all:
//! they were told they failed. When the daemon withdraws its refusal,
//! requests are sent again as before.

use crate::rpc::vchan::{self as vchans, ServerPages};
use crate::status::{SysError, SysResult};
use alloc::vec::Vec;
use events::Completion;
use events::{EventId, Status, Value};
use hal::hypercall;
use hal::shared::SharedRegion;
use log::{error, info, warn};
use rpc::{Caller, Config, ReplyBody, Request};
use spin::Mutex;

/// Ring size each way: 64 KiB (16 granted pages each).
const RING_BYTES: usize = 64 * 1024;
/// Requests in flight at once.
const MAX_IN_FLIGHT: usize = 256;
/// Bytes of unanswered requests kept to send again: all of them must fit
/// in a fresh channel's ring and outbox at once (64 KiB each).
const RESEND_BUDGET: usize = 96 * 1024;
/// Page sets the old daemon may still map, set aside until it lets go.
const MAX_SET_ASIDE: usize = 2;
/// The daemon's domain.
const DOM0: u16 = 0;

/// One set of channel pages with the grants that expose it.
struct Granted {
    pages: ServerPages,
    /// Ring pages first, the interface page last (ring-ref).
    grants: Vec<u32>,
}

impl Granted {
    /// Ends every grant the peer no longer maps; whether none is left.
    fn end_grants(&mut self) -> bool {
        self.grants
            .retain(|&g| crate::mm::pages::end_kernel_grant(g).is_err());
        self.grants.is_empty()
    }
}

struct Client {
    caller: Caller<SharedRegion>,
    port: u32,
    /// The pages of the channel offered now (None only once offering failed).
    current: Option<Granted>,
    /// Requests sent and not answered, in the order sent, with their size.
    sent: Vec<(u64, Request, usize)>,
    sent_bytes: usize,
    /// Offers made (1 at boot) and offers the rpc-offer process has taken.
    offers: u32,
    taken: u32,
    /// The rpc-offer process's event waiting for the next offer.
    offer_waiter: Option<EventId>,
    /// Earlier page sets still mapped by the peer, and one free for reuse.
    set_aside: Vec<Granted>,
    spare: Option<ServerPages>,
    /// The daemon said it will not serve this domain.
    not_served: bool,
    /// The trace batch in flight (`event::trace`): its id and bytes of
    /// records. One at a time, so that the daemon appends them in order.
    trace: Option<(u64, usize)>,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);

/// Offers the channel to dom0; returns (ring-ref, port) to publish.
pub fn init() -> SysResult<(u32, u32)> {
    let pages = ServerPages::alloc(RING_BYTES)?;
    let (caller, port, current) = open_channel(pages)?;
    let offer = (ring_ref(&current), port);
    *CLIENT.lock() = Some(Client {
        caller,
        port,
        current: Some(current),
        sent: Vec::new(),
        sent_bytes: 0,
        offers: 1,
        taken: 0,
        offer_waiter: None,
        set_aside: Vec::new(),
        spare: None,
        not_served: false,
        trace: None,
    });
    info!(
        "rpc: channel to dom0 ready (ring-ref {}, port {})",
        offer.0, offer.1
    );
    Ok(offer)
}

fn ring_ref(g: &Granted) -> u32 {
    *g.grants.last().expect("the interface page is granted")
}

/// A server on `pages` (granted to dom0) and a fresh unbound port.
fn open_channel(pages: ServerPages) -> SysResult<(Caller<SharedRegion>, u32, Granted)> {
    let (vchan, grants) = pages.serve(DOM0)?;
    let mut granted = Granted { pages, grants };
    let port = match hypercall::evtchn_alloc_unbound(DOM0) {
        Ok(p) => p,
        Err(e) => {
            granted.end_grants();
            return Err(SysError::Hypervisor(e.0));
        }
    };
    let config = Config {
        outbox_bytes: RING_BYTES,
        max_in_flight: MAX_IN_FLIGHT,
    };
    Ok((Caller::new(vchan, config), port, granted))
}

pub fn port() -> Option<u32> {
    CLIENT.lock().as_ref().map(|c| c.port)
}

fn rpc_error(e: rpc::Error) -> SysError {
    match e {
        rpc::Error::Full | rpc::Error::TooManyInFlight => SysError::Busy,
        rpc::Error::Encode(_) | rpc::Error::ExceedsRing => SysError::InvalidArgument,
        _ => SysError::ServiceBroken,
    }
}

/// What a request weighs against the resend budget: an upper bound of its
/// frame (header, fixed fields, path, data), without encoding it a second
/// time just to measure it.
fn weight(req: &Request) -> usize {
    const FIXED: usize = 32; // offsets, lengths, flags, cursors: at most this
    let (path, data) = match req {
        Request::Ping | Request::Random { .. } => (0, 0),
        Request::Trace { records, .. } => (0, records.len()),
        Request::FileWrite { path, data, .. } => (path.as_str().len(), data.len()),
        Request::FileRead { path, .. }
        | Request::FileInfo { path }
        | Request::DirCreate { path }
        | Request::DirList { path, .. }
        | Request::Remove { path } => (path.as_str().len(), 0),
    };
    rpc::HEADER_LEN + FIXED + path + data
}

/// Sends `req` tagged with `event`; the reply completes the event. While
/// the daemon will not serve this domain, nothing is sent and the event
/// completes at once (the completion to apply).
pub fn call(event: EventId, req: &Request) -> SysResult<Option<Completion>> {
    let mut guard = CLIENT.lock();
    let c = guard.as_mut().ok_or(SysError::ServiceBroken)?;
    if c.not_served {
        return Ok(Some(Completion {
            event,
            status: Status::NotServed,
            value: Value::Empty,
        }));
    }
    let size = weight(req);
    if c.sent_bytes + size > RESEND_BUDGET {
        return Err(SysError::Busy);
    }
    c.caller.call(event.0, req).map_err(rpc_error)?;
    REQUESTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    c.sent.push((event.0, req.clone(), size));
    c.sent_bytes += size;
    let _ = c.caller.flush();
    vchans::kick(c.port, c.caller.take_notify());
    Ok(None)
}

/// The daemon in dom0 says it will not serve this domain, for the reason
/// `Some(code)` (a short word the `rpc-offer` process checked), or no
/// longer says so (`None`). Returns the completions to apply: every request
/// in flight, with `NotServed`, and the `rpc-offer` process's offer event
/// if the channel had to be offered afresh.
pub fn not_served(reason: Option<&str>) -> Vec<Completion> {
    let mut done = Vec::new();
    let mut guard = CLIENT.lock();
    let Some(c) = guard.as_mut() else { return done };
    let Some(code) = reason else {
        if core::mem::take(&mut c.not_served) {
            info!("rpc: the daemon in dom0 no longer refuses this domain");
        }
        return done;
    };
    if c.not_served {
        return done;
    }
    c.not_served = true;
    warn!(
        "rpc: the daemon in dom0 will not serve this domain ({code}; its log says why): \
         {} requests in flight and all later ones complete NotServed",
        c.sent.len()
    );
    if !c.sent.is_empty() {
        c.fail_all(Status::NotServed, &mut done);
        if let Err(e) = c.offer_again(true) {
            error!("rpc: cannot offer a fresh channel: {e}");
        }
    }
    done.extend(c.take_offer());
    done
}

/// An event of the rpc-offer process that completes, with
/// `ring_ref << 32 | port`, once the channel has been offered anew and
/// must be published; at once if that already happened.
pub fn watch_offer(event: EventId) -> SysResult<Option<Completion>> {
    let mut guard = CLIENT.lock();
    let c = guard.as_mut().ok_or(SysError::ServiceBroken)?;
    if c.offer_waiter.is_some() {
        return Err(SysError::Busy);
    }
    c.offer_waiter = Some(event);
    Ok(c.take_offer())
}

impl Client {
    /// Completes the offer waiter if an offer was made it has not taken.
    fn take_offer(&mut self) -> Option<Completion> {
        if self.taken == self.offers {
            return None;
        }
        let current = self.current.as_ref()?;
        let word = (u64::from(ring_ref(current)) << 32) | u64::from(self.port);
        let event = self.offer_waiter.take()?;
        self.taken = self.offers;
        Some(Completion {
            event,
            status: Status::Ok,
            value: Value::Word(word),
        })
    }

    fn answered(&mut self, id: u64) {
        if let Some(i) = self.sent.iter().position(|(e, _, _)| *e == id) {
            let (_, _, size) = self.sent.remove(i);
            self.sent_bytes -= size;
        }
    }

    /// Fails every request in flight with `status`.
    fn fail_all(&mut self, status: Status, done: &mut Vec<Completion>) {
        self.caller.abandon_all();
        // The trace batch's id names no event: its completion is ignored.
        if let Some((_, bytes)) = self.trace.take() {
            crate::event::trace::lost(bytes);
        }
        for (id, _, _) in self.sent.drain(..) {
            done.push(Completion {
                event: EventId(id),
                status,
                value: Value::Empty,
            });
        }
        self.sent_bytes = 0;
    }

    /// Closes the channel whose daemon went away and offers a new one, then
    /// sends again what is unanswered. After a restore the old port is not
    /// ours any more (its number may name a port bound since): not closed.
    fn offer_again(&mut self, close_port: bool) -> SysResult<()> {
        let _ = self.caller.close();
        if close_port {
            if let Err(e) = hypercall::evtchn_close(self.port) {
                warn!("rpc: closing port {}: {e}", self.port);
            }
        }
        // Page sets the peer has let go of since become the spare.
        let mut i = 0;
        while i < self.set_aside.len() {
            if self.set_aside[i].end_grants() {
                let freed = self.set_aside.swap_remove(i);
                self.spare.get_or_insert(freed.pages);
            } else {
                i += 1;
            }
        }
        let mut old = self.current.take().ok_or(SysError::ServiceBroken)?;
        let pages = if old.end_grants() {
            old.pages
        } else if self.set_aside.len() >= MAX_SET_ASIDE {
            error!(
                "rpc: dom0 still maps {} earlier channels; not offering another",
                self.set_aside.len() + 1
            );
            self.set_aside.push(old);
            return Err(SysError::ServiceBroken);
        } else {
            warn!("rpc: dom0 still maps the old channel's pages; set aside");
            self.set_aside.push(old);
            match self.spare.take() {
                Some(p) => p,
                None => ServerPages::alloc(RING_BYTES)?,
            }
        };
        // The old channel's bytes must not leak into the new one.
        pages.region.zero();
        let (caller, port, granted) = open_channel(pages)?;
        self.caller = caller;
        self.port = port;
        self.current = Some(granted);
        self.offers += 1;
        let resend = core::mem::take(&mut self.sent);
        let count = resend.len();
        self.sent_bytes = 0;
        for (id, req, size) in resend {
            // Fits: the budget is below what ring and outbox hold.
            if let Err(e) = self.caller.call(id, &req) {
                error!("rpc: event {id} cannot be sent again: {e:?}");
                continue;
            }
            self.sent.push((id, req, size));
            self.sent_bytes += size;
        }
        let _ = self.caller.flush();
        info!(
            "rpc: channel offered again (ring-ref {}, port {}); {count} requests sent again",
            ring_ref(self.current.as_ref().expect("just set")),
            self.port
        );
        Ok(())
    }
}

/// Takes every reply that arrived (deferred work for the channel's port);
/// offers the channel again when the daemon has gone.
pub fn service() -> Vec<Completion> {
    PORT_EVENTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let mut done = Vec::new();
    let mut guard = CLIENT.lock();
    let Some(c) = guard.as_mut() else { return done };
    loop {
        match c.caller.poll() {
            Ok(Some(reply)) => {
                REPLIES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                c.answered(reply.event_id);
                // A trace batch's answer: its id names no event, so the
                // completion below is ignored.
                if let Some((id, bytes)) = c.trace {
                    if id == reply.event_id {
                        c.trace = None;
                        if reply.result.is_err() {
                            crate::event::trace::lost(bytes);
                        }
                    }
                }
                let event = EventId(reply.event_id);
                let (status, value) = match reply.result {
                    Ok(body) => (Status::Ok, value_of(body)),
                    Err(s) => (Status::Remote(s.code() as u32), Value::Empty),
                };
                done.push(Completion {
                    event,
                    status,
                    value,
                });
            }
            Ok(None) => break,
            Err(e) => {
                match e {
                    rpc::Error::PeerClosed => info!("rpc: the daemon in dom0 went away"),
                    other => error!("rpc: channel to dom0 failed: {other:?}"),
                }
                if let Err(e) = c.offer_again(true) {
                    error!("rpc: cannot offer the channel again ({e}); failing what is in flight");
                    // No channel can carry them any more.
                    let unavailable = rpc::Status::Unavailable.code() as u32;
                    c.fail_all(Status::Remote(unavailable), &mut done);
                }
                break;
            }
        }
    }
    let _ = c.caller.flush();
    vchans::kick(c.port, c.caller.take_notify());
    done.extend(c.take_offer());
    done
}

/// The domain runs on as a new one (restored or migrated): the channel's
/// port and grants went with the old domain, as if the daemon had gone.
/// The channel is offered anew (`rpc-offer` publishes it) and what was
/// unanswered is sent again, replies left unread in the old ring included
/// (the ring may have been copied half-written while the daemon wrote): the
/// daemon answers from its journal, keyed by this VM and this boot (the
/// boot id rpc-offer publishes), what it had already carried out. Returns
/// what could not be carried over (failed).
pub fn resume() -> Vec<Completion> {
    let mut done = Vec::new();
    let mut guard = CLIENT.lock();
    let Some(c) = guard.as_mut() else { return done };
    info!("rpc: restored: offering the channel again");
    if let Err(e) = c.offer_again(false) {
        error!("rpc: cannot offer the channel again ({e}); failing what is in flight");
        let unavailable = rpc::Status::Unavailable.code() as u32;
        c.fail_all(Status::Remote(unavailable), &mut done);
    }
    done.extend(c.take_offer());
    done
}

/// The value a reply completes its event with (the kinds `sys` created
/// the events with).
fn value_of(body: ReplyBody) -> Value {
    match body {
        ReplyBody::Ping | ReplyBody::DirCreate | ReplyBody::Remove | ReplyBody::Trace => {
            Value::Empty
        }
        ReplyBody::Random(bytes) | ReplyBody::FileRead(bytes) => Value::Bytes(bytes),
        ReplyBody::FileWrite { written } => Value::Word(written as u64),
        ReplyBody::FileInfo(info) => Value::Bytes(encode_info(&info)),
        ReplyBody::DirList { entries, done } => {
            // One byte "done" flag, then NUL-terminated names.
            let mut out = alloc::vec![done as u8];
            for e in entries {
                out.extend_from_slice(e.name.as_str().as_bytes());
                out.push(0);
            }
            Value::Bytes(out)
        }
    }
}

/// FileInfo as bytes: kind u8, perm u16, size u64, mtime_s i64, mtime_ns
/// u32, little-endian (23 bytes).
fn encode_info(i: &rpc::FileInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(23);
    out.push(i.kind as u8);
    out.extend_from_slice(&i.perm.to_le_bytes());
    out.extend_from_slice(&i.size.to_le_bytes());
    out.extend_from_slice(&i.mtime_s.to_le_bytes());
    out.extend_from_slice(&i.mtime_ns.to_le_bytes());
    out
}

/// Ships the next trace batch (a full buffer; with `last`, whatever is
/// left) unless one is in flight; returns whether one is in flight now.
/// A batch the daemon cannot get (not served, no channel, or at the end no
/// daemon connected) is dropped and counted.
pub fn ship_trace(last: bool) -> bool {
    loop {
        let absent = {
            let mut guard = CLIENT.lock();
            let Some(c) = guard.as_mut() else {
                return false;
            };
            // At the end, with no daemon to answer (the batch in flight
            // waits in the ring for one), waiting would only delay the
            // power-off: it and the rest are dropped.
            let absent =
                last && !matches!(c.caller.vchan_mut().peer_state(), Ok(rpc::PeerState::Live));
            if let Some((_, bytes)) = c.trace {
                if !absent {
                    return true;
                }
                c.trace = None;
                crate::event::trace::lost(bytes);
            }
            absent
        };
        let Some((seq, dropped, records)) = crate::event::trace::take(last) else {
            return false;
        };
        let bytes = records.len();
        let id = crate::proc::sched::foreign_id(seq);
        let req = Request::Trace {
            seq: seq.into(),
            dropped,
            records,
        };
        if !absent && matches!(call(id, &req), Ok(None)) {
            if let Some(c) = CLIENT.lock().as_mut() {
                c.trace = Some((id.0, bytes));
            }
            return true;
        }
        crate::event::trace::lost(bytes);
        if !last {
            return false;
        }
    }
}

/// Notifications taken on the channel's port (calls of [`service`]).
static PORT_EVENTS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The channel's counters for benchmarks: the current channel's (its
/// `kicks` are the notifications the guest sent on the port; they restart
/// when the channel is offered again) and the notifications taken on the
/// port since boot.
pub fn stats() -> Option<(rpc::ChannelStats, u64)> {
    let guard = CLIENT.lock();
    let c = guard.as_ref()?;
    let events = PORT_EVENTS.load(core::sync::atomic::Ordering::Relaxed);
    Some((c.caller.stats(), events))
}

/// Requests sent (each once, however often sent again) and replies taken,
/// since boot: the live figures' `rpc_sent` and `rpc_answered`.
static REQUESTS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static REPLIES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Requests sent and replies taken since boot.
pub fn totals() -> (u64, u64) {
    use core::sync::atomic::Ordering::Relaxed;
    (REQUESTS.load(Relaxed), REPLIES.load(Relaxed))
}

/// The RPC channel as an event source: the daemon's replies on its port
/// complete events.
pub struct RpcSource;

impl crate::event::Source for RpcSource {
    fn name(&self) -> &'static str {
        "rpc"
    }
    fn port(&self) -> Option<u32> {
        port()
    }
    fn on_port(&self) -> Vec<Completion> {
        service()
    }
    fn poll(&self) -> Vec<Completion> {
        if crate::event::trace::on() {
            ship_trace(false);
        }
        Vec::new()
    }
}
