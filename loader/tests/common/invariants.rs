//! What every plan must satisfy, checked from the plan's public fields alone (nothing
//! here calls the checks in `loader::elf`), so the property tests and the fuzzer judge
//! `plan` independently of how it decided.

use core::ops::Range;

use loader::{Limits, LoadPlan, MAX_SEGMENTS, PAGE_SIZE};

/// Returns the first broken invariant, described.
pub fn check(
    plan: &LoadPlan,
    image_len: usize,
    user: &Range<u64>,
    limits: Limits,
) -> Result<(), String> {
    let segs = plan.segments();
    let max = limits.max_segments.min(MAX_SEGMENTS);
    if segs.is_empty() || segs.len() > max {
        return Err(format!("{} segments, limit {max}", segs.len()));
    }
    let mut pages_total = 0u64;
    for (i, s) in segs.iter().enumerate() {
        if s.memsz == 0 || s.filesz > s.memsz {
            return Err(format!(
                "segment {i}: filesz {} memsz {}",
                s.filesz, s.memsz
            ));
        }
        let file_end = s.file_offset.checked_add(s.filesz);
        if file_end.is_none_or(|end| end > image_len as u64) {
            return Err(format!("segment {i}: file range outside the image"));
        }
        if s.file_range() != (s.file_offset as usize..(s.file_offset + s.filesz) as usize) {
            return Err(format!("segment {i}: file_range disagrees with its fields"));
        }
        let end = s.vaddr as u128 + s.memsz as u128;
        let pages = s.pages();
        let page = PAGE_SIZE as u128;
        if pages.start % PAGE_SIZE != 0
            || pages.end % PAGE_SIZE != 0
            || pages.start as u128 != (s.vaddr as u128 / page) * page
            || pages.end as u128 != end.div_ceil(page) * page
        {
            return Err(format!(
                "segment {i}: pages {pages:x?} for {:x}+{:x}",
                s.vaddr, s.memsz
            ));
        }
        if pages.start < user.start || pages.end > user.end {
            return Err(format!(
                "segment {i}: pages {pages:x?} outside user {user:x?}"
            ));
        }
        if s.vaddr % PAGE_SIZE != s.file_offset % PAGE_SIZE {
            return Err(format!("segment {i}: not page congruent"));
        }
        if s.flags.writable && s.flags.executable {
            return Err(format!("segment {i}: W+X"));
        }
        if s.page_count() != (pages.end - pages.start) / PAGE_SIZE {
            return Err(format!("segment {i}: page_count"));
        }
        pages_total += s.page_count();
        for (j, t) in segs.iter().enumerate().skip(i + 1) {
            let q = t.pages();
            if pages.start < q.end && q.start < pages.end {
                return Err(format!("segments {i} and {j} share a page"));
            }
        }
        check_fills(i, s)?;
    }
    if plan.pages_needed() != pages_total {
        return Err("pages_needed disagrees with the segments".into());
    }
    if pages_total * PAGE_SIZE > limits.max_bytes {
        return Err(format!(
            "{pages_total} pages over {} bytes",
            limits.max_bytes
        ));
    }
    let e = plan.entry();
    let in_text = segs
        .iter()
        .any(|s| s.flags.executable && e >= s.vaddr && e - s.vaddr < s.filesz);
    if e == 0 || !in_text {
        return Err(format!(
            "entry {e:#x} not in an executable segment's file bytes"
        ));
    }
    Ok(())
}

/// Pages per segment whose fills are all checked; past that, this many at each end
/// (the pages between are all bss or all file, like their neighbours), so a huge bss
/// does not make one fuzz run take minutes.
const FULL_CHECK_PAGES: u64 = 256;

/// The fills of one segment cover its pages in order, copy exactly its file bytes, each
/// to the address it belongs at, and stay inside their page.
fn check_fills(i: usize, s: &loader::Segment) -> Result<(), String> {
    let pages = s.pages();
    let count = s.page_count();
    if s.page_fills().len() as u64 != count {
        return Err(format!("segment {i}: fills and page_count disagree"));
    }
    let head = count.min(FULL_CHECK_PAGES);
    let tail_from = count.saturating_sub(FULL_CHECK_PAGES).max(head);
    let mut fills = s.page_fills();
    let picked = (0..head)
        .chain(tail_from..count)
        .map(|k| (k, s.page_fills().nth(k as usize)));
    let mut copied = 0u64;
    for (k, f) in picked {
        let Some(f) = f else {
            return Err(format!("segment {i}: no fill for page {k}"));
        };
        if k < head {
            // Walking from the front must agree with asking for page k directly.
            if fills.next().as_ref() != Some(&f) {
                return Err(format!("segment {i}: next and nth disagree at page {k}"));
            }
        }
        let page = pages.start + k * PAGE_SIZE;
        if f.page != page {
            return Err(format!(
                "segment {i}: fill for {:#x}, expected {page:#x}",
                f.page
            ));
        }
        if f.offset_in_page + f.src.len() > PAGE_SIZE as usize {
            return Err(format!("segment {i}: fill past its page"));
        }
        // The file bytes that belong on this page, computed from the segment alone.
        let lo = page.max(s.vaddr);
        let hi = (page + PAGE_SIZE).min(s.vaddr + s.filesz).max(lo);
        let want_src = if hi > lo {
            let from = (s.file_offset + (lo - s.vaddr)) as usize;
            from..from + (hi - lo) as usize
        } else {
            f.src.start..f.src.start
        };
        if f.src != want_src || (hi > lo && f.offset_in_page as u64 != lo - page) {
            return Err(format!(
                "segment {i}: page {k} fill {f:?}, expected {want_src:?}"
            ));
        }
        copied += f.src.len() as u64;
    }
    if s.page_fills().next_back().map(|f| f.page) != pages.end.checked_sub(PAGE_SIZE) {
        return Err(format!("segment {i}: last fill is not the last page"));
    }
    if count <= 2 * FULL_CHECK_PAGES && copied != s.filesz {
        return Err(format!(
            "segment {i}: fills copy {copied} bytes, filesz {}",
            s.filesz
        ));
    }
    Ok(())
}
