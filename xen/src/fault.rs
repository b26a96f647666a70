//! What the kernel says when the CPU faults: a readable report with the
//! vector, error code, registers and (for a page fault) the faulting address.
//!
//! The arch layer fills a [`FaultReport`] from the exception frame; this
//! module only formats it, so the format is tested on the host.

use core::fmt;

/// General-purpose registers at the moment of the fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// Everything known about one fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultReport {
    pub vector: u8,
    pub error_code: Option<u64>,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub ss: u64,
    /// The faulting linear address, for a page fault (`cr2`).
    pub fault_address: Option<u64>,
    pub regs: Registers,
}

/// Exception vectors that push an error code on x86.
pub fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// Mnemonic and name of an exception vector.
pub fn vector_name(vector: u8) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point error"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        _ => ("#??", "reserved vector"),
    }
}

/// Decodes a page-fault error code into words a person can read.
pub struct PageFaultCause(pub u64);

impl fmt::Display for PageFaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        let what = if e & 1 == 0 {
            "not-present page"
        } else {
            "protection violation"
        };
        let access = if e & 16 != 0 {
            "instruction fetch"
        } else if e & 2 != 0 {
            "write"
        } else {
            "read"
        };
        let mode = if e & 4 != 0 { "user" } else { "kernel" };
        write!(f, "{access} of a {what} in {mode} mode")?;
        if e & 8 != 0 {
            f.write_str(", reserved bit set")?;
        }
        Ok(())
    }
}

impl fmt::Display for FaultReport {
    /// Several lines, each starting with `FAULT:` so the rig and a person can
    /// find the whole report in a console log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mnemonic, name) = vector_name(self.vector);
        write!(f, "FAULT: {mnemonic} {name} (vector {})", self.vector)?;
        match self.error_code {
            Some(code) => writeln!(f, " error_code={code:#x}")?,
            None => writeln!(f)?,
        }
        writeln!(
            f,
            "FAULT: rip={:#018x} cs={:#06x} rflags={:#010x} ss={:#06x}",
            self.rip, self.cs, self.rflags, self.ss
        )?;
        if let Some(addr) = self.fault_address {
            write!(f, "FAULT: faulting address (cr2)={addr:#018x}")?;
            if self.vector == 14 {
                if let Some(code) = self.error_code {
                    write!(f, ": {}", PageFaultCause(code))?;
                }
            }
            writeln!(f)?;
        }
        let r = &self.regs;
        writeln!(
            f,
            "FAULT: rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}",
            r.rax, r.rbx, r.rcx, r.rdx
        )?;
        writeln!(
            f,
            "FAULT: rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}",
            r.rsi, r.rdi, r.rbp, r.rsp
        )?;
        writeln!(
            f,
            "FAULT: r8 ={:#018x} r9 ={:#018x} r10={:#018x} r11={:#018x}",
            r.r8, r.r9, r.r10, r.r11
        )?;
        write!(
            f,
            "FAULT: r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}",
            r.r12, r.r13, r.r14, r.r15
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    #[test]
    fn page_fault_report_names_everything() {
        let report = FaultReport {
            vector: 14,
            error_code: Some(0x4),
            rip: 0x40_1234,
            cs: 0xe033,
            rflags: 0x246,
            ss: 0xe02b,
            fault_address: Some(0x10),
            regs: Registers {
                rax: 1,
                r15: 0xdead,
                rsp: 0x7f00,
                ..Default::default()
            },
        };
        let text = format!("{report}");
        let lines: std::vec::Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        assert!(lines.iter().all(|l| l.starts_with("FAULT: ")));
        assert_eq!(lines[0], "FAULT: #PF page fault (vector 14) error_code=0x4");
        assert!(lines[1].contains("rip=0x0000000000401234"));
        assert_eq!(lines[2], "FAULT: faulting address (cr2)=0x0000000000000010: read of a not-present page in user mode");
        assert!(lines[3].contains("rax=0x0000000000000001"));
        assert!(lines[4].contains("rsp=0x0000000000007f00"));
        assert!(lines[6].contains("r15=0x000000000000dead"));
    }

    #[test]
    fn fault_without_error_code_or_address() {
        let report = FaultReport {
            vector: 6,
            ..Default::default()
        };
        let text = format!("{report}");
        assert!(text.starts_with("FAULT: #UD invalid opcode (vector 6)\n"));
        assert!(!text.contains("error_code"));
        assert!(!text.contains("cr2"));
    }

    #[test]
    fn page_fault_causes() {
        assert_eq!(
            format!("{}", PageFaultCause(0b00011)),
            "write of a protection violation in kernel mode"
        );
        assert_eq!(
            format!("{}", PageFaultCause(0b10100)),
            "instruction fetch of a not-present page in user mode"
        );
        assert_eq!(
            format!("{}", PageFaultCause(0b01001)),
            "read of a protection violation in kernel mode, reserved bit set"
        );
    }

    #[test]
    fn error_code_vectors() {
        for v in 0..32u8 {
            let expected = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30].contains(&v);
            assert_eq!(has_error_code(v), expected, "vector {v}");
        }
        assert_eq!(vector_name(13).0, "#GP");
        assert_eq!(vector_name(9).0, "#??");
    }
}
