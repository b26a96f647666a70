//! A guest's live figures, as its kernel publishes them while it runs: one line of
//! `key=value` words in `data/ethos/stats` under the domain's home (`data/` is the
//! guest's to write, by xl's convention), e.g.
//! `uptime_ms=5120 created=212 completed=209 retired=207 wakes=80 switches=95 ...`.
//! `shadowdaemon status` reads and prints them.
//!
//! The guest writes every byte of it, so the line is hostile input: at most
//! [`MAX_LINE`] bytes and [`MAX_WORDS`] words, each `key=value` with a key of 1 to
//! [`MAX_KEY`] bytes of `[a-z0-9_]`, a decimal value that fits a `u64` (no sign, no
//! leading zero), one space between words and none around them, each key once.
//! Anything else is a named [`StatsError`]; nothing of a rejected line is kept.
//! Keys the parser does not know are kept as they are (a newer kernel may say
//! more): they passed the same checks, so printing them is safe.
//!
//! This file uses only `std`, so that the fuzz target can include it by path.

use std::fmt;

/// Where a guest publishes its figures, under its home (`/local/domain/<id>`).
pub const STATS_NODE: &str = "data/ethos/stats";
/// The longest line accepted, in bytes.
pub const MAX_LINE: usize = 1024;
/// The most words accepted.
pub const MAX_WORDS: usize = 64;
/// The longest key accepted, in bytes.
pub const MAX_KEY: usize = 32;

/// Why a line is not a set of figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsError {
    /// The line is empty.
    Empty,
    /// The line is longer than [`MAX_LINE`] (its length).
    TooLong(usize),
    /// The line has more than [`MAX_WORDS`] words.
    TooManyWords,
    /// A byte that is neither a key's, a digit, `=` nor a single space between
    /// words (its offset).
    BadByte(usize),
    /// A word (counted from 1) is not `key=value`.
    NotKeyValue(usize),
    /// A word's key is empty or longer than [`MAX_KEY`].
    BadKey(usize),
    /// A word's value is not a decimal `u64` without leading zeros.
    BadValue(usize),
    /// A word's key appeared before.
    DuplicateKey(usize),
}

impl StatsError {
    /// A short name for the error, for output that scripts read.
    pub fn code(&self) -> &'static str {
        match self {
            StatsError::Empty => "empty",
            StatsError::TooLong(_) => "too-long",
            StatsError::TooManyWords => "too-many-words",
            StatsError::BadByte(_) => "bad-byte",
            StatsError::NotKeyValue(_) => "not-key-value",
            StatsError::BadKey(_) => "bad-key",
            StatsError::BadValue(_) => "bad-value",
            StatsError::DuplicateKey(_) => "duplicate-key",
        }
    }
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::Empty => write!(f, "the line is empty"),
            StatsError::TooLong(n) => write!(f, "the line has {n} bytes (at most {MAX_LINE})"),
            StatsError::TooManyWords => write!(f, "the line has more than {MAX_WORDS} words"),
            StatsError::BadByte(at) => write!(f, "byte {at} has no place in a line of figures"),
            StatsError::NotKeyValue(w) => write!(f, "word {w} is not key=value"),
            StatsError::BadKey(w) => write!(f, "word {w}: the key is empty or too long"),
            StatsError::BadValue(w) => write!(f, "word {w}: the value is no decimal u64"),
            StatsError::DuplicateKey(w) => write!(f, "word {w}: the key came before"),
        }
    }
}

impl std::error::Error for StatsError {}

/// A guest's figures, in the order it wrote them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    words: Vec<(String, u64)>,
}

impl Figures {
    /// Parses a line as the guest wrote it (see the module documentation).
    pub fn parse(line: &[u8]) -> Result<Figures, StatsError> {
        if line.is_empty() {
            return Err(StatsError::Empty);
        }
        if line.len() > MAX_LINE {
            return Err(StatsError::TooLong(line.len()));
        }
        // Every byte first, so that what follows handles ASCII only; a space at
        // either end or next to another leaves an empty word, refused below.
        if let Some(at) = line
            .iter()
            .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"_= ".contains(&b)))
        {
            return Err(StatsError::BadByte(at));
        }
        let mut words = Vec::new();
        // Where the word starts.
        let mut offset = 0;
        for (i, word) in line.split(|&b| b == b' ').enumerate() {
            let n = i + 1;
            if n > MAX_WORDS {
                return Err(StatsError::TooManyWords);
            }
            if word.is_empty() {
                // A space too many: the one at the start, after another, or at
                // the end.
                return Err(StatsError::BadByte(offset.min(line.len() - 1)));
            }
            offset += word.len() + 1;
            let mut parts = word.splitn(2, |&b| b == b'=');
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                return Err(StatsError::NotKeyValue(n));
            };
            if key.is_empty() || key.len() > MAX_KEY {
                return Err(StatsError::BadKey(n));
            }
            let value = parse_decimal(value).ok_or(StatsError::BadValue(n))?;
            // Checked: lowercase, digits and `_` only.
            let key = String::from_utf8_lossy(key).into_owned();
            if words.iter().any(|(k, _)| *k == key) {
                return Err(StatsError::DuplicateKey(n));
            }
            words.push((key, value));
        }
        Ok(Figures { words })
    }

    /// The value of `key`, if the guest said it.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.words.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Every figure, in the order the guest wrote them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.words.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// Written again from the parsed values (never the guest's own bytes).
impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// A decimal `u64`: 1 to 20 digits, no leading zero but for `0` itself.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the core image's kernel writes (kernel/src/live_stats.rs tests the same
    /// line from the guest's side).
    const CORE_LINE: &str = "uptime_ms=12345 created=40 completed=39 retired=38 wakes=17 \
                             switches=21 frames_free=1900 frames_used=148 ballooned=0 \
                             rpc_sent=3 rpc_answered=2";

    #[test]
    fn reads_the_kernels_line() {
        let f = Figures::parse(CORE_LINE.as_bytes()).unwrap();
        assert_eq!(f.get("uptime_ms"), Some(12_345));
        assert_eq!(f.get("created"), Some(40));
        assert_eq!(f.get("ballooned"), Some(0));
        assert_eq!(f.get("rpc_answered"), Some(2));
        assert_eq!(f.get("net_rx"), None);
        assert_eq!(f.iter().count(), 11);
        // Printed again, it is the same line.
        assert_eq!(f.to_string(), CORE_LINE);
    }

    #[test]
    fn keeps_keys_it_does_not_know() {
        let f = Figures::parse(b"created=1 net_rx=9 future_thing=18446744073709551615").unwrap();
        assert_eq!(f.get("future_thing"), Some(u64::MAX));
        assert_eq!(
            f.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["created", "net_rx", "future_thing"]
        );
    }

    #[test]
    fn names_each_kind_of_junk() {
        let long = "a=1 ".repeat(300);
        let many: Vec<String> = (0..65).map(|i| format!("k{i}=1")).collect();
        let many = many.join(" ");
        let cases: &[(&[u8], StatsError)] = &[
            (b"", StatsError::Empty),
            (long.as_bytes(), StatsError::TooLong(long.len())),
            (many.as_bytes(), StatsError::TooManyWords),
            (b"created=1\n", StatsError::BadByte(9)),
            (b"Created=1", StatsError::BadByte(0)),
            (b"created=-1", StatsError::BadByte(8)),
            (b"created=1\x1b[2J", StatsError::BadByte(9)),
            (b"created=1\xff", StatsError::BadByte(9)),
            (b" created=1", StatsError::BadByte(0)),
            (b"created=1 ", StatsError::BadByte(9)),
            (b"created=1  wakes=2", StatsError::BadByte(10)),
            (b"created", StatsError::NotKeyValue(1)),
            (b"created=1 wakes", StatsError::NotKeyValue(2)),
            (b"=1", StatsError::BadKey(1)),
            (
                b"a_key_that_is_longer_than_the_32_bytes=1",
                StatsError::BadKey(1),
            ),
            (b"created==1", StatsError::BadValue(1)),
            (b"created=", StatsError::BadValue(1)),
            (b"created=01", StatsError::BadValue(1)),
            (b"created=18446744073709551616", StatsError::BadValue(1)),
            (b"created=1a", StatsError::BadValue(1)),
            (b"created=1 created=2", StatsError::DuplicateKey(2)),
        ];
        for (line, want) in cases {
            assert_eq!(
                Figures::parse(line),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(line)
            );
            assert!(!want.code().is_empty() && !want.to_string().is_empty());
        }
    }

    #[test]
    fn accepts_the_bounds_exactly() {
        let words: Vec<String> = (0..MAX_WORDS).map(|i| format!("k{i}=0")).collect();
        let f = Figures::parse(words.join(" ").as_bytes()).unwrap();
        assert_eq!(f.iter().count(), MAX_WORDS);
        // 18 words of 53 bytes and one of 52, a space between each: 1024 bytes.
        let key = |i: usize| format!("x{i:031}");
        let mut line: Vec<String> = (0..18)
            .map(|i| format!("{}=10000000000000000000", key(i)))
            .collect();
        line.push(format!("{}=1000000000000000000", key(18)));
        let line = line.join(" ");
        assert_eq!(line.len(), MAX_LINE);
        assert_eq!(Figures::parse(line.as_bytes()).unwrap().iter().count(), 19);
        let over = format!("{line}0");
        assert_eq!(
            Figures::parse(over.as_bytes()),
            Err(StatsError::TooLong(MAX_LINE + 1))
        );
        assert!(Figures::parse(format!("{}=0", "k".repeat(MAX_KEY)).as_bytes()).is_ok());
    }
}
