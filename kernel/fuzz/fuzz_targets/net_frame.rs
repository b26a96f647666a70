//! Frames come from the network through a backend we do not trust: the
//! check in front of the stack must take any bytes without a panic, and
//! accept only frames whose IPv4 header checksum holds.
#![no_main]

use kernel::net::netcheck::frame_is_well_formed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if frame_is_well_formed(data) {
        assert!(data.len() >= 14);
    }
});
