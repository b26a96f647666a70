//! The guest image: the kernel library plus the one symbol that ties hal's
//! `_start` to it.
//!
//! hal sits below the kernel and cannot name it, so its entry calls
//! `ethos_kernel_main`, which this shim defines. Declaring an unmangled
//! symbol is what the `unsafe_code` lint flags (two definitions would
//! clash at link time): this is the image's only such item, and the kernel
//! library itself forbids unsafe code outright.
//!
//! Built for `x86_64-unknown-none` (no red zone: Xen pushes exception and
//! event frames on the current stack). On any other target this binary only
//! explains how to build it.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
#[no_mangle]
fn ethos_kernel_main(start_info: &'static xen::public::StartInfo, entry_tsc: u64) -> ! {
    kernel::boot::boot(start_info, entry_tsc)
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the guest kernel runs under Xen: build it with scripts/build-guest (target x86_64-unknown-none)");
    std::process::exit(2);
}
