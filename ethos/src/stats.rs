//! The kernel's counters.
//!
//! `KernelStats` writes the counters as little-endian u64s: [`read`]
//! returns them by index, [`counters`] by name ([`Counters`], the kernel's
//! order).

use abi::Status;

use crate::raw;
use crate::sys;

/// The most counters [`read`] asks for.
pub const MAX_COUNTERS: usize = 64;

/// `KernelStats(out)`: fills `out` with the first counters; returns how
/// many were written.
pub fn read(out: &mut [u64]) -> Result<usize, Status> {
    let n = out.len().min(MAX_COUNTERS);
    let mut bytes = [0u8; MAX_COUNTERS * 8];
    let (written, _) = sys::check(raw::kernel_stats(&mut bytes[..n * 8]))?;
    let count = (written as usize).min(n * 8) / 8;
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)).take(count) {
        *o = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    }
    Ok(count)
}

/// The counters by name, in the order the kernel writes them
/// (`kernel/src/syscall/program.rs`, `kernel_stats`): the event table's
/// (all processes), the scheduler's, then memory. Read them with
/// [`counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events created.
    pub events_created: u64,
    /// Events completed.
    pub events_completed: u64,
    /// Events retired.
    pub events_retired: u64,
    /// Events cancelled.
    pub events_cancelled: u64,
    /// Events dropped with a process that exited holding them.
    pub events_discarded: u64,
    /// Wakes of a process blocked on a wait tree.
    pub wakes: u64,
    /// Completions that arrived together and woke once.
    pub coalesced: u64,
    /// Switches into a process.
    pub context_switches: u64,
    /// System calls made.
    pub syscalls: u64,
    /// Timers fired.
    pub timers_fired: u64,
    /// Upcalls taken.
    pub upcalls: u64,
    /// Event-channel port events handled.
    pub port_events: u64,
    /// Times the vCPU blocked with nothing to run.
    pub idle_blocks: u64,
    /// Programs preempted at the end of their time slice.
    pub preemptions: u64,
    /// Frames free for pages and address spaces.
    pub frames_free: u64,
    /// Kernel heap bytes in use.
    pub heap_used: u64,
    /// Kernel heap bytes free.
    pub heap_free: u64,
    /// User address spaces alive (one per running program).
    pub spaces: u64,
    /// Page-table frames of those spaces.
    pub space_tables: u64,
    /// Pages mapped in those spaces.
    pub space_mapped: u64,
}

/// How many counters [`Counters`] names.
pub const NAMED: usize = 20;

impl Counters {
    /// The counters from the words [`read`] filled in, or `None` when there
    /// are fewer than [`NAMED`] (a kernel that writes fewer is not the one
    /// these names describe).
    pub fn from_words(w: &[u64]) -> Option<Counters> {
        let w: &[u64; NAMED] = w.get(..NAMED)?.try_into().ok()?;
        Some(Counters {
            events_created: w[0],
            events_completed: w[1],
            events_retired: w[2],
            events_cancelled: w[3],
            events_discarded: w[4],
            wakes: w[5],
            coalesced: w[6],
            context_switches: w[7],
            syscalls: w[8],
            timers_fired: w[9],
            upcalls: w[10],
            port_events: w[11],
            idle_blocks: w[12],
            preemptions: w[13],
            frames_free: w[14],
            heap_used: w[15],
            heap_free: w[16],
            spaces: w[17],
            space_tables: w[18],
            space_mapped: w[19],
        })
    }

    /// Events created and not yet retired or discarded, all processes.
    pub fn events_outstanding(&self) -> u64 {
        self.events_created
            .saturating_sub(self.events_retired)
            .saturating_sub(self.events_discarded)
    }
}

/// [`read`] into named counters.
///
/// Errors: [`read`]'s, and [`Status::BadLength`] when the kernel wrote fewer
/// than [`NAMED`] counters.
pub fn counters() -> Result<Counters, Status> {
    let mut words = [0u64; NAMED];
    let n = read(&mut words)?;
    Counters::from_words(&words[..n]).ok_or(Status::BadLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_named_in_the_kernels_order() {
        let words: [u64; NAMED] = core::array::from_fn(|i| i as u64 * 10);
        let c = Counters::from_words(&words).unwrap();
        assert_eq!(c.events_created, 0);
        assert_eq!(c.wakes, 50);
        assert_eq!(c.context_switches, 70);
        assert_eq!(c.frames_free, 140);
        assert_eq!(c.spaces, 170);
        assert_eq!(c.space_mapped, 190);
        assert_eq!(Counters::from_words(&words[..NAMED - 1]), None);
        let mut more = [7u64; NAMED + 3];
        more[..NAMED].copy_from_slice(&words);
        assert_eq!(Counters::from_words(&more), Some(c));
    }

    #[test]
    fn outstanding_events_are_created_less_retired_and_discarded() {
        let c = Counters {
            events_created: 50,
            events_retired: 30,
            events_discarded: 5,
            ..Counters::default()
        };
        assert_eq!(c.events_outstanding(), 15);
    }

    #[test]
    fn a_kernel_writing_fewer_counters_is_a_named_error() {
        // The fake kernel writes three counters.
        assert_eq!(counters(), Err(Status::BadLength));
    }
}
