//! Events as the kernel keeps them beside the event table: timers.

pub mod timers;
