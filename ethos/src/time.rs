//! The clocks.

use abi::{Call, Status};

use crate::sys::{self, args};

/// Nanoseconds in a millisecond, for deadlines.
pub const MS: u64 = 1_000_000;

/// `Time()`: the kernel's clock, in nanoseconds (Xen system time:
/// monotonic, from an arbitrary origin). Deadlines of
/// [`crate::event::beep`] are on this clock.
pub fn now() -> Result<u64, Status> {
    sys::call(Call::Time, args([])).map(|(ns, _)| ns)
}

/// `WallClock()`: `(seconds, nanoseconds)` since the Unix epoch.
pub fn wall_clock() -> Result<(u64, u32), Status> {
    sys::call(Call::WallClock, args([])).map(|(s, ns)| (s, ns as u32))
}

/// Starts a timer `ns` nanoseconds from now: [`crate::event::beep`] at
/// [`now`] + `ns`.
pub fn beep_in(ns: u64) -> Result<crate::Event, Status> {
    crate::event::beep(now()?.saturating_add(ns))
}
