//! The attack on smoltcp's own generator of TCP initial sequence numbers,
//! written out so that tests can show it works (against the generator the
//! guest used before RFC 6528 numbers) and that it fails against what the
//! guest sends now (issue 13, item 7). Host only: it is evidence, not
//! kernel code.
//!
//! smoltcp 0.14 draws every ISN from one 64-bit state, seeded once at
//! interface creation (`Config::random_seed`), with sPCG32: each draw
//! multiplies the state by a constant and adds one, then gives out 32 of
//! its 64 bits (which 32 depends on the top three). So an ISN leaves 32
//! bits of the state unknown, and the next ISN checks a guess of them:
//! two SYN-ACKs are enough to recover the state and know every ISN the
//! guest will choose next.
//!
//! Search: for each guess of the top bits of the two draws, the bits of
//! the second state up to the first one's unknown top bits depend only on
//! the first state's unknown low bits `L`. Split `L` into a high and a low
//! half; a table of `low * MULTIPLIER`, sorted and indexed by its top
//! bits, turns "which `L` give the second ISN's bits" into one look-up per
//! high half and guess (meet in the middle): about 2^19 look-ups instead of
//! 2^32 trials, a fifth of a second in a debug build. Every candidate is
//! then checked against both ISNs exactly.

use alloc::vec::Vec;

/// sPCG32's multiplier and increment, as smoltcp 0.14's `src/rand.rs` uses them.
pub const MULTIPLIER: u64 = 0xbb2e_fcec_3c39_611d;
pub const INCREMENT: u64 = 0x7590_ef39;

/// The generator's step.
pub const fn step(state: u64) -> u64 {
    state.wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT)
}

/// The 32 bits a draw gives out of the state it stepped to: the top three
/// bits choose where they start (bit 29 down to bit 22).
pub const fn output(state: u64) -> u32 {
    let shift = 29 - (state >> 61);
    (state >> shift) as u32
}

/// A replica of smoltcp 0.14's generator, for tests that need its draws
/// without an interface.
#[derive(Clone, Copy, Debug)]
pub struct SmoltcpRand(pub u64);

impl SmoltcpRand {
    /// One draw: a TCP ISN is one of these, as a `u32`.
    pub fn next_u32(&mut self) -> u32 {
        self.0 = step(self.0);
        output(self.0)
    }
}

/// Bits of `L` (the first state's unknown low bits) in the table.
const TABLE_BITS: u32 = 14;
/// A table's index: its entries by their top bits.
const BUCKET_BITS: u32 = 14;

/// `(low * MULTIPLIER) << shift` for every low half, sorted, with an
/// index by the top bits: shifted so that arithmetic modulo 2^(64 - shift)
/// becomes plain wrapping arithmetic on the top bits of a u64.
struct Table {
    entries: Vec<(u64, u64)>,
    /// `entries[bucket[b]..bucket[b + 1]]` have top bits `b`.
    bucket: Vec<u32>,
}

impl Table {
    fn new(shift: u32) -> Table {
        let mut entries: Vec<(u64, u64)> = (0..1u64 << TABLE_BITS)
            .map(|low| (low.wrapping_mul(MULTIPLIER) << shift, low))
            .collect();
        entries.sort_unstable();
        let mut bucket = Vec::with_capacity((1 << BUCKET_BITS) + 1);
        let mut i = 0;
        for b in 0..=1u64 << BUCKET_BITS {
            while i < entries.len() && entries[i].0 >> (64 - BUCKET_BITS) < b {
                i += 1;
            }
            bucket.push(i as u32);
        }
        Table { entries, bucket }
    }

    /// The low halves whose entry lies in `[from, from + width)`, wrapping
    /// around 2^64 (`width` is far below a bucket's span).
    fn window(&self, from: u64, width: u64, out: &mut Vec<u64>) {
        let first = from >> (64 - BUCKET_BITS);
        let last = from.wrapping_add(width - 1) >> (64 - BUCKET_BITS);
        let mut scan = |b: u64| {
            let (lo, hi) = (self.bucket[b as usize], self.bucket[b as usize + 1]);
            for &(w, low) in &self.entries[lo as usize..hi as usize] {
                if w.wrapping_sub(from) < width {
                    out.push(low);
                }
            }
        };
        scan(first);
        if last != first {
            scan(last);
        }
    }
}

/// The search, with its tables made once: one per `top` (the larger of
/// the two draws' top-bit guesses), shifted by `3 + top`.
pub struct Attack {
    tables: Vec<Table>,
}

impl Default for Attack {
    fn default() -> Self {
        Self::new()
    }
}

impl Attack {
    pub fn new() -> Attack {
        Attack {
            tables: (0..8).map(|top| Table::new(3 + top)).collect(),
        }
    }

    /// Every generator state that a draw giving `first` can have left,
    /// whose next draw gives `second`. For ISNs drawn by smoltcp's
    /// generator one after the other, the true state is among them (with,
    /// on average, about one other that fits both by chance).
    pub fn states_after(&self, first: u32, second: u32) -> Vec<u64> {
        let mut found = Vec::new();
        let mut lows = Vec::new();
        for t1 in 0..8u32 {
            // The first state: t1 in bits 61..64, `first` in bits
            // [29 - t1, 61 - t1), unknown bits above (t1 of them) and
            // below (29 - t1 of them, `L`).
            let known = u64::from(first) << (29 - t1);
            for high in 0..1u64 << (29 - t1 - TABLE_BITS) {
                let partial = step(known.wrapping_add(high << TABLE_BITS));
                for t2 in 0..8u32 {
                    // The second state's bits below 2^(61 - top) depend on
                    // `L` only; `second` fixes those from bit 29 - t2 up.
                    let top = t1.max(t2);
                    let shift = 3 + top;
                    let target = (u64::from(second) << (29 - t2)) << shift;
                    let width = 1u64 << (29 - t2 + shift);
                    lows.clear();
                    self.tables[top as usize].window(
                        target.wrapping_sub(partial << shift),
                        width,
                        &mut lows,
                    );
                    for &low in &lows {
                        let l = high << TABLE_BITS | low;
                        for unknown_top in 0..1u64 << t1 {
                            let state = u64::from(t1) << 61 | unknown_top << (61 - t1) | known | l;
                            if output(state) == first
                                && output(step(state)) == second
                                && !found.contains(&state)
                            {
                                found.push(state);
                            }
                        }
                    }
                }
            }
        }
        found
    }

    /// The attacker's guesses for the `ahead` draws that follow `first`
    /// and `second`, from every state that fits them (duplicates removed).
    pub fn predict(&self, first: u32, second: u32, ahead: usize) -> Vec<u32> {
        let mut guesses = Vec::new();
        for state in self.states_after(first, second) {
            let mut g = SmoltcpRand(step(state));
            for _ in 0..ahead {
                let next = g.next_u32();
                if !guesses.contains(&next) {
                    guesses.push(next);
                }
            }
        }
        guesses
    }

    /// Whether ISNs seen in this order give the next ones away: for some
    /// two consecutive ones, the attack's guesses contain one of the (up
    /// to [`GAP`]) ISNs observed after them.
    pub fn predicts_any(&self, isns: &[u32]) -> bool {
        isns.windows(2).enumerate().any(|(i, pair)| {
            let later = &isns[i + 2..(i + 2 + GAP).min(isns.len())];
            !later.is_empty()
                && self
                    .predict(pair[0], pair[1], GAP)
                    .iter()
                    .any(|g| later.contains(g))
        })
    }
}

/// Draws the attack allows between two observed ones (other connections
/// the observer did not see).
pub const GAP: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_is_smoltcps_generator() {
        // First draws from seed 0, worked out by hand from the definition:
        // state = 0 * M + A = 0x7590ef39; top bits 0, so bits 29.. give 0.
        let mut g = SmoltcpRand(0);
        assert_eq!(g.next_u32(), (INCREMENT >> 29) as u32);
        assert_eq!(g.0, INCREMENT);
        let s2 = INCREMENT.wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT);
        assert_eq!(g.next_u32(), (s2 >> (29 - (s2 >> 61))) as u32);
    }

    #[test]
    fn two_draws_give_the_state_away_for_any_seed() {
        let attack = Attack::new();
        for seed in [1u64, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, u64::MAX] {
            let mut g = SmoltcpRand(seed);
            let (a, b) = (g.next_u32(), g.next_u32());
            let states = attack.states_after(a, b);
            assert!(states.contains(&step(seed)), "seed {seed:#x}: {states:x?}");
            // Few candidates: the attacker tries each, or a third ISN decides.
            assert!(states.len() <= 8, "seed {seed:#x}: {}", states.len());
            let next: Vec<u32> = (0..GAP).map(|_| g.next_u32()).collect();
            let guesses = attack.predict(a, b, GAP);
            assert!(next.iter().all(|n| guesses.contains(n)));
        }
    }

    #[test]
    fn a_gap_of_unseen_draws_does_not_save_the_generator() {
        let mut g = SmoltcpRand(0x5eed);
        let (a, b) = (g.next_u32(), g.next_u32());
        for _ in 0..5 {
            g.next_u32();
        }
        assert!(Attack::new().predicts_any(&[a, b, g.next_u32()]));
    }

    #[test]
    fn numbers_from_another_source_are_not_predicted() {
        // SipHash outputs: what an RFC 6528 generator gives out.
        let isns: Vec<u32> = (0..6u16)
            .map(|i| {
                crate::net::isn::initial_sequence_number(
                    [7, 11],
                    ([192, 0, 2, 2], 80),
                    ([192, 0, 2, 1], 40000 + i),
                    u64::from(i) * 1000,
                )
            })
            .collect();
        assert!(!Attack::new().predicts_any(&isns));
    }
}
