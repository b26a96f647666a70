//! The domain's end as the toolstack asks for it: `xl shutdown` and `xl
//! reboot`. Ethos has no signals: a program that wants to finish its work
//! when the domain is asked to stop takes a shutdown event and puts it in
//! its wait trees beside the rest:
//!
//! ```no_run
//! use ethos::{event, shutdown, time, Tree};
//! let stop = shutdown::event()?;
//! let work = time::beep_in(60 * 1_000_000_000)?;
//! event::wait(&Tree::any([stop, work]))?;
//! if let Some(kind) = shutdown::poll(stop)? {
//!     // Save what must be saved, then exit within the grace period.
//!     ethos::println!("asked to {kind}: done");
//! }
//! # Ok::<(), ethos::Status>(())
//! ```
//!
//! From the request on, the domain's processes have
//! [`GRACE_NS`] to exit; the kernel then ends those still running and the
//! domain stops as asked. A domain where no process holds a shutdown
//! event stops at once.

use core::fmt;

use abi::{Call, Status};

use crate::event::{self as ev, Event};
use crate::sys::{self, args};

pub use abi::shutdown::GRACE_NS;

/// How the toolstack asked the domain to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `xl shutdown`: the domain powers off.
    Poweroff,
    /// `xl reboot`: the domain ends and the toolstack starts it again.
    Reboot,
}

impl Kind {
    /// The kind a shutdown event's word names (`None` for another word).
    pub fn from_word(word: u64) -> Option<Kind> {
        match word {
            abi::shutdown::POWEROFF => Some(Kind::Poweroff),
            abi::shutdown::REBOOT => Some(Kind::Reboot),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Poweroff => "power off",
            Kind::Reboot => "reboot",
        })
    }
}

/// `ShutdownEvent()`: an event that completes when the toolstack asks the
/// domain to stop (at once if it has asked already); retire it with
/// [`poll`] or [`wait`]. One pending per process: a second while the first
/// is pending is [`Status::Busy`].
pub fn event() -> Result<Event, Status> {
    sys::call_event(Call::ShutdownEvent, args([]))
}

/// Retires a completed shutdown event: `Some(kind)`; `None` while it is
/// still pending (nothing retired, so it stays in the caller's trees).
pub fn poll(event: Event) -> Result<Option<Kind>, Status> {
    match ev::retire_word(event) {
        Ok(r) => decode(r.status, r.value).map(Some),
        Err(Status::NotComplete) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Blocks until the toolstack asks the domain to stop.
pub fn wait(event: Event) -> Result<Kind, Status> {
    let r = ev::block_and_retire(event)?;
    decode(r.status, r.value)
}

fn decode(status: Status, word: u64) -> Result<Kind, Status> {
    if status != Status::Ok {
        return Err(status);
    }
    // A kind this library does not know (a newer kernel): named, not guessed.
    Kind::from_word(word).ok_or(Status::InvalidArgument)
}
