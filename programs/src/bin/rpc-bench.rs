//! RPC benchmarks against the dom0 shadowdaemon (scripts/bench, never the
//! tests), from user mode: ping round trip; ping throughput with 1, 16 and
//! 256 in flight with the event-channel notifications per RPC; FileWrite
//! and FileRead throughput on a 1 MiB file. Each result is one line
//! `rpc-bench: name key=value ...`, the last one `rpc-bench: done`. Times
//! are Xen system time under QEMU/TCG: compare runs, not hardware.
//!
//! "In flight" is a sliding window: as soon as any RPC completes (an OR
//! tree over those in flight) it is retired and the window is filled
//! again. The `batch` lines instead send D, wait for all of them under one
//! AND tree (one wake), and repeat.
//!
//! The notification counts are the kernel's (its RPC channel is the
//! kernel's): `KernelStats` words 20 and 21.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use ethos::{event, println, rpc, stats, time, Event, Status, Tree};

ethos::main!(main);

/// Sequential pings timed one by one.
const PINGS: usize = 500;
/// Pings per throughput run.
const RPCS: usize = 2048;
const DEPTHS: [usize; 3] = [1, 16, 256];
const FILE: &str = "rpc-bench.dat";
const FILE_BYTES: u64 = 1 << 20;
/// Times the file is read in one FileRead run.
const READ_PASSES: usize = 4;
/// The largest FileRead/FileWrite the daemon takes (the `rpc` crate's
/// `MAX_IO`): 60 KiB.
const CHUNK: u64 = 60 * 1024;
const CHUNKS: usize = FILE_BYTES.div_ceil(CHUNK) as usize;

// Indexes of `KernelStats` (kernel/src/syscall/program.rs).
const WAKES: usize = 5;
const RPC_KICKS: usize = 20;
const RPC_PORT_EVENTS: usize = 21;

fn report(line: &str) {
    println!("rpc-bench: {line}");
}

fn err(what: &str) -> impl Fn(Status) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn main(_: ethos::Args) -> i32 {
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            report(&format!("FAILED: {e}"));
            1
        }
    };
    report("done");
    code
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
    let removed = wait_ok(rpc::remove(FILE), "remove");
    read?;
    removed
}

/// A duration in ns as milliseconds with one decimal ("12.3").
struct Millis(u64);

impl core::fmt::Display for Millis {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let tenths = self.0 / 100_000;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

fn now() -> Result<u64, String> {
    time::now().map_err(err("time"))
}

/// Blocks until `id` completes and retires it; `Ok` only for a success.
fn wait_ok(id: Result<Event, Status>, what: &str) -> Result<(), String> {
    let r = event::block_and_retire(id.map_err(err(what))?).map_err(err(what))?;
    match r.status {
        Status::Ok => Ok(()),
        Status::Remote => Err(format!("{what}: remote error {}", r.errno)),
        s => Err(format!("{what}: {s}")),
    }
}

/// The first ping: queued in the ring until the daemon has found the
/// channel in xenstore and connected.
fn connect() -> Result<(), String> {
    let start = now()?;
    let id = rpc::ping().map_err(err("ping"))?;
    if !event::wait_timeout(id, 60_000 * time::MS).map_err(err("wait"))? {
        let _ = event::cancel(id);
        let _ = event::retire_empty(id);
        return Err(String::from("no answer from the shadowdaemon in 60 s"));
    }
    wait_ok(Ok(id), "first ping")?;
    report(&format!(
        "first ping answered after {} ms (the daemon connecting)",
        Millis(now()? - start)
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
        let start = now()?;
        wait_ok(rpc::ping(), "ping")?;
        samples.push(now()? - start);
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
    let mut c = [0u64; RPC_PORT_EVENTS + 1];
    let n = stats::read(&mut c).map_err(err("kernel stats"))?;
    if n < c.len() {
        return Err(format!(
            "kernel stats: {n} counters, no RPC counters (a kernel without words 20 and 21)"
        ));
    }
    Ok(Counters {
        kicks: c[RPC_KICKS],
        port_events: c[RPC_PORT_EVENTS],
        wakes: c[WAKES],
    })
}

/// `num / den` with four decimals, in integers.
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
fn abandon(flight: &[(Event, usize)]) {
    for &(id, _) in flight {
        let _ = event::cancel(id);
        let _ = event::retire_empty(id);
    }
}

/// Makes `total` RPCs with up to `depth` in flight: `start(i)` sends the
/// i-th, `finish(i, event)` retires its completed event and checks the
/// reply. With `batch`, the window is refilled only once all have
/// completed (one AND tree per batch); otherwise whenever any has (an OR
/// tree over those in flight).
fn rpcs(
    depth: usize,
    total: usize,
    batch: bool,
    mut start: impl FnMut(usize) -> Result<Event, Status>,
    mut finish: impl FnMut(usize, Event) -> Result<(), String>,
) -> Result<Run, String> {
    let mut flight: Vec<(Event, usize)> = Vec::with_capacity(depth);
    let (mut next, mut done, mut peak, mut busy) = (0, 0, 0, 0);
    let before = counters()?;
    let t0 = now()?;
    while done < total {
        if !batch || flight.is_empty() {
            while next < total && flight.len() < depth {
                match start(next) {
                    Ok(id) => {
                        flight.push((id, next));
                        next += 1;
                    }
                    Err(Status::Busy) if !flight.is_empty() => {
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
        let mut completed = match event::wait(&tree) {
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
            if let Err(e) = finish(i, id) {
                abandon(&flight);
                return Err(e);
            }
            done += 1;
        }
    }
    let ns = now()? - t0;
    Ok(Run {
        rpcs: total,
        ns,
        peak,
        busy,
        before,
        after: counters()?,
    })
}

/// The event's own status as an error, for request `i`.
fn outcome<T>(r: ethos::Retired<T>, i: usize) -> Result<T, String> {
    match r.status {
        Status::Ok => Ok(r.value),
        Status::Remote => Err(format!("request {i}: remote error {}", r.errno)),
        s => Err(format!("request {i}: {s}")),
    }
}

fn ping_throughput(depth: usize, batch: bool) -> Result<(), String> {
    let run = rpcs(
        depth,
        RPCS,
        batch,
        |_| rpc::ping(),
        |i, id| outcome(event::retire_empty(id).map_err(err("retire"))?, i),
    )?;
    report(&format!(
        "ping {} depth={depth} rpcs={} rpcs_per_s={} ms={} {}",
        if batch { "batch" } else { "window" },
        run.rpcs,
        run.rpcs as u64 * 1_000_000_000 / run.ns.max(1),
        Millis(run.ns),
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
            rpc::file_write(FILE, offset, &data, i == 0)
        },
        |i, id| match outcome(event::retire_word(id).map_err(err("retire"))?, i)? {
            n if n == chunk(i).1 => Ok(()),
            n => Err(format!("write of chunk {i}: {n} bytes written")),
        },
    )?;
    report(&format!(
        "file_write bytes={FILE_BYTES} chunk={CHUNK} depth=1 MiB_per_s={} ms={} {}",
        mib_per_s(FILE_BYTES, run.ns),
        Millis(run.ns),
        run.per_rpc(),
    ));
    Ok(())
}

/// Reads the file `READ_PASSES` times in chunks with up to `depth` in
/// flight, checking every byte as it arrives (never holding the file: one
/// chunk's buffer, reused).
fn read_file(depth: usize) -> Result<(), String> {
    let mut verify_ns = 0;
    let mut buf = vec![0u8; CHUNK as usize];
    let run = rpcs(
        depth,
        CHUNKS * READ_PASSES,
        false,
        |i| {
            let (offset, len) = chunk(i % CHUNKS);
            rpc::file_read(FILE, offset, len as usize)
        },
        |i, id| {
            let got = outcome(event::retire_bytes(id, &mut buf).map_err(err("retire"))?, i)?;
            let t = now()?;
            let (offset, len) = chunk(i % CHUNKS);
            if got as u64 != len {
                return Err(format!("chunk {i}: {got} bytes, not {len}"));
            }
            if let Some(k) = buf[..got]
                .iter()
                .zip(offset..)
                .position(|(&b, o)| b != expected(o))
            {
                return Err(format!("byte {} differs", offset + k as u64));
            }
            verify_ns += now()? - t;
            Ok(())
        },
    )?;
    let bytes = FILE_BYTES * READ_PASSES as u64;
    report(&format!(
        "file_read bytes={bytes} (1 MiB file x{READ_PASSES}) chunk={CHUNK} depth={depth} \
         MiB_per_s={} ms={} verify_ms={} {}",
        mib_per_s(bytes, run.ns),
        Millis(run.ns),
        Millis(verify_ns),
        run.per_rpc(),
    ));
    Ok(())
}
