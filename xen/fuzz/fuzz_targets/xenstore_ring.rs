//! xenstored (dom0) writes the store ring's response half and all four
//! indices (ours too: it may scribble them): whatever it writes, the client
//! never panics, never reads or writes outside the page, delivers only
//! messages within the payload limit, publishes its own producer index
//! exactly as far as it wrote (never re-reading it), and stays broken once it
//! has seen a violation.
#![no_main]

use xen::xenstore::{layout, StoreMemory, StoreRing, PAYLOAD_MAX};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

struct Page(RefCell<Vec<u8>>);

impl StoreMemory for &Page {
    fn load_u32_acquire(&self, offset: usize) -> u32 {
        let b = self.0.borrow();
        u32::from_le_bytes(b[offset..offset + 4].try_into().unwrap())
    }
    fn store_u32_release(&self, offset: usize, value: u32) {
        self.0.borrow_mut()[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn load_u8(&self, offset: usize) -> u8 {
        self.0.borrow()[offset]
    }
    fn store_u8(&self, offset: usize, value: u8) {
        assert!(offset < layout::RSP, "request bytes go to the request half only");
        self.0.borrow_mut()[offset] = value;
    }
}

fuzz_target!(|data: &[u8]| {
    // The input is a sequence of page snapshots the server "writes" between
    // two reads of the client: 1024 response bytes + the 4 index words each.
    let page = Page(RefCell::new(vec![0; 4096]));
    let mut ring = StoreRing::new(&page);
    let mut req_prod = 0u32;
    for chunk in data.chunks(1024 + 16) {
        {
            let mut p = page.0.borrow_mut();
            let n = chunk.len().min(1024);
            p[layout::RSP..layout::RSP + n].copy_from_slice(&chunk[..n]);
            if chunk.len() == 1024 + 16 {
                p[layout::REQ_CONS..layout::REQ_CONS + 16].copy_from_slice(&chunk[1024..]);
            }
        }
        let mut delivered = Vec::new();
        match ring.read(|m| delivered.push(m)) {
            Ok(_) => {
                for m in delivered {
                    assert!(m.body.len() <= PAYLOAD_MAX);
                    let _ = m.reply();
                    let _ = m.watch_event();
                }
            }
            Err(_) => {
                assert!(ring.broken().is_some());
                assert!(ring.read(|_| panic!("a broken ring delivers nothing")).is_err());
                return;
            }
        }
        if let Ok(n) = ring.write(b"request bytes") {
            if n > 0 {
                req_prod = req_prod.wrapping_add(n as u32);
                assert_eq!((&page).load_u32_acquire(layout::REQ_PROD), req_prod);
            }
        }
    }
});
