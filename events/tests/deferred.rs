//! Deferred work: nothing is lost or delivered twice, with a real producer thread racing
//! the consumer, and against a counting model for random single-threaded sequences.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::thread;

use events::{DeferredQueue, Pushed, Status, Work};
use proptest::prelude::*;

const SOURCES: u32 = 70; // spans two bitmap words

fn queue(cap: usize) -> DeferredQueue<u64> {
    DeferredQueue::new(NonZeroUsize::new(cap).unwrap(), SOURCES)
}

/// Per source: (items delivered, occurrences delivered as counts).
fn tally(q: &DeferredQueue<u64>, into: &mut [(u64, u64)], items: &mut Vec<u64>) {
    q.drain(|w| match w {
        Work::Item { source, item } => {
            into[source as usize].0 += 1;
            items.push(item);
        }
        Work::Occurred { source, count } => {
            assert!(count > 0);
            into[source as usize].1 += count;
        }
    });
}

#[test]
fn a_racing_producer_loses_nothing_and_nothing_is_delivered_twice() {
    const N: u64 = 200_000;
    let q = Arc::new(queue(64));
    let producer = {
        let q = Arc::clone(&q);
        thread::spawn(move || {
            let mut sent = vec![0u64; SOURCES as usize];
            for i in 0..N {
                let source = (i * 7 % u64::from(SOURCES)) as u32;
                if i % 3 == 0 {
                    q.signal(source).unwrap();
                } else {
                    q.push(source, i).unwrap();
                }
                sent[source as usize] += 1;
            }
            sent
        })
    };
    let mut got = vec![(0u64, 0u64); SOURCES as usize];
    let mut items = Vec::new();
    while !producer.is_finished() {
        tally(&q, &mut got, &mut items);
    }
    let sent = producer.join().unwrap();
    tally(&q, &mut got, &mut items);
    assert!(q.is_idle());
    for s in 0..SOURCES as usize {
        assert_eq!(got[s].0 + got[s].1, sent[s], "source {s}");
    }
    // Items arrive in push order, each once.
    assert!(items.windows(2).all(|w| w[0] < w[1]));
    let st = q.stats();
    assert_eq!(st.queued + st.coalesced + st.signalled, N);
    assert_eq!(st.queued, st.drained_items);
    assert_eq!(st.coalesced + st.signalled, st.drained_occurrences);
}

#[derive(Clone, Debug)]
enum Op {
    Push(u32),
    Signal(u32),
    Drain,
}

proptest! {
    #[test]
    fn every_occurrence_is_delivered_exactly_once(
        cap in 1usize..6,
        ops in prop::collection::vec(
            prop_oneof![
                4 => (0..SOURCES + 2).prop_map(Op::Push),
                2 => (0..SOURCES + 2).prop_map(Op::Signal),
                1 => Just(Op::Drain),
            ],
            0..200,
        ),
    ) {
        let q = queue(cap);
        let mut in_queue = 0usize;
        let mut sent = vec![0u64; SOURCES as usize];
        let mut got = vec![(0u64, 0u64); SOURCES as usize];
        let mut items = Vec::new();
        let mut coalesced = 0;
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Push(s) => {
                    let r = q.push(s, i as u64);
                    if s >= SOURCES {
                        prop_assert_eq!(r, Err(Status::UnknownSource));
                        continue;
                    }
                    // Coalesced exactly when the queue is full.
                    let want = if in_queue < cap { Pushed::Queued } else { Pushed::Coalesced };
                    prop_assert_eq!(r, Ok(want));
                    if want == Pushed::Queued { in_queue += 1 } else { coalesced += 1 }
                    sent[s as usize] += 1;
                }
                Op::Signal(s) => {
                    let r = q.signal(s);
                    if s >= SOURCES {
                        prop_assert_eq!(r, Err(Status::UnknownSource));
                        continue;
                    }
                    prop_assert_eq!(r, Ok(()));
                    sent[s as usize] += 1;
                }
                Op::Drain => {
                    tally(&q, &mut got, &mut items);
                    in_queue = 0;
                    prop_assert!(q.is_idle());
                }
            }
        }
        tally(&q, &mut got, &mut items);
        for s in 0..SOURCES as usize {
            prop_assert_eq!(got[s].0 + got[s].1, sent[s]);
        }
        prop_assert_eq!(q.stats().coalesced, coalesced);
    }
}
