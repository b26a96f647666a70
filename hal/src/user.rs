//! User mode: entering a program and getting back from it.
//!
//! A 64-bit PV guest runs its kernel and its programs both in ring 3; Xen
//! tells the modes apart by a flag of its own and gives each mode its own
//! page-table root (`mm::AddressSpace`). [`run`] enters user mode with a
//! program's registers through `HYPERVISOR_iret` and returns when the
//! program comes back, saying why ([`Exit`]): a `syscall`, a fault, or an
//! event upcall that arrived while it ran.
//!
//! Every entry from user mode lands on one small entry stack (set with
//! `stack_switch` at boot). The stubs below never run Rust there: they
//! copy the program's registers into the [`UserRegs`] that `run` was
//! given, load the kernel stack pointer `run` saved, and return from `run`
//! as if it were an ordinary call. So the kernel handles the exit on the
//! stack of the process that called `run` (its own kernel context), and
//! may switch away and back (block) before entering user mode again. All
//! three callbacks run with event upcalls masked (`CALLBACKF_mask_events`,
//! and the trap table's mask bit), so nothing else writes the entry stack
//! before the stub has left it.
//!
//! The return to user mode always uses the iret hypercall with flags 0
//! (Xen leaves by `iretq` and restores every register), as Linux does:
//! the `VGCF_in_syscall` fast path would leak Xen's own rcx/r11 when an
//! upcall is pending at the return (`../shared/XEN-USERMODE.md` §4).

use crate::fpu::FpuState;
use crate::hypercall::{stack_switch, XenError};
use core::sync::atomic::{AtomicU64, Ordering};
use xen::public::hypercall::IRET;
use xen::public::{FLAT_KERNEL_SS, FLAT_USER_CS, FLAT_USER_SS};

/// A program's registers: loaded by [`run`], saved when it comes back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    /// Set by the trap stubs: the vector, with bit 8 when an error code was
    /// pushed.
    trap: u64,
    /// The error code, where the vector has one.
    error_code: u64,
}

impl UserRegs {
    /// The registers a program starts with: `rip` and `rsp` given, the
    /// rest zero, interrupts on (Xen forces IF and IOPL 0 anyway).
    pub fn start(rip: u64, rsp: u64) -> UserRegs {
        UserRegs {
            rip,
            rsp,
            rflags: 0x202,
            ..UserRegs::default()
        }
    }
}

/// Why a program came back to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It executed `syscall`: the number is in `rax`, the arguments in
    /// `rdi, rsi, rdx, r10, r8, r9`; `rip` is past the instruction.
    Syscall,
    /// A fault (or `int3`, or any vector Xen bounced): it cannot go on
    /// unless the kernel fixes the cause.
    Fault {
        vector: u8,
        error_code: Option<u64>,
        /// For a page fault: the address.
        fault_address: Option<u64>,
    },
    /// An event upcall interrupted it (already recorded: the kernel's
    /// upcall handler has run); it may resume at once.
    Upcall,
    /// Its `rip` or `rsp` was outside the user half: it was not entered.
    BadState,
}

const EXIT_SYSCALL: u64 = 1;
const EXIT_UPCALL: u64 = 2;
const EXIT_FAULT: u64 = 3;

/// The entry stack: every entry from user mode lands at its top.
#[repr(C, align(4096))]
struct EntryStack([u8; 4096]);
static mut ENTRY_STACK: EntryStack = EntryStack([0; 4096]);

/// Where `run` keeps the kernel stack pointer and the registers' address
/// while a program runs (one vCPU: one program at a time).
static KERNEL_RSP: AtomicU64 = AtomicU64::new(0);
static CURRENT_REGS: AtomicU64 = AtomicU64::new(0);

// Offsets into UserRegs, for the stubs.
const RAX: usize = 0;
const RBX: usize = 8;
const RCX: usize = 16;
const RDX: usize = 24;
const RSI: usize = 32;
const RDI: usize = 40;
const RBP: usize = 48;
const R8: usize = 56;
const R9: usize = 64;
const R10: usize = 72;
const R11: usize = 80;
const R12: usize = 88;
const R13: usize = 96;
const R14: usize = 104;
const R15: usize = 112;
const RIP: usize = 120;
const RSP: usize = 128;
const RFLAGS: usize = 136;
const TRAP: usize = 144;
const ERROR_CODE: usize = 152;

const _: () = {
    assert!(core::mem::offset_of!(UserRegs, rax) == RAX);
    assert!(core::mem::offset_of!(UserRegs, r15) == R15);
    assert!(core::mem::offset_of!(UserRegs, rip) == RIP);
    assert!(core::mem::offset_of!(UserRegs, rsp) == RSP);
    assert!(core::mem::offset_of!(UserRegs, rflags) == RFLAGS);
    assert!(core::mem::offset_of!(UserRegs, trap) == TRAP);
    assert!(core::mem::offset_of!(UserRegs, error_code) == ERROR_CODE);
};

core::arch::global_asm!(
    r#"
    // Saves every general register but rdi, rcx and r11 into the UserRegs
    // at %rdi (rdi was pushed; rcx and r11 come from Xen's frame).
    .macro SAVE_USER_GPRS
        movq %rax, {rax}(%rdi)
        movq %rbx, {rbx}(%rdi)
        movq %rdx, {rdx}(%rdi)
        movq %rsi, {rsi}(%rdi)
        movq %rbp, {rbp}(%rdi)
        movq %r8, {r8}(%rdi)
        movq %r9, {r9}(%rdi)
        movq %r10, {r10}(%rdi)
        movq %r12, {r12}(%rdi)
        movq %r13, {r13}(%rdi)
        movq %r14, {r14}(%rdi)
        movq %r15, {r15}(%rdi)
        popq %rax
        movq %rax, {rdi}(%rdi)
    .endm

    // Copies the frame slot at \off(%rsp) to the UserRegs field \field.
    .macro SAVE_SLOT off, field
        movq \off(%rsp), %rax
        movq %rax, \field(%rdi)
    .endm

    .section .text.user, "ax"
    .p2align 4
    // extern "C" fn ethos_user_run(regs: *mut UserRegs) -> u64 (the exit)
    .global ethos_user_run
    ethos_user_run:
        pushq %rbp
        pushq %rbx
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        movq %rsp, {kernel_rsp}(%rip)
        movq %rdi, {current_regs}(%rip)
        // The iret frame, under the stub's own rax, r11, rcx pushes:
        // flags (0: the general return), rip, cs, rflags, rsp, ss.
        pushq ${user_ss}
        pushq {rsp}(%rdi)
        pushq {rflags}(%rdi)
        pushq ${user_cs}
        pushq {rip}(%rdi)
        pushq $0
        movq {rax}(%rdi), %rax
        movq {rbx}(%rdi), %rbx
        movq {rcx}(%rdi), %rcx
        movq {rdx}(%rdi), %rdx
        movq {rsi}(%rdi), %rsi
        movq {rbp}(%rdi), %rbp
        movq {r8}(%rdi), %r8
        movq {r9}(%rdi), %r9
        movq {r10}(%rdi), %r10
        movq {r11}(%rdi), %r11
        movq {r12}(%rdi), %r12
        movq {r13}(%rdi), %r13
        movq {r14}(%rdi), %r14
        movq {r15}(%rdi), %r15
        movq {rdi}(%rdi), %rdi
        jmp hypercall_page + {iret} * 32

    // Back in the kernel: the saved kernel stack, then return from
    // ethos_user_run with the exit in rax.
    ethos_user_exit:
        cld
        movq {kernel_rsp}(%rip), %rsp
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbx
        popq %rbp
        ret

    // Xen's syscall callback, on the entry stack: rcx, r11, rip, cs,
    // rflags, rsp, ss (rcx = rip and r11 = rflags, as after `syscall`).
    .p2align 4
    .global ethos_syscall_entry
    ethos_syscall_entry:
        pushq %rdi
        movq {current_regs}(%rip), %rdi
        SAVE_USER_GPRS
        SAVE_SLOT 0, {rcx}
        SAVE_SLOT 8, {r11}
        SAVE_SLOT 16, {rip}
        SAVE_SLOT 32, {rflags}
        SAVE_SLOT 40, {rsp}
        movl ${exit_syscall}, %eax
        jmp ethos_user_exit

    // From the event callback when the frame came from user mode: rcx,
    // r11, rip, cs, rflags, rsp, ss (rcx and r11 the interrupted values).
    .p2align 4
    .global ethos_upcall_from_user
    ethos_upcall_from_user:
        pushq %rdi
        movq {current_regs}(%rip), %rdi
        SAVE_USER_GPRS
        SAVE_SLOT 0, {rcx}
        SAVE_SLOT 8, {r11}
        SAVE_SLOT 16, {rip}
        SAVE_SLOT 32, {rflags}
        SAVE_SLOT 40, {rsp}
        movl ${exit_upcall}, %eax
        jmp ethos_user_exit

    // From the trap stubs when the frame came from user mode:
    // trap word, rcx, r11, [error code], rip, cs, rflags, rsp, ss.
    .p2align 4
    .global ethos_trap_from_user_err
    ethos_trap_from_user_err:
        pushq %rdi
        movq {current_regs}(%rip), %rdi
        SAVE_USER_GPRS
        SAVE_SLOT 0, {trap}
        SAVE_SLOT 8, {rcx}
        SAVE_SLOT 16, {r11}
        SAVE_SLOT 24, {error_code}
        SAVE_SLOT 32, {rip}
        SAVE_SLOT 48, {rflags}
        SAVE_SLOT 56, {rsp}
        movl ${exit_fault}, %eax
        jmp ethos_user_exit

    .p2align 4
    .global ethos_trap_from_user_noerr
    ethos_trap_from_user_noerr:
        pushq %rdi
        movq {current_regs}(%rip), %rdi
        SAVE_USER_GPRS
        SAVE_SLOT 0, {trap}
        SAVE_SLOT 8, {rcx}
        SAVE_SLOT 16, {r11}
        movq $0, {error_code}(%rdi)
        SAVE_SLOT 24, {rip}
        SAVE_SLOT 40, {rflags}
        SAVE_SLOT 48, {rsp}
        movl ${exit_fault}, %eax
        jmp ethos_user_exit
    "#,
    rax = const RAX, rbx = const RBX, rcx = const RCX, rdx = const RDX,
    rsi = const RSI, rdi = const RDI, rbp = const RBP, r8 = const R8,
    r9 = const R9, r10 = const R10, r11 = const R11, r12 = const R12,
    r13 = const R13, r14 = const R14, r15 = const R15, rip = const RIP,
    rsp = const RSP, rflags = const RFLAGS, trap = const TRAP,
    error_code = const ERROR_CODE,
    user_cs = const FLAT_USER_CS, user_ss = const FLAT_USER_SS,
    iret = const IRET,
    exit_syscall = const EXIT_SYSCALL, exit_upcall = const EXIT_UPCALL,
    exit_fault = const EXIT_FAULT,
    kernel_rsp = sym KERNEL_RSP, current_regs = sym CURRENT_REGS,
    options(att_syntax)
);

extern "C" {
    fn ethos_user_run(regs: *mut UserRegs) -> u64;
    fn ethos_syscall_entry();
}

/// The address Xen's syscall callback is registered at.
pub(crate) fn syscall_entry() -> u64 {
    ethos_syscall_entry as *const () as u64
}

/// Points every entry from user mode at the entry stack (once, at boot).
pub(crate) fn set_entry_stack() -> Result<(), XenError> {
    let top = core::ptr::addr_of!(ENTRY_STACK) as u64 + 4096;
    stack_switch(FLAT_KERNEL_SS, top)
}

/// Runs the program whose registers are `regs` in the address space that
/// is active ([`crate::mm::AddressSpace::activate`]) until it comes back;
/// `regs` then holds its registers, and `fpu` its x87/SSE registers
/// (`crate::fpu`). Event upcalls are enabled on return.
pub fn run(regs: &mut UserRegs, fpu: &mut FpuState) -> Exit {
    let user = crate::mm::USER_HALF;
    if !user.contains(&regs.rip) || !user.contains(&regs.rsp) || !crate::mm::user_root_loaded() {
        return Exit::BadState;
    }
    // Upcalls stay masked until the iret unmasks them atomically with the
    // entry (Xen sets the mask from the frame's IF): one that arrives in
    // between is delivered in user mode and comes straight back here.
    crate::upcall::mask();
    fpu.load();
    // SAFETY: `regs` is a live, exclusive UserRegs for the whole call: the
    // stubs write it only between this entry and the return below. The
    // program runs with the user root, which maps user frames only
    // (`mm::AddressSpace`), so it cannot reach kernel memory; it comes back
    // only through the stubs, which restore the callee-saved registers and
    // the stack pointer saved here, so the call returns like any other.
    let exit = unsafe { ethos_user_run(regs) };
    fpu.save();
    CURRENT_REGS.store(0, Ordering::Relaxed);
    let exit = match exit {
        EXIT_SYSCALL => Exit::Syscall,
        EXIT_UPCALL => {
            crate::upcall::run_handler();
            Exit::Upcall
        }
        _ => {
            let vector = (regs.trap & 0xff) as u8;
            Exit::Fault {
                vector,
                error_code: (regs.trap & 0x100 != 0).then_some(regs.error_code),
                fault_address: if vector == 14 {
                    crate::vcpu_cr2()
                } else {
                    None
                },
            }
        }
    };
    crate::upcall::unmask();
    exit
}
