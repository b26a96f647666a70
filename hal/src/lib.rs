//! The kernel's only unsafe code, for Xen PV on x86_64: the entry point and
//! ELF notes, hypercalls, the trap table and the event upcall, context
//! switches, page-table updates, the heap, and the accessors of memory
//! another domain (or Xen) can write.
//!
//! The rule this crate keeps: every safe `pub fn` is sound by itself,
//! whatever its (safe) caller passes. Where soundness would rest on a check
//! the caller made, the function is `unsafe fn` with its contract written
//! down, or takes a value only this crate can mint. The kernel above
//! (`kernel/`, `#![forbid(unsafe_code)]`) reaches it only through that
//! surface; hal never calls up into the kernel except through the handlers
//! the kernel registers at boot (the fault handler, the upcall handler, the
//! failsafe handler) and the one entry symbol the image names
//! (`ethos_kernel_main`, see `entry.rs`).
//!
//! On any target but `x86_64-unknown-none` the crate is only its pure
//! bookkeeping (`pool`), which the host tests; the host builds never link
//! the rest.
#![no_std]
#![cfg_attr(target_os = "none", deny(unsafe_op_in_unsafe_fn))]
#![cfg_attr(target_os = "none", deny(clippy::undocumented_unsafe_blocks))]

extern crate alloc;

#[cfg(target_os = "none")]
pub mod balloon;
#[cfg(target_os = "none")]
pub mod entropy;
#[cfg(target_os = "none")]
pub mod entry;
#[cfg(target_os = "none")]
pub mod fpu;
#[cfg(target_os = "none")]
pub mod grants;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod hypercall;
#[cfg(target_os = "none")]
pub mod mm;
pub mod pool;
#[cfg(target_os = "none")]
pub mod shared;
#[cfg(target_os = "none")]
pub mod suspend;
#[cfg(target_os = "none")]
pub mod switch;
#[cfg(all(target_os = "none", feature = "test-hooks"))]
pub mod test_hooks;
#[cfg(target_os = "none")]
pub mod traps;
#[cfg(target_os = "none")]
pub mod upcall;
#[cfg(target_os = "none")]
pub mod user;
#[cfg(target_os = "none")]
mod vcpu;
#[cfg(target_os = "none")]
pub use vcpu::{map_shared_info, rdtsc, shared_info, vcpu_cr2, VIRT_BASE};
