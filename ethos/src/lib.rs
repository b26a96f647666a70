//! The Ethos-Xen user library: what a program links to talk to the kernel.
//!
//! Every system call of the [`abi`] has a typed wrapper here, one module per
//! family ([`time`], [`process`], [`event`], [`console`], [`pages`],
//! [`xenstore`], [`evtchn`], [`rpc`], [`net`], [`stats`]), and [`vchan`] builds a
//! libxenvchan-compatible server from the page, grant and port calls. Each returns
//! `Result<_, abi::Status>`: the call's own status is the error, so `?`
//! works everywhere, and a call that starts work returns the [`Event`] that
//! its outcome is read from, by retiring it ([`event::retire_word`],
//! [`event::retire_bytes`], [`event::retire_empty`]).
//!
//! A program waits with [`event::block`] on a wait tree built with [`Tree`]
//! (AND, OR, at-least-k, nested), prints with [`print!`] and [`println!`]
//! (or `log`), and starts at the function registered with [`main!`]:
//!
//! ```no_run
//! #![no_std]
//! #![no_main]
//! ethos::main!(main);
//!
//! fn main(args: ethos::Args) -> i32 {
//!     ethos::println!("hello from pid {}", args.pid());
//!     0
//! }
//! ```
//!
//! # Where unsafe lives
//!
//! Only in [`raw`]: the `syscall` instruction, the entry symbol, the read of
//! the argument page, the global allocator's hook. The crate root denies
//! `unsafe_code` and only `raw` allows it.
//!
//! # On the host
//!
//! Built for anything but `target_os = "none"`, [`raw`] has no assembly: each
//! call goes to a small fake kernel (`fake`, host builds only) with a
//! simulated clock, so the library's logic is unit-tested with `cargo test`.
//! The runtime (entry, panic handler, global allocator) exists only on the
//! guest target.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(all(not(target_os = "none"), not(test)))]
extern crate std;

#[allow(unsafe_code)]
pub mod raw;

#[cfg(not(target_os = "none"))]
pub mod fake;

mod sys;

pub mod args;
pub mod cksum;
pub mod console;
pub mod event;
pub mod evtchn;
#[cfg(feature = "log")]
pub mod logger;
pub mod net;
pub mod pages;
pub mod process;
pub mod rpc;
pub mod rt;
pub mod shutdown;
pub mod stats;
pub mod time;
pub mod tree;
pub mod vchan;
pub mod xenstore;

pub use abi::{Status, WaitElement};
pub use args::Args;
pub use event::{Event, Retired};
pub use tree::{Tree, TreeError};

#[cfg(test)]
mod tests;
