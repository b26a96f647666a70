//! The cpio newc reader: listing, lookups, every named error, archives from the real
//! `cpio`, and properties over arbitrary and mutated archives.

mod common;

use common::build::{nul, Cpio, Fields, MODE_DIR, MODE_FILE, MODE_LINK};
use loader::archive::MAX_NAME;
use loader::{entries, find, ArchiveError, Entry, Kind};
use proptest::prelude::*;

fn sample() -> Vec<u8> {
    Cpio::new()
        .entry(".", MODE_DIR, b"")
        .entry("./bin", MODE_DIR, b"")
        .file("./bin/init", b"\x7fELF init")
        .file("./hello", b"hello")
        .entry("./sh", MODE_LINK, b"bin/init")
        .finish()
}

fn list(archive: &[u8]) -> Vec<Result<Entry<'_>, ArchiveError>> {
    entries(archive).collect()
}

#[test]
fn lists_every_entry_with_name_mode_and_data() {
    let a = sample();
    let got: Vec<_> = entries(&a)
        .map(|e| {
            let e = e.unwrap();
            (e.name, e.mode, e.data, e.kind())
        })
        .collect();
    let want: Vec<(&[u8], u32, &[u8], Kind)> = vec![
        (b".", MODE_DIR, b"", Kind::Dir),
        (b"./bin", MODE_DIR, b"", Kind::Dir),
        (b"./bin/init", MODE_FILE, b"\x7fELF init", Kind::File),
        (b"./hello", MODE_FILE, b"hello", Kind::File),
        (b"./sh", MODE_LINK, b"bin/init", Kind::Symlink),
    ];
    assert_eq!(got, want);
    let first = entries(&a).next().unwrap().unwrap();
    assert_eq!(first.offset, 0);
    assert_eq!(first.path(), b"");
}

#[test]
fn finds_with_or_without_leading_dot_slash() {
    let a = sample();
    assert_eq!(find(&a, "bin/init"), Ok(&b"\x7fELF init"[..]));
    assert_eq!(find(&a, "./bin/init"), Ok(&b"\x7fELF init"[..]));
    assert_eq!(find(&a, "/bin/init"), Ok(&b"\x7fELF init"[..]));
    assert_eq!(find(&a, "hello"), Ok(&b"hello"[..]));
    // Stored without "./", asked with it.
    let b = Cpio::new().file("init", b"x").finish();
    assert_eq!(find(&b, "./init"), Ok(&b"x"[..]));
    assert_eq!(find(&b, "init"), Ok(&b"x"[..]));
}

#[test]
fn empty_files_are_found_empty() {
    let a = Cpio::new().file("empty", b"").finish();
    assert_eq!(find(&a, "empty"), Ok(&b""[..]));
}

#[test]
fn not_found() {
    let a = sample();
    assert_eq!(find(&a, "nope"), Err(ArchiveError::NotFound));
    assert_eq!(find(&a, "bin/ini"), Err(ArchiveError::NotFound));
    assert_eq!(find(&a, ""), Err(ArchiveError::NotFound));
    assert_eq!(find(&a, "."), Err(ArchiveError::NotFound));
    assert_eq!(find(&a, "./"), Err(ArchiveError::NotFound));
}

#[test]
fn only_regular_files_are_programs() {
    let a = sample();
    assert!(matches!(
        find(&a, "bin"),
        Err(ArchiveError::NotAFile { .. })
    ));
    assert!(matches!(find(&a, "sh"), Err(ArchiveError::NotAFile { .. })));
    let dev = Cpio::new().entry("null", 0o020_666, b"").finish();
    assert_eq!(find(&dev, "null"), Err(ArchiveError::NotAFile { at: 0 }));
    assert_eq!(entries(&dev).next().unwrap().unwrap().kind(), Kind::Other);
}

#[test]
fn duplicate_names_are_refused() {
    let a = Cpio::new()
        .file("./init", b"one")
        .file("init", b"two")
        .finish();
    let second = entries(&a).nth(1).unwrap().unwrap().offset;
    assert_eq!(
        find(&a, "init"),
        Err(ArchiveError::DuplicateName { at: second })
    );
}

#[test]
fn hard_links_take_the_data_of_the_link_that_has_it() {
    // newc writes a hard-linked file's data once, with its last link.
    let link = |name: &str, data: &[u8]| Fields {
        ino: 42,
        mode: MODE_FILE,
        nlink: 2,
        filesize: data.len() as u32,
        namesize: name.len() as u32 + 1,
        ..Fields::default()
    };
    let a = Cpio::new()
        .raw(b"070701", &link("a", b""), &nul("a"), b"")
        .file("other", b"zz")
        .raw(b"070701", &link("b", b"data"), &nul("b"), b"data")
        .finish();
    assert_eq!(find(&a, "a"), Ok(&b"data"[..]));
    assert_eq!(find(&a, "b"), Ok(&b"data"[..]));
}

#[test]
fn stops_at_the_trailer() {
    let mut a = Cpio::new().file("a", b"1").finish();
    // GNU cpio pads to 512-byte blocks; garbage after the trailer is not read either.
    a.resize(512, 0);
    a.extend_from_slice(b"garbage that is not a header");
    assert_eq!(list(&a).len(), 1);
    assert_eq!(find(&a, "a"), Ok(&b"1"[..]));
}

#[test]
fn uppercase_hex_is_accepted() {
    let a = Cpio::new().file("abc", b"0123456789abcdef").finish();
    let upper: Vec<u8> = a[..110]
        .iter()
        .map(u8::to_ascii_uppercase)
        .chain(a[110..].iter().copied())
        .collect();
    assert_eq!(find(&upper, "abc"), Ok(&b"0123456789abcdef"[..]));
}

#[test]
fn crc_format_checks_the_data_sum() {
    let data = b"\xff\xfe\x01";
    let f = |check| Fields {
        mode: MODE_FILE,
        nlink: 1,
        filesize: 3,
        namesize: 2,
        check,
        ..Fields::default()
    };
    let good = Cpio::new()
        .raw(b"070702", &f(0xff + 0xfe + 1), &nul("p"), data)
        .finish();
    assert_eq!(find(&good, "p"), Ok(&data[..]));
    let bad = Cpio::new().raw(b"070702", &f(7), &nul("p"), data).finish();
    assert_eq!(find(&bad, "p"), Err(ArchiveError::BadChecksum { at: 0 }));
    // 070701 ignores the field.
    let plain = Cpio::new().raw(b"070701", &f(7), &nul("p"), data).finish();
    assert_eq!(find(&plain, "p"), Ok(&data[..]));
}

#[test]
fn bad_magic() {
    let mut a = sample();
    a[..6].copy_from_slice(b"070707"); // odc, not newc
    assert_eq!(find(&a, "hello"), Err(ArchiveError::BadMagic { at: 0 }));
    let gzip = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
    let mut g = gzip.to_vec();
    g.resize(200, 0);
    assert_eq!(find(&g, "x"), Err(ArchiveError::BadMagic { at: 0 }));
}

#[test]
fn bad_hex_in_every_field() {
    let a = sample();
    for field in 0..13 {
        for bad in [b'g', b' ', b'-', b'x', 0] {
            let mut b = a.clone();
            b[6 + field * 8 + 3] = bad;
            assert_eq!(
                find(&b, "hello"),
                Err(ArchiveError::BadHex { at: 0 }),
                "field {field}, byte {bad}"
            );
        }
    }
}

#[test]
fn truncated_anywhere() {
    let a = Cpio::new().file("name", b"0123456789").finish();
    let trailer_at = entries(&a).count(); // 1 entry
    assert_eq!(trailer_at, 1);
    // Cut inside the first header, its name, or its data: Truncated at 0.
    let data_end = 116 + 10; // header, "name\0" (110 + 5, padded to 116), data
    for cut in 1..data_end {
        assert_eq!(
            find(&a[..cut], "name"),
            Err(ArchiveError::Truncated { at: 0 }),
            "cut at {cut}"
        );
    }
    // Cut after the data, in its padding or just before the trailer: no trailer.
    let trailer = 128;
    for cut in data_end..=trailer {
        assert_eq!(
            find(&a[..cut], "name"),
            Err(ArchiveError::NoTrailer { at: trailer }),
            "cut at {cut}"
        );
    }
    // Cut inside the trailer's header: Truncated at the trailer.
    for cut in trailer + 1..trailer + 110 {
        assert_eq!(
            find(&a[..cut], "name"),
            Err(ArchiveError::Truncated { at: trailer }),
            "cut at {cut}"
        );
    }
}

#[test]
fn a_file_size_past_the_end_is_truncated_not_a_wrap() {
    let f = Fields {
        mode: MODE_FILE,
        filesize: u32::MAX,
        namesize: 2,
        ..Fields::default()
    };
    let a = Cpio::new().raw(b"070701", &f, &nul("p"), b"abc").finish();
    assert_eq!(find(&a, "p"), Err(ArchiveError::Truncated { at: 0 }));
}

#[test]
fn no_trailer() {
    assert_eq!(find(&[], "x"), Err(ArchiveError::NoTrailer { at: 0 }));
    assert_eq!(list(&[]), vec![Err(ArchiveError::NoTrailer { at: 0 })]);
    let a = Cpio::new().file("a", b"1").buf;
    assert_eq!(find(&a, "a"), Err(ArchiveError::NoTrailer { at: a.len() }));
    // The last data's padding is missing too.
    let b = Cpio::new().file("a", b"1").buf;
    let cut = &b[..b.len() - 3];
    assert_eq!(find(cut, "a"), Err(ArchiveError::NoTrailer { at: b.len() }));
}

#[test]
fn bad_names() {
    let f = |namesize| Fields {
        mode: MODE_FILE,
        namesize,
        ..Fields::default()
    };
    // Size 0: not even a NUL.
    let zero = Cpio::new().raw(b"070701", &f(0), b"", b"").finish();
    assert_eq!(find(&zero, "a"), Err(ArchiveError::BadName { at: 0 }));
    // Last byte is not NUL.
    let unterminated = Cpio::new().raw(b"070701", &f(3), b"abc", b"").finish();
    assert_eq!(
        find(&unterminated, "a"),
        Err(ArchiveError::BadName { at: 0 })
    );
    // A NUL inside the name.
    let inner = Cpio::new().raw(b"070701", &f(4), b"a\0b\0", b"").finish();
    assert_eq!(find(&inner, "a"), Err(ArchiveError::BadName { at: 0 }));
}

#[test]
fn name_too_long() {
    let long = "n".repeat(MAX_NAME);
    let a = Cpio::new().file(&long, b"x").finish();
    assert_eq!(find(&a, "x"), Err(ArchiveError::NameTooLong { at: 0 }));
    let ok = "n".repeat(MAX_NAME - 1);
    let b = Cpio::new().file(&ok, b"x").finish();
    assert_eq!(find(&b, &ok), Ok(&b"x"[..]));
    // A huge size is refused before it is used.
    let f = Fields {
        namesize: u32::MAX,
        ..Fields::default()
    };
    let c = Cpio::new().raw(b"070701", &f, b"a\0", b"").finish();
    assert_eq!(find(&c, "a"), Err(ArchiveError::NameTooLong { at: 0 }));
}

#[test]
fn damage_after_the_wanted_entry_is_still_refused() {
    let mut a = Cpio::new()
        .file("first", b"1")
        .file("second", b"2")
        .finish();
    let second = entries(&a).nth(1).unwrap().unwrap().offset;
    a[second] = b'X';
    assert_eq!(
        find(&a, "first"),
        Err(ArchiveError::BadMagic { at: second })
    );
    // A listing shows what came before the damage, then the error, then nothing.
    let l = list(&a);
    assert_eq!(l.len(), 2);
    assert!(l[0].is_ok());
    assert_eq!(l[1], Err(ArchiveError::BadMagic { at: second }));
}

#[test]
fn errors_display_their_name_and_offset() {
    assert_eq!(
        ArchiveError::Truncated { at: 12 }.to_string(),
        "cpio: entry at 12 truncated"
    );
    assert_eq!(ArchiveError::NotFound.to_string(), "cpio: not found");
}

/// Builds an archive with the system's `cpio -o -H newc` from two files (one in a
/// directory) and finds both. Skipped, saying so, where `cpio` is not installed.
#[test]
fn real_cpio_archive() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    if Command::new("cpio").arg("--version").output().is_err() {
        eprintln!("SKIPPED real_cpio_archive: no `cpio` command on this machine");
        return;
    }
    let dir = std::env::temp_dir().join(format!("loader-cpio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let init: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(dir.join("bin/init"), &init).unwrap();
    std::fs::write(dir.join("hello"), b"hi there").unwrap();

    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b".\n./bin\n./bin/init\n./hello\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success());
    let a = out.stdout;
    assert_eq!(a.len() % 512, 0, "cpio pads to blocks");

    assert_eq!(find(&a, "bin/init"), Ok(&init[..]));
    assert_eq!(find(&a, "./hello"), Ok(&b"hi there"[..]));
    assert!(matches!(
        find(&a, "bin"),
        Err(ArchiveError::NotAFile { .. })
    ));
    let names: Vec<_> = entries(&a).map(|e| e.unwrap().name.to_vec()).collect();
    // GNU cpio drops the leading "./" it was given; lookups work either way.
    assert_eq!(names, [&b"."[..], b"bin", b"bin/init", b"hello"]);
    assert_eq!(find(&a, "./bin/init"), Ok(&init[..]));
}

/// `inner` lies inside `outer` (so names and data borrow the archive, nothing else).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}

/// Walks the archive checking what a walk promises: bounded steps, entries in order
/// and inside the archive, at most one error and nothing after it.
fn walk_checked(a: &[u8]) {
    let mut steps = 0;
    let mut last = None;
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
                assert!(last.is_none_or(|l| e.offset > l));
                assert_eq!(e.offset % 4, 0);
                last = Some(e.offset);
                assert!(within(a, e.name) && within(a, e.data));
                if e.is_file() && !e.path().is_empty() {
                    if let Ok(name) = core::str::from_utf8(e.path()) {
                        let found = find(a, name);
                        assert!(found.is_err() || within(a, found.unwrap()), "{found:?}");
                    }
                }
            }
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..600)) {
        walk_checked(&a);
        let _ = find(&a, "init");
    }

    #[test]
    fn mutated_archives_give_entries_or_a_named_error(
        patches in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut a = sample();
        for (i, b) in &patches {
            let at = i.index(a.len());
            a[at] = *b;
        }
        let end = if do_cut { cut.index(a.len() + 1) } else { a.len() };
        walk_checked(&a[..end]);
    }

    #[test]
    fn every_file_written_is_found(
        files in proptest::collection::btree_map("[a-z]{1,12}", proptest::collection::vec(any::<u8>(), 0..300), 1..8),
        dot_slash in any::<bool>(),
    ) {
        let mut c = Cpio::new();
        for (name, data) in &files {
            let stored = if dot_slash { format!("./{name}") } else { name.clone() };
            c = c.file(&stored, data);
        }
        let a = c.finish();
        for (name, data) in &files {
            prop_assert_eq!(find(&a, name), Ok(&data[..]));
            let other = format!("./{name}");
            prop_assert_eq!(find(&a, &other), Ok(&data[..]));
        }
        prop_assert_eq!(entries(&a).count(), files.len());
    }
}
