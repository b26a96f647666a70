//! RPC benchmarks against the dom0 shadowdaemon (run by `scripts/bench`,
//! never by the tests): ping round trip; ping throughput with 1, 16 and 256
//! in flight with the event-channel notifications per RPC; FileWrite and
//! FileRead throughput on a 1 MiB file. Each result is one line
//! `rpc-bench: name key=value ...`, the last one `rpc-bench: done`. Times are
//! Xen system time under QEMU/TCG: compare runs, not hardware.
//!
//! "In flight" is a sliding window: as soon as any RPC completes (an OR tree
//! over those in flight) it is retired and the window is filled again. The
//! `batch` lines instead send D, wait for all of them under one AND tree
//! (one wake), and repeat.

use crate::status::{SysError, SysResult};
use crate::syscall as sys;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use events::{EventId, Status, Tree, Value};

pub const PROCESSES: &[super::ProcessSpec] = &[("rpc-bench", rpc_bench)];

/// Sequential pings timed one by one.
const PINGS: usize = 500;
/// Pings per throughput run.
const RPCS: usize = 2048;
const DEPTHS: [usize; 3] = [1, 16, 256];
const FILE: &str = "rpc-bench.dat";
const FILE_BYTES: u64 = 1 << 20;
/// Times the file is read in one FileRead run.
const READ_PASSES: usize = 4;
const CHUNK: u64 = rpc::MAX_IO as u64;

fn report(line: &str) {
    let _ = sys::print(&format!("rpc-bench: {line}"));
}

fn rpc_bench() {
    if let Err(e) = run() {
        report(&format!("FAILED: {e}"));
    }
    report("done");
}

fn run() -> Result<(), String> {
    connect()?;
    ping_round_trip()?;
    for depth in DEPTHS {
        ping_throughput(depth, false)?;
    }
    for depth in DEPTHS {
        ping_throughput(depth, true)?;
    }
    write_file()?;
    let read = read_file(1).and_then(|()| read_file(16));
    let removed = super::wait_ok(sys::remove(FILE), "remove");
    read?;
    removed.map(|_| ())
}

/// The first ping: queued in the ring until the daemon has found the
/// channel in xenstore and connected.
fn connect() -> Result<(), String> {
    let start = sys::get_time();
    let id = sys::ping().map_err(|e| format!("ping: {e}"))?;
    if !super::wait_or_timeout(id, 60_000)? {
        let _ = sys::cancel(id).and_then(|_| sys::retire(id));
        return Err(String::from("no answer from the shadowdaemon in 60 s"));
    }
    super::wait_ok(Ok(id), "first ping")?;
    report(&format!(
        "first ping answered after {} ms (the daemon connecting)",
        super::Millis(sys::get_time() - start)
    ));
    Ok(())
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

fn ping_round_trip() -> Result<(), String> {
    let mut samples = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let start = sys::get_time();
        super::wait_ok(sys::ping(), "ping")?;
        samples.push(sys::get_time() - start);
    }
    samples.sort_unstable();
    let us = |ns: u64| ns / 1000;
    report(&format!(
        "ping round trip p50={} us p99={} us max={} us min={} us (n={PINGS}, one at a time)",
        us(percentile(&samples, 50)),
        us(percentile(&samples, 99)),
        us(samples.last().copied().unwrap_or(0)),
        us(samples.first().copied().unwrap_or(0)),
    ));
    Ok(())
}

/// Counters read before and after a run.
#[derive(Clone, Copy)]
struct Counters {
    /// Notifications the guest sent on the RPC port.
    kicks: u64,
    /// Notifications the guest took on the RPC port.
    port_events: u64,
    wakes: u64,
}

fn counters() -> Result<Counters, String> {
    let (channel, port_events) = sys::rpc_stats().map_err(|e| format!("rpc_stats: {e}"))?;
    let (_, events) = sys::kernel_stats().map_err(|e| format!("kernel_stats: {e}"))?;
    Ok(Counters {
        kicks: channel.kicks,
        port_events,
        wakes: events.wakes,
    })
}

/// `num / den` with four decimals, in integers (float formatting would
/// grow the kernel).
fn ratio(num: u64, den: u64) -> String {
    let x = num * 10_000 / den.max(1);
    format!("{}.{:04}", x / 10_000, x % 10_000)
}

/// What a run of RPCs did.
struct Run {
    rpcs: usize,
    ns: u64,
    /// Most RPCs in flight at once.
    peak: usize,
    /// Calls the kernel refused with `Busy` (retried after a completion).
    busy: u64,
    before: Counters,
    after: Counters,
}

impl Run {
    /// The counters every run reports: totals and per RPC.
    fn per_rpc(&self) -> String {
        let n = self.rpcs as u64;
        let (a, b) = (self.after, self.before);
        let (kicks, port_events, wakes) = (
            a.kicks - b.kicks,
            a.port_events - b.port_events,
            a.wakes - b.wakes,
        );
        let mut s = format!(
            "kicks_sent={kicks} ({}/rpc) port_events={port_events} ({}/rpc) \
             wakes={wakes} ({}/rpc) peak_in_flight={}",
            ratio(kicks, n),
            ratio(port_events, n),
            ratio(wakes, n),
            self.peak,
        );
        if self.busy > 0 {
            s += &format!(
                " busy={} (the kernel refused calls over its cap)",
                self.busy
            );
        }
        s
    }
}

/// Cancels and retires what is still in flight after a failure.
fn abandon(flight: &[(EventId, usize)]) {
    for &(id, _) in flight {
        let _ = sys::cancel(id);
        let _ = sys::retire(id);
    }
}

/// Makes `total` RPCs with up to `depth` in flight: `start(i)` sends the
/// i-th, `finish(i, value)` takes its reply. With `batch`, the window is
/// refilled only once all have completed (one AND tree per batch);
/// otherwise whenever any has (an OR tree over those in flight).
fn rpcs(
    depth: usize,
    total: usize,
    batch: bool,
    mut start: impl FnMut(usize) -> SysResult<EventId>,
    mut finish: impl FnMut(usize, Value) -> Result<(), String>,
) -> Result<Run, String> {
    let mut flight: Vec<(EventId, usize)> = Vec::with_capacity(depth);
    let (mut next, mut done, mut peak, mut busy) = (0, 0, 0, 0);
    let before = counters()?;
    let t0 = sys::get_time();
    while done < total {
        if !batch || flight.is_empty() {
            while next < total && flight.len() < depth {
                match start(next) {
                    Ok(id) => {
                        flight.push((id, next));
                        next += 1;
                    }
                    Err(SysError::Busy) if !flight.is_empty() => {
                        busy += 1;
                        break;
                    }
                    Err(e) => {
                        abandon(&flight);
                        return Err(format!("request {next}: {e}"));
                    }
                }
            }
        }
        peak = peak.max(flight.len());
        let ids = flight.iter().map(|&(id, _)| id);
        let tree = if batch {
            Tree::all(ids)
        } else {
            Tree::any(ids)
        };
        let spec = tree.to_spec().map_err(|e| format!("tree: {e}"))?;
        let mut completed = match sys::block(&spec) {
            Ok(c) => c,
            Err(e) => {
                abandon(&flight);
                return Err(format!("block: {e}"));
            }
        };
        completed.sort_unstable();
        let mut k = 0;
        while k < flight.len() {
            let (id, i) = flight[k];
            if completed.binary_search(&id).is_err() {
                k += 1;
                continue;
            }
            flight.swap_remove(k);
            let r = sys::retire(id).map_err(|e| format!("retire: {e}"));
            let r = r.and_then(|r| match r.status {
                Status::Ok => finish(i, r.value),
                s => Err(format!("request {i}: {s}")),
            });
            if let Err(e) = r {
                abandon(&flight);
                return Err(e);
            }
            done += 1;
        }
    }
    let ns = sys::get_time() - t0;
    Ok(Run {
        rpcs: total,
        ns,
        peak,
        busy,
        before,
        after: counters()?,
    })
}

fn ping_throughput(depth: usize, batch: bool) -> Result<(), String> {
    let run = rpcs(depth, RPCS, batch, |_| sys::ping(), |_, _| Ok(()))?;
    report(&format!(
        "ping {} depth={depth} rpcs={} rpcs_per_s={} ms={} {}",
        if batch { "batch" } else { "window" },
        run.rpcs,
        run.rpcs as u64 * 1_000_000_000 / run.ns.max(1),
        super::Millis(run.ns),
        run.per_rpc(),
    ));
    Ok(())
}

/// The file's byte at `offset`: a multiplicative hash, so a chunk read
/// from the wrong offset does not compare equal.
fn expected(offset: u64) -> u8 {
    ((offset as u32).wrapping_mul(0x9E37_79B1) >> 24) as u8
}

/// Offset and length of chunk `i` of the file (the last one is shorter).
fn chunk(i: usize) -> (u64, u64) {
    let offset = i as u64 * CHUNK;
    (offset, CHUNK.min(FILE_BYTES - offset))
}

const CHUNKS: usize = FILE_BYTES.div_ceil(CHUNK) as usize;

/// MiB per second with one decimal.
fn mib_per_s(bytes: u64, ns: u64) -> String {
    let tenths = u128::from(bytes) * 10_000_000_000 / (u128::from(ns.max(1)) << 20);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Writes the 1 MiB file chunk by chunk, one write in flight: two 60 KiB
/// writes are more than the kernel's resend budget (96 KiB of unanswered
/// requests) allows at once.
fn write_file() -> Result<(), String> {
    let run = rpcs(
        1,
        CHUNKS,
        false,
        |i| {
            let (offset, len) = chunk(i);
            let data: Vec<u8> = (offset..offset + len).map(expected).collect();
            sys::write_var(FILE, offset, &data, i == 0)
        },
        |i, value| match value {
            Value::Word(n) if n == chunk(i).1 => Ok(()),
            other => Err(format!("write of chunk {i}: {other:?}")),
        },
    )?;
    report(&format!(
        "file_write bytes={FILE_BYTES} chunk={CHUNK} depth=1 MiB_per_s={} ms={} {}",
        mib_per_s(FILE_BYTES, run.ns),
        super::Millis(run.ns),
        run.per_rpc(),
    ));
    Ok(())
}

/// Reads the file `READ_PASSES` times in chunks with up to `depth` in
/// flight, checking every byte as it arrives (never holding the file).
fn read_file(depth: usize) -> Result<(), String> {
    let mut verify_ns = 0;
    let run = rpcs(
        depth,
        CHUNKS * READ_PASSES,
        false,
        |i| {
            let (offset, len) = chunk(i % CHUNKS);
            sys::read_var(FILE, offset, len as u32)
        },
        |i, value| {
            let t = sys::get_time();
            let (offset, len) = chunk(i % CHUNKS);
            let bytes = match value {
                Value::Bytes(bytes) => bytes,
                other => return Err(format!("read of chunk {i}: {other:?}")),
            };
            if bytes.len() as u64 != len {
                return Err(format!("chunk {i}: {} bytes, not {len}", bytes.len()));
            }
            if let Some(k) = bytes
                .iter()
                .zip(offset..)
                .position(|(&b, o)| b != expected(o))
            {
                return Err(format!("byte {} differs", offset + k as u64));
            }
            verify_ns += sys::get_time() - t;
            Ok(())
        },
    )?;
    let bytes = FILE_BYTES * READ_PASSES as u64;
    report(&format!(
        "file_read bytes={bytes} (1 MiB file x{READ_PASSES}) chunk={CHUNK} depth={depth} \
         MiB_per_s={} ms={} verify_ms={} {}",
        mib_per_s(bytes, run.ns),
        super::Millis(run.ns),
        super::Millis(verify_ns),
        run.per_rpc(),
    ));
    Ok(())
}
