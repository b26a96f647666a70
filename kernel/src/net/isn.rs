//! TCP initial sequence numbers and ephemeral ports that a network peer
//! cannot predict (issue 13, item 7).
//!
//! smoltcp's own generator gives out half of its state with every ISN, so
//! two SYN-ACKs let a peer predict every later one (see `seqattack`), and
//! with it spoof or hijack other peers' connections. Instead, as RFC 6528
//! says: ISN = M + F(local address, local port, remote address, remote
//! port, secret), where M is a clock ticking every 4 µs and F a keyed hash.
//! F is SipHash-2-4 under a 128-bit boot secret: a peer that sees its own
//! connections' ISNs learns nothing about another 4-tuple's, and the clock
//! keeps a reused 4-tuple's numbers moving forward.
//!
//! Ephemeral ports (RFC 6056, algorithm 1, "simple port randomization"):
//! each connect draws a port of the dynamic range 49152..=65535 from a
//! keyed generator (SipHash-2-4 of a counter under the same secret, kept
//! apart from the ISNs' inputs), again while the drawn port is in use.

use core::hash::Hasher;
use siphasher::sip::SipHasher24;

/// The 128-bit boot secret both are keyed with.
pub type Secret = [u64; 2];

/// Inputs of each use start with their own tag, so that no ISN input is
/// ever a port input.
const TAG_ISN: u8 = 1;
const TAG_PORT: u8 = 2;
const TAG_SEED: u8 = 3;

/// RFC 6528's ISN for the connection from `local` to `remote` (address,
/// port) at `now_us` (µs of the guest's clock).
pub fn initial_sequence_number(
    secret: Secret,
    local: ([u8; 4], u16),
    remote: ([u8; 4], u16),
    now_us: u64,
) -> u32 {
    let mut h = SipHasher24::new_with_keys(secret[0], secret[1]);
    h.write_u8(TAG_ISN);
    h.write(&local.0);
    h.write(&local.1.to_be_bytes());
    h.write(&remote.0);
    h.write(&remote.1.to_be_bytes());
    let clock = (now_us / 4) as u32;
    clock.wrapping_add(h.finish() as u32)
}

/// The seed of smoltcp's own generator (which then only picks the first
/// IPv4 ident): from the secret, without giving any of it away.
pub fn stack_seed(secret: Secret) -> u64 {
    let mut h = SipHasher24::new_with_keys(secret[0], secret[1]);
    h.write_u8(TAG_SEED);
    h.finish()
}

/// The first port of the dynamic range (RFC 6335).
pub const FIRST_EPHEMERAL: u16 = 49152;
/// Ports in the dynamic range.
const EPHEMERAL_PORTS: u64 = 65536 - FIRST_EPHEMERAL as u64;
/// Draws before [`PortPicker::pick`] gives up: with every one of the
/// guest's 192 sockets on a port of the range, a draw is free with
/// probability above 0.98, so 64 in a row fail about never.
pub const PORT_TRIES: usize = 64;

/// Draws ephemeral ports.
#[derive(Clone, Debug)]
pub struct PortPicker {
    secret: Secret,
    draws: u64,
}

impl PortPicker {
    pub const fn new(secret: Secret) -> Self {
        PortPicker { secret, draws: 0 }
    }

    fn draw(&mut self) -> u16 {
        let mut h = SipHasher24::new_with_keys(self.secret[0], self.secret[1]);
        h.write_u8(TAG_PORT);
        h.write(&self.draws.to_le_bytes());
        self.draws = self.draws.wrapping_add(1);
        FIRST_EPHEMERAL + (h.finish() % EPHEMERAL_PORTS) as u16
    }

    /// A port of the dynamic range for which `in_use` says no; `None`
    /// after [`PORT_TRIES`] draws that were all in use.
    pub fn pick(&mut self, in_use: impl Fn(u16) -> bool) -> Option<u16> {
        (0..PORT_TRIES).map(|_| self.draw()).find(|&p| !in_use(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Secret = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
    const GUEST: ([u8; 4], u16) = ([192, 0, 2, 2], 80);
    const PEER: ([u8; 4], u16) = ([192, 0, 2, 1], 40000);

    #[test]
    fn siphash_is_the_reference_one() {
        // SipHash-2-4's paper, appendix A: key 00..0f, message 00..0e.
        let mut h = SipHasher24::new_with_keys(KEY[0], KEY[1]);
        h.write(&(0u8..15).collect::<alloc::vec::Vec<u8>>());
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn the_clock_moves_one_per_4_us_for_one_connection() {
        let at = |us| initial_sequence_number(KEY, GUEST, PEER, us);
        assert_eq!(at(1000), at(1003));
        assert_eq!(at(1004), at(1000).wrapping_add(1));
        assert_eq!(at(1_000_000), at(0).wrapping_add(250_000));
    }

    #[test]
    fn every_part_of_the_four_tuple_and_the_key_changes_the_number() {
        let base = initial_sequence_number(KEY, GUEST, PEER, 0);
        let others = [
            initial_sequence_number([KEY[0] ^ 1, KEY[1]], GUEST, PEER, 0),
            initial_sequence_number([KEY[0], KEY[1] ^ (1 << 63)], GUEST, PEER, 0),
            initial_sequence_number(KEY, ([192, 0, 2, 3], 80), PEER, 0),
            initial_sequence_number(KEY, ([192, 0, 2, 2], 81), PEER, 0),
            initial_sequence_number(KEY, GUEST, ([192, 0, 2, 9], 40000), 0),
            initial_sequence_number(KEY, GUEST, ([192, 0, 2, 1], 40001), 0),
            // The two ends swapped are another connection.
            initial_sequence_number(KEY, PEER, GUEST, 0),
        ];
        for (i, o) in others.iter().enumerate() {
            assert_ne!(*o, base, "change {i}");
        }
    }

    #[test]
    fn consecutive_client_ports_do_not_give_consecutive_numbers() {
        // What a peer that connects again and again sees: no step between
        // one ISN and the next repeats (as it would for a counter).
        let isns: alloc::vec::Vec<u32> = (0..64u16)
            .map(|i| initial_sequence_number(KEY, GUEST, ([192, 0, 2, 1], 40000 + i), 0))
            .collect();
        let steps: alloc::vec::Vec<u32> =
            isns.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        for (i, s) in steps.iter().enumerate() {
            assert!(!steps[i + 1..].contains(s), "step {s:#x} repeats");
        }
    }

    #[test]
    fn ports_are_in_the_dynamic_range_and_spread_over_it() {
        let mut p = PortPicker::new(KEY);
        let ports: alloc::vec::Vec<u16> = (0..4096).map(|_| p.pick(|_| false).unwrap()).collect();
        assert!(ports.iter().all(|&x| x >= FIRST_EPHEMERAL));
        // Each quarter of the range gets a fair share (1024 expected).
        for q in 0..4u16 {
            let n = ports
                .iter()
                .filter(|&&x| (x - FIRST_EPHEMERAL) / 4096 == q)
                .count();
            assert!((850..1200).contains(&n), "quarter {q}: {n}");
        }
        // Not a counter: the step from one port to the next varies.
        let steps: alloc::collections::BTreeSet<u16> =
            ports.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        assert!(steps.len() > 3000, "{} distinct steps", steps.len());
    }

    #[test]
    fn ports_depend_on_the_secret() {
        let draw = |key| {
            let mut p = PortPicker::new(key);
            (0..16)
                .map(|_| p.pick(|_| false).unwrap())
                .collect::<alloc::vec::Vec<u16>>()
        };
        assert_ne!(draw(KEY), draw([KEY[0], KEY[1] + 1]));
        assert_eq!(draw(KEY), draw(KEY));
    }

    #[test]
    fn a_port_in_use_is_never_given_and_a_full_range_is_refused() {
        let mut p = PortPicker::new(KEY);
        let taken = |x: u16| x.is_multiple_of(2);
        for _ in 0..1000 {
            assert_eq!(p.pick(taken).map(|x| x % 2), Some(1));
        }
        assert_eq!(p.pick(|_| true), None);
    }
}
