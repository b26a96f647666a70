//! The PV console ring driver (`xen/io/console.h`), output side.
//!
//! We are the producer of the `out` ring and xenconsoled in dom0 is the
//! consumer. The ring lives in memory dom0 can write, so: our producer index
//! is kept privately and only published (never read back), the consumer
//! index is read once per step and checked against ours (at most a ring
//! behind, never ahead, never moving backwards), and a bad index marks the
//! ring broken instead of looping or writing out of bounds.
//!
//! When the ring is full the driver kicks dom0 and waits for space, as long
//! as xenconsoled keeps taking bytes: a slow reader loses nothing. A reader
//! that takes nothing for [`STALLED_WAITS`] waits in a row (xenconsoled
//! stopped, or dom0 too busy to read) must not stall the kernel with it:
//! the driver then drops output, whole lines, without waiting, and counts
//! the bytes; once the ring has drained it writes one line saying how many
//! bytes were dropped and goes on as before.

use crate::public::console::OUT_SIZE;

/// Waits in a row in which xenconsoled takes nothing before the driver gives
/// up on it and drops output (the kernel's waits last 10 ms each: 300 ms).
pub const STALLED_WAITS: u32 = 30;

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
    /// The consumer index is more than a ring behind our producer, or ahead
    /// of it.
    BadConsumerIndex { prod: u32, cons: u32 },
    /// The consumer index moved backwards (from `was` to `now`): dom0 would
    /// have us believe it un-read bytes.
    ConsumerIndexMovedBack { was: u32, now: u32 },
}

pub struct ConsoleRing<M, D> {
    mem: M,
    bell: D,
    /// Our producer index: never read back from shared memory.
    prod: u32,
    /// The consumer index as last read and checked.
    cons: u32,
    broken: Option<RingError>,
    /// xenconsoled stopped reading: output is dropped until the ring drains.
    dropping: bool,
    /// The rest of the current line is dropped (a line is never cut short
    /// and continued with another one's bytes).
    dropping_line: bool,
    /// Bytes dropped and not yet reported.
    dropped: u64,
    /// The last byte written was not a newline: a line is open in the ring.
    line_open: bool,
}

impl<M: RingMemory, D: Doorbell> ConsoleRing<M, D> {
    /// Starts producing at `initial_prod`, the index found at boot (the
    /// builder may have left earlier output in the ring).
    pub fn new(mem: M, bell: D, initial_prod: u32) -> Self {
        let cons = mem.out_cons();
        ConsoleRing {
            mem,
            bell,
            prod: initial_prod,
            cons,
            broken: None,
            dropping: false,
            dropping_line: false,
            dropped: 0,
            line_open: false,
        }
    }

    pub fn broken(&self) -> Option<RingError> {
        self.broken
    }

    /// Bytes dropped since the consumer stopped, not yet reported.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn fail(&mut self, e: RingError) -> RingError {
        self.broken = Some(e);
        e
    }

    /// Bytes dom0 has not consumed yet, or an error if the index is bad.
    fn pending(&mut self) -> Result<usize, RingError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        let cons = self.mem.out_cons();
        let used = self.prod.wrapping_sub(cons) as usize;
        if used > OUT_SIZE {
            return Err(self.fail(RingError::BadConsumerIndex {
                prod: self.prod,
                cons,
            }));
        }
        // Forward from the last index, and not past ours.
        if cons.wrapping_sub(self.cons) > self.prod.wrapping_sub(self.cons) {
            return Err(self.fail(RingError::ConsumerIndexMovedBack {
                was: self.cons,
                now: cons,
            }));
        }
        self.cons = cons;
        Ok(used)
    }

    /// Copies `bytes` (no more than the free space) into the ring and
    /// publishes them.
    fn put(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let index = self.prod.wrapping_add(i as u32) as usize % OUT_SIZE;
            self.mem.write_out(index, b);
        }
        self.prod = self.prod.wrapping_add(bytes.len() as u32);
        self.mem.publish_out_prod(self.prod);
        if let Some(&last) = bytes.last() {
            self.line_open = last != b'\n';
        }
    }

    /// The ring has drained after a stall: says how many bytes were lost.
    fn report_dropped(&mut self) {
        let mut digits = [0u8; 20];
        let mut n = self.dropped;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if self.line_open {
            self.put(b"\n");
        }
        self.put(b"console: ");
        self.put(&digits[at..]);
        self.put(b" bytes dropped while xenconsoled was not reading\n");
        self.dropped = 0;
    }

    /// Writes all of `bytes`, waiting for space whenever the ring is full and
    /// the consumer keeps reading; past [`STALLED_WAITS`] waits without
    /// progress, drops (and counts) the rest of the line and every line
    /// after it until the ring has drained.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), RingError> {
        let mut stalled = 0;
        let mut published = false;
        while !bytes.is_empty() {
            if self.dropping_line {
                let end = bytes.iter().position(|&b| b == b'\n');
                let n = end.map_or(bytes.len(), |i| i + 1);
                self.dropped += n as u64;
                bytes = &bytes[n..];
                self.dropping_line = end.is_none();
                continue;
            }
            let used = self.pending()?;
            if self.dropping {
                // At the start of a line: the ring must have drained.
                if used > 0 {
                    self.dropping_line = true;
                    continue;
                }
                self.dropping = false;
                self.report_dropped();
                published = true;
                continue;
            }
            let free = OUT_SIZE - used;
            if free == 0 {
                if stalled == STALLED_WAITS {
                    self.dropping = true;
                    self.dropping_line = true;
                    continue;
                }
                stalled += 1;
                self.bell.notify();
                self.bell.wait_for_consumer();
                continue;
            }
            stalled = 0;
            let n = free.min(bytes.len());
            self.put(&bytes[..n]);
            published = true;
            bytes = &bytes[n..];
        }
        if published {
            self.bell.notify();
        }
        Ok(())
    }

    /// Waits until dom0 has consumed everything, at most `max_waits` waits,
    /// and no longer than [`STALLED_WAITS`] waits in a row without progress.
    /// Used before shutdown so the last lines reach the log.
    pub fn drain(&mut self, max_waits: usize) -> Result<bool, RingError> {
        let mut stalled = 0;
        let mut last = self.pending()?;
        for _ in 0..max_waits {
            if last == 0 {
                return Ok(true);
            }
            if stalled == STALLED_WAITS {
                return Ok(false);
            }
            self.bell.notify();
            self.bell.wait_for_consumer();
            let now = self.pending()?;
            stalled = if now < last { 0 } else { stalled + 1 };
            last = now;
        }
        Ok(last == 0)
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
        per_wait: Cell<usize>,
        notifies: Cell<usize>,
        waits: Cell<usize>,
    }

    impl Doorbell for &FakeConsumer<'_> {
        fn notify(&self) {
            self.notifies.set(self.notifies.get() + 1);
        }
        fn wait_for_consumer(&self) {
            self.waits.set(self.waits.get() + 1);
            self.take(self.per_wait.get());
        }
    }

    impl FakeConsumer<'_> {
        /// xenconsoled reading up to `n` bytes.
        fn take(&self, n: usize) {
            for _ in 0..n {
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
            per_wait: Cell::new(per_wait),
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

    #[test]
    fn a_slow_consumer_loses_nothing() {
        let p = page(0);
        let c = consumer(&p, 1);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        let data: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
        ring.write(&data).unwrap();
        assert!(ring.drain(10_000).unwrap());
        assert_eq!(*c.received.borrow(), data);
        assert_eq!(ring.dropped(), 0);
    }

    /// xenconsoled stops reading: the write that finds the ring full waits
    /// STALLED_WAITS times, then drops the rest of its line; later lines are
    /// dropped at once, without waiting. Once it has read everything, the
    /// next line is preceded by one line saying how many bytes were dropped,
    /// and writes go through again.
    #[test]
    fn a_stopped_consumer_costs_bounded_waits_then_lines_are_dropped_and_counted() {
        let p = page(0);
        let c = consumer(&p, 0);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        let line = [b'a'; 99];
        let mut line = line.to_vec();
        line.push(b'\n');
        // 20 lines of 100 bytes fill 2000 of the 2048 bytes.
        for _ in 0..20 {
            ring.write(&line).unwrap();
        }
        assert_eq!(c.waits.get(), 0);
        // The 21st: 48 bytes fit, then the ring is full.
        ring.write(&line).unwrap();
        assert_eq!(c.waits.get(), STALLED_WAITS as usize, "bounded wait");
        assert_eq!(ring.dropped(), 52);
        // While stopped: no more waiting, whole lines dropped.
        for _ in 0..10 {
            ring.write(b"[   1.0] INFO  x: ").unwrap();
            ring.write(b"more\n").unwrap();
        }
        assert_eq!(
            c.waits.get(),
            STALLED_WAITS as usize,
            "no wait while dropping"
        );
        assert_eq!(ring.dropped(), 52 + 10 * 23);
        assert_eq!(
            p.prod.get(),
            OUT_SIZE as u32,
            "nothing written while stopped"
        );
        // It reads again: everything so far, then what comes next.
        c.take(usize::MAX);
        ring.write(b"after\n").unwrap();
        c.take(usize::MAX);
        let received = c.received.borrow();
        let text = core::str::from_utf8(&received).unwrap();
        let expected_tail =
            "\nconsole: 282 bytes dropped while xenconsoled was not reading\nafter\n";
        assert!(text.ends_with(expected_tail), "{text:?}");
        assert_eq!(text.len(), OUT_SIZE + expected_tail.len());
        assert_eq!(ring.dropped(), 0, "reported once");
        drop(received);
        ring.write(b"again\n").unwrap();
        c.take(usize::MAX);
        assert!(c.received.borrow().ends_with(b"after\nagain\n"));
    }

    /// The consumer resumes but the ring has not drained when the next line
    /// comes: that line is dropped too, without waiting.
    #[test]
    fn lines_are_dropped_until_the_ring_has_drained() {
        let p = page(0);
        let c = consumer(&p, 0);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        ring.write(&[b'x'; OUT_SIZE + 10]).unwrap();
        assert_eq!(ring.dropped(), 10);
        c.take(100);
        ring.write(b"dropped\n").unwrap();
        assert_eq!(ring.dropped(), 18);
        assert_eq!(c.waits.get(), STALLED_WAITS as usize);
        c.take(usize::MAX);
        ring.write(b"kept\n").unwrap();
        c.take(usize::MAX);
        assert!(c
            .received
            .borrow()
            .ends_with(b"\nconsole: 18 bytes dropped while xenconsoled was not reading\nkept\n"));
    }

    #[test]
    fn drain_gives_up_on_a_stopped_consumer() {
        let p = page(0);
        let c = consumer(&p, 0);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        ring.write(b"abc").unwrap();
        assert!(!ring.drain(1_000).unwrap());
        assert_eq!(c.waits.get(), STALLED_WAITS as usize);
    }

    #[test]
    fn consumer_index_moving_back_breaks_the_ring() {
        let p = page(0);
        let c = consumer(&p, 0);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        ring.write(b"0123456789").unwrap();
        c.take(8);
        ring.write(b"x").unwrap();
        // Still within a ring of our producer, but behind what it had read.
        p.cons.set(3);
        assert_eq!(
            ring.write(b"y"),
            Err(RingError::ConsumerIndexMovedBack { was: 8, now: 3 })
        );
        assert!(ring.write(b"z").is_err(), "stays broken");
    }

    /// The producer index in the page is ours to write, never to read: dom0
    /// rewriting it changes nothing we write.
    #[test]
    fn a_rewritten_producer_index_is_ignored() {
        let p = page(0);
        let c = consumer(&p, usize::MAX);
        let mut ring = ConsoleRing::new(&p, &c, 0);
        ring.write(b"abc").unwrap();
        p.prod.set(1000);
        ring.write(b"def").unwrap();
        assert_eq!(p.prod.get(), 6);
        assert_eq!(&p.out.borrow()[..6], b"abcdef");
    }
}
