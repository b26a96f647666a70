//! The one edge of the library: the `syscall` instruction, and the few
//! other places a program must trust the kernel's word about memory (the
//! argument page, the heap pages, the entry symbol). Everything unsafe in
//! the crate is in this module; every other module is safe code over the
//! safe functions at the bottom of this file.
//!
//! [`syscall0`] .. [`syscall6`] are the raw calls, for a program that needs
//! one the library does not wrap: registers as in [`abi`] (`rax` = call
//! number, arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`; out `rax` =
//! status, `rdx` = result 0, `r8` = result 1; `rcx` and `r11` clobbered).
//! They return `(rax, rdx, r8)`.
//!
//! On a host build (`not(target_os = "none")`) there is no assembly: the
//! calls go to the fake kernel ([`crate::fake`]), which reads and writes
//! the caller's buffers through [`UserMemory`], the host's stand-in for the
//! kernel's user-copy primitive.

use abi::{Call, Status, WaitElement};

#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
pub(crate) mod heap;
pub mod shared;

/// What a call returned: `(rax, rdx, r8)`.
pub type Ret = (u64, u64, u64);

#[cfg(target_os = "none")]
mod arch {
    use super::Ret;
    use core::arch::asm;

    // Every function below is the same instruction with fewer inputs. The
    // kernel preserves every register but rax, rdx, r8 (results) and rcx,
    // r11 (the instruction's own); it does not touch the user stack, so
    // `nostack`. Memory may be read or written through pointer arguments,
    // so neither `nomem` nor `readonly`.

    /// # Safety
    /// See [`super::syscall6`].
    #[inline(always)]
    pub unsafe fn syscall6(n: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> Ret {
        let (rax, rdx, r8);
        // SAFETY: the caller upholds the call's contract for its pointer
        // arguments (syscall6's rules); the register use is the ABI's.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") n => rax,
                in("rdi") a0,
                in("rsi") a1,
                inlateout("rdx") a2 => rdx,
                in("r10") a3,
                inlateout("r8") a4 => r8,
                in("r9") a5,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        (rax, rdx, r8)
    }
}

#[cfg(not(target_os = "none"))]
mod arch {
    use super::{Ret, UserMemory};

    /// # Safety
    /// See [`super::syscall6`].
    pub unsafe fn syscall6(n: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> Ret {
        // The caller's promise (pointer arguments valid as the call reads
        // and writes them) is what makes the memory token honest.
        let mut memory = UserMemory { _private: () };
        crate::fake::dispatch(&mut memory, n, [a0, a1, a2, a3, a4, a5])
    }
}

/// A system call with six arguments.
///
/// # Safety
///
/// Every pointer argument must be valid for what the call does with it
/// ([`abi::Call`] lists them): a buffer the kernel reads must be readable
/// for its length while the call runs; a buffer it writes (the output of
/// `Block`, the buffer of `Retire`, `KernelStats`) must be writable for its
/// length and not aliased by any live Rust reference. `PageBind` must not
/// map a page over memory Rust is using, `PageUnbind`/`PageFree` must not
/// take away such memory, and `Exit` does not return.
#[inline(always)]
pub unsafe fn syscall6(n: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> Ret {
    // SAFETY: the caller's contract is this function's contract.
    unsafe { arch::syscall6(n, a0, a1, a2, a3, a4, a5) }
}

/// A system call with five arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall5(n: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> Ret {
    // SAFETY: as syscall6, the missing argument is 0.
    unsafe { syscall6(n, a0, a1, a2, a3, a4, 0) }
}

/// A system call with four arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall4(n: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> Ret {
    // SAFETY: as syscall6, the missing arguments are 0.
    unsafe { syscall6(n, a0, a1, a2, a3, 0, 0) }
}

/// A system call with three arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall3(n: u64, a0: u64, a1: u64, a2: u64) -> Ret {
    // SAFETY: as syscall6, the missing arguments are 0.
    unsafe { syscall6(n, a0, a1, a2, 0, 0, 0) }
}

/// A system call with two arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall2(n: u64, a0: u64, a1: u64) -> Ret {
    // SAFETY: as syscall6, the missing arguments are 0.
    unsafe { syscall6(n, a0, a1, 0, 0, 0, 0) }
}

/// A system call with one argument.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall1(n: u64, a0: u64) -> Ret {
    // SAFETY: as syscall6, the missing arguments are 0.
    unsafe { syscall6(n, a0, 0, 0, 0, 0, 0) }
}

/// A system call with no arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall0(n: u64) -> Ret {
    // SAFETY: as syscall6, every argument is 0.
    unsafe { syscall6(n, 0, 0, 0, 0, 0, 0) }
}

// ---------------------------------------------------------------------------
// The safe edge the rest of the crate uses. Each function's signature
// carries what makes its call sound: buffers the kernel writes are `&mut`,
// calls that only read memory take plain words (a bad pointer there is the
// kernel's `BadAddress`, never a write into our memory).

/// Whether `call` only reads user memory (or none), so any argument
/// values are sound. Everything not listed (the calls that write to a
/// buffer, `Exit`, the page calls that change our own mappings, and calls
/// added after this list) goes through its own function below.
fn reads_only(call: Call) -> bool {
    use Call::*;
    matches!(
        call,
        Pid | Time
            | WallClock
            | Print
            | Beep
            | Cancel
            | Spawn
            | PageAlloc
            | PageGrant
            | PageUngrant
            | XsRead
            | XsWrite
            | XsDirectory
            | XsRm
            | XsSetPerms
            | XsTransactionStart
            | XsTransactionEnd
            | XsWatch
            | XsWatchNext
            | XsUnwatch
            | EvtchnAllocUnbound
            | EvtchnBindInterdomain
            | EvtchnNotify
            | EvtchnWait
            | EvtchnClose
            | Ping
            | ShutdownEvent
            | Random
            | FileRead
            | FileWrite
            | FileInfo
            | DirList
            | DirCreate
            | Remove
            | TcpListen
            | TcpAccept
            | TcpConnect
            | SockRecv
            | SockSend
            | SockClose
            | UdpBind
            | UdpRecv
            | UdpSend
    )
}

/// A call that at most reads user memory. Any other call is refused
/// without trapping: `rax` = [`Status::InvalidArgument`].
pub(crate) fn call(call: Call, a: [u64; 6]) -> Ret {
    if !reads_only(call) {
        return (u64::from(Status::InvalidArgument.code()), 0, 0);
    }
    // SAFETY: the call writes no user memory and changes no mapping, so no
    // argument value can touch a Rust object; what it reads is copied.
    unsafe { syscall6(call as u64, a[0], a[1], a[2], a[3], a[4], a[5]) }
}

/// `Retire(event, buf, len)`: the kernel writes at most `buf.len()` bytes
/// into `buf`.
pub(crate) fn retire(event: u64, buf: &mut [u8]) -> Ret {
    // SAFETY: `buf` is writable for its length and borrowed exclusively for
    // the call.
    unsafe {
        syscall3(
            Call::Retire as u64,
            event,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
        )
    }
}

/// `KernelStats(out, len)`: the kernel writes at most `out.len()` bytes.
pub(crate) fn kernel_stats(out: &mut [u8]) -> Ret {
    // SAFETY: `out` is writable for its length and borrowed exclusively.
    unsafe {
        syscall2(
            Call::KernelStats as u64,
            out.as_mut_ptr() as u64,
            out.len() as u64,
        )
    }
}

/// `List(out, len)`: the kernel writes at most `out.len()` event ids.
pub(crate) fn list(out: &mut [u64]) -> Ret {
    // SAFETY: `out` is writable for its length (in bytes: 8 per id) and
    // borrowed exclusively; a u64 slice is 8-aligned.
    unsafe {
        syscall2(
            Call::List as u64,
            out.as_mut_ptr() as u64,
            (out.len() * 8) as u64,
        )
    }
}

/// `NetStats(out, len)`: the kernel writes at most `out.len()` bytes.
pub(crate) fn net_stats(out: &mut [u8]) -> Ret {
    // SAFETY: `out` is writable for its length and borrowed exclusively.
    unsafe {
        syscall2(
            Call::NetStats as u64,
            out.as_mut_ptr() as u64,
            out.len() as u64,
        )
    }
}

/// `Block(tree, n, out, cap)`: the kernel reads the tree and writes at most
/// `out.len()` event ids into `out`.
pub(crate) fn block(tree: &[WaitElement], out: &mut [u64]) -> Ret {
    // SAFETY: `tree` is readable (a WaitElement is 16 bytes, repr(C), as the
    // ABI reads it); `out` is writable for `out.len()` u64s and borrowed
    // exclusively.
    unsafe {
        syscall4(
            Call::Block as u64,
            tree.as_ptr() as u64,
            tree.len() as u64,
            out.as_mut_ptr() as u64,
            out.len() as u64,
        )
    }
}

/// `PageBind(cap, va)` and `PageUnbind(cap)` / `PageFree(cap)`, for pages
/// outside the region the runtime's heap owns (`pages` checks the address
/// before binding; the heap's own caps are never handed out). Binding a
/// page where nothing of ours lives, or taking away a page that is not the
/// heap's, cannot change memory Rust uses: at worst a later access through
/// a raw address faults and the kernel ends the program.
pub(crate) fn page_call(call: Call, cap: u64, va: u64) -> Ret {
    if !matches!(call, Call::PageBind | Call::PageUnbind | Call::PageFree) {
        return (u64::from(Status::InvalidArgument.code()), 0, 0);
    }
    // SAFETY: see above; the callers keep heap addresses out.
    unsafe { syscall2(call as u64, cap, va) }
}

/// Copies `data` to `va`.. of [`crate::pages::USER_REGION`] (the caller
/// checked the range is inside it).
///
/// Sound because nothing of Rust's lives in that region: the heap, stack,
/// image and argument page are elsewhere, and the library never makes a
/// reference into it, so these bytes alias no Rust object; the program has
/// one thread. The bytes are written one by one, volatile, since the memory
/// is outside what the compiler knows (a peer domain may map it too). An
/// unbound page faults and the kernel ends the program: the copy never
/// returns half done.
#[cfg(target_os = "none")]
pub(crate) fn region_write(va: u64, data: &[u8]) {
    for (i, &b) in data.iter().enumerate() {
        // SAFETY: see above; `va + i` is inside the user region.
        unsafe { core::ptr::write_volatile((va + i as u64) as *mut u8, b) };
    }
}

/// Copies `va`.. of [`crate::pages::USER_REGION`] into `out`; see
/// [`region_write`].
#[cfg(target_os = "none")]
pub(crate) fn region_read(va: u64, out: &mut [u8]) {
    for (i, o) in out.iter_mut().enumerate() {
        // SAFETY: as region_write; `va + i` is inside the user region.
        *o = unsafe { core::ptr::read_volatile((va + i as u64) as *const u8) };
    }
}

/// On the host the fake kernel holds the bound pages' bytes.
#[cfg(not(target_os = "none"))]
pub(crate) fn region_write(va: u64, data: &[u8]) {
    crate::fake::region_write(va, data)
}

/// On the host the fake kernel holds the bound pages' bytes.
#[cfg(not(target_os = "none"))]
pub(crate) fn region_read(va: u64, out: &mut [u8]) {
    crate::fake::region_read(va, out)
}

/// `Exit(code)`: does not return.
pub(crate) fn exit(code: u64) -> ! {
    // SAFETY: Exit takes no pointer; the kernel ends the program.
    unsafe {
        syscall1(Call::Exit as u64, code);
    }
    // The kernel never returns from Exit; if it did, stop here.
    #[allow(clippy::empty_loop)]
    loop {
        core::hint::spin_loop();
    }
}

/// The host's user-memory accessor, given to the fake kernel for one call
/// at a time. Only [`syscall6`] makes one, and its caller promised the
/// call's pointer arguments are valid as the call uses them; the fake
/// reads and writes only those `(pointer, length)` pairs.
#[cfg(not(target_os = "none"))]
pub struct UserMemory {
    _private: (),
}

#[cfg(not(target_os = "none"))]
impl UserMemory {
    /// Copies `len` bytes in from `ptr` (a null or zero-length buffer is
    /// empty).
    pub(crate) fn read(&self, ptr: u64, len: u64) -> alloc::vec::Vec<u8> {
        if len == 0 || ptr == 0 {
            return alloc::vec::Vec::new();
        }
        // SAFETY: the pair comes from the call's arguments, which the
        // syscall's caller promised readable (see the type's doc).
        unsafe { core::slice::from_raw_parts(ptr as *const u8, len as usize) }.to_vec()
    }

    /// Copies `bytes` out to `ptr`.
    pub(crate) fn write(&mut self, ptr: u64, bytes: &[u8]) {
        if bytes.is_empty() || ptr == 0 {
            return;
        }
        // SAFETY: the fake writes at most the length the call was given for
        // this buffer, which the caller promised writable and unaliased.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr as *mut u8, bytes.len()) }
    }
}
