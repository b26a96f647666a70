//! Entry stubs for Xen's event callback and failsafe callback.
//!
//! Xen delivers an event upcall like an exception without error code:
//! `rcx, r11, rip, cs, rflags, rsp, ss` on the current stack, upcalls masked
//! (we register with CALLBACKF_mask_events). The stub saves the
//! caller-saved registers, calls `ethos_upcall` (which only records pending
//! ports: see `evtchn`), restores them and returns with the `iret`
//! hypercall, which also restores the upcall mask from the saved rflags.IF.

use super::hypercall::register_callbacks;
use super::hypercall::XenError;
use guest::abi::hypercall::IRET;

core::arch::global_asm!(
    r#"
    .section .text.upcall, "ax"
    .global ethos_event_callback
    .p2align 4
    ethos_event_callback:
        movq (%rsp), %rcx
        movq 8(%rsp), %r11
        addq $16, %rsp
        pushq %rax
        pushq %rcx
        pushq %rdx
        pushq %rsi
        pushq %rdi
        pushq %r8
        pushq %r9
        pushq %r10
        pushq %r11
        pushq %rbx
        movq %rsp, %rbx
        andq $-16, %rsp
        call ethos_upcall
        movq %rbx, %rsp
        popq %rbx
        popq %r11
        popq %r10
        popq %r9
        popq %r8
        popq %rdi
        popq %rsi
        popq %rdx
        popq %rcx
        popq %rax
        pushq $0
        jmp hypercall_page + {iret} * 32

    .global ethos_failsafe_callback
    .p2align 4
    ethos_failsafe_callback:
        movq %rsp, %rdi
        andq $-16, %rsp
        call ethos_failsafe
        ud2
    "#,
    iret = const IRET,
    options(att_syntax)
);

extern "C" {
    fn ethos_event_callback();
    fn ethos_failsafe_callback();
}

/// Registers the callbacks with Xen.
pub fn install() -> Result<(), XenError> {
    register_callbacks(
        ethos_event_callback as *const () as u64,
        ethos_failsafe_callback as *const () as u64,
    )
}

#[no_mangle]
extern "C" fn ethos_upcall() {
    crate::evtchn::on_upcall();
}

/// Xen could not return to the guest (bad segment state): nothing to resume.
#[no_mangle]
extern "C" fn ethos_failsafe(frame: *const u64) -> ! {
    crate::kernel::die_with_message(format_args!("Xen failsafe callback (frame at {frame:p})"))
}
