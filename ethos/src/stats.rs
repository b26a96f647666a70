//! The kernel's counters.
//!
//! `KernelStats` writes the counters as little-endian u64s. Which counter
//! is at which index is the kernel's to define (the ABI points here, but no
//! list is fixed yet): [`read`] returns them by index.

use abi::Status;

use crate::raw;
use crate::sys;

/// The most counters [`read`] asks for.
pub const MAX_COUNTERS: usize = 64;

/// `KernelStats(out)`: fills `out` with the first counters; returns how
/// many were written.
pub fn read(out: &mut [u64]) -> Result<usize, Status> {
    let n = out.len().min(MAX_COUNTERS);
    let mut bytes = [0u8; MAX_COUNTERS * 8];
    let (written, _) = sys::check(raw::kernel_stats(&mut bytes[..n * 8]))?;
    let count = (written as usize).min(n * 8) / 8;
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)).take(count) {
        *o = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    }
    Ok(count)
}
