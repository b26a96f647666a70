//! A guest writes every byte of a `Trace` batch: arbitrary bytes are the records, as
//! the daemon's handler gets them after the frame decoder.
//!
//! Asserts: no panic; a batch is refused whole or read whole (one record per 16
//! bytes); what is read has times that never go backwards; the JSON the daemon would
//! append parses, with one object per record that is not a time base (plus one name
//! per process row).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc::trace::{parse, Kind, RECORD_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(records) = parse(data) else {
        return;
    };
    assert_eq!(records.len() * RECORD_BYTES, data.len());
    assert!(records.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
    let (text, count) = shadowdaemon::trace::to_json(&records);
    let kept = records.iter().filter(|r| r.kind != Kind::TimeBase).count();
    assert_eq!(count as usize, kept);
    let array = format!("[{}]", text.trim_end().trim_end_matches(','));
    let v: serde_json::Value = serde_json::from_str(&array).expect("the daemon's JSON parses");
    let objects = v.as_array().expect("an array");
    let names = objects.iter().filter(|o| o["ph"] == "M").count();
    assert_eq!(objects.len() - names, kept);
});
