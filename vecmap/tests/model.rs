//! `VecMap` against `BTreeMap`, the map it stands in for: any sequence of
//! operations gives the same answers and leaves the same entries, in the
//! same order.

use proptest::prelude::*;
use std::collections::BTreeMap;
use vecmap::VecMap;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    Get(u8),
    GetMut(u8, u32),
    Contains(u8),
    Take,
}

fn op() -> impl Strategy<Value = Op> {
    // Keys from a small range, so that inserts hit present keys and
    // removes find what they remove.
    prop_oneof![
        4 => (0u8..48, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0u8..48).prop_map(Op::Remove),
        1 => (0u8..48).prop_map(Op::Get),
        1 => (0u8..48, any::<u32>()).prop_map(|(k, v)| Op::GetMut(k, v)),
        1 => (0u8..48).prop_map(Op::Contains),
        1 => Just(Op::Take),
    ]
}

fn same(map: &VecMap<u8, u32>, model: &BTreeMap<u8, u32>) {
    assert_eq!(map.len(), model.len());
    assert_eq!(map.is_empty(), model.is_empty());
    assert!(map.iter().eq(model.iter()));
    assert!(map.keys().eq(model.keys()));
    assert!(map.values().eq(model.values()));
    assert!(map.iter().rev().eq(model.iter().rev()));
}

proptest! {
    #[test]
    fn behaves_as_a_btreemap(ops in proptest::collection::vec(op(), 0..200)) {
        let mut map = VecMap::new();
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                Op::Get(k) => prop_assert_eq!(map.get(&k), model.get(&k)),
                Op::GetMut(k, v) => {
                    let (a, b) = (map.get_mut(&k), model.get_mut(&k));
                    prop_assert_eq!(a.is_some(), b.is_some());
                    if let (Some(a), Some(b)) = (a, b) {
                        *a = v;
                        *b = v;
                    }
                }
                Op::Contains(k) => prop_assert_eq!(map.contains_key(&k), model.contains_key(&k)),
                Op::Take => {
                    let taken = core::mem::take(&mut map);
                    let model_taken = core::mem::take(&mut model);
                    prop_assert!(map.is_empty());
                    prop_assert!(taken.into_iter().eq(model_taken.into_iter()));
                }
            }
            same(&map, &model);
        }
        let keys: Vec<u8> = map.clone().into_keys().collect();
        prop_assert_eq!(keys, model.clone().into_keys().collect::<Vec<_>>());
        let values: Vec<u32> = map.into_values().collect();
        prop_assert_eq!(values, model.into_values().collect::<Vec<_>>());
    }
}

#[test]
fn an_empty_map_allocates_nothing_and_finds_nothing() {
    const EMPTY: VecMap<u32, ()> = VecMap::new();
    let map = EMPTY;
    assert!(map.is_empty());
    assert_eq!(map.get(&0), None);
    assert!(!map.contains_key(&u32::MAX));
    assert_eq!(map, VecMap::default());
}

#[test]
fn an_insert_on_a_present_key_replaces_only_the_value() {
    let mut map = VecMap::new();
    assert_eq!(map.insert(7u64, "a"), None);
    assert_eq!(map.insert(3, "b"), None);
    assert_eq!(map.insert(7, "c"), Some("a"));
    assert_eq!(map.len(), 2);
    assert!(map.iter().eq([(&3, &"b"), (&7, &"c")]));
}

#[test]
fn values_are_dropped_with_the_map_and_when_removed() {
    use std::rc::Rc;
    let held = Rc::new(());
    let mut map = VecMap::new();
    for k in 0..10u32 {
        map.insert(k, Rc::clone(&held));
    }
    assert_eq!(Rc::strong_count(&held), 11);
    drop(map.remove(&4));
    assert_eq!(Rc::strong_count(&held), 10);
    drop(map);
    assert_eq!(Rc::strong_count(&held), 1);
}
