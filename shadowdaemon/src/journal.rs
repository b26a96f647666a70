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
//! event ids do). For the changing ops only (`FileWrite`, `DirCreate`, `Remove`, and
//! `Trace`, which appends to the guest's timeline):
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
//! # Whose journal
//!
//! A journal answers for one run of one guest's kernel: the event ids it holds are that
//! run's. Its file is named by a [`JournalKey`] in the state folder ([`StateDir`]):
//!
//! * A guest that sends a boot id ([`BootId`]: its kernel draws it once per boot and
//!   publishes it beside its channel's keys) gets `vm-<handle>.boot-<id>.<name>.journal`:
//!   its VM handle (the UUID dom0 gave the VM), that boot, and the name its folder has.
//!   A restore or a migration is the same VM in the same boot under a new domid: it
//!   finds the journal and is answered from it. A reboot sends another boot id, a reused
//!   domid has another handle: either starts empty. The name is part of it because the
//!   answers are about one folder: a copy of a saved VM restored under another name has
//!   another folder, where nothing was done yet. The boot id is the guest's choice and
//!   that is fine: it only tells apart boots of one VM, whose handle dom0 owns, so a
//!   guest lying about it can only mix up its own journals.
//! * A guest that sends none (kernels from before boot ids) keeps what there was before:
//!   `dom<domid>-<handle>.journal`, removed when the domain goes (no restore finds it).
//!
//! # Kept after the domain went
//!
//! The journal of a domain that went away, keyed by its boot, is kept so that a restore
//! later finds it ([`StateDir::forget`]). [`StateDir::prune`] bounds what is kept: a
//! journal that answers for nothing any more is removed at once (it would tell a restore
//! nothing); of the others, none is kept longer than [`KEPT_FOR`] after its domain went
//! (measured from the file's modification time, set when the domain went: it holds
//! across daemon restarts), and at most [`KEPT_JOURNALS`], the ones whose domains went
//! longest ago dropped first. Each drop is logged with what it held. So a domain
//! destroyed for good loses its journal within those bounds; one restored after them
//! runs again what it had sent and not seen answered, as before boot ids.
//!
//! # Bounds
//!
//! Live entries are at most the requests in flight plus what an earlier incarnation left
//! behind; [`MAX_ENTRIES`] caps them anyway (the oldest go first, logged). The file is
//! rewritten with only the live entries once it holds [`COMPACT_LINES`] lines. A guest
//! saved and restored again and again reuses one file. Replies the guest read after the
//! daemon that wrote them died are never marked read (nobody saw it read them): they
//! stay, answering for ids the guest will not send again, until [`MAX_ENTRIES`] or the
//! bounds on kept journals drop them.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use rpc::{Op, ReplyBody, Status};

use crate::confine::GuestName;

/// Most live entries per guest.
pub const MAX_ENTRIES: usize = 4096;
/// Lines after which the file is rewritten with only the live entries.
pub const COMPACT_LINES: usize = 8192;

/// Whether an op changes the guest's folder and so goes through the journal.
pub fn is_journaled(op: Op) -> bool {
    matches!(op, Op::FileWrite | Op::DirCreate | Op::Remove | Op::Trace)
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
    /// Reads the entries the file at `path` holds (none if there is no file), the
    /// insertion order, and how many lines were unreadable.
    fn load(path: &Path) -> io::Result<(HashMap<u64, Entry>, VecDeque<u64>, usize)> {
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
        Ok((entries, order, skipped))
    }

    /// How many requests the journal at `path` still answers for, without opening it
    /// for writing (0 if there is no file).
    pub fn live_entries(path: &Path) -> io::Result<usize> {
        Ok(Journal::load(path)?.0.len())
    }

    /// Opens (or creates) the journal at `path` and loads what an earlier daemon left.
    pub fn open(path: &Path) -> io::Result<Journal> {
        let (entries, order, skipped) = Journal::load(path)?;
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

/// A guest's boot nonce (see [Whose journal](self#whose-journal)): drawn by its kernel
/// once per boot, the same after a restore (it is in the domain's memory), new after a
/// reboot. Sent as exactly [`BootId::DIGITS`] lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BootId(u64);

impl BootId {
    /// How many hex digits the guest sends.
    pub const DIGITS: usize = 16;

    /// A boot id as the guest sends it; `None` unless exactly [`Self::DIGITS`] lowercase
    /// hex digits (one spelling per value, so one file name per boot).
    pub fn parse(text: &[u8]) -> Option<BootId> {
        if text.len() != Self::DIGITS
            || !text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        // Only ASCII hex digits passed.
        let digits = std::str::from_utf8(text).ok()?;
        u64::from_str_radix(digits, 16).ok().map(BootId)
    }
}

impl fmt::Display for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Longest VM handle accepted (a UUID is 36 characters).
pub const MAX_HANDLE: usize = 64;

/// Whether `handle` is a VM handle that is safe in a file name: 1 to [`MAX_HANDLE`]
/// bytes of `[0-9A-Za-z-]`.
pub fn is_vm_handle(handle: &[u8]) -> bool {
    (1..=MAX_HANDLE).contains(&handle.len())
        && handle
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// Which journal file a guest's requests go to (see
/// [Whose journal](self#whose-journal)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JournalKey {
    /// A guest that sent its boot id: this boot of this VM, under this name. Kept when
    /// the domain goes, for a restore.
    Boot {
        /// The VM handle (see [`is_vm_handle`]).
        handle: String,
        /// The boot.
        boot: BootId,
        /// The guest's name: its folder.
        name: GuestName,
    },
    /// A guest that sent none: this domain of this VM; removed when the domain goes.
    /// `handle` is `None` only for files from before handles (`dom<domid>.journal`),
    /// found at start-up to be removed.
    Domain {
        /// The domid.
        domid: u16,
        /// The VM handle.
        handle: Option<String>,
    },
}

impl JournalKey {
    /// The file's name in the state folder.
    pub fn file_name(&self) -> String {
        match self {
            JournalKey::Boot { handle, boot, name } => {
                format!("vm-{handle}.boot-{boot}.{name}.journal")
            }
            JournalKey::Domain {
                domid,
                handle: Some(handle),
            } => format!("dom{domid}-{handle}.journal"),
            JournalKey::Domain {
                domid,
                handle: None,
            } => format!("dom{domid}.journal"),
        }
    }

    /// Whose journal the file `file` is; `None` if not a journal's name, or not one
    /// [`Self::file_name`] would give (so a key found is a key that names that file).
    pub fn from_file_name(file: &str) -> Option<JournalKey> {
        let stem = file.strip_suffix(".journal")?;
        let key = if let Some(rest) = stem.strip_prefix("vm-") {
            // A handle has no dot and a boot id none; a name may have dots.
            let (handle, rest) = rest.split_once('.')?;
            let (boot, name) = rest.strip_prefix("boot-")?.split_once('.')?;
            if !is_vm_handle(handle.as_bytes()) {
                return None;
            }
            JournalKey::Boot {
                handle: handle.to_string(),
                boot: BootId::parse(boot.as_bytes())?,
                name: GuestName::new(name).ok()?,
            }
        } else {
            let stem = stem.strip_prefix("dom")?;
            let (domid, handle) = match stem.split_once('-') {
                Some((d, h)) if is_vm_handle(h.as_bytes()) => (d, Some(h.to_string())),
                Some(_) => return None,
                None => (stem, None),
            };
            JournalKey::Domain {
                domid: domid.parse().ok()?,
                handle,
            }
        };
        (key.file_name() == file).then_some(key)
    }

    /// Whether the journal is kept when its domain goes (for a restore).
    pub fn outlives_its_domain(&self) -> bool {
        matches!(self, JournalKey::Boot { .. })
    }
}

/// At most this many journals of domains that went away are kept (see
/// [Kept after the domain went](self#kept-after-the-domain-went)).
pub const KEPT_JOURNALS: usize = 64;
/// None is kept longer than this after its domain went.
pub const KEPT_FOR: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How many journals of domains that went away are kept, and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keeping {
    /// At most this many: the ones whose domains went longest ago are dropped first.
    pub most: usize,
    /// None longer than this after its domain went.
    pub longest: Duration,
}

impl Default for Keeping {
    fn default() -> Self {
        Keeping {
            most: KEPT_JOURNALS,
            longest: KEPT_FOR,
        }
    }
}

/// What [`StateDir::prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Removed: they answered for nothing any more.
    pub empty: usize,
    /// Dropped: their domains went more than [`Keeping::longest`] ago.
    pub aged: usize,
    /// Dropped: beyond [`Keeping::most`].
    pub over_cap: usize,
    /// Kept, for a restore.
    pub kept: usize,
}

impl Pruned {
    /// Journals removed, for any reason.
    pub fn removed(&self) -> usize {
        self.empty + self.aged + self.over_cap
    }
}

/// The state folder: each guest's journal by its [`JournalKey`], each opened once at a
/// time ([`JournalSet`]), and those of domains that went away kept within
/// [`Keeping`]'s bounds.
pub struct StateDir {
    dir: PathBuf,
    journals: JournalSet,
    keeping: Keeping,
}

impl StateDir {
    /// The journals in `dir`, kept as `keeping` says once their domains are gone.
    pub fn new(dir: &Path, keeping: Keeping) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
            journals: JournalSet::default(),
            keeping,
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal file of `key`; refused if `key` does not name one file of this
    /// folder (a handle or name that the checks before did not stop).
    pub fn path(&self, key: &JournalKey) -> io::Result<PathBuf> {
        let name = key.file_name();
        if JournalKey::from_file_name(&name).as_ref() != Some(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a journal's name"),
            ));
        }
        Ok(self.dir.join(name))
    }

    /// Opens the journal of `key`, unless something still holds it (`Ok(Err(Busy))`:
    /// an earlier connection's jobs, perhaps an earlier domain's of the same VM).
    pub fn open(&self, key: &JournalKey) -> io::Result<Result<Arc<Journal>, Busy>> {
        self.journals.open(&self.path(key)?)
    }

    /// Whether the journal of `key` is held now.
    pub fn is_held(&self, key: &JournalKey) -> bool {
        self.path(key).is_ok_and(|p| self.journals.is_held(&p))
    }

    /// The domain whose journal `key` names is gone (at `now`); whether its journal is
    /// kept. A [`JournalKey::Domain`] journal is removed. A [`JournalKey::Boot`] one is
    /// kept for a restore, its age counting from now (its modification time is set to
    /// `now`), unless it answers for nothing and nothing holds it: then it is removed,
    /// as it would tell a restore nothing.
    pub fn forget(&self, key: &JournalKey, now: SystemTime) -> io::Result<bool> {
        let path = self.path(key)?;
        if !key.outlives_its_domain() {
            return Journal::remove(&path).map(|()| false);
        }
        // Nothing opens a journal meanwhile.
        let open = self
            .journals
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = open.get(&path).is_some_and(|j| j.strong_count() > 0);
        if !held && Journal::live_entries(&path)? == 0 {
            return Journal::remove(&path).map(|()| false);
        }
        match OpenOptions::new().append(true).open(&path) {
            Ok(file) => file.set_modified(now).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Bounds the journals kept for domains that went away (see
    /// [Kept after the domain went](self#kept-after-the-domain-went)), as of `now`.
    /// Leaves alone every journal that `live` says a domain known now may use, every
    /// journal held, and every [`JournalKey::Domain`] one. A journal that cannot be
    /// read or removed is logged and left; only a folder that cannot be listed fails.
    pub fn prune(&self, live: &dyn Fn(&JournalKey) -> bool, now: SystemTime) -> io::Result<Pruned> {
        // Nothing opens a journal meanwhile.
        let mut open = self
            .journals
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, j| j.strong_count() > 0);
        let mut pruned = Pruned::default();
        let mut candidates = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(file) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(key) = JournalKey::from_file_name(&file) else {
                continue;
            };
            let path = entry.path();
            if !key.outlives_its_domain() || live(&key) || open.contains_key(&path) {
                continue;
            }
            let held = match Journal::live_entries(&path) {
                Ok(0) => {
                    match Journal::remove(&path) {
                        Ok(()) => {
                            pruned.empty += 1;
                            log::debug!(
                                "journal {file}: its domain is gone and it answers for \
                                 nothing: removed"
                            );
                        }
                        Err(e) => log::warn!("journal {file}: cannot remove it: {e}"),
                    }
                    continue;
                }
                Ok(n) => n.to_string(),
                Err(e) => {
                    log::warn!("journal {file}: cannot read it ({e}); kept within the bounds");
                    "unknown number of".to_string()
                }
            };
            // Unknown (a file system without times): as if its domain went now.
            let went = entry.metadata().and_then(|m| m.modified()).unwrap_or(now);
            candidates.push((went, file, path, held));
        }
        // The domains that went last first; a tie by name, so that the same files go.
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let longest = self.keeping.longest;
        for (rank, (went, file, path, held)) in candidates.into_iter().enumerate() {
            let age = now.duration_since(went).unwrap_or_default();
            let why = if age > longest {
                format!(
                    "its domain went {} h ago, longer than the {} h journals are kept",
                    age.as_secs() / 3600,
                    longest.as_secs() / 3600
                )
            } else if rank >= self.keeping.most {
                format!(
                    "{} newer journals of domains that went away are kept, the most kept",
                    self.keeping.most
                )
            } else {
                pruned.kept += 1;
                continue;
            };
            match Journal::remove(&path) {
                Ok(()) => {
                    if age > longest {
                        pruned.aged += 1;
                    } else {
                        pruned.over_cap += 1;
                    }
                    log::warn!(
                        "journal {file}: dropped ({why}); a restore of that domain would \
                         run again the {held} requests it answered for"
                    );
                }
                Err(e) => log::warn!("journal {file}: cannot remove it ({why}): {e}"),
            }
        }
        Ok(pruned)
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
                (Status::Ok, Op::Trace) => Ok(ReplyBody::Trace),
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

    const UUID: &str = "0f8e2f5e-1c0d-4b1a-9d47-5a1c3b2e0001";

    fn boot_key(handle: &str, boot: &str, name: &str) -> JournalKey {
        JournalKey::Boot {
            handle: handle.into(),
            boot: BootId::parse(boot.as_bytes()).unwrap(),
            name: GuestName::new(name).unwrap(),
        }
    }

    #[test]
    fn boot_ids_are_sixteen_lowercase_hex_digits() {
        let id = BootId::parse(b"00c0ffee0123abcd").unwrap();
        assert_eq!(id.to_string(), "00c0ffee0123abcd");
        for bad in [
            &b""[..],
            b"00c0ffee0123abc",
            b"00c0ffee0123abcde",
            b"00C0FFEE0123ABCD",
            b"+0c0ffee0123abcd",
            b"00c0ffee 123abcd",
            b"00c0ffee0123abc\n",
            b"\xff0c0ffee0123abc",
        ] {
            assert_eq!(BootId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn journal_names_name_one_key_each() {
        let key = boot_key(UUID, "00c0ffee0123abcd", "web.1-a_b");
        let file = key.file_name();
        assert_eq!(
            file,
            format!("vm-{UUID}.boot-00c0ffee0123abcd.web.1-a_b.journal")
        );
        assert_eq!(JournalKey::from_file_name(&file), Some(key));
        let domain = JournalKey::Domain {
            domid: 5,
            handle: Some("ab-1".into()),
        };
        assert_eq!(domain.file_name(), "dom5-ab-1.journal");
        assert_eq!(
            JournalKey::from_file_name("dom5-ab-1.journal"),
            Some(domain)
        );
        assert_eq!(
            JournalKey::from_file_name("dom5.journal"),
            Some(JournalKey::Domain {
                domid: 5,
                handle: None
            })
        );
        for not_one in [
            "dom5.journal.tmp",
            "domx-a.journal",
            "dom+5-a.journal",
            "dom05-a.journal",
            "dom5-a.b.journal",
            "vm-a.boot-00c0ffee0123abcd..journal",
            "vm-a.boot-00c0ffee0123abcd...journal",
            "vm-a.boot-00C0FFEE0123ABCD.web.journal",
            "vm-.boot-00c0ffee0123abcd.web.journal",
            "vm-a_b.boot-00c0ffee0123abcd.web.journal",
            "vm-a.boot-00c0ffee0123abcd.web.journal.tmp",
            "vm-a.00c0ffee0123abcd.web.journal",
        ] {
            assert_eq!(JournalKey::from_file_name(not_one), None, "{not_one}");
        }
        assert!(boot_key(UUID, "00c0ffee0123abcd", "w").outlives_its_domain());
        assert!(!JournalKey::Domain {
            domid: 1,
            handle: None
        }
        .outlives_its_domain());
    }

    /// A key whose handle the daemon's checks would have refused names no file.
    #[test]
    fn a_key_that_names_no_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path(), Keeping::default());
        let bad = JournalKey::Boot {
            handle: "../x".into(),
            boot: BootId::parse(b"0000000000000001").unwrap(),
            name: GuestName::new("web").unwrap(),
        };
        assert!(state.open(&bad).is_err());
        assert!(state.forget(&bad, SystemTime::now()).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    fn with_an_entry(state: &StateDir, key: &JournalKey, id: u64) {
        let j = state.open(key).unwrap().unwrap();
        j.begin(id).unwrap();
        j.finish(id, Op::DirCreate, &Ok(ReplyBody::DirCreate))
            .unwrap();
    }

    /// The same boot of the same VM, gone and back under another domid, finds its
    /// journal; a domain's journal without a boot goes with the domain.
    #[test]
    fn a_boots_journal_outlives_its_domain_and_a_domains_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path(), Keeping::default());
        let boot = boot_key(UUID, "00c0ffee0123abcd", "web");
        let domain = JournalKey::Domain {
            domid: 5,
            handle: Some(UUID.into()),
        };
        with_an_entry(&state, &boot, 7);
        with_an_entry(&state, &domain, 8);
        // Whole seconds: any file system keeps those.
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert!(state.forget(&boot, now).unwrap(), "kept");
        assert!(!state.forget(&domain, now).unwrap());
        assert!(!state.path(&domain).unwrap().exists());
        let nobody = |_: &JournalKey| false;
        let pruned = state.prune(&nobody, now).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                kept: 1,
                ..Pruned::default()
            }
        );
        // Its age counts from when the domain went.
        let went = fs::metadata(state.path(&boot).unwrap())
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(went, now);
        let again = state.open(&boot).unwrap().unwrap();
        assert_eq!(again.lookup(7), Lookup::Done(Ok(ReplyBody::DirCreate)));
    }

    /// Kept journals are bounded: empty ones go at once, old ones after `longest`, and
    /// beyond `most` the ones whose domains went longest ago; live and held ones stay.
    #[test]
    fn kept_journals_are_bounded_in_number_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let keeping = Keeping {
            most: 3,
            longest: Duration::from_secs(24 * 3600),
        };
        let state = StateDir::new(dir.path(), keeping);
        let t0 = SystemTime::now();
        let hour = Duration::from_secs(3600);
        // Six gone domains, gone 30, 20, 10, 5, 3 and 1 h ago.
        let ages = [30, 20, 10, 5, 3, 1];
        let gone: Vec<JournalKey> = (0..ages.len())
            .map(|i| boot_key(UUID, &format!("{i:016x}"), "web"))
            .collect();
        for (key, hours) in gone.iter().zip(ages) {
            with_an_entry(&state, key, 1);
            state.forget(key, t0 - hour * hours).unwrap();
        }
        // One that answers for nothing, one of a live domain (gone long ago by its
        // time: it is not gone), one held by jobs still running, one of a domain
        // without a boot id, and another file.
        let empty = boot_key(UUID, "00000000000000ee", "web");
        drop(state.open(&empty).unwrap().unwrap());
        assert!(
            !state.forget(&empty, t0).unwrap(),
            "kept, answering for nothing"
        );
        assert!(!state.path(&empty).unwrap().exists());
        let live = boot_key(UUID, "00000000000000aa", "web");
        with_an_entry(&state, &live, 1);
        state.forget(&live, t0 - hour * 100).unwrap();
        let held_key = boot_key(UUID, "00000000000000bb", "web");
        let held = state.open(&held_key).unwrap().unwrap();
        let domain = JournalKey::Domain {
            domid: 9,
            handle: Some(UUID.into()),
        };
        with_an_entry(&state, &domain, 1);
        fs::write(dir.path().join("unrelated"), b"kept").unwrap();

        let is_live = |k: &JournalKey| *k == live;
        let pruned = state.prune(&is_live, t0).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                empty: 0,
                aged: 1,
                over_cap: 2,
                kept: 3
            }
        );
        let exists = |k: &JournalKey| state.path(k).unwrap().exists();
        let left: Vec<bool> = gone.iter().map(exists).collect();
        assert_eq!(left, [false, false, false, true, true, true]);
        assert!(!exists(&empty));
        assert!(exists(&live) && exists(&held_key) && exists(&domain));
        assert!(dir.path().join("unrelated").exists());
        // Once its jobs let go, the held one answers for nothing: removed too.
        drop(held);
        let pruned = state.prune(&is_live, t0).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                empty: 1,
                kept: 3,
                ..Pruned::default()
            }
        );
        // A week later only the live one is left of them.
        let pruned = state.prune(&is_live, t0 + hour * 24 * 7).unwrap();
        assert_eq!(pruned.aged, 3);
        assert!(gone.iter().all(|k| !exists(k)));
        assert!(exists(&live));
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
