//! Says so, then loops without a system call: only preemption by the
//! kernel's timer can take the CPU back (the preemption test). With an
//! argument N it stops after N million iterations and exits 0; without
//! one it loops forever.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

ethos::main!(main);

fn main(args: ethos::Args) -> i32 {
    let rounds: Option<u64> = args.get(1).and_then(|a| a.parse().ok());
    ethos::println!("spin: looping without system calls");
    let Some(millions) = rounds else {
        loop {
            core::hint::spin_loop();
        }
    };
    let mut n: u64 = 0;
    while n < millions * 1_000_000 {
        n = core::hint::black_box(n + 1);
    }
    ethos::println!("spin: done");
    0
}
