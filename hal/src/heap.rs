//! The kernel heap: `alloc` (and so `events`, `Vec`, `BinaryHeap`) over the
//! free tail of the boot-time mapping.
//!
//! The domain builder maps the image and its boot structures, then pads the
//! mapping to at least 512 KiB past the boot stack and up to a 4 MiB
//! boundary. The frames in that padding are ours and already mapped; the
//! heap takes them, and where they are too few, the first frames past the
//! boot mapping, mapped right after it (`mm::init_memory`). (The other
//! frames belong to the frame pool, which maps them through page-table
//! hypercalls.)

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

static INITIALISED: spin::Once<()> = spin::Once::new();

/// Hands `[start, end)` to the heap, once (later calls do nothing).
/// Only `mm::init_memory` calls it, with the boot mapping's free tail
/// (cut short or grown).
pub(crate) fn init(start: u64, end: u64) {
    assert!(end > start, "empty heap region");
    INITIALISED.call_once(|| {
        // SAFETY: the region is mapped, writable, owned by this domain and
        // used by nothing else (`mm::init_memory` puts it past every boot
        // structure, and the pool's frames past it), and this runs once.
        unsafe { HEAP.lock().init(start as *mut u8, (end - start) as usize) };
    });
}

/// (bytes in use, bytes free).
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
