//! Sleeps: one beep a few seconds out, blocked on. The rig reads the
//! domain's CPU time meanwhile to check that an idle guest blocks its vCPU
//! (`SCHEDOP_block` until the next deadline) instead of spinning.

use crate::syscall as sys;

pub const PROCESSES: &[super::ProcessSpec] = &[("idle", idle)];

const SLEEP_NS: u64 = 6_000_000_000;

fn idle() {
    let _ = sys::print("idle: sleeping 6 s on one beep");
    match sys::beep(sys::get_time() + SLEEP_NS).and_then(sys::block_and_retire) {
        Ok(_) => {
            let _ = sys::print("idle: woke up");
        }
        Err(e) => {
            let _ = sys::print(&alloc::format!("idle: beep failed: {e}"));
        }
    }
}
