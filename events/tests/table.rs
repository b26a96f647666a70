//! The event table's rules, one test per rule, through the public API.

use std::collections::HashSet;

use events::{
    Blocked, Config, Element, EventId, EventState, EventTable, Listing, Pid, Quota, Retired, Seed,
    Status, Tree, Value, ValueKind, Wake,
};

const SEED: Seed = Seed([0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344]);
const A: Pid = Pid(1);
const B: Pid = Pid(2);

fn table() -> EventTable {
    EventTable::new(SEED)
}

fn spec(t: Tree) -> Vec<Element> {
    t.to_spec().expect("test tree is well formed")
}

fn ok(t: &mut EventTable, id: EventId) -> Option<Wake> {
    t.complete(id, Status::Ok, Value::Empty).unwrap()
}

#[test]
fn create_complete_retire_hands_back_status_and_value() {
    let mut t = table();
    let id = t.create(A, ValueKind::Bytes).unwrap();
    assert!(!id.is_null());
    assert_eq!(t.state(A, id), Ok(EventState::Pending));
    assert_eq!(t.retire(A, id), Err(Status::NotComplete));
    assert_eq!(
        t.complete(id, Status::Ok, Value::Bytes(b"hello".to_vec())),
        Ok(None)
    );
    assert_eq!(t.state(A, id), Ok(EventState::Complete));
    assert_eq!(
        t.retire(A, id),
        Ok(Retired {
            status: Status::Ok,
            value: Value::Bytes(b"hello".to_vec())
        })
    );
    // A retired id stays dead.
    assert_eq!(t.retire(A, id), Err(Status::UnknownEvent));
    assert_eq!(t.state(A, id), Err(Status::UnknownEvent));
    assert_eq!(
        t.complete(id, Status::Ok, Value::Empty),
        Err(Status::UnknownEvent)
    );
    assert!(t.is_empty());
}

#[test]
fn values_must_match_the_kind_recorded_at_creation() {
    let mut t = table();
    let fd = t.create(A, ValueKind::Fd).unwrap();
    assert_eq!(
        t.complete(fd, Status::Ok, Value::Word(3)),
        Err(Status::WrongValueKind)
    );
    assert_eq!(
        t.complete(fd, Status::Ok, Value::Empty),
        Err(Status::WrongValueKind)
    );
    // The failed completions changed nothing.
    assert_eq!(t.state(A, fd), Ok(EventState::Pending));
    assert_eq!(t.complete(fd, Status::Ok, Value::Fd(3)), Ok(None));
    assert_eq!(t.retire(A, fd).unwrap().value, Value::Fd(3));

    // A failure may carry nothing, and the remote status passes through.
    let read = t.create(A, ValueKind::Bytes).unwrap();
    assert_eq!(t.complete(read, Status::Remote(2), Value::Empty), Ok(None));
    assert_eq!(
        t.retire(A, read),
        Ok(Retired {
            status: Status::Remote(2),
            value: Value::Empty
        })
    );
    let w = t.create(A, ValueKind::Word).unwrap();
    assert_eq!(t.complete(w, Status::Ok, Value::Word(u64::MAX)), Ok(None));
    assert_eq!(t.retire(A, w).unwrap().value, Value::Word(u64::MAX));
}

#[test]
fn completing_twice_or_unknown_ids_is_reported() {
    let mut t = table();
    let id = t.create(A, ValueKind::Empty).unwrap();
    assert_eq!(ok(&mut t, id), None);
    assert_eq!(
        t.complete(id, Status::Ok, Value::Empty),
        Err(Status::AlreadyComplete)
    );
    for bogus in [
        EventId::NULL,
        EventId(1),
        EventId(u64::MAX),
        EventId(id.0 ^ 1),
    ] {
        assert_eq!(
            t.complete(bogus, Status::Ok, Value::Empty),
            Err(Status::UnknownEvent),
            "{bogus}"
        );
    }
}

#[test]
fn process_side_calls_check_the_owner() {
    let mut t = table();
    let id = t.create(A, ValueKind::Empty).unwrap();
    assert_eq!(t.retire(B, id), Err(Status::NotOwner));
    assert_eq!(t.cancel(B, id), Err(Status::NotOwner));
    assert_eq!(t.state(B, id), Err(Status::NotOwner));
    assert_eq!(t.block(B, &spec(Tree::event(id))), Err(Status::NotOwner));
    assert_eq!(t.list(B), Listing::default());
    // Nothing changed for the owner.
    assert_eq!(t.state(A, id), Ok(EventState::Pending));
}

#[test]
fn cancel_ignores_later_completion_and_retires_as_cancelled() {
    let mut t = table();
    let id = t.create(A, ValueKind::Bytes).unwrap();
    assert_eq!(t.cancel(A, id), Ok(None));
    assert_eq!(t.cancel(A, id), Err(Status::Cancelled));
    assert_eq!(t.state(A, id), Ok(EventState::Cancelled));
    assert_eq!(t.complete(id, Status::Ok, Value::Bytes(vec![1])), Ok(None));
    assert_eq!(
        t.retire(A, id),
        Ok(Retired {
            status: Status::Cancelled,
            value: Value::Empty
        })
    );
    let done = t.create(A, ValueKind::Empty).unwrap();
    ok(&mut t, done);
    assert_eq!(t.cancel(A, done), Err(Status::AlreadyComplete));
    let s = t.stats(A).unwrap();
    assert_eq!((s.cancelled, s.ignored, s.completed), (1, 1, 1));
}

#[test]
fn listing_shows_pending_completed_and_cancelled_in_creation_order() {
    let mut t = table();
    let ids: Vec<EventId> = (0..5)
        .map(|_| t.create(A, ValueKind::Empty).unwrap())
        .collect();
    t.create(B, ValueKind::Empty).unwrap();
    ok(&mut t, ids[3]);
    ok(&mut t, ids[1]);
    t.cancel(A, ids[4]).unwrap();
    t.retire(A, ids[3]).unwrap();
    assert_eq!(
        t.list(A),
        Listing {
            pending: vec![ids[0], ids[2]],
            completed: vec![ids[1]],
            cancelled: vec![ids[4]],
        }
    );
    assert_eq!(t.list(Pid(99)), Listing::default());
}

#[test]
fn ids_are_unique_nonzero_and_depend_on_the_seed() {
    let mut t = table();
    let mut seen = HashSet::new();
    let mut held = Vec::new();
    // Heavy slot reuse: create and retire in waves.
    for round in 0..200 {
        for _ in 0..50 {
            let id = t.create(A, ValueKind::Empty).unwrap();
            assert!(!id.is_null());
            assert!(seen.insert(id), "id {id} repeated in round {round}");
            held.push(id);
        }
        for id in held.drain(..) {
            if round % 2 == 0 {
                t.cancel(A, id).unwrap();
            } else {
                ok(&mut t, id);
            }
            t.retire(A, id).unwrap();
        }
    }
    let mut other = EventTable::new(Seed([1, 2]));
    let first_other = other.create(A, ValueKind::Empty).unwrap();
    let mut again = table();
    let first_again = again.create(A, ValueKind::Empty).unwrap();
    assert!(seen.contains(&first_again), "same seed, same first id");
    assert!(!seen.contains(&first_other), "another seed gives other ids");
}

#[test]
fn quotas_and_capacity_give_named_statuses() {
    let mut t = EventTable::with_config(
        SEED,
        Config {
            capacity: 4,
            default_quota: Quota {
                max_events: 3,
                max_tree_elements: 3,
            },
        },
    );
    let a: Vec<EventId> = (0..3)
        .map(|_| t.create(A, ValueKind::Empty).unwrap())
        .collect();
    assert_eq!(t.create(A, ValueKind::Empty), Err(Status::QuotaExceeded));
    t.create(B, ValueKind::Empty).unwrap();
    assert_eq!(t.create(B, ValueKind::Empty), Err(Status::TableFull));
    // Retiring frees quota and capacity; cancelling alone does not.
    t.cancel(A, a[0]).unwrap();
    assert_eq!(t.create(A, ValueKind::Empty), Err(Status::QuotaExceeded));
    t.retire(A, a[0]).unwrap();
    let a3 = t.create(A, ValueKind::Empty).unwrap();

    // Tree size: 3 leaves + root = 4 elements > 3.
    let big = spec(Tree::all([a[1], a[2], a3]));
    assert_eq!(t.block(A, &big), Err(Status::TreeTooLarge));
    t.set_quota(
        A,
        Quota {
            max_events: 10,
            max_tree_elements: 4,
        },
    );
    assert_eq!(t.quota(A).max_events, 10);
    assert_eq!(t.block(A, &big), Ok(Blocked::Waiting));
    assert_eq!(t.quota(B).max_events, 3);
}

#[test]
fn blocking_on_a_satisfied_tree_returns_at_once_with_the_completed_leaves() {
    let mut t = table();
    let [x, y, z] = [0; 3].map(|_| t.create(A, ValueKind::Empty).unwrap());
    ok(&mut t, y);
    t.cancel(A, z).unwrap();
    let mut leaves = vec![y, z];
    leaves.sort();
    assert_eq!(
        t.block(A, &spec(Tree::at_least(2, [x, y, z]))),
        Ok(Blocked::Satisfied(leaves))
    );
    assert!(!t.is_blocked(A));
    // Nothing stayed installed: x can be waited on again.
    assert_eq!(t.block(A, &spec(Tree::any([x]))), Ok(Blocked::Waiting));
    // Satisfied at block time is not a wake: the process never slept.
    assert_eq!(t.stats(A).unwrap().wakes, 0);
}

#[test]
fn a_process_wakes_once_when_its_root_completes_with_the_completed_leaves() {
    let mut t = table();
    let [a, b, c, d] = [0; 4].map(|_| t.create(A, ValueKind::Empty).unwrap());
    // a AND (b OR c) AND d
    let s = spec(Tree::all([
        Tree::event(a),
        Tree::any([b, c]),
        Tree::event(d),
    ]));
    assert_eq!(t.block(A, &s), Ok(Blocked::Waiting));
    assert!(t.is_blocked(A));
    assert_eq!(ok(&mut t, c), None);
    assert_eq!(ok(&mut t, b), None); // the OR was already satisfied
    assert_eq!(ok(&mut t, a), None);
    let wake = ok(&mut t, d).expect("root complete");
    let mut want = vec![a, b, c, d];
    want.sort();
    assert_eq!(
        wake,
        Wake {
            pid: A,
            completed: want
        }
    );
    assert!(!t.is_blocked(A));
    assert_eq!(t.stats(A).unwrap().wakes, 1);
    // The tree is gone: the same events may be blocked on again (and are satisfied).
    assert!(matches!(t.block(A, &s), Ok(Blocked::Satisfied(_))));
}

#[test]
fn threshold_wake_reports_only_what_completed() {
    let mut t = table();
    let ids = [0; 5].map(|_| t.create(A, ValueKind::Empty).unwrap());
    t.block(A, &spec(Tree::at_least(3, ids))).unwrap();
    assert_eq!(ok(&mut t, ids[4]), None);
    assert_eq!(ok(&mut t, ids[0]), None);
    let wake = ok(&mut t, ids[2]).unwrap();
    let mut want = vec![ids[0], ids[2], ids[4]];
    want.sort();
    assert_eq!(wake.completed, want);
    // Later completions of the other leaves wake nobody.
    assert_eq!(ok(&mut t, ids[1]), None);
    assert_eq!(ok(&mut t, ids[3]), None);
}

#[test]
fn cancelling_a_leaf_counts_it_and_can_wake() {
    let mut t = table();
    let [a, b] = [0; 2].map(|_| t.create(A, ValueKind::Empty).unwrap());
    t.block(A, &spec(Tree::any([a, b]))).unwrap();
    let wake = t.cancel(A, b).unwrap().expect("OR satisfied by the cancel");
    assert_eq!(wake.completed, vec![b]);
    assert_eq!(t.retire(A, b).unwrap().status, Status::Cancelled);
}

#[test]
fn retiring_a_done_leaf_while_blocked_keeps_the_tree_consistent() {
    let mut t = table();
    let [a, b] = [0; 2].map(|_| t.create(A, ValueKind::Empty).unwrap());
    t.block(A, &spec(Tree::all([a, b]))).unwrap();
    ok(&mut t, a);
    t.retire(A, a).unwrap();
    // The freed slot is reused by B's new event, which B blocks on.
    let c = t.create(B, ValueKind::Empty).unwrap();
    assert_eq!(t.block(B, &spec(Tree::any([c]))), Ok(Blocked::Waiting));
    // A's wake removes A's tree; that must not touch the reused slot.
    let wake = ok(&mut t, b).unwrap();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(
        wake,
        Wake {
            pid: A,
            completed: want
        }
    );
    assert_eq!(
        ok(&mut t, c),
        Some(Wake {
            pid: B,
            completed: vec![c]
        })
    );
}

#[test]
fn block_reports_tree_statuses() {
    let mut t = table();
    let [a, b] = [0; 2].map(|_| t.create(A, ValueKind::Empty).unwrap());
    let foreign = t.create(B, ValueKind::Empty).unwrap();
    let dead = t.create(A, ValueKind::Empty).unwrap();
    t.cancel(A, dead).unwrap();
    t.retire(A, dead).unwrap();

    assert_eq!(t.block(A, &[]), Err(Status::EmptyTree));
    let mut unsorted = spec(Tree::all([a, b]));
    unsorted.swap(0, 1);
    assert_eq!(t.block(A, &unsorted), Err(Status::LeafUnsorted));
    let mut bad_count = spec(Tree::all([a, b]));
    bad_count[2].count = 3;
    assert_eq!(t.block(A, &bad_count), Err(Status::CountOutOfRange));
    assert_eq!(
        t.block(A, &spec(Tree::any([a, dead]))),
        Err(Status::UnknownEvent)
    );
    assert_eq!(
        t.block(A, &spec(Tree::any([a, foreign]))),
        Err(Status::NotOwner)
    );
    assert_eq!(
        t.block(
            A,
            &[
                Element::leaf(EventId(7), 1),
                Element::node(Element::NO_PARENT, 1)
            ]
        ),
        Err(Status::UnknownEvent)
    );
    // None of the failures installed anything.
    assert!(!t.is_blocked(A));

    assert_eq!(t.block(A, &spec(Tree::any([a]))), Ok(Blocked::Waiting));
    assert_eq!(
        t.block(A, &spec(Tree::any([a, b]))),
        Err(Status::EventInAnotherTree)
    );
    assert_eq!(t.block(A, &spec(Tree::any([b]))), Err(Status::SecondTree));
    assert_eq!(t.unblock(A), Ok(()));
    assert_eq!(t.unblock(A), Err(Status::NotBlocked));
    assert_eq!(t.unblock(Pid(42)), Err(Status::NotBlocked));
    // Unblocking released the leaves without a wake.
    assert_eq!(ok(&mut t, a), None);
    assert_eq!(t.stats(A).unwrap().wakes, 0);
    assert_eq!(
        t.block(A, &spec(Tree::any([a, b]))),
        Ok(Blocked::Satisfied(vec![a]))
    );
}

#[test]
fn exit_frees_everything_and_ids_stay_dead() {
    let mut t = table();
    let ids = [0; 3].map(|_| t.create(A, ValueKind::Empty).unwrap());
    let keep = t.create(B, ValueKind::Empty).unwrap();
    ok(&mut t, ids[0]);
    t.block(A, &spec(Tree::all(ids))).unwrap();
    let s = t.exit(A);
    assert_eq!((s.created, s.completed, s.discarded), (3, 1, 3));
    assert_eq!(s.outstanding(), 0);
    assert_eq!(t.len(), 1);
    assert!(!t.is_blocked(A));
    assert_eq!(t.stats(A), None);
    for id in ids {
        assert_eq!(
            t.complete(id, Status::Ok, Value::Empty),
            Err(Status::UnknownEvent)
        );
    }
    // The pid can come back; its old ids do not.
    let fresh = t.create(A, ValueKind::Empty).unwrap();
    assert!(!ids.contains(&fresh));
    assert_eq!(t.retire(A, ids[0]), Err(Status::UnknownEvent));
    assert_eq!(t.state(B, keep), Ok(EventState::Pending));
    assert_eq!(t.exit(Pid(77)), Default::default());
}

#[test]
fn counters_add_up_per_process_and_in_total() {
    let mut t = table();
    let a = [0; 4].map(|_| t.create(A, ValueKind::Empty).unwrap());
    let b = [0; 2].map(|_| t.create(B, ValueKind::Empty).unwrap());
    t.block(A, &spec(Tree::any([a[0], a[1]]))).unwrap();
    ok(&mut t, a[0]); // wake
    ok(&mut t, a[1]);
    t.cancel(A, a[2]).unwrap();
    t.complete(a[2], Status::Ok, Value::Empty).unwrap(); // ignored
    t.retire(A, a[0]).unwrap();
    t.retire(A, a[2]).unwrap();
    ok(&mut t, b[0]);
    t.note_coalesced(B, 5);
    let sa = t.stats(A).unwrap();
    let sb = t.stats(B).unwrap();
    assert_eq!(
        (
            sa.created,
            sa.completed,
            sa.cancelled,
            sa.ignored,
            sa.retired,
            sa.wakes
        ),
        (4, 2, 1, 1, 2, 1)
    );
    assert_eq!(sa.outstanding(), 2);
    assert_eq!((sb.created, sb.completed, sb.coalesced), (2, 1, 5));
    let exited = t.exit(B);
    let mut sum = sa;
    sum += exited;
    assert_eq!(t.totals(), sum);
    assert_eq!(t.totals().outstanding() as usize, t.len());
}

#[test]
fn an_outstanding_event_costs_at_most_128_bytes() {
    let mut t = table();
    for _ in 0..10_000 {
        t.create(A, ValueKind::Bytes).unwrap();
    }
    let per_event = t.heap_bytes() / t.len();
    assert!(per_event <= 128, "{per_event} bytes per event");
}

#[test]
fn value_len_sizes_a_buffer_before_the_event_is_consumed() {
    let mut t = table();
    let bytes = t.create(A, ValueKind::Bytes).unwrap();
    let word = t.create(A, ValueKind::Word).unwrap();
    assert_eq!(t.value_len(A, bytes), Err(Status::NotComplete));
    t.complete(bytes, Status::Ok, Value::Bytes(vec![7; 300]))
        .unwrap();
    t.complete(word, Status::Ok, Value::Word(9)).unwrap();
    // Asking twice consumes nothing; another process is refused.
    assert_eq!(t.value_len(A, bytes), Ok(300));
    assert_eq!(t.value_len(A, bytes), Ok(300));
    assert_eq!(t.value_len(A, word), Ok(0));
    assert_eq!(t.value_len(B, bytes), Err(Status::NotOwner));
    assert!(t.retire(A, bytes).is_ok());
    assert_eq!(t.value_len(A, bytes), Err(Status::UnknownEvent));
}

thread_local! {
    static SEEN: std::cell::RefCell<Vec<(events::Happened, Pid, u64)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn note(what: events::Happened, pid: Pid, word: u64) {
    SEEN.with(|s| s.borrow_mut().push((what, pid, word)));
}

fn seen() -> Vec<(events::Happened, Pid, u64)> {
    SEEN.with(|s| core::mem::take(&mut *s.borrow_mut()))
}

#[test]
fn the_observer_is_told_what_the_counters_count_in_order() {
    use events::Happened::{
        Blocked as Block, Cancelled, Completed, Created, Exited, Retired, Woken,
    };
    let mut t = table();
    let before = t.create(A, ValueKind::Empty).unwrap();
    // Nothing observed before an observer is set.
    t.set_observer(Some(note));
    let a = t.create(A, ValueKind::Empty).unwrap();
    let b = t.create(A, ValueKind::Empty).unwrap();
    let tree = spec(Tree::all([a, b]));
    assert_eq!(t.block(A, &tree).unwrap(), Blocked::Waiting);
    assert!(ok(&mut t, a).is_none());
    t.cancel(A, before).unwrap();
    let wake = ok(&mut t, b).expect("both leaves done");
    assert_eq!(wake.pid, A);
    t.retire(A, a).unwrap();
    // A completion after a cancel is ignored, and so not observed.
    assert_eq!(ok(&mut t, before), None);
    let c = t.create(B, ValueKind::Empty).unwrap();
    ok(&mut t, c);
    let tree = spec(Tree::event(c));
    assert!(matches!(t.block(B, &tree).unwrap(), Blocked::Satisfied(_)));
    t.exit(A);
    assert_eq!(
        seen(),
        vec![
            (Created, A, a.0),
            (Created, A, b.0),
            (Block, A, 2),
            (Completed, A, a.0),
            (Cancelled, A, before.0),
            (Completed, A, b.0),
            (Woken, A, 2),
            (Retired, A, a.0),
            (Created, B, c.0),
            (Completed, B, c.0),
            (Block, B, 1 | events::BLOCKED_SATISFIED),
            // `before` and `b` were still held.
            (Exited, A, 2),
        ]
    );
    let totals = t.totals();
    assert_eq!((totals.created, totals.completed, totals.wakes), (4, 3, 1));
    t.set_observer(None);
    t.create(B, ValueKind::Empty).unwrap();
    assert!(seen().is_empty());
}

#[test]
fn foreign_ids_are_distinct_and_name_no_event() {
    let mut t = table();
    let mut ids = HashSet::new();
    for _ in 0..1000 {
        ids.insert(t.create(A, ValueKind::Empty).unwrap());
    }
    for n in 0..1000 {
        let id = t.foreign_id(n);
        assert!(!id.is_null());
        assert!(ids.insert(id), "foreign id {n} met another id");
        assert_eq!(
            t.complete(id, Status::Ok, Value::Empty),
            Err(Status::UnknownEvent)
        );
        assert_eq!(t.retire(A, id), Err(Status::UnknownEvent));
    }
    assert_eq!(t.foreign_id(7), t.foreign_id(7));
}
