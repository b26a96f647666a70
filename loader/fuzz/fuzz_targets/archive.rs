//! Arbitrary bytes into the cpio walk and lookups: either as the archive itself, or as
//! patches to a valid archive (so the fuzzer starts deep inside well-formed entries
//! without needing a corpus).
//!
//! Asserts: no panic; the walk takes at most one step per header the input could hold,
//! in increasing offsets, 4-aligned; names and data borrow from the archive; at most one
//! error, and nothing after it; `find` of a listed regular file returns bytes of the
//! archive or a named error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::{entries, find};

#[allow(dead_code)]
#[path = "../../tests/common/build.rs"]
mod build;

use build::{Cpio, MODE_DIR, MODE_LINK};

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}

fn check(a: &[u8]) {
    let mut steps = 0usize;
    let mut last: Option<usize> = None;
    let mut errors = 0;
    for e in entries(a) {
        steps += 1;
        assert!(
            steps <= a.len() / 110 + 1,
            "walk longer than the input allows"
        );
        match e {
            Ok(e) => {
                assert_eq!(errors, 0, "entry after an error");
                assert!(last.is_none_or(|l| e.offset > l), "offsets go backwards");
                assert_eq!(e.offset % 4, 0);
                last = Some(e.offset);
                assert!(within(a, e.name) && within(a, e.data));
                if let Ok(name) = core::str::from_utf8(e.path()) {
                    if let Ok(data) = find(a, name) {
                        assert!(within(a, data));
                    }
                }
            }
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1);
    for name in ["init", "./bin/init", "", "."] {
        if let Ok(data) = find(a, name) {
            assert!(within(a, data));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check(rest);
        return;
    }
    let mut a = Cpio::new()
        .entry(".", MODE_DIR, b"")
        .file("./bin/init", b"\x7fELF....")
        .file("hello", b"hello world")
        .entry("./sh", MODE_LINK, b"bin/init")
        .finish();
    // Three bytes per patch: a 16-bit offset and the byte to put there.
    for p in rest.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % a.len();
        a[at] = p[2];
    }
    let keep = if mode & 2 != 0 {
        usize::from(mode >> 2) * a.len() / 64
    } else {
        a.len()
    };
    check(&a[..keep.min(a.len())]);
});
