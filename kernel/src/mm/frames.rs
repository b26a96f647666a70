//! The frames past the boot mapping, shared by page binding and address
//! spaces: one pool, one lock (always taken last: the pages and spaces
//! locks may be held when it is taken, never the other way round).

use hal::mm::{Frame, FramePool};
use spin::Mutex;

static POOL: Mutex<Option<FramePool>> = Mutex::new(None);

/// Hands the pool over (at boot, once).
pub fn init(pool: FramePool) {
    *POOL.lock() = Some(pool);
}

/// Runs `f` on the pool; `None` before `init`.
pub fn with_pool<R>(f: impl FnOnce(&mut FramePool) -> R) -> Option<R> {
    POOL.lock().as_mut().map(f)
}

/// A zeroed frame, or `None` when none is free (or Xen refused to map it
/// for zeroing: then it goes back).
pub fn take_zeroed() -> Option<Frame> {
    let frame = with_pool(|p| p.take())??;
    match hal::mm::zero(&frame) {
        Ok(()) => Some(frame),
        Err(_) => {
            give_back(frame);
            None
        }
    }
}

/// Returns a frame to the pool.
pub fn give_back(frame: Frame) {
    let _ = with_pool(|p| p.give_back(frame));
}

/// Frames free.
pub fn free() -> usize {
    with_pool(|p| p.len()).unwrap_or(0)
}
