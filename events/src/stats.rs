//! Counters, per process and for the whole table.
//!
//! They let the kernel (and tests) check that the books balance: every created event is
//! eventually retired or discarded at process exit, so at any moment
//! `created == retired + discarded + outstanding`.

use core::ops::AddAssign;

/// Event counters. All only ever grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events created.
    pub created: u64,
    /// Events completed by the kernel side (cancelled ones excluded).
    pub completed: u64,
    /// Events retired by their process.
    pub retired: u64,
    /// Events cancelled by their process.
    pub cancelled: u64,
    /// Completions that arrived for cancelled events and were ignored.
    pub ignored: u64,
    /// Wakes: a wait tree's root completed while its process slept. A tree
    /// already satisfied at block time is not a wake (no context switch).
    pub wakes: u64,
    /// Occurrences of deferred work that were coalesced into a count because the deferred
    /// queue was full, as attributed by the kernel with
    /// [`EventTable::note_coalesced`](crate::EventTable::note_coalesced).
    pub coalesced: u64,
    /// Events freed without being retired because their process exited.
    pub discarded: u64,
}

impl Stats {
    /// Events currently held (created, not yet retired or discarded).
    pub const fn outstanding(&self) -> u64 {
        self.created - self.retired - self.discarded
    }
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.created += o.created;
        self.completed += o.completed;
        self.retired += o.retired;
        self.cancelled += o.cancelled;
        self.ignored += o.ignored;
        self.wakes += o.wakes;
        self.coalesced += o.coalesced;
        self.discarded += o.discarded;
    }
}
