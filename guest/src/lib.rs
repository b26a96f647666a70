//! The pure parts of the guest kernel: Xen ABI layouts, `start_info` and
//! command-line parsing, time scaling, the console ring protocol and the
//! fault report format. They touch no hardware, so they are unit-tested on
//! the host; the kernel binary (`main.rs`) wires them to Xen.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod abi;
pub mod boot_info;
pub mod cksum;
pub mod cmdline;
pub mod console;
pub mod fault;
pub mod inetsum;
pub mod netcheck;
pub mod netfront;
pub mod pending;
pub mod syserr;
pub mod time;
pub mod timers;
pub mod tso;
pub mod txcsum;
pub mod version;
pub mod xenstore;
