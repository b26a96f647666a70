//! Says so, then loops forever without a system call: only preemption by
//! the kernel's timer can take the CPU back (the preemption test).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

ethos::main!(main);

fn main(_: ethos::Args) -> i32 {
    ethos::println!("spin: looping without system calls");
    loop {
        core::hint::spin_loop();
    }
}
