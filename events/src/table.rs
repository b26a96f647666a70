//! The event table: create, complete, cancel, retire, block, list.
//!
//! # Layout
//!
//! Events live in a slab of slots. An [`EventId`] encrypts `(generation, slot)` (see
//! [`crate::id`]), so an id is resolved by decrypting it and checking the slot's generation;
//! there is no id → slot map. Each slot holds its owner as an index into a slab of
//! processes, so the kernel-side hot path (`complete`) never hashes; only process-side calls
//! that name a [`Pid`] without an event look the pid up in a small map. A process's events
//! form an intrusive doubly linked list through their slots (creation order), which makes
//! listing and exit O(events of that process) and retire O(1).
//!
//! # Wait-tree lifetime
//!
//! A process has at most one installed tree. [`EventTable::block`] installs it (unless it is
//! already satisfied, in which case nothing is installed); the tree is removed, and every
//! leaf released, exactly when it wakes the process (the [`Wake`] returned by
//! [`EventTable::complete`] or [`EventTable::cancel`]), or by [`EventTable::unblock`], or at
//! [`EventTable::exit`]. A process is therefore woken at most once per block.
//!
//! # Cancellation
//!
//! A cancelled event is *resolved*: it will never complete, so it counts as done in a wait
//! tree (an OR tree wakes, an AND tree is not left waiting forever) and retires with status
//! [`Status::Cancelled`]. A completion that arrives later is ignored (counted in
//! [`Stats::ignored`]).

use alloc::vec::Vec;
use core::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;

use crate::id::{IdCipher, Seed};
use crate::tree::{validate_with, WaitTree, NONE};
use crate::{Config, Element, EventId, Pid, Quota, Stats, Status, Value, ValueKind};

/// Where an event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Created, not yet completed or cancelled.
    Pending,
    /// Completed; ready to retire.
    Complete,
    /// Cancelled; retires with [`Status::Cancelled`].
    Cancelled,
}

/// What retiring an event hands back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retired {
    /// The completion status ([`Status::Cancelled`] for a cancelled event).
    pub status: Status,
    /// The completion value ([`Value::Empty`] for a cancelled event).
    pub value: Value,
}

/// The outcome of a piece of work for one event, as a service (a timer,
/// xenstore, the RPC channel, a socket) reports it: the kernel applies it
/// with [`EventTable::complete`] once the service's own state is released,
/// so a service never needs the table, nor the scheduler that owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The event the work was for.
    pub event: EventId,
    /// How it ended.
    pub status: Status,
    /// What it produced (of the event's kind).
    pub value: Value,
}

/// A process became runnable: the root of its wait tree completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wake {
    /// The process to run.
    pub pid: Pid,
    /// The leaves that had completed (or been cancelled) by then, in increasing id order.
    pub completed: Vec<EventId>,
}

/// The result of [`EventTable::block`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// The tree was satisfied already: the process keeps running; nothing was installed.
    /// Holds the leaves that had completed, in increasing id order.
    Satisfied(Vec<EventId>),
    /// The tree is installed; a later [`Wake`] will name the process.
    Waiting,
}

/// What happened, as an [`Observer`] is told it. The codes are stable (a trace records
/// them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Happened {
    /// An event was created; the word is its id.
    Created = 2,
    /// An event was completed (not a completion ignored after a cancel); the word is its id.
    Completed = 3,
    /// The process blocked on a tree: the word is the tree's leaves, with bit 32 set
    /// when the tree was satisfied already (the process did not sleep).
    Blocked = 4,
    /// The process was woken: its tree's root completed. The word is the leaves that had
    /// completed.
    Woken = 5,
    /// An event was retired; the word is its id.
    Retired = 6,
    /// An event was cancelled; the word is its id.
    Cancelled = 7,
    /// The process left the table; the word is how many events it still held (discarded).
    Exited = 11,
}

/// Told of every change the table's counters count, as it happens (the kernel's trace):
/// a plain function, so that a table without one pays one predictable branch per change.
pub type Observer = fn(Happened, Pid, u64);

/// The bit of a [`Happened::Blocked`] word that says the tree was satisfied at once.
pub const BLOCKED_SATISFIED: u64 = 1 << 32;

/// A process's events by state, each in creation order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Not yet completed.
    pub pending: Vec<EventId>,
    /// Completed, not yet retired.
    pub completed: Vec<EventId>,
    /// Cancelled, not yet retired.
    pub cancelled: Vec<EventId>,
}

#[derive(Debug)]
enum State {
    Free,
    Pending,
    Complete { status: Status, value: Value },
    Cancelled,
}

/// One event. Kept small: it is most of the memory an outstanding event costs.
#[derive(Debug)]
struct Slot {
    state: State,
    /// Generation of the current (or, when free, the next) occupant; part of the id.
    generation: u32,
    /// Index of the owner in `procs`.
    owner: u32,
    /// Neighbours in the owner's list; `next` links the free list while free.
    prev: u32,
    next: u32,
    /// Index of this event among the leaves of its owner's installed tree, or `NONE`.
    leaf: u32,
    kind: ValueKind,
}

// The memory target is <= 128 bytes per outstanding event, slab slack included; the slot
// itself must stay within 64 so that even a freshly grown slab stays under it.
const _: () = assert!(core::mem::size_of::<Slot>() <= 64);

#[derive(Debug)]
struct Proc {
    pid: Pid,
    quota: Quota,
    stats: Stats,
    /// Outstanding events (created, not retired).
    events: u32,
    head: u32,
    tail: u32,
    /// Whether `tree` is installed.
    blocked: bool,
    tree: WaitTree,
}

impl Proc {
    fn new(pid: Pid, quota: Quota) -> Self {
        Proc {
            pid,
            quota,
            stats: Stats::default(),
            events: 0,
            head: NONE,
            tail: NONE,
            blocked: false,
            tree: WaitTree::default(),
        }
    }
}

/// Hasher for the pid map. Pids are chosen by the kernel, not by an adversary, so a
/// multiplicative hash is enough, and it needs no randomness (the guest has no OS RNG).
#[derive(Default)]
struct PidHasher(u64);

impl Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The event table of one guest. See the [module docs](self).
pub struct EventTable {
    cipher: IdCipher,
    config: Config,
    slots: Vec<Slot>,
    free_head: u32,
    /// Events in the table (all processes).
    live: u32,
    procs: Vec<Option<Proc>>,
    free_procs: Vec<u32>,
    pids: HashMap<Pid, u32, BuildHasherDefault<PidHasher>>,
    totals: Stats,
    scratch: Vec<u32>,
    observer: Option<Observer>,
}

impl EventTable {
    /// A table with the default [`Config`], keyed by `seed`.
    pub fn new(seed: Seed) -> Self {
        Self::with_config(seed, Config::default())
    }

    /// A table with `config`, keyed by `seed`. Allocates nothing until used.
    pub fn with_config(seed: Seed, config: Config) -> Self {
        EventTable {
            cipher: IdCipher::new(seed),
            config,
            slots: Vec::new(),
            free_head: NONE,
            live: 0,
            procs: Vec::new(),
            free_procs: Vec::new(),
            pids: HashMap::default(),
            totals: Stats::default(),
            scratch: Vec::new(),
            observer: None,
        }
    }

    /// Tells `observer` of every event created, completed, cancelled and retired, every
    /// block, wake and process exit from now on (`None`: nobody).
    pub fn set_observer(&mut self, observer: Option<Observer>) {
        self.observer = observer;
    }

    #[inline]
    fn observe(&self, what: Happened, pid: Pid, word: u64) {
        if let Some(observer) = self.observer {
            observer(what, pid, word);
        }
    }

    /// The `n`th id that no event of this table ever has: the kernel tags requests it
    /// makes on its own behalf with these (its trace's RPCs), so that they can never be
    /// mistaken for a process's event. Distinct for distinct `n`; completing or retiring
    /// one answers [`Status::UnknownEvent`].
    pub fn foreign_id(&self, n: u32) -> EventId {
        // Slot NONE is never allocated (the slab stops short of it), so no event's
        // `(generation, slot)` encrypts to these.
        EventId(self.cipher.encrypt((u64::from(n) << 32) | u64::from(NONE)))
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    // ----- ids and lookups -----

    fn id_of(&self, slot: u32) -> EventId {
        let generation = self.slots[slot as usize].generation;
        EventId(
            self.cipher
                .encrypt((u64::from(generation) << 32) | u64::from(slot)),
        )
    }

    /// The slot of a live event, or [`Status::UnknownEvent`].
    #[inline]
    fn slot_of(&self, id: EventId) -> Result<u32, Status> {
        if id.is_null() {
            return Err(Status::UnknownEvent);
        }
        let plain = self.cipher.decrypt(id.0);
        let (generation, slot) = ((plain >> 32) as u32, plain as u32);
        match self.slots.get(slot as usize) {
            Some(s) if s.generation == generation && !matches!(s.state, State::Free) => Ok(slot),
            _ => Err(Status::UnknownEvent),
        }
    }

    /// The slot of a live event owned by `pid`.
    fn owned_slot(&self, pid: Pid, id: EventId) -> Result<u32, Status> {
        let slot = self.slot_of(id)?;
        match &self.procs[self.slots[slot as usize].owner as usize] {
            Some(p) if p.pid == pid => Ok(slot),
            _ => Err(Status::NotOwner),
        }
    }

    fn proc_index(&mut self, pid: Pid) -> u32 {
        if let Some(&i) = self.pids.get(&pid) {
            return i;
        }
        let p = Proc::new(pid, self.config.default_quota);
        let i = match self.free_procs.pop() {
            Some(i) => {
                self.procs[i as usize] = Some(p);
                i
            }
            None => {
                self.procs.push(Some(p));
                (self.procs.len() - 1) as u32
            }
        };
        self.pids.insert(pid, i);
        i
    }

    fn proc_mut(&mut self, index: u32) -> &mut Proc {
        // Invariant: every live slot's owner and every index in `pids` names a live entry.
        self.procs[index as usize]
            .as_mut()
            .expect("event table invariant: owner index names a live process")
    }

    // ----- kernel side -----

    /// Creates an event for `pid` that will complete with a value of kind `kind`.
    ///
    /// Errors: [`Status::QuotaExceeded`], [`Status::TableFull`].
    pub fn create(&mut self, pid: Pid, kind: ValueKind) -> Result<EventId, Status> {
        let owner = self.proc_index(pid);
        let p = self.proc_mut(owner);
        if p.events >= p.quota.max_events {
            return Err(Status::QuotaExceeded);
        }
        if self.live >= self.config.capacity {
            return Err(Status::TableFull);
        }
        let (slot, id) = self.allocate()?;
        let tail = self.proc_mut(owner).tail;
        let s = &mut self.slots[slot as usize];
        s.state = State::Pending;
        s.owner = owner;
        s.prev = tail;
        s.next = NONE;
        s.leaf = NONE;
        s.kind = kind;
        if tail != NONE {
            self.slots[tail as usize].next = slot;
        }
        let p = self.proc_mut(owner);
        if p.head == NONE {
            p.head = slot;
        }
        p.tail = slot;
        p.events += 1;
        p.stats.created += 1;
        self.totals.created += 1;
        self.live += 1;
        self.observe(Happened::Created, pid, id.0);
        Ok(id)
    }

    /// Takes a free slot (or grows the slab) and returns it with its id, which is never 0.
    fn allocate(&mut self) -> Result<(u32, EventId), Status> {
        loop {
            let slot = if self.free_head != NONE {
                let slot = self.free_head;
                self.free_head = self.slots[slot as usize].next;
                slot
            } else {
                let len = self.slots.len();
                if len >= NONE as usize {
                    return Err(Status::TableFull);
                }
                if len == self.slots.capacity() {
                    // Grow by half rather than double: at most a third of the slab is ever
                    // unused capacity, which keeps bytes per outstanding event low.
                    let cap = self.config.capacity as usize;
                    let extra = (len / 2).max(16).min(cap.saturating_sub(len).max(1));
                    self.slots.reserve_exact(extra);
                }
                self.slots.push(Slot {
                    state: State::Free,
                    generation: 0,
                    owner: NONE,
                    prev: NONE,
                    next: NONE,
                    leaf: NONE,
                    kind: ValueKind::Empty,
                });
                len as u32
            };
            // Skip generations whose id would be the null id (probability 2^-64 each).
            loop {
                let id = self.id_of(slot);
                if !id.is_null() {
                    return Ok((slot, id));
                }
                let s = &mut self.slots[slot as usize];
                if s.generation == u32::MAX {
                    break; // slot exhausted: leave it out of the free list for good
                }
                s.generation += 1;
            }
        }
    }

    /// Completes `id` with `status` and `value` and propagates up its wait tree.
    /// Returns the wake, if this completed the root of the owner's tree.
    ///
    /// A completion for a cancelled event is ignored (`Ok(None)`).
    /// Errors: [`Status::UnknownEvent`], [`Status::AlreadyComplete`],
    /// [`Status::WrongValueKind`] (the value must be of the kind given at creation, or
    /// [`Value::Empty`] with a status other than [`Status::Ok`]).
    pub fn complete(
        &mut self,
        id: EventId,
        status: Status,
        value: Value,
    ) -> Result<Option<Wake>, Status> {
        let slot = self.slot_of(id)?;
        let s = &mut self.slots[slot as usize];
        match s.state {
            State::Pending => {
                if !value.fits(s.kind, status.is_ok()) {
                    return Err(Status::WrongValueKind);
                }
                s.state = State::Complete { status, value };
                let owner = s.owner;
                let p = self.proc_mut(owner);
                p.stats.completed += 1;
                let pid = p.pid;
                self.totals.completed += 1;
                self.observe(Happened::Completed, pid, id.0);
                Ok(self.resolve(slot))
            }
            State::Complete { .. } => Err(Status::AlreadyComplete),
            State::Cancelled => {
                let owner = s.owner;
                self.proc_mut(owner).stats.ignored += 1;
                self.totals.ignored += 1;
                Ok(None)
            }
            State::Free => Err(Status::UnknownEvent),
        }
    }

    /// Counts the leaf of `slot` (if it is one) in its owner's tree; wakes the owner if that
    /// completed the root.
    #[inline]
    fn resolve(&mut self, slot: u32) -> Option<Wake> {
        let s = &self.slots[slot as usize];
        if s.leaf == NONE {
            return None;
        }
        let (owner, leaf) = (s.owner, s.leaf);
        if !self.proc_mut(owner).tree.resolve(leaf) {
            return None;
        }
        let completed = self.proc_mut(owner).tree.done_leaves();
        self.remove_tree(owner);
        let p = self.proc_mut(owner);
        p.stats.wakes += 1;
        let pid = p.pid;
        self.totals.wakes += 1;
        self.observe(Happened::Woken, pid, completed.len() as u64);
        Some(Wake { pid, completed })
    }

    /// Uninstalls the tree of process `owner` and releases its leaves.
    fn remove_tree(&mut self, owner: u32) {
        let Some(p) = self.procs[owner as usize].as_mut() else {
            return;
        };
        for leaf in &p.tree.leaves {
            if leaf.slot != NONE {
                self.slots[leaf.slot as usize].leaf = NONE;
            }
        }
        p.tree.leaves.clear();
        p.blocked = false;
    }

    /// Attributes `count` coalesced occurrences of deferred work to `pid` (the kernel knows
    /// which process a source serves), so they show in that process's and the total
    /// [`Stats::coalesced`].
    pub fn note_coalesced(&mut self, pid: Pid, count: u64) {
        let i = self.proc_index(pid);
        self.proc_mut(i).stats.coalesced += count;
        self.totals.coalesced += count;
    }

    /// Sets the quota of `pid`. Lowering it below what the process holds frees nothing; it
    /// only stops new events and larger trees.
    pub fn set_quota(&mut self, pid: Pid, quota: Quota) {
        let i = self.proc_index(pid);
        self.proc_mut(i).quota = quota;
    }

    /// The quota of `pid`.
    pub fn quota(&self, pid: Pid) -> Quota {
        self.proc(pid)
            .map_or(self.config.default_quota, |p| p.quota)
    }

    /// Frees everything `pid` holds: its tree and all its events (counted as
    /// [`Stats::discarded`]), and forgets the process. Later completions of its events get
    /// [`Status::UnknownEvent`]; their ids stay dead. Returns the process's final counters
    /// (zero for a pid the table never saw).
    pub fn exit(&mut self, pid: Pid) -> Stats {
        let Some(owner) = self.pids.remove(&pid) else {
            return Stats::default();
        };
        self.remove_tree(owner);
        let mut slot = self.proc_mut(owner).head;
        let mut discarded = 0u64;
        while slot != NONE {
            let next = self.slots[slot as usize].next;
            self.free_slot(slot);
            discarded += 1;
            slot = next;
        }
        let mut p = self.procs[owner as usize]
            .take()
            .expect("event table invariant: pid map names a live process");
        self.free_procs.push(owner);
        p.stats.discarded += discarded;
        self.totals.discarded += discarded;
        self.observe(Happened::Exited, pid, discarded);
        p.stats
    }

    /// Returns `slot` to the free list, bumping its generation so its id dies.
    fn free_slot(&mut self, slot: u32) {
        self.live -= 1;
        let s = &mut self.slots[slot as usize];
        s.state = State::Free;
        s.leaf = NONE;
        s.owner = NONE;
        s.prev = NONE;
        if s.generation == u32::MAX {
            // Every id of this slot has been used: retire the slot itself.
            s.next = NONE;
            return;
        }
        s.generation += 1;
        s.next = self.free_head;
        self.free_head = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (owner, prev, next) = {
            let s = &self.slots[slot as usize];
            (s.owner, s.prev, s.next)
        };
        if prev != NONE {
            self.slots[prev as usize].next = next;
        }
        if next != NONE {
            self.slots[next as usize].prev = prev;
        }
        let p = self.proc_mut(owner);
        if p.head == slot {
            p.head = next;
        }
        if p.tail == slot {
            p.tail = prev;
        }
        p.events -= 1;
    }

    // ----- process side -----

    /// Retires `id` for `pid`: hands back its status and value and frees it for good.
    /// A cancelled event retires with [`Status::Cancelled`] and [`Value::Empty`].
    ///
    /// Errors: [`Status::UnknownEvent`] (including an id already retired),
    /// [`Status::NotOwner`], [`Status::NotComplete`].
    pub fn retire(&mut self, pid: Pid, id: EventId) -> Result<Retired, Status> {
        let slot = self.owned_slot(pid, id)?;
        let s = &mut self.slots[slot as usize];
        let retired = match core::mem::replace(&mut s.state, State::Free) {
            State::Complete { status, value } => Retired { status, value },
            State::Cancelled => Retired {
                status: Status::Cancelled,
                value: Value::Empty,
            },
            other => {
                s.state = other;
                return Err(Status::NotComplete);
            }
        };
        let (owner, leaf) = (s.owner, s.leaf);
        if leaf != NONE {
            // Still a (done) leaf of the installed tree: detach so the tree never touches
            // the slot again once it is reused.
            if let Some(l) = self.proc_mut(owner).tree.leaves.get_mut(leaf as usize) {
                l.slot = NONE;
            }
        }
        self.unlink(slot);
        self.free_slot(slot);
        self.proc_mut(owner).stats.retired += 1;
        self.totals.retired += 1;
        self.observe(Happened::Retired, pid, id.0);
        Ok(retired)
    }

    /// Cancels `id` for `pid`. The event counts as done in a wait tree, so this may wake the
    /// process's own installed tree.
    ///
    /// Errors: [`Status::UnknownEvent`], [`Status::NotOwner`], [`Status::AlreadyComplete`]
    /// (too late: retire it), [`Status::Cancelled`] (already cancelled).
    pub fn cancel(&mut self, pid: Pid, id: EventId) -> Result<Option<Wake>, Status> {
        let slot = self.owned_slot(pid, id)?;
        let s = &mut self.slots[slot as usize];
        match s.state {
            State::Pending => {
                s.state = State::Cancelled;
                let owner = s.owner;
                self.proc_mut(owner).stats.cancelled += 1;
                self.totals.cancelled += 1;
                self.observe(Happened::Cancelled, pid, id.0);
                Ok(self.resolve(slot))
            }
            State::Complete { .. } => Err(Status::AlreadyComplete),
            State::Cancelled => Err(Status::Cancelled),
            State::Free => Err(Status::UnknownEvent),
        }
    }

    /// How many bytes retiring `id` would hand back (0 for a value that
    /// is not bytes), so a caller can size its buffer first and nothing is
    /// lost to a buffer too small.
    ///
    /// Errors: as [`EventTable::retire`].
    pub fn value_len(&self, pid: Pid, id: EventId) -> Result<usize, Status> {
        let slot = self.owned_slot(pid, id)?;
        match &self.slots[slot as usize].state {
            State::Complete {
                value: Value::Bytes(b),
                ..
            } => Ok(b.len()),
            State::Complete { .. } | State::Cancelled => Ok(0),
            State::Pending => Err(Status::NotComplete),
            State::Free => Err(Status::UnknownEvent),
        }
    }

    /// The state of `id`, for `pid`.
    ///
    /// Errors: [`Status::UnknownEvent`], [`Status::NotOwner`].
    pub fn state(&self, pid: Pid, id: EventId) -> Result<EventState, Status> {
        let slot = self.owned_slot(pid, id)?;
        Ok(match self.slots[slot as usize].state {
            State::Pending => EventState::Pending,
            State::Complete { .. } => EventState::Complete,
            State::Cancelled => EventState::Cancelled,
            State::Free => return Err(Status::UnknownEvent),
        })
    }

    /// Blocks `pid` on the wait tree `spec` (see [`crate::tree`] for the format).
    ///
    /// Leaves already complete (or cancelled) count at once: if that satisfies the root the
    /// process keeps running ([`Blocked::Satisfied`]) and nothing is installed. Otherwise
    /// the tree is installed and a later completion returns the [`Wake`].
    ///
    /// Errors, in the order checked: [`Status::TreeTooLarge`] (the process's quota); every
    /// structural status of [`validate`](crate::validate); for each leaf in order
    /// [`Status::UnknownEvent`], [`Status::NotOwner`], [`Status::EventInAnotherTree`];
    /// then [`Status::SecondTree`]. On error nothing changes.
    pub fn block(&mut self, pid: Pid, spec: &[Element]) -> Result<Blocked, Status> {
        let quota = self.quota(pid);
        if spec.len() > quota.max_tree_elements as usize {
            return Err(Status::TreeTooLarge);
        }
        let shape = validate_with(spec, quota.max_tree_elements as usize, &mut self.scratch)?;
        // The validator is done with the scratch buffer; reuse it for the leaves' slots.
        self.scratch.clear();
        for e in &spec[..shape.leaves] {
            let slot = self.owned_slot(pid, e.event_id)?;
            if self.slots[slot as usize].leaf != NONE {
                return Err(Status::EventInAnotherTree);
            }
            self.scratch.push(slot);
        }
        // Owning a leaf means the process has an entry.
        let owner = *self.pids.get(&pid).ok_or(Status::UnknownEvent)?;
        let p = self.procs[owner as usize]
            .as_mut()
            .ok_or(Status::UnknownEvent)?;
        if p.blocked {
            return Err(Status::SecondTree);
        }
        p.tree.load(spec, shape);
        p.blocked = true;
        for (i, (&slot, leaf)) in self
            .scratch
            .iter()
            .zip(p.tree.leaves.iter_mut())
            .enumerate()
        {
            self.slots[slot as usize].leaf = i as u32;
            leaf.slot = slot;
        }
        let mut satisfied = false;
        for i in 0..shape.leaves {
            let slot = p.tree.leaves[i].slot;
            if !matches!(self.slots[slot as usize].state, State::Pending) {
                satisfied |= p.tree.resolve(i as u32);
            }
        }
        let flag = if satisfied { BLOCKED_SATISFIED } else { 0 };
        self.observe(Happened::Blocked, pid, shape.leaves as u64 | flag);
        if !satisfied {
            return Ok(Blocked::Waiting);
        }
        // Not a wake: the process never slept, so no context switch is owed.
        let completed = self.proc_mut(owner).tree.done_leaves();
        self.remove_tree(owner);
        Ok(Blocked::Satisfied(completed))
    }

    /// Removes `pid`'s installed tree without waking it (the wait was cancelled).
    ///
    /// Errors: [`Status::NotBlocked`].
    pub fn unblock(&mut self, pid: Pid) -> Result<(), Status> {
        let owner = *self.pids.get(&pid).ok_or(Status::NotBlocked)?;
        if !self.proc_mut(owner).blocked {
            return Err(Status::NotBlocked);
        }
        self.remove_tree(owner);
        Ok(())
    }

    /// Whether `pid` has an installed wait tree.
    pub fn is_blocked(&self, pid: Pid) -> bool {
        self.proc(pid).is_some_and(|p| p.blocked)
    }

    /// `pid`'s events by state, in creation order (empty for an unknown pid).
    pub fn list(&self, pid: Pid) -> Listing {
        let mut out = Listing::default();
        let Some(p) = self.proc(pid) else {
            return out;
        };
        let mut slot = p.head;
        while slot != NONE {
            let s = &self.slots[slot as usize];
            let id = self.id_of(slot);
            match s.state {
                State::Pending => out.pending.push(id),
                State::Complete { .. } => out.completed.push(id),
                State::Cancelled => out.cancelled.push(id),
                State::Free => {}
            }
            slot = s.next;
        }
        out
    }

    // ----- accounting -----

    fn proc(&self, pid: Pid) -> Option<&Proc> {
        let &i = self.pids.get(&pid)?;
        self.procs[i as usize].as_ref()
    }

    /// Counters of `pid` (`None` for a pid the table does not know).
    pub fn stats(&self, pid: Pid) -> Option<Stats> {
        self.proc(pid).map(|p| p.stats)
    }

    /// Counters over all processes, exited ones included.
    pub fn totals(&self) -> Stats {
        self.totals
    }

    /// Events in the table now.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    /// Whether the table holds no event.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Heap bytes the table holds (slab, process entries, pid map, trees, scratch), from
    /// capacities; an estimate for the pid map, whose layout is hashbrown's.
    pub fn heap_bytes(&self) -> usize {
        use core::mem::size_of;
        self.slots.capacity() * size_of::<Slot>()
            + self.procs.capacity() * size_of::<Option<Proc>>()
            + self
                .procs
                .iter()
                .flatten()
                .map(|p| p.tree.heap_bytes())
                .sum::<usize>()
            + self.free_procs.capacity() * size_of::<u32>()
            + self.pids.capacity() * (size_of::<(Pid, u32)>() + 1)
            + self.scratch.capacity() * size_of::<u32>()
    }

    /// Size of one slot, for accounting.
    pub const SLOT_BYTES: usize = core::mem::size_of::<Slot>();
}
