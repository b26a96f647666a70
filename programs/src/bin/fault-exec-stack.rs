//! Jumps into its stack (mapped without execute right): the kernel must
//! end it with a fault report (a page fault on the instruction fetch,
//! vector 14).

#![no_std]
#![no_main]
// The call is assembly: Rust has no way to jump to data, and should not.
#![deny(unsafe_code)]

ethos::main!(main);

fn main(_: ethos::Args) -> i32 {
    // `ret`: were the stack executable, the call would come straight back.
    let code = [0xc3u8; 16];
    let at = code.as_ptr() as u64;
    ethos::println!("fault-exec-stack: calling into the stack at {at:#x}");
    #[allow(unsafe_code)]
    // SAFETY: the fetch faults (the stack is NX) and the kernel ends the
    // program. Were it executable, `ret` returns at once, having touched
    // no register but rsp (restored by the return) and nothing in memory
    // but the pushed return address, below the stack pointer.
    unsafe {
        core::arch::asm!("call {a}", a = in(reg) at, clobber_abi("C"));
    }
    core::hint::black_box(&code);
    ethos::println!("fault-exec-stack: NOT FAULTED");
    1
}
