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
    // Bit 3 was `DEVICES` (network attach and bring-up, vchan offers);
    // no call ever checked it. The network device's handshake is the
    // kernel's own (`net-setup`), with no trap at all, so no right
    // describes it; the bit stays unused so that an old rights word means
    // nothing new.
    /// The socket calls ([`crate::Call::TcpListen`] ..
    /// [`crate::Call::UdpSend`]): listening on the guest's ports and
    /// talking to other hosts. [`crate::Call::NetStats`] needs none.
    pub const NETWORK: u32 = 1 << 4;
    /// Everything: the first program (`ethos.init`) gets this.
    pub const ALL: u32 = SPAWN | XENSTORE_WRITE | FOREIGN | NETWORK;
}

/// The socket calls' shared terms ([`Call::TcpListen`] .. [`Call::NetStats`]).
///
/// Sockets are the caller's: a handle is a small number, meaningful only to
/// the process that made it (another's answers [`Status::BadHandle`]), and
/// every socket of a process is aborted when it exits or faults.
///
/// Errors every socket call may return: [`Status::NoNetwork`] (an image
/// built without networking), [`Status::NotPermitted`] (no
/// [`rights::NETWORK`]), [`Status::NetDown`] (the stack is not up: the
/// kernel's `net-setup` has not finished the handshake with the backend,
/// or the backend went away; try again later), [`Status::BadHandle`] (no
/// such socket of the caller's, or not of the call's kind),
/// [`Status::InvalidArgument`] (a port, backlog, flag or address out of
/// range), [`Status::BadLength`] (a length of 0 where bytes are needed, or
/// over [`MAX_BUFFER`]), [`Status::BadAddress`], [`Status::Busy`] (16
/// events already wait on the socket; a full UDP send buffer),
/// [`Status::OutOfMemory`] (no room for more sockets), and the event
/// table's [`Status::QuotaExceeded`], [`Status::TableFull`].
///
/// A socket event ends with [`Status::Remote`] and one of the codes below
/// as its errno when the connection or the network ends under it.
pub mod net {
    /// Remote code: the peer closed or reset the connection.
    pub const CLOSED: u32 = 1;
    /// Remote code: the connection was refused or timed out.
    pub const REFUSED: u32 = 2;
    /// Remote code: the network went away (the backend detached); every
    /// socket of every process has ended, and the handles are gone.
    pub const NET_DOWN: u32 = 3;
    /// The largest backlog of [`crate::Call::TcpListen`].
    pub const MAX_BACKLOG: usize = 128;
    /// Bytes before the payload in a [`crate::Call::UdpRecv`] datagram:
    /// the sender's address (4) and port (2, little-endian).
    pub const UDP_HEADER: usize = 6;
    /// The counters [`crate::Call::NetStats`] writes, in order: sockets
    /// in use, connections accepted, stack polls, then the device's
    /// frames received and sent, of those sent the GSO packets, frames
    /// dropped for want of room, receive errors, malformed frames, frames
    /// of protocols not spoken, transmit errors, notifications sent, port
    /// events; last (added later, so older readers still parse) the
    /// connections half-open now and those given up half-open.
    pub const STATS: [&str; 15] = [
        "sockets",
        "accepted",
        "polls",
        "rx_frames",
        "tx_frames",
        "tx_gso",
        "rx_dropped",
        "rx_errors",
        "rx_malformed",
        "rx_not_ours",
        "tx_errors",
        "notifies",
        "port_events",
        "half_open",
        "half_open_reaped",
    ];

    /// An IPv4 address as a call's argument word: `a.b.c.d` is
    /// `0xaabbccdd`.
    pub const fn ipv4_word(octets: [u8; 4]) -> u64 {
        u32::from_be_bytes(octets) as u64
    }

    /// The address of an argument word; `None` above 32 bits.
    pub const fn ipv4_octets(word: u64) -> Option<[u8; 4]> {
        if word > u32::MAX as u64 {
            None
        } else {
            Some((word as u32).to_be_bytes())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn addresses_round_trip_and_wide_words_are_refused() {
            assert_eq!(ipv4_word([192, 0, 2, 1]), 0xc000_0201);
            assert_eq!(ipv4_octets(0xc000_0201), Some([192, 0, 2, 1]));
            assert_eq!(ipv4_octets(1 << 32), None);
        }
    }
}

/// What the event of [`Call::ShutdownEvent`] carries: how the toolstack
/// asked the domain to stop.
pub mod shutdown {
    /// Power off (`xl shutdown`; `xl destroy` asks nothing, the domain
    /// just ends).
    pub const POWEROFF: u64 = 0;
    /// Reboot (`xl reboot`): the domain ends and the toolstack starts it
    /// again as its `on_reboot` says.
    pub const REBOOT: u64 = 1;
    /// How long the processes holding a shutdown event have, after it
    /// completes, before the kernel ends those still running (5 s of Xen
    /// system time). A domain where no process holds one stops at once.
    pub const GRACE_NS: u64 = 5_000_000_000;

    /// The kind's name, for messages (`None` for a word that is no kind).
    pub const fn name(kind: u64) -> Option<&'static str> {
        match kind {
            POWEROFF => Some("poweroff"),
            REBOOT => Some("reboot"),
            _ => None,
        }
    }
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
/// Most permission words one [`Call::XsSetPerms`] sets.
pub const MAX_PERMS: usize = 16;

/// Whether `word` is one xenstore permission word as [`Call::XsSetPerms`]
/// takes it: a letter (`n` none, `r` read, `w` write, `b` both), then a
/// domain id (decimal digits that fit a `u16`).
pub fn perm_word_valid(word: &str) -> bool {
    let Some(domid) = word
        .strip_prefix(['n', 'r', 'w', 'b'])
        .filter(|d| !d.is_empty())
    else {
        return false;
    };
    domid.bytes().all(|b| b.is_ascii_digit()) && domid.parse::<u16>().is_ok()
}

/// The longest program name.
pub const MAX_NAME: usize = 64;
/// The longest single system-call buffer the kernel copies in at once.
pub const MAX_BUFFER: usize = 64 * 1024;

// The arguments page sits below the stack and its guard page, in the same
// 2 MiB.
const _: () = assert!(ARGS_ADDRESS + PAGE_SIZE < STACK_TOP - (STACK_PAGES + 1) * PAGE_SIZE);
const _: () = assert!(ARGS_ADDRESS >> 21 == (STACK_TOP - 1) >> 21);

#[cfg(test)]
mod perm_tests {
    use super::perm_word_valid;

    #[test]
    fn permission_words_are_a_letter_and_a_domain() {
        for ok in ["n0", "r5", "w65535", "b12"] {
            assert!(perm_word_valid(ok), "{ok}");
        }
        for bad in [
            "", "n", "x5", "r-1", "r+1", "w65536", "r 1", "5", "nn5", "r5\0",
        ] {
            assert!(!perm_word_valid(bad), "{bad:?}");
        }
    }
}
