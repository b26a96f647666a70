//! The kernel heap: `alloc` (and so `events`, `Vec`, `BinaryHeap`) over the
//! free tail of the boot-time mapping.
//!
//! The domain builder maps the image and its boot structures, then pads the
//! mapping to at least 512 KiB past the boot stack and up to a 4 MiB
//! boundary. The frames in that padding are ours and already mapped; the
//! heap takes them. (Frames past the boot mapping belong to the frame
//! allocator, which maps them through page-table hypercalls.)

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands `[start, end)` to the heap. Called once, before any allocation.
pub fn init(start: u64, end: u64) {
    assert!(end > start, "empty heap region");
    // SAFETY: the region is mapped, writable, owned by this domain, used by
    // nothing else (the caller computed it past every boot structure), and
    // `init` runs once.
    unsafe { HEAP.lock().init(start as *mut u8, (end - start) as usize) };
}

/// (bytes in use, bytes free).
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
