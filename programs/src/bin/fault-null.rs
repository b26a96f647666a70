//! Reads address 0 (never mapped): the kernel must end it with a fault
//! report (a page fault, vector 14).

#![no_std]
#![no_main]
// The access is one instruction of assembly: a Rust read through a null
// pointer would be undefined behaviour, this is a defined fault.
#![deny(unsafe_code)]

ethos::main!(main);

fn main(_: ethos::Args) -> i32 {
    ethos::println!("fault-null: reading address 0");
    let value: u64;
    #[allow(unsafe_code)]
    // SAFETY: the load touches no Rust object; it faults, and the kernel
    // ends the program.
    unsafe {
        core::arch::asm!("mov {v}, qword ptr [{a}]", a = in(reg) 0u64, v = out(reg) value, options(nostack, readonly));
    }
    ethos::println!("fault-null: NOT FAULTED, read {value:#x}");
    1
}
