//! Benchmarks of the RPC channel (`cargo bench -p rpc`).
//!
//! * `rpc_batch/ping/W`: W `Ping` requests with W outstanding (1, 16, 256), through a
//!   caller/responder pair over heap pages in one thread: call W, kick, the responder
//!   answers all, kick, the caller takes all replies. The throughput line is RPCs/s.
//! * `rpc_batch/read4k/W`: the same with 4 KiB `FileRead` replies (bytes through the rings).
//! * Kicks per RPC: printed before the timings, for the same one-thread schedule (where
//!   they are exact) and for the two ends on two threads with simulated event channels
//!   (where they depend on scheduling: measured, never asserted).

use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use rpc::{
    Caller, Config, Error, HeapMem, Layout, Placement, Probe, Reply, ReplyBody, Request, Responder,
    Side, Vchan,
};

type Mem = Arc<HeapMem>;

/// A caller (vchan server, the guest) and a responder (vchan client, the daemon) with
/// 64 KiB rings, as the guest would set them up.
fn channel(window: usize) -> (Caller<Mem>, Responder<Mem>) {
    let layout = Layout::new(16, 16).unwrap();
    let ext = |side| match layout.placement(side) {
        Placement::InPage { .. } => None,
        Placement::Granted { .. } => Some(Arc::new(HeapMem::new(layout.ring_size(side)))),
    };
    let ctrl = Arc::new(HeapMem::new(rpc::layout::PAGE_SIZE));
    let (left, right) = (ext(Side::Left), ext(Side::Right));
    let grants: Vec<u32> = (0..layout.grant_count() as u32).collect();
    let server = Vchan::server(layout, ctrl.clone(), left.clone(), right.clone(), &grants).unwrap();
    let probe = Probe::read(&*ctrl).unwrap();
    let (client, _) = Vchan::client(probe.layout, ctrl, left, right).unwrap();
    let config = Config {
        outbox_bytes: 1 << 20,
        max_in_flight: window,
    };
    (Caller::new(server, config), Responder::new(client, config))
}

fn answer(id: u64, req: &Request) -> Reply {
    match req {
        Request::FileRead { len, .. } => Reply::ok(id, ReplyBody::FileRead(vec![7; *len as usize])),
        _ => Reply::ok(id, ReplyBody::Ping),
    }
}

/// Bytes the end has moved through the rings so far.
fn moved<M: rpc::SharedMem>(v: &Vchan<M>) -> u64 {
    v.stats().bytes_read + v.stats().bytes_written
}

/// The daemon's side of one pass: push queued replies, answer requests while the outbox
/// has room for the largest reply.
fn serve(responder: &mut Responder<Mem>) -> u64 {
    let mut answered = 0;
    responder.flush().unwrap();
    while responder.has_room(rpc::MAX_PAYLOAD) {
        let Some(inc) = responder.poll().unwrap() else {
            break;
        };
        responder
            .reply(&answer(inc.event_id, &inc.request))
            .unwrap();
        answered += 1;
    }
    answered
}

/// One batch of `window` RPCs in one thread, each side kicking (at most) once per pass.
fn batch(caller: &mut Caller<Mem>, responder: &mut Responder<Mem>, req: &Request, window: usize) {
    for id in 0..window as u64 {
        caller.call(id, req).unwrap();
    }
    let _ = caller.take_notify();
    let mut n = 0;
    while n < window {
        serve(responder);
        let _ = responder.take_notify();
        while let Some(r) = caller.poll().unwrap() {
            black_box(r);
            n += 1;
        }
        let _ = caller.take_notify();
    }
}

fn requests() -> [(&'static str, Request); 2] {
    let read = Request::FileRead {
        path: rpc::Path::new("f").unwrap(),
        offset: 0,
        len: 4096,
    };
    [("ping", Request::Ping), ("read4k", read)]
}

fn bench_batches(c: &mut Criterion) {
    let mut g = c.benchmark_group("rpc_batch");
    for (name, req) in requests() {
        for window in [1usize, 16, 256] {
            let (mut caller, mut responder) = channel(window);
            g.throughput(Throughput::Elements(window as u64));
            g.bench_with_input(BenchmarkId::new(name, window), &window, |b, &w| {
                b.iter(|| batch(&mut caller, &mut responder, &req, w))
            });
        }
    }
    g.finish();
}

/// A simulated event channel.
#[derive(Default)]
struct Bell {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    fn kick(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }
    fn wait(&self) {
        let g = self.pending.lock().unwrap();
        let (mut g, t) = self
            .cv
            .wait_timeout_while(g, Duration::from_secs(20), |p| !*p)
            .unwrap();
        assert!(!t.timed_out(), "lost wake-up");
        *g = false;
    }
}

/// `n` RPCs with up to `window` outstanding, the two ends on two threads; returns the
/// kicks of both sides.
fn threaded(n: u64, window: usize, req: &Request) -> u64 {
    let (mut caller, mut responder) = channel(window);
    let (gb, db) = (Bell::default(), Bell::default());
    thread::scope(|s| {
        let d = s.spawn(|| {
            let mut answered = 0;
            while answered < n || responder.queued_bytes() > 0 {
                let before = moved(responder.vchan());
                answered += serve(&mut responder);
                if responder.take_notify().is_yes() {
                    gb.kick();
                }
                if moved(responder.vchan()) == before {
                    db.wait();
                }
            }
            responder.stats().kicks
        });
        let (mut next, mut done) = (0u64, 0u64);
        while done < n {
            let mut progress = false;
            while next < n && caller.in_flight() < window {
                match caller.call(next, req) {
                    Ok(()) => next += 1,
                    Err(Error::Full) => break,
                    Err(e) => panic!("{e}"),
                }
                progress = true;
            }
            while caller.poll().unwrap().is_some() {
                done += 1;
                progress = true;
            }
            if caller.take_notify().is_yes() {
                db.kick();
            }
            if !progress && done < n {
                gb.wait();
            }
        }
        caller.stats().kicks + d.join().unwrap()
    })
}

fn report_kicks() {
    println!("kicks per RPC (both directions together):");
    for (name, req) in requests() {
        for window in [1usize, 16, 256] {
            let (mut caller, mut responder) = channel(window);
            let rounds = 4096 / window;
            for _ in 0..rounds {
                batch(&mut caller, &mut responder, &req, window);
            }
            let one =
                (caller.stats().kicks + responder.stats().kicks) as f64 / (rounds * window) as f64;
            let n = 20_000;
            let two = threaded(n, window, &req) as f64 / n as f64;
            println!(
                "  {name:>6}, {window:>3} outstanding: {one:.4} in one thread, {two:.4} on two threads"
            );
        }
    }
}

criterion_group!(benches, bench_batches);

fn main() {
    report_kicks();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
