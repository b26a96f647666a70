//! One-shot timers ("beeps"): a bounded min-heap of deadlines, each naming
//! the event to complete when it fires.
//!
//! Fires in deadline order (ties in the order they were set) and never
//! before the deadline. Entries whose event was cancelled or retired stay
//! until they fire or until the heap fills, when `set` sweeps them out.

use alloc::collections::BinaryHeap;
use core::cmp::Reverse;
use events::{EventId, Pid};

/// One pending timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    pub deadline_ns: u64,
    /// Order of setting, to break ties first-in first-out.
    pub seq: u64,
    pub event: EventId,
    pub owner: Pid,
}

pub struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    limit: usize,
    next_seq: u64,
}

/// The heap is at its limit even after sweeping out dead entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimersFull;

impl Timers {
    pub fn new(limit: usize) -> Self {
        Timers {
            heap: BinaryHeap::new(),
            limit,
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Adds a timer. When full, first drops entries `is_live` says are dead.
    pub fn set(
        &mut self,
        deadline_ns: u64,
        event: EventId,
        owner: Pid,
        is_live: impl Fn(&Timer) -> bool,
    ) -> Result<(), TimersFull> {
        if self.heap.len() >= self.limit {
            self.heap.retain(|Reverse(t)| is_live(t));
            if self.heap.len() >= self.limit {
                return Err(TimersFull);
            }
        }
        self.heap.try_reserve(1).map_err(|_| TimersFull)?;
        self.heap.push(Reverse(Timer {
            deadline_ns,
            seq: self.next_seq,
            event,
            owner,
        }));
        self.next_seq += 1;
        Ok(())
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(t)| t.deadline_ns)
    }

    /// Removes and returns the earliest timer whose deadline is `<= now_ns`.
    pub fn pop_expired(&mut self, now_ns: u64) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse(t)) if t.deadline_ns <= now_ns => self.heap.pop().map(|Reverse(t)| t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn id(n: u64) -> EventId {
        EventId(n)
    }

    #[test]
    fn fires_in_deadline_order_then_fifo_and_never_early() {
        let mut t = Timers::new(10);
        let live = |_: &Timer| true;
        t.set(300, id(1), Pid(1), live).unwrap();
        t.set(100, id(2), Pid(1), live).unwrap();
        t.set(200, id(3), Pid(1), live).unwrap();
        t.set(100, id(4), Pid(1), live).unwrap();
        assert_eq!(t.next_deadline(), Some(100));
        assert_eq!(t.pop_expired(99), None, "never early");
        let fired: Vec<u64> = core::iter::from_fn(|| t.pop_expired(250))
            .map(|x| x.event.0)
            .collect();
        assert_eq!(fired, [2, 4, 3]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.pop_expired(300).unwrap().event, id(1));
        assert!(t.is_empty());
    }

    #[test]
    fn full_heap_sweeps_dead_entries_then_refuses() {
        let mut t = Timers::new(2);
        t.set(10, id(1), Pid(1), |_| true).unwrap();
        t.set(20, id(2), Pid(1), |_| true).unwrap();
        assert_eq!(t.set(30, id(3), Pid(1), |_| true), Err(TimersFull));
        // Event 1 is dead: sweeping makes room.
        t.set(30, id(3), Pid(1), |x| x.event != id(1)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.pop_expired(100).unwrap().event, id(2));
    }
}
