//! Writes into its own text (mapped read-only and executable): the kernel
//! must end it with a fault report (a page fault, vector 14).

#![no_std]
#![no_main]
// The store is one instruction of assembly, aimed at this function's own
// code: through a Rust pointer it would be undefined behaviour.
#![deny(unsafe_code)]

ethos::main!(main);

fn main(_: ethos::Args) -> i32 {
    let text = main as fn(ethos::Args) -> i32 as usize as u64;
    ethos::println!("fault-write-text: writing to own text at {text:#x}");
    #[allow(unsafe_code)]
    // SAFETY: the store faults (text is read-only) and the kernel ends the
    // program. Were text writable, it would rewrite one byte of main's
    // first instruction with the same byte: nothing Rust relies on changes.
    unsafe {
        core::arch::asm!(
            "mov {b}, byte ptr [{a}]",
            "mov byte ptr [{a}], {b}",
            a = in(reg) text,
            b = out(reg_byte) _,
            options(nostack),
        );
    }
    ethos::println!("fault-write-text: NOT FAULTED");
    1
}
