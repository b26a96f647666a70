//! Xen system time: nanoseconds since the host booted, computed from the
//! per-vCPU `vcpu_time_info` record and the TSC.
//!
//! Xen publishes (tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift);
//! the time now is `system_time + scale(tsc_now - tsc_timestamp)`. The record
//! is guarded by a version counter that is odd while Xen rewrites it.

use crate::public::VcpuTimeInfo;
use core::sync::atomic::{AtomicU64, Ordering};

/// Converts a TSC delta into nanoseconds with Xen's fixed-point factor:
/// shift first (left if positive, right if negative), then multiply by the
/// 32.32 fraction `mul`.
pub fn scale_tsc_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let shifted = if shift >= 0 {
        delta.checked_shl(shift as u32).unwrap_or(0)
    } else {
        delta.checked_shr(shift.unsigned_abs() as u32).unwrap_or(0)
    };
    ((shifted as u128 * mul as u128) >> 32) as u64
}

/// System time in ns for a TSC reading, extrapolated from the record's
/// stamp forwards or, for a reading older than the stamp (the record was
/// stamped on another physical CPU whose TSC runs ahead), backwards: a
/// reading must never stand still while the TSC moves.
pub fn system_time_ns(info: &VcpuTimeInfo, tsc: u64) -> u64 {
    if tsc >= info.tsc_timestamp {
        let ahead = scale_tsc_delta(
            tsc - info.tsc_timestamp,
            info.tsc_to_system_mul,
            info.tsc_shift,
        );
        info.system_time.wrapping_add(ahead)
    } else {
        let behind = scale_tsc_delta(
            info.tsc_timestamp - tsc,
            info.tsc_to_system_mul,
            info.tsc_shift,
        );
        info.system_time.saturating_sub(behind)
    }
}

/// Reads a consistent copy of a Xen-updated record (the vCPU time record,
/// the wall clock) with Xen's version protocol: retry while the version is
/// odd (an update is under way) or changed between the start and the end of
/// the copy.
pub fn read_consistent<T>(mut version: impl FnMut() -> u32, mut body: impl FnMut() -> T) -> T {
    loop {
        let before = version();
        if before & 1 == 1 {
            core::hint::spin_loop();
            continue;
        }
        let copy = body();
        if version() == before {
            return copy;
        }
    }
}

/// The kernel's clock: Xen system time made monotonic without stalling.
///
/// Extrapolating Xen's time record with the TSC can run ahead of what Xen
/// publishes at its next update (by about a second at boot under QEMU/TCG,
/// where Xen's TSC calibration is poor). Holding the clock until Xen
/// catches up would stall every timer for that long, so instead the clock
/// keeps the amount it was ahead as an offset and runs on from there:
/// kernel time = Xen time + offset, never decreasing. Deadlines handed back
/// to Xen (`set_timer_op`, `SCHEDOP_poll`) are converted with `to_xen`.
///
/// Across a suspend (a save and restore, a migration) Xen's time jumps:
/// forward by the time the domain was away, or anywhere on another host.
/// [`Clock::resume`] makes the kernel's time run on from where it stopped,
/// so a deadline 50 ms ahead before the save is 50 ms ahead after it: the
/// offset may then be negative (it is kept as two's complement).
pub struct Clock {
    last: AtomicU64,
    offset: AtomicU64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub const fn new() -> Self {
        Clock {
            last: AtomicU64::new(0),
            offset: AtomicU64::new(0),
        }
    }

    fn offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed) as i64
    }

    /// Kernel time for a fresh reading `xen_ns` of Xen system time.
    pub fn observe(&self, xen_ns: u64) -> u64 {
        let offset = self.offset();
        let t = xen_ns.saturating_add_signed(offset);
        let last = self.last.load(Ordering::Relaxed);
        if t < last {
            // Xen's time stepped back under us: absorb the step.
            let step = (last - t) as i64;
            self.offset
                .store(offset.saturating_add(step) as u64, Ordering::Relaxed);
            return last;
        }
        self.last.store(t, Ordering::Relaxed);
        t
    }

    /// The last kernel time read.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// The domain is back from a suspend and Xen's time now reads
    /// `xen_ns`: kernel time runs on from the last time it read, as if no
    /// time had passed while the domain was away.
    pub fn resume(&self, xen_ns: u64) {
        let last = self.last.load(Ordering::Relaxed);
        let offset = (last as i128 - xen_ns as i128).clamp(i64::MIN as i128, i64::MAX as i128);
        self.offset.store(offset as i64 as u64, Ordering::Relaxed);
    }

    /// The Xen system time at which kernel time will read `kernel_ns`.
    pub fn to_xen(&self, kernel_ns: u64) -> u64 {
        let xen = kernel_ns as i128 - self.offset() as i128;
        xen.clamp(0, u64::MAX as i128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_absorbs_backward_steps_without_stalling() {
        let c = Clock::new();
        assert_eq!(c.observe(1000), 1000);
        assert_eq!(c.observe(1500), 1500);
        // Xen's published time steps back by 1000: the clock holds once...
        assert_eq!(c.observe(500), 1500);
        // ...then runs on at Xen's rate from there, not frozen until 1500.
        assert_eq!(c.observe(600), 1600);
        assert_eq!(c.observe(700), 1700);
        // Deadlines convert back to Xen's scale.
        assert_eq!(c.to_xen(2000), 1000);
        assert_eq!(c.to_xen(10), 0);
    }

    #[test]
    fn after_a_resume_the_clock_runs_on_from_where_it_stopped() {
        let c = Clock::new();
        assert_eq!(c.observe(1_000), 1_000);
        // Saved, restored an hour later on the same host: Xen's time leapt.
        c.resume(3_600_000_001_000);
        assert_eq!(c.observe(3_600_000_001_000), 1_000);
        assert_eq!(c.observe(3_600_000_001_050), 1_050);
        // A deadline 50 ns ahead of the kernel's time is 50 ns ahead of Xen's.
        assert_eq!(c.to_xen(1_100), 3_600_000_001_100);
        // Migrated to a host whose Xen booted later: its time is smaller.
        c.resume(200);
        assert_eq!(c.observe(200), 1_050);
        assert_eq!(c.observe(300), 1_150);
        assert_eq!(c.to_xen(1_200), 350);
        // A deadline already passed on Xen's scale is 0 (at once), never a wrap.
        assert_eq!(c.to_xen(0), 0);
    }

    #[test]
    fn scale_identity_at_one_ghz() {
        // mul = 2^32 * 1.0 is not representable; 1 GHz is usually shift=1, mul=2^31.
        assert_eq!(scale_tsc_delta(1_000_000, 1 << 31, 1), 1_000_000);
    }

    #[test]
    fn scale_with_negative_shift() {
        // 4 GHz TSC: shift -1 halves, mul 0.5 halves again: 4000 cycles -> 1000 ns.
        assert_eq!(scale_tsc_delta(4000, 1 << 31, -1), 1000);
    }

    #[test]
    fn scale_never_overflows() {
        assert_eq!(
            scale_tsc_delta(u64::MAX, u32::MAX, 0),
            ((u64::MAX as u128 * u32::MAX as u128) >> 32) as u64
        );
        assert_eq!(scale_tsc_delta(u64::MAX, 1, 100), 0);
        assert_eq!(scale_tsc_delta(u64::MAX, 1, -100), 0);
    }

    #[test]
    fn system_time_adds_scaled_delta() {
        let info = VcpuTimeInfo {
            tsc_timestamp: 1000,
            system_time: 5_000,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 1,
            ..Default::default()
        };
        assert_eq!(system_time_ns(&info, 3000), 7_000);
        // A TSC reading before the stamp extrapolates backwards (it still
        // moves with the TSC instead of standing still at the stamp).
        assert_eq!(system_time_ns(&info, 10), 4_010);
        assert_eq!(system_time_ns(&info, 500), 4_500);
    }

    #[test]
    fn read_consistent_retries_odd_and_changed_versions() {
        let versions = [1u32, 2, 4, 4, 4];
        let mut i = 0;
        let mut bodies = 0;
        let got = read_consistent(
            || {
                let v = versions[i];
                i += 1;
                v
            },
            || {
                bodies += 1;
                VcpuTimeInfo {
                    system_time: bodies,
                    ..Default::default()
                }
            },
        );
        // 1 (odd, skipped), 2 -> body 1 -> 4 (changed), 4 -> body 2 -> 4 (same).
        assert_eq!(got.system_time, 2);
    }
}
