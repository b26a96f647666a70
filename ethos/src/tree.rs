//! Wait trees: build one as a value, flatten it into the array
//! [`abi::Call::Block`] reads.
//!
//! ```
//! use ethos::{Event, Tree};
//! let (a, b, c) = (Event::from_raw(3), Event::from_raw(1), Event::from_raw(2));
//! // a AND (b OR c)
//! let flat = Tree::all([Tree::from(a), Tree::any([b, c])]).flatten().unwrap();
//! assert_eq!(flat.len(), 5); // three leaves, two inner nodes
//! assert_eq!(flat[3].parent, ethos::WaitElement::NO_PARENT); // the root follows the leaves
//! ```
//!
//! # The flat form (the ABI's)
//!
//! Leaves first, sorted by event id, no id twice, `count` 0, `parent` the
//! index of an inner node; then the inner nodes, `event` 0, each with a
//! `count` in `1..=children`; the **root comes first**, right after the
//! leaves, with parent [`WaitElement::NO_PARENT`], then the other inner
//! nodes (this builder puts them in breadth-first order). A bare event is
//! flattened as `any([event])`.
//!
//! # Duplicates
//!
//! The flat form cannot hold an event twice (a leaf has one parent), so:
//! an event repeated among the children of one `all` or `any` node is kept
//! once (the meaning is the same); repeated under an `at_least(k)` node with
//! `k > 1`, or under two different nodes, is [`TreeError::DuplicateEvent`]
//! (there the meaning would change or cannot be expressed).

use alloc::vec::Vec;
use core::fmt;

use abi::{Status, WaitElement, NULL_EVENT};

use crate::event::Event;

/// How many children an inner node needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Every child (AND).
    All,
    /// One child (OR).
    Any,
    /// At least this many children (threshold).
    AtLeast(u32),
}

/// A wait tree as a Rust value. Flatten it with [`Tree::flatten`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tree {
    /// Wait for one event.
    Event(Event),
    /// Wait until enough of `children` have completed.
    Node {
        /// How many.
        need: Need,
        /// The children.
        children: Vec<Tree>,
    },
}

impl From<Event> for Tree {
    fn from(e: Event) -> Tree {
        Tree::Event(e)
    }
}

/// Why a tree cannot be flattened. Each maps to the [`Status`] the kernel
/// would give the same tree (`From<TreeError> for Status`), so `?` works in
/// code returning `Result<_, Status>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// An inner node without children.
    EmptyNode,
    /// A node needs more children than it has (or 0).
    CountOutOfRange {
        /// What it needs.
        count: u32,
        /// What it has (after duplicates were merged).
        children: u32,
    },
    /// A leaf with the null event id.
    NullEvent,
    /// An event twice where that cannot be merged (see the module doc).
    DuplicateEvent(Event),
    /// More elements than an index can name.
    TooLarge,
    /// The output array is too short; it needs this many elements.
    OutputTooSmall {
        /// Elements needed.
        needed: usize,
    },
}

impl From<TreeError> for Status {
    fn from(e: TreeError) -> Status {
        match e {
            TreeError::EmptyNode
            | TreeError::CountOutOfRange { .. }
            | TreeError::DuplicateEvent(_) => Status::BadTree,
            TreeError::NullEvent => Status::UnknownEvent,
            TreeError::TooLarge => Status::TreeTooLarge,
            TreeError::OutputTooSmall { .. } => Status::BufferTooSmall,
        }
    }
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::EmptyNode => f.write_str("wait tree: a node without children"),
            TreeError::CountOutOfRange { count, children } => {
                write!(f, "wait tree: a node needs {count} of {children} children")
            }
            TreeError::NullEvent => f.write_str("wait tree: a null event"),
            TreeError::DuplicateEvent(e) => write!(f, "wait tree: event {:#x} twice", e.id()),
            TreeError::TooLarge => f.write_str("wait tree: too many elements"),
            TreeError::OutputTooSmall { needed } => {
                write!(f, "wait tree: output needs {needed} elements")
            }
        }
    }
}

impl Tree {
    /// A leaf waiting for `e`.
    pub fn event(e: Event) -> Tree {
        Tree::Event(e)
    }

    /// Completes when every child has (AND).
    pub fn all<T: Into<Tree>>(children: impl IntoIterator<Item = T>) -> Tree {
        Tree::node(Need::All, children)
    }

    /// Completes when any child has (OR).
    pub fn any<T: Into<Tree>>(children: impl IntoIterator<Item = T>) -> Tree {
        Tree::node(Need::Any, children)
    }

    /// Completes when `k` children have (threshold).
    pub fn at_least<T: Into<Tree>>(k: u32, children: impl IntoIterator<Item = T>) -> Tree {
        Tree::node(Need::AtLeast(k), children)
    }

    /// A node needing `need` of `children`.
    pub fn node<T: Into<Tree>>(need: Need, children: impl IntoIterator<Item = T>) -> Tree {
        Tree::Node {
            need,
            children: children.into_iter().map(Into::into).collect(),
        }
    }

    /// Flattens the tree into the ABI's form (see the module doc).
    /// Iterative: a deep tree does not grow the stack.
    pub fn flatten(&self) -> Result<Vec<WaitElement>, TreeError> {
        let wrapped;
        let root = match self {
            Tree::Event(_) => {
                wrapped = Tree::any([self.clone()]);
                &wrapped
            }
            node => node,
        };

        // Breadth-first: inner node k is the k-th met; leaves remember it.
        let mut inner: Vec<(u32, u32)> = Vec::new(); // (parent k, count)
        let mut leaves: Vec<(Event, u32)> = Vec::new(); // (event, parent k)
        let mut queue: Vec<(&Tree, u32)> = Vec::new();
        queue.push((root, WaitElement::NO_PARENT));
        let mut head = 0;
        let mut mine: Vec<Event> = Vec::new();
        while let Some(&(t, parent)) = queue.get(head) {
            head += 1;
            let Tree::Node { need, children } = t else {
                continue; // only the root is looked at as a node; leaves go below
            };
            let k = u32::try_from(inner.len()).map_err(|_| TreeError::TooLarge)?;
            if k == WaitElement::NO_PARENT {
                return Err(TreeError::TooLarge);
            }
            mine.clear();
            let mut nodes = 0u32;
            for c in children {
                match c {
                    Tree::Event(e) if e.id() == NULL_EVENT => return Err(TreeError::NullEvent),
                    Tree::Event(e) => mine.push(*e),
                    node => {
                        nodes = nodes.saturating_add(1);
                        queue.push((node, k));
                    }
                }
            }
            let distinct = merge_duplicates(&mut mine, *need)?;
            let children = u32::try_from(distinct)
                .map_err(|_| TreeError::TooLarge)?
                .saturating_add(nodes);
            let count = required(*need, children)?;
            inner.push((parent, count));
            leaves.extend(mine[..distinct].iter().map(|&e| (e, k)));
        }

        leaves.sort_unstable_by_key(|&(e, _)| e);
        if let Some(w) = leaves.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(TreeError::DuplicateEvent(w[0].0));
        }
        let total = leaves.len() + inner.len();
        if total >= WaitElement::NO_PARENT as usize {
            return Err(TreeError::TooLarge);
        }
        let (l, i) = (leaves.len() as u32, inner.len() as u32);
        // Inner node k (breadth-first) sits at l + k: the root (k = 0)
        // right after the leaves.
        let _ = i;
        let at = |k: u32| l + k;
        let mut flat = Vec::with_capacity(total);
        flat.extend(leaves.iter().map(|&(e, k)| WaitElement {
            event: e.id(),
            parent: at(k),
            count: 0,
        }));
        flat.extend(inner.iter().map(|&(parent, count)| WaitElement {
            event: NULL_EVENT,
            parent: if parent == WaitElement::NO_PARENT {
                parent
            } else {
                at(parent)
            },
            count,
        }));
        Ok(flat)
    }

    /// [`flatten`](Tree::flatten) into `out`; returns the part written.
    pub fn flatten_into<'a>(
        &self,
        out: &'a mut [WaitElement],
    ) -> Result<&'a [WaitElement], TreeError> {
        let flat = self.flatten()?;
        let dst = out
            .get_mut(..flat.len())
            .ok_or(TreeError::OutputTooSmall { needed: flat.len() })?;
        dst.copy_from_slice(&flat);
        Ok(dst)
    }
}

/// Sorts `events` and merges repeats, if `need` allows (see the module
/// doc); returns how many distinct events lead the slice.
fn merge_duplicates(events: &mut [Event], need: Need) -> Result<usize, TreeError> {
    events.sort_unstable();
    let mut n = 0;
    for i in 0..events.len() {
        if n > 0 && events[i] == events[n - 1] {
            if !matches!(need, Need::All | Need::Any | Need::AtLeast(1)) {
                return Err(TreeError::DuplicateEvent(events[i]));
            }
            continue;
        }
        events[n] = events[i];
        n += 1;
    }
    Ok(n)
}

/// The count a node with `children` children needs.
fn required(need: Need, children: u32) -> Result<u32, TreeError> {
    if children == 0 {
        return Err(TreeError::EmptyNode);
    }
    let count = match need {
        Need::All => children,
        Need::Any => 1,
        Need::AtLeast(k) => k,
    };
    if count == 0 || count > children {
        return Err(TreeError::CountOutOfRange { count, children });
    }
    Ok(count)
}

/// A one-level tree over `events` into `out`, without allocating: the
/// leaves sorted (repeats merged as the module doc says), then the root.
/// `out` needs `events.len() + 1` elements.
pub fn flat<'a>(
    need: Need,
    events: &[Event],
    out: &'a mut [WaitElement],
) -> Result<&'a [WaitElement], TreeError> {
    let needed = events.len().saturating_add(1);
    if out.len() < needed {
        return Err(TreeError::OutputTooSmall { needed });
    }
    if needed >= WaitElement::NO_PARENT as usize {
        return Err(TreeError::TooLarge);
    }
    if events.iter().any(|e| e.id() == NULL_EVENT) {
        return Err(TreeError::NullEvent);
    }
    // Sort the ids in place in `out`, merge repeats, then fill in parents.
    for (o, e) in out.iter_mut().zip(events) {
        *o = WaitElement {
            event: e.id(),
            parent: 0,
            count: 0,
        };
    }
    let leaves = &mut out[..events.len()];
    leaves.sort_unstable_by_key(|w| w.event);
    let mut n = 0;
    for i in 0..leaves.len() {
        if n > 0 && leaves[i].event == leaves[n - 1].event {
            if !matches!(need, Need::All | Need::Any | Need::AtLeast(1)) {
                return Err(TreeError::DuplicateEvent(Event::from_raw(leaves[i].event)));
            }
            continue;
        }
        leaves[n] = leaves[i];
        n += 1;
    }
    let count = required(need, n as u32)?;
    for leaf in &mut out[..n] {
        leaf.parent = n as u32;
    }
    out[n] = WaitElement {
        event: NULL_EVENT,
        parent: WaitElement::NO_PARENT,
        count,
    };
    Ok(&out[..=n])
}

/// The tree "this one event": `[leaf, root]`, no allocation.
pub fn single(e: Event) -> Result<[WaitElement; 2], TreeError> {
    if e.id() == NULL_EVENT {
        return Err(TreeError::NullEvent);
    }
    Ok([
        WaitElement {
            event: e.id(),
            parent: 1,
            count: 0,
        },
        WaitElement {
            event: NULL_EVENT,
            parent: WaitElement::NO_PARENT,
            count: 1,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn e(n: u64) -> Event {
        Event::from_raw(n)
    }

    fn leaf(ev: u64, parent: u32) -> WaitElement {
        WaitElement {
            event: ev,
            parent,
            count: 0,
        }
    }

    fn node(parent: u32, count: u32) -> WaitElement {
        WaitElement {
            event: 0,
            parent,
            count,
        }
    }

    /// The ABI's rules, checked independently of how the builder works.
    /// The kernel's own validator accepts it.
    fn abi_valid(flat: &[WaitElement]) -> bool {
        crate::fake::kernel_validate(flat).is_ok()
    }

    #[test]
    fn one_level_trees() {
        let t = Tree::all([e(9), e(5), e(7)]).flatten().unwrap();
        assert_eq!(
            t,
            vec![leaf(5, 3), leaf(7, 3), leaf(9, 3), node(u32::MAX, 3)]
        );
        let t = Tree::any([e(2), e(1)]).flatten().unwrap();
        assert_eq!(t, vec![leaf(1, 2), leaf(2, 2), node(u32::MAX, 1)]);
        let t = Tree::at_least(2, [e(4), e(1), e(3)]).flatten().unwrap();
        assert_eq!(t[3], node(u32::MAX, 2));
        assert!(abi_valid(&t));
    }

    #[test]
    fn nested_trees_put_the_root_after_the_leaves_then_the_rest_breadth_first() {
        // all(9, at_least(2, [5, 7, 1]), any([3, all([2, 8])]))
        let t = Tree::all([
            Tree::from(e(9)),
            Tree::at_least(2, [e(5), e(7), e(1)]),
            Tree::any([Tree::from(e(3)), Tree::all([e(2), e(8)])]),
        ]);
        let flat = t.flatten().unwrap();
        assert!(abi_valid(&flat), "{flat:?}");
        // BFS: root k0, at_least k1, any k2, inner all k3: positions 7, 8, 9, 10.
        assert_eq!(
            flat,
            vec![
                leaf(1, 8),
                leaf(2, 10),
                leaf(3, 9),
                leaf(5, 8),
                leaf(7, 8),
                leaf(8, 10),
                leaf(9, 7),
                node(u32::MAX, 3),
                node(7, 2),
                node(7, 1),
                node(9, 2),
            ]
        );
    }

    #[test]
    fn a_bare_event_is_an_or_of_one() {
        let flat = Tree::event(e(3)).flatten().unwrap();
        assert_eq!(flat, vec![leaf(3, 1), node(u32::MAX, 1)]);
        assert_eq!(single(e(3)).unwrap().to_vec(), flat);
    }

    #[test]
    fn repeats_merge_where_the_meaning_is_kept() {
        let flat = Tree::all([e(4), e(4), e(2)]).flatten().unwrap();
        assert_eq!(flat, vec![leaf(2, 2), leaf(4, 2), node(u32::MAX, 2)]);
        let flat = Tree::any([e(4), e(4)]).flatten().unwrap();
        assert_eq!(flat, vec![leaf(4, 1), node(u32::MAX, 1)]);
        assert_eq!(
            Tree::at_least(2, [e(4), e(4), e(2)]).flatten(),
            Err(TreeError::DuplicateEvent(e(4)))
        );
        // The same event under two nodes cannot be said in the flat form.
        assert_eq!(
            Tree::all([Tree::any([e(1), e(2)]), Tree::any([e(1), e(3)])]).flatten(),
            Err(TreeError::DuplicateEvent(e(1)))
        );
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(
            Tree::all(Vec::<Tree>::new()).flatten(),
            Err(TreeError::EmptyNode)
        );
        assert_eq!(
            Tree::any([Tree::all(Vec::<Tree>::new())]).flatten(),
            Err(TreeError::EmptyNode)
        );
        assert_eq!(
            Tree::at_least(3, [e(1), e(2)]).flatten(),
            Err(TreeError::CountOutOfRange {
                count: 3,
                children: 2
            })
        );
        assert_eq!(
            Tree::at_least(0, [e(1)]).flatten(),
            Err(TreeError::CountOutOfRange {
                count: 0,
                children: 1
            })
        );
        assert_eq!(Tree::any([e(0)]).flatten(), Err(TreeError::NullEvent));
        assert_eq!(single(e(0)), Err(TreeError::NullEvent));
        assert_eq!(Status::from(TreeError::NullEvent), Status::UnknownEvent);
        assert_eq!(Status::from(TreeError::TooLarge), Status::TreeTooLarge);
        assert_eq!(Status::from(TreeError::EmptyNode), Status::BadTree);
    }

    #[test]
    fn flat_needs_no_allocation_and_agrees_with_flatten() {
        let mut out = [node(0, 0); 5];
        let events = [e(30), e(10), e(20), e(10)];
        for need in [Need::All, Need::Any, Need::AtLeast(2)] {
            let got = flat(need, &events[..3], &mut out).unwrap().to_vec();
            assert_eq!(
                got,
                Tree::node(need, events[..3].iter().copied())
                    .flatten()
                    .unwrap()
            );
        }
        let got = flat(Need::All, &events, &mut out).unwrap().to_vec();
        assert_eq!(
            got,
            vec![leaf(10, 3), leaf(20, 3), leaf(30, 3), node(u32::MAX, 3)]
        );
        assert_eq!(
            flat(Need::AtLeast(2), &events, &mut out),
            Err(TreeError::DuplicateEvent(e(10)))
        );
        assert_eq!(
            flat(Need::All, &events, &mut out[..4]),
            Err(TreeError::OutputTooSmall { needed: 5 })
        );
        assert_eq!(flat(Need::All, &[], &mut out), Err(TreeError::EmptyNode));
        let mut small = [node(0, 0); 2];
        assert_eq!(
            Tree::all([e(1), e(2)]).flatten_into(&mut small),
            Err(TreeError::OutputTooSmall { needed: 3 })
        );
    }

    #[test]
    fn deep_trees_flatten_without_recursion() {
        let mut t = Tree::from(e(1));
        for i in 2..2000 {
            t = Tree::any([t, Tree::from(e(i))]);
        }
        let flat = t.flatten().unwrap();
        assert_eq!(flat.len(), 1999 + 1998);
        assert_eq!(flat[1999].parent, WaitElement::NO_PARENT);
        assert!(abi_valid(&flat));
    }
}
