//! The guest's command line (`extra=` in the xl config), as `key=value` words.
//!
//! The bytes come from the toolstack, so they are treated as untrusted: no
//! allocation, no panic, anything unparsable is simply not a known option.

/// A parsed view of the command line; borrows the bytes it was given.
#[derive(Clone, Copy, Debug)]
pub struct Cmdline<'a> {
    text: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Takes the NUL-terminated command-line field of `start_info`. Bytes after
    /// the first NUL are ignored; invalid UTF-8 cuts the line at the last valid byte.
    pub fn from_nul_terminated(raw: &'a [u8]) -> Self {
        let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let bytes = &raw[..len];
        let text = match core::str::from_utf8(bytes) {
            Ok(s) => s,
            // Keep the valid prefix; `valid_up_to` always lies on a char boundary.
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        };
        Cmdline { text }
    }

    /// The whole line, trimmed.
    pub fn as_str(&self) -> &'a str {
        self.text.trim()
    }

    /// The value of the last `key=value` word with this key (later words win,
    /// as with kernel command lines); a bare `key` yields `Some("")`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.text
            .split_ascii_whitespace()
            .filter_map(|word| match word.split_once('=') {
                Some((k, v)) if k == key => Some(v),
                None if word == key => Some(""),
                _ => None,
            })
            .next_back()
    }
}

/// The test-only faults the guest can be told to commit (`ethos.test_fault=`),
/// so the rig can check that a fault is reported and Xen sees a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestFault {
    /// Read from an address below the image, which is never mapped.
    PageFault,
    /// Execute `ud2`.
    InvalidOpcode,
    /// Divide by zero.
    DivideError,
    /// Call `panic!`.
    Panic,
    /// A process binds a page, frees it, then reads its old address: the
    /// read must fault instead of reaching the (reusable) frame.
    StalePage,
}

impl TestFault {
    pub const OPTION: &'static str = "ethos.test_fault";

    /// The values of the option, each with its fault.
    const VALUES: [(&'static str, TestFault); 5] = [
        ("pagefault", TestFault::PageFault),
        ("ud", TestFault::InvalidOpcode),
        ("divide", TestFault::DivideError),
        ("panic", TestFault::Panic),
        ("stale-page", TestFault::StalePage),
    ];

    /// Reads the option; an unknown value is an error carrying that value.
    pub fn from_cmdline<'a>(cmdline: &Cmdline<'a>) -> Result<Option<TestFault>, &'a str> {
        let Some(value) = cmdline.get(Self::OPTION) else {
            return Ok(None);
        };
        Self::VALUES
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, f)| Some(*f))
            .ok_or(value)
    }

    /// The option's value that asks for this fault (for messages: no Debug
    /// formatting in the image).
    pub fn value(self) -> &'static str {
        Self::VALUES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(v, _)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_nul_and_reads_words() {
        let mut raw = [0u8; 64];
        raw[..27].copy_from_slice(b"quiet ethos.test_fault=ud x");
        raw[30] = b'z';
        let c = Cmdline::from_nul_terminated(&raw);
        assert_eq!(c.as_str(), "quiet ethos.test_fault=ud x");
        assert_eq!(c.get("quiet"), Some(""));
        assert_eq!(c.get("ethos.test_fault"), Some("ud"));
        assert_eq!(c.get("z"), None);
        assert_eq!(c.get("ethos"), None);
    }

    #[test]
    fn later_word_wins_and_value_may_hold_equals() {
        let c = Cmdline::from_nul_terminated(b"a=1 b=x=y a=2");
        assert_eq!(c.get("a"), Some("2"));
        assert_eq!(c.get("b"), Some("x=y"));
    }

    #[test]
    fn invalid_utf8_keeps_valid_prefix() {
        let c = Cmdline::from_nul_terminated(b"a=1 \xff\xfe b=2");
        assert_eq!(c.get("a"), Some("1"));
        assert_eq!(c.get("b"), None);
    }

    #[test]
    fn unterminated_line_uses_whole_buffer() {
        let c = Cmdline::from_nul_terminated(b"k=v");
        assert_eq!(c.get("k"), Some("v"));
    }

    #[test]
    fn test_fault_values() {
        let parse =
            |s: &'static str| TestFault::from_cmdline(&Cmdline::from_nul_terminated(s.as_bytes()));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(
            parse("ethos.test_fault=pagefault"),
            Ok(Some(TestFault::PageFault))
        );
        assert_eq!(
            parse("ethos.test_fault=ud"),
            Ok(Some(TestFault::InvalidOpcode))
        );
        assert_eq!(
            parse("ethos.test_fault=divide"),
            Ok(Some(TestFault::DivideError))
        );
        assert_eq!(parse("ethos.test_fault=panic"), Ok(Some(TestFault::Panic)));
        assert_eq!(
            parse("ethos.test_fault=stale-page"),
            Ok(Some(TestFault::StalePage))
        );
        assert_eq!(parse("ethos.test_fault=oops"), Err("oops"));
    }
}

/// The static IPv4 configuration (`ethos.ip=A.B.C.D/PREFIX`,
/// `ethos.gw=A.B.C.D`), checked: no networking without a valid address;
/// `ethos.tso=off` keeps segmentation offload off even where the backend
/// offers it (to compare, or to rule it out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The guest's address.
    pub ip: [u8; 4],
    /// Network prefix length, 1..=32.
    pub prefix: u8,
    /// The default gateway, if any (must be inside the network).
    pub gateway: Option<[u8; 4]>,
    /// Join outgoing TCP segments into GSO packets when the backend can
    /// take them (`ethos.tso=on`, the default, or `off`).
    pub tso: bool,
}

/// Why the network options were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetConfigError {
    /// `ethos.ip` is not `A.B.C.D/PREFIX` with PREFIX 1..=32.
    BadAddress,
    /// `ethos.gw` is not `A.B.C.D`.
    BadGateway,
    /// The gateway is not inside the guest's network, or is the guest itself.
    GatewayOutsideNetwork,
    /// `ethos.tso` is neither `on` nor `off`.
    BadTso,
}

/// Parses a dotted quad: four decimal octets, nothing else.
pub fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for o in out.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

impl NetConfig {
    /// The configuration from the command line; `Ok(None)` without `ethos.ip`.
    pub fn from_cmdline(cmdline: &Cmdline<'_>) -> Result<Option<NetConfig>, NetConfigError> {
        let Some(ip) = cmdline.get("ethos.ip") else {
            return Ok(None);
        };
        let (addr, prefix) = ip.split_once('/').ok_or(NetConfigError::BadAddress)?;
        let ip = parse_ipv4(addr).ok_or(NetConfigError::BadAddress)?;
        let prefix: u8 = match prefix.parse() {
            Ok(p) if (1..=32).contains(&p) && prefix.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(NetConfigError::BadAddress),
        };
        let gateway = match cmdline.get("ethos.gw") {
            None => None,
            Some(g) => Some(parse_ipv4(g).ok_or(NetConfigError::BadGateway)?),
        };
        let tso = match cmdline.get("ethos.tso") {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => return Err(NetConfigError::BadTso),
        };
        let config = NetConfig {
            ip,
            prefix,
            gateway,
            tso,
        };
        if let Some(gw) = gateway {
            if gw == ip || !config.contains(gw) {
                return Err(NetConfigError::GatewayOutsideNetwork);
            }
        }
        Ok(Some(config))
    }

    /// Whether `addr` is inside the guest's network.
    pub fn contains(&self, addr: [u8; 4]) -> bool {
        let mask = u32::MAX << (32 - u32::from(self.prefix));
        u32::from_be_bytes(addr) & mask == u32::from_be_bytes(self.ip) & mask
    }
}

#[cfg(test)]
mod net_tests {
    use super::*;

    fn cfg(line: &str) -> Result<Option<NetConfig>, NetConfigError> {
        NetConfig::from_cmdline(&Cmdline::from_nul_terminated(line.as_bytes()))
    }

    #[test]
    fn a_full_configuration() {
        assert_eq!(
            cfg("ethos.ip=192.0.2.2/24 ethos.gw=192.0.2.1"),
            Ok(Some(NetConfig {
                ip: [192, 0, 2, 2],
                prefix: 24,
                gateway: Some([192, 0, 2, 1]),
                tso: true,
            }))
        );
        let off = cfg("ethos.ip=192.0.2.2/24 ethos.tso=off").unwrap().unwrap();
        assert!(!off.tso);
        assert_eq!(
            cfg("ethos.ip=192.0.2.2/24 ethos.tso=yes"),
            Err(NetConfigError::BadTso)
        );
        assert_eq!(cfg("loglevel=info"), Ok(None));
        assert_eq!(cfg("ethos.ip=10.1.2.3/8").unwrap().unwrap().gateway, None);
    }

    #[test]
    fn bad_input_is_named() {
        for bad in [
            "ethos.ip=192.0.2.2",
            "ethos.ip=192.0.2/24",
            "ethos.ip=192.0.2.256/24",
            "ethos.ip=192.0.2.2/33",
            "ethos.ip=192.0.2.2/0",
            "ethos.ip=192.0.2.2/+4",
            "ethos.ip=1.2.3.4.5/24",
            "ethos.ip=/24",
        ] {
            assert_eq!(cfg(bad), Err(NetConfigError::BadAddress), "{bad}");
        }
        assert_eq!(
            cfg("ethos.ip=192.0.2.2/24 ethos.gw=192.0.2"),
            Err(NetConfigError::BadGateway)
        );
        assert_eq!(
            cfg("ethos.ip=192.0.2.2/24 ethos.gw=198.51.100.1"),
            Err(NetConfigError::GatewayOutsideNetwork)
        );
        assert_eq!(
            cfg("ethos.ip=192.0.2.2/24 ethos.gw=192.0.2.2"),
            Err(NetConfigError::GatewayOutsideNetwork)
        );
    }
}
