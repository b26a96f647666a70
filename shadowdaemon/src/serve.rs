//! One guest's connection: take requests from the ring, run them on the pool, send the
//! replies in the order they finish.
//!
//! # Plugging in a transport
//!
//! The loop knows nothing of Xen. The transport (xenstore watch, gntdev mapping,
//! `/dev/xen/evtchn`) builds the pieces and calls [`Connection::run`] on a thread of its
//! own, one per guest:
//!
//! * an [`rpc::Responder`] over the guest's vchan pages, as any [`SharedMem`] (with
//!   [`rpc::Config::default`], its outbox holds two frames);
//! * an [`EventChannel`]: `notify` kicks the guest's port, `wait` sleeps until the guest
//!   kicks *or* a [`Wake`] from [`EventChannel::waker`] is called (workers call it when a
//!   reply is ready, the pool when a slot frees, [`Stopper::stop`] to end the loop). Over
//!   `/dev/xen/evtchn` that is a `poll` on the evtchn fd and an `eventfd`, unmasking the
//!   port delivered last time first (after the hold the loop asks for, see *Kick
//!   storms*); both are sticky, so a wake before the sleep is not lost;
//! * the guest's [`GuestRoot`] (from [`crate::confine::Share::guest`], after
//!   [`GuestName`] validated the xenstore name), its domid, a [`Handler`] (normally
//!   [`crate::service::handle`]) and the shared [`Pool`].
//!
//! [`Connection::stopper`] gives the handle to stop it (the guest went away in xenstore,
//! the daemon shuts down). `run` returns why it ended; it has already logged that and
//! closed its end of the vchan. Nothing in one connection touches another: a broken ring
//! ends only its own loop, and its queued jobs are skipped.
//!
//! # The loop
//!
//! Each turn: move finished replies into the ring (in completion order, so a `Ping`
//! behind a slow read is answered first); then take requests from the ring and hand
//! them to the pool, until the ring has none; then kick the guest if the rpc crate says
//! it asked to be told ([`rpc::Notify`]); then, if nothing moved, sleep. Draining the
//! ring until it is empty is what leaves the "kick me" bit set, so no wake-up is lost.
//!
//! # Kick storms
//!
//! A guest can kick its port in a loop without sending anything. Each kick that moves
//! nothing (no request taken, no reply or outbox byte into the ring) is counted as
//! spurious, and after a few in a row the loop holds the port masked before listening
//! again ([`LateEoi`], as Linux's late EOI does): the kicks meanwhile coalesce into one,
//! so a storm costs a bounded number of wakes per second, each an O(1) turn that kicks
//! nobody back. Wakers (replies, pool slots, a stop) still end a hold at once, and the
//! first kick that moves something ends the storm. The counts ([`WakeCounts`]) are on
//! the disconnection line; a storm's start is logged within the connection's warning
//! budget.
//!
//! # Bounds and back-pressure
//!
//! A connection has at most [`Limits::max_in_flight`] requests taken from the ring and
//! not yet answered (queued in the pool, running, or with a reply waiting for ring
//! space). It stops reading the ring when that many are in flight, when a reply does not
//! fit (the rpc outbox is full because the guest is not reading), or when the pool
//! refuses the job (its queue is full, or this guest has its share of the pool queued
//! and running: see [`crate::pool`]; the one request already taken waits in the
//! connection). The guest's requests then stay in the ring, and the guest feels the
//! back-pressure there. Memory per connection is therefore at most `max_in_flight` requests and replies (≤ 64 KiB
//! each) plus the responder's outbox.
//!
//! # Logging
//!
//! Every line this module logs names the guest and its domid: connection, disconnection
//! (with the reason and counts), and errors. (The rpc crate's own one-line warning when a
//! vchan breaks cannot name them; the disconnection line right after it does.) Refusals (a path the confinement rules reject) and host-side
//! failures (I/O errors, a full disk) are warnings, at most [`WARN_BUDGET`] per
//! connection so that a hostile guest cannot flood dom0's log; the rest, and ordinary
//! outcomes such as `NotFound`, are at debug level.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rpc::{
    BrokenReason, Incoming, Op, Reply, ReplyBody, Request, Responder, SharedMem, Side, Status,
};

use crate::confine::{GuestName, GuestRoot};
use crate::error::OpError;
use crate::journal::{is_journaled, Journal, Lookup};
use crate::pool::{Job, Pool, Tenant, Wake};

/// Warnings a connection may log about its requests; further ones go to debug level.
pub const WARN_BUDGET: u32 = 16;

/// The event channel of one connection, as the loop needs it.
///
/// A kick the guest sends is delivered once and then the port stays masked (further
/// kicks coalesce into one pending kick) until the next `wait` unmasks it: that is how
/// `/dev/xen/evtchn` works, and what lets the loop hold a kicking guest back.
pub trait EventChannel {
    /// Kicks the guest.
    fn notify(&mut self) -> io::Result<()>;
    /// Sleeps until the guest kicks or a waker from [`Self::waker`] is called; true if
    /// the guest kicked. A kick or wake that came since the last `wait` makes it return
    /// at once; spurious returns are allowed.
    ///
    /// `hold` is the late EOI: if a kick was delivered since the last `wait`, the port
    /// stays masked for `hold` before it is unmasked and listened to again (the guest's
    /// kicks meanwhile coalesce into one); a waker still ends the wait at once. Zero
    /// unmasks at once.
    fn wait(&mut self, hold: Duration) -> io::Result<bool>;
    /// What other threads call to end a [`Self::wait`].
    fn waker(&self) -> Arc<dyn Wake>;
}

/// Runs one request. Implemented by [`crate::service::handle`] (and any function of that
/// shape, e.g. a test wrapper around it). Called on worker threads.
pub trait Handler: Send + Sync {
    /// The reply body, or why there is none.
    fn handle(&self, root: &GuestRoot, request: Request) -> Result<ReplyBody, OpError>;
}

impl<F> Handler for F
where
    F: Fn(&GuestRoot, Request) -> Result<ReplyBody, OpError> + Send + Sync,
{
    fn handle(&self, root: &GuestRoot, request: Request) -> Result<ReplyBody, OpError> {
        self(root, request)
    }
}

/// Who is at the other end, for every log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestId {
    /// The guest's (validated) name.
    pub name: GuestName,
    /// Its domain id.
    pub domid: u16,
}

impl fmt::Display for GuestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest {} (domid {})", self.name, self.domid)
    }
}

/// Per-connection bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests taken from the ring and not yet answered (at least 1).
    pub max_in_flight: usize,
    /// How a guest whose kicks move nothing is held back.
    pub late_eoi: LateEoi,
}

impl Default for Limits {
    /// 32 in flight: enough to keep several workers busy for one guest, while two guests
    /// cannot fill the default pool queue on their own.
    fn default() -> Self {
        Limits {
            max_in_flight: 32,
            late_eoi: LateEoi::default(),
        }
    }
}

/// The back-off for spurious kicks (kicks after which the turn moved nothing: no new
/// request, no reply or outbox byte into the ring), as Linux's late EOI does for its
/// backends: after `free` of them in a row, the port stays masked for `first`, then
/// twice as long at each further one, up to `max`. The first kick that moves something
/// ends it, so a guest that sends real requests is served at once again; the one
/// request that ends a storm waits at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LateEoi {
    /// Spurious kicks in a row listened to at once (a well-behaved guest causes an
    /// occasional one, e.g. a kick for ring space the daemon no longer needed).
    pub free: u32,
    /// The first hold.
    pub first: Duration,
    /// The longest hold.
    pub max: Duration,
}

impl Default for LateEoi {
    /// Two free, then 1 ms doubling to 64 ms: a guest kicking in a loop costs the
    /// daemon about 16 wakes a second instead of one per kick.
    fn default() -> Self {
        LateEoi {
            free: 2,
            first: Duration::from_millis(1),
            max: Duration::from_millis(64),
        }
    }
}

impl LateEoi {
    /// Never holds: every kick is listened to at once (what the loop did before).
    pub const OFF: LateEoi = LateEoi {
        free: u32::MAX,
        first: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// How long to hold the port after `run` spurious kicks in a row.
    pub fn hold(&self, run: u32) -> Duration {
        if run <= self.free {
            return Duration::ZERO;
        }
        let doublings = (run - self.free - 1).min(31);
        self.first
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// How a connection's wake-ups went, counted (see [`Connection::wakes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeCounts {
    /// Kicks from the guest after which the turn moved something.
    pub kicks_useful: u64,
    /// Kicks from the guest after which the turn moved nothing.
    pub kicks_spurious: u64,
    /// Waits that held the port masked first (late EOI).
    pub held: u64,
    /// Runs of spurious kicks that reached a hold (storms), begun.
    pub storms: u64,
}

impl fmt::Display for WakeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kicks: {} useful, {} spurious, {} holds in {} storms",
            self.kicks_useful, self.kicks_spurious, self.held, self.storms
        )
    }
}

/// A connection's [`WakeCounts`], readable from any thread while it runs and after.
#[derive(Debug, Default)]
pub struct WakeMeter {
    kicks_useful: AtomicU64,
    kicks_spurious: AtomicU64,
    held: AtomicU64,
    storms: AtomicU64,
}

impl WakeMeter {
    /// The counts so far.
    pub fn counts(&self) -> WakeCounts {
        WakeCounts {
            kicks_useful: self.kicks_useful.load(Ordering::Relaxed),
            kicks_spurious: self.kicks_spurious.load(Ordering::Relaxed),
            held: self.held.load(Ordering::Relaxed),
            storms: self.storms.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a connection's loop ended.
#[derive(Debug)]
pub enum Ended {
    /// The guest closed its end of the vchan.
    PeerClosed,
    /// The guest broke the protocol (hostile or corrupt); the channel is dead.
    Broken(BrokenReason),
    /// [`Stopper::stop`] was called.
    Stopped,
    /// Kicking or waiting on the event channel failed.
    EventChannel(io::Error),
    /// Any other channel error (none is expected; kept so nothing is swallowed).
    Channel(rpc::Error),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::PeerClosed => f.write_str("the guest closed the channel"),
            Ended::Broken(r) => write!(f, "the guest broke the protocol ({r})"),
            Ended::Stopped => f.write_str("stopped by the daemon"),
            Ended::EventChannel(e) => write!(f, "event channel failed: {e}"),
            Ended::Channel(e) => write!(f, "channel error: {e}"),
        }
    }
}

impl From<rpc::Error> for Ended {
    fn from(e: rpc::Error) -> Self {
        match e {
            rpc::Error::PeerClosed => Ended::PeerClosed,
            rpc::Error::Broken(r) => Ended::Broken(r),
            other => Ended::Channel(other),
        }
    }
}

/// Stops a running connection from another thread.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    waker: Arc<dyn Wake>,
}

impl Stopper {
    /// Asks the loop to end; it does at its next turn (this wakes it).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// What the connection shares with the jobs it hands to the pool.
struct Shared {
    id: GuestId,
    /// Cleared when the loop ends: queued jobs of a dead connection are skipped.
    alive: AtomicBool,
    waker: Arc<dyn Wake>,
    warnings_left: AtomicU32,
    failed: AtomicU64,
    wakes: Arc<WakeMeter>,
    /// Requests answered from the journal without running again.
    replayed: AtomicU64,
    /// Requests the journal showed begun and not finished, run again as recoveries.
    recovered: AtomicU64,
    /// Where changing requests are recorded for exactly-once, if anywhere.
    journal: Option<Arc<Journal>>,
    /// A pause before each reply is handed back (tests only: holds replies back so a
    /// daemon killed meanwhile has finished work it never delivered).
    reply_delay: Duration,
}

impl Shared {
    /// Logs `line` as a warning if the connection's budget has one left (saying so
    /// when that was the last), else at debug level.
    fn warn_or_debug(&self, line: &str) {
        let loud = self
            .warnings_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !loud {
            log::debug!("{line}");
            return;
        }
        log::warn!("{line}");
        if self.warnings_left.load(Ordering::Relaxed) == 0 {
            log::warn!(
                "{}: {WARN_BUDGET} warnings logged; further ones at debug level",
                self.id
            );
        }
    }

    fn log_failure(&self, event_id: u64, op: Op, err: &OpError) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let status = err.status();
        let line = format!("{}: event {event_id} {op:?}: {err} ({status})", self.id);
        if err.is_refusal() || err.is_host_problem() {
            self.warn_or_debug(&line);
        } else {
            log::debug!("{line}");
        }
    }
}

/// Whether a body may answer a request: the same op and, for data, no more than asked
/// (`FileRead`) or exactly as much (`Random`). The guest's `Caller` breaks the channel
/// on anything else, so a handler bug must not reach the ring.
fn conforms(op: Op, data_limit: u32, body: &ReplyBody) -> bool {
    body.op() == op
        && match body {
            ReplyBody::Random(d) => d.len() == data_limit as usize,
            ReplyBody::FileRead(d) => d.len() <= data_limit as usize,
            _ => true,
        }
}

/// The work of one request, as a pool job.
fn job(
    shared: Arc<Shared>,
    root: Arc<GuestRoot>,
    handler: Arc<dyn Handler>,
    done: Sender<Reply>,
    incoming: Incoming,
) -> Job {
    Box::new(move || {
        if !shared.alive.load(Ordering::SeqCst) {
            return;
        }
        let Incoming { event_id, request } = incoming;
        let op = request.op();
        let journal = shared.journal.as_ref().filter(|_| is_journaled(op));
        let result = match journal {
            None => run(&shared, &root, &*handler, event_id, request),
            Some(journal) => run_journaled(&shared, &root, &*handler, journal, event_id, request),
        };
        let reply = match result {
            Ok(body) => Reply::ok(event_id, body),
            Err(status) => Reply::err(event_id, op, status),
        };
        if !shared.reply_delay.is_zero() {
            std::thread::sleep(shared.reply_delay);
        }
        match done.try_send(reply) {
            Ok(()) => shared.waker.wake(),
            // The connection ended while this ran: nobody to answer.
            Err(TrySendError::Disconnected(_)) => {}
            // Cannot happen: the channel holds `max_in_flight` replies and at most that
            // many requests are in flight. Say so loudly rather than block a worker.
            Err(TrySendError::Full(r)) => log::error!(
                "{}: event {} dropped: reply queue full (a bug)",
                shared.id,
                r.event_id
            ),
        }
    })
}

/// Runs a request through the handler and checks what it returns.
fn run(
    shared: &Shared,
    root: &GuestRoot,
    handler: &dyn Handler,
    event_id: u64,
    request: Request,
) -> Result<ReplyBody, Status> {
    let (op, limit) = (request.op(), request.reply_data_limit());
    match handler.handle(root, request) {
        Ok(body) if conforms(op, limit, &body) => Ok(body),
        Ok(body) => {
            log::error!(
                "{}: event {event_id} {op:?}: handler returned a {:?} body with {} \
                 data bytes; answering Io",
                shared.id,
                body.op(),
                body.data_len()
            );
            Err(Status::Io)
        }
        Err(e) => {
            shared.log_failure(event_id, op, &e);
            Err(e.status())
        }
    }
}

/// Runs a changing request at most once per event id (see [`crate::journal`]).
fn run_journaled(
    shared: &Shared,
    root: &GuestRoot,
    handler: &dyn Handler,
    journal: &Journal,
    event_id: u64,
    request: Request,
) -> Result<ReplyBody, Status> {
    let op = request.op();
    let recovery = match journal.lookup(event_id) {
        Lookup::Done(result) => {
            shared.replayed.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "{}: event {event_id} {op:?} sent again: answered from the journal, not run",
                shared.id
            );
            return result;
        }
        Lookup::Begun => true,
        Lookup::New => false,
    };
    if !recovery {
        if let Err(e) = journal.begin(event_id) {
            // Without the record a restart could apply it twice: refuse instead.
            log::error!("{}: event {event_id} {op:?}: journal: {e}", shared.id);
            return Err(Status::Unavailable);
        }
    }
    let mut result = run(shared, root, handler, event_id, request);
    if recovery {
        shared.recovered.fetch_add(1, Ordering::Relaxed);
        // The earlier run may have done it before the daemon died.
        result = match (op, result) {
            (Op::DirCreate, Err(Status::Exists)) => Ok(ReplyBody::DirCreate),
            (Op::Remove, Err(Status::NotFound)) => Ok(ReplyBody::Remove),
            (_, r) => r,
        };
        log::info!(
            "{}: event {event_id} {op:?} sent again after an unfinished run: recovered ({})",
            shared.id,
            match &result {
                Ok(_) => Status::Ok,
                Err(s) => *s,
            }
        );
    }
    if let Err(e) = journal.finish(event_id, op, &result) {
        log::error!("{}: event {event_id} {op:?}: journal: {e}", shared.id);
    }
    result
}

/// Queues a job, or registers for a slot and tries once more; gives the job back if the
/// pool is still full (the caller holds it and is woken when a slot frees).
fn submit(pool: &Pool, tenant: &Tenant, job: Job, waker: &Arc<dyn Wake>) -> Option<Job> {
    match pool.try_submit(tenant, job) {
        Ok(()) => None,
        Err(job) => {
            pool.wake_when_space(waker);
            pool.try_submit(tenant, job).err()
        }
    }
}

fn moved<M: SharedMem>(r: &Responder<M>) -> u64 {
    let s = r.stats().vchan;
    s.bytes_read + s.bytes_written
}

/// One guest's connection; see the [module documentation](self).
pub struct Connection<M, E> {
    shared: Arc<Shared>,
    root: Arc<GuestRoot>,
    responder: Responder<M>,
    evtchn: E,
    handler: Arc<dyn Handler>,
    max_in_flight: usize,
    late_eoi: LateEoi,
    stop: Arc<AtomicBool>,
    requests: u64,
    replies: u64,
    /// Journaled replies handed to the responder that the guest has not read yet, as
    /// (event id, where the reply ends in the stream of bytes we write), oldest first.
    unread: VecDeque<(u64, u64)>,
}

impl<M: SharedMem, E: EventChannel> Connection<M, E> {
    /// Assembles a connection for the guest whose folder is `root`.
    pub fn new(
        domid: u16,
        root: Arc<GuestRoot>,
        responder: Responder<M>,
        evtchn: E,
        handler: Arc<dyn Handler>,
        limits: Limits,
    ) -> Self {
        let shared = Arc::new(Shared {
            id: GuestId {
                name: root.name().clone(),
                domid,
            },
            alive: AtomicBool::new(true),
            waker: evtchn.waker(),
            warnings_left: AtomicU32::new(WARN_BUDGET),
            failed: AtomicU64::new(0),
            wakes: Arc::new(WakeMeter::default()),
            replayed: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            journal: None,
            reply_delay: Duration::ZERO,
        });
        Connection {
            shared,
            root,
            responder,
            evtchn,
            handler,
            max_in_flight: limits.max_in_flight.max(1),
            late_eoi: limits.late_eoi,
            stop: Arc::new(AtomicBool::new(false)),
            requests: 0,
            replies: 0,
            unread: VecDeque::new(),
        }
    }

    /// Records changing requests in `journal`, so that one sent again after a daemon
    /// restart is not applied twice (see [`crate::journal`]).
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.shared_mut().journal = Some(journal);
        self
    }

    /// Holds every reply back by `delay` before it goes to the ring (tests only).
    pub fn with_reply_delay(mut self, delay: Duration) -> Self {
        self.shared_mut().reply_delay = delay;
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared).expect("configured before it runs")
    }

    /// Who this connection serves.
    pub fn id(&self) -> &GuestId {
        &self.shared.id
    }

    /// How its wake-ups went, counted; the disconnection line logs the same.
    pub fn wakes(&self) -> Arc<WakeMeter> {
        Arc::clone(&self.shared.wakes)
    }

    /// A handle that stops [`Self::run`] from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: Arc::clone(&self.stop),
            waker: Arc::clone(&self.shared.waker),
        }
    }

    /// Serves until the guest closes, breaks the protocol, the event channel fails or
    /// the connection is stopped; then closes this end (kicking the guest so it sees
    /// that), logs why, and returns it.
    pub fn run(mut self, pool: &Pool) -> Ended {
        let layout = self.responder.vchan().layout();
        log::info!(
            "{}: connected (requests ring {} bytes, replies ring {} bytes)",
            self.shared.id,
            // The guest is the vchan server: it writes the right ring, reads the left.
            layout.ring_size(Side::Right),
            layout.ring_size(Side::Left)
        );
        let ended = self.serve(pool);
        self.shared.alive.store(false, Ordering::SeqCst);
        // What the guest read before it went: the rest stays in the journal.
        self.forget_read();
        if self.responder.close().is_yes() {
            if let Err(e) = self.evtchn.notify() {
                log::warn!("{}: kick after closing failed: {e}", self.shared.id);
            }
        }
        let counts = format!(
            "{} requests, {} replies sent, {} failed, {} answered from the journal, \
             {} recovered; {}",
            self.requests,
            self.replies,
            self.shared.failed.load(Ordering::Relaxed),
            self.shared.replayed.load(Ordering::Relaxed),
            self.shared.recovered.load(Ordering::Relaxed),
            self.shared.wakes.counts()
        );
        match ended {
            Ended::PeerClosed | Ended::Stopped => {
                log::info!("{}: disconnected: {ended}; {counts}", self.shared.id)
            }
            _ => log::warn!("{}: disconnected: {ended}; {counts}", self.shared.id),
        }
        ended
    }

    /// Forgets in the journal the replies the guest has read: its consumer index is past
    /// their last byte. Not as soon as they are in its ring: a domain saved meanwhile
    /// (`xl save`) is restored with that ring thrown away (it may have been copied
    /// half-written), and sends those requests again under the same ids. A reply still
    /// in our outbox is daemon memory, lost if the daemon dies: not read either.
    fn forget_read(&mut self) {
        let Some(journal) = &self.shared.journal else {
            return;
        };
        if self.unread.is_empty() {
            return;
        }
        // A consumer index out of range breaks the channel (the loop reports it); what
        // was read is then unknown, so nothing is forgotten.
        let Ok(in_ring) = self.responder.vchan_mut().unread_by_peer() else {
            return;
        };
        let read = self.responder.stats().vchan.bytes_written - in_ring as u64;
        while let Some(&(id, end)) = self.unread.front() {
            if end > read {
                break;
            }
            self.unread.pop_front();
            if let Err(e) = journal.delivered(id) {
                log::error!("{}: event {id}: journal: {e}", self.shared.id);
            }
        }
    }

    fn serve(&mut self, pool: &Pool) -> Ended {
        let (done_tx, done_rx): (Sender<Reply>, Receiver<Reply>) =
            crossbeam_channel::bounded(self.max_in_flight);
        let mut pending: VecDeque<Reply> = VecDeque::with_capacity(self.max_in_flight);
        let mut stalled: Option<Job> = None;
        let mut in_flight = 0usize;
        // This guest's share of the pool (see crate::pool: fairness between guests).
        let tenant = pool.tenant();
        // Whether the last wait ended with a kick from the guest, until the turn after
        // it says whether that kick moved anything.
        let mut kicked: Option<bool> = None;
        // Spurious kicks in a row (see LateEoi), and how many the current storm had.
        let mut spurious_run = 0u32;
        let wakes = Arc::clone(&self.shared.wakes);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ended::Stopped;
            }
            let moved_before = moved(&self.responder);
            let mut progress = false;

            // Finished replies, in the order they finished.
            while let Ok(reply) = done_rx.try_recv() {
                pending.push_back(reply);
                progress = true;
            }
            while let Some(reply) = pending.front() {
                match self.responder.reply(reply) {
                    Ok(()) => {
                        if self.shared.journal.is_some() {
                            let end = self.responder.stats().vchan.bytes_written
                                + self.responder.queued_bytes() as u64;
                            self.unread.push_back((reply.event_id, end));
                        }
                        pending.pop_front();
                        in_flight -= 1;
                        self.replies += 1;
                        progress = true;
                    }
                    Err(rpc::Error::Full) => break,
                    Err(rpc::Error::Encode(status)) => {
                        // A body the wire format cannot carry (a handler bug): the guest
                        // still gets an answer under its event id.
                        let (event_id, op) = (reply.event_id, reply.op);
                        let status = if status == Status::Ok {
                            Status::Io
                        } else {
                            status
                        };
                        log::error!(
                            "{}: event {event_id} {op:?}: reply does not encode; \
                             answering {status}",
                            self.shared.id
                        );
                        pending[0] = Reply::err(event_id, op, status);
                    }
                    Err(e) => return e.into(),
                }
            }

            // The request the pool had no room for goes first.
            if let Some(job) = stalled.take() {
                stalled = submit(pool, &tenant, job, &self.shared.waker);
                progress |= stalled.is_none();
            }

            // New requests, while nothing holds them back.
            let held_back =
                !pending.is_empty() || stalled.is_some() || in_flight >= self.max_in_flight;
            if held_back {
                // The ring is not read now, so its end would not say the guest left:
                // ask its liveness byte, or a guest that closes while its share of the
                // pool is held by slow jobs would keep this loop asleep.
                match self.responder.vchan_mut().peer_state() {
                    Ok(rpc::PeerState::Closed) => return Ended::PeerClosed,
                    Ok(_) => {}
                    Err(e) => return e.into(),
                }
            }
            while pending.is_empty() && stalled.is_none() && in_flight < self.max_in_flight {
                match self.responder.poll() {
                    Ok(Some(incoming)) => {
                        in_flight += 1;
                        self.requests += 1;
                        progress = true;
                        log::trace!(
                            "{}: event {} {:?}",
                            self.shared.id,
                            incoming.event_id,
                            incoming.request.op()
                        );
                        let job = job(
                            Arc::clone(&self.shared),
                            Arc::clone(&self.root),
                            Arc::clone(&self.handler),
                            done_tx.clone(),
                            incoming,
                        );
                        stalled = submit(pool, &tenant, job, &self.shared.waker);
                    }
                    Ok(None) => break,
                    Err(e) => return e.into(),
                }
            }
            if self.responder.queued_bytes() > 0 {
                if let Err(e) = self.responder.flush() {
                    return e.into();
                }
            }
            self.forget_read();

            if self.responder.take_notify().is_yes() {
                if let Err(e) = self.evtchn.notify() {
                    return Ended::EventChannel(e);
                }
            }
            let did_work = progress || moved(&self.responder) != moved_before;
            match kicked.take() {
                Some(true) if did_work => WakeMeter::add(&wakes.kicks_useful),
                Some(true) => {
                    WakeMeter::add(&wakes.kicks_spurious);
                    spurious_run = spurious_run.saturating_add(1);
                    if !self.late_eoi.hold(spurious_run).is_zero()
                        && self.late_eoi.hold(spurious_run - 1).is_zero()
                    {
                        WakeMeter::add(&wakes.storms);
                        let line = format!(
                            "{}: {spurious_run} kicks in a row moved nothing; holding its \
                             kicks back (late EOI, up to {:?}) until one does",
                            self.shared.id, self.late_eoi.max
                        );
                        self.shared.warn_or_debug(&line);
                    }
                }
                // A waker's wake (a reply, a pool slot, a stop) or an interrupted wait.
                _ => {}
            }
            if did_work {
                if !self.late_eoi.hold(spurious_run).is_zero() {
                    log::debug!(
                        "{}: a kick moved something after {spurious_run} that did not; \
                         listening at once again",
                        self.shared.id
                    );
                }
                spurious_run = 0;
            } else {
                let hold = self.late_eoi.hold(spurious_run);
                if !hold.is_zero() {
                    WakeMeter::add(&wakes.held);
                }
                match self.evtchn.wait(hold) {
                    Ok(k) => kicked = Some(k),
                    Err(e) => return Ended::EventChannel(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conforming_bodies() {
        assert!(conforms(Op::Ping, 0, &ReplyBody::Ping));
        assert!(!conforms(Op::Remove, 0, &ReplyBody::Ping));
        assert!(conforms(Op::Random, 3, &ReplyBody::Random(vec![0; 3])));
        assert!(!conforms(Op::Random, 3, &ReplyBody::Random(vec![0; 2])));
        assert!(conforms(Op::FileRead, 3, &ReplyBody::FileRead(vec![0; 2])));
        assert!(!conforms(Op::FileRead, 3, &ReplyBody::FileRead(vec![0; 4])));
    }

    #[test]
    fn late_eoi_holds_double_up_to_the_cap() {
        let l = LateEoi::default();
        let ms = |n| Duration::from_millis(n);
        let holds: Vec<Duration> = (0..12).map(|run| l.hold(run)).collect();
        assert_eq!(
            holds,
            [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 64, 64].map(ms).to_vec()
        );
        assert_eq!(l.hold(u32::MAX), ms(64), "no overflow");
        assert_eq!(LateEoi::OFF.hold(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn guest_id_names_guest_and_domid() {
        let id = GuestId {
            name: GuestName::new("web-1").unwrap(),
            domid: 7,
        };
        assert_eq!(id.to_string(), "guest web-1 (domid 7)");
    }
}
