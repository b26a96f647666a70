//! Tries to set its FS base with `wrfsbase`: the kernel leaves CR4.FSGSBASE
//! off (`hal::fpu`), so the instruction is invalid (`#UD`, vector 6) and
//! the kernel ends the program with a fault report. Were it allowed, the
//! FS base would be state the kernel does not switch between programs.

#![no_std]
#![no_main]
// The instruction is assembly.
#![deny(unsafe_code)]

ethos::main!(main);

fn main(_: ethos::Args) -> i32 {
    ethos::println!("fault-wrfsbase: setting the FS base");
    #[allow(unsafe_code)]
    // SAFETY: it faults (#UD). Were it allowed, it changes only the FS
    // base, which nothing in this program uses.
    unsafe {
        core::arch::asm!("wrfsbase {v}", v = in(reg) 0x1000u64, options(nostack, nomem, preserves_flags));
    }
    ethos::println!("fault-wrfsbase: NOT FAULTED");
    1
}
