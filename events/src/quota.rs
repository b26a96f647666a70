//! Limits: per-process quotas and the table's own bounds.
//!
//! Nothing in the event model is unbounded. A process may hold at most
//! [`Quota::max_events`] outstanding events (created and not yet retired, cancelled ones
//! included, since they still hold a slot) and block on trees of at most
//! [`Quota::max_tree_elements`] elements; the whole table holds at most
//! [`Config::capacity`] events. Reaching a limit gives the caller a named status
//! ([`Status::QuotaExceeded`](crate::Status::QuotaExceeded),
//! [`Status::TreeTooLarge`](crate::Status::TreeTooLarge),
//! [`Status::TableFull`](crate::Status::TableFull)); nothing is dropped.

/// Per-process limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Most events the process may hold at once (created and not yet retired).
    pub max_events: u32,
    /// Most elements (leaves plus inner nodes) in one wait tree of the process.
    pub max_tree_elements: u32,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_events: 1 << 16,
            max_tree_elements: 1 << 17,
        }
    }
}

/// How an [`EventTable`](crate::EventTable) is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most events in the table at once, over all processes. At most `u32::MAX`.
    pub capacity: u32,
    /// The quota of a process that was given none with
    /// [`EventTable::set_quota`](crate::EventTable::set_quota).
    pub default_quota: Quota,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            capacity: 1 << 20,
            default_quota: Quota::default(),
        }
    }
}
