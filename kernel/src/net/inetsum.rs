//! The Internet checksum (RFC 1071): the ones' complement sum of big-endian
//! 16-bit words. One implementation for the frame checks (`netcheck`), the
//! TCP checksum offload (`txcsum`) and segment joining (`tso`).

/// Adds `data` to `sum` as big-endian 16-bit words, an odd last byte padded
/// with zero. A `u64` sum cannot overflow for any slice that fits in memory
/// long enough to matter here (2^48 words).
pub fn add(sum: u64, data: &[u8]) -> u64 {
    let mut pairs = data.chunks_exact(2);
    let mut sum = sum;
    for p in &mut pairs {
        sum += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    sum
}

/// Folds a sum to 16 bits with end-around carries.
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum of `data`: the complement of its folded sum. Over a header
/// whose checksum field holds the right value, this is 0.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(add(0, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_1071_example_and_odd_lengths() {
        // RFC 1071, section 3: the words 0001 f203 f4f5 f6f7 sum to 2ddf0,
        // folded ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
        // An odd byte counts as the high half of a last word.
        assert_eq!(fold(add(0, &[0xab])), 0xab00);
        // Sums add up piecewise on even boundaries.
        assert_eq!(add(add(0, &data[..4]), &data[4..]), add(0, &data));
    }

    #[test]
    fn a_header_with_its_checksum_sums_to_zero() {
        let mut ip = [
            0x45u8, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&ip), 0);
    }
}
