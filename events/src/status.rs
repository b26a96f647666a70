//! Named statuses, Ethos style.
//!
//! Every way an operation can fail has its own name, so a caller (and a person reading a
//! log) learns exactly which rule was broken. Nothing in this crate panics on bad input:
//! each check ends in one of these.
//!
//! The same type is also the *completion* status an event carries (`Status::Ok` for a
//! success, `Status::Remote(code)` for a failure reported by whoever did the work), so
//! the kernel and the processes speak one vocabulary.

use core::fmt;

/// The outcome of an operation, or the status an event completed with.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success. Only used as an event's completion status; API errors never carry it.
    Ok,
    /// A failure reported by the service that completed the event (e.g. the shadowdaemon),
    /// passed through unchanged.
    Remote(u32),

    // --- the event table ---
    /// Retire asked for an event that has not completed yet (and was not cancelled).
    NotComplete,
    /// The event exists but belongs to another process.
    NotOwner,
    /// No live event has this id: never created, already retired, freed at process exit,
    /// or the null id.
    UnknownEvent,
    /// The event already completed; an event completes at most once.
    AlreadyComplete,
    /// The event was cancelled: a second cancel, or (as a completion status) what a
    /// cancelled event retires with.
    Cancelled,
    /// The completion's value is not of the kind recorded when the event was created.
    WrongValueKind,
    /// The process already has as many outstanding events as its quota allows.
    QuotaExceeded,
    /// The whole table is at its configured capacity.
    TableFull,

    // --- wait trees ---
    /// The tree has more elements than the process's quota (or the table's hard limit).
    TreeTooLarge,
    /// The tree has no elements or no leaves.
    EmptyTree,
    /// No element has event id 0, so there is no root.
    NoRoot,
    /// A leaf (non-zero id) appears after the root; leaves must come first.
    MisplacedLeaf,
    /// A parent index points outside the tree or at a leaf, the root has a parent, or a
    /// non-root node has none.
    BadParent,
    /// Following parent links from some inner node never reaches the root.
    Cycle,
    /// An inner node's count is not in `1..=children`, or a leaf's count is not 0.
    CountOutOfRange,
    /// Leaf ids are not strictly increasing.
    LeafUnsorted,
    /// The same event appears twice among the leaves.
    LeafDuplicated,
    /// A leaf event is already a leaf of an installed wait tree.
    EventInAnotherTree,
    /// The process already has an installed wait tree.
    SecondTree,
    /// The process has no installed wait tree to remove.
    NotBlocked,

    // --- deferred work ---
    /// A deferred-work source number is outside the configured range.
    UnknownSource,

    // --- processes ---
    /// The process the event watched ended by a fault (its exit event
    /// carries the vector as its word).
    Faulted,

    // --- services ---
    /// The RPC daemon in dom0 said it will not serve this domain (its name
    /// is refused, or already served for another domain).
    NotServed,

    // --- event channels ---
    /// A process's event channel was allocated again after a restore (a
    /// new Xen port under the same handle, the event's word).
    Rebound,
    /// A process's event channel went with the old domain and cannot be
    /// made again (its peer's side is gone).
    PeerGone,
}

impl Status {
    /// True for [`Status::Ok`].
    pub const fn is_ok(self) -> bool {
        matches!(self, Status::Ok)
    }

    /// A short, stable, human-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Remote(_) => "remote error",
            Status::NotComplete => "event not complete",
            Status::NotOwner => "event owned by another process",
            Status::UnknownEvent => "unknown event",
            Status::AlreadyComplete => "event already complete",
            Status::Cancelled => "event cancelled",
            Status::WrongValueKind => "value of the wrong kind",
            Status::QuotaExceeded => "event quota exceeded",
            Status::TableFull => "event table full",
            Status::TreeTooLarge => "wait tree too large",
            Status::EmptyTree => "wait tree empty",
            Status::NoRoot => "wait tree has no root",
            Status::MisplacedLeaf => "wait tree leaf after the root",
            Status::BadParent => "wait tree parent index invalid",
            Status::Cycle => "wait tree has a cycle",
            Status::CountOutOfRange => "wait tree count out of range",
            Status::LeafUnsorted => "wait tree leaves not sorted",
            Status::LeafDuplicated => "wait tree leaf duplicated",
            Status::EventInAnotherTree => "event already in a wait tree",
            Status::SecondTree => "process already has a wait tree",
            Status::NotBlocked => "process has no wait tree",
            Status::UnknownSource => "unknown deferred-work source",
            Status::Faulted => "process faulted",
            Status::NotServed => "the RPC daemon in dom0 will not serve this domain",
            Status::Rebound => "event channel allocated again",
            Status::PeerGone => "event channel's peer side lost",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Remote(code) => write!(f, "{} {}", self.name(), code),
            _ => f.write_str(self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_is_the_name_and_remote_shows_its_code() {
        assert_eq!(Status::NotComplete.to_string(), "event not complete");
        assert_eq!(Status::Remote(7).to_string(), "remote error 7");
        assert!(Status::Ok.is_ok());
        assert!(!Status::Cancelled.is_ok());
    }
}
