//! `shadowdaemon serve`: finds the guests through xenstore, attaches to each one's RPC
//! vchan, serves it on a thread of its own, and lets go when the guest goes.
//!
//! # Finding guests
//!
//! A watch thread of its own (its own xenstore connection) watches `@introduceDomain`
//! and `@releaseDomain` (the set of domains changed) and, per domain, that domain's RPC
//! node `data/vchan/0/rpc` (where it publishes `ring-ref` and `event-channel`), adding
//! and removing those watches as domains come and go. It records what changed
//! ([`Dirty`], coalesced) and wakes the main thread, which then:
//!
//! * when the set of domains changed, lists them and forgets the ones that are gone;
//! * scans each domain whose own watch fired, and only those: a guest that rewrites
//!   its keys in a loop costs one read of its own offer per firing, and nothing for
//!   the others (before, every write under `/local/domain` rescanned every domain);
//! * every [`RESCAN_EVERY`] (by the clock, events or not), joins connections that
//!   ended on their own and retries the domains that wait (an attach the rate limit
//!   put off, a journal still busy, a name in use).
//!
//! Attach attempts are rate-limited per domain ([`ATTACH_BURST`], then one per
//! [`ATTACH_REFILL`]; an offer put off is tried at a later tick, the latest one wins),
//! and so are the warnings about a domain ([`WARN_BURST`], then one per
//! [`WARN_REFILL`]; the rest at debug level). Both are counted ([`DomainCounts`]) and
//! the counts logged when the domain goes.
//!
//! # One guest's life
//!
//! * An offer (ring-ref, port) not seen before for that domain is attached
//!   ([`crate::xen::connect`]) and served; one that was served or failed once is not
//!   tried again: it stays in xenstore after its connection ended, and only the guest
//!   offering anew (new keys) means it wants another connection.
//! * A guest that offers anew while connected (it saw us close) gets the old connection
//!   stopped first, and is attached anew only once that connection's jobs have
//!   finished (its journal is not opened twice: [`shadowdaemon::journal`]).
//! * A domain that is gone, or no longer introduced to xenstored (it is dying), has its
//!   connection stopped and joined at once: dropping the connection unmaps the guest's
//!   pages and closes the port, so the dead domain does not linger as a zombie held by
//!   our mappings. Its journal is kept if keyed by its boot (a restore of it will
//!   look for it), within bounds ([`shadowdaemon::journal::StateDir::prune`], run
//!   each time domains go and at start-up); else deleted.
//!
//! # Who a domain is
//!
//! A domain is served under its xenstore `name`, which names its folder. Its journal
//! is kept under its VM handle (the UUID in `/local/domain/<id>/vm`, `/vm/<uuid>`), the
//! boot id its kernel publishes beside the channel's keys (`boot-id`, 16 lowercase hex
//! digits drawn once per boot) and its name, not under its domid: a restored or
//! migrated domain (same VM, same boot, new domid) finds the journal of the domain it
//! was and is answered from it; a reboot (new boot id) or a reused domid (another
//! handle) starts empty, never inheriting answers meant for another run. A guest that
//! publishes no boot id (older kernels) has its journal under its domid and handle, as
//! before, and loses it when the domain goes. A malformed boot id is refused.
//! (See [`shadowdaemon::journal`], *Whose journal*.) `name` and `vm` must be owned by
//! dom0 and not writable by the guest ([`identify`]): a guest that could write its own
//! `name` could choose whose folder it gets; the boot id is the guest's and may be
//! anything: it only tells apart boots of its own VM. A name another live domain is
//! served under is refused (two domains named `web` would share one folder and one
//! budget). A restored or migrated domain whose old self (the same VM handle) is
//! still served under the name waits, untold, and is attached once the old one is
//! gone (a live migration keeps both domains until its end: a guest told "refused"
//! then would fail the requests it sent again); and a journal still held by an earlier connection's jobs is opened
//! only once they finished, so the restored domain's requests sent again are answered
//! from a journal that has all the old jobs' results. Each refusal is logged once per
//! domain and reason.
//!
//! A refused guest is told, so that its RPCs fail at once instead of waiting for
//! answers that never come: the daemon writes the refusal's code ([`Refusal::code`])
//! to the guest's [`REFUSED_NODE`], owned by dom0 and readable by the guest, once per
//! reason, and removes it when it attaches to the guest after all (a name in use
//! that became free). A daemon limited by `--guest` speaks only for the names it
//! serves: another daemon may serve the others.
//!
//! Every log line names the guest and its domid.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use shadowdaemon::confine::{GuestName, NameError, Share};
use shadowdaemon::journal::{is_vm_handle, BootId, Journal, JournalKey, Keeping, StateDir};
use shadowdaemon::lock::StateLock;
use shadowdaemon::pool::{Pool, PoolConfig};
use shadowdaemon::quota::{Budget, Override};
use shadowdaemon::serve::{Ended, Handler, Limits};

use crate::xen::connect::{connect, Offer};
use crate::xen::gntdev::{Gntdev, GntdevError};
use crate::xen::xenstore::{parse_u32_decimal, Transport, Xenstore, XsError};

/// How often the main thread retries the domains that wait, and the longest it sleeps.
pub const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// Where each guest's RPC vchan is published, under its home.
pub const RPC_NODE: &str = "data/vchan/0/rpc";
/// Where a guest the daemon will not serve is told why ([`Refusal::code`]), under its
/// home. Beside [`RPC_NODE`], not below it: writing it does not fire the daemon's own
/// watch on the guest's offer.
pub const REFUSED_NODE: &str = "data/vchan/0/rpc-refused";

/// What `serve` was told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Folder under which each guest gets its own folder.
    pub root: PathBuf,
    /// Folder of the journals (one per guest).
    pub state_dir: PathBuf,
    /// Serve only these guests (names); all if empty.
    pub guests: Vec<String>,
    /// Worker threads of the pool.
    pub workers: usize,
    /// Each guest's storage budget, unless `quotas` names it.
    pub budget: Budget,
    /// Guests with budgets of their own (bytes and entries; the file-size cap is
    /// `budget`'s).
    pub quotas: Vec<Override>,
    /// The gntdev and evtchn devices.
    pub gntdev: PathBuf,
    /// See above.
    pub evtchn: PathBuf,
    /// Tests only: hold every reply back this long.
    pub reply_delay: Duration,
}

/// A domain's connection, on a thread of its own.
struct Served {
    identity: Identity,
    /// Stops the connection (it then ends its thread).
    stop: Box<dyn Fn() + Send>,
    thread: JoinHandle<Ended>,
}

/// Who a domain is, once [`identify`] trusts what xenstore says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Its name: its folder.
    pub name: GuestName,
    /// Its VM handle (the UUID of `/vm/<uuid>`).
    pub handle: String,
    /// The boot id its kernel published, if it did.
    pub boot: Option<BootId>,
}

impl Identity {
    /// The journal of this guest as domain `domid` (see the module documentation).
    pub fn journal_key(&self, domid: u16) -> JournalKey {
        match self.boot {
            Some(boot) => JournalKey::Boot {
                handle: self.handle.clone(),
                boot,
                name: self.name.clone(),
            },
            None => JournalKey::Domain {
                domid,
                handle: Some(self.handle.clone()),
            },
        }
    }
}

/// Where a guest publishes its boot id, beside its channel's keys.
pub const BOOT_ID_NODE: &str = "boot-id";

/// Why a domain is not served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A node the daemon needs is missing (`name` or `vm`).
    Missing(&'static str),
    /// The node is not owned by dom0.
    NotDom0s {
        /// Which node.
        node: &'static str,
        /// Its owner, as xenstore says.
        owner: Option<u32>,
    },
    /// The guest may write the node.
    GuestWritable(&'static str),
    /// The name cannot name a folder.
    BadName(NameError),
    /// `vm` is not `/vm/<handle>` with a handle of `[0-9A-Za-z-]`.
    BadHandle,
    /// The guest's `boot-id` is not 16 lowercase hex digits.
    BadBootId,
    /// Another live domain is served under this name.
    NameInUse {
        /// The name.
        name: GuestName,
        /// The domain served under it.
        by: u16,
    },
    /// The domain it was (the same VM, another domid) is still served under its name:
    /// a restore, or a live migration whose old domain is not gone yet. Not told to
    /// the guest (its requests wait for answers, they must not fail): it is attached
    /// once the old one goes, and answered from the journal they share.
    ItsOldSelfServed {
        /// The name.
        name: GuestName,
        /// The old domain, served under it.
        by: u16,
    },
}

impl Refusal {
    /// The word the guest is told (it prints it and trusts nothing else of it; the
    /// daemon's log says the rest).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Missing(_) => "no-identity",
            Refusal::NotDom0s { .. } | Refusal::GuestWritable(_) => "untrusted-identity",
            Refusal::BadName(_) => "bad-name",
            Refusal::BadHandle => "bad-handle",
            Refusal::BadBootId => "bad-boot-id",
            Refusal::NameInUse { .. } | Refusal::ItsOldSelfServed { .. } => "name-in-use",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing(node) => write!(f, "it has no {node} node"),
            Refusal::NotDom0s { node, owner } => match owner {
                Some(o) => write!(f, "its {node} node is owned by domain {o}, not dom0"),
                None => write!(f, "its {node} node has no owner"),
            },
            Refusal::GuestWritable(node) => {
                write!(f, "its {node} node is writable by the guest itself")
            }
            Refusal::BadName(e) => write!(f, "its name is unusable ({e})"),
            Refusal::BadHandle => f.write_str("its vm node is not /vm/<uuid>"),
            Refusal::BadBootId => write!(
                f,
                "its {RPC_NODE}/{BOOT_ID_NODE} is not {} lowercase hex digits",
                BootId::DIGITS
            ),
            Refusal::NameInUse { name, by } => {
                write!(f, "the name {name} is already served for domid {by}")
            }
            Refusal::ItsOldSelfServed { name, by } => write!(
                f,
                "yet: the domain it was (domid {by}, the same VM) is still served as {name}; \
                 attaching once it is gone (a restore or a live migration)"
            ),
        }
    }
}

/// The value of `/local/domain/<domid>/<node>`, if dom0 owns it and the guest cannot
/// write it.
pub(crate) fn trusted_node<T: Read + Write>(
    xs: &mut Xenstore<T>,
    domid: u16,
    node: &'static str,
) -> Result<Result<Vec<u8>, Refusal>, XsError> {
    let path = format!("/local/domain/{domid}/{node}");
    let Some(perms) = xs.get_perms(&path)? else {
        return Ok(Err(Refusal::Missing(node)));
    };
    if perms.owner() != Some(0) {
        return Ok(Err(Refusal::NotDom0s {
            node,
            owner: perms.owner(),
        }));
    }
    if perms.writable_by(u32::from(domid)) {
        return Ok(Err(Refusal::GuestWritable(node)));
    }
    // Only the owner (dom0) may change the permissions, so they still hold.
    Ok(xs.read(&path)?.ok_or(Refusal::Missing(node)))
}

/// The handle in a `vm` value, `/vm/<handle>`, if it is safe in a file name.
pub fn parse_handle(vm: &[u8]) -> Option<String> {
    let handle = vm.strip_prefix(b"/vm/")?;
    // Only ASCII passes.
    is_vm_handle(handle).then(|| String::from_utf8_lossy(handle).into_owned())
}

/// The boot id domain `domid` publishes: `Ok(None)` if none (older kernels), a refusal
/// if malformed. The guest writes it, so it is not trusted for anything but telling its
/// own VM's boots apart.
fn boot_id_of<T: Read + Write>(
    xs: &mut Xenstore<T>,
    domid: u16,
) -> Result<Result<Option<BootId>, Refusal>, XsError> {
    let path = format!("{}/{BOOT_ID_NODE}", rpc_node(domid));
    Ok(match xs.read(&path)? {
        None => Ok(None),
        Some(text) => BootId::parse(&text).map(Some).ok_or(Refusal::BadBootId),
    })
}

/// Reads and checks who domain `domid` is (see the module documentation).
/// `served_as(name)` is the domid served under `name` now and its VM handle, if any.
pub fn identify<T: Read + Write>(
    xs: &mut Xenstore<T>,
    domid: u16,
    served_as: impl Fn(&GuestName) -> Option<(u16, String)>,
) -> Result<Result<Identity, Refusal>, XsError> {
    let raw = match trusted_node(xs, domid, "name")? {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    let name = match GuestName::from_bytes(&raw) {
        Ok(n) => n,
        Err(e) => return Ok(Err(Refusal::BadName(e))),
    };
    let vm = match trusted_node(xs, domid, "vm")? {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    let Some(handle) = parse_handle(&vm) else {
        return Ok(Err(Refusal::BadHandle));
    };
    let boot = match boot_id_of(xs, domid)? {
        Ok(b) => b,
        Err(r) => return Ok(Err(r)),
    };
    if let Some((by, holder)) = served_as(&name).filter(|(d, _)| *d != domid) {
        return Ok(Err(if holder == handle {
            Refusal::ItsOldSelfServed { name, by }
        } else {
            Refusal::NameInUse { name, by }
        }));
    }
    Ok(Ok(Identity { name, handle, boot }))
}

/// The domains xenstore lists (dom0 excluded); `None` if it lists none at all (no
/// `/local/domain`: not a dom0 worth trusting for clean-ups).
pub(crate) fn list_domains<T: Read + Write>(
    xs: &mut Xenstore<T>,
) -> Result<Option<Vec<u16>>, XsError> {
    Ok(xs.directory("/local/domain")?.map(|names| {
        names
            .iter()
            .filter_map(|n| n.parse::<u16>().ok())
            .filter(|&d| d != 0)
            .collect()
    }))
}

/// The handle domain `domid` has now, if readable.
fn handle_of<T: Read + Write>(xs: &mut Xenstore<T>, domid: u16) -> Result<Option<String>, XsError> {
    Ok(xs
        .read(&format!("/local/domain/{domid}/vm"))?
        .and_then(|vm| parse_handle(&vm)))
}

/// At start-up (the daemon was down meanwhile): removes the journals keyed by domid of
/// domains that are gone or whose domid now belongs to another VM, and bounds those
/// kept for domains that went away ([`StateDir::prune`]), leaving alone those of any VM
/// that runs now (its domain, perhaps restored while the daemon was down, is about to
/// attach). Removes nothing unless xenstore answered every question: a xenstore that
/// fails at start-up must not cost the live guests their exactly-once.
pub fn forget_stale_journals<T: Read + Write>(
    xs: &mut Xenstore<T>,
    state: &StateDir,
    now: SystemTime,
) -> Result<usize, String> {
    let Some(domains) = list_domains(xs).map_err(|e| format!("xenstore: {e}"))? else {
        return Err("xenstore lists no /local/domain".into());
    };
    let mut handles = HashMap::new();
    for domid in domains {
        let handle = handle_of(xs, domid).map_err(|e| format!("xenstore: {e}"))?;
        handles.insert(domid, handle);
    }
    let mut removed = 0;
    let entries = fs::read_dir(state.dir()).map_err(|e| e.to_string())?;
    for entry in entries {
        let name = entry.map_err(|e| e.to_string())?.file_name();
        let key = name.to_str().and_then(JournalKey::from_file_name);
        let Some(JournalKey::Domain { domid, handle }) = key else {
            continue;
        };
        let current = handles.get(&domid);
        let why = match (current, handle) {
            (None, _) => "the domain is gone",
            (Some(now), Some(h)) if now.as_ref() == Some(&h) => continue,
            (Some(_), Some(_)) => "the domid belongs to another VM now",
            (Some(_), None) => "it is not keyed by a VM handle",
        };
        log::info!("journal {}: {why}; removing it", name.to_string_lossy());
        Journal::remove(&state.dir().join(&name)).map_err(|e| e.to_string())?;
        removed += 1;
    }
    let running: HashSet<&String> = handles.values().flatten().collect();
    let live =
        |k: &JournalKey| matches!(k, JournalKey::Boot { handle, .. } if running.contains(handle));
    let pruned = state.prune(&live, now).map_err(|e| e.to_string())?;
    Ok(removed + pruned.removed())
}

/// A device error with what usually causes it.
fn with_device_hint(message: String, kind: Option<std::io::ErrorKind>) -> String {
    match kind {
        Some(std::io::ErrorKind::NotFound) => format!(
            "{message} (not a Xen dom0, or the xen-gntdev / xen-evtchn modules are not \
             loaded: modprobe xen-gntdev xen-evtchn)"
        ),
        Some(std::io::ErrorKind::PermissionDenied) => {
            format!("{message} (the Xen devices need root)")
        }
        _ => message,
    }
}

/// A xenstore error at start-up, with what usually causes it.
fn xenstore_hint(e: XsError) -> String {
    match e {
        XsError::Unavailable(_) => format!(
            "xenstore: {e} (is xenstored running? On Debian it comes with the xen \
             init script of xen-utils; elsewhere with xenstored.service)"
        ),
        e => format!("xenstore: {e}"),
    }
}

/// Logs a refusal once per domain and reason; true if it was logged now.
fn note_refusal(logged: &mut HashMap<u16, Refusal>, domid: u16, refusal: &Refusal) -> bool {
    if logged.get(&domid) == Some(refusal) {
        return false;
    }
    if let Refusal::ItsOldSelfServed { .. } = refusal {
        // The toolstack's ordinary course, not a fault of anyone's.
        log::info!("domid {domid}: not served {refusal}");
    } else {
        log::warn!("domid {domid}: not served: {refusal}");
    }
    logged.insert(domid, refusal.clone());
    true
}

/// Attach attempts per guest: a burst of this many, then one per [`ATTACH_REFILL`].
pub const ATTACH_BURST: u32 = 4;
/// See [`ATTACH_BURST`].
pub const ATTACH_REFILL: Duration = Duration::from_secs(2);
/// Warnings per guest: a burst of this many, then one per [`WARN_REFILL`]; the rest at
/// debug level, counted.
pub const WARN_BURST: u32 = 8;
/// See [`WARN_BURST`].
pub const WARN_REFILL: Duration = Duration::from_secs(60);

/// A token bucket on a clock the caller gives (the daemon's `Instant::now`, a test's
/// virtual instants): at most `burst` at once, one more per `refill`.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: u32,
    burst: u32,
    refill: Duration,
    /// When the last token was earned (or the bucket was last full).
    since: Instant,
}

impl Bucket {
    fn new(burst: u32, refill: Duration, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            burst,
            refill,
            since: now,
        }
    }

    /// Takes a token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        let refill = self.refill.as_nanos().max(1);
        let earned = now.saturating_duration_since(self.since).as_nanos() / refill;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            self.since = if self.tokens == self.burst {
                now
            } else {
                self.since + self.refill * earned
            };
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// What the daemon did for one domain, counted (its log says the same when it goes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainCounts {
    /// Times its offer was read and compared (one per watch firing, coalesced).
    pub scans: u64,
    /// Attach attempts made.
    pub attempts: u64,
    /// Attach attempts the rate limit put off (the latest offer is tried later).
    pub suppressed: u64,
    /// Warnings logged about it.
    pub warned: u64,
    /// Warnings the rate limit sent to debug level.
    pub unwarned: u64,
}

impl fmt::Display for DomainCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} scans, {} attach attempts ({} put off by the rate limit), {} warnings \
             ({} more at debug level)",
            self.scans, self.attempts, self.suppressed, self.warned, self.unwarned
        )
    }
}

/// One domain's rate limits and counts.
struct Limiter {
    attach: Bucket,
    warn: Bucket,
    /// An attach was put off: retry at a tick.
    deferred: bool,
    counts: DomainCounts,
}

impl Limiter {
    fn new(now: Instant) -> Limiter {
        Limiter {
            attach: Bucket::new(ATTACH_BURST, ATTACH_REFILL, now),
            warn: Bucket::new(WARN_BURST, WARN_REFILL, now),
            deferred: false,
            counts: DomainCounts::default(),
        }
    }
}

/// What the watch thread found changed since the main thread last looked: coalesced,
/// so a guest writing its keys in a loop costs one scan of its own domain per turn.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    /// A domain came or went (`@introduceDomain`, `@releaseDomain`), or events were
    /// lost: check which domains are gone.
    pub domains_changed: bool,
    /// Domains whose RPC node changed (their own watch fired).
    pub domains: BTreeSet<u16>,
}

/// The watch token of domain `domid`'s RPC node.
fn domain_token(domid: u16) -> String {
    format!("dom{domid}")
}

/// The path of domain `domid`'s RPC node.
fn rpc_node(domid: u16) -> String {
    format!("/local/domain/{domid}/{RPC_NODE}")
}

/// The path of domain `domid`'s refusal node.
fn refused_node(domid: u16) -> String {
    format!("/local/domain/{domid}/{REFUSED_NODE}")
}

/// What one watch event means.
fn note_event(dirty: &mut Dirty, token: &str) {
    match token
        .strip_prefix("dom")
        .and_then(|d| d.parse::<u16>().ok())
    {
        Some(domid) => {
            dirty.domains.insert(domid);
        }
        None => dirty.domains_changed = true,
    }
}

/// The watch thread's work: watches `@introduceDomain` and `@releaseDomain`, and each
/// domain's own RPC node (added and removed as domains come and go), and records what
/// changed in `dirty`, waking the main thread through `wake`. Returns when xenstore fails.
fn watch_domains<T: Read + Write>(
    mut watcher: Xenstore<T>,
    dirty: &Mutex<Dirty>,
    wake: &dyn Fn(),
) -> XsError {
    let mut watched: BTreeSet<u16> = BTreeSet::new();
    let mut dropped = 0;
    let mut step = || -> Result<(), XsError> {
        let event = watcher.next_watch_event()?;
        let mut changed = Dirty::default();
        note_event(&mut changed, &event.token);
        if changed.domains_changed {
            let now: BTreeSet<u16> = list_domains(&mut watcher)?
                .unwrap_or_default()
                .into_iter()
                .collect();
            for &domid in now.difference(&watched) {
                // xenstored fires a new watch once: that first event scans the domain.
                watcher.watch(&rpc_node(domid), &domain_token(domid))?;
            }
            for &domid in watched.difference(&now) {
                match watcher.unwatch(&rpc_node(domid), &domain_token(domid)) {
                    Ok(()) | Err(XsError::Remote(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            watched = now;
        }
        if watcher.dropped_events() != dropped {
            // Some domain's event may be among them: look at every domain once.
            dropped = watcher.dropped_events();
            changed.domains_changed = true;
            changed.domains.extend(watched.iter().copied());
        }
        {
            let mut d = dirty.lock().unwrap_or_else(PoisonError::into_inner);
            d.domains_changed |= changed.domains_changed;
            d.domains.append(&mut changed.domains);
        }
        wake();
        Ok(())
    };
    loop {
        if let Err(e) = step() {
            return e;
        }
    }
}

/// What attaching to one domain's offer came to (see [`Attacher`]).
enum Attached {
    /// Served on a thread of its own.
    Served(Served),
    /// Its old connection's jobs still hold its journal: try again later.
    Busy,
    /// Not served, and why (a warning, within the domain's budget).
    Failed(String),
    /// Not served, already said (e.g. not in `--guest`).
    Skipped,
}

/// Attaches to a domain's offer once [`Discovery`] has decided to: the Xen devices in
/// the daemon, a fake in tests.
trait Attacher {
    /// Attaches `domid` (who is `identity`) to `offer`.
    fn attach(&mut self, domid: u16, offer: Offer, identity: &Identity) -> Attached;
    /// Domain `domid`, who was `identity`, is gone: its journal goes, or is kept for a
    /// restore if keyed by its boot ([`StateDir::forget`]); whether it is kept.
    fn forget(&mut self, domid: u16, identity: &Identity) -> std::io::Result<bool>;
    /// Bounds the journals kept for domains that went away ([`StateDir::prune`]);
    /// `live` holds the journals of the domains known now.
    fn prune(&mut self, live: &HashSet<JournalKey>) -> std::io::Result<()>;
    /// Whether a guest named `name` is served here (`--guest` may limit it).
    fn serves(&self, _name: &GuestName) -> bool {
        true
    }
    /// Whether every guest is served here (no `--guest`).
    fn serves_every_guest(&self) -> bool {
        true
    }
}

/// Which domains are served, decided from xenstore: per-domain scans on each domain's
/// own watch, a check of which domains are gone when the set of domains changes, and
/// attach attempts and warnings rate-limited per domain.
struct Discovery<T, A> {
    xs: Xenstore<T>,
    attacher: A,
    served: HashMap<u16, Served>,
    /// The last offer tried per domain (served or failed): not tried again.
    tried: HashMap<u16, Offer>,
    /// Who each domain tried is: its handle tells a reused domid from the domain, and
    /// its journal is kept or forgotten when it goes.
    identities: HashMap<u16, Identity>,
    /// The last refusal logged per domain.
    refused: HashMap<u16, Refusal>,
    /// Domains waiting for their old connection's jobs before they are attached anew.
    waiting: HashSet<u16>,
    /// Each domain's rate limits and counts.
    limits: HashMap<u16, Limiter>,
    /// Checks of which domains are gone (each lists every domain).
    domain_checks: u64,
}

impl<T: Read + Write, A: Attacher> Discovery<T, A> {
    fn new(xs: Xenstore<T>, attacher: A) -> Self {
        Discovery {
            xs,
            attacher,
            served: HashMap::new(),
            tried: HashMap::new(),
            identities: HashMap::new(),
            refused: HashMap::new(),
            waiting: HashSet::new(),
            limits: HashMap::new(),
            domain_checks: 0,
        }
    }

    fn limiter(&mut self, domid: u16, now: Instant) -> &mut Limiter {
        self.limits
            .entry(domid)
            .or_insert_with(|| Limiter::new(now))
    }

    /// The counts of domain `domid` so far.
    #[cfg(test)]
    fn counts(&self, domid: u16) -> DomainCounts {
        self.limits
            .get(&domid)
            .map(|l| l.counts)
            .unwrap_or_default()
    }

    /// A warning about domain `domid`, within its budget; debug level past it.
    fn warn(&mut self, domid: u16, now: Instant, message: &str) {
        let l = self.limiter(domid, now);
        if l.warn.take(now) {
            l.counts.warned += 1;
            let later = l.counts.unwarned;
            if later > 0 {
                log::warn!(
                    "{message} ({later} warnings about domid {domid} at debug level so far)"
                );
            } else {
                log::warn!("{message}");
            }
        } else {
            l.counts.unwarned += 1;
            log::debug!("{message}");
        }
    }

    /// One turn: joins connections that ended, checks which domains are gone if the set
    /// changed, scans each domain whose own watch fired, and on a `tick` retries the
    /// domains that wait (a rate-limited attach, a busy journal, a name in use).
    fn turn(&mut self, dirty: Dirty, tick: bool, now: Instant) -> Result<(), XsError> {
        let finished: Vec<u16> = self
            .served
            .iter()
            .filter(|(_, s)| s.thread.is_finished())
            .map(|(&d, _)| d)
            .collect();
        for domid in finished {
            self.join(domid);
        }
        if dirty.domains_changed {
            self.forget_gone(now)?;
        }
        let mut scan = dirty.domains;
        if tick {
            // A name in use is the toolstack's doing, not the guest's, and costs only
            // reading who it is: retried at each tick outside the attach budget.
            let name_in_use: Vec<u16> = self
                .refused
                .iter()
                .filter(|(_, r)| {
                    matches!(
                        r,
                        Refusal::NameInUse { .. } | Refusal::ItsOldSelfServed { .. }
                    )
                })
                .map(|(&d, _)| d)
                .collect();
            for domid in name_in_use {
                if !scan.contains(&domid) {
                    self.scan(domid, now, false)?;
                }
            }
            scan.extend(self.waiting.iter().copied());
            scan.extend(
                self.limits
                    .iter()
                    .filter(|(_, l)| l.deferred)
                    .map(|(&d, _)| d),
            );
        }
        for domid in scan {
            self.scan(domid, now, true)?;
        }
        Ok(())
    }

    /// Stops and forgets the domains that are gone, no longer introduced (dying), or
    /// whose domid now belongs to another VM.
    fn forget_gone(&mut self, now: Instant) -> Result<(), XsError> {
        self.domain_checks += 1;
        let domains = list_domains(&mut self.xs)?.unwrap_or_default();
        let mut gone = Vec::new();
        // Each domain once, however many of the maps know it.
        let known: BTreeSet<u16> = self
            .served
            .keys()
            .chain(self.tried.keys())
            .chain(self.refused.keys())
            .chain(self.waiting.iter())
            .chain(self.limits.keys())
            .copied()
            .collect();
        for domid in known {
            let reused = match self.identities.get(&domid) {
                Some(i) => handle_of(&mut self.xs, domid)?.as_ref() != Some(&i.handle),
                None => false,
            };
            if reused || !domains.contains(&domid) || !self.xs.is_domain_introduced(domid)? {
                gone.push(domid);
            }
        }
        let any_gone = !gone.is_empty();
        for domid in gone {
            if let Some(s) = self.served.get(&domid) {
                log::info!("guest {} (domid {domid}): domain gone", s.identity.name);
                (s.stop)();
                self.join(domid);
            }
            self.tried.remove(&domid);
            self.refused.remove(&domid);
            self.waiting.remove(&domid);
            if let Some(l) = self.limits.remove(&domid) {
                log::info!("domid {domid}: gone; {}", l.counts);
            }
            if let Some(identity) = self.identities.remove(&domid) {
                match self.attacher.forget(domid, &identity) {
                    Ok(true) => log::info!(
                        "guest {} (domid {domid}): journal {} kept for a restore",
                        identity.name,
                        identity.journal_key(domid).file_name()
                    ),
                    Ok(false) => {}
                    Err(e) => self.warn(
                        domid,
                        now,
                        &format!("domid {domid}: forgetting its journal: {e}"),
                    ),
                }
            }
        }
        if any_gone {
            let live: HashSet<JournalKey> = self
                .identities
                .iter()
                .map(|(&domid, i)| i.journal_key(domid))
                .collect();
            if let Err(e) = self.attacher.prune(&live) {
                log::warn!("journals of domains gone: cannot list them: {e}");
            }
        }
        Ok(())
    }

    fn read_u32(&mut self, path: &str) -> Result<Option<u32>, XsError> {
        Ok(self.xs.read(path)?.and_then(|v| parse_u32_decimal(&v)))
    }

    /// What domain `domid` offers, if a complete, well-formed offer.
    fn offer_of(&mut self, domid: u16) -> Result<Option<Offer>, XsError> {
        let node = rpc_node(domid);
        let ring_ref = self.read_u32(&format!("{node}/ring-ref"))?;
        let port = self.read_u32(&format!("{node}/event-channel"))?;
        Ok(ring_ref
            .zip(port)
            .map(|(ring_ref, port)| Offer { ring_ref, port }))
    }

    /// Reads domain `domid`'s offer and attaches to it if it is new, within the
    /// domain's attach budget if `limited` (else it is tried at a later tick).
    fn scan(&mut self, domid: u16, now: Instant, limited: bool) -> Result<(), XsError> {
        self.limiter(domid, now).counts.scans += 1;
        let Some(offer) = self.offer_of(domid)? else {
            return Ok(());
        };
        if self.tried.get(&domid) == Some(&offer) {
            self.limiter(domid, now).deferred = false;
            return Ok(());
        }
        let l = self.limiter(domid, now);
        if limited && !l.attach.take(now) {
            l.counts.suppressed += 1;
            let first = !l.deferred;
            l.deferred = true;
            if first {
                self.warn(
                    domid,
                    now,
                    &format!(
                        "domid {domid}: offers its channel again and again; attach \
                         attempts rate-limited ({ATTACH_BURST}, then one per \
                         {ATTACH_REFILL:?}): the latest offer is tried then"
                    ),
                );
            }
            return Ok(());
        }
        l.deferred = false;
        l.counts.attempts += 1;
        if let Some(s) = self.served.get(&domid) {
            log::info!(
                "guest {} (domid {domid}): offers the channel anew ({offer}); \
                 ending the old connection",
                s.identity.name
            );
            (s.stop)();
            self.join(domid);
        }
        self.tried.insert(domid, offer);
        self.attach(domid, offer, now)
    }

    fn join(&mut self, domid: u16) {
        if let Some(s) = self.served.remove(&domid) {
            match s.thread.join() {
                Ok(ended) => {
                    log::debug!("guest {} (domid {domid}): ended: {ended}", s.identity.name)
                }
                Err(_) => log::error!(
                    "guest {} (domid {domid}): its thread panicked",
                    s.identity.name
                ),
            }
        }
    }

    fn attach(&mut self, domid: u16, offer: Offer, now: Instant) -> Result<(), XsError> {
        let served = &self.served;
        let served_as = |name: &GuestName| {
            served
                .iter()
                .find(|(_, s)| s.identity.name == *name)
                .map(|(&d, s)| (d, s.identity.handle.clone()))
        };
        let identity = match identify(&mut self.xs, domid, served_as)? {
            Ok(i) => i,
            Err(refusal) => {
                if matches!(
                    refusal,
                    Refusal::NameInUse { .. } | Refusal::ItsOldSelfServed { .. }
                ) {
                    // Tried again at each tick: served once the other one is gone.
                    self.tried.remove(&domid);
                }
                if note_refusal(&mut self.refused, domid, &refusal) && self.speaks_for(&refusal) {
                    self.tell_refused(domid, &refusal, now)?;
                }
                return Ok(());
            }
        };
        self.refused.remove(&domid);
        if self.attacher.serves(&identity.name) {
            // A refusal told before (by this daemon or an earlier one) is withdrawn
            // first, so that what the guest sends from now on waits for answers.
            if let Err(e) = self.xs.rm(&refused_node(domid)) {
                match e {
                    XsError::Remote(_) => self.warn(
                        domid,
                        now,
                        &format!("domid {domid}: cannot withdraw its refusal node: {e}"),
                    ),
                    e => return Err(e),
                }
            }
        }
        self.identities.insert(domid, identity.clone());
        match self.attacher.attach(domid, offer, &identity) {
            Attached::Served(s) => {
                self.waiting.remove(&domid);
                self.served.insert(domid, s);
            }
            Attached::Busy => {
                if self.waiting.insert(domid) {
                    log::info!(
                        "guest {} (domid {domid}): its old connection's jobs are still \
                         running; attaching once they have finished",
                        identity.name
                    );
                }
                self.tried.remove(&domid);
            }
            Attached::Failed(why) => self.warn(
                domid,
                now,
                &format!("guest {} (domid {domid}): {why}", identity.name),
            ),
            Attached::Skipped => {}
        }
        Ok(())
    }

    /// Whether this daemon tells the guest of `refusal`: one serving every guest does;
    /// one limited by `--guest` only for a name it serves.
    fn speaks_for(&self, refusal: &Refusal) -> bool {
        match refusal {
            Refusal::NameInUse { name, .. } => self.attacher.serves(name),
            Refusal::ItsOldSelfServed { .. } => false,
            _ => self.attacher.serves_every_guest(),
        }
    }

    /// Writes the refusal's code to the guest's [`REFUSED_NODE`], dom0's and readable by
    /// the guest alone (besides dom0), where its RPC client watches.
    fn tell_refused(&mut self, domid: u16, refusal: &Refusal, now: Instant) -> Result<(), XsError> {
        let path = refused_node(domid);
        let reader = format!("r{domid}");
        let told = self
            .xs
            .write(&path, refusal.code().as_bytes())
            .and_then(|()| self.xs.set_perms(&path, &["n0", &reader]));
        match told {
            Ok(()) => {
                log::info!(
                    "domid {domid}: told it is not served ({}) at {path}",
                    refusal.code()
                );
                Ok(())
            }
            Err(e @ XsError::Remote(_)) => {
                self.warn(
                    domid,
                    now,
                    &format!("domid {domid}: cannot tell it is not served: {e}"),
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn stop_all(&mut self) {
        let domids: Vec<u16> = self.served.keys().copied().collect();
        for domid in domids {
            if let Some(s) = self.served.get(&domid) {
                (s.stop)();
            }
            self.join(domid);
        }
    }
}

/// The Xen side of attaching: folders, budgets, journals, gntdev and evtchn.
struct XenAttacher {
    /// The guests' journals, each opened once at a time, some kept after their domains.
    state: StateDir,
    settings: Settings,
    share: Share,
    pool: Arc<Pool>,
    gntdev: Arc<Gntdev>,
    handler: Arc<dyn Handler>,
}

impl XenAttacher {
    /// The budget of guest `name`: its own if `--quota` names it, else the default.
    fn budget_of(&self, name: &GuestName) -> Budget {
        let default = self.settings.budget;
        self.settings
            .quotas
            .iter()
            .rev() // the last one given wins, as for any repeated option
            .find(|q| q.guest == name.as_str())
            .map_or(default, |q| Budget {
                bytes: q.bytes,
                entries: q.entries,
                ..default
            })
    }
}

impl Attacher for XenAttacher {
    fn attach(&mut self, domid: u16, offer: Offer, identity: &Identity) -> Attached {
        let name = identity.name.clone();
        let who = format!("guest {name} (domid {domid})");
        if !self.serves(&name) {
            log::info!("{who}: not in --guest; not served");
            return Attached::Skipped;
        }
        let budget = self.budget_of(&name);
        let root = match self.share.guest(&name) {
            Ok(r) => r,
            Err(e) => return Attached::Failed(format!("cannot open its folder: {e}")),
        };
        let root = match root.with_budget(budget) {
            Ok(r) => Arc::new(r),
            Err(e) => return Attached::Failed(format!("cannot count what its folder holds: {e}")),
        };
        let used = root.quota().usage();
        log::info!("{who}: budget {budget}; holds {used}");
        if used.bytes > budget.bytes || used.entries > budget.entries {
            log::warn!("{who}: already over its budget: its writes and creates get NoSpace");
        }
        let key = identity.journal_key(domid);
        let journal = match self.state.open(&key) {
            Ok(Ok(j)) => j,
            // Its old connection's jobs still hold the journal (it reconnected while
            // they ran): attach at a later tick, once they have finished.
            Ok(Err(_busy)) => return Attached::Busy,
            Err(e) => return Attached::Failed(format!("cannot open its journal: {e}")),
        };
        if !journal.is_empty() {
            log::info!(
                "{who}: {} requests in its journal from before ({})",
                journal.len(),
                key.file_name()
            );
        }
        let conn = match connect(
            &self.gntdev,
            &self.settings.evtchn,
            domid,
            offer,
            root,
            Arc::clone(&self.handler),
            Limits::default(),
        ) {
            Ok(c) => c
                .with_journal(journal)
                .with_reply_delay(self.settings.reply_delay),
            Err(e) => {
                return Attached::Failed(format!("cannot attach to its channel ({offer}): {e}"))
            }
        };
        log::info!("{who}: attached to its channel ({offer})");
        let stopper = conn.stopper();
        let pool = Arc::clone(&self.pool);
        let thread = thread::Builder::new()
            .name(format!("dom{domid}"))
            .spawn(move || conn.run(&pool));
        match thread {
            Ok(thread) => Attached::Served(Served {
                identity: identity.clone(),
                stop: Box::new(move || stopper.stop()),
                thread,
            }),
            Err(e) => Attached::Failed(format!("cannot start its thread: {e}")),
        }
    }

    fn forget(&mut self, domid: u16, identity: &Identity) -> std::io::Result<bool> {
        self.state
            .forget(&identity.journal_key(domid), SystemTime::now())
    }

    fn prune(&mut self, live: &HashSet<JournalKey>) -> std::io::Result<()> {
        let pruned = self
            .state
            .prune(&|k: &JournalKey| live.contains(k), SystemTime::now())?;
        log::debug!("journals of domains gone: {pruned:?}");
        Ok(())
    }

    fn serves(&self, name: &GuestName) -> bool {
        let guests = &self.settings.guests;
        guests.is_empty() || guests.iter().any(|g| g == name.as_str())
    }

    fn serves_every_guest(&self) -> bool {
        self.settings.guests.is_empty()
    }
}

struct Daemon {
    /// Held for the daemon's life (see [`shadowdaemon::lock`]).
    _lock: StateLock,
    discovery: Discovery<Transport, XenAttacher>,
    /// What the watch thread saw change.
    dirty: Arc<Mutex<Dirty>>,
    /// Wake-ups from the watch thread.
    watch: Receiver<Watch>,
}

enum Watch {
    Fired,
    Failed(XsError),
}

/// Runs the daemon until xenstore fails.
pub fn run(settings: Settings) -> ExitCode {
    match Daemon::start(settings) {
        Ok(daemon) => {
            // Only now: the lock is ours and the devices and xenstore are open.
            let s = &daemon.discovery.attacher.settings;
            log::info!(
                "shadowdaemon {} serving: root {}, journals in {}, guests {}, {} workers",
                env!("CARGO_PKG_VERSION"),
                s.root.display(),
                s.state_dir.display(),
                if s.guests.is_empty() {
                    "all".to_string()
                } else {
                    s.guests.join(",")
                },
                s.workers
            );
            crate::notify::notify("READY=1");
            daemon.serve()
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

impl Daemon {
    fn start(settings: Settings) -> Result<Daemon, String> {
        for dir in [&settings.root, &settings.state_dir] {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        // Before anything else: a second daemon must not touch the first one's journals.
        let lock = StateLock::acquire(&settings.state_dir).map_err(|e| e.to_string())?;
        let share = Share::open(&settings.root)
            .map_err(|e| format!("cannot open {}: {e}", settings.root.display()))?;
        // Refused now rather than at each guest's first write.
        share.check_writable().map_err(|e| {
            format!(
                "--root {} is not writable ({e}): guests' files could not be kept",
                settings.root.display()
            )
        })?;
        let pool = Pool::new(PoolConfig {
            workers: settings.workers.max(1),
            ..PoolConfig::default()
        })
        .map_err(|e| format!("cannot start the worker pool: {e}"))?;
        let gntdev = Gntdev::open(&settings.gntdev).map_err(|e| {
            let kind = match &e {
                GntdevError::Os { source, .. } => Some(source.kind()),
                _ => None,
            };
            with_device_hint(e.to_string(), kind)
        })?;
        // Each connection opens its own evtchn file; open one now so that a missing
        // device is said at start, not at the first guest.
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&settings.evtchn)
            .map_err(|e| {
                with_device_hint(
                    format!("open failed ({}): {e}", settings.evtchn.display()),
                    Some(e.kind()),
                )
            })?;
        let xs = Xenstore::open_default().map_err(xenstore_hint)?;
        let mut watcher = Xenstore::open_default().map_err(xenstore_hint)?;
        watcher
            .watch("@introduceDomain", "domains")
            .and_then(|()| watcher.watch("@releaseDomain", "domains"))
            .map_err(|e| format!("xenstore watch: {e}"))?;
        let dirty = Arc::new(Mutex::new(Dirty::default()));
        // Only "something changed" matters: one pending wake-up is enough; what
        // changed is in `dirty`.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let seen = Arc::clone(&dirty);
        thread::Builder::new()
            .name("xenstore-watch".into())
            .spawn(move || {
                let wake = || {
                    let _ = tx.try_send(Watch::Fired);
                };
                let e = watch_domains(watcher, &seen, &wake);
                let _ = tx.send(Watch::Failed(e));
            })
            .map_err(|e| format!("cannot start the watch thread: {e}"))?;
        let attacher = XenAttacher {
            state: StateDir::new(&settings.state_dir, Keeping::default()),
            settings,
            share,
            pool: Arc::new(pool),
            gntdev: Arc::new(gntdev),
            handler: Arc::new(shadowdaemon::service::handle),
        };
        Ok(Daemon {
            _lock: lock,
            discovery: Discovery::new(xs, attacher),
            dirty,
            watch: rx,
        })
    }

    /// Serves until xenstore fails; then stops every connection.
    fn serve(mut self) -> ExitCode {
        let d = &mut self.discovery;
        match forget_stale_journals(&mut d.xs, &d.attacher.state, SystemTime::now()) {
            Ok(n) => log::debug!("{n} stale journals removed"),
            Err(e) => log::warn!("journals kept as they are: cannot tell which are stale: {e}"),
        }
        let mut last_tick = Instant::now();
        let why = loop {
            let dirty =
                std::mem::take(&mut *self.dirty.lock().unwrap_or_else(PoisonError::into_inner));
            // By the clock, not by quiet: a guest firing its watch without pause must
            // not keep the others' retries from their turn.
            let now = Instant::now();
            let tick = now.duration_since(last_tick) >= RESCAN_EVERY;
            if tick {
                last_tick = now;
            }
            if let Err(e) = self.discovery.turn(dirty, tick, now) {
                break format!("xenstore: {e}");
            }
            match self.watch.recv_timeout(RESCAN_EVERY) {
                Ok(Watch::Fired) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Watch::Failed(e)) => break format!("xenstore watch: {e}"),
                Err(RecvTimeoutError::Disconnected) => break "the watch thread ended".into(),
            }
        };
        log::error!("{why}; stopping");
        crate::notify::notify("STOPPING=1");
        self.discovery.stop_all();
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::fakexs::{self, Store};
    use shadowdaemon::journal::{Lookup, KEPT_FOR};
    use std::path::Path;
    use std::sync::{Mutex, OnceLock};

    const UUID_A: &str = "0f8e2f5e-1c0d-4b1a-9d47-5a1c3b2e0001";
    const UUID_B: &str = "0f8e2f5e-1c0d-4b1a-9d47-5a1c3b2e0002";

    /// Every log line of this test binary.
    struct Capture(Mutex<Vec<String>>);

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", r.level(), r.args()));
        }
        fn flush(&self) {}
    }

    fn logged(words: &[&str]) -> Vec<String> {
        static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
        let c = CAPTURE.get_or_init(|| {
            let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
            log::set_logger(c).expect("one logger per test binary");
            log::set_max_level(log::LevelFilter::Debug);
            c
        });
        c.0.lock()
            .unwrap()
            .iter()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .cloned()
            .collect()
    }

    fn xs_with(
        f: impl FnOnce(&mut Store),
    ) -> (Arc<Mutex<Store>>, Xenstore<std::os::unix::net::UnixStream>) {
        let mut store = Store::default();
        f(&mut store);
        let store = Arc::new(Mutex::new(store));
        (store.clone(), fakexs::client(store))
    }

    #[test]
    fn a_second_domain_named_like_a_served_one_is_refused_and_logged() {
        logged(&[]);
        let (_store, mut xs) = xs_with(|s| {
            s.domain(5, "web", UUID_A);
            s.domain(6, "web", UUID_B);
        });
        let nobody = |_: &GuestName| None;
        let first = identify(&mut xs, 5, nobody).unwrap().unwrap();
        assert_eq!(first.name.as_str(), "web");
        assert_eq!(first.handle, UUID_A);
        let served_as = |n: &GuestName| (n == &first.name).then(|| (5, first.handle.clone()));
        let second = identify(&mut xs, 6, served_as).unwrap().unwrap_err();
        assert_eq!(
            second,
            Refusal::NameInUse {
                name: GuestName::new("web").unwrap(),
                by: 5
            }
        );
        // The domain served under the name is not refused for having it.
        assert!(identify(&mut xs, 5, served_as).unwrap().is_ok());
        let mut refused = HashMap::new();
        assert!(note_refusal(&mut refused, 6, &second));
        assert!(!note_refusal(&mut refused, 6, &second), "logged once");
        let lines = logged(&[
            "WARN",
            "domid 6: not served: the name web is already served for domid 5",
        ]);
        assert_eq!(lines.len(), 1, "{lines:?}");
    }

    #[test]
    fn the_same_vm_under_a_new_domid_waits_for_its_old_self_untold() {
        // A live migration to this host: the incoming domain (7) is named like the
        // old one (5), which is still served until the toolstack destroys it.
        logged(&[]);
        let (_store, mut xs) = xs_with(|s| {
            s.domain(5, "web", UUID_A);
            s.domain(7, "web", UUID_A);
        });
        let served_as = |n: &GuestName| (n.as_str() == "web").then(|| (5, UUID_A.to_string()));
        let waits = identify(&mut xs, 7, served_as).unwrap().unwrap_err();
        assert_eq!(
            waits,
            Refusal::ItsOldSelfServed {
                name: GuestName::new("web").unwrap(),
                by: 5
            }
        );
        let mut refused = HashMap::new();
        assert!(note_refusal(&mut refused, 7, &waits));
        let lines = logged(&[
            "INFO",
            "domid 7: not served yet: the domain it was (domid 5, the same VM) is still served as web",
        ]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        // Once the old one is gone it is served.
        assert!(identify(&mut xs, 7, |_: &GuestName| None).unwrap().is_ok());
    }

    #[test]
    fn a_name_the_guest_could_write_is_refused() {
        let (_store, mut xs) = xs_with(|s| {
            s.domain(7, "web", UUID_A);
            s.put_with_perms("/local/domain/7/name", "web", "n0\0b7\0");
            s.domain(8, "db", UUID_B);
            s.put_with_perms("/local/domain/8/name", "db", "n8\0");
            s.domain(9, "any", UUID_A);
            s.put_with_perms("/local/domain/9/name", "any", "w0\0");
            s.domain(10, "vm", UUID_B);
            s.put_with_perms("/local/domain/10/vm", "/vm/x", "n10\0");
            s.domain(11, "odd", "not/a-uuid");
            s.domain(12, "..", UUID_A);
            s.introduced.insert(13);
        });
        let nobody = |_: &GuestName| None;
        let mut refusal = |d| identify(&mut xs, d, nobody).unwrap().unwrap_err();
        assert_eq!(refusal(7), Refusal::GuestWritable("name"));
        assert_eq!(
            refusal(8),
            Refusal::NotDom0s {
                node: "name",
                owner: Some(8)
            }
        );
        assert_eq!(refusal(9), Refusal::GuestWritable("name"));
        assert_eq!(
            refusal(10),
            Refusal::NotDom0s {
                node: "vm",
                owner: Some(10)
            }
        );
        assert_eq!(refusal(11), Refusal::BadHandle);
        assert!(matches!(refusal(12), Refusal::BadName(_)));
        assert_eq!(refusal(13), Refusal::Missing("name"));
    }

    fn journal_with_an_entry(path: &Path) {
        let j = Journal::open(path).unwrap();
        j.begin(1).unwrap();
        j.finish(1, rpc::Op::DirCreate, &Ok(rpc::ReplyBody::DirCreate))
            .unwrap();
    }

    const UUID_C: &str = "0f8e2f5e-1c0d-4b1a-9d47-5a1c3b2e0003";

    fn domain_journal(dir: &Path, domid: u16, handle: &str) -> PathBuf {
        let key = JournalKey::Domain {
            domid,
            handle: Some(handle.into()),
        };
        dir.join(key.file_name())
    }

    fn boot_key(handle: &str, boot: &str, name: &str) -> JournalKey {
        JournalKey::Boot {
            handle: handle.into(),
            boot: BootId::parse(boot.as_bytes()).unwrap(),
            name: GuestName::new(name).unwrap(),
        }
    }

    fn entries(path: &Path) -> usize {
        Journal::live_entries(path).unwrap()
    }

    #[test]
    fn a_reused_domid_starts_with_an_empty_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let state = StateDir::new(dir, Keeping::default());
        let now = SystemTime::now();
        // Domain 5 was VM A when the daemon went down; now domid 5 is VM B. Domain 6
        // is the same VM as before; domain 7 is gone; dom8.journal predates handles.
        journal_with_an_entry(&domain_journal(dir, 5, UUID_A));
        journal_with_an_entry(&domain_journal(dir, 6, UUID_A));
        journal_with_an_entry(&domain_journal(dir, 7, UUID_A));
        journal_with_an_entry(&dir.join("dom8.journal"));
        fs::write(dir.join("unrelated"), b"kept").unwrap();
        // Journals keyed by boot: VM A's (it runs: kept whatever its age), VM C's of a
        // boot whose domain went a day ago (kept for a restore) and of one that went
        // eight days ago (past KEPT_FOR), and one that answers for nothing.
        let running = boot_key(UUID_A, "000000000000000a", "same");
        let recent = boot_key(UUID_C, "000000000000000c", "saved");
        let old = boot_key(UUID_C, "00000000000000c0", "saved");
        let empty = boot_key(UUID_C, "0000000000000c00", "saved");
        let day = Duration::from_secs(24 * 3600);
        for (key, went) in [(&running, day * 30), (&recent, day), (&old, day * 8)] {
            journal_with_an_entry(&state.path(key).unwrap());
            state.forget(key, now - went).unwrap();
        }
        drop(state.open(&empty).unwrap().unwrap());
        let (_store, mut xs) = xs_with(|s| {
            s.domain(5, "new", UUID_B);
            s.domain(6, "same", UUID_A);
            s.domain(8, "old", UUID_B);
        });
        assert_eq!(forget_stale_journals(&mut xs, &state, now), Ok(5));
        assert!(!domain_journal(dir, 5, UUID_A).exists());
        assert_eq!(entries(&domain_journal(dir, 5, UUID_B)), 0);
        assert_eq!(entries(&domain_journal(dir, 6, UUID_A)), 1);
        assert!(!domain_journal(dir, 7, UUID_A).exists());
        assert!(!dir.join("dom8.journal").exists());
        assert!(dir.join("unrelated").exists());
        assert_eq!(entries(&state.path(&running).unwrap()), 1);
        assert_eq!(entries(&state.path(&recent).unwrap()), 1);
        assert!(!state.path(&old).unwrap().exists());
        assert!(!state.path(&empty).unwrap().exists());
    }

    #[test]
    fn a_xenstore_error_at_start_up_removes_no_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let state = StateDir::new(dir, Keeping::default());
        journal_with_an_entry(&domain_journal(dir, 5, UUID_A));
        journal_with_an_entry(&dir.join("dom8.journal"));
        // Past every bound: removed by any clean-up that runs.
        let old = boot_key(UUID_C, "00000000000000c0", "saved");
        journal_with_an_entry(&state.path(&old).unwrap());
        let now = SystemTime::now();
        state.forget(&old, now - KEPT_FOR * 2).unwrap();
        let (store, mut xs) = xs_with(|s| {
            s.domain(5, "web", UUID_A);
            s.fail_with = Some("EACCES");
        });
        let e = forget_stale_journals(&mut xs, &state, now).unwrap_err();
        assert!(e.contains("EACCES"), "{e}");
        // Nor when it answers but has no /local/domain at all.
        {
            let mut st = store.lock().unwrap();
            st.fail_with = None;
            st.nodes.clear();
        }
        assert!(
            forget_stale_journals(&mut xs, &state, now).is_err(),
            "no /local/domain"
        );
        assert_eq!(entries(&domain_journal(dir, 5, UUID_A)), 1);
        assert_eq!(entries(&dir.join("dom8.journal")), 1);
        assert_eq!(entries(&state.path(&old).unwrap()), 1);
    }

    /// Attaches as told: fails for the domids in `failing`, serves the others on a thread
    /// that ends when stopped; counts attempts and stops. With `state`, opens each
    /// guest's journal there as the daemon does (busy while held), its thread holding it
    /// while it runs, and leaves a handle to it in `journals` (a job still running).
    #[derive(Default)]
    struct FakeAttacher {
        failing: HashSet<u16>,
        attempts: HashMap<u16, u64>,
        stops: Arc<std::sync::atomic::AtomicU64>,
        state: Option<StateDir>,
        journals: HashMap<u16, Arc<Journal>>,
        prunes: u64,
        /// As `--guest`: serve only these names (every guest if empty).
        only: Vec<&'static str>,
    }

    impl Attacher for FakeAttacher {
        fn attach(&mut self, domid: u16, offer: Offer, identity: &Identity) -> Attached {
            *self.attempts.entry(domid).or_default() += 1;
            if self.failing.contains(&domid) {
                return Attached::Failed(format!(
                    "cannot attach to its channel ({offer}): mapping its pages: EINVAL"
                ));
            }
            let journal = match &self.state {
                Some(state) => match state.open(&identity.journal_key(domid)) {
                    Ok(Ok(j)) => Some(j),
                    Ok(Err(_busy)) => return Attached::Busy,
                    Err(e) => return Attached::Failed(format!("cannot open its journal: {e}")),
                },
                None => None,
            };
            if let Some(j) = &journal {
                self.journals.insert(domid, Arc::clone(j));
            }
            let (tx, rx) = crossbeam_channel::bounded::<()>(1);
            let stops = Arc::clone(&self.stops);
            let thread = thread::spawn(move || {
                let _ = rx.recv();
                drop(journal);
                Ended::Stopped
            });
            Attached::Served(Served {
                identity: identity.clone(),
                stop: Box::new(move || {
                    stops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = tx.try_send(());
                }),
                thread,
            })
        }

        fn forget(&mut self, domid: u16, identity: &Identity) -> std::io::Result<bool> {
            match &self.state {
                Some(state) => state.forget(&identity.journal_key(domid), SystemTime::now()),
                None => Ok(false),
            }
        }

        fn prune(&mut self, live: &HashSet<JournalKey>) -> std::io::Result<()> {
            self.prunes += 1;
            match &self.state {
                Some(state) => state
                    .prune(&|k: &JournalKey| live.contains(k), SystemTime::now())
                    .map(|_| ()),
                None => Ok(()),
            }
        }

        fn serves(&self, name: &GuestName) -> bool {
            self.only.is_empty() || self.only.contains(&name.as_str())
        }

        fn serves_every_guest(&self) -> bool {
            self.only.is_empty()
        }
    }

    fn offer(s: &mut Store, domid: u16, ring_ref: u32, port: u32) {
        let node = rpc_node(domid);
        s.put(&format!("{node}/ring-ref"), &ring_ref.to_string(), domid);
        s.put(&format!("{node}/event-channel"), &port.to_string(), domid);
    }

    const BOOT_X: &str = "00c0ffee0123abcd";
    const BOOT_Y: &str = "00c0ffee0123abce";

    /// What a guest kernel publishes beside its channel's keys.
    fn boot_id(s: &mut Store, domid: u16, boot: &str) {
        let node = rpc_node(domid);
        s.put_with_perms(
            &format!("{node}/{BOOT_ID_NODE}"),
            boot,
            &format!("n{domid}\0"),
        );
    }

    /// A domain as `xl create` or `xl restore` leaves it, with its kernel's offer.
    fn guest(s: &mut Store, domid: u16, name: &str, uuid: &str, boot: Option<&str>) {
        s.domain(domid, name, uuid);
        let d = u32::from(domid);
        offer(s, domid, 1_000 + d, d);
        if let Some(b) = boot {
            boot_id(s, domid, b);
        }
    }

    /// A domain gone: its nodes and its introduction.
    fn gone(store: &Arc<Mutex<Store>>, domid: u16) {
        let mut st = store.lock().unwrap();
        let home = format!("/local/domain/{domid}/");
        st.nodes.retain(|k, _| !k.starts_with(&home));
        st.introduced.remove(&domid);
    }

    #[test]
    fn a_guests_boot_id_is_read_and_checked() {
        logged(&[]);
        let (_store, mut xs) = xs_with(|s| {
            guest(s, 5, "new", UUID_A, Some(BOOT_X));
            guest(s, 6, "older", UUID_B, None);
            guest(s, 7, "liar", UUID_C, Some("00C0FFEE0123ABCD"));
            guest(s, 8, "short", UUID_C, Some("c0ffee"));
        });
        let nobody = |_: &GuestName| None;
        let new = identify(&mut xs, 5, nobody).unwrap().unwrap();
        assert_eq!(new.boot, BootId::parse(BOOT_X.as_bytes()));
        assert_eq!(new.journal_key(5), boot_key(UUID_A, BOOT_X, "new"));
        assert_eq!(
            new.journal_key(5),
            new.journal_key(9),
            "a restore (another domid) finds it"
        );
        // An older kernel: keyed by its domain, as before boot ids.
        let older = identify(&mut xs, 6, nobody).unwrap().unwrap();
        assert_eq!(older.boot, None);
        assert_eq!(
            older.journal_key(6),
            JournalKey::Domain {
                domid: 6,
                handle: Some(UUID_B.into())
            }
        );
        let mut refused = HashMap::new();
        for domid in [7, 8] {
            let r = identify(&mut xs, domid, nobody).unwrap().unwrap_err();
            assert_eq!(r, Refusal::BadBootId);
            assert!(note_refusal(&mut refused, domid, &r));
        }
        let lines = logged(&[
            "WARN domid 7: not served: its data/vchan/0/rpc/boot-id is not 16 lowercase hex \
             digits",
        ]);
        assert_eq!(lines.len(), 1, "{lines:?}");
    }

    fn with_journals(keeping: Keeping) -> (tempfile::TempDir, FakeAttacher) {
        let tmp = tempfile::tempdir().unwrap();
        let attacher = FakeAttacher {
            state: Some(StateDir::new(tmp.path(), keeping)),
            ..FakeAttacher::default()
        };
        (tmp, attacher)
    }

    /// `xl save` then `xl restore`: the domain that was `rpcsaved` (domid 5) goes with a
    /// job still running, and the same VM in the same boot comes back as domid 9. It
    /// waits for the old job, then gets the old journal: what was done is answered from
    /// it. A reboot of the VM (another boot id) and a reused domid (another VM) each
    /// start with an empty journal.
    #[test]
    fn a_restored_domain_finds_its_journal_and_a_reboot_or_a_reused_domid_does_not() {
        logged(&[]);
        let (tmp, attacher) = with_journals(Keeping::default());
        let (store, xs) = xs_with(|s| guest(s, 5, "rpcsaved", UUID_A, Some(BOOT_X)));
        let mut d = Discovery::new(xs, attacher);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let changed = |domains: &[u16]| Dirty {
            domains_changed: true,
            domains: domains.iter().copied().collect(),
        };
        d.turn(changed(&[5]), false, t0).unwrap();
        assert!(d.served.contains_key(&5));
        // A request done, its reply never read; a job still running when saved.
        let job = d.attacher.journals.remove(&5).unwrap();
        job.begin(7).unwrap();
        job.finish(7, rpc::Op::DirCreate, &Ok(rpc::ReplyBody::DirCreate))
            .unwrap();

        gone(&store, 5);
        guest(
            &mut store.lock().unwrap(),
            9,
            "rpcsaved",
            UUID_A,
            Some(BOOT_X),
        );
        d.turn(changed(&[9]), false, at(1)).unwrap();
        assert!(!d.served.contains_key(&5));
        assert!(!d.served.contains_key(&9), "served while the old job runs");
        assert!(d.waiting.contains(&9));
        let path = tmp
            .path()
            .join(boot_key(UUID_A, BOOT_X, "rpcsaved").file_name());
        assert!(path.exists(), "the journal went with its domain");
        let kept = logged(&["guest rpcsaved (domid 5): journal", "kept for a restore"]);
        assert_eq!(kept.len(), 1, "{kept:?}");
        d.turn(Dirty::default(), true, at(2)).unwrap();
        assert!(!d.served.contains_key(&9));
        drop(job); // the old job finished
        d.turn(Dirty::default(), true, at(3)).unwrap();
        assert!(d.served.contains_key(&9));
        let restored = d.attacher.journals.remove(&9).unwrap();
        assert_eq!(
            restored.lookup(7),
            Lookup::Done(Ok(rpc::ReplyBody::DirCreate))
        );
        drop(restored);

        // A reboot: the same VM, another boot.
        gone(&store, 9);
        guest(
            &mut store.lock().unwrap(),
            10,
            "rpcsaved",
            UUID_A,
            Some(BOOT_Y),
        );
        d.turn(changed(&[10]), false, at(4)).unwrap();
        assert!(d.served.contains_key(&10));
        let rebooted = d.attacher.journals.remove(&10).unwrap();
        assert!(rebooted.is_empty(), "a reboot inherited a journal");
        drop(rebooted);
        assert!(
            path.exists(),
            "the earlier boot's journal is kept within bounds"
        );

        // Domid 10 reused by another VM that happens to send the same boot id.
        gone(&store, 10);
        guest(
            &mut store.lock().unwrap(),
            10,
            "other",
            UUID_B,
            Some(BOOT_X),
        );
        d.turn(changed(&[10]), false, at(5)).unwrap();
        assert!(d.served.contains_key(&10));
        let other = d.attacher.journals.remove(&10).unwrap();
        assert!(other.is_empty(), "a reused domid inherited a journal");
        assert_eq!(d.identities[&10].handle, UUID_B);
        drop(other);
        d.stop_all();
    }

    /// Domains that go one after another, each leaving requests its journal answers
    /// for: at most `most` of those journals stay, each drop logged.
    #[test]
    fn journals_of_gone_domains_are_capped() {
        logged(&[]);
        let most = 2;
        let (tmp, attacher) = with_journals(Keeping {
            most,
            longest: KEPT_FOR,
        });
        let (store, xs) = xs_with(|_| {});
        let mut d = Discovery::new(xs, attacher);
        let t0 = Instant::now();
        let domids: Vec<u16> = (30..36).collect();
        for (i, &domid) in domids.iter().enumerate() {
            let name = format!("capped{domid}");
            let boot = format!("{:016x}", 0xcab0 + i);
            guest(
                &mut store.lock().unwrap(),
                domid,
                &name,
                UUID_C,
                Some(&boot),
            );
            let dirty = Dirty {
                domains_changed: true,
                domains: [domid].into(),
            };
            d.turn(dirty, false, t0 + Duration::from_secs(i as u64))
                .unwrap();
            let j = d.attacher.journals.remove(&domid).unwrap();
            j.begin(1).unwrap();
            drop(j);
            gone(&store, domid);
        }
        let dirty = Dirty {
            domains_changed: true,
            domains: BTreeSet::new(),
        };
        d.turn(dirty, false, t0 + Duration::from_secs(10)).unwrap();
        assert!(d.served.is_empty());
        let left: Vec<String> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.contains("capped"))
            .collect();
        assert_eq!(left.len(), most, "{left:?}");
        let dropped = logged(&["WARN journal vm-", "capped", "dropped"]);
        assert_eq!(dropped.len(), domids.len() - most, "{dropped:?}");
        assert!(d.attacher.prunes >= 1);
    }

    /// Guest A (domid 5) rewrites its offer 10^4 times, 1 ms apart (virtual time), each
    /// time firing its own watch, while guest B (domid 6) is served. B's domain is
    /// never looked at again (no xenstore request about it, no scan, no stop), A's
    /// attach attempts and warnings stay within their budgets, and A's latest offer is
    /// still tried once the budget allows.
    #[test]
    fn a_guest_rewriting_its_keys_costs_only_its_own_scans_and_bounded_attaches() {
        const WRITES: u32 = 10_000;
        logged(&[]);
        let (store, xs) = xs_with(|s| {
            s.domain(5, "rewriter", UUID_A);
            s.domain(6, "steady", UUID_B);
            offer(s, 5, 100, 1);
            offer(s, 6, 200, 2);
        });
        let attacher = FakeAttacher {
            failing: [5].into(),
            ..FakeAttacher::default()
        };
        let stops = Arc::clone(&attacher.stops);
        let mut d = Discovery::new(xs, attacher);
        let t0 = Instant::now();
        // What the watch thread reports at start: the set of domains, and each
        // domain's own watch firing once as it is set.
        let start = Dirty {
            domains_changed: true,
            domains: [5, 6].into(),
        };
        d.turn(start, false, t0).unwrap();
        assert!(d.served.contains_key(&6), "B is served");
        let b_asked = store.lock().unwrap().asked_about(6);
        let b_before = d.counts(6);
        for i in 0..WRITES {
            store.lock().unwrap().put(
                &format!("{}/ring-ref", rpc_node(5)),
                &(1_000 + i).to_string(),
                5,
            );
            let now = t0 + Duration::from_millis(u64::from(i));
            let fired = Dirty {
                domains_changed: false,
                domains: [5].into(),
            };
            d.turn(fired, i % 1_000 == 999, now).unwrap();
        }
        let (a, b) = (d.counts(5), d.counts(6));
        let b_asked_after = store.lock().unwrap().asked_about(6);
        eprintln!(
            "{WRITES} rewrites by A: A {a}; B {b}; xenstore requests about B during \
             them: {}; checks of the domain set: {}",
            b_asked_after - b_asked,
            d.domain_checks
        );
        assert_eq!(b_asked_after, b_asked, "a xenstore request about B");
        assert_eq!(b, b_before, "B's domain scanned because of A's writes");
        assert_eq!(d.attacher.attempts[&6], 1);
        assert_eq!(stops.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(d.served.contains_key(&6), "B is still served");
        assert_eq!(d.domain_checks, 1, "the domain set was listed again");
        assert_eq!(
            a.scans,
            u64::from(WRITES) + 1,
            "one scan per firing of A's watch"
        );
        // The burst, then one per ATTACH_REFILL over the 10 virtual seconds.
        let budget = u64::from(ATTACH_BURST) + 10_000 / ATTACH_REFILL.as_millis() as u64;
        assert!(a.attempts <= budget, "{a}");
        assert_eq!(a.attempts + a.suppressed, u64::from(WRITES) + 1, "{a}");
        assert_eq!(d.attacher.attempts[&5], a.attempts);
        assert!(a.warned <= u64::from(WARN_BURST), "{a}");
        // (Other tests of this binary log about a domid 5 too: only this guest's lines.)
        let mut warned = logged(&["WARN guest rewriter (domid 5)"]);
        warned.extend(logged(&["WARN domid 5:"]));
        assert!(warned.len() <= WARN_BURST as usize, "{warned:?}");
        // The latest offer is not lost: a tick tries it once the budget allows.
        d.turn(Dirty::default(), true, t0 + Duration::from_secs(60))
            .unwrap();
        assert_eq!(d.tried[&5].ring_ref, 1_000 + WRITES - 1);
        d.stop_all();
    }

    /// The watch thread against a fake xenstored that fires watches as xenstored does:
    /// each domain gets a watch on its own RPC node; 10^4 writes by A elsewhere in its
    /// home fire nothing, 10^4 writes of its RPC node mark only A; B's watch is removed
    /// when B goes.
    #[test]
    fn each_domain_has_its_own_watch_and_only_its_rpc_node_fires_it() {
        const WRITES: u64 = 10_000;
        let (store, mut watcher) = xs_with(|s| {
            s.domain(5, "a", UUID_A);
            s.domain(6, "b", UUID_B);
        });
        watcher.watch("@introduceDomain", "domains").unwrap();
        watcher.watch("@releaseDomain", "domains").unwrap();
        let dirty = Arc::new(Mutex::new(Dirty::default()));
        let (tx, wakes) = crossbeam_channel::unbounded();
        let seen = Arc::clone(&dirty);
        thread::spawn(move || {
            let wake = || {
                let _ = tx.send(());
            };
            watch_domains(watcher, &seen, &wake)
        });
        let patience = Duration::from_secs(30);
        let wait_wakes = |n: u64| {
            for _ in 0..n {
                wakes
                    .recv_timeout(patience)
                    .expect("the watch thread fell silent");
            }
        };
        let take = || std::mem::take(&mut *dirty.lock().unwrap());
        let watched = |d: u16| {
            store
                .lock()
                .unwrap()
                .watches
                .contains(&(rpc_node(d), domain_token(d)))
        };
        // Two "domains" events (each new watch fires once), then each domain's own.
        wait_wakes(4);
        assert!(watched(5) && watched(6));
        assert_eq!(
            take(),
            Dirty {
                domains_changed: true,
                domains: [5, 6].into()
            }
        );
        for i in 0..WRITES {
            store
                .lock()
                .unwrap()
                .write("/local/domain/5/data/junk", &i.to_string(), 5);
        }
        for i in 0..WRITES {
            store
                .lock()
                .unwrap()
                .write(&format!("{}/ring-ref", rpc_node(5)), &i.to_string(), 5);
        }
        wait_wakes(WRITES);
        {
            let st = store.lock().unwrap();
            eprintln!("watch events fired by A's writes: {:?}", st.fired);
            assert_eq!(
                st.fired.get("dom5"),
                Some(&(WRITES + 1)),
                "its own, once each"
            );
            assert_eq!(st.fired.get("dom6"), Some(&1), "B's: only when set");
        }
        assert_eq!(
            take(),
            Dirty {
                domains_changed: false,
                domains: [5].into()
            }
        );
        // B goes: its watch goes with it.
        {
            let mut st = store.lock().unwrap();
            st.nodes.retain(|k, _| !k.starts_with("/local/domain/6/"));
            st.introduced.remove(&6);
            st.fire("@releaseDomain");
        }
        wait_wakes(1);
        assert!(watched(5) && !watched(6));
        assert!(take().domains_changed);
        assert!(wakes.try_recv().is_err(), "no more wakes than events");
    }

    /// A domain refused because its name is served for another is retried at each tick
    /// (outside the attach budget, with no rate-limit warning) and served once the
    /// other is gone.
    #[test]
    fn a_name_in_use_is_retried_at_ticks_and_served_once_free() {
        logged(&[]);
        let (store, xs) = xs_with(|s| {
            s.domain(15, "twin", UUID_A);
            s.domain(16, "twin", UUID_B);
            offer(s, 15, 300, 3);
            offer(s, 16, 400, 4);
        });
        let mut d = Discovery::new(xs, FakeAttacher::default());
        let t0 = Instant::now();
        let start = Dirty {
            domains_changed: true,
            domains: [15, 16].into(),
        };
        d.turn(start, false, t0).unwrap();
        assert!(d.served.contains_key(&15) && !d.served.contains_key(&16));
        for s in 1..=30 {
            d.turn(Dirty::default(), true, t0 + Duration::from_secs(s))
                .unwrap();
        }
        assert!(!d.served.contains_key(&16));
        assert_eq!(d.counts(16).suppressed, 0);
        assert!(logged(&["domid 16", "rate-limited"]).is_empty());
        {
            let mut st = store.lock().unwrap();
            st.nodes.retain(|k, _| !k.starts_with("/local/domain/15/"));
            st.introduced.remove(&15);
        }
        let gone = Dirty {
            domains_changed: true,
            domains: BTreeSet::new(),
        };
        d.turn(gone, true, t0 + Duration::from_secs(31)).unwrap();
        assert!(d.served.contains_key(&16), "served once the name is free");
        assert!(!d.served.contains_key(&15));
        d.stop_all();
    }

    /// A refused guest is told in xenstore, once, with the refusal's code, in a node
    /// dom0 owns and the guest may read; the node goes when the guest is served after
    /// all. A daemon limited by `--guest` tells only the names it serves.
    #[test]
    fn a_refused_guest_is_told_and_the_refusal_withdrawn_once_served() {
        logged(&[]);
        let (store, xs) = xs_with(|s| {
            s.domain(25, "pair", UUID_A);
            s.domain(26, "pair", UUID_B);
            s.domain(27, "..", UUID_A);
            for (d, r) in [(25, 500), (26, 600), (27, 700)] {
                offer(s, d, r, 5);
            }
        });
        let mut d = Discovery::new(xs, FakeAttacher::default());
        let t0 = Instant::now();
        let start = Dirty {
            domains_changed: true,
            domains: [25, 26, 27].into(),
        };
        d.turn(start, false, t0).unwrap();
        let node = |domid: u16| {
            store
                .lock()
                .unwrap()
                .nodes
                .get(&refused_node(domid))
                .map(|(v, p)| (String::from_utf8_lossy(v).into_owned(), p.clone()))
        };
        assert!(d.served.contains_key(&25));
        assert_eq!(node(25), None, "a served guest is told nothing");
        assert_eq!(
            node(26),
            Some(("name-in-use".to_string(), b"n0\0r26\0".to_vec()))
        );
        assert_eq!(
            node(27),
            Some(("bad-name".to_string(), b"n0\0r27\0".to_vec()))
        );
        assert_eq!(
            logged(&["domid 26: told it is not served (name-in-use)"]).len(),
            1
        );
        assert_eq!(
            logged(&["domid 27: not served: its name is unusable"]).len(),
            1
        );
        // Retried at each tick, told once: the guest's watch does not fire again.
        let fired = |st: &Store| st.asked.get(&refused_node(26)).copied();
        let asked_before = fired(&store.lock().unwrap());
        for s in 1..=5 {
            d.turn(Dirty::default(), true, t0 + Duration::from_secs(s))
                .unwrap();
        }
        assert_eq!(fired(&store.lock().unwrap()), asked_before);
        // The name becomes free: 26 is served and its refusal withdrawn.
        {
            let mut st = store.lock().unwrap();
            st.nodes.retain(|k, _| !k.starts_with("/local/domain/25/"));
            st.introduced.remove(&25);
        }
        let gone = Dirty {
            domains_changed: true,
            domains: BTreeSet::new(),
        };
        d.turn(gone, true, t0 + Duration::from_secs(6)).unwrap();
        assert!(d.served.contains_key(&26));
        assert_eq!(node(26), None, "withdrawn once served");
        assert!(node(27).is_some());
        d.stop_all();

        // Limited to `--guest pair`: the bad name is none of its business.
        let (store, xs) = xs_with(|s| {
            s.domain(28, "pair", UUID_A);
            s.domain(29, "pair", UUID_B);
            s.domain(30, "..", UUID_A);
            for (d, r) in [(28, 500), (29, 600), (30, 700)] {
                offer(s, d, r, 5);
            }
        });
        let attacher = FakeAttacher {
            only: vec!["pair"],
            ..FakeAttacher::default()
        };
        let mut d = Discovery::new(xs, attacher);
        let start = Dirty {
            domains_changed: true,
            domains: [28, 29, 30].into(),
        };
        d.turn(start, false, t0).unwrap();
        let st = store.lock().unwrap();
        assert!(st.nodes.contains_key(&refused_node(29)));
        assert!(!st.nodes.contains_key(&refused_node(30)));
        drop(st);
        d.stop_all();
    }

    #[test]
    fn buckets_refill_on_the_given_clock() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2, Duration::from_secs(2), t0);
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(1_999)));
        assert!(b.take(t0 + Duration::from_secs(2)));
        assert!(!b.take(t0 + Duration::from_secs(3)));
        // Long idle refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(3_600);
        assert!(b.take(later) && b.take(later) && !b.take(later));
    }

    #[test]
    fn watch_tokens_say_which_domain() {
        let mut d = Dirty::default();
        note_event(&mut d, &domain_token(7));
        note_event(&mut d, &domain_token(9));
        assert_eq!(d.domains, [7, 9].into());
        assert!(!d.domains_changed);
        note_event(&mut d, "domains");
        assert!(d.domains_changed);
    }

    #[test]
    fn handles_and_journal_names() {
        assert_eq!(
            parse_handle(format!("/vm/{UUID_A}").as_bytes()),
            Some(UUID_A.into())
        );
        for bad in [
            &b"/vm/"[..],
            b"vm/x",
            b"/vm/a/b",
            b"/vm/../x",
            b"/vm/a b",
            b"/vm/\xff",
        ] {
            assert_eq!(parse_handle(bad), None, "{bad:?}");
        }
    }
}
