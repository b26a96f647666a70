//! Arbitrary bytes into `elf::plan`: either as the image itself, or as patches to a valid
//! static program (so the fuzzer reaches the segment checks without a corpus), under a
//! few user ranges and limits.
//!
//! Asserts: no panic; every plan keeps the invariants of `tests/common/invariants.rs`
//! (pages inside the user range and page-disjoint, W^X, file ranges in the image, entry
//! in an executable segment's file bytes, limits kept, page fills exact).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::{plan, Limits};

#[allow(dead_code)]
#[path = "../../tests/common/build.rs"]
mod build;
#[allow(dead_code)]
#[path = "../../tests/common/invariants.rs"]
mod invariants;

use build::{Elf, USER};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let user = match (mode >> 1) & 3 {
        0 | 1 => USER,
        2 => 0x40_0000..0x40_4000,
        _ => 0x40_2000..0x80_0000,
    };
    let limits = match (mode >> 3) & 3 {
        0 | 1 => Limits::default(),
        2 => Limits {
            max_segments: 2,
            max_bytes: 3 * 4096,
        },
        _ => Limits {
            max_segments: 100,
            max_bytes: u64::MAX,
        },
    };
    let patched;
    let image: &[u8] = if mode & 1 == 0 {
        rest
    } else {
        let mut img = Elf::example().build();
        // Three bytes per patch: a 16-bit offset and the byte to put there; the headers
        // are the first 288 bytes, so most offsets are folded into them.
        for p in rest.chunks_exact(3) {
            let raw = usize::from(u16::from_le_bytes([p[0], p[1]]));
            let at = if raw & 0x8000 == 0 {
                raw % 288
            } else {
                raw % img.len()
            };
            img[at] = p[2];
        }
        if mode & 0x20 != 0 {
            let keep = usize::from(mode >> 6) * img.len() / 4;
            img.truncate(keep);
        }
        patched = img;
        &patched
    };
    if let Ok(p) = plan(image, user.clone(), limits) {
        if let Err(broken) = invariants::check(&p, image.len(), &user, limits) {
            panic!("plan {p:?} breaks an invariant: {broken}");
        }
    }
});
