//! `shadowdaemon trace-svg IN.json OUT.svg`: a guest's timeline ([`crate::trace`]) drawn
//! as an SVG a browser shows.
//!
//! One row per process (the kernel, pid 0, first), labelled on the left with the
//! process's name (its `process_name` metadata) and pid, e.g. "rpc-demo (pid 3)"; a time axis
//! in milliseconds from the first record. Each event is a bar from its creation to its
//! retirement, in lanes so that overlapping events stay apart (an event never retired
//! runs to the end, in another colour); instants (completions, wakes, switches, blocks,
//! system calls, upcalls, cancels, exits) are ticks above the bars, coloured by kind,
//! with a legend. Every mark has a tooltip (`<title>`) with its times and id. Anything
//! read from the file is escaped; at most [`MAX_MARKS`] marks are drawn (the title says
//! how many were left out), so the picture stays a size a browser opens.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Most bars and ticks drawn.
pub const MAX_MARKS: usize = 100_000;
/// Lanes of bars per row; more overlapping events share the last lane.
pub const MAX_LANES: usize = 12;

const WIDTH: f64 = 1400.0;
const LABELS: f64 = 170.0;
/// Characters of a name shown in a row's label (the tooltip has all of it).
const LABEL_CHARS: usize = 18;
const PLOT: f64 = WIDTH - LABELS - 20.0;
const TICKS_HEIGHT: f64 = 12.0;
const LANE: f64 = 7.0;
const TOP: f64 = 44.0;

/// The tick colours, by instant name.
const KINDS: [(&str, &str); 9] = [
    ("complete", "#2e8b57"),
    ("wake", "#ff8c00"),
    ("switch", "#1e6fd9"),
    ("block", "#8a2be2"),
    ("syscall", "#9a9a9a"),
    ("upcall", "#d62728"),
    ("cancel", "#000000"),
    ("exit", "#8b4513"),
    ("retire", "#4682b4"),
];

fn colour(name: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("#555555", |(_, c)| c)
}

/// Text for XML: markup characters escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug)]
struct Span {
    pid: i64,
    id: String,
    start: f64,
    end: Option<f64>,
}

#[derive(Debug)]
struct Instant {
    pid: i64,
    ts: f64,
    name: String,
    args: String,
}

/// What a timeline holds, read from its JSON.
#[derive(Debug, Default)]
struct Timeline {
    spans: Vec<Span>,
    instants: Vec<Instant>,
    names: BTreeMap<i64, String>,
    state: Option<String>,
}

fn read(json: &str) -> Result<Timeline, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let objects = match &value {
        serde_json::Value::Array(a) => a.as_slice(),
        serde_json::Value::Object(o) => o
            .get("traceEvents")
            .and_then(|v| v.as_array())
            .map(Vec::as_slice)
            .ok_or("an object without traceEvents")?,
        _ => return Err("neither an array nor an object of trace events".into()),
    };
    let mut t = Timeline::default();
    let mut open: HashMap<String, usize> = HashMap::new();
    for o in objects {
        let ph = o.get("ph").and_then(|v| v.as_str()).unwrap_or("");
        let pid = o.get("pid").and_then(|v| v.as_i64()).unwrap_or(0);
        let ts = o.get("ts").and_then(|v| v.as_f64());
        let name = o.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let id = o.get("id").map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        match (ph, ts, id) {
            ("b", Some(ts), Some(id)) => {
                open.insert(id.clone(), t.spans.len());
                t.spans.push(Span {
                    pid,
                    id,
                    start: ts,
                    end: None,
                });
            }
            ("e", Some(ts), Some(id)) => {
                if let Some(i) = open.remove(&id) {
                    t.spans[i].end = Some(ts);
                }
            }
            ("i" | "I" | "n", Some(ts), _) => t.instants.push(Instant {
                pid,
                ts,
                name: name.to_string(),
                args: o.get("args").map(|a| a.to_string()).unwrap_or_default(),
            }),
            ("M", _, _) if name == "process_name" => {
                if let Some(n) = o.pointer("/args/name").and_then(|v| v.as_str()) {
                    t.names.insert(pid, n.to_string());
                }
            }
            ("M", _, _) if name == "trace_state" => {
                t.state = o.get("args").map(|a| a.to_string());
            }
            _ => {}
        }
    }
    Ok(t)
}

/// A row's label and its whole text: the process's name and pid ("rpc-demo (pid 3)"),
/// the name cut to [`LABEL_CHARS`] in the label; the pid alone for a process never
/// named; the kernel (pid 0) by its name only.
fn row_label(pid: i64, name: Option<&str>) -> (String, String) {
    match name {
        Some(name) if pid == 0 => (name.chars().take(LABEL_CHARS).collect(), name.to_string()),
        Some(name) => {
            let mut short: String = name.chars().take(LABEL_CHARS).collect();
            if short.len() < name.len() {
                short.push('…');
            }
            (
                format!("{short} (pid {pid})"),
                format!("{name} (pid {pid})"),
            )
        }
        None if pid == 0 => ("kernel".into(), "kernel".into()),
        None => (format!("pid {pid}"), format!("pid {pid}")),
    }
}

/// Gives each span a lane in its row (greedy: the first lane free at its start).
fn lanes(spans: &[Span], end_of_time: f64) -> (Vec<usize>, BTreeMap<i64, usize>) {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by(|&a, &b| spans[a].start.total_cmp(&spans[b].start));
    let mut free_at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    let mut lane = vec![0; spans.len()];
    for i in order {
        let s = &spans[i];
        let ends = free_at.entry(s.pid).or_default();
        let end = s.end.unwrap_or(end_of_time);
        let l = match ends.iter().position(|&e| e <= s.start) {
            Some(l) => l,
            None if ends.len() < MAX_LANES => {
                ends.push(0.0);
                ends.len() - 1
            }
            None => MAX_LANES - 1,
        };
        ends[l] = ends[l].max(end);
        lane[i] = l;
    }
    let counts = free_at.into_iter().map(|(p, e)| (p, e.len())).collect();
    (lane, counts)
}

/// The SVG of a timeline's JSON text.
pub fn render(json: &str) -> Result<String, String> {
    let t = read(json)?;
    let times = t
        .spans
        .iter()
        .flat_map(|s| [Some(s.start), s.end])
        .flatten()
        .chain(t.instants.iter().map(|i| i.ts));
    let (t0, t1) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (t0, t1) = if t0.is_finite() { (t0, t1) } else { (0.0, 0.0) };
    let span_us = (t1 - t0).max(1.0);
    let x = |ts: f64| LABELS + (ts - t0) / span_us * PLOT;

    let mut pids: Vec<i64> = t.names.keys().copied().collect();
    pids.extend(t.spans.iter().map(|s| s.pid));
    pids.extend(t.instants.iter().map(|i| i.pid));
    pids.push(0);
    pids.sort_unstable();
    pids.dedup();
    let (lane, lane_counts) = lanes(&t.spans, t1);
    let mut row_top = BTreeMap::new();
    let mut y = TOP;
    for &pid in &pids {
        row_top.insert(pid, y);
        let lanes = lane_counts.get(&pid).copied().unwrap_or(0).max(1);
        y += TICKS_HEIGHT + lanes as f64 * LANE + 10.0;
    }
    let height = y + 40.0;

    let marks = t.spans.len() + t.instants.len();
    let left_out = marks.saturating_sub(MAX_MARKS);
    let mut out = String::with_capacity(256 + marks.min(MAX_MARKS) * 120);
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH} {height:.0}\" \
         font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(
        out,
        "<title>Ethos trace: {} events, {} instants, {} processes{}</title>",
        t.spans.len(),
        t.instants.len(),
        pids.len(),
        if left_out > 0 {
            format!(", {left_out} marks not drawn")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"8\" y=\"14\" font-size=\"13\">Ethos trace: {} events, {} instants over {:.3} ms{}</text>",
        t.spans.len(),
        t.instants.len(),
        (t1 - t0) / 1000.0,
        t.state
            .as_deref()
            .map(|s| format!(" — {}", escape(s)))
            .unwrap_or_default()
    );
    // The axis: ten steps, in ms from the first record.
    for i in 0..=10 {
        let ts = t0 + span_us * f64::from(i) / 10.0;
        let px = x(ts);
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{:.0}\" x2=\"{px:.1}\" y2=\"{:.0}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{px:.1}\" y=\"34\" text-anchor=\"{}\" fill=\"#666\">{:.3} ms</text>",
            TOP - 6.0,
            y,
            // The last label ends at its line, so that it stays inside the picture.
            if i == 10 { "end" } else { "middle" },
            (ts - t0) / 1000.0
        );
    }
    for (&pid, &top) in &row_top {
        let (label, full) = row_label(pid, t.names.get(&pid).map(String::as_str));
        let _ = writeln!(
            out,
            "<line x1=\"0\" y1=\"{:.1}\" x2=\"{WIDTH}\" y2=\"{:.1}\" stroke=\"#cccccc\"/>\
             <text x=\"6\" y=\"{:.1}\">{}<title>{}</title></text>",
            top - 4.0,
            top - 4.0,
            top + 12.0,
            escape(&label),
            escape(&full)
        );
    }
    let mut drawn = 0;
    for (s, &l) in t.spans.iter().zip(&lane) {
        if drawn == MAX_MARKS {
            break;
        }
        drawn += 1;
        let top = row_top[&s.pid] + TICKS_HEIGHT + l as f64 * LANE;
        let (x0, x1) = (x(s.start), x(s.end.unwrap_or(t1)));
        let (fill, what) = match s.end {
            Some(e) => (
                "#4682b4",
                format!("retired at {e:.3} µs ({:.3} µs)", e - s.start),
            ),
            None => ("#e07b7b", "never retired".to_string()),
        };
        let _ = writeln!(
            out,
            "<rect x=\"{x0:.2}\" y=\"{top:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{fill}\" \
             fill-opacity=\"0.75\"><title>event {} (pid {}): created at {:.3} µs, {what}</title></rect>",
            (x1 - x0).max(0.8),
            LANE - 1.5,
            escape(&s.id),
            s.pid,
            s.start
        );
    }
    for i in &t.instants {
        if drawn == MAX_MARKS {
            break;
        }
        drawn += 1;
        let top = row_top[&i.pid];
        let px = x(i.ts);
        let _ = writeln!(
            out,
            "<line x1=\"{px:.2}\" y1=\"{top:.1}\" x2=\"{px:.2}\" y2=\"{:.1}\" stroke=\"{}\" \
             stroke-width=\"1.2\"><title>{} at {:.3} µs (pid {}) {}</title></line>",
            top + TICKS_HEIGHT - 2.0,
            colour(&i.name),
            escape(&i.name),
            i.ts,
            i.pid,
            escape(&i.args)
        );
    }
    // The legend.
    let mut lx = 8.0;
    let ly = height - 16.0;
    let _ = writeln!(
        out,
        "<rect x=\"{lx}\" y=\"{:.0}\" width=\"18\" height=\"6\" fill=\"#4682b4\"/>\
         <text x=\"{}\" y=\"{ly:.0}\">event (create → retire)</text>",
        ly - 7.0,
        lx + 22.0
    );
    lx += 170.0;
    let _ = writeln!(
        out,
        "<rect x=\"{lx}\" y=\"{:.0}\" width=\"18\" height=\"6\" fill=\"#e07b7b\"/>\
         <text x=\"{}\" y=\"{ly:.0}\">never retired</text>",
        ly - 7.0,
        lx + 22.0
    );
    lx += 110.0;
    for (name, c) in KINDS.iter().filter(|(n, _)| *n != "retire") {
        let _ = writeln!(
            out,
            "<line x1=\"{lx}\" y1=\"{:.0}\" x2=\"{lx}\" y2=\"{ly:.0}\" stroke=\"{c}\" \
             stroke-width=\"2\"/><text x=\"{}\" y=\"{ly:.0}\">{name}</text>",
            ly - 10.0,
            lx + 5.0
        );
        lx += 80.0;
    }
    out.push_str("</svg>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_keep_overlapping_events_apart() {
        let span = |start, end| Span {
            pid: 1,
            id: String::new(),
            start,
            end,
        };
        let spans = [
            span(0.0, Some(10.0)),
            span(5.0, Some(7.0)),
            span(8.0, None),
            span(11.0, Some(12.0)),
        ];
        let (lane, counts) = lanes(&spans, 20.0);
        assert_eq!(lane, [0, 1, 1, 0]);
        assert_eq!(counts[&1], 2);
    }

    #[test]
    fn markup_in_the_file_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
        let svg = render(
            "[{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"</text><script>\"}}]",
        )
        .unwrap();
        assert!(!svg.contains("<script>"));
    }

    #[test]
    fn rows_are_labelled_with_the_name_and_the_pid() {
        let svg = render(
            "[{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"args\":{\"name\":\"kernel\"}},\
             {\"name\":\"process_name\",\"ph\":\"M\",\"pid\":3,\"args\":{\"name\":\"rpc-demo\"}},\
             {\"name\":\"process_name\",\"ph\":\"M\",\"pid\":4,\"args\":{\"name\":\"a-very-long-program-name\"}},\
             {\"name\":\"syscall\",\"ph\":\"i\",\"pid\":5,\"ts\":1.0}]",
        )
        .unwrap();
        assert!(svg.contains(">rpc-demo (pid 3)<title>"), "{svg}");
        assert!(svg.contains(">a-very-long-progra… (pid 4)<title>"), "{svg}");
        assert!(
            svg.contains("<title>a-very-long-program-name (pid 4)</title>"),
            "{svg}"
        );
        assert!(svg.contains(">pid 5<title>"), "{svg}");
        assert!(svg.contains(">kernel<title>"), "{svg}");
    }

    #[test]
    fn what_is_not_a_timeline_is_refused() {
        assert!(render("{").is_err());
        assert!(render("7").is_err());
        assert!(render("{\"x\":1}").is_err());
        assert!(render("[]").is_ok());
    }
}
