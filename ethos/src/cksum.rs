//! POSIX `cksum` (CRC-32 with polynomial 0x04C11DB7, the length appended,
//! complemented): the checksum busybox in dom0 prints, so a program (the
//! `net-demo` program's blob and uploads) and the rig can compare what the
//! guest received or sent with a file in dom0.

/// A running `cksum`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cksum {
    crc: u32,
    len: u64,
}

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

impl Cksum {
    /// A checksum of nothing yet.
    pub const fn new() -> Self {
        Cksum { crc: 0, len: 0 }
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.crc = (self.crc << 8) ^ TABLE[((self.crc >> 24) as u8 ^ b) as usize];
        }
        self.len += data.len() as u64;
    }

    /// Bytes seen.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value `cksum` prints.
    pub fn value(&self) -> u32 {
        let mut crc = self.crc;
        let mut n = self.len;
        while n != 0 {
            crc = (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ n as u8) as usize];
            n >>= 8;
        }
        !crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_posix_cksum() {
        // `printf 123456789 | cksum` -> 930766865 9; `printf '' | cksum` -> 4294967295 0
        let mut c = Cksum::new();
        c.update(b"123456789");
        assert_eq!((c.value(), c.len()), (930_766_865, 9));
        assert_eq!(Cksum::new().value(), 4_294_967_295);
        // Split updates give the same value.
        let mut d = Cksum::new();
        d.update(b"1234");
        d.update(b"56789");
        assert_eq!(d.value(), c.value());
    }
}
