//! Wait trees: the flat ABI, its validator, and the installed form that completions count
//! down.
//!
//! # The flat spec (the ABI, after Ethos)
//!
//! A process blocks by handing the kernel an array of [`Element`]s:
//!
//! * **Leaves first.** Elements `0..L` have a non-zero `event_id`, in strictly increasing
//!   order (so duplicates are caught in the same O(n) pass), a `count` of 0 and a `parent`
//!   that indexes an inner node.
//! * **Then the root.** Element `L`, the first with `event_id == 0`, is the root; its
//!   `parent` is [`Element::NO_PARENT`].
//! * **Then the other inner nodes**, in any order, each with `event_id == 0` and a `parent`
//!   indexing an inner node. Following parents from any inner node must reach the root.
//! * **Counts.** An inner node with `c` children has `1 <= count <= c`: `count == c` is AND,
//!   1 is OR, anything between is a threshold. A node completes when `count` of its
//!   children have completed; the process wakes when the root completes.
//!
//! [`validate`] checks all of this in O(n) time and O(inner nodes) scratch space and names
//! the first rule broken, in this order: size ([`Status::EmptyTree`],
//! [`Status::TreeTooLarge`]), root ([`Status::NoRoot`], [`Status::EmptyTree`] when nothing
//! precedes it), each leaf in order ([`Status::LeafDuplicated`], [`Status::LeafUnsorted`],
//! [`Status::CountOutOfRange`], [`Status::BadParent`]), each inner node in order
//! ([`Status::MisplacedLeaf`], [`Status::BadParent`]), inner counts
//! ([`Status::CountOutOfRange`]), then reachability ([`Status::Cycle`]).
//! Whether the leaves name live events of the caller is the table's business
//! ([`EventTable::block`](crate::EventTable::block)).

use alloc::vec::Vec;

use crate::{EventId, Status};

/// One element of a flat wait-tree spec. `#[repr(C)]`: 16 bytes, the syscall ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Element {
    /// The event of a leaf; [`EventId::NULL`] for an inner node.
    pub event_id: EventId,
    /// Index of the parent inner node; [`Element::NO_PARENT`] for the root.
    pub parent: u32,
    /// For an inner node, how many children must complete; 0 for a leaf.
    pub count: u32,
}

impl Element {
    /// The root's parent.
    pub const NO_PARENT: u32 = u32::MAX;

    /// A leaf waiting on `event`, child of the inner node at index `parent`.
    pub const fn leaf(event: EventId, parent: u32) -> Self {
        Element {
            event_id: event,
            parent,
            count: 0,
        }
    }

    /// An inner node needing `count` children, child of `parent` (or
    /// [`Element::NO_PARENT`] for the root).
    pub const fn node(parent: u32, count: u32) -> Self {
        Element {
            event_id: EventId::NULL,
            parent,
            count,
        }
    }
}

/// What a successful validation learned about a spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Number of leaves; also the index of the root.
    pub leaves: usize,
    /// Number of inner nodes, root included.
    pub inner: usize,
}

/// Validates a spec of at most `max_elements` elements. O(n); allocates O(inner nodes).
pub fn validate(spec: &[Element], max_elements: usize) -> Result<Shape, Status> {
    validate_with(spec, max_elements, &mut Vec::new())
}

/// [`validate`] with caller-provided scratch space, so a table that blocks often reuses one
/// buffer instead of allocating per call.
pub(crate) fn validate_with(
    spec: &[Element],
    max_elements: usize,
    scratch: &mut Vec<u32>,
) -> Result<Shape, Status> {
    let n = spec.len();
    if n == 0 {
        return Err(Status::EmptyTree);
    }
    // Indices must fit in u32 with NO_PARENT left over.
    if n > max_elements || n >= Element::NO_PARENT as usize {
        return Err(Status::TreeTooLarge);
    }
    let root = spec
        .iter()
        .position(|e| e.event_id.is_null())
        .ok_or(Status::NoRoot)?;
    if root == 0 {
        return Err(Status::EmptyTree);
    }
    let inner = n - root;
    let is_inner = |p: u32| (root..n).contains(&(p as usize));

    for (i, e) in spec[..root].iter().enumerate() {
        if i > 0 {
            let prev = spec[i - 1].event_id;
            if e.event_id == prev {
                return Err(Status::LeafDuplicated);
            }
            if e.event_id < prev {
                return Err(Status::LeafUnsorted);
            }
        }
        if e.count != 0 {
            return Err(Status::CountOutOfRange);
        }
        if !is_inner(e.parent) {
            return Err(Status::BadParent);
        }
    }
    for (i, e) in spec.iter().enumerate().skip(root) {
        if !e.event_id.is_null() {
            return Err(Status::MisplacedLeaf);
        }
        let ok = if i == root {
            e.parent == Element::NO_PARENT
        } else {
            is_inner(e.parent)
        };
        if !ok {
            return Err(Status::BadParent);
        }
    }

    // Children per inner node (index relative to the root).
    scratch.clear();
    scratch.resize(inner, 0);
    for e in spec.iter().filter(|e| e.parent != Element::NO_PARENT) {
        scratch[e.parent as usize - root] += 1;
    }
    for (e, &children) in spec[root..].iter().zip(scratch.iter()) {
        if e.count == 0 || e.count > children {
            return Err(Status::CountOutOfRange);
        }
    }

    // Every inner node must reach the root. Walk up from each node, stamping the nodes on
    // the walk with the walk's number; meeting our own stamp is a cycle, meeting an older
    // stamp (or the root) means the rest of the way is known good. Each node is stamped
    // once, so this is O(inner).
    const DONE: u32 = u32::MAX;
    scratch.iter_mut().for_each(|m| *m = 0);
    scratch[0] = DONE;
    for start in 1..inner {
        let stamp = start as u32; // non-zero, distinct from DONE since inner < u32::MAX
        let mut x = start;
        while scratch[x] == 0 {
            scratch[x] = stamp;
            x = spec[root + x].parent as usize - root;
        }
        if scratch[x] == stamp {
            return Err(Status::Cycle);
        }
    }
    Ok(Shape {
        leaves: root,
        inner,
    })
}

/// "No index" in the installed tree and in table slots.
pub(crate) const NONE: u32 = u32::MAX;

/// A leaf of an installed tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Leaf {
    /// The event, kept so a wake can report it without touching the table.
    pub(crate) id: EventId,
    /// The event's slot in the table, or [`NONE`] once the event was retired.
    pub(crate) slot: u32,
    /// Index of the parent in `nodes`.
    parent: u32,
    /// The event completed (or was cancelled) while the tree was installed.
    pub(crate) done: bool,
}

/// An inner node of an installed tree.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Index of the parent in `nodes`; [`NONE`] for the root (`nodes[0]`).
    parent: u32,
    /// Children still needed; the node completes when this reaches 0.
    remaining: u32,
}

/// A validated tree installed for a blocked process. Its buffers are kept between blocks
/// so a process that blocks again reuses them.
#[derive(Debug, Default)]
pub(crate) struct WaitTree {
    pub(crate) leaves: Vec<Leaf>,
    nodes: Vec<Node>,
}

impl WaitTree {
    /// Loads a spec that [`validate`] accepted with `shape`. Leaf slots start as [`NONE`];
    /// the table fills them in.
    pub(crate) fn load(&mut self, spec: &[Element], shape: Shape) {
        let root = shape.leaves as u32;
        self.leaves.clear();
        self.nodes.clear();
        self.leaves
            .extend(spec[..shape.leaves].iter().map(|e| Leaf {
                id: e.event_id,
                slot: NONE,
                parent: e.parent - root,
                done: false,
            }));
        self.nodes.extend(spec[shape.leaves..].iter().map(|e| Node {
            parent: if e.parent == Element::NO_PARENT {
                NONE
            } else {
                e.parent - root
            },
            remaining: e.count,
        }));
    }

    /// Marks leaf `leaf` done and counts down its ancestors. Returns true exactly when this
    /// made the root complete. O(depth), no allocation. A leaf counts once; a node that
    /// already completed absorbs further children without counting its parent again.
    #[inline]
    pub(crate) fn resolve(&mut self, leaf: u32) -> bool {
        let Some(l) = self.leaves.get_mut(leaf as usize) else {
            return false;
        };
        if l.done {
            return false;
        }
        l.done = true;
        let mut n = l.parent;
        while let Some(node) = self.nodes.get_mut(n as usize) {
            if node.remaining == 0 {
                return false;
            }
            node.remaining -= 1;
            if node.remaining != 0 {
                return false;
            }
            if node.parent == NONE {
                return true;
            }
            n = node.parent;
        }
        false
    }

    /// The leaves that are done, in spec (id) order.
    pub(crate) fn done_leaves(&self) -> Vec<EventId> {
        self.leaves
            .iter()
            .filter(|l| l.done)
            .map(|l| l.id)
            .collect()
    }

    /// Bytes held by the buffers (for accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.leaves.capacity() * core::mem::size_of::<Leaf>()
            + self.nodes.capacity() * core::mem::size_of::<Node>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn id(n: u64) -> EventId {
        EventId(n)
    }

    /// leaves 10, 20, 30 under an inner OR node (index 4) under an AND root (index 3)
    /// together with leaf 10.
    fn sample() -> Vec<Element> {
        vec![
            Element::leaf(id(10), 3),
            Element::leaf(id(20), 4),
            Element::leaf(id(30), 4),
            Element::node(Element::NO_PARENT, 2),
            Element::node(3, 1),
        ]
    }

    #[test]
    fn accepts_a_well_formed_tree() {
        assert_eq!(
            validate(&sample(), 100),
            Ok(Shape {
                leaves: 3,
                inner: 2
            })
        );
    }

    #[test]
    fn every_structural_status_is_reachable() {
        let cases: Vec<(Vec<Element>, Status)> = vec![
            (vec![], Status::EmptyTree),
            (
                vec![Element::node(Element::NO_PARENT, 1)],
                Status::EmptyTree,
            ),
            (vec![Element::leaf(id(1), 0)], Status::NoRoot),
            (
                {
                    let mut s = sample();
                    s[1].event_id = id(10);
                    s
                },
                Status::LeafDuplicated,
            ),
            (
                {
                    let mut s = sample();
                    s[1].event_id = id(5);
                    s
                },
                Status::LeafUnsorted,
            ),
            (
                {
                    let mut s = sample();
                    s[0].count = 1;
                    s
                },
                Status::CountOutOfRange,
            ),
            (
                {
                    let mut s = sample();
                    s[0].parent = 1; // a leaf is no parent
                    s
                },
                Status::BadParent,
            ),
            (
                {
                    let mut s = sample();
                    s[0].parent = 99;
                    s
                },
                Status::BadParent,
            ),
            (
                {
                    let mut s = sample();
                    s.push(Element::leaf(id(40), 3));
                    s
                },
                Status::MisplacedLeaf,
            ),
            (
                {
                    let mut s = sample();
                    s[3].parent = 4; // root with a parent
                    s
                },
                Status::BadParent,
            ),
            (
                {
                    let mut s = sample();
                    s[4].parent = Element::NO_PARENT; // a second parentless node
                    s
                },
                Status::BadParent,
            ),
            (
                {
                    let mut s = sample();
                    s[3].count = 3; // root has 2 children
                    s
                },
                Status::CountOutOfRange,
            ),
            (
                {
                    let mut s = sample();
                    s[4].count = 0;
                    s
                },
                Status::CountOutOfRange,
            ),
            (
                // Node 4 is its own parent: it has children 20, 30 and itself, and never
                // reaches the root.
                {
                    let mut s = sample();
                    s[4].parent = 4;
                    s
                },
                Status::CountOutOfRange, // the root lost its child 4 -> 1 child, count 2
            ),
            (
                {
                    let mut s = sample();
                    s[4].parent = 4;
                    s[3].count = 1;
                    s
                },
                Status::Cycle,
            ),
            (
                // Two inner nodes pointing at each other, off the root.
                vec![
                    Element::leaf(id(1), 2),
                    Element::leaf(id(2), 3),
                    Element::node(Element::NO_PARENT, 1),
                    Element::node(4, 1),
                    Element::node(3, 1),
                ],
                Status::Cycle,
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(validate(&spec, 100), Err(want), "{spec:?}");
        }
        assert_eq!(validate(&sample(), 4), Err(Status::TreeTooLarge));
    }

    #[test]
    fn resolve_counts_down_and_completes_the_root_once() {
        let spec = sample();
        let shape = validate(&spec, 100).unwrap();
        let mut t = WaitTree::default();
        t.load(&spec, shape);
        assert!(!t.resolve(1)); // OR node completes, root needs one more
        assert!(!t.resolve(2)); // OR node already complete: absorbed
        assert!(!t.resolve(1)); // a leaf counts once
        assert!(t.resolve(0)); // root completes
        assert!(!t.resolve(0));
        assert!(!t.resolve(7)); // out of range: ignored
        assert_eq!(t.done_leaves(), vec![id(10), id(20), id(30)]);
    }
}
