//! The boot seed node (`ethos/seed`) is written by another domain: any
//! bytes parse or are refused with a reason, never a panic; a value taken
//! is exactly 64 hex digits and decodes back to them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xen::seed::{parse, SeedError, BYTES};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(seed) => {
            assert_eq!(data.len(), 2 * BYTES);
            assert!(data.iter().all(u8::is_ascii_hexdigit));
            assert_ne!(seed, [0; BYTES]);
            let again: Vec<u8> = seed.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect();
            assert_eq!(again, data.to_ascii_lowercase());
        }
        Err(SeedError::Length(n)) => assert!(n == data.len() && n != 2 * BYTES),
        Err(SeedError::NotHex(at)) => {
            assert!(!data[at].is_ascii_hexdigit());
            assert!(data[..at].iter().all(u8::is_ascii_hexdigit));
        }
        Err(SeedError::AllZero) => assert!(data.iter().all(|&b| b == b'0')),
    }
});
