//! Random bits from the CPU, for the kernel's secrets (event-id keys,
//! page-capability tags, the network stack's seed).
//!
//! RDSEED (conditioned entropy) is used where CPUID offers it, else RDRAND
//! (a DRBG the CPU reseeds itself); each is retried a few times, as the
//! vendors advise, since either may fail when its source is drained.
//!
//! CPUID is asked through Xen ([`xen_cpuid`]), so that the answer is the
//! toolstack's policy for this domain (what `cpuid=` in its xl config
//! allows), as it is for every PV guest; a plain CPUID instruction in a PV
//! guest runs on the CPU itself and shows the host's features, unless the
//! hardware can make it fault. A host without them, or a policy hiding
//! them, yields `None`, and the caller says so at boot (and takes the seed
//! dom0 hands it, when there is one).

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

/// CPUID leaf `leaf`, subleaf `subleaf`, as Xen answers it for this
/// domain: (eax, ebx, ecx, edx).
///
/// Xen's forced emulation prefix (`ud2` then the bytes "xen", before the
/// instruction) makes Xen take the #UD, recognise the prefix and emulate
/// the CPUID after it with the domain's CPUID policy.
#[inline(never)]
fn xen_cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let (eax, ebx, ecx, edx): (u32, u64, u32, u32);
    // SAFETY: a PV guest's #UD on Xen's forced emulation prefix is handled
    // by Xen itself, which emulates the CPUID after it and resumes past it;
    // CPUID writes eax..edx only, and rbx (which the compiler reserves) is
    // saved and restored around it.
    unsafe {
        core::arch::asm!(
            "mov {saved}, rbx",
            "ud2",
            ".ascii \"xen\"",
            "cpuid",
            "xchg {saved}, rbx",
            saved = out(reg) ebx,
            inout("eax") leaf => eax,
            inout("ecx") subleaf => ecx,
            out("edx") edx,
            options(nostack, preserves_flags),
        );
    }
    (eax, ebx as u32, ecx, edx)
}

/// What this domain's CPUID offers (RDSEED first).
pub fn source() -> Option<Source> {
    // Leaf 7 is read only when leaf 0 says it exists.
    if xen_cpuid(0, 0).0 >= 7 && xen_cpuid(7, 0).1 & (1 << 18) != 0 {
        return Some(Source::Rdseed);
    }
    (xen_cpuid(1, 0).2 & (1 << 30) != 0).then_some(Source::Rdrand)
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
