//! Fuzzes the wait-tree validator with arbitrary element arrays.
//!
//! Asserts that validation never panics, that it accepts exactly what the independent
//! naive checker (`tests/common/naive.rs`) accepts, so it never accepts an invalid tree,
//! and, for accepted trees of modest size, that the event table wakes the process exactly
//! when the naive evaluation says the root is satisfied, given a fuzzer-chosen order of
//! completions.
#![no_main]

use arbitrary::Arbitrary;
use events::{
    validate, Blocked, Element, EventId, EventTable, Pid, Seed, Status, Value, ValueKind,
};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/naive.rs"]
mod naive;

/// Three ways to read the input, so that both the rejections and deep acceptances get
/// explored: `Raw` elements as they come (mostly rejected early: no root, bad parent);
/// `Small` folds ids, parents and counts into small ranges where every rule is in play;
/// `Shaped` builds mostly valid trees (sorted ids, parents pointing at earlier inner nodes,
/// counts within range) in which particular bytes break one rule at a time.
#[derive(Arbitrary, Debug)]
enum Input {
    Raw {
        max: u16,
        elements: Vec<(u64, u32, u32)>,
    },
    Small {
        max: u16,
        elements: Vec<(u8, u8, u8)>,
        order: Vec<u8>,
    },
    Shaped {
        leaves: Vec<(u8, u8)>,
        inner: Vec<(u8, u8)>,
        order: Vec<u8>,
    },
}

fn shaped(leaves: &[(u8, u8)], inner: &[(u8, u8)]) -> Vec<Element> {
    let (l, m) = (leaves.len() as u32, inner.len() as u32);
    let n = l + m;
    let mut spec = Vec::with_capacity(n as usize);
    let mut id = 0u64;
    for &(step, parent) in leaves {
        id = match step {
            0 => id,                   // duplicate
            1 => id.saturating_sub(1), // unsorted (or the null id, i.e. the root, early)
            s => id + u64::from(s - 1),
        };
        let parent = match parent {
            255 => u32::from(parent) % n.max(1), // anywhere, leaves included
            p if m > 0 => l + u32::from(p) % m,
            p => u32::from(p),
        };
        spec.push(Element::leaf(EventId(id), parent));
    }
    for (i, &(parent, _)) in inner.iter().enumerate() {
        let i = i as u32;
        let parent = match (i, parent) {
            (0, 255) => l, // the root as its own parent
            (0, _) => Element::NO_PARENT,
            (_, p) if p >= 250 => l + u32::from(p) % m, // may close a cycle
            (_, p) => l + u32::from(p) % i,             // an earlier inner node: acyclic
        };
        spec.push(Element::node(parent, 0));
    }
    let mut children = vec![0u32; n as usize];
    for e in &spec {
        if let Some(c) = children.get_mut(e.parent as usize) {
            *c += 1;
        }
    }
    for (k, &(_, count)) in inner.iter().enumerate() {
        let c = children[(l as usize) + k];
        spec[(l as usize) + k].count = match count {
            0 => 0,
            255 => c + 1,
            x => 1 + u32::from(x - 1) % c.max(1),
        };
    }
    spec
}

fn spec_of(input: &Input) -> (Vec<Element>, usize, &[u8]) {
    match input {
        Input::Raw { max, elements } => (
            elements
                .iter()
                .map(|&(id, parent, count)| Element {
                    event_id: EventId(id),
                    parent,
                    count,
                })
                .collect(),
            usize::from(*max),
            &[],
        ),
        Input::Small {
            max,
            elements,
            order,
        } => {
            let n = elements.len() as u32;
            let spec = elements
                .iter()
                .map(|&(id, parent, count)| Element {
                    event_id: EventId(u64::from(id % 16)),
                    parent: if parent == u8::MAX {
                        Element::NO_PARENT
                    } else {
                        u32::from(parent) % (n + 1)
                    },
                    count: u32::from(count % 5),
                })
                .collect();
            (spec, usize::from(*max), order)
        }
        Input::Shaped {
            leaves,
            inner,
            order,
        } => (shaped(leaves, inner), usize::MAX, order),
    }
}

fuzz_target!(|input: Input| {
    let (spec, max, order) = spec_of(&input);
    let got = validate(&spec, max);
    let naive = naive::naive_valid(&spec, max);
    assert_eq!(got.is_ok(), naive, "validate said {got:?} for {spec:?}");
    let Ok(shape) = got else { return };
    assert_eq!(spec[shape.leaves].event_id, EventId::NULL);
    assert_eq!(shape.leaves + shape.inner, spec.len());
    if spec.len() > 64 {
        return; // the naive evaluation is quadratic
    }

    // Semantics: give the leaves real events (sorted, so the spec stays valid), block,
    // complete them in the fuzzer's order, and compare with the naive evaluation.
    let pid = Pid(1);
    let mut table = EventTable::new(Seed([1, 2]));
    let mut ids: Vec<EventId> = (0..shape.leaves)
        .map(|_| table.create(pid, ValueKind::Empty).unwrap())
        .collect();
    ids.sort();
    let mut real = spec.clone();
    for (e, id) in real.iter_mut().zip(&ids) {
        e.event_id = *id;
    }
    let mut done = vec![false; shape.leaves];
    // Some leaves complete before the block.
    let before = order
        .first()
        .map_or(0, |&b| usize::from(b) % (shape.leaves + 1));
    for i in 0..before {
        table.complete(ids[i], Status::Ok, Value::Empty).unwrap();
        done[i] = true;
    }
    let satisfied = |done: &[bool]| {
        naive::naive_satisfied(&real, &|id| {
            ids.iter().position(|&x| x.0 == id).is_some_and(|i| done[i])
        })
    };
    match table.block(pid, &real).unwrap() {
        Blocked::Satisfied(leaves) => {
            assert!(satisfied(&done));
            assert_eq!(leaves, ids[..before].to_vec());
            return;
        }
        Blocked::Waiting => assert!(!satisfied(&done)),
    }
    let mut rest = (before..shape.leaves).collect::<Vec<_>>();
    // Fuzzer-chosen permutation of the remaining leaves.
    for (k, &b) in order.iter().skip(1).enumerate() {
        if rest.len() > 1 {
            let i = k % rest.len();
            let j = usize::from(b) % rest.len();
            rest.swap(i, j);
        }
    }
    for i in rest {
        let wake = table.complete(ids[i], Status::Ok, Value::Empty).unwrap();
        done[i] = true;
        let now = satisfied(&done);
        match wake {
            Some(w) => {
                assert!(now, "woke before the root was satisfied");
                let want: Vec<EventId> = (0..shape.leaves)
                    .filter(|&k| done[k])
                    .map(|k| ids[k])
                    .collect();
                assert_eq!(w.completed, want);
                assert!(!table.is_blocked(pid));
                return;
            }
            None => assert!(!now, "root satisfied but no wake"),
        }
    }
    panic!("all leaves complete and still no wake");
});
