//! The shadowdaemon's request handling, apart from any Xen plumbing.
//!
//! * [`confine`]: each guest's folder `<root>/<guest-name>/`, validated guest names, and
//!   the path rules that keep a guest inside its folder.
//! * [`service`]: the operations (`Ping`, `Random`, file and directory ops), each a
//!   function of the guest's folder and the request.
//! * [`error`]: why an operation failed, and the named status the guest gets.
//! * [`quota`]: each guest's storage budget (bytes, entries, file size), counted.
//! * [`journal`]: exactly-once for changing requests sent again after a restart.
//! * [`trace`]: the guest kernel's event timeline, appended to `trace.json` in its
//!   folder (Chrome/Perfetto trace-event JSON); [`trace_svg`] draws one as an SVG.
//! * [`lock`]: one daemon per state folder.
//! * [`pool`]: a fixed set of worker threads behind a bounded queue.
//! * [`stats`]: a guest's live figures (`data/ethos/stats`), parsed as hostile input.
//! * [`serve`]: one guest's connection loop over an [`rpc::Responder`], generic over the
//!   shared memory and the event channel, so that host tests drive it over heap memory
//!   and the Xen transport (gntdev, evtchn, xenstore) plugs in later.
//!
//! The binary (`main.rs`) is the command line around this library and the rig's debug
//! tools.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod confine;
pub mod error;
pub mod journal;
pub mod lock;
pub mod pool;
pub mod quota;
pub mod serve;
pub mod service;
pub mod stats;
pub mod stream;
pub mod trace;
pub mod trace_svg;
