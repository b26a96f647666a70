//! A deliberately naive checker of the wait-tree rules, written from the rules and sharing
//! no code with `events::validate`: quadratic scans instead of single passes, and a bounded
//! walk instead of stamping. Used by the property tests and by the fuzz target
//! (`events/fuzz/fuzz_targets/wait_tree.rs` includes this file), so that "the validator
//! never accepts an invalid tree" is checked against an independent statement of the rules.

use events::Element;

/// Whether `spec` is a valid wait tree of at most `max` elements.
pub fn naive_valid(spec: &[Element], max: usize) -> bool {
    let n = spec.len();
    if n == 0 || n > max || n >= u32::MAX as usize {
        return false;
    }
    let is_leaf = |i: usize| spec[i].event_id.0 != 0;
    // The root is the first element with id 0, and something must come before it.
    let Some(root) = (0..n).find(|&i| !is_leaf(i)) else {
        return false;
    };
    if root == 0 {
        return false;
    }
    // Leaves first: nothing after the root is a leaf.
    if (root..n).any(is_leaf) {
        return false;
    }
    // Leaf ids strictly increasing: every pair in order.
    for i in 0..root {
        for j in i + 1..root {
            if spec[i].event_id.0 >= spec[j].event_id.0 {
                return false;
            }
        }
    }
    // Parents: the root has none; everybody else names an inner node.
    for (i, e) in spec.iter().enumerate() {
        let p = e.parent as usize;
        let ok = if i == root {
            e.parent == Element::NO_PARENT
        } else {
            e.parent != Element::NO_PARENT && p < n && !is_leaf(p)
        };
        if !ok {
            return false;
        }
    }
    // Counts: 0 on leaves, 1..=children on inner nodes.
    for (i, e) in spec.iter().enumerate() {
        if is_leaf(i) {
            if e.count != 0 {
                return false;
            }
        } else {
            let children = spec
                .iter()
                .enumerate()
                .filter(|&(j, c)| j != root && c.parent as usize == i)
                .count();
            if e.count == 0 || e.count as usize > children {
                return false;
            }
        }
    }
    // Every element reaches the root within n steps (otherwise it is on or behind a cycle).
    for start in 0..n {
        let mut x = start;
        let mut steps = 0;
        while x != root {
            if steps > n {
                return false;
            }
            x = spec[x].parent as usize;
            steps += 1;
        }
    }
    true
}

/// Whether the root of a valid `spec` is satisfied when the leaves in `done` are: each
/// inner node is re-evaluated from scratch until nothing changes (no count-down).
#[allow(dead_code)] // not every includer evaluates trees
pub fn naive_satisfied(spec: &[Element], done: &dyn Fn(u64) -> bool) -> bool {
    let n = spec.len();
    let root = (0..n).find(|&i| spec[i].event_id.0 == 0).unwrap();
    let mut sat: Vec<bool> = spec
        .iter()
        .map(|e| e.event_id.0 != 0 && done(e.event_id.0))
        .collect();
    loop {
        let mut changed = false;
        for i in root..n {
            if sat[i] {
                continue;
            }
            let got = (0..n)
                .filter(|&j| j != root && spec[j].parent as usize == i && sat[j])
                .count();
            if got >= spec[i].count as usize {
                sat[i] = true;
                changed = true;
            }
        }
        if !changed {
            return sat[root];
        }
    }
}
