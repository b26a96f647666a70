//! Does nothing and exits 0: the smallest program, for spawn benchmarks.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

ethos::main!(main);

fn main(_: ethos::Args) -> i32 {
    0
}
