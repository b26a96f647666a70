//! The demo: processes issue beeps with different deadlines, block on AND,
//! OR and threshold trees, retire the events and cancel one, narrating as
//! they go.

use crate::syscall as sys;
use alloc::format;
use alloc::vec::Vec;
use events::{EventId, Tree};

pub const PROCESSES: &[super::ProcessSpec] = &[("and-or", and_or), ("threshold", threshold)];

const MS: u64 = 1_000_000;

fn say(text: &str) {
    // Printing can only fail for lack of memory; the demo has nothing better to do then.
    let _ = sys::print(text);
}

fn ms_since(start: u64, t: u64) -> super::Millis {
    super::Millis(t.saturating_sub(start))
}

fn fired_at(id: EventId) -> Option<u64> {
    match sys::retire(id) {
        Ok(r) => match r.value {
            events::Value::Word(t) => Some(t),
            _ => None,
        },
        Err(e) => {
            say(&format!("retire({id:?}) failed: {e}"));
            None
        }
    }
}

fn and_or() {
    let start = sys::get_time();
    let delays = [30u64, 10, 20];
    let ids: Vec<EventId> = delays
        .iter()
        .filter_map(|d| sys::beep(start + d * MS).ok())
        .collect();
    say(&format!(
        "beeps at +30, +10, +20 ms; blocking on AND of all {}",
        ids.len()
    ));
    let spec = Tree::all(ids.iter().copied()).to_spec().unwrap_or_default();
    match sys::block(&spec) {
        Ok(leaves) => say(&format!(
            "woken once, at +{} ms, with {} leaves complete",
            ms_since(start, sys::get_time()),
            leaves.len()
        )),
        Err(e) => say(&format!("block failed: {e}")),
    }
    for (id, d) in ids.iter().zip(delays) {
        if let Some(t) = fired_at(*id) {
            say(&format!(
                "  retired the +{d} ms beep: fired at +{} ms",
                ms_since(start, t)
            ));
        }
    }

    let start = sys::get_time();
    let (slow, fast) = match (sys::beep(start + 50 * MS), sys::beep(start + 15 * MS)) {
        (Ok(s), Ok(f)) => (s, f),
        _ => return say("beep failed"),
    };
    say("beeps at +50 and +15 ms; blocking on OR of the two");
    let spec = Tree::any([slow, fast]).to_spec().unwrap_or_default();
    if let Ok(leaves) = sys::block(&spec) {
        let which = if leaves == [fast] {
            "the +15 ms beep"
        } else {
            "an unexpected leaf"
        };
        say(&format!(
            "woken at +{} ms by {which}",
            ms_since(start, sys::get_time())
        ));
    }
    let _ = fired_at(fast);
    match sys::cancel(slow).and_then(|_| sys::retire(slow)) {
        Ok(r) => say(&format!(
            "cancelled the +50 ms beep; retiring it reports: {}",
            r.status
        )),
        Err(e) => say(&format!("cancel failed: {e}")),
    }
}

fn threshold() {
    let start = sys::get_time();
    let delays = [5u64, 40, 25];
    let ids: Vec<EventId> = delays
        .iter()
        .filter_map(|d| sys::beep(start + d * MS).ok())
        .collect();
    say("beeps at +5, +40, +25 ms; blocking until at least 2 of 3");
    let spec = Tree::at_least(2, ids.iter().copied())
        .to_spec()
        .unwrap_or_default();
    if let Ok(leaves) = sys::block(&spec) {
        say(&format!(
            "woken at +{} ms with {} leaves complete",
            ms_since(start, sys::get_time()),
            leaves.len()
        ));
    }
    match sys::block_and_retire(ids[1]) {
        Ok(r) => say(&format!(
            "block_and_retire on the +40 ms beep: {} at +{} ms",
            r.status,
            match r.value {
                events::Value::Word(t) => ms_since(start, t),
                _ => super::Millis(0),
            }
        )),
        Err(e) => say(&format!("block_and_retire failed: {e}")),
    }
    for id in [ids[0], ids[2]] {
        let _ = fired_at(id);
    }
}
