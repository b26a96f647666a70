//! The wait-tree validator against the naive checker in `common/naive.rs`, on random,
//! near-valid and mutated specs; and the builder's output against both.

mod common;

use common::naive::{naive_satisfied, naive_valid};
use events::{validate, Element, EventId, Status, Tree};
use proptest::prelude::*;

const MAX: usize = 64;

/// Arbitrary arrays with small numbers, so every rule gets hit both ways.
fn raw_spec() -> impl Strategy<Value = Vec<Element>> {
    prop::collection::vec(
        (
            0u64..6,
            prop_oneof![0u32..10, Just(Element::NO_PARENT)],
            0u32..4,
        )
            .prop_map(|(id, parent, count)| Element {
                event_id: EventId(id),
                parent,
                count,
            }),
        0..12,
    )
}

/// A random tree shape: leaves are small numbers turned into ids later.
fn shape() -> impl Strategy<Value = Tree> {
    let leaf = (1u64..1000).prop_map(|n| Tree::event(EventId(n)));
    leaf.prop_recursive(4, 40, 6, |inner| {
        (prop::collection::vec(inner, 1..6), any::<u32>()).prop_map(|(children, k)| {
            let k = 1 + k % children.len() as u32;
            Tree::at_least(k, children)
        })
    })
}

/// Recursive evaluation of a builder tree: the most direct statement of the semantics.
fn eval(t: &Tree, done: &dyn Fn(u64) -> bool) -> bool {
    match t {
        Tree::Event(id) => done(id.0),
        Tree::Node { count, children } => {
            children.iter().filter(|c| eval(c, done)).count() >= *count as usize
        }
    }
}

fn has_duplicate_leaf(t: &Tree) -> bool {
    fn leaves(t: &Tree, out: &mut Vec<u64>) {
        match t {
            Tree::Event(id) => out.push(id.0),
            Tree::Node { children, .. } => children.iter().for_each(|c| leaves(c, out)),
        }
    }
    let mut v = Vec::new();
    leaves(t, &mut v);
    v.sort_unstable();
    v.windows(2).any(|w| w[0] == w[1])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn validator_agrees_with_naive_on_raw_arrays(spec in raw_spec()) {
        let got = validate(&spec, MAX);
        prop_assert_eq!(got.is_ok(), naive_valid(&spec, MAX), "{:?} -> {:?}", spec, got);
    }

    #[test]
    fn builder_output_is_valid_and_means_the_same(t in shape(), mask in any::<u64>()) {
        match t.to_spec() {
            Err(Status::LeafDuplicated) => prop_assert!(has_duplicate_leaf(&t)),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
            Ok(spec) => {
                prop_assert!(!has_duplicate_leaf(&t));
                prop_assert!(validate(&spec, usize::MAX).is_ok());
                prop_assert!(naive_valid(&spec, usize::MAX));
                let done = |id: u64| mask >> (id % 64) & 1 == 1;
                prop_assert_eq!(eval(&t, &done), naive_satisfied(&spec, &done));
            }
        }
    }

    #[test]
    fn validator_agrees_with_naive_on_mutated_trees(
        t in shape(),
        which in any::<prop::sample::Index>(),
        field in 0u8..3,
        delta in prop_oneof![Just(1u64), Just(u64::MAX), 0u64..8],
    ) {
        let Ok(mut spec) = t.to_spec() else { return Ok(()) };
        let i = which.index(spec.len());
        let e = &mut spec[i];
        match field {
            0 => e.event_id.0 = e.event_id.0.wrapping_add(delta),
            1 => e.parent = e.parent.wrapping_add(delta as u32),
            _ => e.count = e.count.wrapping_add(delta as u32),
        }
        let got = validate(&spec, MAX * 4);
        prop_assert_eq!(got.is_ok(), naive_valid(&spec, MAX * 4), "{:?} -> {:?}", spec, got);
    }
}

#[test]
fn validation_is_iterative_on_deep_chains() {
    // A chain of 100_000 inner nodes: the validator must not recurse.
    let depth = 100_000u32;
    // [leaf -> deepest node, root, node 2 -> root, node 3 -> node 2, ...]
    let mut spec = vec![Element::leaf(EventId(1), depth)];
    spec.push(Element::node(Element::NO_PARENT, 1));
    spec.extend((2..=depth).map(|i| Element::node(i - 1, 1)));
    assert!(validate(&spec, usize::MAX).is_ok());

    // The same chain cut loose from the root and closed on itself, with a second leaf
    // keeping the root's count satisfiable: a cycle 99_999 nodes long.
    let mut cyclic = vec![
        Element::leaf(EventId(1), 2),
        Element::leaf(EventId(2), depth + 1),
    ];
    cyclic.push(Element::node(Element::NO_PARENT, 1));
    cyclic.push(Element::node(depth + 1, 1));
    cyclic.extend((4..=depth + 1).map(|i| Element::node(i - 1, 1)));
    assert_eq!(validate(&cyclic, usize::MAX), Err(Status::Cycle));
}
