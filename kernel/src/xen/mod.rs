//! Xen services the kernel runs on: event-channel ports (the upcall records,
//! the kernel drains; `channels`: the processes' channels by handle), and
//! the xenstore client whose replies are events.

pub mod channels;
#[cfg(target_os = "none")]
pub mod evtchn;
#[cfg(target_os = "none")]
pub mod xenstore;
