//! A program's arguments, as the kernel leaves them at
//! [`abi::ARGS_ADDRESS`]: an [`abi::Args`] record, then `len` bytes of
//! `argc` NUL-separated arguments (argument 0 is the program's name). A
//! trailing NUL after the last argument is accepted and not counted.

use core::str;

/// Why an argument record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `len` is over [`abi::MAX_ARGS_BYTES`], or more than the bytes given.
    TooLong,
    /// The bytes hold a different number of arguments than `argc` says.
    CountMismatch {
        /// What the record says.
        argc: u32,
        /// What the bytes hold.
        found: u32,
    },
    /// The reserved field is not zero.
    Reserved,
}

/// The program's arguments and pid, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args<'a> {
    pid: u32,
    argc: u32,
    bytes: &'a [u8],
}

impl<'a> Args<'a> {
    /// Checks `record` against the argument bytes that follow it (`bytes`
    /// may be longer than `record.len`: the rest of the page).
    pub fn parse(record: abi::Args, bytes: &'a [u8]) -> Result<Args<'a>, ArgsError> {
        let len = record.len as usize;
        if len > abi::MAX_ARGS_BYTES || len > bytes.len() {
            return Err(ArgsError::TooLong);
        }
        if record.reserved != 0 {
            return Err(ArgsError::Reserved);
        }
        let bytes = &bytes[..len];
        let count = |b: &[u8]| -> u32 {
            if record.argc == 0 && b.is_empty() {
                0
            } else {
                b.iter().filter(|&&c| c == 0).count() as u32 + 1
            }
        };
        // Separated ("a\0b") or terminated ("a\0b\0"): `argc` says which
        // when the last argument could be empty.
        let bytes = match bytes {
            _ if count(bytes) == record.argc => bytes,
            [rest @ .., 0] if count(rest) == record.argc => rest,
            _ => {
                return Err(ArgsError::CountMismatch {
                    argc: record.argc,
                    found: count(bytes),
                })
            }
        };
        Ok(Args {
            pid: record.pid,
            argc: record.argc,
            bytes,
        })
    }

    /// No arguments: what a program sees if its record was refused.
    pub const fn empty(pid: u32) -> Args<'static> {
        Args {
            pid,
            argc: 0,
            bytes: &[],
        }
    }

    /// The program's pid (as the kernel told it at start).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How many arguments, the name included.
    pub fn len(&self) -> usize {
        self.argc as usize
    }

    /// Whether there are none (not even a name).
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// The arguments as bytes, the name first.
    pub fn iter_bytes(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bytes = self.bytes;
        let n = self.argc as usize;
        bytes.split(|&b| b == 0).take(n)
    }

    /// The arguments as text (an argument that is not UTF-8 is skipped: use
    /// [`iter_bytes`](Args::iter_bytes) for those), the name first.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.iter_bytes().filter_map(|a| str::from_utf8(a).ok())
    }

    /// Argument `i` as text, if it exists and is UTF-8.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.iter_bytes()
            .nth(i)
            .and_then(|a| str::from_utf8(a).ok())
    }

    /// The program's name (argument 0), or "" if there is none.
    pub fn name(&self) -> &'a str {
        self.get(0).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn rec(argc: u32, len: u32) -> abi::Args {
        abi::Args {
            pid: 7,
            argc,
            len,
            reserved: 0,
        }
    }

    #[test]
    fn parses_separated_and_terminated_arguments() {
        let page = b"hello\0-v\0x\0garbage after";
        for len in [10, 11] {
            let a = Args::parse(rec(3, len), page).unwrap();
            assert_eq!(a.pid(), 7);
            assert_eq!(a.len(), 3);
            assert_eq!(a.name(), "hello");
            assert_eq!(a.iter().collect::<Vec<_>>(), ["hello", "-v", "x"]);
            assert_eq!(a.get(2), Some("x"));
            assert_eq!(a.get(3), None);
        }
    }

    #[test]
    fn empty_arguments_and_empty_strings() {
        let a = Args::parse(rec(0, 0), b"").unwrap();
        assert!(a.is_empty());
        assert_eq!(a.name(), "");
        assert_eq!(a.iter().count(), 0);
        // One empty argument, and empty arguments between others.
        assert_eq!(Args::parse(rec(1, 0), b"").unwrap().get(0), Some(""));
        // "a\0\0": two arguments terminated, or three separated.
        let a = Args::parse(rec(2, 3), b"a\0\0b").unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), ["a", ""]);
        let a = Args::parse(rec(3, 3), b"a\0\0b").unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), ["a", "", ""]);
        let a = Args::parse(rec(3, 4), b"a\0\0b").unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), ["a", "", "b"]);
    }

    #[test]
    fn refuses_bad_records() {
        assert_eq!(Args::parse(rec(1, 9), b"short"), Err(ArgsError::TooLong));
        let big = [b'a'; abi::MAX_ARGS_BYTES + 1];
        let len = big.len() as u32;
        assert_eq!(Args::parse(rec(1, len), &big), Err(ArgsError::TooLong));
        assert_eq!(
            Args::parse(rec(1, 3), b"a\0b"),
            Err(ArgsError::CountMismatch { argc: 1, found: 2 })
        );
        assert_eq!(
            Args::parse(rec(0, 1), b"a"),
            Err(ArgsError::CountMismatch { argc: 0, found: 1 })
        );
        let mut r = rec(1, 1);
        r.reserved = 1;
        assert_eq!(Args::parse(r, b"a"), Err(ArgsError::Reserved));
    }

    #[test]
    fn non_utf8_arguments_are_bytes_only() {
        let a = Args::parse(rec(2, 4), b"a\0\xff\xfe").unwrap();
        assert_eq!(a.get(1), None);
        assert_eq!(a.iter_bytes().nth(1), Some(&b"\xff\xfe"[..]));
        assert_eq!(a.iter().count(), 1);
    }
}
