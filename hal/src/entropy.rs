//! Random bits from the CPU, for the kernel's secrets (event-id keys,
//! page-capability tags, the network stack's seed).
//!
//! RDSEED (conditioned entropy) is used where CPUID offers it, else RDRAND
//! (a DRBG the CPU reseeds itself); each is retried a few times, as the
//! vendors advise, since either may fail when its source is drained. Under
//! Xen a PV guest's CPUID shows what the toolstack's policy allows, so a
//! host without them (or a policy hiding them) yields `None`, and the
//! caller says so at boot.

/// Where the bits came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Rdseed,
    Rdrand,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Rdseed => "RDSEED",
            Source::Rdrand => "RDRAND",
        }
    }
}

/// What CPUID says this CPU offers (RDSEED first).
pub fn source() -> Option<Source> {
    // CPUID is always there on x86_64 (a safe intrinsic); leaf 7 is read
    // only when leaf 0 says it exists.
    let max = core::arch::x86_64::__cpuid(0).eax;
    if max >= 7 {
        let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
        if leaf7.ebx & (1 << 18) != 0 {
            return Some(Source::Rdseed);
        }
    }
    let leaf1 = core::arch::x86_64::__cpuid(1);
    (leaf1.ecx & (1 << 30) != 0).then_some(Source::Rdrand)
}

/// 64 random bits from `source`, or `None` if it failed ten times running.
pub fn draw(source: Source) -> Option<u64> {
    for _ in 0..10 {
        let value: u64;
        let ok: u8;
        // SAFETY: the instruction exists (CPUID said so, `source`); it
        // writes one register and the carry flag, touches no memory.
        unsafe {
            match source {
                Source::Rdseed => core::arch::asm!(
                    "rdseed {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok,
                    options(nomem, nostack)
                ),
                Source::Rdrand => core::arch::asm!(
                    "rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok,
                    options(nomem, nostack)
                ),
            }
        }
        if ok != 0 {
            return Some(value);
        }
        core::hint::spin_loop();
    }
    None
}
