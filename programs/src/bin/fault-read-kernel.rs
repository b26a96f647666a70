//! Reads a kernel address (0x400000, in the kernel's L4 slot 0, absent
//! from the user root): the kernel must end it with a fault report
//! (a page fault, vector 14).

#![no_std]
#![no_main]
// The access is one instruction of assembly: a Rust read of an address no
// object lives at would be undefined behaviour, this is a defined fault.
#![deny(unsafe_code)]

ethos::main!(main);

const KERNEL_ADDRESS: u64 = 0x40_0000;

fn main(_: ethos::Args) -> i32 {
    ethos::println!("fault-read-kernel: reading {KERNEL_ADDRESS:#x}");
    let value: u64;
    #[allow(unsafe_code)]
    // SAFETY: the load touches no Rust object; it faults, and the kernel
    // ends the program. If it did not fault, `value` is just a number.
    unsafe {
        core::arch::asm!("mov {v}, qword ptr [{a}]", a = in(reg) KERNEL_ADDRESS, v = out(reg) value, options(nostack, readonly));
    }
    ethos::println!("fault-read-kernel: NOT FAULTED, read {value:#x}");
    1
}
