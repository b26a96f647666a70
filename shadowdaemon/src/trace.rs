//! The guest kernel's event timeline, kept as `trace.json` in the guest's folder.
//!
//! A guest booted with `ethos.trace=on` sends its trace ring one buffer at a time as
//! `Trace` RPCs ([`rpc::trace`]: 16-byte binary records, nothing formatted in the
//! guest). Each batch is copied once (the rpc crate did), checked as hostile
//! ([`rpc::trace::parse`]: any broken rule refuses the whole batch with
//! [`Status::Invalid`]) and appended here in the Chrome/Perfetto trace-event format, so
//! that `chrome://tracing`, <https://ui.perfetto.dev> or `shadowdaemon trace-svg` shows
//! it:
//!
//! * one row per guest process (`pid` and `tid` are the guest's pid; the kernel itself
//!   is pid 0, where upcalls go), named by `process_name` and `thread_name` metadata
//!   events (`"ph":"M"`) from the name the kernel recorded when it created the process
//!   ([`Kind::Name`], checked by [`rpc::trace::parse`]), so a viewer shows e.g.
//!   "rpc-demo (pid 3)"; a process created before the timeline began keeps its pid;
//! * every event is an async span (`"ph":"b"` at its creation, `"e"` when it is
//!   retired), keyed by its event id (`"id"`), category `event`: events overlap and do
//!   not nest, which async spans allow. An event still held when its process exits is
//!   never retired: its span stays open, and the exit instant says how many there were;
//! * completions, cancels, blocks, wakes, context switches, system calls and process
//!   exits are instants (`"ph":"i"`, thread scope) on the process's row, upcalls on the
//!   kernel's; their `args` carry the record's word (event id, leaves, call number,
//!   count).
//!
//! Times (`ts`) are the guest kernel's clock in µs (ns / 1000, three decimals). The
//! kernel stamps all records of one kernel entry with one reading of its clock, so
//! neighbours often share a `ts`: objects are written in the records' order, times
//! never go backwards (the parser refuses a batch where they do), and a span's `"e"` is
//! always after its `"b"` in the file, at the same `ts` or later, which the format
//! asks of equal times (a viewer sorts stably by `ts`).
//!
//! # The file
//!
//! A JSON array, one object per line, whose last object is the timeline's state
//! (`"name":"trace_state"`, a metadata event viewers ignore): the last batch appended,
//! records written, records the guest and the daemon dropped, batches refused for want
//! of room. An append writes its objects over that last line and ends with a new state
//! line and `]`, so the file is valid JSON after every append. Batch 0 starts the file
//! afresh (a guest's new boot); a batch whose number is not above the last one's is
//! already in it and is answered without appending again (a batch sent again after a
//! daemon restart: the journal answers most of them, this the rest), so appending is
//! exactly-once by itself.
//!
//! # Bounds
//!
//! A timeline holds at most [`MAX_BYTES`]; a batch that would pass it is dropped and
//! counted in the state line (`daemon_dropped`), which is still written. Its bytes count
//! against the guest's budget ([`crate::quota`]) like any file's: a batch the budget
//! refuses gets [`Status::NoSpace`] and the guest counts it as dropped. The state line is
//! found in the file's last [`TAIL_BYTES`]: a `trace.json` that does not end with one
//! (the guest wrote its own there) is not appended to ([`Status::Invalid`]) unless a
//! batch 0 starts it afresh.

use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::sync::Mutex;

use cap_std::fs::{OpenOptions, OpenOptionsExt as _};
use rpc::trace::{name_of, Kind, Record, BLOCKED_SATISFIED, NAME_FORMAT};
use rpc::{ReplyBody, Status};

use crate::confine::GuestRoot;
use crate::error::OpError;

/// The timeline's file in the guest's folder.
pub const FILE: &str = "trace.json";
/// Most bytes one guest's timeline holds.
pub const MAX_BYTES: u64 = 8 << 20;
/// How far from the end the state line is looked for.
pub const TAIL_BYTES: u64 = 1024;

/// Appends run one at a time: a timeline is read, then written at its end.
static APPEND: Mutex<()> = Mutex::new(());

/// What the state line keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// The last batch appended or dropped.
    pub seq: u64,
    /// Batches taken (appended or dropped by the daemon).
    pub batches: u64,
    /// Records converted into the file (time bases not counted).
    pub records: u64,
    /// Records the guest said it dropped (its ring was full, or a batch never arrived).
    pub guest_dropped: u64,
    /// Records the daemon dropped (the timeline was full).
    pub daemon_dropped: u64,
}

impl State {
    /// The state line, without its newline.
    pub fn line(&self) -> String {
        format!(
            "{{\"name\":\"trace_state\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{{\"seq\":{},\
             \"batches\":{},\"records\":{},\"guest_dropped\":{},\"daemon_dropped\":{}}}}}",
            self.seq, self.batches, self.records, self.guest_dropped, self.daemon_dropped
        )
    }

    /// The state in a line the daemon wrote, if it is one.
    pub fn parse(line: &str) -> Option<State> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v.get("name")?.as_str()? != "trace_state" {
            return None;
        }
        let args = v.get("args")?;
        let field = |name: &str| args.get(name)?.as_u64();
        Some(State {
            seq: field("seq")?,
            batches: field("batches")?,
            records: field("records")?,
            guest_dropped: field("guest_dropped")?,
            daemon_dropped: field("daemon_dropped")?,
        })
    }
}

const HEADER: &str = "[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"name\":\"kernel\"}},\n\
    {\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"name\":\"kernel\"}},\n";

/// Microseconds with three decimals: the format's unit, the kernel clock's precision.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// The JSON objects of a batch's records, each a line ending in `,\n`, and how many
/// records they hold (time bases are not written; a name's records become the two
/// metadata objects of its row, a name of a newer format nothing).
pub fn to_json(records: &[Record]) -> (String, u64) {
    let mut out = String::with_capacity(records.len() * 110);
    let mut written = 0;
    // The records after a name's first, which it wrote already.
    let mut rest_of_name = 0;
    for (index, r) in records.iter().enumerate() {
        if r.kind == Kind::TimeBase {
            continue;
        }
        written += 1;
        let pid = r.pid;
        if r.kind == Kind::Name {
            if rest_of_name > 0 {
                rest_of_name -= 1;
            } else if r.name_format() == NAME_FORMAT {
                if let Some((name, taken)) = name_of(&records[index..]) {
                    rest_of_name = taken - 1;
                    // A JSON string: quoted and escaped.
                    let name = serde_json::Value::from(name);
                    for what in ["process_name", "thread_name"] {
                        let _ = writeln!(
                            out,
                            "{{\"name\":\"{what}\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{pid},\
                             \"args\":{{\"name\":{name}}}}},"
                        );
                    }
                }
            }
            continue;
        }
        let ts = micros(r.time_ns);
        let w = r.word;
        let _ = match r.kind {
            Kind::Created | Kind::Retired => writeln!(
                out,
                "{{\"name\":\"event\",\"cat\":\"event\",\"ph\":\"{}\",\"id\":\"{w:#x}\",\
                 \"pid\":{pid},\"tid\":{pid},\"ts\":{ts}}},",
                if r.kind == Kind::Created { 'b' } else { 'e' }
            ),
            _ => {
                let args = match r.kind {
                    Kind::Completed | Kind::Cancelled => format!("\"event\":\"{w:#x}\""),
                    Kind::Blocked => format!(
                        "\"leaves\":{},\"satisfied\":{}",
                        w & (BLOCKED_SATISFIED - 1),
                        w & BLOCKED_SATISFIED != 0
                    ),
                    Kind::Woken => format!("\"leaves\":{w}"),
                    Kind::Switch => format!("\"slot\":{w}"),
                    Kind::Syscall => format!("\"call\":{w}"),
                    Kind::Upcall => format!("\"count\":{w}"),
                    _ => format!("\"discarded\":{w}"),
                };
                writeln!(
                    out,
                    "{{\"name\":\"{}\",\"cat\":\"kernel\",\"ph\":\"i\",\"s\":\"t\",\
                     \"pid\":{pid},\"tid\":{pid},\"ts\":{ts},\"args\":{{{args}}}}},",
                    r.kind.name()
                )
            }
        };
    }
    (out, written)
}

/// Where the state line starts in `tail` (the file's last bytes) and what it says.
fn find_state(tail: &[u8]) -> Option<(usize, State)> {
    let text = std::str::from_utf8(tail).ok()?;
    let body = text.strip_suffix("]\n")?;
    let start = body.strip_suffix('\n')?.rfind('\n')? + 1;
    Some((start, State::parse(body[start..].trim_end())?))
}

fn not_ours() -> OpError {
    OpError::Policy {
        status: Status::Invalid,
        what: "trace.json does not end with the daemon's state line",
    }
}

/// Appends batch `seq` (records as the guest sent them) to the guest's timeline.
pub fn append(
    root: &GuestRoot,
    seq: u64,
    dropped: u64,
    records: &[u8],
) -> Result<ReplyBody, OpError> {
    let records = rpc::trace::parse(records).map_err(OpError::BadTrace)?;
    let _one_at_a_time = APPEND.lock().unwrap_or_else(|e| e.into_inner());
    let mut ledger = root.quota().ledger();
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK);
    // Opened without CREATE first, so that a new file is admitted to the budget first.
    let (file, created) = match root.open(FILE, &options) {
        Ok(file) => (file, false),
        Err(e) if e.status() == Status::NotFound => {
            ledger.admit(0, 0, 1)?;
            (root.open(FILE, options.create(true))?, true)
        }
        Err(e) => return Err(e),
    };
    let file = file.into_std();
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(OpError::Policy {
            status: Status::PermissionDenied,
            what: "trace.json is not a regular file",
        });
    }
    let old = meta.len();
    // Where the new text goes, and the state it continues.
    let (at, mut state, mut text) = if seq == 0 || old == 0 {
        (0, State::default(), HEADER.to_string())
    } else {
        let from = old.saturating_sub(TAIL_BYTES);
        let mut tail = vec![0; (old - from) as usize];
        file.read_exact_at(&mut tail, from)?;
        let (start, state) = find_state(&tail).ok_or_else(not_ours)?;
        if seq <= state.seq {
            // Already in the file (sent again): nothing to do.
            return Ok(ReplyBody::Trace);
        }
        (from + start as u64, state, String::new())
    };
    let (events, count) = to_json(&records);
    state.seq = seq;
    state.batches += 1;
    state.guest_dropped = dropped;
    if at + (text.len() + events.len()) as u64 + 512 > MAX_BYTES {
        state.daemon_dropped += count;
    } else {
        text.push_str(&events);
        state.records += count;
    }
    text.push_str(&state.line());
    text.push_str("\n]\n");
    let new = at + text.len() as u64;
    ledger.admit(old, new.max(old), 0)?;
    let wrote = file
        .write_all_at(text.as_bytes(), at)
        .and_then(|()| file.set_len(new));
    if ledger.counts() {
        let now = file.metadata().map_or(new, |m| m.len());
        ledger.grew(old, now, u64::from(created));
    }
    wrote.map_err(|e: io::Error| OpError::Io(e))?;
    Ok(ReplyBody::Trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc::trace::Ring;

    fn rec(time_ns: u64, kind: Kind, pid: u16, word: u64) -> Record {
        Record {
            time_ns,
            kind,
            pid,
            word,
        }
    }

    #[test]
    fn records_become_spans_and_instants() {
        let records = [
            rec(1_000_000, Kind::TimeBase, 0, 1_000_000),
            rec(1_000_500, Kind::Created, 3, 0xabc),
            rec(1_002_000, Kind::Completed, 3, 0xabc),
            rec(1_003_000, Kind::Upcall, 0, 2),
            rec(1_004_000, Kind::Retired, 3, 0xabc),
        ];
        let (text, count) = to_json(&records);
        assert_eq!(count, 4);
        let v: serde_json::Value =
            serde_json::from_str(&format!("[{}]", text.trim_end().trim_end_matches(','))).unwrap();
        let objects = v.as_array().unwrap();
        // The four records (no name was recorded: the row keeps its pid).
        assert_eq!(objects.len(), 4);
        assert_eq!(objects[0]["ph"], "b");
        assert_eq!(objects[0]["id"], "0xabc");
        assert_eq!(objects[0]["ts"].as_f64(), Some(1000.5));
        assert_eq!(objects[0]["pid"], 3);
        assert_eq!(objects[1]["name"], "complete");
        assert_eq!(objects[1]["args"]["event"], "0xabc");
        assert_eq!(objects[2]["name"], "upcall");
        assert_eq!(objects[2]["pid"], 0);
        assert_eq!(objects[3]["ph"], "e");
        assert_eq!(objects[3]["id"], "0xabc");
    }

    fn objects(text: &str) -> Vec<serde_json::Value> {
        let array = format!("[{}]", text.trim_end().trim_end_matches(','));
        let v: serde_json::Value = serde_json::from_str(&array).unwrap();
        v.as_array().unwrap().clone()
    }

    fn batch(f: impl FnOnce(&mut Ring)) -> Vec<Record> {
        let mut ring = Ring::new(2, 64);
        f(&mut ring);
        rpc::trace::parse(&ring.take(true).unwrap()).unwrap()
    }

    #[test]
    fn a_recorded_name_names_the_process_and_its_thread() {
        let records = batch(|ring| {
            let (words, n) = rpc::trace::name_words("rpc-demo \"quoted\"");
            ring.push_all(500, Kind::Name, 3, &words[..n]);
            ring.push(500, Kind::Created, 3, 7);
            let (words, n) = rpc::trace::name_words("ünïcode");
            ring.push_all(600, Kind::Name, 4, &words[..n]);
        });
        let (text, count) = to_json(&records);
        // Every record but the time base is converted (names into their metadata).
        assert_eq!(count as usize, records.len() - 1);
        let objects = objects(&text);
        let names: Vec<_> = objects
            .iter()
            .filter(|o| o["ph"] == "M")
            .map(|o| {
                (
                    o["name"].clone(),
                    o["pid"].clone(),
                    o["tid"].clone(),
                    o["args"]["name"].clone(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (
                    "process_name".into(),
                    3.into(),
                    3.into(),
                    "rpc-demo \"quoted\"".into()
                ),
                (
                    "thread_name".into(),
                    3.into(),
                    3.into(),
                    "rpc-demo \"quoted\"".into()
                ),
                ("process_name".into(), 4.into(), 4.into(), "ünïcode".into()),
                ("thread_name".into(), 4.into(), 4.into(), "ünïcode".into()),
            ]
        );
        assert_eq!(objects.iter().filter(|o| o["ph"] == "b").count(), 1);
    }

    #[test]
    fn a_name_of_a_newer_format_is_ignored() {
        let mut newer = rpc::trace::name_words("x").0[0].to_le_bytes();
        newer[0] = NAME_FORMAT + 1;
        let records = batch(|ring| ring.push(5, Kind::Name, 3, u64::from_le_bytes(newer)));
        let (text, count) = to_json(&records);
        assert_eq!((text.as_str(), count), ("", 1));
    }

    #[test]
    fn records_sharing_a_time_stay_in_order_and_spans_stay_whole() {
        // One kernel entry: a call that creates, completes and retires an event, all
        // stamped with the entry's one reading of the clock.
        let records = batch(|ring| {
            for (kind, word) in [
                (Kind::Syscall, 2),
                (Kind::Created, 0x10),
                (Kind::Completed, 0x10),
                (Kind::Retired, 0x10),
                (Kind::Created, 0x11),
            ] {
                ring.push(9_000, kind, 5, word);
            }
            ring.push(9_000, Kind::Upcall, 0, 1);
            ring.push(12_000, Kind::Retired, 5, 0x11);
        });
        let objects = objects(&to_json(&records).0);
        let seen: Vec<(String, String, f64)> = objects
            .iter()
            .map(|o| {
                (
                    o["ph"].as_str().unwrap().to_string(),
                    o["id"].as_str().unwrap_or("").to_string(),
                    o["ts"].as_f64().unwrap(),
                )
            })
            .collect();
        let expected = [
            ("i", "", 9.0),
            ("b", "0x10", 9.0),
            ("i", "", 9.0),
            ("e", "0x10", 9.0),
            ("b", "0x11", 9.0),
            ("i", "", 9.0),
            ("e", "0x11", 12.0),
        ];
        let expected: Vec<(String, String, f64)> = expected
            .iter()
            .map(|(p, i, t)| (p.to_string(), i.to_string(), *t))
            .collect();
        assert_eq!(seen, expected);
        // Times never go backwards and every span's end follows its begin.
        assert!(seen.windows(2).all(|w| w[0].2 <= w[1].2));
    }

    #[test]
    fn the_state_line_round_trips() {
        let s = State {
            seq: 4,
            batches: 5,
            records: 1000,
            guest_dropped: 3,
            daemon_dropped: 9,
        };
        assert_eq!(State::parse(&s.line()), Some(s));
        assert_eq!(State::parse("{\"name\":\"x\"}"), None);
        assert_eq!(State::parse("not json"), None);
    }
}
