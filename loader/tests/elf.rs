//! `elf::plan`: a valid static program, every named error from a hand-built image, a
//! real program linked by the system's toolchain, and properties: mutated images give a
//! named error or a plan that keeps every invariant, and random program headers are
//! accepted exactly when a naive judge (u128 arithmetic, no shortcuts) accepts them.

mod common;

use common::build::*;
use common::invariants;
use loader::{plan, ElfError, Flags, Limits, LoadPlan, Segment, MAX_SEGMENTS, PAGE_SIZE};
use proptest::prelude::*;

fn plan_of(elf: &Elf) -> Result<LoadPlan, ElfError> {
    plan(&elf.build(), USER, Limits::default())
}

/// The example with one change made to it.
fn with(f: impl FnOnce(&mut Elf)) -> Result<LoadPlan, ElfError> {
    let mut elf = Elf::example();
    f(&mut elf);
    plan_of(&elf)
}

/// The example image with one change made to its bytes.
fn poke(f: impl FnOnce(&mut Vec<u8>)) -> Result<LoadPlan, ElfError> {
    let mut img = Elf::example().build();
    f(&mut img);
    plan(&img, USER, Limits::default())
}

const RX: Flags = Flags {
    readable: true,
    writable: false,
    executable: true,
};
const R: Flags = Flags {
    readable: true,
    writable: false,
    executable: false,
};
const RW: Flags = Flags {
    readable: true,
    writable: true,
    executable: false,
};

#[test]
fn the_example_program_plans() {
    let elf = Elf::example();
    let img = elf.build();
    let p = plan(&img, USER, Limits::default()).unwrap();
    assert_eq!(p.entry(), 0x40_1010);
    assert_eq!(
        p.segments(),
        [
            Segment {
                vaddr: 0x40_1000,
                memsz: 0x180,
                file_offset: 0x1000,
                filesz: 0x180,
                flags: RX
            },
            Segment {
                vaddr: 0x40_2000,
                memsz: 0x80,
                file_offset: 0x2000,
                filesz: 0x80,
                flags: R
            },
            Segment {
                vaddr: 0x40_3010,
                memsz: 0x1ff0,
                file_offset: 0x3010,
                filesz: 0x40,
                flags: RW
            },
        ]
    );
    let data = p.segments()[2];
    assert_eq!(data.pages(), 0x40_3000..0x40_5000);
    assert_eq!(data.page_count(), 2);
    assert_eq!(data.file_range(), 0x3010..0x3050);
    assert_eq!(p.pages_needed(), 4);
    invariants::check(&p, img.len(), &USER, Limits::default()).unwrap();
}

/// What the kernel would build from the plan, page by page, is the file's bytes where
/// the file has them and zero everywhere else (the data page's bss part included, though
/// the image goes on past `filesz` there).
#[test]
fn page_fills_rebuild_memory_exactly() {
    let img = Elf::example().build();
    let p = plan(&img, USER, Limits::default()).unwrap();
    for s in p.segments() {
        for fill in s.page_fills() {
            let mut page = [0u8; PAGE_SIZE as usize];
            page[fill.offset_in_page..fill.offset_in_page + fill.src.len()]
                .copy_from_slice(&img[fill.src.clone()]);
            for (i, &byte) in page.iter().enumerate() {
                let addr = fill.page + i as u64;
                let want = if addr >= s.vaddr && addr < s.vaddr + s.filesz {
                    img[(s.file_offset + (addr - s.vaddr)) as usize]
                } else {
                    0
                };
                assert_eq!(byte, want, "at {addr:#x}");
            }
        }
    }
    // The data segment's tail page: 0x40 file bytes at 0x10, the rest zero although the
    // image has bytes there.
    let fills: Vec<_> = p.segments()[2].page_fills().collect();
    assert_eq!(fills.len(), 2);
    assert_eq!(
        (fills[0].offset_in_page, fills[0].src.clone()),
        (0x10, 0x3010..0x3050)
    );
    assert!(fills[1].src.is_empty());
}

#[test]
fn harmless_headers_are_ignored() {
    for p_type in [
        PT_NULL,
        PT_NOTE,
        PT_PHDR,
        PT_GNU_EH_FRAME,
        PT_GNU_RELRO,
        PT_GNU_PROPERTY,
        0x6fff_ffff,
        0x7000_0001,
        8,
    ] {
        let p = with(|e| e.phs.insert(1, Ph::other(p_type, PF_R | PF_W | PF_X)));
        assert_eq!(p.map(|p| p.segments().len()), Ok(3), "p_type {p_type:#x}");
    }
    // No PT_GNU_STACK at all is fine too.
    assert!(with(|e| {
        e.phs.pop();
    })
    .is_ok());
}

#[test]
fn gnu_osabi_and_execute_only_text_are_accepted() {
    assert!(poke(|i| i[off::OSABI] = 3).is_ok());
    let p = with(|e| e.phs[0].flags = PF_X).unwrap();
    assert_eq!(
        p.segments()[0].flags,
        Flags {
            readable: false,
            writable: false,
            executable: true
        }
    );
}

#[test]
fn empty_load_segments_map_nothing() {
    let p = with(|e| {
        // Even one that would be W+X and outside the user range: it maps nothing.
        e.phs.insert(0, Ph::load(PF_W | PF_X, 0, 0, 0, 0));
    })
    .unwrap();
    assert_eq!(p.segments().len(), 3);
    let none = with(|e| {
        for ph in &mut e.phs {
            ph.filesz = 0;
            ph.memsz = 0;
        }
    });
    assert_eq!(none, Err(ElfError::NoLoadSegments));
}

#[test]
fn header_identity_errors() {
    assert_eq!(plan(&[], USER, Limits::default()), Err(ElfError::Truncated));
    let img = Elf::example().build();
    assert_eq!(
        plan(&img[..63], USER, Limits::default()),
        Err(ElfError::Truncated)
    );
    assert_eq!(poke(|i| i[0] = 0), Err(ElfError::BadMagic));
    assert_eq!(poke(|i| i[3] = b'f'), Err(ElfError::BadMagic));
    assert_eq!(poke(|i| i[off::CLASS] = 1), Err(ElfError::NotElf64));
    assert_eq!(poke(|i| i[off::DATA] = 2), Err(ElfError::NotLittleEndian));
    assert_eq!(poke(|i| i[off::VERSION] = 0), Err(ElfError::BadVersion));
    assert_eq!(
        poke(|i| put32(i, off::E_VERSION, 2)),
        Err(ElfError::BadVersion)
    );
    assert_eq!(
        poke(|i| i[off::OSABI] = 9),
        Err(ElfError::BadOsAbi { osabi: 9 })
    );
    for e_type in [0, 1, 3, 4, 0xfe00] {
        assert_eq!(
            poke(|i| put16(i, off::TYPE, e_type)),
            Err(ElfError::NotExecutable { e_type }),
        );
    }
    assert_eq!(
        poke(|i| put16(i, off::MACHINE, 3)),
        Err(ElfError::WrongMachine { machine: 3 })
    );
    assert_eq!(
        poke(|i| put16(i, off::EHSIZE, 52)),
        Err(ElfError::BadHeaderSize)
    );
    assert_eq!(
        poke(|i| put16(i, off::PHENTSIZE, 32)),
        Err(ElfError::BadPhentsize { phentsize: 32 })
    );
    assert_eq!(
        poke(|i| put16(i, off::PHNUM, 0xffff)),
        Err(ElfError::ExtendedPhnum)
    );
}

#[test]
fn program_header_table_out_of_bounds() {
    let elf = Elf::example();
    let img = elf.build();
    let table_end = 64 + 56 * elf.phs.len();
    // Image cut inside the table.
    assert_eq!(
        plan(&img[..table_end - 1], USER, Limits::default()),
        Err(ElfError::TruncatedPhdrs)
    );
    // Table placed past the end, or so far that phoff + size overflows.
    for phoff in [
        img.len() as u64,
        img.len() as u64 - 55,
        u64::MAX - 100,
        u64::MAX,
    ] {
        assert_eq!(
            poke(|i| put64(i, off::PHOFF, phoff)),
            Err(ElfError::TruncatedPhdrs),
            "phoff {phoff:#x}"
        );
    }
    // More headers claimed than the image holds.
    assert_eq!(
        poke(|i| put16(i, off::PHNUM, 0xfffe)),
        Err(ElfError::TruncatedPhdrs)
    );
    // No headers at all.
    assert_eq!(
        poke(|i| put16(i, off::PHNUM, 0)),
        Err(ElfError::NoLoadSegments)
    );
}

#[test]
fn dynamic_programs_are_refused() {
    for p_type in [PT_INTERP, PT_DYNAMIC] {
        assert_eq!(
            with(|e| e.phs.push(Ph::other(p_type, PF_R))),
            Err(ElfError::NotStatic)
        );
    }
}

#[test]
fn tls_exec_stack_and_shlib_are_refused() {
    assert_eq!(
        with(|e| e.phs.push(Ph::other(PT_TLS, PF_R))),
        Err(ElfError::Tls)
    );
    assert_eq!(
        with(|e| e.phs[3].flags = PF_R | PF_W | PF_X),
        Err(ElfError::ExecutableStack)
    );
    assert_eq!(
        with(|e| e.phs.push(Ph::other(PT_SHLIB, 0))),
        Err(ElfError::UnsupportedSegment { p_type: PT_SHLIB })
    );
}

#[test]
fn too_many_segments() {
    let many = |n: u64| {
        let mut e = Elf::example();
        e.phs.truncate(1);
        for k in 1..n {
            e.phs
                .push(Ph::load(PF_R, 0x50_0000 + k * 0x1000, 0x2000, 0x10, 0x10));
        }
        e
    };
    let img = many(MAX_SEGMENTS as u64).build();
    assert_eq!(
        plan(&img, USER, Limits::default()).map(|p| p.segments().len()),
        Ok(MAX_SEGMENTS)
    );
    let img = many(MAX_SEGMENTS as u64 + 1).build();
    assert_eq!(
        plan(&img, USER, Limits::default()),
        Err(ElfError::TooManySegments)
    );
    // A higher limit than the plan can hold counts as the plan's capacity.
    let big = Limits {
        max_segments: 100,
        ..Limits::default()
    };
    assert_eq!(plan(&img, USER, big), Err(ElfError::TooManySegments));
    // A lower limit is honoured.
    let two = Limits {
        max_segments: 2,
        ..Limits::default()
    };
    assert_eq!(
        plan(&Elf::example().build(), USER, two),
        Err(ElfError::TooManySegments)
    );
}

#[test]
fn too_large() {
    let img = Elf::example().build();
    // Four pages needed: exactly enough is enough, a byte less is not.
    let limit = |max_bytes| Limits {
        max_bytes,
        ..Limits::default()
    };
    assert!(plan(&img, USER, limit(4 * PAGE_SIZE)).is_ok());
    assert_eq!(
        plan(&img, USER, limit(4 * PAGE_SIZE - 1)),
        Err(ElfError::TooLarge)
    );
    // A huge bss within the user range.
    assert_eq!(with(|e| e.phs[2].memsz = 1 << 40), Err(ElfError::TooLarge));
}

#[test]
fn sizes_and_file_ranges() {
    assert_eq!(
        with(|e| e.phs[1].filesz = 0x81),
        Err(ElfError::FileSizeOverMemSize { index: 1 })
    );
    // The file range ends one byte past the image.
    assert_eq!(
        with(|e| {
            e.phs[2].filesz = 0x41;
            e.phs[2].memsz = 0x41;
        }),
        Err(ElfError::FileRangeOutOfBounds { index: 2 })
    );
    // Ends exactly at the end: fine.
    assert!(with(|e| e.phs[2].filesz = 0x40).is_ok());
    // offset + filesz overflows.
    assert_eq!(
        with(|e| {
            e.phs[1].offset = u64::MAX - 0x10 + 0x1;
            e.phs[1].vaddr = 0x40_2000 + (e.phs[1].offset % PAGE_SIZE);
            e.phs[1].filesz = 0x20;
            e.phs[1].memsz = 0x20;
        }),
        Err(ElfError::FileRangeOutOfBounds { index: 1 })
    );
}

#[test]
fn address_overflow() {
    // vaddr + memsz overflows.
    assert_eq!(
        with(|e| e.phs[2].vaddr = u64::MAX - 0x10),
        Err(ElfError::AddressOverflow { index: 2 })
    );
    // vaddr + memsz fits, rounding it up to a page does not.
    assert_eq!(
        with(|e| e.phs[1].vaddr = u64::MAX - 0x80 - 0xfff + 1),
        Err(ElfError::AddressOverflow { index: 1 })
    );
}

#[test]
fn segments_must_lie_in_the_user_range() {
    // Below: page 0 is not in USER.
    assert_eq!(
        with(|e| e.phs[1].vaddr = 0),
        Err(ElfError::OutsideUser { index: 1 })
    );
    // Above: the kernel half.
    assert_eq!(
        with(|e| e.phs[1].vaddr = 0xffff_8000_0000_0000),
        Err(ElfError::OutsideUser { index: 1 })
    );
    // Straddling the end, and ending on it exactly.
    let user = 0x40_0000..0x40_4000;
    let img = Elf::example().build();
    assert_eq!(
        plan(&img, user.clone(), Limits::default()),
        Err(ElfError::OutsideUser { index: 2 })
    );
    assert!(plan(&img, 0x40_1000..0x40_5000, Limits::default()).is_ok());
    // Starting in the page below the range's start is outside, even if vaddr rounds into it.
    assert_eq!(
        plan(&img, 0x40_2000..0x40_5000, Limits::default()),
        Err(ElfError::OutsideUser { index: 0 })
    );
}

#[test]
#[allow(clippy::reversed_empty_ranges)] // an empty range is the point
fn bad_user_ranges() {
    let img = Elf::example().build();
    for user in [
        0x1000..0x1000,
        0x2000..0x1000,
        0x1001..0x8000_0000,
        0x1000..0x8000_0001,
    ] {
        assert_eq!(
            plan(&img, user.clone(), Limits::default()),
            Err(ElfError::BadUserRange),
            "{user:x?}"
        );
    }
}

#[test]
fn page_congruence() {
    assert_eq!(
        with(|e| e.phs[1].offset = 0x2008),
        Err(ElfError::NotPageCongruent { index: 1 })
    );
    // Congruent but another page of the file: fine.
    assert!(with(|e| e.phs[1].offset = 0x1000).is_ok());
}

#[test]
fn overlapping_segments() {
    // rodata moved onto the text's page (their bytes do not overlap, their page does).
    assert_eq!(
        with(|e| {
            e.phs[1].vaddr = 0x40_1800;
            e.phs[1].offset = 0x1800;
        }),
        Err(ElfError::Overlap {
            first: 0,
            second: 1
        })
    );
    // data's bss running into a later segment's page.
    assert_eq!(
        with(|e| e.phs.push(Ph::load(PF_R, 0x40_4ff0, 0xff0, 0x10, 0x10))),
        Err(ElfError::Overlap {
            first: 2,
            second: 4
        })
    );
    // Same page twice, in reverse order.
    assert_eq!(
        with(|e| e
            .phs
            .insert(0, Ph::load(PF_R, 0x40_2f00, 0x2f00, 0x10, 0x10))),
        Err(ElfError::Overlap {
            first: 0,
            second: 2
        })
    );
    // Adjacent pages are fine.
    assert!(with(|e| e.phs.push(Ph::load(PF_R, 0x40_5000, 0x2000, 0x10, 0x10))).is_ok());
}

#[test]
fn write_and_execute_is_refused() {
    assert_eq!(
        with(|e| e.phs[2].flags = PF_R | PF_W | PF_X),
        Err(ElfError::WriteAndExecute { index: 2 })
    );
    assert_eq!(
        with(|e| e.phs[0].flags = PF_W | PF_X),
        Err(ElfError::WriteAndExecute { index: 0 })
    );
}

#[test]
fn entry_point() {
    assert_eq!(with(|e| e.entry = 0), Err(ElfError::EntryZero));
    // In data, in rodata, between segments, just past the text's bytes.
    for entry in [0x40_3010, 0x40_2000, 0x40_1fff, 0x40_1180, 0x40_0fff] {
        assert_eq!(
            with(|e| e.entry = entry),
            Err(ElfError::EntryNotExecutable),
            "{entry:#x}"
        );
    }
    // First and last text byte.
    assert!(with(|e| e.entry = 0x40_1000).is_ok());
    assert!(with(|e| e.entry = 0x40_117f).is_ok());
    // In the text segment's zero-filled part: not code.
    assert_eq!(
        with(|e| {
            e.phs[0].memsz = 0x200;
            e.entry = 0x40_11f0;
        }),
        Err(ElfError::EntryNotExecutable)
    );
}

#[test]
fn errors_display_their_name() {
    assert_eq!(
        ElfError::OutsideUser { index: 3 }.to_string(),
        "elf: OutsideUser { index: 3 }"
    );
}

/// A real static program linked by the system's `cc` (GNU ld), if there is one: its
/// plan keeps every invariant and starts at its `_start`.
#[test]
fn real_static_program() {
    use std::process::Command;

    let dir = std::env::temp_dir().join(format!("loader-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("prog.c");
    let out = dir.join("prog");
    std::fs::write(
        &src,
        "static const char msg[] = \"hello\";\n\
         char buf[10000];\n\
         int counter = 5;\n\
         void _start(void) { buf[counter] = msg[1]; for (;;) {} }\n",
    )
    .unwrap();
    let built = Command::new("cc")
        .args(["-static", "-nostdlib", "-no-pie", "-fno-pie", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        eprintln!("SKIPPED real_static_program: no working `cc -static -nostdlib` here");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let img = std::fs::read(&out).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let p = plan(&img, USER, Limits::default()).unwrap();
    invariants::check(&p, img.len(), &USER, Limits::default()).unwrap();
    // GNU ld with -z separate-code: headers R, text R+X, eh_frame R, data+bss R+W.
    assert!((2..=4).contains(&p.segments().len()));
    assert!(p.segments().iter().any(|s| s.flags.executable));
    assert!(p
        .segments()
        .iter()
        .any(|s| s.flags.writable && s.memsz > s.filesz));
    // ET_DYN (PIE) versions of the same are refused by name.
    let mut pie = img.clone();
    put16(&mut pie, off::TYPE, 3);
    assert_eq!(
        plan(&pie, USER, Limits::default()),
        Err(ElfError::NotExecutable { e_type: 3 })
    );
}

/// A naive judge of a spec built by `Elf`: accept or refuse, by the rules written out
/// in u128 arithmetic, without the order or shortcuts of `plan`.
fn naive_accepts(elf: &Elf, user: &core::ops::Range<u64>, limits: Limits) -> bool {
    let page = PAGE_SIZE as u128;
    if user.start >= user.end
        || !user.start.is_multiple_of(PAGE_SIZE)
        || !user.end.is_multiple_of(PAGE_SIZE)
    {
        return false;
    }
    let mut loads: Vec<(u128, u128, &Ph)> = Vec::new();
    for ph in &elf.phs {
        match ph.p_type {
            PT_INTERP | PT_DYNAMIC | PT_TLS | PT_SHLIB => return false,
            PT_GNU_STACK if ph.flags & PF_X != 0 => return false,
            PT_LOAD => {}
            _ => continue,
        }
        if ph.filesz > ph.memsz || ph.offset as u128 + ph.filesz as u128 > elf.len as u128 {
            return false;
        }
        let start = ph.vaddr as u128 / page * page;
        let end = (ph.vaddr as u128 + ph.memsz as u128).div_ceil(page) * page;
        if end > u64::MAX as u128 {
            return false;
        }
        if ph.memsz == 0 {
            continue;
        }
        if start < user.start as u128 || end > user.end as u128 {
            return false;
        }
        if ph.vaddr % PAGE_SIZE != ph.offset % PAGE_SIZE {
            return false;
        }
        if ph.flags & PF_W != 0 && ph.flags & PF_X != 0 {
            return false;
        }
        loads.push((start, end, ph));
    }
    if loads.is_empty() || loads.len() > limits.max_segments.min(MAX_SEGMENTS) {
        return false;
    }
    for (i, a) in loads.iter().enumerate() {
        for b in &loads[i + 1..] {
            if a.0 < b.1 && b.0 < a.1 {
                return false;
            }
        }
    }
    let bytes: u128 = loads.iter().map(|(s, e, _)| e - s).sum();
    if bytes > limits.max_bytes as u128 {
        return false;
    }
    let e = elf.entry as u128;
    e != 0
        && loads.iter().any(|(_, _, ph)| {
            ph.flags & PF_X != 0
                && e >= ph.vaddr as u128
                && e < ph.vaddr as u128 + ph.filesz as u128
        })
}

/// Program headers near the example's shape: mostly plausible, sometimes not.
fn arb_ph() -> impl Strategy<Value = Ph> {
    let p_type = prop_oneof![
        12 => Just(PT_LOAD),
        1 => prop::sample::select(vec![
            PT_NULL, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_SHLIB, PT_PHDR, PT_TLS,
            PT_GNU_STACK, PT_GNU_RELRO, PT_GNU_PROPERTY, 0x7000_0000,
        ]),
    ];
    let flags = prop_oneof![
        12 => prop::sample::select(vec![PF_R | PF_X, PF_R, PF_R | PF_W]),
        1 => 0u32..8,
    ];
    let addr = prop_oneof![
        40 => (0u64..32, 0u64..0x1000).prop_map(|(page, off)| 0x40_0000 + page * 0x1000 + off),
        1 => any::<u64>(),
        1 => prop::sample::select(vec![0, 0x1000, u64::MAX, u64::MAX - 0xfff, 0x7fff_ffff_f000]),
    ];
    let size = prop_oneof![
        40 => 0u64..0x1800,
        1 => any::<u64>(),
        1 => Just(0),
    ];
    let congruent = prop_oneof![20 => Just(true), 1 => Just(false)];
    (
        p_type,
        flags,
        addr,
        size.clone(),
        size,
        congruent,
        0u64..4,
        any::<u64>(),
    )
        .prop_map(
            |(p_type, flags, vaddr, a, b, congruent, file_page, raw_off)| {
                let (filesz, memsz) = if a <= b { (a, b) } else { (b, a) };
                let offset = if congruent {
                    file_page * 0x1000 + vaddr % 0x1000
                } else {
                    raw_off
                };
                Ph {
                    p_type,
                    flags,
                    offset,
                    vaddr,
                    filesz,
                    memsz,
                    align: 0x1000,
                }
            },
        )
}

fn arb_elf() -> impl Strategy<Value = (Elf, core::ops::Range<u64>, Limits)> {
    let phs = proptest::collection::vec(arb_ph(), 0..7);
    let user = prop_oneof![
        8 => Just(USER),
        1 => (0u64..0x410, 0u64..0x30).prop_map(|(s, n)| (s * 0x1000)..((s + n) * 0x1000)),
    ];
    let limits = prop_oneof![
        8 => Just(Limits::default()),
        1 => (1usize..12, 0u64..0x20000)
            .prop_map(|(max_segments, max_bytes)| Limits { max_segments, max_bytes }),
    ];
    let entry = prop_oneof![
        8 => Just(None),
        1 => any::<u64>().prop_map(Some),
    ];
    (phs, entry, 0x4000usize..0x5000, user, limits).prop_map(|(phs, entry, len, user, limits)| {
        // The entry: usually in the first executable load, sometimes anywhere.
        let text = phs
            .iter()
            .find(|ph| ph.p_type == PT_LOAD && ph.flags & PF_X != 0);
        let entry = entry
            .unwrap_or_else(|| text.map_or(0x40_1000, |ph| ph.vaddr.wrapping_add(ph.filesz / 2)));
        (
            Elf {
                entry,
                phoff: 64,
                phs,
                len,
            },
            user,
            limits,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random program headers: `plan` agrees with the naive judge, and every plan keeps
    /// the invariants.
    #[test]
    fn random_headers_agree_with_the_naive_judge((elf, user, limits) in arb_elf()) {
        let img = elf.build();
        let got = plan(&img, user.clone(), limits);
        if let Ok(p) = &got {
            invariants::check(p, img.len(), &user, limits).map_err(TestCaseError::fail)?;
        }
        prop_assert_eq!(got.is_ok(), naive_accepts(&elf, &user, limits), "{:?}", got);
    }

    /// Any bytes changed in a valid image (mostly in its headers), any cut: a named error
    /// or a plan that keeps the invariants.
    #[test]
    fn mutated_images_give_a_valid_plan_or_a_named_error(
        patches in proptest::collection::vec(
            (prop_oneof![4 => 0usize..64 + 56 * 4, 1 => 0usize..0x3050], any::<u8>()),
            1..6,
        ),
        cut in prop_oneof![3 => Just(None), 1 => (0usize..0x3050).prop_map(Some)],
    ) {
        let mut img = Elf::example().build();
        for &(at, byte) in &patches {
            img[at] = byte;
        }
        let img = &img[..cut.unwrap_or(img.len())];
        if let Ok(p) = plan(img, USER, Limits::default()) {
            invariants::check(&p, img.len(), &USER, Limits::default())
                .map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(img in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = plan(&img, USER, Limits::default());
    }
}
