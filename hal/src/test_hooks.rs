//! Deliberate faults for the rig's fault scenarios (feature `test-hooks`,
//! only in the `guest-test` image): each proves that a kind of fault is
//! caught and reported. None of them is reachable in the image users run.

/// Reads a word at `addr` with a plain load, bypassing every check, so
/// that a page fault is taken there when nothing is mapped.
pub fn read_unmapped(addr: u64) -> u64 {
    // SAFETY: a volatile read creates no reference; if `addr` is mapped the
    // read returns whatever is there (a u64 has no invalid values), and if
    // not the fault handler ends the domain and never returns here. The
    // test image only ever passes addresses the kernel holds no objects at.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Executes `ud2`.
pub fn invalid_opcode() -> ! {
    // SAFETY: raises #UD; the fault handler never returns.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

/// Divides with the `div` instruction so a zero divisor raises #DE instead
/// of Rust's checked panic.
pub fn divide(dividend: u64, divisor: u64) -> u64 {
    let quotient: u64;
    // SAFETY: `div` only touches rax/rdx; a zero divisor faults and the
    // fault handler never returns.
    unsafe {
        core::arch::asm!("div {d}", d = in(reg) divisor, inlateout("rax") dividend => quotient, inlateout("rdx") 0u64 => _)
    };
    quotient
}
