//! Loading user programs: find one in the boot module, check its ELF image, say what to
//! map.
//!
//! User programs are separate static ELF executables. They reach the kernel in one boot
//! module (the `ramdisk=` of the xl config), a cpio archive in the "newc" format built on
//! the host with `cpio -o -H newc`. The kernel:
//!
//! 1. finds the program by name with [`archive::find`] (or lists the archive with
//!    [`archive::entries`]);
//! 2. turns the image into a [`LoadPlan`] with [`elf::plan`], giving the user half of
//!    the address space and its [`Limits`];
//! 3. allocates [`LoadPlan::pages_needed`] frames, fills each as
//!    [`Segment::page_fills`] says, maps them with each segment's [`Flags`], adds a
//!    stack, and starts the program at [`LoadPlan::entry`] (the module docs of [`elf`]
//!    say this in full).
//!
//! ```
//! use loader::{Limits, PAGE_SIZE};
//!
//! /// The user half of an x86-64 PV guest, page 0 left out so null stays a fault.
//! const USER: core::ops::Range<u64> = PAGE_SIZE..0x0000_8000_0000_0000;
//!
//! fn spawn(module: &[u8], name: &str) -> Result<u64, &'static str> {
//!     let image = loader::find(module, name).map_err(|_| "no such program")?;
//!     let plan = loader::plan(image, USER, Limits::default()).map_err(|_| "bad image")?;
//!     for segment in plan.segments() {
//!         for fill in segment.page_fills() {
//!             let mut frame = [0u8; PAGE_SIZE as usize]; // a fresh, zeroed frame
//!             let bytes = &image[fill.src.clone()];
//!             frame[fill.offset_in_page..fill.offset_in_page + bytes.len()]
//!                 .copy_from_slice(bytes);
//!             // map `frame` at `fill.page` with `segment.flags`
//!         }
//!     }
//!     Ok(plan.entry())
//! }
//!
//! assert_eq!(spawn(&[], "init"), Err("no such program"));
//! ```
//!
//! Both inputs are hostile: the module is whatever the domain's config named, the image
//! whatever was put in the archive. Every malformed input is a named error
//! ([`ArchiveError`], [`ElfError`]), never a panic and never a loop longer than the input.
//! A plan only exists if it passed every check: all pages inside the user range, no two
//! segments on one page, no page both writable and executable, every file range inside
//! the image, the entry in file-backed bytes of an executable segment.
//!
//! `no_std`, no `alloc` (a plan holds at most [`MAX_SEGMENTS`] segments in place), no
//! unsafe code, no dependencies. Outside tests, clippy is told to refuse indexing,
//! unchecked arithmetic, `unwrap` and `panic!`, so "never a panic" is checked by a tool
//! and not only by the fuzzer.
//!
//! # Testing
//!
//! * `cargo test -p loader`: unit tests per module; `tests/archive.rs` and `tests/elf.rs`
//!   have every named error from hand-built inputs, property tests that mutated archives
//!   and images give a named error or a plan that keeps every invariant, and a real
//!   archive made by the system's `cpio` (skipped with a message if it is missing).
//! * Fuzzing (cargo-fuzz needs nightly flags; `RUSTC_BOOTSTRAP=1` lets stable accept them):
//!   `cd loader && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none archive -- -max_total_time=N`,
//!   and likewise `elf_plan`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod archive;
pub mod elf;

pub use archive::{entries, find, ArchiveError, Entries, Entry, Kind};
pub use elf::{
    plan, ElfError, Flags, Limits, LoadPlan, PageFill, PageFills, Segment, MAX_SEGMENTS, PAGE_SIZE,
};
