//! Writes a kernel address (the kernel's heap at 0x500000, in the kernel's
//! L4 slot 0, absent from the user root): the kernel must end it with a
//! fault report (a page fault, vector 14) and run on unharmed.

#![no_std]
#![no_main]
// The store is one instruction of assembly: a Rust write to an address no
// object lives at would be undefined behaviour, this is a defined fault.
#![deny(unsafe_code)]

ethos::main!(main);

const KERNEL_ADDRESS: u64 = 0x50_0000;

fn main(_: ethos::Args) -> i32 {
    ethos::println!("fault-write-kernel: writing {KERNEL_ADDRESS:#x}");
    #[allow(unsafe_code)]
    // SAFETY: the store touches no Rust object of this program; it faults,
    // and the kernel ends the program.
    unsafe {
        core::arch::asm!("mov qword ptr [{a}], {v}", a = in(reg) KERNEL_ADDRESS, v = in(reg) 0xdead_u64, options(nostack));
    }
    ethos::println!("fault-write-kernel: NOT FAULTED");
    1
}
