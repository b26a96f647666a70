//! Building wait trees in Rust and flattening them into the ABI spec.
//!
//! ```
//! use events::{EventId, Tree};
//! let (a, b, c) = (EventId(3), EventId(1), EventId(2));
//! // a AND (b OR c)
//! let spec = Tree::all([Tree::event(a), Tree::any([b, c])]).to_spec().unwrap();
//! assert!(events::validate(&spec, 16).is_ok());
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::{Element, EventId, Status};

/// A wait tree as a Rust value. Flatten it with [`Tree::to_spec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tree {
    /// Wait for one event.
    Event(EventId),
    /// Wait until `count` of `children` have completed.
    Node {
        /// How many children must complete.
        count: u32,
        /// The children.
        children: Vec<Tree>,
    },
}

impl From<EventId> for Tree {
    fn from(id: EventId) -> Self {
        Tree::Event(id)
    }
}

impl Tree {
    /// A leaf waiting for `id`.
    pub fn event(id: EventId) -> Tree {
        Tree::Event(id)
    }

    /// Completes when every child has (AND).
    pub fn all<T: Into<Tree>>(children: impl IntoIterator<Item = T>) -> Tree {
        let children: Vec<Tree> = children.into_iter().map(Into::into).collect();
        Tree::Node {
            count: u32::try_from(children.len()).unwrap_or(u32::MAX),
            children,
        }
    }

    /// Completes when any child has (OR).
    pub fn any<T: Into<Tree>>(children: impl IntoIterator<Item = T>) -> Tree {
        Tree::at_least(1, children)
    }

    /// Completes when `k` children have (threshold).
    pub fn at_least<T: Into<Tree>>(k: u32, children: impl IntoIterator<Item = T>) -> Tree {
        Tree::Node {
            count: k,
            children: children.into_iter().map(Into::into).collect(),
        }
    }

    /// Flattens the tree into the spec [`validate`](crate::validate) and
    /// [`EventTable::block`](crate::EventTable::block) take: leaves sorted by id, then the
    /// root, then the other inner nodes in breadth-first order. A bare event becomes
    /// `any([event])`, since the root must be an inner node.
    ///
    /// Errors: [`Status::UnknownEvent`] (a null leaf),
    /// [`Status::LeafDuplicated`] (an event twice), [`Status::CountOutOfRange`] (a count not
    /// in `1..=children`), [`Status::TreeTooLarge`] (indices beyond `u32`).
    /// Iterative, so deep trees do not grow the (kernel) stack.
    pub fn to_spec(&self) -> Result<Vec<Element>, Status> {
        let wrapped;
        let root = match self {
            Tree::Event(_) => {
                wrapped = Tree::any([self.clone()]);
                &wrapped
            }
            node => node,
        };

        // Breadth-first: inner nodes get consecutive numbers, leaves remember their parent.
        let mut inner: Vec<(u32, u32)> = Vec::new(); // (parent inner number, count)
        let mut leaves: Vec<(EventId, u32)> = Vec::new(); // (id, parent inner number)
        let mut queue: VecDeque<(&Tree, u32)> = VecDeque::new();
        queue.push_back((root, Element::NO_PARENT));
        while let Some((t, parent)) = queue.pop_front() {
            match t {
                Tree::Event(id) => {
                    if id.is_null() {
                        return Err(Status::UnknownEvent);
                    }
                    leaves.push((*id, parent));
                }
                Tree::Node { count, children } => {
                    if *count == 0 || *count as usize > children.len() {
                        return Err(Status::CountOutOfRange);
                    }
                    let me = u32::try_from(inner.len()).map_err(|_| Status::TreeTooLarge)?;
                    inner.push((parent, *count));
                    queue.extend(children.iter().map(|c| (c, me)));
                }
            }
        }
        // Every node has `1 <= count <= children`, so every node has a child and the
        // (finite) tree has at least one leaf: no emptiness check needed.
        let total = leaves.len() + inner.len();
        if total >= Element::NO_PARENT as usize {
            return Err(Status::TreeTooLarge);
        }
        leaves.sort_unstable_by_key(|&(id, _)| id);
        if leaves.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Status::LeafDuplicated);
        }
        let base = leaves.len() as u32;
        let mut spec = Vec::with_capacity(total);
        spec.extend(
            leaves
                .iter()
                .map(|&(id, parent)| Element::leaf(id, base + parent)),
        );
        spec.extend(inner.iter().map(|&(parent, count)| {
            let parent = if parent == Element::NO_PARENT {
                parent
            } else {
                base + parent
            };
            Element::node(parent, count)
        }));
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate;
    use alloc::vec;

    fn e(n: u64) -> EventId {
        EventId(n)
    }

    #[test]
    fn flattens_leaves_sorted_root_then_breadth_first() {
        let t = Tree::all([Tree::event(e(9)), Tree::at_least(2, [e(5), e(7), e(1)])]);
        let spec = t.to_spec().unwrap();
        assert_eq!(
            spec,
            vec![
                Element::leaf(e(1), 5),
                Element::leaf(e(5), 5),
                Element::leaf(e(7), 5),
                Element::leaf(e(9), 4),
                Element::node(Element::NO_PARENT, 2),
                Element::node(4, 2),
            ]
        );
        assert!(validate(&spec, 16).is_ok());
    }

    #[test]
    fn a_bare_event_becomes_an_or_of_one() {
        let spec = Tree::event(e(3)).to_spec().unwrap();
        assert_eq!(
            spec,
            vec![Element::leaf(e(3), 1), Element::node(Element::NO_PARENT, 1)]
        );
    }

    #[test]
    fn rejects_what_validation_would() {
        assert_eq!(
            Tree::all(Vec::<Tree>::new()).to_spec(),
            Err(Status::CountOutOfRange)
        );
        assert_eq!(
            Tree::any([Tree::all(Vec::<Tree>::new())]).to_spec(),
            Err(Status::CountOutOfRange)
        );
        assert_eq!(
            Tree::at_least(3, [e(1), e(2)]).to_spec(),
            Err(Status::CountOutOfRange)
        );
        assert_eq!(
            Tree::at_least(0, [e(1)]).to_spec(),
            Err(Status::CountOutOfRange)
        );
        assert_eq!(
            Tree::any([e(1), e(1)]).to_spec(),
            Err(Status::LeafDuplicated)
        );
        assert_eq!(
            Tree::any([EventId::NULL]).to_spec(),
            Err(Status::UnknownEvent)
        );
    }
}
