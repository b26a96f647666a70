//! The domain's end as the toolstack asks for it (`xl shutdown`, `xl
//! reboot`), told to processes as an event: Ethos has no signals, so a
//! process that wants to finish its work first asks for a shutdown event
//! (`ShutdownEvent`) and puts it in its wait trees like any other; it
//! completes, with the kind as a word, when the request comes.
//!
//! From the request on, the processes have a grace period
//! ([`abi::shutdown::GRACE_NS`]) to exit on their own; when it is over the
//! kernel loop ends those still running, and the kernel ends the domain
//! as asked. A domain where no process holds a shutdown event has nobody
//! to wait for: its grace period is over at once.
//!
//! The request itself comes from the `control` service, which watches
//! `control/shutdown` in xenstore; this module only keeps the state, as an
//! event source (its completions go out at the next pass of deferred work).

use crate::status::{SysError, SysResult};
use alloc::vec::Vec;
use events::{Completion, EventId, Pid, Status, Value};
use spin::Mutex;

/// What the toolstack asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Poweroff,
    Reboot,
}

impl Kind {
    /// The word a shutdown event carries (`abi::shutdown`).
    pub fn word(self) -> u64 {
        match self {
            Kind::Poweroff => abi::shutdown::POWEROFF,
            Kind::Reboot => abi::shutdown::REBOOT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Poweroff => "poweroff",
            Kind::Reboot => "reboot",
        }
    }
}

/// Waiters at most: one per process, and processes are bounded; this only
/// keeps a bug elsewhere from growing the list.
const MAX_WAITERS: usize = 64;

/// The request, and the events waiting for one.
pub struct State {
    /// The request and when its grace period ends (kernel ns).
    asked: Option<(Kind, u64)>,
    /// Processes' shutdown events not yet completed.
    waiters: Vec<(Pid, EventId)>,
    /// Completions made by the request, for the next poll.
    told: Vec<Completion>,
}

static STATE: Mutex<State> = Mutex::new(State::new());

fn completion(event: EventId, kind: Kind) -> Completion {
    Completion {
        event,
        status: Status::Ok,
        value: Value::Word(kind.word()),
    }
}

impl Default for State {
    fn default() -> State {
        State::new()
    }
}

impl State {
    pub const fn new() -> State {
        State {
            asked: None,
            waiters: Vec::new(),
            told: Vec::new(),
        }
    }

    /// `pid`'s new shutdown event `event`: it completes at the request, or
    /// at once (the completion returned) if the request has come already.
    /// `Busy` if `pid` holds one still pending.
    pub fn subscribe(&mut self, pid: Pid, event: EventId) -> SysResult<Option<Completion>> {
        if let Some((kind, _)) = self.asked {
            return Ok(Some(completion(event, kind)));
        }
        if self.waiters.iter().any(|(p, _)| *p == pid) || self.waiters.len() >= MAX_WAITERS {
            return Err(SysError::Busy);
        }
        self.waiters.push((pid, event));
        Ok(None)
    }

    /// The toolstack asks the domain to stop, at `now_ns`: every shutdown
    /// event completes (at the next [`State::take_told`]), and the grace
    /// period starts (none if nobody holds one). A second request changes
    /// nothing: the first is being carried out. Returns how many processes
    /// were told, or `None` for a repeat.
    pub fn request(&mut self, kind: Kind, now_ns: u64) -> Option<usize> {
        if self.asked.is_some() {
            return None;
        }
        let waiters = core::mem::take(&mut self.waiters);
        let grace = if waiters.is_empty() {
            0
        } else {
            abi::shutdown::GRACE_NS
        };
        self.asked = Some((kind, now_ns.saturating_add(grace)));
        self.told = waiters
            .iter()
            .map(|(_, event)| completion(*event, kind))
            .collect();
        Some(waiters.len())
    }

    pub fn asked(&self) -> Option<Kind> {
        self.asked.map(|(kind, _)| kind)
    }

    /// Whether a request's grace period is over at `now_ns`.
    pub fn grace_over(&self, now_ns: u64) -> bool {
        self.asked.is_some_and(|(_, deadline)| now_ns >= deadline)
    }

    /// When the grace period ends, once asked.
    pub fn deadline(&self) -> Option<u64> {
        self.asked.map(|(_, deadline)| deadline)
    }

    /// The completions the request made, once.
    pub fn take_told(&mut self) -> Vec<Completion> {
        core::mem::take(&mut self.told)
    }

    /// An exited process's pending shutdown event goes with it.
    pub fn forget(&mut self, pid: Pid) {
        self.waiters.retain(|(p, _)| *p != pid);
    }
}

/// [`State::subscribe`] on the kernel's state.
pub fn subscribe(pid: Pid, event: EventId) -> SysResult<Option<Completion>> {
    STATE.lock().subscribe(pid, event)
}

/// [`State::request`] on the kernel's state.
pub fn request(kind: Kind, now_ns: u64) -> Option<usize> {
    STATE.lock().request(kind, now_ns)
}

/// What was asked, if anything.
pub fn asked() -> Option<Kind> {
    STATE.lock().asked()
}

/// Whether a request's grace period is over at `now_ns`: the processes
/// still running are to be ended.
pub fn grace_over(now_ns: u64) -> bool {
    STATE.lock().grace_over(now_ns)
}

/// Shutdown requests as an event source: completes the events the request
/// made, and wakes the idle loop when the grace period ends.
pub struct ShutdownSource;

impl super::Source for ShutdownSource {
    fn name(&self) -> &'static str {
        "shutdown"
    }
    fn port(&self) -> Option<u32> {
        None
    }
    fn on_port(&self) -> Vec<Completion> {
        Vec::new()
    }
    fn poll(&self) -> Vec<Completion> {
        STATE.lock().take_told()
    }
    fn next_deadline(&self) -> Option<u64> {
        STATE.lock().deadline()
    }
    fn forget(&self, pid: Pid) {
        STATE.lock().forget(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_request_completes_every_waiter_once_and_starts_the_grace_period() {
        let mut s = State::new();
        assert_eq!(s.subscribe(Pid(1), EventId(11)), Ok(None));
        assert_eq!(s.subscribe(Pid(2), EventId(22)), Ok(None));
        // One pending per process.
        assert_eq!(s.subscribe(Pid(1), EventId(12)), Err(SysError::Busy));
        // An exited process is told nothing.
        assert_eq!(s.subscribe(Pid(3), EventId(33)), Ok(None));
        s.forget(Pid(3));
        assert!(!s.grace_over(u64::MAX));
        assert_eq!(s.request(Kind::Reboot, 10 * SECOND), Some(2));
        let told = s.take_told();
        assert_eq!(told.len(), 2);
        for (c, event) in told.iter().zip([EventId(11), EventId(22)]) {
            assert_eq!(c.event, event);
            assert_eq!(c.status, Status::Ok);
            assert_eq!(c.value, Value::Word(abi::shutdown::REBOOT));
        }
        assert!(s.take_told().is_empty(), "told once");
        assert_eq!(s.asked(), Some(Kind::Reboot));
        let end = 10 * SECOND + abi::shutdown::GRACE_NS;
        assert_eq!(s.deadline(), Some(end));
        assert!(!s.grace_over(end - 1));
        assert!(s.grace_over(end));
        // A repeat changes nothing, not even the kind.
        assert_eq!(s.request(Kind::Poweroff, 11 * SECOND), None);
        assert_eq!(s.asked(), Some(Kind::Reboot));
        // Asked for after the request: complete at once.
        let late = s.subscribe(Pid(4), EventId(44)).unwrap().unwrap();
        assert_eq!(late.value, Value::Word(abi::shutdown::REBOOT));
    }

    #[test]
    fn with_nobody_listening_the_grace_period_is_over_at_once() {
        let mut s = State::new();
        assert_eq!(s.request(Kind::Poweroff, 5 * SECOND), Some(0));
        assert!(s.grace_over(5 * SECOND));
        assert_eq!(s.asked(), Some(Kind::Poweroff));
    }
}
