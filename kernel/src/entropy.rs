//! The pool the kernel's secrets are drawn from (event-id and
//! page-capability keys, the network stack's secret, the boot id).
//!
//! Its inputs: the seed dom0 handed the domain (`xen::seed`, when it did),
//! 64 bits from the CPU's RDSEED or RDRAND per secret (when CPUID offers
//! them), and the TSC and Xen time. Each secret is SipHash-2-4 keyed with
//! half the seed over the other half, a count of secrets drawn, the CPU's
//! bits and the clock: an attacker must know every input to know a
//! secret, so each source counts whenever it is there, and two secrets
//! never repeat even if the CPU and the clock did. With no seed the key is
//! zero and a secret holds what the CPU and the clock gave it (nothing
//! lost, nothing added).
//!
//! Pure: the boot code feeds it, the host tests check it.

use core::hash::Hasher;
use siphasher::sip::SipHasher24;

/// The seed's words and the secrets drawn so far.
pub struct Pool {
    seed: [u64; 4],
    drawn: u64,
}

impl Pool {
    /// A pool with no seed: secrets come from the CPU and the clock alone.
    pub const fn new() -> Pool {
        Pool {
            seed: [0; 4],
            drawn: 0,
        }
    }

    /// Adds dom0's seed to the pool (before the first secret is drawn).
    pub fn add_seed(&mut self, seed: &[u8; xen::seed::BYTES]) {
        for (word, bytes) in self.seed.iter_mut().zip(seed.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(bytes);
            *word ^= u64::from_le_bytes(le);
        }
    }

    /// 64 bits for one secret, from the pool, the CPU's draw (`None`: the
    /// CPU has none or it failed) and the clock's reading.
    pub fn draw(&mut self, cpu: Option<u64>, clock: u64) -> u64 {
        self.drawn += 1;
        let mut h = SipHasher24::new_with_keys(self.seed[0], self.seed[1]);
        h.write_u64(self.seed[2]);
        h.write_u64(self.seed[3]);
        h.write_u64(self.drawn);
        // Whether the CPU gave bits, so that "none" is never the same input
        // as a draw of 0.
        h.write_u64(cpu.is_some() as u64);
        h.write_u64(cpu.unwrap_or(0));
        h.write_u64(clock);
        h.finish()
    }
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    fn seeded(seed: [u8; 32]) -> Pool {
        let mut pool = Pool::new();
        pool.add_seed(&seed);
        pool
    }

    #[test]
    fn the_same_inputs_give_the_same_secret() {
        // Deterministic: a secret is a function of its inputs, nothing hidden.
        let mut a = seeded([7; 32]);
        let mut b = seeded([7; 32]);
        assert_eq!(a.draw(Some(1), 2), b.draw(Some(1), 2));
    }

    #[test]
    fn every_byte_of_the_seed_counts() {
        let base = seeded([0x5a; 32]).draw(Some(1), 2);
        for at in 0..32 {
            let mut seed = [0x5a; 32];
            seed[at] ^= 1;
            assert_ne!(seeded(seed).draw(Some(1), 2), base, "seed byte {at}");
        }
    }

    #[test]
    fn the_cpu_counts_with_a_seed_and_without() {
        let pools: [fn() -> Pool; 2] = [Pool::new, || seeded([9; 32])];
        for pool in pools {
            let with = pool().draw(Some(0), 5);
            assert_ne!(pool().draw(None, 5), with, "no CPU bits vs a draw of 0");
            assert_ne!(pool().draw(Some(1), 5), with);
            assert_ne!(pool().draw(Some(0), 6), with, "the clock counts too");
        }
    }

    #[test]
    fn a_seed_changes_every_secret() {
        let mut plain = Pool::new();
        let mut with_seed = seeded([1; 32]);
        for i in 0..64 {
            assert_ne!(plain.draw(Some(i), i), with_seed.draw(Some(i), i));
        }
    }

    #[test]
    fn secrets_never_repeat_even_when_cpu_and_clock_do() {
        // A CPU and a clock that give the same thing every time (a hostile
        // or broken host): the count still tells every secret apart.
        let mut pool = seeded([3; 32]);
        let secrets: BTreeSet<u64> = (0..1000).map(|_| pool.draw(Some(42), 42)).collect();
        assert_eq!(secrets.len(), 1000);
        let mut pool = Pool::new();
        let secrets: Vec<u64> = (0..1000).map(|_| pool.draw(None, 0)).collect();
        assert_eq!(secrets.iter().collect::<BTreeSet<_>>().len(), 1000);
    }

    #[test]
    fn secrets_look_uniform() {
        // Each output bit is set about half the time across draws (a
        // SipHash property; a gross mixing mistake fails it).
        let mut pool = seeded([0xc3; 32]);
        let mut ones = [0u32; 64];
        let draws = 4096;
        for i in 0..draws {
            let s = pool.draw(Some(i), 0);
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += (s >> bit & 1) as u32;
            }
        }
        for (bit, count) in ones.iter().enumerate() {
            assert!(
                (1800..2300).contains(count),
                "bit {bit}: {count} of {draws}"
            );
        }
    }
}
