//! The seed dom0 hands a domain before it first runs, for a guest whose
//! CPU offers no RDSEED or RDRAND (and mixed in when it does).
//!
//! The toolstack side (`shadowdaemon seed`, `scripts/xl-create-seeded`)
//! creates the domain paused, writes 32 bytes from dom0's kernel CSPRNG as
//! 64 hex digits into the domain's `ethos/seed` (permissions: dom0 owns
//! it, the domain alone may read and remove it, no other domain may even
//! read it), then unpauses it. The guest reads the node once at boot,
//! before any secret is drawn, and removes it so that it is never reused.
//!
//! The node is input from another domain: [`parse`] takes exactly 64 hex
//! digits and names what is wrong with anything else.

use core::fmt;

/// The node, relative to the domain's home (`/local/domain/DOMID/`).
pub const PATH: &str = "ethos/seed";

/// Bytes of seed the node carries.
pub const BYTES: usize = 32;

/// Why a node's value is not a seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedError {
    /// Not 64 bytes long (the length it had).
    Length(usize),
    /// The byte at this offset is not a hex digit.
    NotHex(usize),
    /// Every digit is 0: a broken writer (e.g. /dev/zero), not a seed.
    AllZero,
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedError::Length(n) => write!(f, "{n} bytes, not {}", 2 * BYTES),
            SeedError::NotHex(at) => write!(f, "byte {at} is not a hex digit"),
            SeedError::AllZero => f.write_str("all zero"),
        }
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The seed in a node's value: exactly 64 hex digits (either case), no
/// terminator, no whitespace.
pub fn parse(value: &[u8]) -> Result<[u8; BYTES], SeedError> {
    if value.len() != 2 * BYTES {
        return Err(SeedError::Length(value.len()));
    }
    let mut seed = [0u8; BYTES];
    for (i, byte) in seed.iter_mut().enumerate() {
        let high = nibble(value[2 * i]).ok_or(SeedError::NotHex(2 * i))?;
        let low = nibble(value[2 * i + 1]).ok_or(SeedError::NotHex(2 * i + 1))?;
        *byte = high << 4 | low;
    }
    if seed == [0; BYTES] {
        return Err(SeedError::AllZero);
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    const GOOD: &[u8; 64] = b"00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100";

    #[test]
    fn takes_64_hex_digits_of_either_case() {
        let seed = parse(GOOD).unwrap();
        assert_eq!(&seed[..4], &[0x00, 0x11, 0x22, 0x33]);
        assert_eq!(&seed[14..18], &[0xee, 0xff, 0xff, 0xee]);
        assert_eq!(seed[31], 0x00);
    }

    #[test]
    fn refuses_other_lengths() {
        assert_eq!(parse(b""), Err(SeedError::Length(0)));
        assert_eq!(parse(&GOOD[..63]), Err(SeedError::Length(63)));
        let mut long = GOOD.to_vec();
        long.push(b'\n');
        assert_eq!(parse(&long), Err(SeedError::Length(65)));
        // xenstored's largest value: refused by length, never scanned.
        assert_eq!(parse(&[b'a'; 4096]), Err(SeedError::Length(4096)));
    }

    #[test]
    fn names_the_first_byte_that_is_not_hex() {
        for bad in [b'g', b' ', b'\0', 0xff, b'x', b'-'] {
            for at in [0, 1, 31, 63] {
                let mut value = *GOOD;
                value[at] = bad;
                assert_eq!(
                    parse(&value),
                    Err(SeedError::NotHex(at)),
                    "{bad:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn refuses_all_zero() {
        assert_eq!(parse(&[b'0'; 64]), Err(SeedError::AllZero));
    }

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            let hex: std::string::String = std::format!("{b:02x}").repeat(BYTES);
            if b == 0 {
                continue;
            }
            assert_eq!(parse(hex.as_bytes()), Ok([b; BYTES]));
        }
    }

    #[test]
    fn errors_read_as_a_reason() {
        assert_eq!(SeedError::Length(3).to_string(), "3 bytes, not 64");
        assert_eq!(
            SeedError::NotHex(7).to_string(),
            "byte 7 is not a hex digit"
        );
        assert_eq!(SeedError::AllZero.to_string(), "all zero");
    }
}
