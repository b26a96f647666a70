//! The image's first bytes: Xen ELF notes, the hypercall page, the boot
//! stack and `_start`.
//!
//! Xen enters `_start` on a stack it built, with `rsi` pointing at the
//! `start_info` page and event upcalls possibly enabled. We take the TSC first
//! (for the boot-time figure), zero BSS, switch to our own stack and call
//! `kernel_entry(start_info, entry_tsc)`.

use crate::VIRT_BASE;

/// Size of the boot stack, in BSS.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

// ELF notes read by the domain builder (`xen/elfnote.h`). VIRT_BASE and
// PADDR_OFFSET are equal so the image lands at pseudo-physical frame 0.
core::arch::global_asm!(
    r#"
    .macro XEN_ELFNOTE_HEAD type
        .p2align 2
        .long 4
        .long 662f - 661f
        .long \type
        .asciz "Xen"
    661:
    .endm
    .macro XEN_ELFNOTE_TAIL
    662:
        .p2align 2
    .endm
    .macro XEN_ELFNOTE_STR type, text
        XEN_ELFNOTE_HEAD \type
        .asciz "\text"
        XEN_ELFNOTE_TAIL
    .endm
    .macro XEN_ELFNOTE_QUAD type, value
        XEN_ELFNOTE_HEAD \type
        .quad \value
        XEN_ELFNOTE_TAIL
    .endm

    .section .note.Xen, "a", @note
    XEN_ELFNOTE_STR 6, Ethos-Xen
    XEN_ELFNOTE_STR 7, 0.1
    XEN_ELFNOTE_STR 5, xen-3.0
    XEN_ELFNOTE_STR 8, generic
    XEN_ELFNOTE_QUAD 3, {virt_base}
    XEN_ELFNOTE_QUAD 4, {virt_base}
    XEN_ELFNOTE_QUAD 1, _start
    XEN_ELFNOTE_QUAD 2, hypercall_page
    XEN_ELFNOTE_STR 10, !writable_page_tables

    // No file bytes (the linker script puts it at the text segment's
    // zero-filled end): Xen writes the whole page before `_start`.
    .section .hypercall_page, "ax", @nobits
    .p2align 12
    .global hypercall_page
    hypercall_page:
        .skip 4096

    .section .bss.boot_stack, "aw", @nobits
    .p2align 12
    boot_stack:
        .skip {stack_size}
    boot_stack_top:

    .section .text.entry, "ax"
    .global _start
    _start:
        rdtsc
        shlq $32, %rdx
        orq %rdx, %rax
        movq %rax, %r12
        movq %rsi, %r13
        leaq __bss_start(%rip), %rdi
        leaq __bss_end(%rip), %rcx
        subq %rdi, %rcx
        xorl %eax, %eax
        cld
        rep stosb
        leaq boot_stack_top(%rip), %rsp
        xorl %ebp, %ebp
        movq %r13, %rdi
        movq %r12, %rsi
        call kernel_entry
        ud2
    "#,
    virt_base = const VIRT_BASE,
    stack_size = const BOOT_STACK_SIZE,
    options(att_syntax)
);

extern "Rust" {
    /// The kernel's entry, named by the image (`kernel/src/main.rs`): hal
    /// is below the kernel and cannot name it, so the link ties them.
    fn ethos_kernel_main(start_info: &'static xen::public::StartInfo, entry_tsc: u64) -> !;
}

/// Called by `_start` on the boot stack with BSS zeroed.
#[no_mangle]
extern "C" fn kernel_entry(start_info: *const xen::public::StartInfo, entry_tsc: u64) -> ! {
    // SAFETY: Xen passes the virtual address of the start_info page, mapped
    // in the boot area. It is this domain's private page (no other domain
    // writes it), so a shared reference for the kernel's life is sound.
    let start_info = unsafe { &*start_info };
    crate::mm::set_start_info(start_info);
    // SAFETY: the image defines the symbol with exactly this signature (a
    // mismatch would fail to link only by name, so the shim in main.rs
    // spells the same types); it is entered once, here.
    unsafe { ethos_kernel_main(start_info, entry_tsc) }
}
