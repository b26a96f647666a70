//! The processes' event channels, by handle: what each was made as, who
//! owns it, who waits on it, and how it fares when the domain is restored
//! or migrated into a new one (every Xen port changes then; a handle does
//! not). Pure bookkeeping, tested on the host: `xen::evtchn` holds the
//! table and makes the hypercalls.

use crate::status::{SysError, SysResult};

/// How a process's channel was made: what the kernel needs to make it
/// again in a new domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Allocated unbound for domain `remote`: after a restore it is
    /// allocated again for `remote` (a new port under the same handle).
    Unbound { remote: u16 },
    /// Bound to a peer's port: the peer's side of it went with the old
    /// domain, so after a restore the channel is lost (`PeerGone`).
    Interdomain,
}

/// One process's event channel. The process names it by `handle`, never
/// by the Xen port: ports are the domain's and all change with a restore,
/// the handle does not.
struct Channel {
    handle: u32,
    owner: events::Pid,
    /// The Xen port now; `None` once the channel is lost.
    port: Option<u32>,
    binding: Binding,
    waiter: Option<events::EventId>,
    /// Notifications that arrived with nobody waiting (counted, not queued).
    unclaimed: u64,
    /// Allocated again after a restore while no wait was pending: the next
    /// wait is told (`Rebound`) before it waits for notifications.
    rebound_untold: bool,
}

/// Most channels processes may hold at once.
const MAX_PROCESS_CHANNELS: usize = 64;

/// The processes' channels. A handful at most: a vector searched in
/// order costs the image less than a map, and a lookup is a few compares.
pub struct Channels {
    list: alloc::vec::Vec<Channel>,
    next_handle: u32,
}

impl Default for Channels {
    fn default() -> Channels {
        Channels::new()
    }
}

/// What a wait gets at once instead of waiting: the event's status and word.
pub type Immediate = (events::Status, u64);

impl Channels {
    pub const fn new() -> Channels {
        Channels {
            list: alloc::vec::Vec::new(),
            next_handle: 1,
        }
    }

    fn get(&mut self, owner: events::Pid, handle: u32) -> SysResult<&mut Channel> {
        self.list
            .iter_mut()
            .find(|c| c.handle == handle && c.owner == owner)
            .ok_or(SysError::BadHandle)
    }

    /// Records `port`, made as `binding`, as `owner`'s; returns its handle.
    /// Handles are never 0 and never shared by two live channels.
    pub fn adopt(&mut self, owner: events::Pid, port: u32, binding: Binding) -> SysResult<u32> {
        if self.list.len() >= MAX_PROCESS_CHANNELS {
            return Err(SysError::Busy);
        }
        let mut handle = self.next_handle;
        while handle == 0 || self.list.iter().any(|c| c.handle == handle) {
            handle = handle.wrapping_add(1);
        }
        self.next_handle = handle.wrapping_add(1);
        self.list.push(Channel {
            handle,
            owner,
            port: Some(port),
            binding,
            waiter: None,
            unclaimed: 0,
            rebound_untold: false,
        });
        Ok(handle)
    }

    /// The Xen port of `owner`'s `handle`, to notify; `PeerGone` for a
    /// channel lost with an old domain.
    pub fn port(&mut self, owner: events::Pid, handle: u32) -> SysResult<u32> {
        self.get(owner, handle)?
            .port
            .ok_or(SysError::Event(events::Status::PeerGone))
    }

    /// A notification arrived on `port`. Returns the waiter to complete,
    /// with the number of notifications it covers; `None` if the port is
    /// no process's (then it is someone else's business).
    pub fn on_port(&mut self, port: u32) -> Option<Option<(events::EventId, u64)>> {
        let c = self.list.iter_mut().find(|c| c.port == Some(port))?;
        c.unclaimed += 1;
        Some(
            c.waiter
                .take()
                .map(|w| (w, core::mem::take(&mut c.unclaimed))),
        )
    }

    /// Makes `event` complete at the channel's next notification, or
    /// returns what it completes with at once: `PeerGone` (a lost
    /// channel, every time), `Rebound` with the new port (once, if no wait
    /// was there to be told at the restore), or `Ok` with the number of
    /// notifications that arrived since the last wait.
    pub fn wait(
        &mut self,
        owner: events::Pid,
        handle: u32,
        event: events::EventId,
        still_waiting: impl Fn(events::EventId) -> bool,
    ) -> SysResult<Option<Immediate>> {
        let c = self.get(owner, handle)?;
        if let Some(w) = c.waiter {
            if still_waiting(w) {
                return Err(SysError::Busy);
            }
            // The old waiter was cancelled or retired: it waits no more.
            c.waiter = None;
        }
        let Some(port) = c.port else {
            return Ok(Some((events::Status::PeerGone, 0)));
        };
        if core::mem::take(&mut c.rebound_untold) {
            return Ok(Some((events::Status::Rebound, u64::from(port))));
        }
        if c.unclaimed > 0 {
            return Ok(Some((
                events::Status::Ok,
                core::mem::take(&mut c.unclaimed),
            )));
        }
        c.waiter = Some(event);
        Ok(None)
    }

    /// Forgets `owner`'s `handle` (it is closed); returns its Xen port, to
    /// close (none for a lost channel), and its waiter, to cancel.
    pub fn disown(
        &mut self,
        owner: events::Pid,
        handle: u32,
    ) -> SysResult<(Option<u32>, Option<events::EventId>)> {
        let i = self
            .list
            .iter()
            .position(|c| c.handle == handle && c.owner == owner)
            .ok_or(SysError::BadHandle)?;
        let c = self.list.swap_remove(i);
        Ok((c.port, c.waiter))
    }

    /// Forgets every channel of an exited process; returns their Xen
    /// ports, to close (its events went with it).
    pub fn disown_all(&mut self, owner: events::Pid) -> alloc::vec::Vec<u32> {
        let mut ports = alloc::vec::Vec::new();
        self.list.retain(|c| {
            if c.owner == owner {
                ports.extend(c.port);
            }
            c.owner != owner
        });
        ports
    }

    /// The domain is new (restored or migrated): every old port is gone.
    /// Each channel allocated unbound is allocated again for its remote
    /// domain by `alloc_unbound`; the others (bound to a peer's port, or
    /// refused a new port) are lost. Each waiter is told at once, so that
    /// no wait waits for a port that no longer exists: `Rebound` with the
    /// new port as its word (the process tells its peer), or `PeerGone`.
    /// A channel with no waiter tells its next wait. Notifications counted
    /// before the suspend stay counted. Returns the completions and how
    /// many channels were allocated again and lost.
    pub fn resume(
        &mut self,
        mut alloc_unbound: impl FnMut(u16) -> Result<u32, i64>,
    ) -> (alloc::vec::Vec<events::Completion>, usize, usize) {
        let mut done = alloc::vec::Vec::new();
        let (mut rebound, mut lost) = (0, 0);
        for c in &mut self.list {
            let new_port = match (c.port, c.binding) {
                (Some(_), Binding::Unbound { remote }) => alloc_unbound(remote)
                    .map_err(|e| {
                        log::warn!("event channel {}: no new port: Xen error {e}", c.handle)
                    })
                    .ok(),
                _ => None,
            };
            c.port = new_port;
            let (status, word) = match new_port {
                Some(port) => {
                    rebound += 1;
                    (events::Status::Rebound, u64::from(port))
                }
                None => {
                    lost += 1;
                    c.rebound_untold = false;
                    (events::Status::PeerGone, 0)
                }
            };
            match c.waiter.take() {
                Some(event) => done.push(events::Completion {
                    event,
                    status,
                    value: events::Value::Word(word),
                }),
                None => c.rebound_untold = new_port.is_some(),
            }
        }
        (done, rebound, lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{EventId, Pid, Status, Value};

    const A: Pid = Pid(1);
    const B: Pid = Pid(2);

    fn nobody_waits(_: EventId) -> bool {
        false
    }

    fn still_waits(_: EventId) -> bool {
        true
    }

    /// A new domain's Xen: ports from 40 on, remote domains remembered.
    fn new_domain(asked: &mut Vec<u16>) -> impl FnMut(u16) -> Result<u32, i64> + '_ {
        move |remote| {
            asked.push(remote);
            Ok(40 + asked.len() as u32 - 1)
        }
    }

    #[test]
    fn handles_are_the_owners_alone_and_not_ports() {
        let mut c = Channels::new();
        let h = c.adopt(A, 7, Binding::Unbound { remote: 0 }).unwrap();
        assert_ne!(h, 0);
        assert_eq!(c.port(A, h), Ok(7));
        // The port number is no handle, and another process's handle is
        // no handle of ours.
        assert_eq!(c.port(A, 7), Err(SysError::BadHandle));
        assert_eq!(c.port(B, h), Err(SysError::BadHandle));
        assert_eq!(
            c.wait(B, h, EventId(9), nobody_waits),
            Err(SysError::BadHandle)
        );
        let h2 = c.adopt(A, 8, Binding::Interdomain).unwrap();
        assert_ne!(h, h2);
        assert_eq!(c.disown(B, h), Err(SysError::BadHandle));
        assert_eq!(c.disown(A, h), Ok((Some(7), None)));
        assert_eq!(c.disown(A, h), Err(SysError::BadHandle));
        // A closed handle is not given out again while another lives.
        let h3 = c.adopt(A, 9, Binding::Interdomain).unwrap();
        assert!(h3 != h2 && h3 != h);
    }

    #[test]
    fn notifications_wake_the_waiter_or_are_counted() {
        let mut c = Channels::new();
        let h = c.adopt(A, 7, Binding::Interdomain).unwrap();
        assert_eq!(c.on_port(99), None, "not a process's port");
        assert_eq!(c.on_port(7), Some(None));
        assert_eq!(c.on_port(7), Some(None));
        assert_eq!(
            c.wait(A, h, EventId(1), nobody_waits),
            Ok(Some((Status::Ok, 2)))
        );
        assert_eq!(c.wait(A, h, EventId(2), nobody_waits), Ok(None));
        assert_eq!(c.wait(A, h, EventId(3), still_waits), Err(SysError::Busy));
        assert_eq!(c.on_port(7), Some(Some((EventId(2), 1))));
    }

    #[test]
    fn a_restore_allocates_unbound_channels_again_and_tells_their_waiters() {
        let mut c = Channels::new();
        let for_dom0 = c.adopt(A, 5, Binding::Unbound { remote: 0 }).unwrap();
        let for_dom3 = c.adopt(B, 6, Binding::Unbound { remote: 3 }).unwrap();
        let bound = c.adopt(A, 7, Binding::Interdomain).unwrap();
        assert_eq!(c.wait(A, for_dom0, EventId(10), nobody_waits), Ok(None));
        assert_eq!(c.wait(A, bound, EventId(11), nobody_waits), Ok(None));
        // A notification came before the suspend for the channel nobody
        // waits on: it stays counted.
        assert_eq!(c.on_port(6), Some(None));

        let mut asked = Vec::new();
        let (done, rebound, lost) = c.resume(new_domain(&mut asked));
        assert_eq!(asked, [0, 3], "each for its own remote domain");
        assert_eq!((rebound, lost), (2, 1));
        assert_eq!(
            done,
            [
                events::Completion {
                    event: EventId(10),
                    status: Status::Rebound,
                    value: Value::Word(40)
                },
                events::Completion {
                    event: EventId(11),
                    status: Status::PeerGone,
                    value: Value::Word(0)
                },
            ]
        );
        // Same handles, new ports; the old ports are nobody's.
        assert_eq!(c.port(A, for_dom0), Ok(40));
        assert_eq!(c.port(B, for_dom3), Ok(41));
        assert_eq!(c.on_port(5), None);
        // The told waiter's next wait waits; a notification on the new
        // port wakes it.
        assert_eq!(c.wait(A, for_dom0, EventId(12), nobody_waits), Ok(None));
        assert_eq!(c.on_port(40), Some(Some((EventId(12), 1))));
        // Nobody waited on dom3's: its next wait is told first, once, then
        // gets the notification counted before the suspend.
        assert_eq!(
            c.wait(B, for_dom3, EventId(13), nobody_waits),
            Ok(Some((Status::Rebound, 41)))
        );
        assert_eq!(
            c.wait(B, for_dom3, EventId(14), nobody_waits),
            Ok(Some((Status::Ok, 1)))
        );
        assert_eq!(c.wait(B, for_dom3, EventId(15), nobody_waits), Ok(None));
    }

    #[test]
    fn a_lost_channel_answers_peer_gone_until_closed() {
        let mut c = Channels::new();
        let bound = c.adopt(A, 7, Binding::Interdomain).unwrap();
        let refused = c.adopt(A, 8, Binding::Unbound { remote: 0 }).unwrap();
        let (done, rebound, lost) = c.resume(|_| Err(-12));
        assert!(done.is_empty(), "nobody waited");
        assert_eq!((rebound, lost), (0, 2));
        for h in [bound, refused] {
            assert_eq!(
                c.port(A, h),
                Err(SysError::Event(Status::PeerGone)),
                "no notify"
            );
            for n in 0..2 {
                assert_eq!(
                    c.wait(A, h, EventId(20 + n), nobody_waits),
                    Ok(Some((Status::PeerGone, 0))),
                    "every wait, at once"
                );
            }
            // Closing it closes no Xen port: it has none.
            assert_eq!(c.disown(A, h), Ok((None, None)));
        }
        // A second restore asks Xen for nothing more.
        let lost_again = c.adopt(A, 9, Binding::Interdomain).unwrap();
        c.resume(|_| Err(-12));
        let mut asked = Vec::new();
        let (done, rebound, lost) = c.resume(new_domain(&mut asked));
        assert!(done.is_empty() && asked.is_empty());
        assert_eq!((rebound, lost), (0, 1));
        assert_eq!(c.disown(A, lost_again), Ok((None, None)));
    }

    #[test]
    fn an_untold_rebind_survives_a_second_restore_and_exit_closes_the_ports() {
        let mut c = Channels::new();
        let h = c.adopt(A, 5, Binding::Unbound { remote: 0 }).unwrap();
        let other = c.adopt(B, 6, Binding::Interdomain).unwrap();
        let mut asked = Vec::new();
        c.resume(new_domain(&mut asked));
        let mut asked = Vec::new();
        c.resume(new_domain(&mut asked));
        assert_eq!(
            c.wait(A, h, EventId(1), nobody_waits),
            Ok(Some((Status::Rebound, 40)))
        );
        let lost_port = c.adopt(A, 50, Binding::Interdomain).unwrap();
        assert_ne!(lost_port, h);
        assert_eq!(c.disown_all(A), [40, 50]);
        assert_eq!(c.port(A, h), Err(SysError::BadHandle));
        assert_eq!(c.port(B, other), Err(SysError::Event(Status::PeerGone)));
        assert!(c.disown_all(B).is_empty(), "a lost channel has no port");
    }

    #[test]
    fn the_table_is_bounded() {
        let mut c = Channels::new();
        for port in 0..MAX_PROCESS_CHANNELS as u32 {
            c.adopt(A, port, Binding::Interdomain).unwrap();
        }
        assert_eq!(c.adopt(B, 999, Binding::Interdomain), Err(SysError::Busy));
    }
}
