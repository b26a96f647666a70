//! The timeline end to end on the host: records from the guest's own ring, shipped as
//! `Trace` requests to the daemon's handler, appended to `trace.json` (valid JSON after
//! every append, each batch once, bounded), then drawn as an SVG that parses as XML.

use rpc::trace::{Kind, Ring};
use rpc::{ReplyBody, Request, Status};
use shadowdaemon::confine::{GuestName, GuestRoot, Share};
use shadowdaemon::quota::Budget;
use shadowdaemon::service::handle;

struct Guest {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    root: GuestRoot,
}

fn guest() -> Guest {
    let tmp = tempfile::tempdir().unwrap();
    let share = Share::open(tmp.path()).unwrap();
    let root = share.guest(&GuestName::new("g").unwrap()).unwrap();
    Guest {
        dir: tmp.path().join("g"),
        _tmp: tmp,
        root,
    }
}

fn json(g: &Guest) -> serde_json::Value {
    let text = std::fs::read_to_string(g.dir.join("trace.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn objects<'a>(v: &'a serde_json::Value, ph: &str) -> Vec<&'a serde_json::Value> {
    v.as_array()
        .unwrap()
        .iter()
        .filter(|o| o["ph"] == ph)
        .collect()
}

fn state(v: &serde_json::Value) -> serde_json::Value {
    let last = v.as_array().unwrap().last().unwrap();
    assert_eq!(last["name"], "trace_state");
    last["args"].clone()
}

fn send(g: &Guest, seq: u64, dropped: u64, records: Vec<u8>) -> Result<ReplyBody, Status> {
    let req = Request::Trace {
        seq,
        dropped,
        records,
    };
    handle(&g.root, req).map_err(|e| e.status())
}

/// `events` events of pid 2, each created, completed, woken on and retired, as the
/// kernel's ring records them, in batches of `per_buffer`.
fn batches(events: u64, per_buffer: usize) -> Vec<Vec<u8>> {
    let mut ring = Ring::new(64, per_buffer);
    let mut out = Vec::new();
    let mut t = 1_000_000;
    for e in 0..events {
        let id = 0x1000 + e;
        for (kind, word) in [
            (Kind::Syscall, 5),
            (Kind::Created, id),
            (Kind::Blocked, 1),
            (Kind::Upcall, 1),
            (Kind::Completed, id),
            (Kind::Woken, 1),
            (Kind::Switch, 3),
            (Kind::Retired, id),
        ] {
            t += 1_500;
            let pid = if kind == Kind::Upcall { 0 } else { 2 };
            ring.push(t, kind, pid, word);
            if let Some(b) = ring.take(false) {
                out.push(b);
            }
        }
    }
    assert_eq!(ring.dropped(), 0);
    out.extend(ring.take(true));
    out
}

#[test]
fn batches_append_to_a_valid_timeline_whose_spans_match_the_events() {
    let g = guest();
    let all = batches(100, 64);
    assert!(all.len() > 5);
    for (seq, b) in all.iter().enumerate() {
        assert_eq!(send(&g, seq as u64, 0, b.clone()), Ok(ReplyBody::Trace));
        // Valid JSON after every append, ending with the state.
        let v = json(&g);
        assert_eq!(state(&v)["seq"], seq as u64);
    }
    let v = json(&g);
    let begun = objects(&v, "b");
    let ended = objects(&v, "e");
    assert_eq!(begun.len(), 100);
    assert_eq!(ended.len(), 100);
    // Each span begins before it ends, under its event's id, on pid 2's row.
    for (b, e) in begun.iter().zip(&ended) {
        assert_eq!(b["id"], e["id"]);
        assert_eq!(b["pid"], 2);
        assert!(b["ts"].as_f64() < e["ts"].as_f64());
    }
    let instants = objects(&v, "i");
    let named = |n: &str| instants.iter().filter(|o| o["name"] == n).count();
    assert_eq!(named("complete"), 100);
    assert_eq!(named("wake"), 100);
    assert_eq!(named("switch"), 100);
    assert_eq!(named("syscall"), 100);
    let upcalls: Vec<_> = instants.iter().filter(|o| o["name"] == "upcall").collect();
    assert_eq!(upcalls.len(), 100);
    assert!(upcalls.iter().all(|o| o["pid"] == 0));
    // Time stamps are in µs, in order.
    let ts: Vec<f64> = instants.iter().map(|o| o["ts"].as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(ts[0], 1001.5);
    let s = state(&v);
    assert_eq!(s["records"], 800);
    assert_eq!(s["batches"], all.len() as u64);
    assert_eq!(s["daemon_dropped"], 0);
}

#[test]
fn a_batch_sent_again_is_not_appended_twice_and_batch_zero_starts_afresh() {
    let g = guest();
    let all = batches(20, 32);
    for (seq, b) in all.iter().enumerate() {
        send(&g, seq as u64, 7, b.clone()).unwrap();
    }
    let once = std::fs::read(g.dir.join("trace.json")).unwrap();
    // The daemon restarted and the guest sends its last two batches again.
    let n = all.len() as u64;
    send(&g, n - 2, 7, all[all.len() - 2].clone()).unwrap();
    send(&g, n - 1, 7, all[all.len() - 1].clone()).unwrap();
    assert_eq!(std::fs::read(g.dir.join("trace.json")).unwrap(), once);
    assert_eq!(state(&json(&g))["guest_dropped"], 7);
    // A new boot: its batch 0 starts the timeline again.
    send(&g, 0, 0, all[0].clone()).unwrap();
    let v = json(&g);
    assert_eq!(state(&v)["batches"], 1);
    assert!(objects(&v, "b").len() < 20);
}

#[test]
fn hostile_batches_are_refused_by_name_and_the_file_stays_whole() {
    let g = guest();
    let good = batches(4, 16);
    send(&g, 0, 0, good[0].clone()).unwrap();
    let before = std::fs::read(g.dir.join("trace.json")).unwrap();
    // No time base first; an unknown kind; a time going backwards.
    let mut no_base = good[1].clone();
    no_base.drain(..16);
    assert_eq!(send(&g, 1, 0, no_base), Err(Status::Invalid));
    let mut unknown = good[1].clone();
    unknown[16 + 7] = 0xf0;
    assert_eq!(send(&g, 1, 0, unknown), Err(Status::Invalid));
    let mut backwards = good[1].clone();
    backwards[32..38].copy_from_slice(&[0; 6]);
    assert_eq!(send(&g, 1, 0, backwards), Err(Status::Invalid));
    assert_eq!(std::fs::read(g.dir.join("trace.json")).unwrap(), before);
    // A file the guest wrote itself is not appended to.
    std::fs::write(g.dir.join("trace.json"), "[1,2,3]\n").unwrap();
    assert_eq!(send(&g, 1, 0, good[1].clone()), Err(Status::Invalid));
}

#[test]
fn a_full_timeline_counts_what_it_drops_and_the_budget_holds() {
    let g = guest();
    let all = batches(12_000, 2048);
    for (seq, b) in all.iter().enumerate() {
        send(&g, seq as u64, 0, b.clone()).unwrap();
    }
    let size = std::fs::metadata(g.dir.join("trace.json")).unwrap().len();
    assert!(size <= shadowdaemon::trace::MAX_BYTES, "{size}");
    let v = json(&g);
    let s = state(&v);
    let kept = s["records"].as_u64().unwrap();
    let dropped = s["daemon_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{s} {size}");
    assert_eq!(kept + dropped, 96_000);
    // A guest whose budget is smaller than its timeline gets NoSpace.
    let tmp = tempfile::tempdir().unwrap();
    let share = Share::open(tmp.path()).unwrap();
    let small = Guest {
        dir: tmp.path().join("s"),
        root: share
            .guest(&GuestName::new("s").unwrap())
            .unwrap()
            .with_budget(Budget {
                bytes: 20_000,
                entries: 10,
                file_bytes: 1 << 20,
            })
            .unwrap(),
        _tmp: tmp,
    };
    let mut refused = false;
    for (seq, b) in all.iter().take(20).enumerate() {
        match send(&small, seq as u64, 0, b.clone()) {
            Ok(_) => {}
            Err(s) => {
                assert_eq!(s, Status::NoSpace);
                refused = true;
            }
        }
    }
    assert!(refused);
    assert!(
        std::fs::metadata(small.dir.join("trace.json"))
            .unwrap()
            .len()
            <= 20_000
    );
}

#[test]
fn the_svg_of_a_timeline_is_well_formed_and_sized_by_its_events() {
    let mut sizes = Vec::new();
    for events in [10u64, 200] {
        let g = guest();
        for (seq, b) in batches(events, 128).into_iter().enumerate() {
            send(&g, seq as u64, 0, b).unwrap();
        }
        let text = std::fs::read_to_string(g.dir.join("trace.json")).unwrap();
        let svg = shadowdaemon::trace_svg::render(&text).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let count = |tag: &str| {
            root.descendants()
                .filter(|n| n.tag_name().name() == tag)
                .count()
        };
        // A bar per event (and two for the legend), a tick per instant.
        assert_eq!(count("rect"), events as usize + 3);
        assert!(count("line") >= 6 * events as usize);
        // Rows: the kernel and pid 2.
        let labels: Vec<&str> = root
            .descendants()
            .filter(|n| n.tag_name().name() == "text")
            .filter_map(|n| n.text())
            .collect();
        assert!(
            labels.contains(&"kernel") && labels.contains(&"pid 2"),
            "{labels:?}"
        );
        sizes.push(svg.len() as f64 / events as f64);
    }
    // Bytes per event stay within a range: the picture grows with the events.
    for per_event in sizes {
        assert!(
            (800.0..2500.0).contains(&per_event),
            "{per_event} bytes per event"
        );
    }
}
