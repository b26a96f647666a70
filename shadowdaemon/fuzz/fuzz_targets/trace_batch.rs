//! A guest writes every byte of a `Trace` batch: arbitrary bytes are the records, as
//! the daemon's handler gets them after the frame decoder.
//!
//! Asserts: no panic; a batch is refused whole or read whole (one record per 16
//! bytes); what is read has times that never go backwards and every name of the known
//! format whole, bounded and UTF-8; the JSON the daemon would append parses, with one
//! object per record that is neither a time base nor part of a name, and a
//! `process_name` and a `thread_name` per name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc::trace::{name_of, parse, Kind, MAX_NAME_BYTES, NAME_FORMAT, RECORD_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(records) = parse(data) else {
        return;
    };
    assert_eq!(records.len() * RECORD_BYTES, data.len());
    assert!(records.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
    let mut names = Vec::new();
    let mut i = 0;
    while i < records.len() {
        if records[i].kind == Kind::Name && records[i].name_format() == NAME_FORMAT {
            let (name, taken) = name_of(&records[i..]).expect("parse checked every name");
            assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES);
            names.push((records[i].pid, name));
            i += taken;
        } else {
            i += 1;
        }
    }
    let (text, count) = shadowdaemon::trace::to_json(&records);
    let kept = records.iter().filter(|r| r.kind != Kind::TimeBase).count();
    assert_eq!(count as usize, kept);
    let array = format!("[{}]", text.trim_end().trim_end_matches(','));
    let v: serde_json::Value = serde_json::from_str(&array).expect("the daemon's JSON parses");
    let objects = v.as_array().expect("an array");
    let metadata: Vec<_> = objects.iter().filter(|o| o["ph"] == "M").collect();
    assert_eq!(metadata.len(), 2 * names.len());
    for (m, (pid, name)) in metadata.chunks(2).zip(&names) {
        assert_eq!(m[0]["name"], "process_name");
        assert_eq!(m[1]["name"], "thread_name");
        for o in m {
            assert_eq!(o["pid"], *pid);
            assert_eq!(o["args"]["name"], name.as_str());
        }
    }
    let plain = records
        .iter()
        .filter(|r| r.kind != Kind::TimeBase && r.kind != Kind::Name)
        .count();
    assert_eq!(objects.len() - metadata.len(), plain);
});
