//! The guest's command line (`extra=` in the xl config), as `key=value` words
//! up to a `--` word, and the first program's arguments after it. The kernel
//! reads options through [`crate::options`], whose table says which there are.
//!
//! The bytes come from the toolstack, so they are treated as untrusted: no
//! allocation, no panic, anything unparsable is simply not a known option.

use crate::options::{Opt, Options};

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

    /// The option words: those before the first `--` word.
    pub fn option_words(&self) -> impl Iterator<Item = &'a str> {
        self.text
            .split_ascii_whitespace()
            .take_while(|w| *w != "--")
    }

    /// The words after the first `--` word: the first program's arguments.
    pub fn init_args(&self) -> impl Iterator<Item = &'a str> {
        self.text
            .split_ascii_whitespace()
            .skip_while(|w| *w != "--")
            .skip(1)
    }

    /// The last option word with this key, `key=value` or a bare `key`
    /// (later words win, as with kernel command lines).
    pub(crate) fn last_word(&self, key: &str) -> Option<&'a str> {
        self.option_words().filter(|w| split(w).0 == key).last()
    }

    /// The value of the last option word with this key; a bare `key`
    /// yields `Some("")`. Only through `options::Options::get` (its table)
    /// outside.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.last_word(key).map(|w| split(w).1)
    }
}

/// A word's key and value (`""` for a bare word).
pub(crate) fn split(word: &str) -> (&str, &str) {
    cut(word, b'=').unwrap_or((word, ""))
}

/// `s` cut at its first `sep`, an ASCII byte (so both sides are `str`):
/// what is before it and what is after. By hand, as every parser of the
/// command line: `str`'s pattern searchers would cost the core image half
/// a kilobyte.
#[inline(never)]
pub(crate) fn cut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == sep)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// Where `word` is among the `|`-separated `words` (none if empty).
pub(crate) fn position_in(word: &str, words: &str) -> Option<usize> {
    let mut rest = words;
    let mut at = 0;
    while let Some((first, more)) = cut(rest, b'|') {
        if first == word {
            return Some(at);
        }
        rest = more;
        at += 1;
    }
    (!rest.is_empty() && rest == word).then_some(at)
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
    /// The values of the option (`options::Opt::TestFault`), each with its fault.
    const VALUES: [(&'static str, TestFault); 5] = [
        ("pagefault", TestFault::PageFault),
        ("ud", TestFault::InvalidOpcode),
        ("divide", TestFault::DivideError),
        ("panic", TestFault::Panic),
        ("stale-page", TestFault::StalePage),
    ];

    /// The fault a value of the option asks for.
    pub fn from_value(value: &str) -> Option<TestFault> {
        Self::VALUES
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, f)| *f)
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
        assert_eq!(
            TestFault::from_value("pagefault"),
            Some(TestFault::PageFault)
        );
        assert_eq!(TestFault::from_value("ud"), Some(TestFault::InvalidOpcode));
        assert_eq!(
            TestFault::from_value("divide"),
            Some(TestFault::DivideError)
        );
        assert_eq!(TestFault::from_value("panic"), Some(TestFault::Panic));
        assert_eq!(
            TestFault::from_value("stale-page"),
            Some(TestFault::StalePage)
        );
        assert_eq!(TestFault::from_value("oops"), None);
    }

    #[test]
    fn cutting_and_finding_words() {
        assert_eq!(cut("a=b=c", b'='), Some(("a", "b=c")));
        assert_eq!(cut("=", b'='), Some(("", "")));
        assert_eq!(cut("abc", b'='), None);
        assert_eq!(cut("é=ü", b'='), Some(("é", "ü")));
        assert_eq!(split("key"), ("key", ""));
        assert_eq!(split("key="), ("key", ""));
        assert_eq!(position_in("on", "on|off"), Some(0));
        assert_eq!(position_in("off", "on|off"), Some(1));
        assert_eq!(position_in("o", "on|off"), None);
        assert_eq!(position_in("", "on|off"), None);
        assert_eq!(position_in("", ""), None);
        assert_eq!(position_in("", "on||off"), Some(1));
        assert_eq!(position_in("x", "x"), Some(0));
    }

    #[test]
    fn options_end_at_the_first_double_dash() {
        let c = Cmdline::from_nul_terminated(b" a=1 -- b=2 -- c\tz ");
        assert_eq!(c.option_words().collect::<Vec<_>>(), ["a=1"]);
        assert_eq!(c.init_args().collect::<Vec<_>>(), ["b=2", "--", "c", "z"]);
        assert_eq!(c.get("b"), None);
        let c = Cmdline::from_nul_terminated(b"--x -- ");
        assert_eq!(c.option_words().collect::<Vec<_>>(), ["--x"]);
        assert_eq!(c.init_args().count(), 0);
    }
}

/// The static IPv4 configuration (`ethos.ip=A.B.C.D/PREFIX`,
/// `ethos.gw=A.B.C.D`), checked: no networking without a valid address, or
/// with a gateway outside the network; `ethos.tso=off` keeps segmentation
/// offload off even where the backend offers it (to compare, or to rule it
/// out). The options' table checks each value; this checks them together.
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
    /// The gateway is not inside the guest's network, or is the guest itself.
    GatewayOutsideNetwork,
}

/// One to three decimal digits, nothing else, at most `max` (by hand: the
/// core image checks these too, and `str::parse` would cost it more).
fn decimal(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 3 {
        return None;
    }
    let mut n: u16 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u16::from(b - b'0');
    }
    u8::try_from(n).ok().filter(|&n| n <= max)
}

/// Parses a dotted quad: four decimal octets, nothing else.
pub fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut rest = s;
    for o in out[..3].iter_mut() {
        let (octet, more) = cut(rest, b'.')?;
        *o = decimal(octet, 255)?;
        rest = more;
    }
    out[3] = decimal(rest, 255)?;
    Some(out)
}

/// Parses `A.B.C.D/PREFIX`, PREFIX 1..=32 in decimal digits.
pub fn parse_ipv4_prefix(s: &str) -> Option<([u8; 4], u8)> {
    let (addr, prefix) = cut(s, b'/')?;
    let ip = parse_ipv4(addr)?;
    let prefix = decimal(prefix, 32).filter(|&p| p > 0)?;
    Some((ip, prefix))
}

impl NetConfig {
    /// The configuration from the options (each value already checked by
    /// the table: a bad one reads as absent); `Ok(None)` without a valid
    /// `ethos.ip`.
    pub fn from_options(options: &Options<'_>) -> Result<Option<NetConfig>, NetConfigError> {
        let Some((ip, prefix)) = options.get(Opt::Ip).and_then(parse_ipv4_prefix) else {
            return Ok(None);
        };
        let gateway = options.get(Opt::Gw).and_then(parse_ipv4);
        let tso = options.get(Opt::Tso) != Some("off");
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
    use crate::options::Image;

    fn cfg(line: &str) -> Result<Option<NetConfig>, NetConfigError> {
        let options = Options::new(Cmdline::from_nul_terminated(line.as_bytes()), Image::Net);
        NetConfig::from_options(&options)
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
        // A bad value is the default (the options' check says so).
        assert!(
            cfg("ethos.ip=192.0.2.2/24 ethos.tso=yes")
                .unwrap()
                .unwrap()
                .tso
        );
        assert_eq!(cfg("loglevel=info"), Ok(None));
        assert_eq!(cfg("ethos.ip=10.1.2.3/8").unwrap().unwrap().gateway, None);
    }

    #[test]
    fn bad_input_is_refused() {
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
            assert_eq!(parse_ipv4_prefix(&bad[9..]), None, "{bad}");
            assert_eq!(cfg(bad), Ok(None), "{bad}");
        }
        assert_eq!(
            cfg("ethos.ip=192.0.2.2/24 ethos.gw=192.0.2")
                .unwrap()
                .unwrap()
                .gateway,
            None
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
