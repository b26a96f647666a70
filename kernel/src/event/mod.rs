//! Events as the kernel keeps them beside the event table: the registry of
//! event sources, and timers.
//!
//! A source is a service that completes events: xenstore, the RPC channel,
//! the network stack. It returns [`Completion`]s and never calls the
//! scheduler; the scheduler reaches every source through this registry, by
//! what it is (a port, a poll, a deadline, a process to forget), never by
//! name. `boot` registers each source once it is up, so a kernel without
//! networking simply has one source fewer.

pub mod shutdown;
pub mod timers;
#[cfg(target_os = "none")]
pub mod trace;

use alloc::vec::Vec;
use events::{Completion, Pid};

/// A service that completes events.
pub trait Source: Sync {
    /// For log lines.
    fn name(&self) -> &'static str;
    /// The event-channel port its peer notifies, once it has one.
    fn port(&self) -> Option<u32>;
    /// Its port fired: take what the peer sent. Runs as deferred work,
    /// never in the upcall.
    fn on_port(&self) -> Vec<Completion>;
    /// Called on every pass of deferred work, after the ports: work that
    /// is due by time or was left by `on_port`.
    fn poll(&self) -> Vec<Completion> {
        Vec::new()
    }
    /// When it next needs `poll` without a notification (kernel ns).
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    /// A process exited: drop what it asked for (its events are gone).
    fn forget(&self, _pid: Pid) {}
}

/// Sources there can be: xenstore, the RPC channel, the network, and room.
const MAX_SOURCES: usize = 8;

/// The registered sources: a fixed array, so that copying it out (on every
/// pass of deferred work, i.e. every return to user) allocates nothing.
#[derive(Clone, Copy)]
pub struct Sources {
    list: [Option<&'static dyn Source>; MAX_SOURCES],
}

impl Sources {
    const EMPTY: Sources = Sources {
        list: [None; MAX_SOURCES],
    };

    /// The sources, in the order they were registered.
    pub fn iter(&self) -> impl Iterator<Item = &'static dyn Source> + '_ {
        self.list.iter().map_while(|s| *s)
    }
}

static SOURCES: spin::Mutex<Sources> = spin::Mutex::new(Sources::EMPTY);

/// Why a source could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryFull;

/// Adds a source; registering one of the same name again is harmless.
///
/// Sources are told apart by name, not by address: they are mostly
/// zero-sized statics, and two of those may share one address.
pub fn register(source: &'static dyn Source) -> Result<(), RegistryFull> {
    let mut sources = SOURCES.lock();
    if sources.iter().any(|s| s.name() == source.name()) {
        return Ok(());
    }
    let free = sources
        .list
        .iter_mut()
        .find(|s| s.is_none())
        .ok_or(RegistryFull)?;
    *free = Some(source);
    Ok(())
}

/// The registered sources, copied out so that none runs under the lock.
pub fn sources() -> Sources {
    *SOURCES.lock()
}

/// The earliest deadline any source asked for.
pub fn next_deadline() -> Option<u64> {
    sources().iter().filter_map(|s| s.next_deadline()).min()
}

/// Tells every source that `pid` exited.
pub fn forget(pid: Pid) {
    for s in sources().iter() {
        s.forget(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;
    impl Source for A {
        fn name(&self) -> &'static str {
            "a"
        }
        fn port(&self) -> Option<u32> {
            Some(1)
        }
        fn on_port(&self) -> Vec<Completion> {
            Vec::new()
        }
    }
    impl Source for B {
        fn name(&self) -> &'static str {
            "b"
        }
        fn port(&self) -> Option<u32> {
            Some(2)
        }
        fn on_port(&self) -> Vec<Completion> {
            Vec::new()
        }
        fn next_deadline(&self) -> Option<u64> {
            Some(7)
        }
        fn forget(&self, pid: Pid) {
            FORGOTTEN.lock().push(pid);
        }
    }

    /// The pids `B` was told to forget (the network stack's sockets and
    /// xenstore's watches go this way when a process exits or faults).
    static FORGOTTEN: spin::Mutex<Vec<Pid>> = spin::Mutex::new(Vec::new());

    #[test]
    fn zero_sized_sources_are_all_registered_once() {
        static SA: A = A;
        static SB: B = B;
        register(&SA).unwrap();
        register(&SB).unwrap();
        register(&SA).unwrap();
        let names: Vec<&str> = sources().iter().map(|s| s.name()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(next_deadline(), Some(7));
        // The reaper's one call reaches every source that holds per-process
        // state (A keeps the default, which holds none).
        forget(Pid(5));
        assert_eq!(*FORGOTTEN.lock(), [Pid(5)]);
    }
}
