//! For the fault scenario (`ethos.test_fault=stale-page`): bind a page,
//! write to it, give it back, then read its old address. The read must
//! fault (the mapping is gone and the TLB entry flushed) rather than reach
//! the frame, which the kernel may already have handed to someone else.

use crate::syscall as sys;
use alloc::format;

pub const PROCESSES: &[super::ProcessSpec] = &[("stale-page", stale_page)];

fn stale_page() {
    let run = || -> Result<u64, crate::status::SysError> {
        let (cap, revoked) = sys::page_alloc()?;
        let va = sys::region_base()?;
        sys::page_bind(cap, va)?;
        sys::page_write(cap, 0, b"secret")?;
        sys::page_free(cap)?;
        sys::retire(revoked)?;
        Ok(va)
    };
    match run() {
        Ok(va) => {
            let _ = sys::print(&format!("reading freed page at {va:#x}"));
            let value = sys::touch_for_test(va);
            let _ = sys::print(&format!(
                "read of a freed page returned {value:#x}: no fault"
            ));
        }
        Err(e) => {
            let _ = sys::print(&format!("stale-page setup failed: {e}"));
        }
    }
}
