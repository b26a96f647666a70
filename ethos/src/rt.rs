//! The program runtime: entry, `main!`, the panic handler, the heap.
//!
//! # What the entry expects
//!
//! The kernel starts a program at `_start` (the ELF entry, in
//! `raw::entry`) with:
//!
//! * `rsp` = [`abi::STACK_TOP`], 16-byte aligned, nothing pushed, and
//!   [`abi::STACK_PAGES`] pages of stack mapped below it;
//! * the argument page mapped read-only at [`abi::ARGS_ADDRESS`]: an
//!   [`abi::Args`] record, then the NUL-separated arguments;
//! * every other register unspecified (the entry assumes nothing of them).
//!
//! `_start` realigns the stack for a Rust call, the runtime installs the
//! `log` backend (feature `log`, level Info), checks the arguments
//! ([`crate::Args::parse`]; a refused record prints a line and exits with
//! [`EXIT_BAD_ARGS`]), calls the function registered with [`main!`](crate::main!) and
//! exits with what it returned.
//!
//! A panic prints `panic at FILE:LINE: message` and exits with
//! [`EXIT_PANIC`]. The global allocator grows the heap page by page
//! ([`heap`]); out of memory is a null pointer (Rust's `alloc` then calls
//! its error handler, which panics), never a panic inside the allocator.
//!
//! These items exist only on the guest target (`target_os = "none"`), so
//! host builds and tests link without them.

use crate::args::Args;
use crate::process;

/// The exit status after a panic.
pub const EXIT_PANIC: i32 = 101;
/// The exit status when the kernel's argument record is malformed.
pub const EXIT_BAD_ARGS: i32 = 125;

/// Registers the program's main: `ethos::main!(main)` with
/// `fn main(args: ethos::Args) -> i32`. The runtime calls it once, after
/// start-up, and exits with the value it returns.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        /// The entry the runtime calls (see `ethos::rt`).
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub fn __ethos_main(args: $crate::Args<'static>) -> i32 {
            let main: fn($crate::Args<'static>) -> i32 = $main;
            main(args)
        }
    };
}

/// Start-up: checks the argument record, runs `main`, exits with its
/// value.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) fn start(
    record: abi::Args,
    bytes: &'static [u8],
    main: impl FnOnce(Args<'static>) -> i32,
) -> ! {
    #[cfg(feature = "log")]
    let _ = crate::logger::init(log::LevelFilter::Info);
    let args = match Args::parse(record, bytes) {
        Ok(a) => a,
        Err(e) => {
            crate::println!("ethos: argument record refused: {e:?}");
            process::exit(EXIT_BAD_ARGS)
        }
    };
    process::exit(main(args))
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut w = crate::console::Writer::new();
    let _ = match info.location() {
        Some(l) => write!(w, "panic at {}:{}: {}", l.file(), l.line(), info.message()),
        None => write!(w, "panic: {}", info.message()),
    };
    w.flush();
    process::exit(EXIT_PANIC)
}

/// Growing the heap: the safe half of the global allocator (the other half
/// is in `raw`).
pub mod heap {
    use core::ops::Range;

    use abi::{HEAP_START, PAGE_SIZE};

    use crate::{event, pages};

    /// Where the heap lives: the lower half of the heap region (the upper
    /// half is [`pages::USER_REGION`], for the program's own bindings).
    pub const REGION: Range<u64> = HEAP_START..pages::USER_REGION.start;

    /// The least the heap grows by at once.
    pub const MIN_GROW: u64 = 16 * PAGE_SIZE;

    /// Binds at least `want` bytes (rounded up to pages, at least
    /// [`MIN_GROW`]) of fresh pages from `top` (page-aligned, in
    /// [`REGION`]) upward; returns how many bytes were bound, contiguous
    /// from `top`: fewer than asked, or 0, when the kernel runs out or the
    /// region ends. The pages' revoked events are cancelled and retired at
    /// once (a heap page is never given back, and the events would count
    /// against the program's event quota).
    pub fn grow(top: u64, want: usize) -> usize {
        if !top.is_multiple_of(PAGE_SIZE) || !REGION.contains(&top) {
            return 0;
        }
        let want = (want as u64)
            .div_ceil(PAGE_SIZE)
            .saturating_mul(PAGE_SIZE)
            .max(MIN_GROW)
            .min(REGION.end - top);
        let mut bound = 0;
        while bound < want {
            let Ok((page, revoked)) = pages::alloc() else {
                break;
            };
            let ok = pages::bind_heap(page, top + bound).is_ok();
            if !ok {
                let _ = pages::free(page);
            }
            // Pending: cancel, then retire. Completed by the free: retire.
            let _ = event::cancel(revoked);
            let _ = event::retire_empty(revoked);
            if !ok {
                break;
            }
            bound += PAGE_SIZE;
        }
        bound as usize
    }
}
