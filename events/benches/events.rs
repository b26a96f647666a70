//! Benchmarks of the event model (`cargo bench -p events`).
//!
//! * `complete`: one completion including propagation, with the event in no tree, a leaf of
//!   a flat AND tree, and a leaf at depth 4 whose completion climbs all four levels.
//! * `block_wake`: block on an OR tree of 1, 64, 4096, 65536 leaves, then the completion that
//!   wakes it (validation, install, propagation, wake report, tree removal).
//! * `validate`: validation of balanced trees; the throughput line gives elements/s.
//! * Bytes per outstanding event: printed before the timings, measured with a counting
//!   global allocator (every heap byte the table holds, divided by the events it holds).
//!
//! Timings are measured, never asserted (the tests assert behaviour).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, BenchmarkId, Criterion, Throughput};
use events::{
    validate, Blocked, Config, Element, EventId, EventTable, Pid, Quota, Seed, Status, Tree, Value,
    ValueKind,
};

/// Counts live heap bytes so the memory figure is what the table really allocates.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the counter is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr` came from `System` through `alloc`/`realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const SEED: Seed = Seed([0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210]);
const PID: Pid = Pid(1);

fn big_table() -> EventTable {
    EventTable::with_config(
        SEED,
        Config {
            capacity: 1 << 22,
            default_quota: Quota {
                max_events: 1 << 22,
                max_tree_elements: 1 << 22,
            },
        },
    )
}

fn create(t: &mut EventTable, n: usize) -> Vec<EventId> {
    (0..n)
        .map(|_| t.create(PID, ValueKind::Empty).unwrap())
        .collect()
}

/// AND over `ids`, each leaf under `depth - 1` single-child OR nodes, so every completion
/// climbs `depth` levels (the last one wakes).
fn chain_tree(ids: &[EventId], depth: usize) -> Tree {
    Tree::all(ids.iter().map(|&id| {
        let mut t = Tree::event(id);
        for _ in 1..depth {
            t = Tree::any([t]);
        }
        t
    }))
}

/// A balanced tree with fan-out 8 and a mix of AND, OR and threshold nodes.
fn balanced(ids: &[EventId]) -> Tree {
    let mut level: Vec<Tree> = ids.iter().map(|&id| Tree::event(id)).collect();
    let mut k = 0u32;
    while level.len() > 1 {
        let mut next = Vec::new();
        let mut it = level.into_iter().peekable();
        while it.peek().is_some() {
            let group: Vec<Tree> = it.by_ref().take(8).collect();
            k += 1;
            let count = 1 + k % group.len() as u32;
            next.push(Tree::at_least(count, group));
        }
        level = next;
    }
    match level.pop() {
        Some(t @ Tree::Node { .. }) => t,
        Some(leaf) => Tree::any([leaf]),
        None => unreachable!("at least one leaf"),
    }
}

/// Completes up to `n - 1` of the `n` events per round, timing only the completions. The
/// last is left out so no round ends in a wake: wakes are measured by `block_wake`.
fn time_completions(
    iters: u64,
    n: usize,
    setup: impl Fn() -> (EventTable, Vec<EventId>),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let (mut t, ids) = setup();
        let batch = (left as usize).min(n - 1);
        let start = Instant::now();
        for &id in &ids[..batch] {
            black_box(t.complete(id, Status::Ok, Value::Empty).unwrap());
        }
        total += start.elapsed();
        left -= batch as u64;
        drop(t); // outside the timed region
    }
    total
}

fn bench_complete(c: &mut Criterion) {
    const N: usize = 4096;
    let mut g = c.benchmark_group("complete");
    g.bench_function("no_tree", |b| {
        b.iter_custom(|iters| {
            time_completions(iters, N, || {
                let mut t = big_table();
                let ids = create(&mut t, N);
                (t, ids)
            })
        })
    });
    for depth in [1usize, 2, 4] {
        g.bench_with_input(
            BenchmarkId::new("leaf_at_depth", depth),
            &depth,
            |b, &depth| {
                b.iter_custom(|iters| {
                    time_completions(iters, N, || {
                        let mut t = big_table();
                        let ids = create(&mut t, N);
                        let spec = chain_tree(&ids, depth).to_spec().unwrap();
                        assert_eq!(t.block(PID, &spec), Ok(Blocked::Waiting));
                        (t, ids)
                    })
                })
            },
        );
    }
    g.finish();
}

fn bench_block_wake(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_wake");
    for n in [1usize, 64, 4096, 65536] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("or_leaves", n), &n, |b, &n| {
            b.iter_batched(
                || {
                    let mut t = big_table();
                    let ids = create(&mut t, n);
                    let spec = Tree::any(ids.iter().copied()).to_spec().unwrap();
                    (t, spec)
                },
                |(mut t, spec)| {
                    assert_eq!(t.block(PID, &spec), Ok(Blocked::Waiting));
                    let wake = t
                        .complete(spec[n / 2].event_id, Status::Ok, Value::Empty)
                        .unwrap();
                    assert!(wake.is_some());
                    (t, spec) // dropped outside the timed region
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn bench_validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    for n in [64usize, 4096, 65536] {
        let ids: Vec<EventId> = (1..=n as u64).map(EventId).collect();
        let spec = balanced(&ids).to_spec().unwrap();
        g.throughput(Throughput::Elements(spec.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("balanced_fanout8", spec.len()),
            &spec,
            |b, spec| b.iter(|| validate(black_box(spec), usize::MAX).unwrap()),
        );
    }
    g.finish();
}

/// Heap bytes per outstanding event, as the counting allocator sees them.
fn report_memory() {
    println!(
        "bytes per outstanding event (counting allocator; table + its trees; slot = {} B):",
        EventTable::SLOT_BYTES
    );
    for n in [1_000usize, 10_000, 65_536, 100_000, 1_000_000] {
        let before = LIVE.load(Ordering::Relaxed);
        let mut t = big_table();
        let ids = create(&mut t, n);
        let table_only = LIVE.load(Ordering::Relaxed) - before;
        // Remove the ids vector from the count: it is the benchmark's, not the table's.
        let ids_bytes = (ids.capacity() * size_of::<EventId>()) as isize;
        let events_only = table_only - ids_bytes;
        let spec = balanced(&ids).to_spec().unwrap();
        let spec_bytes = (spec.capacity() * size_of::<Element>()) as isize;
        let before_block = LIVE.load(Ordering::Relaxed);
        assert_eq!(t.block(PID, &spec), Ok(Blocked::Waiting));
        let tree = LIVE.load(Ordering::Relaxed) - before_block;
        println!(
            "  {n:>9} events: {:6.1} B/event outstanding; blocked in a fan-out-8 tree: +{:5.1} B/leaf \
             (spec itself {:.1} B/leaf, owned by the caller)",
            events_only as f64 / n as f64,
            tree as f64 / n as f64,
            spec_bytes as f64 / n as f64,
        );
        drop((t, ids, spec));
    }
}

criterion_group!(benches, bench_complete, bench_block_wake, bench_validate);

fn main() {
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
