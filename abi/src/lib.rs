//! The Ethos-Xen system-call ABI: what a user program and the kernel agree
//! on, and nothing else. Shared by the kernel (`kernel/src/syscall/`) and
//! the user library (`ethos/`), so the two cannot drift apart.
//!
//! # Registers
//!
//! A program enters the kernel with the `syscall` instruction:
//!
//! | register | in | out |
//! |---|---|---|
//! | `rax` | the call number ([`Call`]) | the call's [`Status`] (0 = [`Status::Ok`]) |
//! | `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9` | arguments 0 to 5 | - |
//! | `rdx` | - | result 0 (an event id, a pid, a length, ...) |
//! | `r8` | - | result 1 (a second result, where a call has one) |
//! | `rcx`, `r11` | - | clobbered (the `syscall` instruction) |
//!
//! Every other register is preserved. No call blocks except
//! [`Call::Block`]: a call that starts work returns an event id at once,
//! and the work's outcome is read by retiring the event ([`Call::Retire`]).
//!
//! # Memory
//!
//! Pointers are user addresses ([`USER_START`]..[`USER_END`]); a buffer is
//! a pointer and a length in two arguments. The kernel checks every buffer
//! against the user half and the caller's own mappings, copies it in once,
//! then validates the copy: a bad pointer, length or alignment is a named
//! status ([`Status::BadAddress`], [`Status::BadLength`],
//! [`Status::BadAlignment`]), never a fault.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod call;
mod status;

pub use call::Call;
pub use status::Status;

/// The first user address: L4 slot 1 (512 GiB). Slot 0 is the kernel's.
pub const USER_START: u64 = 512 << 30;
/// One past the last user address: the end of the lower canonical half,
/// below Xen's own slots.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The page size.
pub const PAGE_SIZE: u64 = 4096;

/// Where programs are linked: text starts here (`programs/link.ld`).
pub const PROGRAM_BASE: u64 = USER_START + (1 << 20);
/// The top of a program's stack (exclusive); the guard page lies below
/// its lowest page. Image, arguments and stack share the first GiB of the
/// user half, so they cost the kernel one L2 table, not three.
pub const STACK_TOP: u64 = USER_START + (1 << 30);
/// Pages of a program's stack.
pub const STACK_PAGES: u64 = 16;
/// Where a program's arguments are placed: one read-only page, the
/// [`Args`] record, then the NUL-separated argument bytes. It is the first
/// page of the 2 MiB under [`STACK_TOP`], so the arguments and the stack
/// share one L1 table (a page table less per process).
pub const ARGS_ADDRESS: u64 = STACK_TOP - (2 << 20);
/// Where pages bound with [`Call::PageBind`] may go: the heap region.
pub const HEAP_START: u64 = USER_START + (128 << 30);
/// One past the last bindable address.
pub const HEAP_END: u64 = HEAP_START + (1 << 30);

/// An event id: opaque to programs, unguessable, never reused while alive.
pub type EventId = u64;
/// The null event id (inner nodes of a wait tree carry it).
pub const NULL_EVENT: EventId = 0;

/// One element of a flat wait tree, as [`Call::Block`] reads it (Ethos's
/// flat spec): leaves first (sorted by event id, no duplicates, count 0,
/// parent an inner node), then the root (parent [`WaitElement::NO_PARENT`]),
/// then the other inner nodes in any order, each reaching the root through
/// its parents. An inner node with `c` children has `1 <= count <= c`.
/// 16 bytes, little-endian.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitElement {
    /// The event of a leaf; [`NULL_EVENT`] for an inner node.
    pub event: EventId,
    /// Index of the parent inner node; [`WaitElement::NO_PARENT`] for the root.
    pub parent: u32,
    /// For an inner node, how many children must complete; 0 for a leaf.
    pub count: u32,
}

impl WaitElement {
    /// The root's parent.
    pub const NO_PARENT: u32 = u32::MAX;
    /// The element's size in bytes.
    pub const SIZE: usize = 16;
}

/// What a program may do beyond the ordinary calls: given at spawn (a
/// child gets at most its parent's), never by default. The ordinary calls
/// (time, print, events, its own pages, reading xenstore, RPCs to the
/// daemon) need none.
pub mod rights {
    /// [`crate::Call::Spawn`].
    pub const SPAWN: u32 = 1 << 0;
    /// Writing, removing and setting permissions in xenstore.
    pub const XENSTORE_WRITE: u32 = 1 << 1;
    /// Granting pages and binding event channels to other domains.
    pub const FOREIGN: u32 = 1 << 2;
    /// Device calls: network attach and bring-up, vchan offers.
    pub const DEVICES: u32 = 1 << 3;
    /// Everything: the first program (`ethos.init`) gets this.
    pub const ALL: u32 = SPAWN | XENSTORE_WRITE | FOREIGN | DEVICES;
}

/// What [`Call::Retire`] reports in its results: result 0 is the event's
/// own status ([`Status`] code in the low 32 bits; for [`Status::Remote`]
/// the peer's errno in the high 32 bits), result 1 is the value: a word
/// for word events, the number of bytes written to the buffer for byte
/// events, 0 for empty ones.
pub mod retire {
    /// The value kinds an event can carry (result 1 of [`crate::Call::Retire`]
    /// is shaped by it).
    #[repr(u32)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        /// No value.
        Empty = 0,
        /// Bytes, copied to the caller's buffer.
        Bytes = 1,
        /// A 64-bit word.
        Word = 2,
    }
}

/// The record at [`ARGS_ADDRESS`] when a program starts: its pid, how many
/// arguments follow and their total length.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Args {
    /// The program's pid.
    pub pid: u32,
    /// Number of arguments (the program name is argument 0).
    pub argc: u32,
    /// Bytes of NUL-separated arguments right after this record.
    pub len: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Most bytes of arguments a spawn may pass.
pub const MAX_ARGS_BYTES: usize = 4096 - core::mem::size_of::<Args>();
/// The longest program name.
pub const MAX_NAME: usize = 64;
/// The longest single system-call buffer the kernel copies in at once.
pub const MAX_BUFFER: usize = 64 * 1024;

// The arguments page sits below the stack and its guard page, in the same
// 2 MiB.
const _: () = assert!(ARGS_ADDRESS + PAGE_SIZE < STACK_TOP - (STACK_PAGES + 1) * PAGE_SIZE);
const _: () = assert!(ARGS_ADDRESS >> 21 == (STACK_TOP - 1) >> 21);
