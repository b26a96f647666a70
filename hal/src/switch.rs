//! Switching between kernel-scheduled contexts (processes): each has its
//! own stack; a switch saves the callee-saved registers on the old stack,
//! stores its stack pointer, loads the new one and pops. Everything else is
//! saved by the caller, as for any function call (`ethos_switch` is one).
//!
//! The API is sound by itself: only the kernel loop resumes a context
//! ([`resume`] refuses while one runs), a context leaves only through
//! [`suspend`], and a running context's stack cannot be freed under it,
//! because [`resume`] holds its own reference (`Arc`) until it is back.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

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

    // First code a new context runs: its entry function is the next word
    // on the stack; a clean frame, then Rust.
    .global ethos_context_trampoline
    ethos_context_trampoline:
        popq %rax
        xorl %ebp, %ebp
        andq $-16, %rsp
        call *%rax
        ud2
    "#,
    options(att_syntax)
);

extern "C" {
    fn ethos_switch(save_rsp: *const AtomicU64, load_rsp: u64);
    fn ethos_context_trampoline();
}

/// A context's first function: it never returns (a context ends by
/// suspending for good).
pub type ContextEntry = extern "C" fn() -> !;

/// A kernel-scheduled context: its stack and, while it is suspended, its
/// saved stack pointer.
pub struct Context {
    /// Kept alive as long as any `Arc` to the context; the CPU uses it
    /// through rsp while the context runs.
    stack: Box<[u64]>,
    rsp: AtomicU64,
}

impl Context {
    /// A context of `stack_words` 8-byte words that starts in `entry` when
    /// first resumed; `None` when out of memory.
    pub fn new(stack_words: usize, entry: ContextEntry) -> Option<Arc<Context>> {
        let stack_words = stack_words.max(64);
        let mut stack = Vec::new();
        stack.try_reserve_exact(stack_words).ok()?;
        stack.resize(stack_words, 0u64);
        let mut stack = stack.into_boxed_slice();
        let n = stack.len();
        // Six callee-saved registers (zero), the return address (the
        // trampoline) and the entry the trampoline pops; a zero word on top.
        stack[n - 9..].fill(0);
        stack[n - 3] = ethos_context_trampoline as *const () as u64;
        stack[n - 2] = entry as *const () as u64;
        // rsp points at r15's slot: 6 pops, then `ret` takes stack[n - 3].
        let rsp = stack.as_ptr() as u64 + ((n - 9) * 8) as u64;
        Some(Arc::new(Context {
            stack,
            rsp: AtomicU64::new(rsp),
        }))
    }

    /// The stack's size in bytes (for memory accounting).
    pub fn stack_bytes(&self) -> usize {
        self.stack.len() * 8
    }

    /// Whether anything was written into the bottom `words` of the stack
    /// (it starts zeroed): a stack about to overflow. `false` while the
    /// context runs.
    pub fn stack_touched_below(&self, words: usize) -> bool {
        !self.is_running() && self.stack.iter().take(words).any(|&w| w != 0)
    }

    fn is_running(&self) -> bool {
        RUNNING
            .lock()
            .as_ref()
            .is_some_and(|r| core::ptr::eq(Arc::as_ptr(r), self))
    }

    /// The deepest the stack has been, in bytes, from its top: the stack
    /// starts zeroed, so the lowest nonzero word marks it (a frame that
    /// wrote only zeros down there would not count). `None` while the
    /// context runs, when its stack is the CPU's.
    pub fn stack_high_water(&self) -> Option<usize> {
        if self.is_running() {
            return None;
        }
        let lowest = self.stack.iter().position(|&w| w != 0)?;
        Some((self.stack.len() - lowest) * 8)
    }
}

/// The kernel loop's stack pointer while a context runs.
static KERNEL_RSP: AtomicU64 = AtomicU64::new(0);
/// The running context, held by `resume` until it suspends.
static RUNNING: spin::Mutex<Option<Arc<Context>>> = spin::Mutex::new(None);

/// Why a context could not be resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlreadyRunning;

/// Runs `ctx` until it calls [`suspend`]. Only the kernel loop (outside any
/// context) may resume one: called from inside a context, it refuses.
pub fn resume(ctx: &Arc<Context>) -> Result<(), AlreadyRunning> {
    let load = {
        let mut running = RUNNING.lock();
        if running.is_some() {
            return Err(AlreadyRunning);
        }
        *running = Some(ctx.clone());
        ctx.rsp.load(Ordering::Relaxed)
    };
    // SAFETY: `load` is the stack pointer `Context::new` prepared or the
    // last `suspend` of this context saved; the context is suspended (no
    // context runs, checked above) and its stack stays allocated while
    // RUNNING holds the Arc. KERNEL_RSP is a static, valid for the save.
    unsafe { ethos_switch(&KERNEL_RSP, load) };
    // Back on the kernel loop's stack: the context suspended. Dropping the
    // Arc here may free its stack, which nothing runs on any more.
    RUNNING.lock().take();
    Ok(())
}

/// Leaves the running context for the kernel loop (which resumed it);
/// returns when the context is resumed again. Outside any context it
/// returns at once.
pub fn suspend() {
    let save = {
        let running = RUNNING.lock();
        let Some(ctx) = running.as_ref() else { return };
        // The Arc in RUNNING keeps the context (and this pointer) alive
        // until `resume` has switched back and taken it out.
        &ctx.rsp as *const AtomicU64
    };
    // SAFETY: `save` points into the running context, alive as above;
    // KERNEL_RSP holds the kernel loop's stack pointer saved by `resume`,
    // whose frame is suspended in `ethos_switch`.
    unsafe { ethos_switch(save, KERNEL_RSP.load(Ordering::Relaxed)) }
}
