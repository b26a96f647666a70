//! Xen's guest-side protocols, pure: the public ABI layouts
//! ([`public`]), `start_info` and the command line, the console and xenstore
//! ring protocols, the boot options' table ([`options`]), the netfront
//! rings, the pending-port record, time scaling, the Xen version string, the
//! fault report format and the boot seed dom0 hands a domain ([`seed`]).
//!
//! Nothing here touches hardware or makes a hypercall: every function works
//! on bytes or on a [`rpc::SharedMem`], so all of it is tested (and fuzzed)
//! on the host against hostile input. The kernel (`kernel/`) and its unsafe
//! layer (`hal/`) wire it to Xen.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod boot_info;
pub mod cmdline;
pub mod console;
pub mod fault;
pub mod netfront;
pub mod options;
pub mod pending;
pub mod public;
pub mod seed;
pub mod time;
pub mod version;
pub mod xenstore;
