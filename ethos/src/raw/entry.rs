//! The program's entry: the `_start` symbol the linker script names, and
//! the read of the argument page.
//!
//! The kernel enters at `_start` with `rsp` = [`abi::STACK_TOP`] (16-byte
//! aligned, nothing pushed) and the argument page mapped read-only at
//! [`abi::ARGS_ADDRESS`]. A Rust function expects `rsp + 8` to be 16-byte
//! aligned on entry (a `call` pushed a return address), so `_start` is a
//! few instructions of assembly that clear the frame pointer, realign the
//! stack and `call` the Rust entry: it never returns.

use abi::{Args, ARGS_ADDRESS, MAX_ARGS_BYTES};

core::arch::global_asm!(
    ".pushsection .text._start,\"ax\",@progbits",
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    call {entry}",
    "    ud2",
    ".size _start, . - _start",
    ".popsection",
    entry = sym ethos_entry,
);

unsafe extern "Rust" {
    /// The program's main, defined by `ethos::main!` in the program.
    fn __ethos_main(args: crate::Args<'static>) -> i32;
}

/// The Rust side of the entry: runs the runtime's start-up, the program's
/// main, then exits with what main returned.
extern "C" fn ethos_entry() -> ! {
    let (record, bytes) = args_page();
    crate::rt::start(record, bytes, |args| {
        // SAFETY: `ethos::main!` defines `__ethos_main` with exactly this
        // signature (it type-checks the user's function against it); a
        // program without it fails to link.
        unsafe { __ethos_main(args) }
    })
}

/// The argument record and the bytes after it, as the kernel left them.
/// The length is clamped to [`MAX_ARGS_BYTES`], so the slice stays within
/// the one page; `rt` validates the rest.
fn args_page() -> (Args, &'static [u8]) {
    let base = ARGS_ADDRESS as *const u8;
    // SAFETY: the kernel maps the argument page, read-only, before entering
    // the program and never unmaps it (abi: ARGS_ADDRESS); it holds an
    // `Args` record (repr(C), 16 bytes, any bit pattern valid) at its start,
    // page-aligned.
    let record = unsafe { core::ptr::read(base.cast::<Args>()) };
    let len = (record.len as usize).min(MAX_ARGS_BYTES);
    // SAFETY: `size_of::<Args>() + MAX_ARGS_BYTES` is one page, all mapped;
    // the page is read-only and lives as long as the program.
    let bytes = unsafe { core::slice::from_raw_parts(base.add(core::mem::size_of::<Args>()), len) };
    (record, bytes)
}
