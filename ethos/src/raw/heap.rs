//! The global allocator: a linked-list allocator over a heap that grows at
//! the top, page by page, from pages the runtime allocates and binds itself
//! ([`crate::rt::heap::grow`]: `PageAlloc` + `PageBind` from
//! [`crate::rt::heap::REGION`]'s start upward). Out of memory is a null
//! pointer, never a panic.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::LockedHeap;

/// The program's heap. Empty until the first allocation.
pub(crate) struct Heap(LockedHeap);

impl Heap {
    pub(crate) const fn new() -> Self {
        Heap(LockedHeap::empty())
    }
}

// SAFETY: `alloc` hands out blocks of the heap's own memory, which is only
// memory the runtime bound for it and nothing else uses (the grower binds
// each page before adding it, and `pages::bind` refuses the heap's region);
// `dealloc` returns a block to the list it came from. Both hold the lock.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.0.lock();
        if let Ok(p) = heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        // Grow by enough for the block, its alignment and the list's own
        // bookkeeping, then try once more.
        let want = layout
            .size()
            .saturating_add(layout.align())
            .saturating_add(64);
        let empty = heap.size() == 0;
        let top = if empty {
            crate::rt::heap::REGION.start
        } else {
            heap.top() as u64
        };
        let added = crate::rt::heap::grow(top, want);
        if added == 0 {
            return core::ptr::null_mut();
        }
        if empty {
            // SAFETY: `added` bytes from `top` were just bound, are zeroed,
            // page-aligned, used by nothing else and never unbound: valid
            // for the rest of the program. The heap was empty (first use).
            unsafe { heap.init(top as *mut u8, added) };
        } else {
            // SAFETY: the bytes follow the heap's top directly (the grower
            // binds from `top` up), with the same lifetime.
            unsafe { heap.extend(added) };
        }
        heap.allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
            // this `layout`.
            unsafe { self.0.lock().deallocate(p, layout) }
        }
    }
}

#[global_allocator]
static HEAP: Heap = Heap::new();
