//! Xen services the kernel runs on: event-channel ports (the upcall records,
//! the kernel drains), and the xenstore client whose replies are events.

pub mod evtchn;
pub mod xenstore;
