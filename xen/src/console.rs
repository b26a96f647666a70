//! The PV console ring driver (`xen/io/console.h`), output side.
//!
//! We are the producer of the `out` ring and xenconsoled in dom0 is the
//! consumer. The ring lives in memory dom0 can write, so: our producer index
//! is kept privately and only published, the consumer index is read once per
//! step and checked (`prod - cons <= size`), and a bad index marks the ring
//! broken instead of looping or writing out of bounds. When the ring is full
//! the driver kicks dom0 and waits for space: output is never dropped.

use crate::public::console::OUT_SIZE;

/// Access to the shared console page. The implementation decides how (the
/// kernel uses volatile and atomic accesses; tests use plain memory).
pub trait RingMemory {
    /// The consumer index, read once with acquire ordering.
    fn out_cons(&self) -> u32;
    /// Publishes the producer index with release ordering, after the bytes.
    fn publish_out_prod(&self, prod: u32);
    /// Writes one byte into the `out` array at `index` (< OUT_SIZE).
    fn write_out(&self, index: usize, byte: u8);
}

/// How the driver tells dom0 about new bytes and waits for it to consume some.
pub trait Doorbell {
    fn notify(&self);
    /// Waits a short while for the consumer (until kicked or a timeout).
    fn wait_for_consumer(&self);
}

/// Why the ring stopped being used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The consumer index is more than a ring ahead of or behind our producer.
    BadConsumerIndex { prod: u32, cons: u32 },
}

pub struct ConsoleRing<M, D> {
    mem: M,
    bell: D,
    /// Our producer index: never read back from shared memory.
    prod: u32,
    broken: Option<RingError>,
}

impl<M: RingMemory, D: Doorbell> ConsoleRing<M, D> {
    /// Starts producing at `initial_prod`, the index found at boot (the
    /// builder may have left earlier output in the ring).
    pub fn new(mem: M, bell: D, initial_prod: u32) -> Self {
        ConsoleRing {
            mem,
            bell,
            prod: initial_prod,
            broken: None,
        }
    }

    pub fn broken(&self) -> Option<RingError> {
        self.broken
    }

    /// Bytes dom0 has not consumed yet, or an error if the index is bad.
    fn pending(&mut self) -> Result<usize, RingError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        let cons = self.mem.out_cons();
        let used = self.prod.wrapping_sub(cons) as usize;
        if used > OUT_SIZE {
            let e = RingError::BadConsumerIndex {
                prod: self.prod,
                cons,
            };
            self.broken = Some(e);
            return Err(e);
        }
        Ok(used)
    }

    /// Writes all of `bytes`, waiting for space whenever the ring is full.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), RingError> {
        while !bytes.is_empty() {
            let free = OUT_SIZE - self.pending()?;
            if free == 0 {
                self.bell.notify();
                self.bell.wait_for_consumer();
                continue;
            }
            let n = free.min(bytes.len());
            for (i, &b) in bytes[..n].iter().enumerate() {
                let index = self.prod.wrapping_add(i as u32) as usize % OUT_SIZE;
                self.mem.write_out(index, b);
            }
            self.prod = self.prod.wrapping_add(n as u32);
            self.mem.publish_out_prod(self.prod);
            bytes = &bytes[n..];
        }
        self.bell.notify();
        Ok(())
    }

    /// Waits until dom0 has consumed everything, at most `max_waits` waits.
    /// Used before shutdown so the last lines reach the log.
    pub fn drain(&mut self, max_waits: usize) -> Result<bool, RingError> {
        for _ in 0..max_waits {
            if self.pending()? == 0 {
                return Ok(true);
            }
            self.bell.notify();
            self.bell.wait_for_consumer();
        }
        Ok(self.pending()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::{Cell, RefCell};
    extern crate std;
    use std::vec::Vec;

    /// A console page in ordinary memory, with a consumer that takes `per_wait`
    /// bytes each time the producer waits.
    struct FakePage {
        out: RefCell<[u8; OUT_SIZE]>,
        cons: Cell<u32>,
        prod: Cell<u32>,
    }

    impl RingMemory for &FakePage {
        fn out_cons(&self) -> u32 {
            self.cons.get()
        }
        fn publish_out_prod(&self, prod: u32) {
            self.prod.set(prod)
        }
        fn write_out(&self, index: usize, byte: u8) {
            self.out.borrow_mut()[index] = byte;
        }
    }

    struct FakeConsumer<'a> {
        page: &'a FakePage,
        received: RefCell<Vec<u8>>,
        per_wait: usize,
        notifies: Cell<usize>,
        waits: Cell<usize>,
    }

    impl Doorbell for &FakeConsumer<'_> {
        fn notify(&self) {
            self.notifies.set(self.notifies.get() + 1);
        }
        fn wait_for_consumer(&self) {
            self.waits.set(self.waits.get() + 1);
            for _ in 0..self.per_wait {
                let cons = self.page.cons.get();
                if cons == self.page.prod.get() {
                    break;
                }
                let b = self.page.out.borrow()[cons as usize % OUT_SIZE];
                self.received.borrow_mut().push(b);
                self.page.cons.set(cons.wrapping_add(1));
            }
        }
    }

    fn page(start: u32) -> FakePage {
        FakePage {
            out: RefCell::new([0; OUT_SIZE]),
            cons: Cell::new(start),
            prod: Cell::new(start),
        }
    }

    fn consumer(page: &FakePage, per_wait: usize) -> FakeConsumer<'_> {
        FakeConsumer {
            page,
            received: RefCell::new(Vec::new()),
            per_wait,
            notifies: Cell::new(0),
            waits: Cell::new(0),
        }
    }

    #[test]
    fn small_write_is_published_and_notified() {
        let p = page(0);
        let c = consumer(&p, usize::MAX);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        ring.write(b"hello\n").unwrap();
        assert_eq!(p.prod.get(), 6);
        assert_eq!(&p.out.borrow()[..6], b"hello\n");
        assert_eq!(c.notifies.get(), 1);
        assert_eq!(c.waits.get(), 0);
    }

    #[test]
    fn full_ring_waits_and_loses_nothing_across_wraparound() {
        // Start near the u32 wrap point to exercise index wrapping too.
        let start = u32::MAX - 100;
        let p = page(start);
        let c = consumer(&p, 700);
        let mut ring = ConsoleRing::new(&p, &c, start);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        ring.write(&data).unwrap();
        assert!(ring.drain(100).unwrap());
        assert_eq!(*c.received.borrow(), data);
        assert!(
            c.waits.get() >= 10_000 / 700 - 3,
            "it had to wait for space"
        );
    }

    #[test]
    fn consumer_index_ahead_of_producer_breaks_the_ring() {
        let p = page(0);
        let c = consumer(&p, 0);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        p.cons.set(5); // dom0 claims to have consumed bytes never produced.
        let err = ring.write(b"x").unwrap_err();
        assert_eq!(err, RingError::BadConsumerIndex { prod: 0, cons: 5 });
        assert_eq!(ring.broken(), Some(err));
        // Stays broken even if the index is later restored: nothing is trusted again.
        p.cons.set(0);
        assert!(ring.write(b"y").is_err());
    }

    #[test]
    fn consumer_index_too_far_behind_breaks_the_ring() {
        let p = page(0);
        let c = consumer(&p, 0);
        let mut ring = ConsoleRing::new(&p, &c, 5000);
        assert!(matches!(
            ring.write(b"x"),
            Err(RingError::BadConsumerIndex { .. })
        ));
    }

    #[test]
    fn drain_gives_up_after_max_waits() {
        let p = page(0);
        let c = consumer(&p, 0);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        ring.write(b"abc").unwrap();
        assert!(!ring.drain(3).unwrap());
        assert_eq!(c.waits.get(), 3);
    }
}
