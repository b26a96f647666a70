//! Deferred work: what the upcall records and the syscall-return point drains.
//!
//! The event-channel upcall must not touch kernel data (that data has one writer, the
//! kernel outside interrupt context, and no locks against the upcall). So the upcall only
//! *records* what happened here, and the kernel drains it right before returning from a
//! system call and in the idle loop.
//!
//! Two ways to record, both lock-free, atomics only:
//!
//! * [`DeferredQueue::push`] queues an item (bounded [`ArrayQueue`]). When the queue is
//!   full the item is **coalesced**: its source's sequence counter is bumped instead, so
//!   the occurrence is counted, never silently lost, and memory stays constant.
//! * [`DeferredQueue::signal`] only bumps the source's counter: for interrupt-like sources
//!   a storm costs one counter, yet the consumer still learns exactly how many occurrences
//!   there were (Managarm-style sequence numbers).
//!
//! The consumer's [`DeferredQueue::drain`] hands out every queued item, then for every
//! source whose counter moved, one [`Work::Occurred`] with the exact number of occurrences
//! since the last drain. Every occurrence reaches the consumer exactly once, either as an
//! item or inside a count. Items come out in push order; counts come after the items of the
//! same drain (an occurrence counted may be older than a queued item: a consumer that needs
//! more order than that should poll its device when it sees a count).
//!
//! # Who may call what
//!
//! Producer side (the upcall): [`push`](DeferredQueue::push),
//! [`signal`](DeferredQueue::signal). Consumer side (syscall return, idle loop):
//! [`drain`](DeferredQueue::drain), [`is_idle`](DeferredQueue::is_idle). Anyone:
//! [`stats`](DeferredQueue::stats). The design is one producer and one consumer, but
//! nothing breaks with more: the queue is MPMC and counts are claimed with compare-exchange,
//! so no occurrence is delivered twice.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::num::NonZeroUsize;
use core::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::Status;

/// How a [`DeferredQueue::push`] was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The item is in the queue.
    Queued,
    /// The queue was full: the item was dropped and counted on its source instead.
    Coalesced,
}

/// One unit of drained work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work<T> {
    /// A queued item and the source that pushed it.
    Item {
        /// The source.
        source: u32,
        /// The item.
        item: T,
    },
    /// `count` occurrences on `source` (signals and coalesced pushes) since the last drain.
    Occurred {
        /// The source.
        source: u32,
        /// How many occurrences; never 0.
        count: u64,
    },
}

/// Counters of a [`DeferredQueue`]. At any quiet moment after a drain:
/// `queued == drained_items` and `coalesced + signalled == drained_occurrences`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeferredStats {
    /// Items that went into the queue.
    pub queued: u64,
    /// Items that found the queue full and were counted on their source instead.
    pub coalesced: u64,
    /// Count-only occurrences ([`DeferredQueue::signal`]).
    pub signalled: u64,
    /// Items handed to the consumer.
    pub drained_items: u64,
    /// Occurrences handed to the consumer inside [`Work::Occurred`].
    pub drained_occurrences: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    coalesced: AtomicU64,
    signalled: AtomicU64,
    drained_items: AtomicU64,
    drained_occurrences: AtomicU64,
}

/// The upcall → kernel handoff. See the [module docs](self).
pub struct DeferredQueue<T> {
    queue: ArrayQueue<(u32, T)>,
    /// Per source: occurrences counted (producer increments).
    seq: Box<[AtomicU64]>,
    /// Per source: occurrences already handed out (consumer advances).
    seen: Box<[AtomicU64]>,
    /// One bit per source whose `seq` may have moved since the consumer last looked.
    dirty: Box<[AtomicU64]>,
    counters: Counters,
}

impl<T> DeferredQueue<T> {
    /// A queue holding up to `capacity` items, for sources `0..sources`.
    pub fn new(capacity: NonZeroUsize, sources: u32) -> Self {
        let counters = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        let n = sources as usize;
        DeferredQueue {
            queue: ArrayQueue::new(capacity.get()),
            seq: counters(n).into_boxed_slice(),
            seen: counters(n).into_boxed_slice(),
            dirty: counters(n.div_ceil(64)).into_boxed_slice(),
            counters: Counters::default(),
        }
    }

    /// Number of sources.
    pub fn sources(&self) -> u32 {
        self.seq.len() as u32
    }

    /// Item capacity.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Producer: counts one occurrence on `source` and marks it for the consumer.
    fn count(&self, source: u32) -> Result<(), Status> {
        let seq = self.seq.get(source as usize).ok_or(Status::UnknownSource)?;
        seq.fetch_add(1, Ordering::Relaxed);
        // Release: a consumer that sees the bit (Acquire swap) sees the increment above.
        self.dirty[source as usize / 64].fetch_or(1 << (source % 64), Ordering::Release);
        Ok(())
    }

    /// Producer: records `item` from `source`; coalesces it into `source`'s count if the
    /// queue is full.
    ///
    /// Errors: [`Status::UnknownSource`] (nothing recorded).
    pub fn push(&self, source: u32, item: T) -> Result<Pushed, Status> {
        if source as usize >= self.seq.len() {
            return Err(Status::UnknownSource);
        }
        match self.queue.push((source, item)) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Ok(Pushed::Queued)
            }
            Err(_) => {
                self.count(source)?;
                self.counters.coalesced.fetch_add(1, Ordering::Relaxed);
                Ok(Pushed::Coalesced)
            }
        }
    }

    /// Producer: records one occurrence on `source`, as a count only.
    ///
    /// Errors: [`Status::UnknownSource`].
    pub fn signal(&self, source: u32) -> Result<(), Status> {
        self.count(source)?;
        self.counters.signalled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Consumer: hands every recorded occurrence to `f` (items first, then counts) and
    /// returns how many [`Work`]s it delivered. Work recorded while draining is delivered
    /// by this drain or the next; never lost, never twice.
    pub fn drain(&self, mut f: impl FnMut(Work<T>)) -> usize {
        let mut delivered = 0;
        while let Some((source, item)) = self.queue.pop() {
            self.counters.drained_items.fetch_add(1, Ordering::Relaxed);
            f(Work::Item { source, item });
            delivered += 1;
        }
        for (w, word) in self.dirty.iter().enumerate() {
            // Clear the bits before reading the counters: an increment that races with us
            // either is seen now or sets its bit again for the next drain.
            let mut bits = word.swap(0, Ordering::Acquire);
            while bits != 0 {
                let source = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(count) = self.claim(source) {
                    self.counters
                        .drained_occurrences
                        .fetch_add(count, Ordering::Relaxed);
                    f(Work::Occurred {
                        source: source as u32,
                        count,
                    });
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// Claims the occurrences on `source` not yet handed out.
    fn claim(&self, source: usize) -> Option<u64> {
        let (seq, seen) = (self.seq.get(source)?, self.seen.get(source)?);
        let mut last = seen.load(Ordering::Relaxed);
        loop {
            let now = seq.load(Ordering::Relaxed);
            if now <= last {
                return None;
            }
            match seen.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(now - last),
                Err(moved) => last = moved,
            }
        }
    }

    /// Consumer: true when there is nothing to drain (the idle loop may block the vCPU;
    /// it must still re-check after unmasking, as with event channels).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.dirty.iter().all(|w| w.load(Ordering::Acquire) == 0)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> DeferredStats {
        let c = &self.counters;
        DeferredStats {
            queued: c.queued.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            signalled: c.signalled.load(Ordering::Relaxed),
            drained_items: c.drained_items.load(Ordering::Relaxed),
            drained_occurrences: c.drained_occurrences.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn q(cap: usize, sources: u32) -> DeferredQueue<u32> {
        DeferredQueue::new(NonZeroUsize::new(cap).unwrap(), sources)
    }

    fn drain_all(d: &DeferredQueue<u32>) -> Vec<Work<u32>> {
        let mut out = Vec::new();
        d.drain(|w| out.push(w));
        out
    }

    #[test]
    fn items_come_out_in_order() {
        let d = q(4, 2);
        assert_eq!(d.push(0, 10), Ok(Pushed::Queued));
        assert_eq!(d.push(1, 11), Ok(Pushed::Queued));
        assert!(!d.is_idle());
        assert_eq!(
            drain_all(&d),
            vec![
                Work::Item {
                    source: 0,
                    item: 10
                },
                Work::Item {
                    source: 1,
                    item: 11
                }
            ]
        );
        assert!(d.is_idle());
        assert!(drain_all(&d).is_empty());
    }

    #[test]
    fn overflow_is_coalesced_and_counted_not_lost() {
        let d = q(2, 3);
        let results: Vec<_> = (0..5).map(|i| d.push(2, i).unwrap()).collect();
        assert_eq!(
            results,
            vec![
                Pushed::Queued,
                Pushed::Queued,
                Pushed::Coalesced,
                Pushed::Coalesced,
                Pushed::Coalesced
            ]
        );
        let work = drain_all(&d);
        assert_eq!(
            work,
            vec![
                Work::Item { source: 2, item: 0 },
                Work::Item { source: 2, item: 1 },
                Work::Occurred {
                    source: 2,
                    count: 3
                }
            ]
        );
        let s = d.stats();
        assert_eq!((s.queued, s.coalesced, s.signalled), (2, 3, 0));
        assert_eq!((s.drained_items, s.drained_occurrences), (2, 3));
    }

    #[test]
    fn a_signal_storm_costs_one_counter_and_is_counted_exactly() {
        let d = q(1, 130);
        for _ in 0..1000 {
            d.signal(129).unwrap();
        }
        d.signal(3).unwrap();
        assert_eq!(
            drain_all(&d),
            vec![
                Work::Occurred {
                    source: 3,
                    count: 1
                },
                Work::Occurred {
                    source: 129,
                    count: 1000
                }
            ]
        );
        d.signal(129).unwrap();
        assert_eq!(
            drain_all(&d),
            vec![Work::Occurred {
                source: 129,
                count: 1
            }]
        );
    }

    #[test]
    fn unknown_sources_are_refused() {
        let d = q(1, 2);
        assert_eq!(d.push(2, 0), Err(Status::UnknownSource));
        assert_eq!(d.signal(99), Err(Status::UnknownSource));
        assert!(d.is_idle());
        assert_eq!(d.stats(), DeferredStats::default());
    }
}
