//! Processes: the process table, the run queue and the kernel loop.

pub mod sched;
