//! The RPC wire format keyed by eventId and the vchan-compatible shared ring
//! between the guest and the dom0 shadowdaemon.
//!
//! Empty until the RPC issue lands: the guest does not speak RPC yet, and
//! nothing here pretends it does.
#![no_std]
#![forbid(unsafe_code)]
