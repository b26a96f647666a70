//! The Ethos-Xen guest kernel: a Xen PV x86_64 domain whose system calls
//! never block (see `ARCHITECTURE.md` at the repository root).
//!
//! The kernel forbids unsafe code: everything that needs it (entry, traps,
//! hypercalls, page tables, shared memory, context switches) is in `hal`,
//! whose safe functions are sound by themselves. The folders are layers,
//! and an import only ever points down this list:
//!
//! - `status`, `live_stats`, `clock`, `console`, `panic`: the named
//!   statuses, the live figures' line, time, the log, the crash policy
//!   (each may use the ones before it);
//! - `event`: the registry of event sources, timers;
//! - `xen`: Xen services: event channels, the xenstore client;
//! - `mm`: frames, page capabilities, regions, grants;
//! - `proc`: processes, the scheduler and its loop;
//! - `drivers`: netfront;
//! - `net`, `rpc`: the network stack, the RPC client and vchan servers;
//! - `syscall`: the system calls, the only code that copies between
//!   processes and the kernel;
//! - `apps`: the programs;
//! - `boot`: the boot sequence, the one place that names every part.
//!
//! Pure modules (the network's frame checks, checksums and segment joining,
//! timers, statuses, the live figures' line, the secrets' pool) import nothing else of the kernel and serve every
//! layer. `tests/layers.rs` checks the rule on every build of the tests.
//!
//! On the host only the pure modules build (the network checks, segment
//! joining, checksums, timers, statuses, the live figures' line, the
//! secrets' pool), and are
//! unit-tested there.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// The system calls are the kernel's interface and stay whole in the image
// users run, even where its few linked-in apps use only part of them; the
// guest-test image (feature test-apps, linted with dead code denied) uses
// them all, so dead code is still caught there.
#![cfg_attr(not(feature = "test-apps"), allow(dead_code))]

extern crate alloc;

#[cfg(target_os = "none")]
pub mod apps;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod clock;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(all(target_os = "none", feature = "net"))]
pub mod drivers;
pub mod entropy;
pub mod event;
pub mod live_stats;
pub mod mm;
pub mod net;
#[cfg(target_os = "none")]
pub mod panic;
#[cfg(target_os = "none")]
pub mod proc;
#[cfg(target_os = "none")]
pub mod rpc;
pub mod status;
#[cfg(target_os = "none")]
pub mod syscall;
pub mod xen;
