//! One direction of a vchan: a byte ring with a producer and a consumer index.
//!
//! The indices are free-running `u32`s (they wrap at 2^32, not at the ring size); the
//! byte at index `i` lives at `i & (size - 1)`. Each end keeps a private copy of the index
//! it owns and never trusts the shared copy: it only writes it, and reads it back solely
//! to notice a peer that scribbled on it. The peer's index is read once per decision
//! and checked against everything the end knows:
//!
//! * consumer: the peer's `prod` must lie in `[last prod seen, cons + size]`;
//! * producer: the peer's `cons` must lie in `[last cons seen, prod]`.
//!
//! A violation is a [`BrokenReason`]; the caller makes it sticky. Bytes are copied out of
//! (into) the ring only within `base .. base + size` of the ring's memory, which was
//! checked to be large enough when the ring was built.

use core::sync::atomic::{fence, Ordering};

use crate::error::BrokenReason;
use crate::layout::Side;
use crate::mem::SharedMem;

/// Where one ring is: index offsets in the interface page and bytes in `data`.
pub(crate) struct RingPlace<M> {
    pub(crate) side: Side,
    pub(crate) cons_off: usize,
    pub(crate) prod_off: usize,
    pub(crate) data: M,
    pub(crate) base: usize,
    pub(crate) size: u32,
}

impl<M: SharedMem> RingPlace<M> {
    fn mask(&self, idx: u32) -> usize {
        (idx & (self.size - 1)) as usize
    }

    /// Copies `dst.len() <= size` bytes starting at ring index `idx`, wrapping once.
    fn copy_out(&self, idx: u32, dst: &mut [u8]) {
        let at = self.mask(idx);
        let first = dst.len().min(self.size as usize - at);
        let (a, b) = dst.split_at_mut(first);
        self.data.copy_out(self.base + at, a);
        self.data.copy_out(self.base, b);
    }

    /// Copies `src.len() <= size` bytes to ring index `idx`, wrapping once.
    fn copy_in(&self, idx: u32, src: &[u8]) {
        let at = self.mask(idx);
        let first = src.len().min(self.size as usize - at);
        let (a, b) = src.split_at(first);
        self.data.copy_in(self.base + at, a);
        self.data.copy_in(self.base, b);
    }
}

/// The reading end of a ring.
pub(crate) struct Consumer<M> {
    pub(crate) place: RingPlace<M>,
    /// Our consumer index (the authoritative copy).
    cons: u32,
    /// The peer's producer index as last validated.
    seen_prod: u32,
}

impl<M: SharedMem> Consumer<M> {
    /// A consumer whose index starts at `cons` (what the shared page holds when we attach).
    pub(crate) fn new(place: RingPlace<M>, cons: u32) -> Self {
        Consumer {
            place,
            cons,
            seen_prod: cons,
        }
    }

    /// Bytes ready to read, from one read of the peer's producer index.
    pub(crate) fn ready<C: SharedMem>(&mut self, ctrl: &C) -> Result<u32, BrokenReason> {
        let p = &self.place;
        if ctrl.load_u32_acquire(p.cons_off) != self.cons {
            return Err(BrokenReason::OwnIndexChanged { ring: p.side });
        }
        let prod = ctrl.load_u32_acquire(p.prod_off);
        let moved = prod.wrapping_sub(self.seen_prod);
        let room = self.cons.wrapping_add(p.size).wrapping_sub(self.seen_prod);
        if moved > room {
            return Err(BrokenReason::ProducerOutOfRange { ring: p.side });
        }
        self.seen_prod = prod;
        Ok(prod.wrapping_sub(self.cons))
    }

    /// Copies `dst.len()` bytes out and publishes the new consumer index. The caller has
    /// seen at least that many bytes [`ready`](Self::ready).
    pub(crate) fn take<C: SharedMem>(&mut self, ctrl: &C, dst: &mut [u8]) {
        debug_assert!(dst.len() as u32 <= self.seen_prod.wrapping_sub(self.cons));
        // The data reads must follow the read of `prod` (acquire above); then the
        // consumer index is published only after the copy, so the peer cannot overwrite
        // bytes we are still reading (libxenvchan: `xen_rmb` before, `xen_mb` after).
        self.place.copy_out(self.cons, dst);
        fence(Ordering::SeqCst);
        self.cons = self.cons.wrapping_add(dst.len() as u32);
        ctrl.store_u32_release(self.place.cons_off, self.cons);
    }
}

/// The writing end of a ring.
pub(crate) struct Producer<M> {
    pub(crate) place: RingPlace<M>,
    /// Our producer index (the authoritative copy).
    prod: u32,
    /// The peer's consumer index as last validated.
    seen_cons: u32,
}

impl<M: SharedMem> Producer<M> {
    /// A producer whose index starts at `prod`. Until the first check the peer's consumer
    /// index may be anywhere in the last ring's worth before it.
    pub(crate) fn new(place: RingPlace<M>, prod: u32) -> Self {
        let seen_cons = prod.wrapping_sub(place.size);
        Producer {
            place,
            prod,
            seen_cons,
        }
    }

    /// Free bytes in the ring, from one read of the peer's consumer index.
    pub(crate) fn space<C: SharedMem>(&mut self, ctrl: &C) -> Result<u32, BrokenReason> {
        let p = &self.place;
        if ctrl.load_u32_acquire(p.prod_off) != self.prod {
            return Err(BrokenReason::OwnIndexChanged { ring: p.side });
        }
        let cons = ctrl.load_u32_acquire(p.cons_off);
        if cons.wrapping_sub(self.seen_cons) > self.prod.wrapping_sub(self.seen_cons) {
            return Err(BrokenReason::ConsumerOutOfRange { ring: p.side });
        }
        self.seen_cons = cons;
        Ok(p.size - self.prod.wrapping_sub(cons))
    }

    /// Copies `src` in and publishes the new producer index. The caller has seen at least
    /// `src.len()` bytes of [`space`](Self::space).
    pub(crate) fn put<C: SharedMem>(&mut self, ctrl: &C, src: &[u8]) {
        debug_assert!(src.len() as u32 <= self.place.size - self.prod.wrapping_sub(self.seen_cons));
        // Read the indices, then write the data (`xen_mb`), then publish the index
        // (release: the data is visible before the index that covers it).
        fence(Ordering::SeqCst);
        self.place.copy_in(self.prod, src);
        self.prod = self.prod.wrapping_add(src.len() as u32);
        ctrl.store_u32_release(self.place.prod_off, self.prod);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::HeapMem;

    const SIZE: u32 = 16;

    fn place(mem: &HeapMem) -> RingPlace<&HeapMem> {
        RingPlace {
            side: Side::Left,
            cons_off: 0,
            prod_off: 4,
            data: mem,
            base: 32,
            size: SIZE,
        }
    }

    #[test]
    fn bytes_wrap_around_the_end() {
        let mem = HeapMem::new(32 + SIZE as usize);
        let start = u32::MAX - 5; // indices wrap at 2^32 too
        mem.store_u32_release(0, start);
        mem.store_u32_release(4, start);
        let mut p = Producer::new(place(&mem), start);
        let mut c = Consumer::new(place(&mem), start);
        let mut seen = alloc::vec::Vec::new();
        for round in 0..10u8 {
            let chunk: alloc::vec::Vec<u8> = (0..11).map(|i| round * 11 + i).collect();
            assert_eq!(p.space(&mem), Ok(SIZE));
            p.put(&mem, &chunk);
            assert_eq!(p.space(&mem), Ok(SIZE - 11));
            assert_eq!(c.ready(&mem), Ok(11));
            let mut out = [0u8; 11];
            c.take(&mem, &mut out);
            seen.extend_from_slice(&out);
        }
        let want: alloc::vec::Vec<u8> = (0..110).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn consumer_rejects_producer_beyond_ring() {
        let mem = HeapMem::new(64);
        let mut c = Consumer::new(place(&mem), 0);
        mem.store_u32_release(4, SIZE);
        assert_eq!(c.ready(&mem), Ok(SIZE));
        mem.store_u32_release(4, SIZE + 1);
        assert_eq!(
            c.ready(&mem),
            Err(BrokenReason::ProducerOutOfRange { ring: Side::Left })
        );
    }

    #[test]
    fn consumer_rejects_producer_going_back() {
        let mem = HeapMem::new(64);
        let mut c = Consumer::new(place(&mem), 0);
        mem.store_u32_release(4, 5);
        assert_eq!(c.ready(&mem), Ok(5));
        mem.store_u32_release(4, 4);
        assert_eq!(
            c.ready(&mem),
            Err(BrokenReason::ProducerOutOfRange { ring: Side::Left })
        );
    }

    #[test]
    fn producer_rejects_consumer_ahead_or_back() {
        let mem = HeapMem::new(64);
        let mut p = Producer::new(place(&mem), 0);
        assert_eq!(p.space(&mem), Ok(SIZE));
        p.put(&mem, &[1, 2, 3, 4]);
        mem.store_u32_release(0, 5); // read a byte never written
        assert_eq!(
            p.space(&mem),
            Err(BrokenReason::ConsumerOutOfRange { ring: Side::Left })
        );
        let mut p = Producer::new(place(&mem), 4);
        mem.store_u32_release(4, 4);
        mem.store_u32_release(0, 3);
        assert_eq!(p.space(&mem), Ok(SIZE - 1));
        mem.store_u32_release(0, 2); // moved back
        assert_eq!(
            p.space(&mem),
            Err(BrokenReason::ConsumerOutOfRange { ring: Side::Left })
        );
    }

    #[test]
    fn own_index_tampering_is_noticed() {
        let mem = HeapMem::new(64);
        let mut c = Consumer::new(place(&mem), 0);
        mem.store_u32_release(0, 1);
        assert_eq!(
            c.ready(&mem),
            Err(BrokenReason::OwnIndexChanged { ring: Side::Left })
        );
        let mut p = Producer::new(place(&mem), 0);
        mem.store_u32_release(4, 9);
        assert_eq!(
            p.space(&mem),
            Err(BrokenReason::OwnIndexChanged { ring: Side::Left })
        );
    }
}
