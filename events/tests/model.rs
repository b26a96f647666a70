//! Property tests: the event table against a small reference model.
//!
//! The model is written the obvious way (hash maps, trees kept as Rust values and evaluated
//! recursively from scratch on every change) and predicts the result of every operation,
//! error statuses included. Random operation sequences mix creation, completion in random
//! order, cancels, retires, blocks on random trees (including foreign, dead and duplicated
//! leaves), unblocks, exits and quota changes. Checked after every step:
//!
//! * every result equals the model's prediction;
//! * a process wakes exactly when the root of its tree completes, and exactly once per
//!   block that returned `Waiting` (tracked separately from the model);
//! * each event retires at most once (retiring again is `UnknownEvent`);
//! * ids are never 0 and never repeat;
//! * counters match the model per process and in total, and
//!   `created == retired + discarded + outstanding`.

use std::collections::{BTreeSet, HashMap, HashSet};

use events::{
    Blocked, Config, EventId, EventState, EventTable, Listing, Pid, Quota, Retired, Seed, Stats,
    Status, Tree, Value, ValueKind, Wake,
};
use proptest::prelude::*;

const PIDS: u32 = 3;
const CONFIG: Config = Config {
    capacity: 14,
    default_quota: Quota {
        max_events: 8,
        max_tree_elements: 12,
    },
};

#[derive(Clone, Debug)]
enum Shape {
    Leaf { pick: usize, foreign: bool },
    Node { k: u32, children: Vec<Shape> },
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        pid: u32,
        kind: u8,
    },
    Complete {
        pick: usize,
        ok: bool,
        value: u8,
    },
    CompleteRaw {
        raw: u64,
    },
    Cancel {
        pick: usize,
        as_owner: bool,
        pid: u32,
    },
    Retire {
        pick: usize,
        as_owner: bool,
        pid: u32,
    },
    Block {
        pid: u32,
        shape: Shape,
    },
    Unblock {
        pid: u32,
    },
    Exit {
        pid: u32,
    },
    SetQuota {
        pid: u32,
        max_events: u32,
        max_tree: u32,
    },
    Coalesce {
        pid: u32,
        n: u64,
    },
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = (any::<usize>(), prop::bool::weighted(0.1))
        .prop_map(|(pick, foreign)| Shape::Leaf { pick, foreign });
    leaf.prop_recursive(3, 24, 4, |inner| {
        (prop::collection::vec(inner, 1..5), any::<u32>()).prop_map(|(children, k)| {
            let k = 1 + k % children.len() as u32;
            Shape::Node { k, children }
        })
    })
}

fn op() -> impl Strategy<Value = Op> {
    let pid = 0..PIDS;
    prop_oneof![
        6 => (pid.clone(), 0u8..4).prop_map(|(pid, kind)| Op::Create { pid, kind }),
        6 => (any::<usize>(), prop::bool::weighted(0.8), 0u8..5)
            .prop_map(|(pick, ok, value)| Op::Complete { pick, ok, value }),
        1 => any::<u64>().prop_map(|raw| Op::CompleteRaw { raw }),
        2 => (any::<usize>(), prop::bool::weighted(0.8), pid.clone())
            .prop_map(|(pick, as_owner, pid)| Op::Cancel { pick, as_owner, pid }),
        5 => (any::<usize>(), prop::bool::weighted(0.8), pid.clone())
            .prop_map(|(pick, as_owner, pid)| Op::Retire { pick, as_owner, pid }),
        4 => (pid.clone(), shape()).prop_map(|(pid, shape)| Op::Block { pid, shape }),
        1 => pid.clone().prop_map(|pid| Op::Unblock { pid }),
        1 => pid.clone().prop_map(|pid| Op::Exit { pid }),
        1 => (pid.clone(), 0u32..10, 1u32..20)
            .prop_map(|(pid, max_events, max_tree)| Op::SetQuota { pid, max_events, max_tree }),
        1 => (pid, 0u64..4).prop_map(|(pid, n)| Op::Coalesce { pid, n }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum MState {
    Pending,
    Complete(Status, Value),
    Cancelled,
}

#[derive(Debug)]
struct MEvent {
    owner: Pid,
    kind: ValueKind,
    state: MState,
}

#[derive(Debug)]
struct MTree {
    tree: Tree,
    leaves: BTreeSet<EventId>,
    done: BTreeSet<EventId>,
}

fn eval(t: &Tree, done: &BTreeSet<EventId>) -> bool {
    match t {
        Tree::Event(id) => done.contains(id),
        Tree::Node { count, children } => {
            children.iter().filter(|c| eval(c, done)).count() >= *count as usize
        }
    }
}

#[derive(Default, Debug)]
struct Model {
    events: HashMap<EventId, MEvent>,
    order: HashMap<Pid, Vec<EventId>>,
    trees: HashMap<Pid, MTree>,
    quotas: HashMap<Pid, Quota>,
    stats: HashMap<Pid, Stats>,
    totals: Stats,
    all_ids: Vec<EventId>,
}

impl Model {
    fn touch(&mut self, pid: Pid) {
        self.stats.entry(pid).or_default();
        self.quotas.entry(pid).or_insert(CONFIG.default_quota);
        self.order.entry(pid).or_default();
    }

    fn pick(&self, pick: usize) -> EventId {
        if self.all_ids.is_empty() {
            EventId(0x5555)
        } else {
            self.all_ids[pick % self.all_ids.len()]
        }
    }

    fn quota(&self, pid: Pid) -> Quota {
        self.quotas
            .get(&pid)
            .copied()
            .unwrap_or(CONFIG.default_quota)
    }

    fn build(&self, pid: Pid, s: &Shape) -> Tree {
        match s {
            Shape::Leaf { pick, foreign } => {
                let own = self.order.get(&pid).filter(|o| !o.is_empty());
                match own {
                    Some(o) if !foreign => Tree::event(o[pick % o.len()]),
                    _ => Tree::event(self.pick(*pick)),
                }
            }
            Shape::Node { k, children } => {
                Tree::at_least(*k, children.iter().map(|c| self.build(pid, c)))
            }
        }
    }

    /// Marks `id` done in its owner's tree; returns the wake if the root completed.
    fn resolve(&mut self, id: EventId) -> Option<Wake> {
        let owner = self.events[&id].owner;
        let t = self.trees.get_mut(&owner)?;
        if !t.leaves.contains(&id) {
            return None;
        }
        t.done.insert(id);
        if !eval(&t.tree, &t.done) {
            return None;
        }
        let t = self.trees.remove(&owner).unwrap();
        self.stats.get_mut(&owner).unwrap().wakes += 1;
        self.totals.wakes += 1;
        Some(Wake {
            pid: owner,
            completed: t.done.into_iter().collect(),
        })
    }

    fn owned(&self, pid: Pid, id: EventId) -> Result<(), Status> {
        match self.events.get(&id) {
            None => Err(Status::UnknownEvent),
            Some(e) if e.owner != pid => Err(Status::NotOwner),
            Some(_) => Ok(()),
        }
    }
}

fn value(v: u8) -> Value {
    match v {
        0 => Value::Empty,
        1 => Value::Bytes(vec![v; 3]),
        2 => Value::Fd(7),
        _ => Value::Word(42),
    }
}

fn kind(k: u8) -> ValueKind {
    [
        ValueKind::Empty,
        ValueKind::Bytes,
        ValueKind::Fd,
        ValueKind::Word,
    ][k as usize % 4]
}

struct Run {
    table: EventTable,
    model: Model,
    seen: HashSet<EventId>,
    waiting: HashSet<Pid>,
    exited: Stats,
}

impl Run {
    fn check_wake(&mut self, wake: &Option<Wake>) -> Result<(), TestCaseError> {
        if let Some(w) = wake {
            // Exactly once per block: only a waiting process can be woken.
            prop_assert!(self.waiting.remove(&w.pid), "spurious wake {:?}", w);
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let (t, m) = (&mut self.table, &mut self.model);
        match *op {
            Op::Create { pid, kind: k } => {
                let pid = Pid(pid);
                m.touch(pid);
                let held = m.order[&pid].len() as u32;
                let want = if held >= m.quota(pid).max_events {
                    Err(Status::QuotaExceeded)
                } else if m.events.len() as u32 >= CONFIG.capacity {
                    Err(Status::TableFull)
                } else {
                    Ok(())
                };
                let got = t.create(pid, kind(k));
                match (want, got) {
                    (Ok(()), Ok(id)) => {
                        prop_assert!(!id.is_null());
                        prop_assert!(self.seen.insert(id), "id {} repeated", id);
                        m.events.insert(
                            id,
                            MEvent {
                                owner: pid,
                                kind: kind(k),
                                state: MState::Pending,
                            },
                        );
                        m.order.get_mut(&pid).unwrap().push(id);
                        m.all_ids.push(id);
                        m.stats.get_mut(&pid).unwrap().created += 1;
                        m.totals.created += 1;
                    }
                    (want, got) => prop_assert_eq!(want.map(|_| ()), got.map(|_| ())),
                }
            }
            Op::Complete { pick, ok, value: v } => {
                let id = m.pick(pick);
                let status = if ok { Status::Ok } else { Status::Remote(9) };
                let val = value(v);
                let want = match m
                    .events
                    .get(&id)
                    .map(|e| (e.state.clone(), e.kind, e.owner))
                {
                    None => Err(Status::UnknownEvent),
                    Some((MState::Complete(..), _, _)) => Err(Status::AlreadyComplete),
                    Some((MState::Cancelled, _, owner)) => {
                        m.stats.get_mut(&owner).unwrap().ignored += 1;
                        m.totals.ignored += 1;
                        Ok(None)
                    }
                    Some((MState::Pending, k, owner)) => {
                        let fits = val.kind() == k || (!ok && val == Value::Empty);
                        if !fits {
                            Err(Status::WrongValueKind)
                        } else {
                            m.events.get_mut(&id).unwrap().state =
                                MState::Complete(status, val.clone());
                            m.stats.get_mut(&owner).unwrap().completed += 1;
                            m.totals.completed += 1;
                            Ok(m.resolve(id))
                        }
                    }
                };
                let got = t.complete(id, status, val);
                prop_assert_eq!(&want, &got);
                if let Ok(w) = got {
                    self.check_wake(&w)?;
                }
            }
            Op::CompleteRaw { raw } => {
                let id = EventId(raw);
                if !m.events.contains_key(&id) {
                    prop_assert_eq!(
                        t.complete(id, Status::Ok, Value::Empty),
                        Err(Status::UnknownEvent)
                    );
                }
            }
            Op::Cancel {
                pick,
                as_owner,
                pid,
            } => {
                let id = m.pick(pick);
                let pid = match (as_owner, m.events.get(&id)) {
                    (true, Some(e)) => e.owner,
                    _ => Pid(pid),
                };
                let want = m.owned(pid, id).and_then(|()| match m.events[&id].state {
                    MState::Pending => {
                        m.events.get_mut(&id).unwrap().state = MState::Cancelled;
                        m.stats.get_mut(&pid).unwrap().cancelled += 1;
                        m.totals.cancelled += 1;
                        Ok(m.resolve(id))
                    }
                    MState::Complete(..) => Err(Status::AlreadyComplete),
                    MState::Cancelled => Err(Status::Cancelled),
                });
                let got = t.cancel(pid, id);
                prop_assert_eq!(&want, &got);
                if let Ok(w) = got {
                    self.check_wake(&w)?;
                }
            }
            Op::Retire {
                pick,
                as_owner,
                pid,
            } => {
                let id = m.pick(pick);
                let pid = match (as_owner, m.events.get(&id)) {
                    (true, Some(e)) => e.owner,
                    _ => Pid(pid),
                };
                let want = m.owned(pid, id).and_then(|()| {
                    let r = match &m.events[&id].state {
                        MState::Pending => return Err(Status::NotComplete),
                        MState::Complete(s, v) => Retired {
                            status: *s,
                            value: v.clone(),
                        },
                        MState::Cancelled => Retired {
                            status: Status::Cancelled,
                            value: Value::Empty,
                        },
                    };
                    m.events.remove(&id);
                    m.order.get_mut(&pid).unwrap().retain(|&x| x != id);
                    m.stats.get_mut(&pid).unwrap().retired += 1;
                    m.totals.retired += 1;
                    Ok(r)
                });
                let got = t.retire(pid, id);
                if want.is_ok() {
                    // Each event retires at most once.
                    prop_assert_eq!(t.retire(pid, id), Err(Status::UnknownEvent));
                }
                prop_assert_eq!(want, got);
            }
            Op::Block { pid, ref shape } => {
                let pid = Pid(pid);
                let tree = m.build(pid, shape);
                let spec = match tree.to_spec() {
                    Ok(spec) => spec,
                    Err(e) => {
                        prop_assert_eq!(e, Status::LeafDuplicated);
                        return Ok(());
                    }
                };
                let leaves: BTreeSet<EventId> = spec
                    .iter()
                    .map(|e| e.event_id)
                    .filter(|id| !id.is_null())
                    .collect();
                let in_tree = |id: &EventId| m.trees.values().any(|t| t.leaves.contains(id));
                let want = if spec.len() > m.quota(pid).max_tree_elements as usize {
                    Err(Status::TreeTooLarge)
                } else if let Some(err) = leaves.iter().find_map(|&id| {
                    m.owned(pid, id)
                        .and_then(|()| {
                            if in_tree(&id) {
                                Err(Status::EventInAnotherTree)
                            } else {
                                Ok(())
                            }
                        })
                        .err()
                }) {
                    Err(err)
                } else if m.trees.contains_key(&pid) {
                    Err(Status::SecondTree)
                } else {
                    let done: BTreeSet<EventId> = leaves
                        .iter()
                        .copied()
                        .filter(|id| m.events[id].state != MState::Pending)
                        .collect();
                    if eval(&tree, &done) {
                        // Satisfied at block time: the process never slept, no wake.
                        Ok(Blocked::Satisfied(done.into_iter().collect()))
                    } else {
                        m.trees.insert(pid, MTree { tree, leaves, done });
                        Ok(Blocked::Waiting)
                    }
                };
                let got = t.block(pid, &spec);
                prop_assert_eq!(&want, &got);
                if got == Ok(Blocked::Waiting) {
                    prop_assert!(self.waiting.insert(pid));
                }
            }
            Op::Unblock { pid } => {
                let pid = Pid(pid);
                let want = match m.trees.remove(&pid) {
                    Some(_) => Ok(()),
                    None => Err(Status::NotBlocked),
                };
                prop_assert_eq!(want, t.unblock(pid));
                self.waiting.remove(&pid);
            }
            Op::Exit { pid } => {
                let pid = Pid(pid);
                m.trees.remove(&pid);
                self.waiting.remove(&pid);
                let mut want = m.stats.remove(&pid).unwrap_or_default();
                m.quotas.remove(&pid);
                let ids = m.order.remove(&pid).unwrap_or_default();
                for id in &ids {
                    m.events.remove(id);
                }
                want.discarded += ids.len() as u64;
                m.totals.discarded += ids.len() as u64;
                let got = t.exit(pid);
                prop_assert_eq!(want, got);
                self.exited += got;
                for id in ids {
                    prop_assert_eq!(t.state(pid, id), Err(Status::UnknownEvent));
                }
            }
            Op::SetQuota {
                pid,
                max_events,
                max_tree,
            } => {
                let pid = Pid(pid);
                let q = Quota {
                    max_events,
                    max_tree_elements: max_tree,
                };
                m.touch(pid);
                m.quotas.insert(pid, q);
                t.set_quota(pid, q);
                prop_assert_eq!(t.quota(pid), q);
            }
            Op::Coalesce { pid, n } => {
                let pid = Pid(pid);
                m.touch(pid);
                m.stats.get_mut(&pid).unwrap().coalesced += n;
                m.totals.coalesced += n;
                t.note_coalesced(pid, n);
            }
        }
        self.check_books()
    }

    fn check_books(&self) -> Result<(), TestCaseError> {
        let (t, m) = (&self.table, &self.model);
        prop_assert_eq!(t.totals(), m.totals);
        prop_assert_eq!(t.len(), m.events.len());
        prop_assert_eq!(t.totals().outstanding() as usize, t.len());
        let mut sum = self.exited;
        for p in 0..PIDS {
            let pid = Pid(p);
            prop_assert_eq!(t.stats(pid), m.stats.get(&pid).copied());
            if let Some(s) = t.stats(pid) {
                sum += s;
            }
            prop_assert_eq!(t.is_blocked(pid), m.trees.contains_key(&pid));
            prop_assert_eq!(t.is_blocked(pid), self.waiting.contains(&pid));
            let mut want = Listing::default();
            for id in m.order.get(&pid).into_iter().flatten() {
                match m.events[id].state {
                    MState::Pending => want.pending.push(*id),
                    MState::Complete(..) => want.completed.push(*id),
                    MState::Cancelled => want.cancelled.push(*id),
                }
                let state = match m.events[id].state {
                    MState::Pending => EventState::Pending,
                    MState::Complete(..) => EventState::Complete,
                    MState::Cancelled => EventState::Cancelled,
                };
                prop_assert_eq!(t.state(pid, *id), Ok(state));
            }
            prop_assert_eq!(t.list(pid), want);
        }
        prop_assert_eq!(sum, t.totals());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn table_matches_the_reference_model(ops in prop::collection::vec(op(), 1..120), seed in any::<[u64; 2]>()) {
        let mut run = Run {
            table: EventTable::with_config(Seed(seed), CONFIG),
            model: Model::default(),
            seen: HashSet::new(),
            waiting: HashSet::new(),
            exited: Stats::default(),
        };
        for op in &ops {
            run.step(op)?;
        }
        // Drain: complete everything still pending; every waiting process must wake.
        let pending: Vec<EventId> = run
            .model
            .all_ids
            .iter()
            .copied()
            .filter(|id| run.model.events.get(id).is_some_and(|e| e.state == MState::Pending))
            .collect();
        for id in pending {
            let k = run.model.events[&id].kind;
            let v = match k {
                ValueKind::Empty => 0,
                ValueKind::Bytes => 1,
                ValueKind::Fd => 2,
                ValueKind::Word => 3,
            };
            run.step(&Op::Complete { pick: run.model.all_ids.iter().position(|&x| x == id).unwrap(), ok: true, value: v })?;
        }
        prop_assert!(run.waiting.is_empty(), "never woken: {:?}", run.waiting);
    }
}
