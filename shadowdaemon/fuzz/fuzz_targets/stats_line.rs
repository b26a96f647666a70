//! A guest writes every byte of its `data/ethos/stats`: arbitrary bytes are the
//! parser's whole input.
//!
//! Asserts: no panic; a line accepted is exactly what its figures print (the
//! parser takes only the one way of writing figures, so what `status` prints is
//! the guest's line rebuilt from checked values), within the bounds; a line
//! refused is named, with an offset or word inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;

// STATS_NODE is the daemon's, unused here.
#[allow(dead_code)]
#[path = "../../src/stats.rs"]
mod stats;

use stats::{Figures, StatsError, MAX_KEY, MAX_LINE, MAX_WORDS};

fuzz_target!(|data: &[u8]| {
    match Figures::parse(data) {
        Ok(figures) => {
            assert!(data.len() <= MAX_LINE);
            assert_eq!(figures.to_string().as_bytes(), data);
            let mut count = 0;
            for (key, value) in figures.iter() {
                assert!((1..=MAX_KEY).contains(&key.len()), "{key:?}");
                assert!(key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
                assert_eq!(figures.get(key), Some(value));
                count += 1;
            }
            assert!((1..=MAX_WORDS).contains(&count));
        }
        Err(e) => {
            assert!(!e.code().is_empty());
            match e {
                StatsError::Empty => assert!(data.is_empty()),
                StatsError::TooLong(n) => assert!(n == data.len() && n > MAX_LINE),
                StatsError::BadByte(at) => assert!(at < data.len()),
                StatsError::TooManyWords => {}
                StatsError::NotKeyValue(w)
                | StatsError::BadKey(w)
                | StatsError::BadValue(w)
                | StatsError::DuplicateKey(w) => assert!((1..=MAX_WORDS).contains(&w)),
            }
        }
    }
});
