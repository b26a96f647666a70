//! Linux netback (dom0) writes the netfront ring pages: response entries,
//! `rsp_prod`, `req_event`, and whatever else it likes. The input scripts a
//! hostile backend that writes arbitrary bytes (and, to get deep, well-formed
//! responses and index moves) between the driver's pushes, publishes and
//! polls. Whatever it writes, the driver never panics, never touches memory
//! outside the page, never reports an id it did not hand out and publish (or
//! reports one twice), never delivers a packet beyond its page, keeps its
//! in-flight count exact, and once broken stays broken without touching the
//! page again.
//!
//! The transmit side also pushes multi-slot packets with a GSO extra-info
//! entry, so the backend gets to answer (or not) with `NETIF_RSP_NULL`
//! where netback would, and anywhere else.
#![no_main]

use xen::netfront::{
    layout, rxflags, status, txflags, PushError, RxRing, TxRing, TxSlot, MAX_PACKET_SLOTS,
    PAGE_SIZE, RX_RING_SIZE, TX_RING_SIZE,
};
use libfuzzer_sys::fuzz_target;
use rpc::{HeapMem, SharedMem};
use std::cell::Cell;

/// A page that counts the driver's accesses (the backend writes to `mem` directly).
struct Counted<'a> {
    mem: &'a HeapMem,
    accesses: &'a Cell<u64>,
}

impl Counted<'_> {
    fn touch(&self) {
        self.accesses.set(self.accesses.get() + 1);
    }
}

impl SharedMem for Counted<'_> {
    fn size(&self) -> usize {
        self.mem.size()
    }
    fn load_u8(&self, off: usize) -> u8 {
        self.touch();
        self.mem.load_u8(off)
    }
    fn store_u8(&self, off: usize, v: u8) {
        self.touch();
        self.mem.store_u8(off, v)
    }
    fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 {
        self.touch();
        self.mem.fetch_or_u8(off, bits)
    }
    fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
        self.touch();
        self.mem.fetch_and_u8(off, bits)
    }
    fn load_u32_acquire(&self, off: usize) -> u32 {
        self.touch();
        self.mem.load_u32_acquire(off)
    }
    fn store_u32_release(&self, off: usize, v: u32) {
        self.touch();
        self.mem.store_u32_release(off, v)
    }
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        self.touch();
        self.mem.copy_out(off, dst)
    }
    fn copy_in(&self, off: usize, src: &[u8]) {
        self.touch();
        self.mem.copy_in(off, src)
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// The driver's promises about one ring, as the harness sees them.
#[derive(Default)]
struct Model {
    /// Ids handed out and not yet reported, published or not.
    pushed: Vec<u16>,
    /// Of those, the ones published (the only ones a response may name).
    published: Vec<u16>,
    /// Of those, the ones whose request carried a GSO extra-info entry
    /// (tx): each holds a ring entry besides its own until its NULL comes.
    with_extra: Vec<u16>,
    /// The first error the ring reported, and the access count then.
    broken: Option<(xen::netfront::BrokenReason, u64)>,
}

impl Model {
    fn handed_out(&mut self, id: u16, size: usize) {
        assert!(usize::from(id) < size, "id {id} beyond the ring");
        assert!(!self.pushed.contains(&id), "id {id} handed out twice");
        self.pushed.push(id);
    }
    fn published(&mut self) {
        self.published.clone_from(&self.pushed);
    }
    fn reported(&mut self, id: u16) {
        assert!(
            self.published.contains(&id),
            "reported id {id} never published"
        );
        self.published.retain(|&i| i != id);
        self.pushed.retain(|&i| i != id);
        self.with_extra.retain(|&i| i != id);
    }
    /// Whether `Full` may be right for `ids` more ids in `entries` more
    /// entries. Entries in use are at most one per id out, one per extra
    /// whose request is unanswered, and one for a NULL that may be due.
    fn may_be_full(&self, size: usize, ids: usize, entries: usize) -> bool {
        let out = self.pushed.len();
        out + ids > size || out + self.with_extra.len() + 1 + entries > size
    }
    /// Checks a call's outcome against the broken state.
    fn outcome(&mut self, err: Option<xen::netfront::BrokenReason>, accesses: u64) {
        match (self.broken, err) {
            (None, None) => {}
            (None, Some(why)) => {
                let _ = why.to_string();
                self.broken = Some((why, accesses));
            }
            (Some((first, _)), Some(why)) => assert_eq!(first, why, "broken reason changed"),
            (Some(_), None) => panic!("a broken ring succeeded"),
        }
    }
    fn still_untouched(&self, accesses: u64) {
        if let Some((_, then)) = self.broken {
            assert_eq!(then, accesses, "a broken ring touched shared memory");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let pages = [HeapMem::new(PAGE_SIZE), HeapMem::new(PAGE_SIZE)];
    let counts = [Cell::new(0u64), Cell::new(0u64)];
    let mut tx = TxRing::new(Counted {
        mem: &pages[0],
        accesses: &counts[0],
    });
    let mut rx = RxRing::new(Counted {
        mem: &pages[1],
        accesses: &counts[1],
    });
    let strides = [layout::TX_ENTRY, layout::RX_ENTRY];
    let mut models = [Model::default(), Model::default()];

    while !input.0.is_empty() {
        let op = input.u8();
        let r = usize::from(op >> 7); // which ring the op is about
        let page = &pages[r];
        match op & 0x7f {
            // The driver's side.
            0..=7 if r == 0 => {
                let (gref, offset, len) = (input.u32(), input.u16() % 4200, input.u16() % 4200);
                let flags = u16::from(input.u8() & 0x0f);
                match tx.push(gref, offset, len, flags) {
                    Ok(id) => models[0].handed_out(id, TX_RING_SIZE),
                    Err(PushError::Full) => assert!(models[0].may_be_full(TX_RING_SIZE, 1, 1)),
                    Err(PushError::BeyondPage { .. }) => {
                        assert!(usize::from(offset) + usize::from(len) > PAGE_SIZE)
                    }
                    Err(PushError::EmptySlot { index: 0 }) => assert_eq!(len, 0),
                    Err(PushError::Flags(f)) => assert!(f & !txflags::ALLOWED != 0),
                    Err(PushError::Broken(why)) => models[0].outcome(Some(why), counts[0].get()),
                    Err(e) => panic!("tx push refused: {e}"),
                }
            }
            8..=15 if r == 0 => {
                // Mostly a packet of 1..=3 slots (so that many fit and few
                // pass a page), else of 0..=19 (so none and too many too).
                let n = match input.u8() {
                    b @ 0..=0xbf => usize::from(b % 3) + 1,
                    b => usize::from(b % 20),
                };
                let slots: Vec<TxSlot> = (0..n)
                    .map(|_| TxSlot {
                        gref: input.u32(),
                        offset: input.u16() % 4200,
                        len: input.u16() % 4200,
                    })
                    .collect();
                let flags = u16::from(input.u8() & 0x0f);
                let gso = (input.u8() & 1 == 1).then(|| input.u16() % 9000);
                let mut ids = vec![0u16; n];
                let total: usize = slots.iter().map(|s| usize::from(s.len)).sum();
                match tx.push_packet(&slots, flags, gso, &mut ids) {
                    Ok(()) => {
                        for &id in &ids {
                            models[0].handed_out(id, TX_RING_SIZE);
                        }
                        if gso.is_some() {
                            models[0].with_extra.push(ids[0]);
                        }
                    }
                    Err(PushError::Full) => {
                        let entries = n + usize::from(gso.is_some());
                        assert!(models[0].may_be_full(TX_RING_SIZE, n, entries))
                    }
                    Err(PushError::SlotCount(k)) => {
                        assert!(k == n && (n == 0 || n > MAX_PACKET_SLOTS))
                    }
                    Err(PushError::EmptySlot { index }) => assert_eq!(slots[index].len, 0),
                    Err(PushError::BeyondPage { offset, len }) => {
                        assert!(usize::from(offset) + usize::from(len) > PAGE_SIZE)
                    }
                    Err(PushError::TooLong { total: t }) => assert!(t == total && t > 0xffff),
                    Err(PushError::Flags(f)) => assert!(f & !txflags::ALLOWED != 0),
                    Err(PushError::GsoSizeZero) => assert_eq!(gso, Some(0)),
                    Err(PushError::Broken(why)) => models[0].outcome(Some(why), counts[0].get()),
                    Err(e @ PushError::IdsLength { .. }) => panic!("{e}"),
                }
            }
            0..=15 => match rx.post(input.u32()) {
                Ok(id) => models[1].handed_out(id, RX_RING_SIZE),
                Err(PushError::Full) => assert_eq!(models[1].pushed.len(), RX_RING_SIZE),
                Err(PushError::Broken(why)) => models[1].outcome(Some(why), counts[1].get()),
                Err(e) => panic!("rx post refused: {e}"),
            },
            16..=23 => {
                let published = if r == 0 { tx.publish() } else { rx.publish() };
                if models[r].broken.is_some() {
                    assert!(!published, "a broken ring asked to notify");
                } else {
                    models[r].published();
                }
            }
            24..=39 if r == 0 => {
                let mut seen = Vec::new();
                let res = tx.poll(&mut |id, _status| seen.push(id));
                if let Ok(n) = res {
                    assert_eq!(n, seen.len());
                }
                for id in seen {
                    models[0].reported(id);
                }
                models[0].outcome(res.err(), counts[0].get());
            }
            24..=39 => {
                let mut seen = Vec::new();
                let res = rx.poll(&mut |id, result| {
                    if let Ok(p) = result {
                        assert!(usize::from(p.offset) + usize::from(p.len) <= PAGE_SIZE);
                    }
                    seen.push(id)
                });
                if let Ok(n) = res {
                    assert_eq!(n, seen.len());
                }
                for id in seen {
                    models[1].reported(id);
                }
                models[1].outcome(res.err(), counts[1].get());
            }
            // The backend's side.
            40..=55 => {
                // A well-formed looking response at the next slot, naming an
                // id of the driver's (or any), then rsp_prod moves on. On tx
                // it may also be a lone NULL, or come with a NULL behind it:
                // always, or where netback puts one.
                let prod = page.load_u32_acquire(layout::RSP_PROD);
                let null_mode = if r == 0 { input.u8() % 4 } else { 0 };
                let pick = input.u8();
                let out = &models[r].published;
                let id = if pick < 0xf0 && !out.is_empty() {
                    out[usize::from(pick) % out.len()]
                } else {
                    input.u16()
                };
                let at = |idx: u32| layout::ENTRIES + (idx as usize % 256) * strides[r];
                let mut next = prod;
                // Mode 3 is a lone NULL.
                if null_mode != 3 {
                    let mut rsp = [0u8; 8];
                    rsp[0..2].copy_from_slice(&id.to_le_bytes());
                    if r == 0 {
                        let status = i16::from(input.u8() as i8 % 3) - 1;
                        rsp[2..4].copy_from_slice(&status.to_le_bytes());
                    } else {
                        let offset = input.u16() % 4200;
                        let flags = u16::from(input.u8()) & (rxflags::ALLOWED | 0x1c);
                        let status = input.u16() as i16 % 4200;
                        rsp[2..4].copy_from_slice(&offset.to_le_bytes());
                        rsp[4..6].copy_from_slice(&flags.to_le_bytes());
                        rsp[6..8].copy_from_slice(&status.to_le_bytes());
                    }
                    let n = if r == 0 { 4 } else { 8 };
                    page.copy_in(at(next), &rsp[..n]);
                    next = next.wrapping_add(1);
                }
                let with_null = match null_mode {
                    1 | 3 => true,
                    2 => models[0].with_extra.contains(&id),
                    _ => false,
                };
                if with_null {
                    // Netback writes only the status of a NULL; the id field
                    // keeps what the slot held.
                    page.copy_in(at(next) + 2, &status::NULL.to_le_bytes());
                    next = next.wrapping_add(1);
                }
                page.store_u32_release(layout::RSP_PROD, next);
            }
            56..=63 => {
                // Moves rsp_prod by a small step either way, or anywhere.
                let prod = page.load_u32_acquire(layout::RSP_PROD);
                let step = input.u8() as i8;
                let v = if step == i8::MIN {
                    input.u32()
                } else {
                    prod.wrapping_add(step as u32)
                };
                page.store_u32_release(layout::RSP_PROD, v);
            }
            64..=71 => {
                // req_event near req_prod, or anywhere.
                let prod = page.load_u32_acquire(layout::REQ_PROD);
                let step = input.u8() as i8;
                let v = if step == i8::MIN {
                    input.u32()
                } else {
                    prod.wrapping_add(step as u32)
                };
                page.store_u32_release(layout::REQ_EVENT, v);
            }
            _ => {
                // Raw bytes anywhere in the page.
                let at = usize::from(input.u16()) % PAGE_SIZE;
                let n = usize::from(input.u8() % 32)
                    .min(PAGE_SIZE - at)
                    .min(input.0.len());
                let (bytes, rest) = input.0.split_at(n);
                page.copy_in(at, bytes);
                input.0 = rest;
            }
        }
        for (i, m) in models.iter().enumerate() {
            m.still_untouched(counts[i].get());
        }
        assert_eq!(tx.in_flight(), models[0].pushed.len());
        assert_eq!(rx.in_flight(), models[1].pushed.len());
        assert_eq!(tx.broken(), models[0].broken.map(|b| b.0));
        assert_eq!(rx.broken(), models[1].broken.map(|b| b.0));
    }
});
