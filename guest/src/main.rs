//! The Ethos-Xen guest kernel: a Xen PV x86_64 domain.
//!
//! Built for `x86_64-unknown-none` (no red zone: Xen pushes exception and
//! event frames on the current stack). On any other target this binary only
//! explains how to build it; the pure logic lives in the library and is
//! tested on the host.
#![cfg_attr(target_os = "none", no_std, no_main)]
// The system calls are the kernel's interface and stay whole in the image
// users run, even where its few linked-in apps use only part of them; the
// guest-test image (feature test-apps, linted with dead code denied) uses
// them all, so dead code is still caught there.
#![cfg_attr(not(feature = "test-apps"), allow(dead_code))]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod apps;
#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod evtchn;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod kernel;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod klog;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod pages;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod rpcclient;
// Networking (feature `net`): netfront under smoltcp, socket system calls.
#[cfg(all(target_os = "none", feature = "net"))]
#[forbid(unsafe_code)]
mod netdev;
#[cfg(all(target_os = "none", feature = "net"))]
#[forbid(unsafe_code)]
mod netstack;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod sched;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod sys;
#[cfg(all(target_os = "none", feature = "net"))]
#[forbid(unsafe_code)]
mod sysnet;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod vchans;
#[cfg(target_os = "none")]
#[forbid(unsafe_code)]
mod xs;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the guest kernel runs under Xen: build it with scripts/build-guest (target x86_64-unknown-none)");
    std::process::exit(2);
}
