//! The record the event upcall leaves for the deferred-work drain: one bit
//! per event-channel port, set by the upcall and taken by the drain.
//!
//! Lock-free with one producer (the upcall) and one consumer (the kernel at
//! the system-call return point and in the idle loop); constant memory (512
//! bytes for the 4096 ports of the 2-level ABI). A port raised many times
//! before the drain runs is seen once, which loses nothing: Xen's own pending
//! bit already merges repeated notifications on a port into one.

use crate::public::EVTCHN_2L_NR_PORTS;
use core::sync::atomic::{AtomicU64, Ordering};

const WORDS: usize = EVTCHN_2L_NR_PORTS as usize / 64;

pub struct PendingPorts {
    words: [AtomicU64; WORDS],
}

impl Default for PendingPorts {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingPorts {
    pub const fn new() -> Self {
        PendingPorts {
            words: [const { AtomicU64::new(0) }; WORDS],
        }
    }

    /// Records every port whose bit is set in `bits` of 64-port word `word`.
    /// Words past the ABI's last are ignored (they cannot hold ports).
    pub fn record_word(&self, word: usize, bits: u64) {
        if let Some(w) = self.words.get(word) {
            w.fetch_or(bits, Ordering::Release);
        }
    }

    /// Records one port; ports past the ABI's last are ignored.
    pub fn record(&self, port: u32) {
        self.record_word(port as usize / 64, 1 << (port % 64));
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| w.load(Ordering::Acquire) == 0)
    }

    /// Takes every recorded port, lowest first, and hands each to `f`.
    /// Ports recorded while this runs are either taken now or left for the
    /// next call, never lost. Returns how many were taken.
    pub fn take(&self, mut f: impl FnMut(u32)) -> usize {
        let mut taken = 0;
        for (i, w) in self.words.iter().enumerate() {
            let mut bits = w.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                f(i as u32 * 64 + bit);
                taken += 1;
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn records_and_takes_in_port_order_once() {
        let p = PendingPorts::new();
        assert!(p.is_empty());
        p.record(70);
        p.record(3);
        p.record(70);
        p.record_word(0, 0b1001);
        let mut got = Vec::new();
        assert_eq!(p.take(|port| got.push(port)), 3);
        assert_eq!(got, [0, 3, 70]);
        assert!(p.is_empty());
        assert_eq!(p.take(|_| panic!("nothing left")), 0);
    }

    #[test]
    fn out_of_range_ports_are_ignored() {
        let p = PendingPorts::new();
        p.record(EVTCHN_2L_NR_PORTS);
        p.record_word(WORDS, u64::MAX);
        assert!(p.is_empty());
        p.record(EVTCHN_2L_NR_PORTS - 1);
        let mut got = Vec::new();
        p.take(|port| got.push(port));
        assert_eq!(got, [EVTCHN_2L_NR_PORTS - 1]);
    }

    #[test]
    fn concurrent_producer_loses_nothing() {
        let p = std::sync::Arc::new(PendingPorts::new());
        let producer = {
            let p = p.clone();
            std::thread::spawn(move || {
                for port in 0..EVTCHN_2L_NR_PORTS {
                    p.record(port);
                }
            })
        };
        let mut seen = std::vec![false; EVTCHN_2L_NR_PORTS as usize];
        while !producer.is_finished() {
            p.take(|port| seen[port as usize] = true);
        }
        producer.join().unwrap();
        p.take(|port| seen[port as usize] = true);
        assert!(seen.iter().all(|&s| s), "every recorded port was taken");
    }
}
