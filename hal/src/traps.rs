//! The virtual IDT: every CPU exception lands in a stub that saves the
//! registers and calls `ethos_fault_entry`, which builds a [`FaultReport`]
//! and hands it to the kernel's fault policy (report, then crash shutdown).
//!
//! Xen PV x86_64 delivers an exception on the current kernel stack with this
//! frame (lowest address first): `rcx, r11, [error code], rip, cs, rflags,
//! rsp, ss`. Xen saved `rcx` and `r11` because its own `sysret` path clobbers
//! them. The stubs below push the vector and the other registers on top.

use super::hypercall::{set_trap_table, XenError};
use xen::fault::{has_error_code, FaultReport, Registers};
use xen::public::{TrapInfo, FLAT_KERNEL_CS};

/// Each stub is 16 bytes: `push $vector; jmp common`.
const STUB_SIZE: u64 = 16;

core::arch::global_asm!(
    r#"
    // Each stub pushes its vector, with bit 8 set when Xen pushed an error
    // code (8, 10-14, 17, 21, 29, 30), so the common code finds cs.
    .macro TRAP_STUB vec
        .p2align 4
        .if (\vec == 8) || (\vec == 10) || (\vec == 11) || (\vec == 12) || (\vec == 13) || (\vec == 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
        pushq $(\vec | 0x100)
        .else
        pushq $\vec
        .endif
        jmp ethos_trap_common
    .endm

    .section .text.traps, "ax"
    .p2align 4
    .global ethos_trap_stubs
    ethos_trap_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        TRAP_STUB \v
    .endr

    ethos_trap_common:
        // A frame from user mode (cs & 3 == 3) goes back to the kernel
        // through `user`; the kernel's own faults are reported below.
        testq $0x100, (%rsp)
        jz 1f
        testb $3, 40(%rsp)
        jnz ethos_trap_from_user_err
        jmp 2f
    1:
        testb $3, 32(%rsp)
        jnz ethos_trap_from_user_noerr
    2:
        pushq %rax
        pushq %rbx
        pushq %rdx
        pushq %rsi
        pushq %rdi
        pushq %rbp
        pushq %r8
        pushq %r9
        pushq %r10
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        movq %rsp, %rdi
        andq $-16, %rsp
        call ethos_fault_entry
        ud2
    "#,
    options(att_syntax)
);

extern "C" {
    static ethos_trap_stubs: [u8; 32 * STUB_SIZE as usize];
}

/// What the stubs and Xen left on the stack, lowest address first.
#[repr(C)]
struct PushedByStub {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    // Pushed by Xen:
    rcx: u64,
    r11: u64,
}

/// Vectors the kernel installs handlers for. NMI (2) and double fault (8)
/// are Xen's own business for a PV guest; 9 and 15 are reserved.
const HANDLED_VECTORS: [u8; 17] = [0, 1, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20];

/// What the kernel does with a fault: report it and end the domain (it
/// never returns to the faulting code).
pub type FaultHandler = fn(&FaultReport) -> !;

static FAULT_HANDLER: spin::Once<FaultHandler> = spin::Once::new();

/// `trap_info.flags` bit 2: Xen masks event upcalls on entry.
const TRAP_MASKS_UPCALLS: u8 = 4;

/// Installs the trap table; every exception goes to `handler` (the first
/// handler installed stays).
pub fn install(handler: FaultHandler) -> Result<(), XenError> {
    FAULT_HANDLER.call_once(|| handler);
    let base = core::ptr::addr_of!(ethos_trap_stubs) as u64;
    let mut table = [TrapInfo {
        vector: 0,
        flags: 0,
        cs: 0,
        address: 0,
    }; HANDLED_VECTORS.len() + 1];
    for (slot, &vector) in table.iter_mut().zip(HANDLED_VECTORS.iter()) {
        // int3 may be raised by anyone (DPL 3); the rest only by hardware.
        // Every handler runs with upcalls masked (flag bit 2): an exit from
        // user mode leaves the entry stack before anything else may land.
        let dpl = if vector == 3 { 3 } else { 0 };
        *slot = TrapInfo {
            vector,
            flags: dpl | TRAP_MASKS_UPCALLS,
            cs: FLAT_KERNEL_CS,
            address: base + vector as u64 * STUB_SIZE,
        };
    }
    set_trap_table(&table)
}

/// Called by `ethos_trap_common` with a pointer to the saved registers.
#[no_mangle]
extern "C" fn ethos_fault_entry(saved: *const PushedByStub) -> ! {
    // SAFETY: the stub passes the address of the frame it just pushed on the
    // live stack; Xen's part of the frame follows it.
    let (pushed, rest) = unsafe { (&*saved, saved.add(1) as *const u64) };
    let vector = (pushed.vector & 0xff) as u8;
    let (error_code, frame) = if has_error_code(vector) {
        // SAFETY: for these vectors Xen pushed the error code before rip.
        (Some(unsafe { rest.read() }), unsafe { rest.add(1) })
    } else {
        (None, rest)
    };
    // SAFETY: rip, cs, rflags, rsp and ss follow in this order.
    let [rip, cs, rflags, rsp, ss] = unsafe { [0, 1, 2, 3, 4].map(|i| frame.add(i).read()) };
    let report = FaultReport {
        vector,
        error_code,
        rip,
        // The upper half of the saved cs carries Xen's saved upcall mask.
        cs: cs & 0xffff,
        rflags,
        ss: ss & 0xffff,
        fault_address: if vector == 14 {
            crate::vcpu_cr2()
        } else {
            None
        },
        regs: Registers {
            rax: pushed.rax,
            rbx: pushed.rbx,
            rcx: pushed.rcx,
            rdx: pushed.rdx,
            rsi: pushed.rsi,
            rdi: pushed.rdi,
            rbp: pushed.rbp,
            rsp,
            r8: pushed.r8,
            r9: pushed.r9,
            r10: pushed.r10,
            r11: pushed.r11,
            r12: pushed.r12,
            r13: pushed.r13,
            r14: pushed.r14,
            r15: pushed.r15,
        },
    };
    match FAULT_HANDLER.get() {
        Some(handler) => handler(&report),
        // A fault before the kernel installed its handler cannot be
        // reported: only Xen's log of the crash is left.
        None => crate::hypercall::sched_shutdown(xen::public::ShutdownReason::Crash),
    }
}
