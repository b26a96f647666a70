//! Processes: the process table, the run queue and the kernel loop
//! (`sched`), and user programs from the boot archive (`program`).

pub mod program;
pub mod sched;
