//! The Ethos event model, free of Xen so it is tested at host speed.
//!
//! A system call never waits: it creates an event ([`EventTable::create`]) and returns its
//! [`EventId`]. The kernel later completes it ([`EventTable::complete`]); the process
//! retires it ([`EventTable::retire`]) to get the status and value. A process waits by
//! blocking on a wait tree ([`EventTable::block`], spec built by hand as [`Element`]s or
//! with [`Tree`]); it is woken once, when the tree's root completes ([`Wake`]).
//! Interrupt-side work goes through a [`DeferredQueue`], drained at syscall return.
//!
//! Modules, one concern each: [`id`] (ids and their cipher), [`status`] (named statuses),
//! [`value`] (what events carry), [`table`] (the event table), [`tree`] (flat wait-tree ABI
//! and validator), [`builder`] (Rust-side tree builder), [`deferred`] (upcall → kernel
//! handoff), [`quota`] (limits), [`stats`] (counters).
//!
//! `no_std` + `alloc`, no unsafe code, no panics on bad input: every failure is a named
//! [`Status`].
//!
//! # Testing
//!
//! * `cargo test -p events`: unit tests per rule, property tests against a reference model
//!   (`tests/model.rs`) and against a naive wait-tree checker (`tests/validator.rs`).
//! * `cargo bench -p events`: completion, block/wake, validation and bytes per event.
//! * Fuzzing the validator (cargo-fuzz needs nightly flags; `RUSTC_BOOTSTRAP=1` lets the
//!   stable toolchain accept them), from the repository root, for N seconds:
//!   `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir events/fuzz wait_tree -- -max_total_time=N`
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod builder;
pub mod deferred;
pub mod id;
pub mod quota;
pub mod stats;
pub mod status;
pub mod table;
pub mod tree;
pub mod value;

pub use builder::Tree;
pub use deferred::{DeferredQueue, DeferredStats, Pushed, Work};
pub use id::{EventId, Pid, Seed};
pub use quota::{Config, Quota};
pub use stats::Stats;
pub use status::Status;
pub use table::{
    Blocked, Completion, EventState, EventTable, Happened, Listing, Observer, Retired, Wake,
    BLOCKED_SATISFIED,
};
pub use tree::{validate, Element, Shape};
pub use value::{Value, ValueKind};
