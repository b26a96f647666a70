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
use core::sync::atomic::Ordering;
use xen::public::hypercall::IRET;
use xen::public::vcpu_info;

core::arch::global_asm!(
    r#"
    .section .text.upcall, "ax"
    .global ethos_event_callback
    .p2align 4
    ethos_event_callback:
        // From user mode (cs & 3 == 3 in the frame: rcx, r11, rip, cs):
        // back to the kernel through `user`, which records it.
        testb $3, 24(%rsp)
        jnz ethos_upcall_from_user
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

/// The kernel's upcall handler: it only records what is pending (runs with
/// upcalls masked, on whatever stack was interrupted).
pub type UpcallHandler = fn();
/// What to do when Xen cannot return to the guest: report and end.
pub type FailsafeHandler = fn(frame: u64) -> !;

static UPCALL_HANDLER: spin::Once<UpcallHandler> = spin::Once::new();
static FAILSAFE_HANDLER: spin::Once<FailsafeHandler> = spin::Once::new();

/// Registers the callbacks with Xen: event upcalls go to `on_upcall`, the
/// failsafe callback to `on_failsafe` (the first handlers installed stay).
pub fn install(on_upcall: UpcallHandler, on_failsafe: FailsafeHandler) -> Result<(), XenError> {
    UPCALL_HANDLER.call_once(|| on_upcall);
    FAILSAFE_HANDLER.call_once(|| on_failsafe);
    register_callbacks(
        ethos_event_callback as *const () as u64,
        ethos_failsafe_callback as *const () as u64,
        crate::user::syscall_entry(),
    )?;
    crate::user::set_entry_stack()
}

#[no_mangle]
extern "C" fn ethos_upcall() {
    run_handler();
}

/// Runs the kernel's upcall handler (also for upcalls that arrived in
/// user mode, from `user::run`).
pub(crate) fn run_handler() {
    if let Some(handler) = UPCALL_HANDLER.get() {
        handler();
    }
}

/// Xen could not return to the guest (bad segment state): nothing to resume.
#[no_mangle]
extern "C" fn ethos_failsafe(frame: *const u64) -> ! {
    match FAILSAFE_HANDLER.get() {
        Some(handler) => handler(frame as u64),
        None => crate::hypercall::sched_shutdown(xen::public::ShutdownReason::Crash),
    }
}

const VCPU0: usize = xen::public::shared_info::VCPU_INFO;

/// Masks event upcalls on vCPU 0; returns whether they were masked before.
pub fn mask() -> bool {
    crate::shared_info().is_some_and(|si| {
        let before = si.load_u8(VCPU0 + vcpu_info::UPCALL_MASK, Ordering::SeqCst);
        si.store_u8(VCPU0 + vcpu_info::UPCALL_MASK, 1, Ordering::SeqCst);
        before != 0
    })
}

/// Unmasks event upcalls; an upcall that arrived while masked is delivered
/// by a no-op hypercall (Xen checks for pending upcalls on its way out).
pub fn unmask() {
    let Some(si) = crate::shared_info() else {
        return;
    };
    si.store_u8(VCPU0 + vcpu_info::UPCALL_MASK, 0, Ordering::SeqCst);
    if si.load_u8(VCPU0 + vcpu_info::UPCALL_PENDING, Ordering::SeqCst) != 0 {
        crate::hypercall::xen_version();
    }
}
