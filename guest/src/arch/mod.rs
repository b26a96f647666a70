//! The arch layer: the only place (with the shared-memory accessors) where the
//! kernel uses `unsafe`. Everything here is x86_64 Xen PV specific.

pub mod entry;
pub mod heap;
pub mod hypercall;
pub mod mm;
pub mod shared;
pub mod switch;
pub mod traps;
pub mod upcall;

/// Where the image is linked and where the domain builder maps frame 0
/// (`VIRT_BASE` in the ELF notes; `link.ld` uses the same address).
pub const VIRT_BASE: u64 = 0x40_0000;

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads a counter; PV guests may execute it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Releases a lock whose holder was interrupted by a fault or panic.
///
/// Only for the crash paths: the kernel runs on one vCPU and the interrupted
/// holder will never resume (the domain shuts down next), so no two users of
/// the protected data can overlap.
pub fn force_unlock_for_crash<T>(lock: &spin::Mutex<T>) {
    // SAFETY: see above; the lock's holder is dead for good.
    unsafe { lock.force_unlock() }
}

/// Reads a word at `addr`, which the caller knows is unmapped: the page
/// fault must be taken (test-only, for the fault scenario).
pub fn read_unmapped_for_test(addr: u64) -> u64 {
    // SAFETY: deliberately faulting; the fault handler never returns here.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Executes `ud2` (test-only, for the fault scenario).
pub fn invalid_opcode_for_test() -> ! {
    // SAFETY: raises #UD; the fault handler never returns.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

/// Divides with the `div` instruction so a zero divisor raises #DE instead
/// of Rust's checked panic (test-only, for the fault scenario).
pub fn divide_for_test(dividend: u64, divisor: u64) -> u64 {
    let quotient: u64;
    // SAFETY: `div` only touches rax/rdx; a zero divisor faults and the
    // fault handler never returns.
    unsafe {
        core::arch::asm!("div {d}", d = in(reg) divisor, inlateout("rax") dividend => quotient, inlateout("rdx") 0u64 => _)
    };
    quotient
}
