//! xenconsoled (dom0) writes the console ring's consumer index: whatever
//! values it writes, the driver never panics, never writes outside the ring,
//! never waits without bound (a consumer that stops costs bounded waits, then
//! output is dropped and counted), and stops for good (broken) on an
//! impossible index. (That no byte is lost with a well-behaved consumer is a
//! unit test of `console`.)
#![no_main]

use xen::public::console::OUT_SIZE;
use xen::console::{ConsoleRing, Doorbell, RingError, RingMemory};
use libfuzzer_sys::fuzz_target;
use std::cell::{Cell, RefCell};

struct Page {
    out: RefCell<Vec<u8>>,
    /// Consumer indices dom0 "writes", one per read; then it catches up.
    script: RefCell<std::vec::IntoIter<u32>>,
    prod: Cell<u32>,
}

impl RingMemory for &Page {
    fn out_cons(&self) -> u32 {
        // Once the script runs out, dom0 behaves and consumes everything,
        // so a full ring always drains in the end.
        self.script.borrow_mut().next().unwrap_or(self.prod.get())
    }
    fn publish_out_prod(&self, prod: u32) {
        self.prod.set(prod);
    }
    fn write_out(&self, index: usize, byte: u8) {
        assert!(index < OUT_SIZE, "write outside the ring");
        self.out.borrow_mut()[index] = byte;
    }
}

struct Bell;
impl Doorbell for Bell {
    fn notify(&self) {}
    fn wait_for_consumer(&self) {}
}

fuzz_target!(|data: &[u8]| {
    let (start, rest) = match data.split_first_chunk::<4>() {
        Some((s, r)) => (u32::from_le_bytes(*s), r),
        None => return,
    };
    let script: Vec<u32> = rest.chunks(4).map(|c| {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        u32::from_le_bytes(b)
    }).collect();
    let page = Page {
        out: RefCell::new(vec![0; OUT_SIZE]),
        script: RefCell::new(script.into_iter()),
        prod: Cell::new(start),
    };
    let mut ring = ConsoleRing::new(&page, Bell, start);
    for round in 0..4u8 {
        let msg = vec![round; 700];
        match ring.write(&msg) {
            Ok(()) => {}
            Err(RingError::BadConsumerIndex { prod, cons }) => {
                assert!(prod.wrapping_sub(cons) as usize > OUT_SIZE);
                assert!(ring.write(b"x").is_err(), "a broken ring stays broken");
                return;
            }
            Err(RingError::ConsumerIndexMovedBack { was, now }) => {
                assert_ne!(was, now);
                assert!(ring.write(b"x").is_err(), "a broken ring stays broken");
                return;
            }
        }
    }
    let _ = ring.drain(3);
});
