//! The programs' x87 and SSE registers (what `fxsave` covers).
//!
//! The kernel is built soft-float and never touches these registers, so at
//! any moment they hold the state of the last program that ran in user
//! mode. Left alone, the next program would read it: a leak between
//! processes (a hostile program can run SSE instructions by hand even
//! though ours are built soft-float), and the first program's state would
//! be lost under the second's. So each program has an [`FpuState`]:
//! [`crate::user::run`] saves the registers into it at every exit from user
//! mode and loads them again on entry, but only when another program's
//! state (or none yet) is in the registers: a program that makes system
//! calls without another running in between pays one `fxsave` per call.
//!
//! AVX and later state (`xsave`) needs XCR0 bits this kernel never sets, so
//! those instructions fault in a program (`#UD`) and there is nothing more
//! to switch. The FS and GS bases need CR4.FSGSBASE, which stays off: a
//! program cannot set them either.

use core::sync::atomic::{AtomicU64, Ordering};

/// The 512-byte `fxsave` area, 16-byte aligned as the instruction needs.
#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// One program's x87/SSE registers while it is not in them.
pub struct FpuState {
    /// Unique for the kernel's lifetime, never reused: a new state that
    /// lands where an ended program's was is still told apart from it.
    id: u64,
    area: FxArea,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The id of the state the registers hold now (0: none).
static LOADED: AtomicU64 = AtomicU64::new(0);

impl Default for FpuState {
    fn default() -> Self {
        Self::new()
    }
}

impl FpuState {
    /// The state a program starts with, as after `fninit`: x87 control word
    /// 0x37f (all exceptions masked, 64-bit precision), MXCSR 0x1f80 (all
    /// SSE exceptions masked, round to nearest), every register zero.
    ///
    /// It is a plain value (no heap): a program's lives on its kernel
    /// stack, which goes with the process even though an exiting context
    /// never returns to drop its locals.
    pub fn new() -> FpuState {
        let mut area = FxArea([0; 512]);
        area.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        area.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        FpuState {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            area,
        }
    }

    /// Puts this state into the registers, unless it is there already.
    pub(crate) fn load(&self) {
        if LOADED.load(Ordering::Relaxed) == self.id {
            return;
        }
        // SAFETY: `area` is a live, 16-byte aligned 512-byte buffer. Its
        // contents are either `new`'s (valid: MXCSR has no reserved bit
        // set) or what `fxsave` stored from these registers (valid, since
        // the CPU held them), and only this module writes it.
        unsafe {
            core::arch::asm!("fxrstor64 [{}]", in(reg) self.area.0.as_ptr(), options(nostack, readonly, preserves_flags))
        };
        LOADED.store(self.id, Ordering::Relaxed);
    }

    /// Saves the registers into this state; they still hold it after.
    pub(crate) fn save(&mut self) {
        // SAFETY: `area` is a live, 16-byte aligned 512-byte buffer that
        // `&mut self` holds exclusively; `fxsave` writes exactly 512 bytes.
        unsafe {
            core::arch::asm!("fxsave64 [{}]", in(reg) self.area.0.as_mut_ptr(), options(nostack, preserves_flags))
        };
    }
}
