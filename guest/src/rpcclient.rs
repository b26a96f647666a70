//! The guest's end of the RPC service: one long-lived vchan to the dom0
//! shadowdaemon, multiplexed by eventId. A system call sends a request
//! tagged with its event's id and returns the id at once; each reply,
//! taken at the system-call return point, completes that event.

use crate::arch::shared::SharedRegion;
use crate::sched::Completion;
use crate::vchans;
use alloc::vec::Vec;
use events::{EventId, Status, Value};
use guest::syserr::{SysError, SysResult};
use log::{error, info};
use rpc::{Caller, Config, ReplyBody, Request};
use spin::Mutex;

/// Ring size each way: 64 KiB (16 granted pages each).
const RING_BYTES: usize = 64 * 1024;
/// Requests in flight at once.
const MAX_IN_FLIGHT: usize = 256;

struct Client {
    caller: Caller<SharedRegion>,
    port: u32,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);
/// What `init` published-to-be: (ring-ref, port), for the rpc-offer process.
static OFFER: Mutex<Option<(u32, u32)>> = Mutex::new(None);

/// The channel's (ring-ref, port), once `init` has run.
pub fn offer() -> Option<(u32, u32)> {
    *OFFER.lock()
}

/// Offers the channel to dom0; returns (ring-ref, port) to publish.
pub fn init() -> SysResult<(u32, u32)> {
    let (vchan, ring_ref, port) = vchans::build(0, RING_BYTES, RING_BYTES)?;
    let config = Config {
        outbox_bytes: RING_BYTES,
        max_in_flight: MAX_IN_FLIGHT,
    };
    *CLIENT.lock() = Some(Client {
        caller: Caller::new(vchan, config),
        port,
    });
    *OFFER.lock() = Some((ring_ref, port));
    info!("rpc: channel to dom0 ready (ring-ref {ring_ref}, port {port})");
    Ok((ring_ref, port))
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

/// Sends `req` tagged with `event`; the reply completes the event.
pub fn call(event: EventId, req: &Request) -> SysResult<()> {
    let mut guard = CLIENT.lock();
    let c = guard.as_mut().ok_or(SysError::ServiceBroken)?;
    c.caller.call(event.0, req).map_err(rpc_error)?;
    let _ = c.caller.flush();
    vchans::kick(c.port, c.caller.take_notify());
    Ok(())
}

/// Takes every reply that arrived (deferred work for the channel's port).
pub fn service() -> Vec<Completion> {
    let mut done = Vec::new();
    let mut guard = CLIENT.lock();
    let Some(c) = guard.as_mut() else { return done };
    loop {
        match c.caller.poll() {
            Ok(Some(reply)) => {
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
                error!("rpc channel to dom0 failed: {e:?}; failing what is in flight");
                for id in c.caller.abandon_all() {
                    done.push(Completion {
                        event: EventId(id),
                        status: Status::Remote(8),
                        value: Value::Empty,
                    });
                }
                break;
            }
        }
    }
    let _ = c.caller.flush();
    vchans::kick(c.port, c.caller.take_notify());
    done
}

/// The value a reply completes its event with (the kinds `sys` created
/// the events with).
fn value_of(body: ReplyBody) -> Value {
    match body {
        ReplyBody::Ping | ReplyBody::DirCreate | ReplyBody::Remove => Value::Empty,
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
