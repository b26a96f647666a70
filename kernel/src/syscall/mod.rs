//! The system calls: the only code that copies between processes and the
//! kernel (Ethos's rule), so moving processes to user mode later changes
//! this one module. Every call returns a named status; none blocks except
//! `block` and `block_and_retire`, which are what blocking means.

pub mod lifecycle;
#[cfg(feature = "net")]
pub mod net;
pub mod program;

use crate::mm::pages::{self, PageCap};
use crate::proc::sched::{self, with_current};
use crate::status::{SysError, SysResult};
use crate::xen::evtchn::{self, Binding};
use crate::xen::xenstore::{self as xs, Expect};
use alloc::vec::Vec;
use events::{Element, EventId, Listing, Pid, Retired, ValueKind};
use xen::xenstore::Request;

/// The Xen system time now, in ns.
pub fn get_time() -> u64 {
    let now = crate::clock::now_ns();
    syscall_return();
    now
}

/// Wall-clock time: (seconds, nanoseconds) since the Unix epoch.
pub fn wall_clock() -> (u64, u32) {
    let now = crate::clock::wall_clock();
    syscall_return();
    now
}

/// The caller's process id.
pub fn get_pid() -> SysResult<Pid> {
    let r = with_current(|_, pid| Ok(pid));
    syscall_return();
    r
}

/// Starts a timer that completes the returned event at `deadline_ns` (Xen
/// system time) with the time it fired as a word.
pub fn beep(deadline_ns: u64) -> SysResult<EventId> {
    timer(deadline_ns, false)
}

/// Like [`beep`], but the timer does not wake the vCPU unless a process
/// was woken since it was set: it fires at the first pass at or past
/// `deadline_ns` where the kernel is awake (`Kernel::set_lazy_timer`), so
/// an idle guest is never woken for it. Kernel services only, no call
/// number: there is one such timer in the kernel, the `control` service's
/// tick of the live figures, and a new one replaces it.
pub fn beep_lazy(deadline_ns: u64) -> SysResult<EventId> {
    timer(deadline_ns, true)
}

// One copy for both kinds of timer: the core image must stay small.
#[inline(never)]
fn timer(deadline_ns: u64, lazy: bool) -> SysResult<EventId> {
    let r = with_current(|k, pid| {
        let id = k.events().create(pid, ValueKind::Word)?;
        if lazy {
            k.set_lazy_timer(deadline_ns, id);
        } else if let Err(e) = k.set_timer(pid, deadline_ns, id) {
            // Leave nothing behind: the event must not wait forever.
            let _ = k.events().cancel(pid, id);
            let _ = k.events().retire(pid, id);
            return Err(e);
        }
        Ok(id)
    });
    if !lazy {
        sched::reprogram_timer();
    }
    syscall_return();
    r
}

/// Writes a line on the console, tagged with the caller's pid.
pub fn print(text: &str) -> SysResult<()> {
    // Copy in first: the kernel never logs from process memory directly.
    let mut copy = Vec::new();
    copy.try_reserve_exact(text.len())
        .map_err(|_| SysError::OutOfMemory)?;
    copy.extend_from_slice(text.as_bytes());
    let pid = with_current(|_, pid| Ok(pid))?;
    log::info!(target: "app", "[pid {}] {}", pid.0, core::str::from_utf8(&copy).unwrap_or("<invalid utf-8>"));
    syscall_return();
    Ok(())
}

/// Blocks on a wait tree (Ethos's flat spec) until its root completes.
/// Returns the leaves that had completed. If the tree is already
/// satisfied, returns at once without a context switch.
pub fn block(spec: &[Element]) -> SysResult<Vec<EventId>> {
    let mut copy = Vec::new();
    copy.try_reserve_exact(spec.len())
        .map_err(|_| SysError::OutOfMemory)?;
    copy.extend_from_slice(spec);
    let r = with_current(|k, pid| Ok(k.events().block(pid, &copy)?));
    let leaves = match r {
        Ok(events::Blocked::Satisfied(leaves)) => Ok(leaves),
        Ok(events::Blocked::Waiting) => sched::sleep_current(),
        Err(e) => Err(e),
    };
    syscall_return();
    leaves
}

/// Retires a completed event: its status and value; the id is dead after.
pub fn retire(id: EventId) -> SysResult<Retired> {
    let r = with_current(|k, pid| Ok(k.events().retire(pid, id)?));
    syscall_return();
    r
}

/// Blocks until `id` completes, then retires it.
pub fn block_and_retire(id: EventId) -> SysResult<Retired> {
    block(&[Element::leaf(id, 1), Element::node(Element::NO_PARENT, 1)])?;
    retire(id)
}

/// Cancels a pending event: a later completion is ignored and retiring it
/// reports `Cancelled`.
pub fn cancel(id: EventId) -> SysResult<()> {
    let r = with_current(|k, pid| {
        // A running process has no tree installed (blocking either returns
        // at once or sleeps), so a cancel cannot wake anyone: no wake to act on.
        k.events().cancel(pid, id)?;
        Ok(())
    });
    syscall_return();
    r
}

/// The caller's pending and completed events.
pub fn list() -> SysResult<Listing> {
    let r = with_current(|k, pid| Ok(k.events().list(pid)));
    syscall_return();
    r
}

/// Ends the calling process.
pub fn exit(code: i32) -> ! {
    sched::exit_current(code)
}

/// The system-call return point: deferred work runs here.
pub(crate) fn syscall_return() {
    // A kernel process makes calls without leaving the kernel: each call's
    // end closes an entry for the timeline, so its next records read the
    // clock again.
    crate::event::trace::new_entry();
    sched::deferred_work();
}

/// Starts another linked-in process running `entry`.
pub fn spawn(name: &'static str, entry: fn()) -> SysResult<Pid> {
    with_current(|_, _| Ok(()))?;
    let r = sched::spawn(name, entry);
    syscall_return();
    r
}

/// The kernel's counters: scheduler and events (all processes).
pub fn kernel_stats() -> SysResult<(sched::SchedStats, events::Stats)> {
    with_current(|_, _| Ok(()))?;
    let r = sched::stats();
    syscall_return();
    Ok(r)
}

/// The live figures now, in [`crate::live_stats::KEYS`]' order (for the
/// `control` service, which publishes them; no call number).
pub fn live_figures() -> SysResult<[u64; crate::live_stats::COUNT]> {
    let (s, e) = kernel_stats()?;
    let out = crate::mm::balloon::counts().0 as u64;
    // The domain's frames that are neither free in the pool nor given
    // back: the kernel's image, heap and tables, and what processes hold.
    let used = hal::mm::start_info()
        .nr_pages
        .saturating_sub(out + s.frames_free);
    let (rpc_sent, rpc_answered) = crate::rpc::client::totals();
    #[cfg(feature = "net")]
    let (rx, tx) = crate::net::stack::stats().map_or((0, 0), |(_, d)| (d.rx_frames, d.tx_frames));
    Ok([
        crate::clock::uptime_ns() / 1_000_000,
        e.created,
        e.completed,
        e.retired,
        e.wakes,
        s.context_switches,
        s.frames_free,
        used,
        out,
        rpc_sent,
        rpc_answered,
        #[cfg(feature = "net")]
        rx,
        #[cfg(feature = "net")]
        tx,
    ])
}

/// The kernel heap: (bytes used, bytes free).
pub fn heap_usage() -> SysResult<(usize, usize)> {
    with_current(|_, _| Ok(()))?;
    let r = hal::heap::usage();
    syscall_return();
    Ok(r)
}

/// Creates an event of `kind` for the caller and starts the work with
/// `start`; if starting fails the event is removed again, so a failed call
/// leaves nothing behind.
pub(crate) fn start_event(
    kind: ValueKind,
    start: impl FnOnce(Pid, EventId) -> SysResult<()>,
) -> SysResult<EventId> {
    let (pid, id) = with_current(|k, pid| Ok((pid, k.events().create(pid, kind)?)))?;
    if let Err(e) = start(pid, id) {
        let _ = with_current(|k, pid| {
            let _ = k.events().cancel(pid, id);
            let _ = k.events().retire(pid, id);
            Ok(())
        });
        syscall_return();
        return Err(e);
    }
    syscall_return();
    Ok(id)
}

/// An event that completes when the toolstack asks the domain to stop,
/// with the kind as a word (`abi::shutdown`); at once if it has asked.
pub fn shutdown_event() -> SysResult<EventId> {
    let mut now = None;
    let id = start_event(ValueKind::Word, |pid, id| {
        now = crate::event::shutdown::subscribe(pid, id)?;
        Ok(())
    })?;
    if let Some(c) = now {
        sched::apply(alloc::vec![c]);
    }
    Ok(id)
}

/// Reads a xenstore key (relative paths are under the guest's home,
/// `/local/domain/<domid>`). The event completes with the value as bytes,
/// or with `Remote(errno)` (2: no such key, 13: permission denied, ...).
pub fn xs_read(path: &str, tx: u32) -> SysResult<EventId> {
    start_event(ValueKind::Bytes, |_, id| {
        xs::request(id, Request::Read(path), tx, Expect::Bytes)
    })
}

/// Writes a xenstore key; the event completes empty.
pub fn xs_write(path: &str, value: &[u8], tx: u32) -> SysResult<EventId> {
    start_event(ValueKind::Empty, |_, id| {
        xs::request(id, Request::Write(path, value), tx, Expect::Empty)
    })
}

/// Lists a xenstore directory; the event completes with the names,
/// NUL-separated.
pub fn xs_directory(path: &str, tx: u32) -> SysResult<EventId> {
    start_event(ValueKind::Bytes, |_, id| {
        xs::request(id, Request::Directory(path), tx, Expect::Bytes)
    })
}

/// Removes a xenstore key and everything under it.
pub fn xs_rm(path: &str, tx: u32) -> SysResult<EventId> {
    start_event(ValueKind::Empty, |_, id| {
        xs::request(id, Request::Rm(path), tx, Expect::Empty)
    })
}

/// Starts a transaction; the event completes with its id (a word).
pub fn xs_transaction_start() -> SysResult<EventId> {
    start_event(ValueKind::Word, |_, id| {
        xs::request(id, Request::TransactionStart, 0, Expect::TxId)
    })
}

/// Ends a transaction, committing it or not. A commit that raced with
/// another writer completes with `Remote(11)` (EAGAIN): start over.
pub fn xs_transaction_end(tx: u32, commit: bool) -> SysResult<EventId> {
    start_event(ValueKind::Empty, |_, id| {
        xs::request(id, Request::TransactionEnd { commit }, tx, Expect::Empty)
    })
}

/// Watches a xenstore path; returns the watch handle and an event that
/// completes once xenstored has registered it (xenstored then fires the
/// watch once at once, as it always does).
pub fn xs_watch(path: &str) -> SysResult<(u32, EventId)> {
    let mut handle = 0;
    let id = start_event(ValueKind::Empty, |pid, id| {
        handle = xs::watch(pid, path, id)?;
        Ok(())
    })?;
    Ok((handle, id))
}

/// An event that completes with the path of the watch's next firing.
pub fn xs_watch_next(watch: u32) -> SysResult<EventId> {
    let mut now = None;
    let id = start_event(ValueKind::Bytes, |pid, id| {
        now = xs::watch_next(pid, watch, id)?;
        Ok(())
    })?;
    if let Some(c) = now {
        sched::apply(alloc::vec![c]);
    }
    Ok(id)
}

/// Removes a watch; a pending `xs_watch_next` event completes `Cancelled`.
pub fn xs_unwatch(watch: u32) -> SysResult<EventId> {
    let mut waiter = None;
    let id = start_event(ValueKind::Empty, |pid, id| {
        waiter = xs::unwatch(pid, watch, id)?;
        Ok(())
    })?;
    if let Some(c) = waiter {
        sched::apply(alloc::vec![c]);
    }
    Ok(id)
}

/// Allocates a zeroed page. Returns its capability and an event that
/// completes when the page is taken back (freed by the owner or revoked by
/// the kernel).
pub fn page_alloc() -> SysResult<(PageCap, EventId)> {
    let mut cap = None;
    let mut victim = None;
    let revoked = start_event(ValueKind::Empty, |pid, id| {
        let (c, v) = pages::alloc(pid, id)?;
        (cap, victim) = (Some(c), v);
        Ok(())
    })?;
    if let Some(event) = victim {
        // Another page was revoked to make room: its owner learns it here.
        sched::apply(alloc::vec![events::Completion {
            event,
            status: events::Status::Ok,
            value: events::Value::Empty
        }]);
    }
    Ok((cap.ok_or(SysError::OutOfMemory)?, revoked))
}

/// The first address of the caller's region, where pages can be bound.
pub fn region_base() -> SysResult<u64> {
    Ok(pages::region_address(sched::current_slot()?, 0))
}

/// Binds a page at `va` in the caller's region (checked once, installed by
/// hypercall).
pub fn page_bind(cap: PageCap, va: u64) -> SysResult<()> {
    let (pid, slot) = (with_current(|_, pid| Ok(pid))?, sched::current_slot()?);
    let r = pages::bind(pid, slot, cap, va);
    syscall_return();
    r
}

/// Unbinds a page: its address faults from now on.
pub fn page_unbind(cap: PageCap) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = pages::unbind(pid, cap);
    syscall_return();
    r
}

/// Gives a page back; its revocation event completes and the capability
/// turns stale.
pub fn page_free(cap: PageCap) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let revoked = pages::free(pid, cap)?;
    sched::apply(alloc::vec![events::Completion {
        event: revoked,
        status: events::Status::Ok,
        value: events::Value::Empty
    }]);
    syscall_return();
    Ok(())
}

/// Copies bytes out of a bound page.
pub fn page_read(cap: PageCap, offset: usize, out: &mut [u8]) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = pages::copy(pid, cap, offset, Some(out), None);
    syscall_return();
    r
}

/// Copies bytes into a bound page.
pub fn page_write(cap: PageCap, offset: usize, data: &[u8]) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = pages::copy(pid, cap, offset, None, Some(data));
    syscall_return();
    r
}

/// Grants domain `peer` access to a page; returns the grant reference.
pub fn page_grant(cap: PageCap, peer: u16, readonly: bool) -> SysResult<u32> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = pages::grant(pid, cap, peer, readonly);
    syscall_return();
    r
}

/// Ends a grant; refused with `StillMapped` while the peer maps the page.
pub fn page_ungrant(cap: PageCap) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = pages::ungrant(pid, cap);
    syscall_return();
    r
}

/// Test hook for the fault scenario (test image only): reads a word at `va`
/// with a plain CPU load, bypassing the capability check, to show that an
/// address whose page was taken away faults.
#[cfg(feature = "test-apps")]
pub fn touch_for_test(va: u64) -> u64 {
    hal::test_hooks::read_unmapped(va)
}

/// Allocates an event-channel port that domain `remote` may bind
/// (`xen::public::DOMID_SELF` for a loop within this guest). Returns the
/// caller's handle for it and the Xen port (the number the peer binds).
pub fn evtchn_alloc_unbound(remote: u16) -> SysResult<(u32, u32)> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let port =
        hal::hypercall::evtchn_alloc_unbound(remote).map_err(|e| SysError::Hypervisor(e.0))?;
    adopt_port(pid, port, Binding::Unbound { remote })
}

/// Binds a new port to `remote_port` of domain `remote_dom`. Returns the
/// caller's handle for it and the Xen port.
pub fn evtchn_bind_interdomain(remote_dom: u16, remote_port: u32) -> SysResult<(u32, u32)> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let port = hal::hypercall::evtchn_bind_interdomain(remote_dom, remote_port)
        .map_err(|e| SysError::Hypervisor(e.0))?;
    adopt_port(pid, port, Binding::Interdomain)
}

fn adopt_port(pid: Pid, port: u32, binding: Binding) -> SysResult<(u32, u32)> {
    let adopted = evtchn::channels().adopt(pid, port, binding);
    let handle = adopted.inspect_err(|_| {
        let _ = hal::hypercall::evtchn_close(port);
    })?;
    syscall_return();
    Ok((handle, port))
}

/// Notifies the other end of one of the caller's channels.
pub fn evtchn_notify(handle: u32) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let port = evtchn::channels().port(pid, handle)?;
    let r = hal::hypercall::evtchn_send(port).map_err(|e| SysError::Hypervisor(e.0));
    syscall_return();
    r
}

/// An event that completes at the channel's next notification, with the
/// number of notifications it covers (a word): notifications that arrive
/// with nobody waiting are counted, never queued. After a restore it
/// completes `Rebound` (the new port its word) or `PeerGone`
/// (`evtchn::Channels::wait`).
pub fn evtchn_wait(handle: u32) -> SysResult<EventId> {
    let mut now = None;
    let id = start_event(ValueKind::Word, |pid, id| {
        let pending = |w: EventId| {
            with_current(|k, _| Ok(k.events().state(pid, w) == Ok(events::EventState::Pending)))
                .unwrap_or(false)
        };
        now = evtchn::channels().wait(pid, handle, id, pending)?;
        Ok(())
    })?;
    if let Some((status, word)) = now {
        sched::apply(alloc::vec![events::Completion {
            event: id,
            status,
            value: events::Value::Word(word)
        }]);
    }
    Ok(id)
}

/// Closes one of the caller's channels; a waiter completes `Cancelled`.
pub fn evtchn_close(handle: u32) -> SysResult<()> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let (port, waiter) = evtchn::channels().disown(pid, handle)?;
    // A lost channel has no port left to close.
    let r = port.map_or(Ok(()), |port| {
        hal::hypercall::evtchn_close(port).map_err(|e| SysError::Hypervisor(e.0))
    });
    if let Some(event) = waiter {
        sched::apply(alloc::vec![events::Completion {
            event,
            status: events::Status::Cancelled,
            value: events::Value::Empty
        }]);
    }
    syscall_return();
    r
}

/// Offers a vchan server to domain `client` with rings of at least
/// `ring_min` bytes each. The caller publishes the offer's `ring_ref` and
/// `port` in xenstore for the client, and owns the port (wait on it for
/// the client's notifications).
pub fn vchan_offer(client: u16, ring_min: usize) -> SysResult<crate::rpc::vchan::Offer> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = crate::rpc::vchan::offer(pid, client, ring_min, ring_min);
    syscall_return();
    r
}

/// Writes what fits of `data` into the channel; returns the bytes written.
pub fn vchan_write(handle: u32, data: &[u8]) -> SysResult<usize> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = crate::rpc::vchan::write(pid, handle, data);
    syscall_return();
    r
}

/// Reads what the peer sent into `buf`; returns the bytes read.
pub fn vchan_read(handle: u32, buf: &mut [u8]) -> SysResult<usize> {
    let pid = with_current(|_, pid| Ok(pid))?;
    let r = crate::rpc::vchan::read(pid, handle, buf);
    syscall_return();
    r
}

/// Whether the client is waiting to connect, connected, or gone.
pub fn vchan_peer(handle: u32) -> SysResult<rpc::PeerState> {
    let pid = with_current(|_, pid| Ok(pid))?;
    crate::rpc::vchan::peer_state(pid, handle)
}

/// Sets a xenstore node's permissions (see `Request::SetPerms`).
pub fn xs_set_perms(path: &str, perms: &[&str], tx: u32) -> SysResult<EventId> {
    start_event(ValueKind::Empty, |_, id| {
        xs::request(id, Request::SetPerms { path, perms }, tx, Expect::Empty)
    })
}

/// Sends an RPC to the dom0 shadowdaemon; the reply completes the event.
/// For the rpc-offer process: completes with `ring_ref << 32 | port` once
/// the RPC channel has been offered anew (its daemon went away) and the
/// new keys must be published; at once for an offer not yet published.
pub fn rpc_next_offer() -> SysResult<EventId> {
    let mut now = None;
    let id = start_event(ValueKind::Word, |_, id| {
        now = crate::rpc::client::watch_offer(id)?;
        Ok(())
    })?;
    if let Some(c) = now {
        sched::apply(alloc::vec![c]);
    }
    Ok(id)
}

fn rpc_call(kind: ValueKind, req: rpc::Request) -> SysResult<EventId> {
    let mut now = None;
    let id = start_event(kind, |_, id| {
        now = crate::rpc::client::call(id, &req)?;
        Ok(())
    })?;
    if let Some(c) = now {
        sched::apply(alloc::vec![c]);
    }
    Ok(id)
}

/// For the rpc-offer process: the daemon in dom0 will not serve this
/// domain (`Some(code)`), or no longer refuses it (`None`); see
/// `rpc::client::not_served`. Kernel processes only: no trap reaches this.
pub fn rpc_not_served(reason: Option<&str>) {
    sched::apply(crate::rpc::client::not_served(reason));
}

fn rpc_path(path: &str) -> SysResult<rpc::Path> {
    rpc::Path::new(path).map_err(|_| SysError::InvalidArgument)
}

/// Checks the daemon is there; completes empty.
pub fn ping() -> SysResult<EventId> {
    rpc_call(ValueKind::Empty, rpc::Request::Ping)
}

/// `len` random bytes from dom0; completes with the bytes.
pub fn random(len: u32) -> SysResult<EventId> {
    rpc_call(ValueKind::Bytes, rpc::Request::Random { len })
}

/// Reads up to `len` bytes of the file `path` (in this guest's folder in
/// dom0) from `offset`; completes with the bytes.
pub fn read_var(path: &str, offset: u64, len: u32) -> SysResult<EventId> {
    rpc_call(
        ValueKind::Bytes,
        rpc::Request::FileRead {
            path: rpc_path(path)?,
            offset,
            len,
        },
    )
}

/// Writes `data` into the file `path` at `offset` (creating it; `truncate`
/// empties it first); completes with the bytes written (a word).
pub fn write_var(path: &str, offset: u64, data: &[u8], truncate: bool) -> SysResult<EventId> {
    let flags = rpc::WRITE_CREATE | if truncate { rpc::WRITE_TRUNCATE } else { 0 };
    let req = rpc::Request::FileWrite {
        path: rpc_path(path)?,
        offset,
        flags,
        data: data.to_vec(),
    };
    rpc_call(ValueKind::Word, req)
}

/// What `path` is; completes with kind u8, perm u16, size u64, mtime_s i64,
/// mtime_ns u32 (little-endian bytes).
pub fn file_info(path: &str) -> SysResult<EventId> {
    rpc_call(
        ValueKind::Bytes,
        rpc::Request::FileInfo {
            path: rpc_path(path)?,
        },
    )
}

/// Lists a directory from entry `cursor`; completes with a "done" byte then
/// NUL-terminated names.
pub fn dir_list(path: &str, cursor: u32) -> SysResult<EventId> {
    rpc_call(
        ValueKind::Bytes,
        rpc::Request::DirList {
            path: rpc_path(path)?,
            cursor,
        },
    )
}

/// Creates a directory.
pub fn create_dir(path: &str) -> SysResult<EventId> {
    rpc_call(
        ValueKind::Empty,
        rpc::Request::DirCreate {
            path: rpc_path(path)?,
        },
    )
}

/// Removes a file or an empty directory.
pub fn remove(path: &str) -> SysResult<EventId> {
    rpc_call(
        ValueKind::Empty,
        rpc::Request::Remove {
            path: rpc_path(path)?,
        },
    )
}
