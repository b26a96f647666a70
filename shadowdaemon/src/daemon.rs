//! `shadowdaemon serve`: finds the guests through xenstore, attaches to each one's RPC
//! vchan, serves it on a thread of its own, and lets go when the guest goes.
//!
//! # Finding guests
//!
//! Two xenstore watches, on `/local/domain` (any key a guest or the toolstack writes
//! beneath it, including a guest publishing `data/vchan/0/rpc/{ring-ref,event-channel}`)
//! and on `@releaseDomain` (a domain died). A watch event only means "look again": the
//! main thread then lists the domains and compares what each one offers with what it
//! serves. A rescan also runs every [`RESCAN_EVERY`], to reap connections that ended on
//! their own.
//!
//! # One guest's life
//!
//! * An offer (ring-ref, port) not seen before for that domain is attached
//!   ([`crate::xen::connect`]) and served; one that was served or failed once is not
//!   tried again: it stays in xenstore after its connection ended, and only the guest
//!   offering anew (new keys) means it wants another connection.
//! * A guest that offers anew while connected (it saw us close) gets the old connection
//!   stopped first.
//! * A domain that is gone, or no longer introduced to xenstored (it is dying), has its
//!   connection stopped and joined at once: dropping the connection unmaps the guest's
//!   pages and closes the port, so the dead domain does not linger as a zombie held by
//!   our mappings. Its journal is deleted.
//!
//! Every log line names the guest and its domid.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use shadowdaemon::confine::{GuestName, Share};
use shadowdaemon::journal::Journal;
use shadowdaemon::pool::{Pool, PoolConfig};
use shadowdaemon::quota::{Budget, Override};
use shadowdaemon::serve::{Ended, Handler, Limits, Stopper};

use crate::xen::connect::{connect, Offer};
use crate::xen::gntdev::Gntdev;
use crate::xen::xenstore::{parse_u32_decimal, Transport, Xenstore, XsError};

/// The longest the main thread sleeps without a watch event.
pub const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// Where each guest's RPC vchan is published, under its home.
pub const RPC_NODE: &str = "data/vchan/0/rpc";

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

struct Served {
    name: GuestName,
    stopper: Stopper,
    thread: JoinHandle<Ended>,
}

struct Daemon {
    settings: Settings,
    share: Share,
    pool: Arc<Pool>,
    gntdev: Arc<Gntdev>,
    handler: Arc<dyn Handler>,
    xs: Xenstore<Transport>,
    /// Wake-ups from the watch thread.
    watch: Receiver<Watch>,
    served: HashMap<u16, Served>,
    /// The last offer tried per domain (served or failed): not tried again.
    tried: HashMap<u16, Offer>,
}

enum Watch {
    Fired,
    Failed(XsError),
}

/// Runs the daemon until xenstore fails.
pub fn run(settings: Settings) -> ExitCode {
    log::info!(
        "shadowdaemon {} serving: root {}, journals in {}, guests {}, {} workers",
        env!("CARGO_PKG_VERSION"),
        settings.root.display(),
        settings.state_dir.display(),
        if settings.guests.is_empty() {
            "all".to_string()
        } else {
            settings.guests.join(",")
        },
        settings.workers
    );
    match Daemon::start(settings) {
        Ok(daemon) => daemon.serve(),
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
        let share = Share::open(&settings.root)
            .map_err(|e| format!("cannot open {}: {e}", settings.root.display()))?;
        let pool = Pool::new(PoolConfig {
            workers: settings.workers.max(1),
            ..PoolConfig::default()
        })
        .map_err(|e| format!("cannot start the worker pool: {e}"))?;
        let gntdev = Gntdev::open(&settings.gntdev).map_err(|e| e.to_string())?;
        let xs = Xenstore::open_default().map_err(|e| format!("xenstore: {e}"))?;
        let mut watcher = Xenstore::open_default().map_err(|e| format!("xenstore: {e}"))?;
        watcher
            .watch("/local/domain", "domains")
            .and_then(|()| watcher.watch("@releaseDomain", "released"))
            .map_err(|e| format!("xenstore watch: {e}"))?;
        // Only "something changed" matters: one pending wake-up is enough.
        let (tx, rx) = crossbeam_channel::bounded(1);
        thread::Builder::new()
            .name("xenstore-watch".into())
            .spawn(move || loop {
                match watcher.next_watch_event() {
                    Ok(_) => {
                        let _ = tx.try_send(Watch::Fired);
                    }
                    Err(e) => {
                        let _ = tx.send(Watch::Failed(e));
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the watch thread: {e}"))?;
        let daemon = Daemon {
            settings,
            share,
            pool: Arc::new(pool),
            gntdev: Arc::new(gntdev),
            handler: Arc::new(shadowdaemon::service::handle),
            xs,
            watch: rx,
            served: HashMap::new(),
            tried: HashMap::new(),
        };
        Ok(daemon)
    }

    /// Serves until xenstore fails; then stops every connection.
    fn serve(mut self) -> ExitCode {
        if let Err(e) = self.forget_stale_journals() {
            log::warn!("cleaning journals: {e}");
        }
        let why = loop {
            if let Err(e) = self.rescan() {
                break format!("xenstore: {e}");
            }
            match self.watch.recv_timeout(RESCAN_EVERY) {
                Ok(Watch::Fired) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Watch::Failed(e)) => break format!("xenstore watch: {e}"),
                Err(RecvTimeoutError::Disconnected) => break "the watch thread ended".into(),
            }
        };
        log::error!("{why}; stopping");
        self.stop_all();
        ExitCode::FAILURE
    }

    fn journal_path(&self, domid: u16) -> PathBuf {
        self.settings.state_dir.join(format!("dom{domid}.journal"))
    }

    /// The domains xenstore lists (dom0, us, excluded).
    fn domains(&mut self) -> Result<Vec<u16>, XsError> {
        let names = self.xs.directory("/local/domain")?.unwrap_or_default();
        Ok(names
            .iter()
            .filter_map(|n| n.parse::<u16>().ok())
            .filter(|&d| d != 0)
            .collect())
    }

    /// Journals of domains that no longer exist (the daemon was down when they died).
    fn forget_stale_journals(&mut self) -> std::io::Result<()> {
        let alive = self.domains().unwrap_or_default();
        for entry in fs::read_dir(&self.settings.state_dir)? {
            let name = entry?.file_name();
            let Some(domid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("dom")?.strip_suffix(".journal"))
                .and_then(|d| d.parse::<u16>().ok())
            else {
                continue;
            };
            if !alive.contains(&domid) {
                log::info!("domid {domid} is gone: removing its journal");
                Journal::remove(&self.journal_path(domid))?;
            }
        }
        Ok(())
    }

    fn read_u32(&mut self, path: &str) -> Result<Option<u32>, XsError> {
        Ok(self.xs.read(path)?.and_then(|v| parse_u32_decimal(&v)))
    }

    /// What domain `domid` offers, if a complete, well-formed offer.
    fn offer_of(&mut self, domid: u16) -> Result<Option<Offer>, XsError> {
        let node = format!("/local/domain/{domid}/{RPC_NODE}");
        let ring_ref = self.read_u32(&format!("{node}/ring-ref"))?;
        let port = self.read_u32(&format!("{node}/event-channel"))?;
        Ok(ring_ref
            .zip(port)
            .map(|(ring_ref, port)| Offer { ring_ref, port }))
    }

    fn rescan(&mut self) -> Result<(), XsError> {
        // Connections that ended on their own (the guest closed or broke the channel).
        let finished: Vec<u16> = self
            .served
            .iter()
            .filter(|(_, s)| s.thread.is_finished())
            .map(|(&d, _)| d)
            .collect();
        for domid in finished {
            self.join(domid);
        }
        let domains = self.domains()?;
        let mut gone = Vec::new();
        for &domid in self.served.keys().chain(self.tried.keys()) {
            if !domains.contains(&domid) || !self.xs.is_domain_introduced(domid)? {
                gone.push(domid);
            }
        }
        for domid in gone {
            if let Some(s) = self.served.get(&domid) {
                log::info!("guest {} (domid {domid}): domain gone", s.name);
                s.stopper.stop();
                self.join(domid);
            }
            self.tried.remove(&domid);
            if let Err(e) = Journal::remove(&self.journal_path(domid)) {
                log::warn!("domid {domid}: removing its journal: {e}");
            }
        }
        for domid in domains {
            let Some(offer) = self.offer_of(domid)? else {
                continue;
            };
            if self.tried.get(&domid) == Some(&offer) {
                continue;
            }
            if let Some(s) = self.served.get(&domid) {
                log::info!(
                    "guest {} (domid {domid}): offers the channel anew ({offer}); \
                     ending the old connection",
                    s.name
                );
                s.stopper.stop();
                self.join(domid);
            }
            self.tried.insert(domid, offer);
            self.attach(domid, offer)?;
        }
        Ok(())
    }

    fn join(&mut self, domid: u16) {
        if let Some(s) = self.served.remove(&domid) {
            match s.thread.join() {
                Ok(ended) => log::debug!("guest {} (domid {domid}): ended: {ended}", s.name),
                Err(_) => log::error!("guest {} (domid {domid}): its thread panicked", s.name),
            }
        }
    }

    fn attach(&mut self, domid: u16, offer: Offer) -> Result<(), XsError> {
        let raw = self
            .xs
            .read(&format!("/local/domain/{domid}/name"))?
            .unwrap_or_default();
        let name = match GuestName::from_bytes(&raw) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("domid {domid}: not served: its name is unusable ({e:?})");
                return Ok(());
            }
        };
        let who = format!("guest {name} (domid {domid})");
        if !self.settings.guests.is_empty()
            && !self.settings.guests.iter().any(|g| g == name.as_str())
        {
            log::debug!("{who}: not in --guest; not served");
            return Ok(());
        }
        let budget = self.budget_of(&name);
        let root = match self.share.guest(&name) {
            Ok(r) => r,
            Err(e) => {
                log::error!("{who}: cannot open its folder: {e}");
                return Ok(());
            }
        };
        let root = match root.with_budget(budget) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                log::error!("{who}: cannot count what its folder holds: {e}");
                return Ok(());
            }
        };
        let used = root.quota().usage();
        log::info!("{who}: budget {budget}; holds {used}");
        if used.bytes > budget.bytes || used.entries > budget.entries {
            log::warn!("{who}: already over its budget: its writes and creates get NoSpace");
        }
        let journal = match Journal::open(&self.journal_path(domid)) {
            Ok(j) => Arc::new(j),
            Err(e) => {
                log::error!("{who}: cannot open its journal: {e}");
                return Ok(());
            }
        };
        if !journal.is_empty() {
            log::info!(
                "{who}: {} requests in its journal from before",
                journal.len()
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
                log::warn!("{who}: cannot attach to its channel ({offer}): {e}");
                return Ok(());
            }
        };
        log::info!("{who}: attached to its channel ({offer})");
        let stopper = conn.stopper();
        let pool = Arc::clone(&self.pool);
        let thread = thread::Builder::new()
            .name(format!("dom{domid}"))
            .spawn(move || conn.run(&pool));
        match thread {
            Ok(thread) => {
                self.served.insert(
                    domid,
                    Served {
                        name,
                        stopper,
                        thread,
                    },
                );
            }
            Err(e) => log::error!("{who}: cannot start its thread: {e}"),
        }
        Ok(())
    }

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

    fn stop_all(&mut self) {
        let domids: Vec<u16> = self.served.keys().copied().collect();
        for domid in domids {
            if let Some(s) = self.served.get(&domid) {
                s.stopper.stop();
            }
            self.join(domid);
        }
    }
}
