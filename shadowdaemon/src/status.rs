//! `shadowdaemon status`: each running guest's live figures, read from xenstore
//! without stopping it. A guest's kernel writes them to its `data/ethos/stats`
//! (see [`shadowdaemon::stats`]) at most once a second while it is busy; this reads
//! the node of every domain that has one and prints, one line per domain,
//!
//! ```text
//! name=web domid=5 uptime_ms=5120 created=212 completed=209 ...
//! name=web domid=5 error=bad-value
//! ```
//!
//! The figures are printed from the parsed values, never the guest's bytes; a line
//! that does not parse is named by its error's code (the detail goes to the log).
//! The name is the domain's xenstore `name` when dom0 owns it and the guest cannot
//! write it (as the daemon's `serve` requires) and it is printable; else `?`.

use std::fmt;
use std::io::{Read, Write};
use std::process::ExitCode;

use shadowdaemon::stats::{Figures, StatsError, STATS_NODE};

use crate::daemon::{list_domains, trusted_node};
use crate::xen::xenstore::{Xenstore, XsError};

/// The longest name printed as it is.
const MAX_SHOWN_NAME: usize = 64;

/// One domain's figures, as read.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    /// Its domain id.
    pub domid: u16,
    /// Its name, if trusted and printable.
    pub name: Option<String>,
    /// What its line says.
    pub figures: Result<Figures, StatsError>,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_deref().unwrap_or("?");
        write!(f, "name={name} domid={}", self.domid)?;
        match &self.figures {
            Ok(figures) => write!(f, " {figures}"),
            Err(e) => write!(f, " error={}", e.code()),
        }
    }
}

/// The figures of every domain (dom0 aside) that publishes them, by domid.
pub fn collect<T: Read + Write>(xs: &mut Xenstore<T>) -> Result<Vec<Row>, XsError> {
    let mut domains = list_domains(xs)?.unwrap_or_default();
    domains.sort_unstable();
    let mut rows = Vec::new();
    for domid in domains {
        // Gone since the listing, or not a guest that publishes: nothing to say.
        let Some(line) = xs.read(&format!("/local/domain/{domid}/{STATS_NODE}"))? else {
            continue;
        };
        let name = trusted_node(xs, domid, "name")?
            .ok()
            .and_then(|raw| shown_name(&raw));
        rows.push(Row {
            domid,
            name,
            figures: Figures::parse(&line),
        });
    }
    Ok(rows)
}

/// A name printed as it is: printable ASCII, no space or `=` (the output is
/// `key=value` words), not too long.
fn shown_name(raw: &[u8]) -> Option<String> {
    let printable = raw.iter().all(|&b| b.is_ascii_graphic() && b != b'=');
    (printable && (1..=MAX_SHOWN_NAME).contains(&raw.len()))
        .then(|| String::from_utf8_lossy(raw).into_owned())
}

/// Prints the rows of the domains named in `guests` (all if empty). Exit status 0
/// when each guest named was found, 1 when one was not or xenstore failed.
pub fn run(guests: &[String]) -> ExitCode {
    let rows = Xenstore::open_default().and_then(|mut xs| collect(&mut xs));
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            log::error!("status: xenstore: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (text, missing) = render(&rows, guests);
    print!("{text}");
    for row in rows.iter().filter(|r| wanted(r, guests)) {
        if let Err(e) = &row.figures {
            log::warn!("status: domain {}: {STATS_NODE}: {e}", row.domid);
        }
    }
    if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        log::error!("status: no live figures from {}", missing.join(", "));
        ExitCode::FAILURE
    }
}

/// The lines to print for `guests` (all if empty), and the guests named that
/// were not found.
fn render<'a>(rows: &[Row], guests: &'a [String]) -> (String, Vec<&'a str>) {
    let text = rows
        .iter()
        .filter(|r| wanted(r, guests))
        .map(|r| format!("{r}\n"))
        .collect();
    let missing = guests
        .iter()
        .filter(|g| !rows.iter().any(|r| r.name.as_ref() == Some(*g)))
        .map(String::as_str)
        .collect();
    (text, missing)
}

/// Whether `row` is one of `guests` (all are when none is named).
fn wanted(row: &Row, guests: &[String]) -> bool {
    guests.is_empty() || row.name.as_ref().is_some_and(|n| guests.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::fakexs::{self, Store};
    use std::sync::{Arc, Mutex};

    const LINE: &str = "uptime_ms=5120 created=212 completed=209 retired=207 wakes=80 \
                        switches=95 frames_free=1800 frames_used=248 ballooned=0 \
                        rpc_sent=12 rpc_answered=12";

    fn store() -> Arc<Mutex<Store>> {
        let mut s = Store::default();
        s.put_with_perms("/local/domain/0/name", "Domain-0", "n0\0");
        s.domain(7, "web", "11111111-2222-3333-4444-555555555555");
        s.write(&format!("/local/domain/7/{STATS_NODE}"), LINE, 7);
        s.domain(3, "db", "11111111-2222-3333-4444-666666666666");
        s.write(
            &format!("/local/domain/3/{STATS_NODE}"),
            "created=1 created=2",
            3,
        );
        // A guest that publishes nothing (not Ethos, or not yet).
        s.domain(4, "quiet", "11111111-2222-3333-4444-777777777777");
        Arc::new(Mutex::new(s))
    }

    #[test]
    fn prints_each_publishing_domain_in_domid_order() {
        let mut xs = fakexs::client(store());
        let rows = collect(&mut xs).unwrap();
        let (text, missing) = render(&rows, &[]);
        assert_eq!(
            text,
            format!("name=db domid=3 error=duplicate-key\nname=web domid=7 {LINE}\n")
        );
        assert!(missing.is_empty());
        assert_eq!(rows[1].figures.as_ref().unwrap().get("created"), Some(212));
    }

    #[test]
    fn names_guests_that_were_asked_for_and_not_found() {
        let mut xs = fakexs::client(store());
        let rows = collect(&mut xs).unwrap();
        let guests = ["web".to_string(), "quiet".to_string()];
        let (text, missing) = render(&rows, &guests);
        assert_eq!(text, format!("name=web domid=7 {LINE}\n"));
        assert_eq!(missing, ["quiet"]);
    }

    #[test]
    fn a_name_the_guest_may_write_or_cannot_print_is_not_shown() {
        let s = store();
        {
            let mut st = s.lock().unwrap();
            // The guest owns its name: it could pose as another.
            st.put_with_perms("/local/domain/7/name", "db", "n7\0");
            st.domain(9, "a b\x1b[2J", "11111111-2222-3333-4444-888888888888");
            st.write(&format!("/local/domain/9/{STATS_NODE}"), "created=5", 9);
        }
        let mut xs = fakexs::client(s);
        let rows = collect(&mut xs).unwrap();
        let names: Vec<_> = rows.iter().map(|r| (r.domid, r.name.clone())).collect();
        assert_eq!(names, [(3, Some("db".to_string())), (7, None), (9, None)]);
        assert_eq!(rows[2].to_string(), "name=? domid=9 created=5");
    }

    #[test]
    fn hostile_bytes_never_reach_the_output() {
        let s = store();
        s.lock().unwrap().write(
            &format!("/local/domain/7/{STATS_NODE}"),
            "created=1\x1b]0;owned\x07",
            7,
        );
        let mut xs = fakexs::client(s);
        let rows = collect(&mut xs).unwrap();
        let (text, _) = render(&rows, &[]);
        assert!(text.contains("name=web domid=7 error=bad-byte"), "{text}");
        assert!(text
            .bytes()
            .all(|b| b == b'\n' || b.is_ascii_graphic() || b == b' '));
    }

    #[test]
    fn a_failing_xenstore_is_an_error() {
        let s = store();
        s.lock().unwrap().fail_with = Some("EACCES");
        let mut xs = fakexs::client(s);
        assert!(matches!(collect(&mut xs), Err(XsError::Remote(e)) if e == "EACCES"));
    }
}
