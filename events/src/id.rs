//! Event ids and process ids.
//!
//! # How ids are made
//!
//! An [`EventId`] is the encryption, under a secret per-table key, of the pair
//! `(generation, slot)` that locates the event in the table:
//!
//! ```text
//! plain  = generation << 32 | slot          (both u32)
//! id     = Feistel_key(plain)               (4 rounds, SipHash-1-3 round function)
//! ```
//!
//! * **Never reused.** A Feistel network is a permutation of `u64` whatever its round
//!   function, so distinct plaintexts give distinct ids. The table never encrypts the same
//!   plaintext twice: a slot's generation only ever increases (it is bumped every time the
//!   slot is freed) and a slot whose generation would wrap is never handed out again. So
//!   every id of the guest's life is distinct, and a retired id stays dead: decrypting it
//!   gives a generation the slot has left behind.
//! * **Never 0.** If a plaintext happens to encrypt to 0 the table skips that generation.
//! * **Not guessable.** With a pseudo-random round function, four Feistel rounds give a
//!   strong pseudo-random permutation (Luby–Rackoff), so ids seen by one process say
//!   nothing useful about another process's ids as long as the key is secret. The kernel
//!   passes a 128-bit [`Seed`] (the guest derives it from the TSC and Xen time; tests pass a
//!   fixed one).
//! * **No lookup table.** Decrypting an id gives its slot directly, so the table needs no
//!   id → slot map; that keeps memory per event small and lookups O(1) without hashing.

use core::fmt;

/// A process (or whatever the kernel schedules as one) as the event table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.0)
    }
}

/// A 64-bit event id. [`EventId::NULL`] (0) never names an event.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(pub u64);

impl EventId {
    /// The null id: never produced by the table; in a wait-tree spec it marks inner nodes.
    pub const NULL: EventId = EventId(0);

    /// True for the null id.
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {:#018x}", self.0)
    }
}

/// The secret that keys id generation. Pass 128 bits of the best entropy available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed(pub [u64; 2]);

/// SipHash with `C` compression and `D` finalization rounds, specialised to one 8-byte
/// message (the only input the id cipher needs), so no buffering and no allocation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sip<const C: usize, const D: usize> {
    k0: u64,
    k1: u64,
}

impl<const C: usize, const D: usize> Sip<C, D> {
    pub(crate) const fn new(seed: Seed) -> Self {
        Sip {
            k0: seed.0[0],
            k1: seed.0[1],
        }
    }

    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13);
        v[1] ^= v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16);
        v[3] ^= v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21);
        v[3] ^= v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17);
        v[1] ^= v[2];
        v[2] = v[2].rotate_left(32);
    }

    #[inline(always)]
    fn compress(v: &mut [u64; 4], m: u64) {
        v[3] ^= m;
        for _ in 0..C {
            Self::round(v);
        }
        v[0] ^= m;
    }

    /// SipHash of the 8 little-endian bytes of `m`.
    #[inline]
    pub(crate) fn hash_u64(&self, m: u64) -> u64 {
        let mut v = [
            self.k0 ^ 0x736f_6d65_7073_6575,
            self.k1 ^ 0x646f_7261_6e64_6f6d,
            self.k0 ^ 0x6c79_6765_6e65_7261,
            self.k1 ^ 0x7465_6462_7974_6573,
        ];
        Self::compress(&mut v, m);
        // Last block: no leftover bytes, message length (8) in the top byte.
        Self::compress(&mut v, 8u64 << 56);
        v[2] ^= 0xff;
        for _ in 0..D {
            Self::round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

/// Number of Feistel rounds: four makes a strong pseudo-random permutation.
const ROUNDS: u64 = 4;

/// A keyed permutation of `u64`: the id cipher described in the module docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdCipher {
    prf: Sip<1, 3>,
}

impl IdCipher {
    pub(crate) const fn new(seed: Seed) -> Self {
        IdCipher {
            prf: Sip::new(seed),
        }
    }

    #[inline(always)]
    fn f(&self, round: u64, half: u32) -> u32 {
        // The round number is mixed into the input so each round is a different function.
        self.prf.hash_u64((round << 32) | u64::from(half)) as u32
    }

    /// Encrypts `plain`. A bijection for any key.
    #[inline]
    pub(crate) fn encrypt(&self, plain: u64) -> u64 {
        let (mut l, mut r) = ((plain >> 32) as u32, plain as u32);
        for round in 0..ROUNDS {
            let next = l ^ self.f(round, r);
            l = r;
            r = next;
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    /// Inverts [`IdCipher::encrypt`].
    #[inline]
    pub(crate) fn decrypt(&self, cipher: u64) -> u64 {
        let (mut l, mut r) = ((cipher >> 32) as u32, cipher as u32);
        for round in (0..ROUNDS).rev() {
            let prev = r ^ self.f(round, l);
            r = l;
            l = prev;
        }
        (u64::from(l) << 32) | u64::from(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: Seed = Seed([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);

    #[test]
    #[allow(deprecated)] // core's SipHasher is SipHash-2-4: a reference to check ours against
    fn siphash_2_4_matches_core_reference() {
        use core::hash::{Hasher, SipHasher};
        let sip = Sip::<2, 4>::new(SEED);
        for m in [0u64, 1, 0xdead_beef, u64::MAX, 0x0706_0504_0302_0100] {
            let mut reference = SipHasher::new_with_keys(SEED.0[0], SEED.0[1]);
            reference.write(&m.to_le_bytes());
            assert_eq!(sip.hash_u64(m), reference.finish(), "message {m:#x}");
        }
    }

    #[test]
    fn siphash_2_4_matches_published_vector() {
        // From the SipHash paper's test vectors: key 00..0f, message 00..07 (8 bytes).
        let sip = Sip::<2, 4>::new(SEED);
        assert_eq!(sip.hash_u64(0x0706_0504_0302_0100), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn cipher_round_trips_and_depends_on_key() {
        let a = IdCipher::new(SEED);
        let b = IdCipher::new(Seed([1, 2]));
        for plain in [0u64, 1, 2, 1 << 32, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(a.decrypt(a.encrypt(plain)), plain);
            assert_eq!(b.decrypt(b.encrypt(plain)), plain);
            assert_ne!(a.encrypt(plain), b.encrypt(plain));
        }
    }

    #[test]
    fn consecutive_plaintexts_do_not_give_close_ids() {
        // A counter must not show through: neighbours differ in about half their bits.
        let c = IdCipher::new(SEED);
        let mut total = 0u32;
        for i in 0..1000u64 {
            total += (c.encrypt(i) ^ c.encrypt(i + 1)).count_ones();
        }
        let mean = total / 1000;
        assert!((28..=36).contains(&mean), "mean differing bits {mean}");
    }
}
