//! Device drivers: netfront (its memory, grants and port; a smoltcp device).

pub mod netfront;
