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

    /// Reads the option; an unknown value is an error carrying that value.
    pub fn from_cmdline<'a>(cmdline: &Cmdline<'a>) -> Result<Option<TestFault>, &'a str> {
        match cmdline.get(Self::OPTION) {
            None => Ok(None),
            Some("pagefault") => Ok(Some(TestFault::PageFault)),
            Some("ud") => Ok(Some(TestFault::InvalidOpcode)),
            Some("divide") => Ok(Some(TestFault::DivideError)),
            Some("panic") => Ok(Some(TestFault::Panic)),
            Some("stale-page") => Ok(Some(TestFault::StalePage)),
            Some(other) => Err(other),
        }
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
