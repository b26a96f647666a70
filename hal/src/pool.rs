//! The bookkeeping of the domain's memory, pure (no unsafe; built and
//! tested on the host too): which frames are free, and how the boot
//! mapping's free tail and the frames past it are split between the heap
//! and the frame pool.
//!
//! Per-frame bookkeeping must grow with the domain and not with a heap of
//! fixed size: a [`FrameSet`] costs one bit per frame (31 KiB for 990 MiB),
//! and [`split`] grows the heap by that much at boot, from the frames past
//! the boot mapping.

use alloc::vec::Vec;
use core::ops::Range;

const PAGE: u64 = 4096;
/// The memory one L1 table maps.
const L1_SPAN: u64 = 2 << 20;

/// A set of pfns below a bound, one bit each.
pub struct FrameSet {
    words: Vec<u64>,
    len: usize,
    /// No pfn of the set lies in a word below this one.
    low: usize,
}

impl FrameSet {
    /// Heap bytes a set of pfns below `bound` takes.
    pub fn bytes_for(bound: u64) -> u64 {
        bound.div_ceil(64) * 8
    }

    /// An empty set with room for pfns below `bound`.
    pub fn new(bound: u64) -> FrameSet {
        FrameSet {
            words: alloc::vec![0; bound.div_ceil(64) as usize],
            len: 0,
            low: 0,
        }
    }

    /// Adds `pfn`; `false` if it is past the bound or in the set already.
    pub fn insert(&mut self, pfn: u64) -> bool {
        let (word, bit) = ((pfn / 64) as usize, 1 << (pfn % 64));
        match self.words.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                self.len += 1;
                self.low = self.low.min(word);
                true
            }
            _ => false,
        }
    }

    /// Takes the lowest pfn out of the set.
    pub fn take(&mut self) -> Option<u64> {
        let word = self.low + self.words[self.low..].iter().position(|&w| w != 0)?;
        self.low = word;
        let w = &mut self.words[word];
        let bit = w.trailing_zeros();
        *w &= *w - 1;
        self.len -= 1;
        Some(word as u64 * 64 + bit as u64)
    }

    /// Takes `pfn` out of the set; `false` if it was not in it.
    pub fn remove(&mut self, pfn: u64) -> bool {
        let (word, bit) = ((pfn / 64) as usize, 1 << (pfn % 64));
        match self.words.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                self.len -= 1;
                true
            }
            _ => false,
        }
    }

    pub fn contains(&self, pfn: u64) -> bool {
        self.words
            .get((pfn / 64) as usize)
            .is_some_and(|w| w & 1 << (pfn % 64) != 0)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where the heap ends, and what it takes from past the boot mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// The heap is `tail.start..heap_end`. Below `tail.end`, the tail past
    /// it goes to the pool; above, the heap reaches past the boot mapping.
    pub heap_end: u64,
    /// Frames past the boot mapping the heap takes, mapped at their own
    /// addresses (the first ones, so that the heap stays contiguous).
    pub extended: u64,
    /// Frames after those, for the L1 tables that map them.
    pub tables: u64,
}

/// New L1 tables mapping `n` pages from `end`, the boot mapping's end: one
/// per 2 MiB reached, but the boot mapping's own last one.
fn tables_for(end: u64, n: u64) -> u64 {
    (end + n * PAGE).div_ceil(L1_SPAN) - end.div_ceil(L1_SPAN)
}

/// Splits the boot mapping's free `tail` (page-aligned addresses) and the
/// `past` frames after it: the heap gets at least `want` bytes, taking
/// frames from past the boot mapping where the tail is short, and keeps the
/// whole tail unless the pool would then have fewer than `pool_min` frames
/// (a small domain: then the tail past `want` goes to the pool).
pub fn split(tail: Range<u64>, past: u64, want: u64, pool_min: u64) -> Split {
    let want = want.div_ceil(PAGE) * PAGE;
    let len = tail.end.saturating_sub(tail.start);
    if len >= want {
        let cut = past < pool_min;
        return Split {
            heap_end: if cut { tail.start + want } else { tail.end },
            extended: 0,
            tables: 0,
        };
    }
    let mut n = ((want - len) / PAGE).min(past);
    while n > 0 && n + tables_for(tail.end, n) > past {
        n -= 1;
    }
    Split {
        heap_end: tail.end + n * PAGE,
        extended: n,
        tables: tables_for(tail.end, n),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn a_set_hands_out_its_lowest_pfn_first_and_counts() {
        let mut s = FrameSet::new(200);
        assert!(s.is_empty());
        for pfn in [130, 5, 64, 199] {
            assert!(s.insert(pfn));
        }
        assert_eq!(s.len(), 4);
        assert!(s.contains(64) && !s.contains(63));
        assert_eq!(s.take(), Some(5));
        assert_eq!(s.take(), Some(64));
        // A pfn given back below the search start is found again.
        assert!(s.insert(3));
        assert_eq!(s.take(), Some(3));
        assert_eq!(s.take(), Some(130));
        assert_eq!(s.take(), Some(199));
        assert_eq!(s.take(), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_set_refuses_a_pfn_twice_or_past_its_bound() {
        let mut s = FrameSet::new(100);
        assert!(s.insert(99));
        assert!(!s.insert(99), "already in");
        // The words round the bound up to 128; past them is refused.
        assert!(!s.insert(128));
        assert!(!s.insert(u64::MAX));
        assert!(!s.contains(u64::MAX));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_pfn_removed_is_gone_and_the_rest_stay() {
        let mut s = FrameSet::new(200);
        for pfn in [3, 70, 150] {
            assert!(s.insert(pfn));
        }
        assert!(s.remove(70));
        assert!(!s.remove(70), "already gone");
        assert!(!s.remove(71) && !s.remove(u64::MAX), "never in");
        assert_eq!(s.len(), 2);
        assert!(!s.contains(70));
        assert_eq!(s.take(), Some(3));
        assert_eq!(s.take(), Some(150));
        assert_eq!(s.take(), None);
    }

    #[test]
    fn an_empty_bound_is_an_empty_set() {
        let mut s = FrameSet::new(0);
        assert!(!s.insert(0));
        assert_eq!(s.take(), None);
    }

    #[test]
    fn a_set_takes_every_pfn_once() {
        let bound = 253_440; // 990 MiB
        let mut s = FrameSet::new(bound);
        assert_eq!(FrameSet::bytes_for(bound), 31_680);
        (1000..bound).for_each(|p| assert!(s.insert(p)));
        let taken: Vec<u64> = core::iter::from_fn(|| s.take()).collect();
        assert_eq!(taken, (1000..bound).collect::<Vec<_>>());
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_long_tail_stays_the_heap_when_the_pool_is_large() {
        let s = split(5 * MIB..8 * MIB, 1024, MIB, 256);
        assert_eq!(
            s,
            Split {
                heap_end: 8 * MIB,
                extended: 0,
                tables: 0
            }
        );
    }

    #[test]
    fn a_small_domain_gives_the_tail_past_the_floor_to_the_pool() {
        // 4 MiB: the boot mapping is all of memory, nothing past it.
        let s = split(5 * MIB + 8192..8 * MIB, 0, MIB + 100, 256);
        assert_eq!(s.heap_end, 6 * MIB + 8192 + PAGE, "whole pages");
        assert_eq!((s.extended, s.tables), (0, 0));
    }

    #[test]
    fn a_short_tail_grows_into_the_frames_past_it_with_their_tables() {
        // 990 MiB: the P2M list leaves 0.5 MiB of tail.
        let s = split(7 * MIB + MIB / 2..8 * MIB, 252_000, 2 * MIB, 256);
        assert_eq!(s.extended, 384);
        assert_eq!(s.heap_end, 8 * MIB + 384 * PAGE);
        assert_eq!(s.tables, 1, "one L1 maps the 1.5 MiB past 8 MiB");
        // 3 MiB past a 2 MiB boundary: two tables.
        let s = split(8 * MIB..8 * MIB, 10_000, 3 * MIB, 256);
        assert_eq!((s.extended, s.tables), (768, 2));
        // Past an unaligned end the boot mapping's last L1 maps the rest
        // of its 2 MiB.
        assert_eq!(tables_for(7 * MIB, 256), 0);
        assert_eq!(tables_for(7 * MIB, 257), 1);
    }

    #[test]
    fn the_extension_and_its_tables_fit_in_the_frames_there_are() {
        let s = split(8 * MIB..8 * MIB, 100, 3 * MIB, 0);
        assert_eq!((s.extended, s.tables), (99, 1));
        let s = split(8 * MIB..8 * MIB, 1, 3 * MIB, 0);
        assert_eq!((s.extended, s.tables), (0, 0), "no room for a table");
        assert_eq!(s.heap_end, 8 * MIB);
    }
}
