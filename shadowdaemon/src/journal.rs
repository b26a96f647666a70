//! Exactly-once for the requests that change a guest's folder, across daemon restarts.
//!
//! # The problem
//!
//! When the daemon dies (SIGKILL, a crash) with requests in flight, the guest offers its
//! channel again and sends every request it has no reply for once more, under the same
//! event ids. A reply that was already in the ring is guest memory and survives; the
//! requests at risk are those the daemon had taken and perhaps applied, but whose reply
//! never reached the ring. Running a `DirCreate` or `Remove` again would answer
//! `Exists`/`NotFound` for work that succeeded; running a `FileWrite` again would apply
//! it twice.
//!
//! # The journal
//!
//! One append-only file per guest (`dom<domid>.journal` in the state folder, meant for a
//! tmpfs such as `/run`: it must outlive the daemon, not the machine, just as the guest's
//! event ids do). For the changing ops only (`FileWrite`, `DirCreate`, `Remove`):
//!
//! 1. `B <id>` is appended before the op runs ([`Journal::begin`]);
//! 2. `D <id> <op> <status> <written>` once it ran ([`Journal::finish`]), with the reply;
//! 3. `F <id>` once the guest has read the reply from its ring ([`Journal::delivered`]):
//!    its consumer index is past the reply's last byte. Being in the ring is not enough:
//!    a domain saved meanwhile (`xl save`) comes back with that ring thrown away and
//!    sends the request again.
//!
//! A request that comes again finds either its `D` record, and gets the recorded reply
//! without running again ([`Lookup::Done`]); or only its `B` record: the daemon died while
//! running it, so it may or may not have happened, and it runs once more in the
//! *recovery* sense ([`Lookup::Begun`]): a `DirCreate` that finds the directory, or a
//! `Remove` that finds nothing, succeeds; a `FileWrite` writes the same bytes at the same
//! offset again, which leaves the file as one write would. Nothing is ever applied twice
//! with a visible effect.
//!
//! Appends are single `write(2)` calls of whole lines, so a killed process leaves at most
//! a torn last line, which loading skips. Writes go to the page cache (no `fsync`): the
//! journal guards against the daemon dying, not dom0 crashing.
//!
//! # Reconnecting
//!
//! A guest that offers its channel anew gets its old connection stopped, but that
//! connection's jobs may still be running on the pool, each holding the journal. A
//! journal opened again meanwhile would read their `B` records as unfinished, run
//! their requests a second time as recoveries, and compact the file under the old
//! handle, whose later records would then go to a file that is no longer there. So the
//! daemon opens journals through a [`JournalSet`], which refuses ([`Busy`]) to open one
//! that anything still holds; the daemon tries again at its next tick, by when the
//! old jobs have usually finished.
//!
//! # Bounds
//!
//! Live entries are at most the requests in flight plus what an earlier incarnation left
//! behind; [`MAX_ENTRIES`] caps them anyway (the oldest go first, logged). The file is
//! rewritten with only the live entries once it holds [`COMPACT_LINES`] lines.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use rpc::{Op, ReplyBody, Status};

/// Most live entries per guest.
pub const MAX_ENTRIES: usize = 4096;
/// Lines after which the file is rewritten with only the live entries.
pub const COMPACT_LINES: usize = 8192;

/// Whether an op changes the guest's folder and so goes through the journal.
pub fn is_journaled(op: Op) -> bool {
    matches!(op, Op::FileWrite | Op::DirCreate | Op::Remove)
}

/// What the journal knows of an event id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Nothing: run the request.
    New,
    /// It started and never finished: run it again as a recovery.
    Begun,
    /// It finished with this reply: send it again, run nothing.
    Done(Result<ReplyBody, Status>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Begun,
    Done(Result<ReplyBody, Status>),
}

struct State {
    file: File,
    entries: HashMap<u64, Entry>,
    /// Insertion order, for dropping the oldest beyond [`MAX_ENTRIES`]; may hold ids
    /// already forgotten (skipped when popped).
    order: VecDeque<u64>,
    lines: usize,
}

/// One guest's journal; see the [module documentation](self).
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and loads what an earlier daemon left.
    pub fn open(path: &Path) -> io::Result<Journal> {
        let text = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut entries = HashMap::new();
        let mut order = VecDeque::new();
        let mut skipped = 0usize;
        // Only whole lines count: a kill mid-append leaves a torn tail.
        let whole = text.len() - text.iter().rev().take_while(|&&b| b != b'\n').count();
        for line in text[..whole]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            match std::str::from_utf8(line).ok().and_then(parse_line) {
                Some((id, Some(entry))) => {
                    if entries.insert(id, entry).is_none() {
                        order.push_back(id);
                    }
                }
                Some((id, None)) => {
                    entries.remove(&id);
                }
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            log::warn!(
                "journal {}: skipped {skipped} unreadable lines",
                path.display()
            );
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let journal = Journal {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                file,
                entries,
                order,
                lines: 0,
            }),
        };
        // Start from a compact file: only what is still live.
        journal.compact(&mut journal.lock())?;
        Ok(journal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Live entries (for logs and tests).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What is known of `id`.
    pub fn lookup(&self, id: u64) -> Lookup {
        match self.lock().entries.get(&id) {
            None => Lookup::New,
            Some(Entry::Begun) => Lookup::Begun,
            Some(Entry::Done(r)) => Lookup::Done(r.clone()),
        }
    }

    /// Records that `id` is about to run.
    pub fn begin(&self, id: u64) -> io::Result<()> {
        self.record(id, Some(Entry::Begun), format!("B {id}\n"))
    }

    /// Records how `id` ended (a changing op's reply: no data to keep).
    pub fn finish(&self, id: u64, op: Op, result: &Result<ReplyBody, Status>) -> io::Result<()> {
        let (status, written) = match result {
            Ok(ReplyBody::FileWrite { written }) => (Status::Ok, u64::from(*written)),
            Ok(_) => (Status::Ok, 0),
            Err(s) => (*s, 0),
        };
        let line = format!("D {id} {} {} {written}\n", op.code(), status.code());
        self.record(id, Some(Entry::Done(result.clone())), line)
    }

    /// Forgets `id`: the guest has read its reply.
    pub fn delivered(&self, id: u64) -> io::Result<()> {
        if !self.lock().entries.contains_key(&id) {
            return Ok(());
        }
        self.record(id, None, format!("F {id}\n"))
    }

    fn record(&self, id: u64, entry: Option<Entry>, line: String) -> io::Result<()> {
        let mut st = self.lock();
        match entry {
            Some(e) => {
                if st.entries.insert(id, e).is_none() {
                    st.order.push_back(id);
                }
            }
            None => {
                st.entries.remove(&id);
            }
        }
        while st.entries.len() > MAX_ENTRIES {
            let Some(old) = st.order.pop_front() else {
                break;
            };
            if st.entries.remove(&old).is_some() {
                log::warn!(
                    "journal {}: more than {MAX_ENTRIES} entries; dropped event {old}",
                    self.path.display()
                );
            }
        }
        // One write of one whole line (O_APPEND): a kill leaves at most a torn tail.
        st.file.write_all(line.as_bytes())?;
        st.lines += 1;
        if st.lines >= COMPACT_LINES {
            self.compact(&mut st)?;
        }
        Ok(())
    }

    /// Rewrites the file with only the live entries (write a new file, rename it over).
    fn compact(&self, st: &mut State) -> io::Result<()> {
        let live: Vec<u64> = st
            .order
            .iter()
            .copied()
            .filter(|id| st.entries.contains_key(id))
            .collect();
        let mut text = String::new();
        for id in &live {
            match &st.entries[id] {
                Entry::Begun => text.push_str(&format!("B {id}\n")),
                Entry::Done(r) => {
                    let (op, status, written) = match r {
                        Ok(ReplyBody::FileWrite { written }) => {
                            (Op::FileWrite, Status::Ok, u64::from(*written))
                        }
                        Ok(body) => (body.op(), Status::Ok, 0),
                        // The op of a failed request is not needed to answer it again
                        // (the reply's op comes from the request); any changing op will do.
                        Err(s) => (Op::Remove, *s, 0),
                    };
                    text.push_str(&format!(
                        "D {id} {} {} {written}\n",
                        op.code(),
                        status.code()
                    ));
                }
            }
        }
        let tmp = self.path.with_extension("journal.tmp");
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &self.path)?;
        st.file = OpenOptions::new().append(true).open(&self.path)?;
        st.order = live.into();
        st.lines = st.entries.len();
        Ok(())
    }

    /// Deletes the journal of a guest that is gone.
    pub fn remove(path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A journal is still held by an earlier connection's jobs.
#[derive(Debug)]
pub struct Busy;

/// The journals open now, so that none is opened twice (see the
/// [module documentation](self)). Holds no journal itself: an entry lives only as long
/// as something else holds its journal.
#[derive(Default)]
pub struct JournalSet {
    open: Mutex<HashMap<PathBuf, Weak<Journal>>>,
}

impl JournalSet {
    /// Opens the journal at `path`, unless something still holds it: `Ok(Err(Busy))`.
    pub fn open(&self, path: &Path) -> io::Result<Result<Arc<Journal>, Busy>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, j| j.strong_count() > 0);
        if open.contains_key(path) {
            return Ok(Err(Busy));
        }
        let journal = Arc::new(Journal::open(path)?);
        open.insert(path.to_path_buf(), Arc::downgrade(&journal));
        Ok(Ok(journal))
    }

    /// Whether the journal at `path` is held now.
    pub fn is_held(&self, path: &Path) -> bool {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .is_some_and(|j| j.strong_count() > 0)
    }
}

/// One line: `Some((id, Some(entry)))` for B/D, `Some((id, None))` for F, `None` if
/// unreadable.
fn parse_line(line: &str) -> Option<(u64, Option<Entry>)> {
    let mut f = line.split(' ');
    let kind = f.next()?;
    let id: u64 = f.next()?.parse().ok()?;
    let entry = match kind {
        "B" => Some(Entry::Begun),
        "F" => None,
        "D" => {
            let op = Op::from_code(f.next()?.parse().ok()?)?;
            let status = Status::from_code(f.next()?.parse().ok()?)?;
            let written: u32 = f.next()?.parse().ok()?;
            let result = match (status, op) {
                (Status::Ok, Op::FileWrite) => Ok(ReplyBody::FileWrite { written }),
                (Status::Ok, Op::DirCreate) => Ok(ReplyBody::DirCreate),
                (Status::Ok, Op::Remove) => Ok(ReplyBody::Remove),
                (Status::Ok, _) => return None,
                (s, _) => Err(s),
            };
            Some(Entry::Done(result))
        }
        _ => return None,
    };
    if f.next().is_some() {
        return None;
    }
    Some((id, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("dom5.journal")
    }

    #[test]
    fn a_finished_request_is_remembered_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&path(&dir)).unwrap();
        assert_eq!(j.lookup(7), Lookup::New);
        j.begin(7).unwrap();
        j.begin(8).unwrap();
        j.finish(7, Op::FileWrite, &Ok(ReplyBody::FileWrite { written: 11 }))
            .unwrap();
        j.begin(9).unwrap();
        j.finish(9, Op::DirCreate, &Err(Status::Exists)).unwrap();
        drop(j);

        let j = Journal::open(&path(&dir)).unwrap();
        assert_eq!(
            j.lookup(7),
            Lookup::Done(Ok(ReplyBody::FileWrite { written: 11 }))
        );
        assert_eq!(j.lookup(8), Lookup::Begun);
        assert_eq!(j.lookup(9), Lookup::Done(Err(Status::Exists)));
        assert_eq!(j.len(), 3);
    }

    #[test]
    fn delivered_entries_are_forgotten_and_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&path(&dir)).unwrap();
        j.begin(1).unwrap();
        j.finish(1, Op::Remove, &Ok(ReplyBody::Remove)).unwrap();
        j.delivered(1).unwrap();
        j.delivered(42).unwrap(); // never journaled: nothing written
        assert_eq!(j.lookup(1), Lookup::New);
        drop(j);
        let j = Journal::open(&path(&dir)).unwrap();
        assert!(j.is_empty());
        assert_eq!(fs::read_to_string(path(&dir)).unwrap(), "");
    }

    #[test]
    fn a_torn_last_line_and_garbage_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            path(&dir),
            "B 3\nD 3 4 0 5\nnonsense\nD 4 1 0 0\nB 5 extra\nD 6 6 0 0\nB 7",
        )
        .unwrap();
        let j = Journal::open(&path(&dir)).unwrap();
        // Op 4 is FileWrite (5 bytes written); op 1 (Ping) cannot succeed in the journal.
        assert_eq!(
            j.lookup(3),
            Lookup::Done(Ok(ReplyBody::FileWrite { written: 5 }))
        );
        assert_eq!(j.lookup(4), Lookup::New);
        assert_eq!(j.lookup(5), Lookup::New);
        assert_eq!(j.lookup(7), Lookup::New, "torn line");
        assert_eq!(j.len(), 2);
    }

    #[test]
    fn entries_are_bounded_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&path(&dir)).unwrap();
        for id in 0..(MAX_ENTRIES as u64 + 10) {
            j.begin(id).unwrap();
        }
        assert_eq!(j.len(), MAX_ENTRIES);
        assert_eq!(j.lookup(0), Lookup::New);
        assert_eq!(j.lookup(MAX_ENTRIES as u64 + 9), Lookup::Begun);
        // Past COMPACT_LINES the file was rewritten: it stays near the live size.
        for id in 0..COMPACT_LINES as u64 {
            j.delivered(id).unwrap();
        }
        let lines = fs::read_to_string(path(&dir)).unwrap().lines().count();
        assert!(lines <= COMPACT_LINES, "{lines} lines");
    }

    #[test]
    fn a_held_journal_is_not_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let set = JournalSet::default();
        let j = set.open(&path(&dir)).unwrap().unwrap();
        j.begin(3).unwrap();
        let held = Arc::clone(&j); // a job still running
        drop(j);
        assert!(set.open(&path(&dir)).unwrap().is_err());
        assert!(set.is_held(&path(&dir)));
        drop(held);
        let again = set.open(&path(&dir)).unwrap().unwrap();
        assert_eq!(again.lookup(3), Lookup::Begun);
    }

    #[test]
    fn changing_ops_only() {
        assert!(is_journaled(Op::FileWrite));
        assert!(is_journaled(Op::DirCreate));
        assert!(is_journaled(Op::Remove));
        assert!(!is_journaled(Op::FileRead));
        assert!(!is_journaled(Op::Ping));
    }
}
