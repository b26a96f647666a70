//! The kernel's xenstore client: requests from processes go out on the
//! store ring tagged with a request id; each reply completes the event the
//! request returned. Watch firings are events too.
//!
//! Everything is bounded: requests in flight, bytes queued for the ring,
//! watches, and firings kept per watch (beyond that they are counted, not
//! queued). Replies are handled at the system-call return point like any
//! other deferred work.
//!
//! Around a suspend (`xl save`, `xl migrate`) the client is held: requests
//! not yet in the ring stay queued, those in it are answered, and only then
//! does the domain go ([`hold`], [`quiet`]). A restored domain is a new
//! client of another xenstored, which knows none of its watches:
//! [`resume`] registers them all again and sends what was held.

use crate::status::{SysError, SysResult};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use events::Completion;
use events::{EventId, Pid, Status, Value};
use hal::hypercall::evtchn_send;
use hal::shared::SharedPage;
use log::{debug, error, warn};
use spin::Mutex;
use vecmap::VecMap;
use xen::xenstore::{self, EncodeError, Message, MsgType, Reply, Request, StoreMemory, StoreRing};

/// Requests in flight at once.
const MAX_IN_FLIGHT: usize = 64;
/// Bytes waiting for room in the request ring.
const MAX_QUEUED_BYTES: usize = 16 * 1024;
/// Watches at once (all processes).
const MAX_WATCHES: usize = 32;
/// Firings kept per watch until its owner asks for them.
const MAX_FIRINGS: usize = 16;

/// The store page as `StoreMemory`.
pub struct StorePage(pub SharedPage);

impl StoreMemory for StorePage {
    fn load_u32_acquire(&self, offset: usize) -> u32 {
        self.0.load_u32(offset, Ordering::Acquire)
    }
    fn store_u32_release(&self, offset: usize, value: u32) {
        self.0.store_u32(offset, value, Ordering::Release)
    }
    fn load_u8(&self, offset: usize) -> u8 {
        self.0.load_u8(offset, Ordering::Relaxed)
    }
    fn store_u8(&self, offset: usize, value: u8) {
        self.0.store_u8(offset, value, Ordering::Relaxed)
    }
}

/// What the reply to a request completes its event with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The body as bytes (read, directory).
    Bytes,
    /// Nothing (write, rm, mkdir, watch, unwatch, transaction end).
    Empty,
    /// A transaction id, as a word.
    TxId,
}

struct Waiter {
    /// The event the reply completes; `None` for the kernel's own requests
    /// (such as removing an exited process's watches).
    event: Option<EventId>,
    expect: Expect,
    /// Its request is in the ring, all of it: xenstored owes a reply.
    written: bool,
}

struct Watch {
    owner: Pid,
    path: Vec<u8>,
    fired: VecDeque<Vec<u8>>,
    /// Firings dropped from a full queue: counted, so nothing is lost silently.
    coalesced: u64,
    waiter: Option<EventId>,
}

pub struct Xenstore {
    ring: StoreRing<StorePage>,
    /// The ring's page, to start the ring afresh on it after a restore.
    page: SharedPage,
    port: u32,
    /// Requests waiting for room in the ring, whole, oldest first, with
    /// their ids; the first may be partly written already.
    queued: VecDeque<(u32, Vec<u8>)>,
    queued_bytes: usize,
    head_written: usize,
    /// No new request goes into the ring (a suspend is coming).
    held: bool,
    next_req_id: u32,
    in_flight: VecMap<u32, Waiter>,
    next_watch: u32,
    watches: VecMap<u32, Watch>,
    /// The reply to the boot call in flight ([`call_at_boot`]).
    boot_answer: Option<(Status, Value)>,
}

static XS: Mutex<Option<Xenstore>> = Mutex::new(None);

pub fn init(page: SharedPage, port: u32) {
    *XS.lock() = Some(Xenstore {
        ring: StoreRing::new(StorePage(page)),
        page,
        port,
        queued: VecDeque::new(),
        queued_bytes: 0,
        head_written: 0,
        held: false,
        next_req_id: 1,
        in_flight: VecMap::new(),
        next_watch: 1,
        watches: VecMap::new(),
        boot_answer: None,
    });
}

pub fn port() -> Option<u32> {
    XS.lock().as_ref().map(|x| x.port)
}

fn with_xs<R>(f: impl FnOnce(&mut Xenstore) -> SysResult<R>) -> SysResult<R> {
    let mut guard = XS.lock();
    let xs = guard.as_mut().ok_or(SysError::ServiceBroken)?;
    if xs.ring.broken().is_some() {
        return Err(SysError::ServiceBroken);
    }
    f(xs)
}

impl Xenstore {
    fn send(&mut self, req: Request, tx_id: u32, waiter: Waiter) -> SysResult<()> {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            return Err(SysError::Busy);
        }
        let mut bytes = Vec::new();
        req.encode(self.next_req_id, tx_id, &mut bytes)
            .map_err(|e| match e {
                EncodeError::TooLarge => SysError::TooLarge,
                EncodeError::BadString => SysError::InvalidArgument,
            })?;
        if self.queued_bytes + bytes.len() > MAX_QUEUED_BYTES {
            return Err(SysError::Busy);
        }
        self.queued_bytes += bytes.len();
        self.queued.push_back((self.next_req_id, bytes));
        self.in_flight.insert(self.next_req_id, waiter);
        // Ids wrap, skipping 0 (watch events carry 0) and ids still in flight.
        loop {
            self.next_req_id = self.next_req_id.wrapping_add(1);
            if self.next_req_id != 0 && !self.in_flight.contains_key(&self.next_req_id) {
                break;
            }
        }
        self.flush();
        Ok(())
    }

    /// Registers (or removes) watch `id` on `path` with xenstored; the ack
    /// completes `event`, if any.
    fn send_watch(
        &mut self,
        register: bool,
        id: u32,
        path: &str,
        event: Option<EventId>,
    ) -> SysResult<()> {
        let token = alloc::format!("w{id}");
        let req = if register {
            Request::Watch {
                path,
                token: &token,
            }
        } else {
            Request::Unwatch {
                path,
                token: &token,
            }
        };
        self.send(
            req,
            0,
            Waiter {
                event,
                expect: Expect::Empty,
                written: false,
            },
        )
    }

    /// Moves queued requests into the ring, as far as it has room, and
    /// kicks xenstored. While held, only a request already begun is
    /// finished: xenstored must never see half of one across a suspend.
    fn flush(&mut self) {
        let mut sent = false;
        while let Some((id, bytes)) = self.queued.front() {
            if self.held && self.head_written == 0 {
                break;
            }
            let rest = &bytes[self.head_written..];
            let n = match self.ring.write(rest) {
                Ok(n) => n,
                Err(why) => {
                    error!("xenstore connection broken: {why}");
                    break;
                }
            };
            sent |= n > 0;
            self.head_written += n;
            self.queued_bytes -= n;
            if n < rest.len() {
                break;
            }
            if let Some(w) = self.in_flight.get_mut(id) {
                w.written = true;
            }
            self.head_written = 0;
            self.queued.pop_front();
        }
        if sent {
            let _ = evtchn_send(self.port);
        }
    }

    fn on_message(&mut self, msg: Message, done: &mut Vec<Completion>) {
        if msg.kind == MsgType::WatchEvent {
            return self.on_watch_event(&msg, done);
        }
        let Some(w) = self.in_flight.remove(&msg.req_id) else {
            warn!(
                "xenstore reply with unknown request id {} dropped",
                msg.req_id
            );
            return;
        };
        let (status, value) = match (msg.reply(), w.expect) {
            (Reply::Error(errno), _) => (Status::Remote(errno.number()), Value::Empty),
            (Reply::Ok(body), Expect::Bytes) => (Status::Ok, Value::Bytes(body)),
            (Reply::Ok(_), Expect::Empty) => (Status::Ok, Value::Empty),
            (Reply::Ok(body), Expect::TxId) => match xenstore::parse_tx_id(&body) {
                Some(tx) => (Status::Ok, Value::Word(tx as u64)),
                None => (
                    Status::Remote(xenstore::Errno::Inval.number()),
                    Value::Empty,
                ),
            },
        };
        match w.event {
            Some(event) => done.push(Completion {
                event,
                status,
                value,
            }),
            // Only a boot call waits for bytes with no event.
            None if w.expect == Expect::Bytes => self.boot_answer = Some((status, value)),
            None => {}
        }
    }

    fn on_watch_event(&mut self, msg: &Message, done: &mut Vec<Completion>) {
        let Some((path, token)) = msg.watch_event() else {
            warn!("malformed xenstore watch event dropped");
            return;
        };
        let id = token
            .strip_prefix(b"w")
            .and_then(|t| core::str::from_utf8(t).ok())
            .and_then(|t| t.parse().ok());
        let Some(watch) = id.and_then(|id| self.watches.get_mut(&id)) else {
            debug!("watch event for an unknown token");
            return;
        };
        match watch.waiter.take() {
            Some(event) => done.push(Completion {
                event,
                status: Status::Ok,
                value: Value::Bytes(path.to_vec()),
            }),
            None if watch.fired.len() < MAX_FIRINGS => watch.fired.push_back(path.to_vec()),
            None => watch.coalesced += 1,
        }
    }
}

/// Services the store ring (called for the store port's events): reads
/// replies, sends what is queued. Returns the completions to apply.
pub fn service() -> Vec<Completion> {
    let mut done = Vec::new();
    let mut guard = XS.lock();
    let Some(xs) = guard.as_mut() else {
        return done;
    };
    let mut messages = Vec::new();
    match xs.ring.read(|m| messages.push(m)) {
        Ok(consumed) => {
            for m in messages {
                xs.on_message(m, &mut done);
            }
            if consumed {
                let _ = evtchn_send(xs.port);
            }
        }
        Err(why) => {
            error!(
                "xenstore connection broken: {why}; failing {} requests",
                xs.in_flight.len()
            );
            for event in core::mem::take(&mut xs.in_flight)
                .into_values()
                .filter_map(|w| w.event)
            {
                done.push(Completion {
                    event,
                    status: Status::Remote(xenstore::Errno::Io.number()),
                    value: Value::Empty,
                });
            }
        }
    }
    xs.flush();
    done
}

/// How long boot waits for xenstored to answer one request.
const BOOT_WAIT_NS: u64 = 2_000_000_000;

/// Sends `req` and waits for its reply: at boot only, before the scheduler
/// runs (the boot seed must be read before any secret is drawn). Polls the
/// store port, upcalls masked, until the reply comes or [`BOOT_WAIT_NS`]
/// pass. Returns the reply as an event would complete (`Ok` and the bytes,
/// or `Remote(errno)`); `None`: no answer in time, or a broken ring. Either
/// way the request is no longer in flight: a late reply is dropped (and
/// said so), and never holds up a suspend.
#[inline(never)]
pub fn call_at_boot(req: Request) -> Option<(Status, Value)> {
    let deadline = crate::clock::now_ns() + BOOT_WAIT_NS;
    let (id, port) = with_xs(|xs| {
        let id = xs.next_req_id;
        xs.boot_answer = None;
        xs.send(
            req,
            0,
            Waiter {
                event: None,
                expect: Expect::Bytes,
                written: false,
            },
        )?;
        Ok((id, xs.port))
    })
    .ok()?;
    let was_masked = hal::upcall::mask();
    let mut answer = None;
    while crate::clock::now_ns() < deadline {
        // Cleared before the ring is read: a reply after the read raises
        // it again, and the poll below returns at once.
        if let Some(si) = hal::shared_info() {
            let word = xen::public::shared_info::EVTCHN_PENDING + (port as usize / 64) * 8;
            si.clear_bits_u64(word, 1 << (port % 64));
        }
        // Nothing at boot waits on an event: nothing to complete.
        let _ = service();
        answer = XS.lock().as_mut().and_then(|xs| xs.boot_answer.take());
        if answer.is_some() {
            break;
        }
        let _ = hal::hypercall::sched_poll(&[port], crate::clock::xen_deadline(deadline));
    }
    if !was_masked {
        hal::upcall::unmask();
    }
    let _ = with_xs(|xs| Ok(xs.in_flight.remove(&id)));
    answer
}

/// Sends `req` for `owner`; its reply completes `event`.
pub fn request(event: EventId, req: Request, tx_id: u32, expect: Expect) -> SysResult<()> {
    with_xs(|xs| {
        xs.send(
            req,
            tx_id,
            Waiter {
                event: Some(event),
                expect,
                written: false,
            },
        )
    })
}

/// Registers a watch on `path` for `owner`; `ack` completes when xenstored
/// has registered it. Returns the watch handle.
pub fn watch(owner: Pid, path: &str, ack: EventId) -> SysResult<u32> {
    with_xs(|xs| {
        if xs.watches.len() >= MAX_WATCHES {
            return Err(SysError::Busy);
        }
        let id = xs.next_watch;
        xs.send_watch(true, id, path, Some(ack))?;
        xs.next_watch += 1;
        xs.watches.insert(
            id,
            Watch {
                owner,
                path: path.as_bytes().to_vec(),
                fired: VecDeque::new(),
                coalesced: 0,
                waiter: None,
            },
        );
        Ok(id)
    })
}

/// Makes `event` complete at the watch's next firing (at once if one is
/// queued). Returns a completion to apply now, if any.
pub fn watch_next(owner: Pid, watch: u32, event: EventId) -> SysResult<Option<Completion>> {
    with_xs(|xs| {
        let w = xs
            .watches
            .get_mut(&watch)
            .filter(|w| w.owner == owner)
            .ok_or(SysError::BadHandle)?;
        if w.waiter.is_some() {
            return Err(SysError::Busy);
        }
        if w.coalesced > 0 {
            debug!(
                "watch {watch}: {} firings were merged while its queue was full",
                w.coalesced
            );
        }
        match w.fired.pop_front() {
            Some(path) => Ok(Some(Completion {
                event,
                status: Status::Ok,
                value: Value::Bytes(path),
            })),
            None => {
                w.waiter = Some(event);
                Ok(None)
            }
        }
    })
}

/// Removes a watch; `ack` completes when xenstored has removed it. A waiter
/// on the watch completes with `Cancelled`.
pub fn unwatch(owner: Pid, watch: u32, ack: EventId) -> SysResult<Option<Completion>> {
    with_xs(|xs| {
        let w = xs
            .watches
            .get(&watch)
            .filter(|w| w.owner == owner)
            .ok_or(SysError::BadHandle)?;
        let path = w.path.clone();
        let path = core::str::from_utf8(&path).map_err(|_| SysError::InvalidArgument)?;
        xs.send_watch(false, watch, path, Some(ack))?;
        let w = xs.watches.remove(&watch);
        Ok(w.and_then(|w| w.waiter).map(|event| Completion {
            event,
            status: Status::Cancelled,
            value: Value::Empty,
        }))
    })
}

/// Removes every watch of an exited process, in xenstored too.
pub fn forget(owner: Pid) {
    let _ = with_xs(|xs| {
        let gone: Vec<(u32, Vec<u8>)> = xs
            .watches
            .iter()
            .filter(|(_, w)| w.owner == owner)
            .map(|(id, w)| (*id, w.path.clone()))
            .collect();
        for (id, path) in gone {
            xs.watches.remove(&id);
            let path = core::str::from_utf8(&path).unwrap_or("");
            if let Err(e) = xs.send_watch(false, id, path, None) {
                warn!("cannot remove watch {id} of exited pid {}: {e}", owner.0);
            }
        }
        Ok(())
    });
}

/// Holds (or releases) new requests before a suspend: they stay queued
/// until [`resume`].
pub fn hold(on: bool) {
    let _ = with_xs(|xs| {
        xs.held = on;
        if !on {
            xs.flush();
        }
        Ok(())
    });
}

/// Whether xenstored owes no reply: every request it was sent is answered
/// (held ones do not count: xenstored has not seen them).
pub fn quiet() -> bool {
    let guard = XS.lock();
    let Some(xs) = guard.as_ref() else {
        return true;
    };
    xs.head_written == 0 && !xs.in_flight.values().any(|w| w.written)
}

/// The domain is back from a suspend, with the store's event channel now
/// `port`. In a new domain (restored, migrated) xenstored knows none of
/// our watches: each is registered again, and fires once as a new one
/// does, which watch semantics allow. Then the held requests go out.
pub fn resume(port: u32, new_domain: bool) {
    if new_domain {
        // The new xenstored starts the ring afresh (its indices back to 0):
        // the ring is taken again from the page as it is now, as at boot.
        // (The ring keeps its own indices and would take the reset for a
        // peer moving them backwards.) Nothing was owed: the client was
        // quiet before the suspend.
        if let Some(xs) = XS.lock().as_mut() {
            xs.ring = StoreRing::new(StorePage(xs.page));
        }
    }
    let _ = with_xs(|xs| {
        xs.port = port;
        if new_domain {
            let watches: Vec<(u32, Vec<u8>)> = xs
                .watches
                .iter()
                .map(|(id, w)| (*id, w.path.clone()))
                .collect();
            for (id, path) in watches {
                let path = core::str::from_utf8(&path).unwrap_or("");
                if let Err(e) = xs.send_watch(true, id, path, None) {
                    warn!("watch {id} not registered again: {e}");
                }
            }
        }
        xs.held = false;
        xs.flush();
        Ok(())
    });
}

/// The xenstore client as an event source: replies and watch firings on
/// the store port complete events; an exited process's watches go.
pub struct StoreSource;

impl crate::event::Source for StoreSource {
    fn name(&self) -> &'static str {
        "xenstore"
    }
    fn port(&self) -> Option<u32> {
        port()
    }
    fn on_port(&self) -> Vec<Completion> {
        service()
    }
    fn forget(&self, pid: Pid) {
        forget(pid)
    }
}
