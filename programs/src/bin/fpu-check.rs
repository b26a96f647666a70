//! Checks that a program's x87/SSE registers are its own (`hal::fpu`):
//! nothing another program left in them is visible, and nothing another
//! program does changes them, across system calls, blocking and
//! preemption. Programs are built soft-float, so only the assembly here
//! touches these registers.
//!
//! - `fpu-check probe`: exits 0 if it starts with the initial state (every
//!   XMM register zero, MXCSR 0x1f80, x87 control word 0x37f), 2 if not.
//! - `fpu-check hold SEED`: fills every XMM register and MXCSR with a
//!   pattern from SEED, spins without system calls (so it is preempted by
//!   whoever else runs), and exits 0 if the pattern is intact, 3 if not.
//! - `fpu-check`: the test usertest runs: its own pattern, then a probe
//!   child (which must not see it) and a spinning `hold` child beside its
//!   own spin; exits 0 when every check held.

#![no_std]
#![no_main]
// Only the register loads and stores are assembly.
#![deny(unsafe_code)]

extern crate alloc;

use ethos::println;
use ethos::process::{self, ExitStatus};

ethos::main!(main);

/// What the registers hold: XMM0..XMM15, then MXCSR and the x87 control word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Regs {
    xmm: [[u64; 2]; 16],
    mxcsr: u32,
    fcw: u16,
}

/// Round toward zero (RC = 11) on top of the default 0x1f80: a value a
/// fresh program never starts with.
const PATTERN_MXCSR: u32 = 0x7f80;

fn pattern(seed: u64) -> [[u64; 2]; 16] {
    core::array::from_fn(|i| {
        let i = i as u64;
        [
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i,
            !seed ^ (i << 32),
        ]
    })
}

#[allow(unsafe_code)]
fn load(xmm: &[[u64; 2]; 16], mxcsr: u32) {
    // SAFETY: reads 256 bytes from `xmm` and 4 from `mxcsr`, both live
    // locals; writes only the XMM registers and MXCSR, which the compiler
    // never uses in this soft-float program.
    unsafe {
        core::arch::asm!(
            "movdqu xmm0, [{p}]", "movdqu xmm1, [{p} + 16]",
            "movdqu xmm2, [{p} + 32]", "movdqu xmm3, [{p} + 48]",
            "movdqu xmm4, [{p} + 64]", "movdqu xmm5, [{p} + 80]",
            "movdqu xmm6, [{p} + 96]", "movdqu xmm7, [{p} + 112]",
            "movdqu xmm8, [{p} + 128]", "movdqu xmm9, [{p} + 144]",
            "movdqu xmm10, [{p} + 160]", "movdqu xmm11, [{p} + 176]",
            "movdqu xmm12, [{p} + 192]", "movdqu xmm13, [{p} + 208]",
            "movdqu xmm14, [{p} + 224]", "movdqu xmm15, [{p} + 240]",
            "ldmxcsr [{m}]",
            p = in(reg) xmm.as_ptr(),
            m = in(reg) &mxcsr,
            options(nostack, readonly, preserves_flags),
        );
    }
}

#[allow(unsafe_code)]
fn read() -> Regs {
    let mut r = Regs {
        xmm: [[0; 2]; 16],
        mxcsr: 0,
        fcw: 0,
    };
    // SAFETY: writes 256 bytes into `r.xmm`, 4 into `r.mxcsr` and 2 into
    // `r.fcw`, all of the live local `r`; reads registers only.
    unsafe {
        core::arch::asm!(
            "movdqu [{p}], xmm0", "movdqu [{p} + 16], xmm1",
            "movdqu [{p} + 32], xmm2", "movdqu [{p} + 48], xmm3",
            "movdqu [{p} + 64], xmm4", "movdqu [{p} + 80], xmm5",
            "movdqu [{p} + 96], xmm6", "movdqu [{p} + 112], xmm7",
            "movdqu [{p} + 128], xmm8", "movdqu [{p} + 144], xmm9",
            "movdqu [{p} + 160], xmm10", "movdqu [{p} + 176], xmm11",
            "movdqu [{p} + 192], xmm12", "movdqu [{p} + 208], xmm13",
            "movdqu [{p} + 224], xmm14", "movdqu [{p} + 240], xmm15",
            "stmxcsr [{m}]",
            "fnstcw [{c}]",
            p = in(reg) r.xmm.as_mut_ptr(),
            m = in(reg) &mut r.mxcsr,
            c = in(reg) &mut r.fcw,
            options(nostack, preserves_flags),
        );
    }
    r
}

/// Spins without a system call, long enough to be preempted several
/// times (10 ms slices) under QEMU/TCG.
fn spin() {
    let mut n: u64 = 0;
    while n < 30_000_000 {
        n = core::hint::black_box(n + 1);
    }
}

fn main(args: ethos::Args) -> i32 {
    match args.get(1) {
        Some("probe") => probe(),
        Some("hold") => {
            let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
            hold(seed)
        }
        None => match parent() {
            Ok(()) => {
                println!("fpu-check: every program's x87/SSE registers are its own");
                0
            }
            Err(e) => {
                println!("fpu-check: FAILED: {e}");
                1
            }
        },
        Some(other) => {
            println!("fpu-check: unknown mode {other:?} (probe, hold SEED, or none)");
            64
        }
    }
}

fn probe() -> i32 {
    let r = read();
    let fresh = Regs {
        xmm: [[0; 2]; 16],
        mxcsr: 0x1f80,
        fcw: 0x037f,
    };
    if r == fresh {
        0
    } else {
        println!("fpu-check probe: not the initial state: {r:?}");
        2
    }
}

fn hold(seed: u64) -> i32 {
    let want = pattern(seed);
    load(&want, PATTERN_MXCSR);
    spin();
    let r = read();
    if r.xmm == want && r.mxcsr == PATTERN_MXCSR {
        0
    } else {
        println!("fpu-check hold {seed}: registers changed under it: {r:?}");
        3
    }
}

fn parent() -> Result<(), alloc::string::String> {
    let want = pattern(1);
    load(&want, PATTERN_MXCSR);
    // A child that starts while our pattern is in the registers.
    let (_, probe) =
        process::spawn("fpu-check", &["probe"]).map_err(|e| alloc::format!("spawn probe: {e}"))?;
    match process::wait(probe) {
        Ok(ExitStatus::Code(0)) => {}
        other => {
            return Err(alloc::format!(
                "the probe saw another program's state: {other:?}"
            ))
        }
    }
    let r = read();
    if r.xmm != want || r.mxcsr != PATTERN_MXCSR {
        return Err(alloc::format!("ours changed across spawn and wait: {r:?}"));
    }
    // Two spinners with different patterns, preempting each other.
    let (_, holder) = process::spawn("fpu-check", &["hold", "2"])
        .map_err(|e| alloc::format!("spawn hold: {e}"))?;
    spin();
    let r = read();
    if r.xmm != want || r.mxcsr != PATTERN_MXCSR {
        return Err(alloc::format!("ours changed while another spun: {r:?}"));
    }
    match process::wait(holder) {
        Ok(ExitStatus::Code(0)) => Ok(()),
        other => Err(alloc::format!("the holder ended {other:?}")),
    }
}
