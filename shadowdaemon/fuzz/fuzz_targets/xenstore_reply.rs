//! xenstored (or whatever answers on its socket) writes every byte the client
//! reads: arbitrary bytes are the whole of the transport's input, and the client
//! makes a fuzzer-chosen sequence of calls over it (reads, directories,
//! permission lists, domain checks, watches).
//!
//! Asserts: no panic; whatever a call returns is well formed (values within the
//! payload limit, names non-empty without `/` or NUL, error names short and
//! `[A-Z0-9]`); once a call reports the client broken, every later call reports
//! the same reason and no queued event comes out any more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{self, Read, Write};

#[path = "../../src/xen/xenstore.rs"]
mod xenstore;

use xenstore::{parse_u32_decimal, BrokenReason, Xenstore, XsError, PAYLOAD_MAX};

/// The far end: hands out the input at most `chunk` bytes per read (as a socket
/// may) and swallows the requests.
struct Replay<'a> {
    input: &'a [u8],
    chunk: usize,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.input.len()).min(self.chunk);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn check_name(name: &str) {
    assert!(!name.is_empty() && !name.contains('\0'), "{name:?}");
}

fuzz_target!(|data: &[u8]| {
    // Three bytes choose eight calls (three bits each), one the read size.
    let [a, b, c, chunk, input @ ..] = data else {
        return;
    };
    let ops = u32::from_le_bytes([*a, *b, *c, 0]);
    let mut xs = Xenstore::new(Replay {
        input,
        chunk: usize::from(*chunk) + 1,
    });
    let mut broken: Option<BrokenReason> = None;
    for turn in 0..8 {
        let result: Result<(), XsError> = match (ops >> (3 * turn)) & 7 {
            0 => xs.read("/local/domain/1/name").map(|value| {
                assert!(value.is_none_or(|v| v.len() <= PAYLOAD_MAX));
            }),
            1 if turn % 2 == 0 => xs.read("/local/domain/1/data/ring-ref").map(|value| {
                if let Some(n) = value.as_deref().and_then(parse_u32_decimal) {
                    assert_eq!(parse_u32_decimal(n.to_string().as_bytes()), Some(n));
                }
            }),
            // On odd turns: the permission list that decides whether a name is trusted.
            1 => xs.get_perms("/local/domain/1/name").map(|perms| {
                if let Some(perms) = perms {
                    assert!(perms.owner().is_some(), "an empty permission list");
                    // The owner may always write.
                    assert!(perms.owner().is_some_and(|o| perms.writable_by(o)));
                }
            }),
            2 => xs.directory("/local/domain").map(|names| {
                for name in names.iter().flatten() {
                    check_name(name);
                    assert!(!name.contains('/'), "{name:?}");
                }
            }),
            3 => xs.is_domain_introduced(1).map(drop),
            4 => xs.watch("@introduceDomain", "guests"),
            5 => xs.unwatch("@introduceDomain", "guests"),
            6 => xs.next_watch_event().map(|event| {
                check_name(&event.path);
                check_name(&event.token);
            }),
            _ => {
                let queued = xs.take_queued_event();
                assert!(broken.is_none() || queued.is_none());
                continue;
            }
        };
        match (broken, result) {
            (Some(reason), Err(XsError::Broken(again))) => assert_eq!(reason, again),
            (Some(reason), other) => panic!("broken by {reason:?}, then {other:?}"),
            (None, Err(XsError::Broken(reason))) => broken = Some(reason),
            (None, Err(XsError::Remote(name))) => {
                assert!((1..=16).contains(&name.len()), "{name:?}");
                assert!(name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
            }
            // The replay never fails (its end is `Closed`) and the arguments are valid.
            (None, Err(other)) => panic!("unexpected {other:?}"),
            (None, Ok(())) => {}
        }
    }
});
