//! Benchmarks of the event timeline (`cargo bench -p shadowdaemon`).
//!
//! Printed before the timings: the bytes one event costs, as the kernel records it
//! (16-byte records) and as the daemon writes it into `trace.json`, for an event's
//! whole life as a program sees it (its system call, create, block, complete, wake,
//! switch, retire's system call and retire).
//!
//! * `trace/ring_push`: one record into the guest's ring (host time; in the guest each
//!   record also reads the kernel clock, which `scripts/bench` measures there).
//! * `trace/to_json`: a 256-record batch as the daemon converts it.

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use rpc::trace::{parse, Kind, Ring, RECORD_BYTES};

/// The records of one event's life, as the kernel makes them.
const LIFE: [Kind; 8] = [
    Kind::Syscall,
    Kind::Created,
    Kind::Blocked,
    Kind::Completed,
    Kind::Woken,
    Kind::Switch,
    Kind::Syscall,
    Kind::Retired,
];

fn batch(events: u64) -> Vec<u8> {
    let mut ring = Ring::new(2, 4096);
    for e in 0..events {
        for (i, k) in LIFE.iter().enumerate() {
            ring.push(
                1_000_000 + e * 10_000 + i as u64 * 1000,
                *k,
                2,
                0x8000_0000 + e,
            );
        }
    }
    ring.take(true).expect("records")
}

fn bytes_per_event() {
    let events = 256;
    let bytes = batch(events);
    let (json, _) = shadowdaemon::trace::to_json(&parse(&bytes).expect("valid"));
    println!(
        "trace: bytes per event: {} in the guest ({} records of {RECORD_BYTES} bytes, time bases \
         included), {} in trace.json",
        bytes.len() as u64 / events,
        bytes.len() as f64 / RECORD_BYTES as f64 / events as f64,
        json.len() as u64 / events
    );
}

fn benches(c: &mut Criterion) {
    bytes_per_event();
    let mut g = c.benchmark_group("trace");
    g.throughput(Throughput::Elements(1));
    let mut ring = Ring::new(4, 256);
    let mut t = 0u64;
    g.bench_function("ring_push", |b| {
        b.iter(|| {
            t += 100;
            ring.push(black_box(t), Kind::Created, 2, t);
            if ring.len() > 512 {
                black_box(ring.take(false));
            }
        })
    });
    let records = parse(&batch(32)).expect("valid");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("to_json", |b| {
        b.iter(|| black_box(shadowdaemon::trace::to_json(black_box(&records))))
    });
    g.finish();
}

criterion_group!(trace, benches);

fn main() {
    trace();
    Criterion::default().configure_from_args().final_summary();
}
