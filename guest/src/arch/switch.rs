//! Switching between kernel-scheduled processes: each has its own stack;
//! a switch saves the callee-saved registers on the old stack, stores its
//! stack pointer, loads the new one and pops. Everything else is saved by
//! the caller, as for any function call (`switch_context` is one).

use core::sync::atomic::AtomicU64;

core::arch::global_asm!(
    r#"
    .section .text.switch, "ax"
    .global ethos_switch
    .p2align 4
    // rdi: where to store the old rsp; rsi: the new rsp.
    ethos_switch:
        pushq %rbp
        pushq %rbx
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        movq %rsp, (%rdi)
        movq %rsi, %rsp
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbx
        popq %rbp
        ret

    // First code a new process runs: a clean frame, then Rust.
    .global ethos_process_trampoline
    ethos_process_trampoline:
        xorl %ebp, %ebp
        andq $-16, %rsp
        call ethos_process_main
        ud2
    "#,
    options(att_syntax)
);

extern "C" {
    fn ethos_switch(save_rsp: *const AtomicU64, load_rsp: u64);
    fn ethos_process_trampoline();
}

/// Saves the current context's stack pointer into `save` and resumes the
/// context whose stack pointer is `load`. Returns when someone switches back.
pub fn switch_context(save: &AtomicU64, load: u64) {
    // SAFETY: `save` stays valid while this context is suspended (its owner
    // keeps it in a Box); `load` is a stack prepared by `prepare_stack` or
    // saved by an earlier switch, and that context is suspended.
    unsafe { ethos_switch(save, load) }
}

/// Lays out a fresh stack so that switching to it enters the process
/// trampoline. Returns the stack pointer to switch to.
pub fn prepare_stack(stack: &mut [u64]) -> u64 {
    let n = stack.len();
    assert!(n >= 16, "process stack too small");
    // Six callee-saved registers (zero), then the return address.
    stack[n - 8..n - 1].fill(0);
    stack[n - 1] = 0;
    stack[n - 2] = ethos_process_trampoline as *const () as u64;
    // rsp points at r15's slot: 6 pops, then `ret` takes stack[n - 2].
    stack.as_ptr() as u64 + ((n - 8) * 8) as u64
}

#[no_mangle]
extern "C" fn ethos_process_main() -> ! {
    crate::sched::process_main()
}
