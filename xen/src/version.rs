//! The Xen version as the guest reports it: `major.minor` plus the
//! extraversion string, which is exactly what `xl info` shows as `xen_version`.

use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenVersion {
    pub major: u32,
    pub minor: u32,
    extra: [u8; 16],
    extra_len: usize,
}

impl XenVersion {
    /// `extra` is Xen's NUL-padded `xen_extraversion_t`; only printable ASCII
    /// up to the first NUL is kept.
    pub fn new(major: u32, minor: u32, extra: [u8; 16]) -> Self {
        let extra_len = extra
            .iter()
            .position(|&b| b == 0 || !(0x20..0x7f).contains(&b))
            .unwrap_or(extra.len());
        XenVersion {
            major,
            minor,
            extra,
            extra_len,
        }
    }

    pub fn extra(&self) -> &str {
        // Printable ASCII only, by construction.
        core::str::from_utf8(&self.extra[..self.extra_len]).unwrap_or("")
    }
}

impl fmt::Display for XenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}{}", self.major, self.minor, self.extra())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn formats_like_xl_info() {
        let mut extra = [0u8; 16];
        extra[..6].copy_from_slice(b".5-pre");
        assert_eq!(XenVersion::new(4, 17, extra).to_string(), "4.17.5-pre");
    }

    #[test]
    fn stops_at_nul_or_unprintable() {
        let mut extra = [0u8; 16];
        extra[..4].copy_from_slice(b".1\x07x");
        assert_eq!(XenVersion::new(4, 17, extra).to_string(), "4.17.1");
        assert_eq!(XenVersion::new(4, 17, [b'a'; 16]).extra().len(), 16);
    }
}
