//! User programs: the loop that runs one in its process's kernel context,
//! the trap dispatcher, and the fault report.
//!
//! `run_program` enters the program (`hal::user::run`) and handles what
//! brings it back: a system call is decoded here from its registers
//! (`abi`), its pointers are copied in once through `mm::space` and the
//! call is made; a fault ends the process with a report; an upcall has
//! already been recorded. Then comes the one return-to-user point:
//! deferred work runs, and a program whose time slice is over gives way.

use crate::mm::space;
use crate::proc::{program, sched};
use crate::status::{SysError, SysResult};
use abi::{rights, Call};
use alloc::string::String;
use alloc::vec::Vec;
use events::{Element, EventId, Pid, Value, ValueKind};
use hal::user::{Exit, UserRegs};
use log::error;

/// The kernel-context entry of every user program's process.
pub fn run_program() {
    let Some((rip, rsp)) = sched::take_user_start() else {
        error!("a user process started without its program");
        sched::exit_current(-1)
    };
    let Ok(pid) = sched::with_current(|_, pid| Ok(pid)) else {
        sched::exit_current(-1)
    };
    let mut fpu = hal::fpu::FpuState::new();
    let mut regs = UserRegs::start(rip, rsp);
    loop {
        sched::arm_time_slice();
        let exit = hal::user::run(&mut regs, &mut fpu);
        // Back from user mode: a kernel entry, whose records share one time.
        crate::event::trace::new_entry();
        match exit {
            Exit::Syscall => dispatch(pid, &mut regs),
            Exit::Upcall => {}
            Exit::Fault {
                vector,
                error_code,
                fault_address,
            } => fault(pid, &regs, vector, error_code, fault_address),
            Exit::BadState => fault(pid, &regs, 13, None, None),
        }
        // The return-to-user point: what the upcalls recorded runs here.
        sched::deferred_work();
        sched::preempt_if_due();
    }
}

/// Ends the process with a report a person can act on. (Cold and not
/// inlined: two exits reach it, and the image must stay small.)
#[cold]
#[inline(never)]
fn fault(
    pid: Pid,
    regs: &UserRegs,
    vector: u8,
    error_code: Option<u64>,
    address: Option<u64>,
) -> ! {
    let (mnemonic, name) = xen::fault::vector_name(vector);
    let name_of = sched::current_name();
    let mut detail = String::new();
    if let Some(code) = error_code {
        detail.push_str(&alloc::format!(" error_code={code:#x}"));
    }
    if vector == 14 {
        let code = error_code.unwrap_or(0);
        let access = if code & 0x10 != 0 {
            "fetch"
        } else if code & 2 != 0 {
            "write"
        } else {
            "read"
        };
        let cause = if code & 1 != 0 {
            "a protection violation"
        } else {
            "an unmapped page"
        };
        detail.push_str(&alloc::format!(
            " address={:#x} ({access}: {cause})",
            address.unwrap_or(0)
        ));
    }
    error!(
        "process {} ({name_of}) killed: {name} ({mnemonic}, vector {vector}) at rip={:#x} rsp={:#x}{detail}",
        pid.0, regs.rip, regs.rsp
    );
    sched::exit_faulted(vector)
}

fn need(right: u32) -> SysResult<()> {
    if sched::current_rights() & right == right {
        Ok(())
    } else {
        Err(SysError::NotPermitted)
    }
}

fn text(pid: Pid, ptr: u64, len: u64) -> SysResult<String> {
    let bytes = space::copy_in(pid, ptr, len as usize)?;
    String::from_utf8(bytes).map_err(|_| SysError::BadText)
}

fn bytes(pid: Pid, ptr: u64, len: u64) -> SysResult<Vec<u8>> {
    space::copy_in(pid, ptr, len as usize)
}

fn event(id: SysResult<EventId>) -> SysResult<(u64, u64)> {
    id.map(|id| (id.0, 0))
}

fn unit(r: SysResult<()>) -> SysResult<(u64, u64)> {
    r.map(|()| (0, 0))
}

/// Decodes one system call from `regs`, makes it, and writes the status and
/// results back (`abi`'s register convention).
fn dispatch(pid: Pid, regs: &mut UserRegs) {
    crate::event::trace::record(rpc::trace::Kind::Syscall, pid.0, regs.rax);
    let a = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    let result = match Call::from_number(regs.rax) {
        Some(call) => call_one(pid, call, a),
        None => Err(SysError::UnknownCall),
    };
    match result {
        Ok((r0, r1)) => {
            regs.rax = 0;
            regs.rdx = r0;
            regs.r8 = r1;
        }
        Err(e) => {
            let (status, extra) = e.to_abi();
            regs.rax = status.code() as u64;
            regs.rdx = 0;
            regs.r8 = extra;
        }
    }
}

fn call_one(pid: Pid, call: Call, a: [u64; 6]) -> SysResult<(u64, u64)> {
    use super as sys;
    match call {
        Call::Pid => Ok((pid.0 as u64, 0)),
        Call::Time => Ok((sys::get_time(), 0)),
        Call::WallClock => {
            let (s, ns) = sys::wall_clock();
            Ok((s, ns as u64))
        }
        Call::Exit => sched::exit_current(a[0] as i32),
        Call::Print => unit(sys::print(&text(pid, a[0], a[1])?)),
        Call::Beep => event(sys::beep(a[0])),
        Call::Block => block(pid, a),
        Call::Retire => retire(pid, a),
        Call::Cancel => unit(sys::cancel(EventId(a[0]))),
        Call::Spawn => spawn(pid, a),
        Call::PageAlloc => sys::page_alloc().map(|(cap, revoked)| (cap.0, revoked.0)),
        Call::PageBind => unit(sys::page_bind(crate::mm::pages::PageCap(a[0]), a[1])),
        Call::PageUnbind => unit(sys::page_unbind(crate::mm::pages::PageCap(a[0]))),
        Call::PageFree => unit(sys::page_free(crate::mm::pages::PageCap(a[0]))),
        Call::PageGrant => {
            need(rights::FOREIGN)?;
            let peer = u16::try_from(a[1]).map_err(|_| SysError::InvalidArgument)?;
            sys::page_grant(crate::mm::pages::PageCap(a[0]), peer, a[2] != 0).map(|g| (g as u64, 0))
        }
        Call::PageUngrant => unit(sys::page_ungrant(crate::mm::pages::PageCap(a[0]))),
        Call::XsRead => event(sys::xs_read(&text(pid, a[0], a[1])?, tx(a[2])?)),
        Call::XsDirectory => event(sys::xs_directory(&text(pid, a[0], a[1])?, tx(a[2])?)),
        Call::XsWrite => {
            need(rights::XENSTORE_WRITE)?;
            let path = text(pid, a[0], a[1])?;
            let value = bytes(pid, a[2], a[3])?;
            event(sys::xs_write(&path, &value, tx(a[4])?))
        }
        Call::XsRm => {
            need(rights::XENSTORE_WRITE)?;
            event(sys::xs_rm(&text(pid, a[0], a[1])?, tx(a[2])?))
        }
        Call::XsSetPerms => {
            need(rights::XENSTORE_WRITE)?;
            let path = text(pid, a[0], a[1])?;
            let words = text(pid, a[2], a[3])?;
            let perms = perm_words(&words)?;
            event(sys::xs_set_perms(&path, &perms, tx(a[4])?))
        }
        Call::XsTransactionStart => event(sys::xs_transaction_start()),
        Call::XsTransactionEnd => event(sys::xs_transaction_end(tx(a[0])?, a[1] != 0)),
        Call::XsWatch => sys::xs_watch(&text(pid, a[0], a[1])?).map(|(w, id)| (w as u64, id.0)),
        Call::XsWatchNext => event(sys::xs_watch_next(handle(a[0])?)),
        Call::XsUnwatch => event(sys::xs_unwatch(handle(a[0])?)),
        Call::EvtchnAllocUnbound => {
            need(rights::FOREIGN)?;
            let remote = u16::try_from(a[0]).map_err(|_| SysError::InvalidArgument)?;
            sys::evtchn_alloc_unbound(remote).map(|(h, p)| (h as u64, p as u64))
        }
        Call::EvtchnBindInterdomain => {
            need(rights::FOREIGN)?;
            let remote = u16::try_from(a[0]).map_err(|_| SysError::InvalidArgument)?;
            sys::evtchn_bind_interdomain(remote, handle(a[1])?).map(|(h, p)| (h as u64, p as u64))
        }
        Call::EvtchnNotify => unit(sys::evtchn_notify(handle(a[0])?)),
        Call::EvtchnWait => event(sys::evtchn_wait(handle(a[0])?)),
        Call::EvtchnClose => unit(sys::evtchn_close(handle(a[0])?)),
        Call::Ping => event(sys::ping()),
        Call::Random => event(sys::random(handle(a[0])?)),
        Call::FileRead => event(sys::read_var(&text(pid, a[0], a[1])?, a[2], handle(a[3])?)),
        Call::FileWrite => {
            let path = text(pid, a[0], a[1])?;
            let data = bytes(pid, a[3], a[4])?;
            event(sys::write_var(&path, a[2], &data, a[5] != 0))
        }
        Call::FileInfo => event(sys::file_info(&text(pid, a[0], a[1])?)),
        Call::DirList => event(sys::dir_list(&text(pid, a[0], a[1])?, handle(a[2])?)),
        Call::DirCreate => event(sys::create_dir(&text(pid, a[0], a[1])?)),
        Call::Remove => event(sys::remove(&text(pid, a[0], a[1])?)),
        Call::KernelStats => kernel_stats(pid, a),
        Call::List => list(pid, a),
        Call::ShutdownEvent => event(sys::shutdown_event()),
        Call::TcpListen
        | Call::TcpAccept
        | Call::TcpConnect
        | Call::SockRecv
        | Call::SockSend
        | Call::SockClose
        | Call::UdpBind
        | Call::UdpRecv
        | Call::UdpSend
        | Call::NetStats => net_call(pid, call, a),
        _ => Err(SysError::UnknownCall),
    }
}

/// The NUL-ended permission words of `XsSetPerms`: one to
/// `abi::MAX_PERMS` of them, each as `abi::perm_word_valid` says.
/// Xenstored would refuse a bad one too, but the kernel sends it nothing
/// the ABI does not allow.
fn perm_words(words: &str) -> SysResult<Vec<&str>> {
    let body = words.strip_suffix('\0').ok_or(SysError::InvalidArgument)?;
    let perms: Vec<&str> = body.split('\0').collect();
    if perms.len() > abi::MAX_PERMS {
        return Err(SysError::TooLarge);
    }
    if !perms.iter().all(|p| abi::perm_word_valid(p)) {
        return Err(SysError::InvalidArgument);
    }
    Ok(perms)
}

/// Words as the ABI lays them out in user memory: little-endian u64s.
fn le_bytes(words: impl Iterator<Item = u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.size_hint().0 * 8);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

fn tx(v: u64) -> SysResult<u32> {
    u32::try_from(v).map_err(|_| SysError::InvalidArgument)
}

fn handle(v: u64) -> SysResult<u32> {
    u32::try_from(v).map_err(|_| SysError::InvalidArgument)
}

/// `Block(tree, elements, out, capacity)`: the tree is copied in once and
/// validated by the event model; the output range is checked before the
/// process sleeps, so a wake is never lost to a bad pointer.
fn block(pid: Pid, a: [u64; 6]) -> SysResult<(u64, u64)> {
    let (tree, n, out, cap) = (a[0], a[1], a[2], a[3]);
    crate::mm::range::aligned(tree, 8)?;
    crate::mm::range::aligned(out, 8)?;
    let len = n
        .checked_mul(abi::WaitElement::SIZE as u64)
        .ok_or(SysError::BadLength)?;
    // A tree longer than one call copies (4096 elements) is over every
    // process's tree quota: it gets the tree's own status, as it would
    // from the event model, not a bad length.
    if len > abi::MAX_BUFFER as u64 {
        return Err(SysError::Event(events::Status::TreeTooLarge));
    }
    let out_len = cap.checked_mul(8).ok_or(SysError::BadLength)?;
    let raw = space::copy_in(
        pid,
        tree,
        usize::try_from(len).map_err(|_| SysError::BadLength)?,
    )?;
    space::check(
        pid,
        out,
        usize::try_from(out_len).map_err(|_| SysError::BadLength)?,
        true,
    )?;
    let spec: Vec<Element> = raw
        .chunks_exact(abi::WaitElement::SIZE)
        .map(|c| Element {
            event_id: EventId(u64::from_le_bytes(c[0..8].try_into().expect("8 bytes"))),
            parent: u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")),
            count: u32::from_le_bytes(c[12..16].try_into().expect("4 bytes")),
        })
        .collect();
    let leaves = super::block(&spec)?;
    let written = leaves.len().min(cap as usize);
    space::copy_out(pid, out, &le_bytes(leaves[..written].iter().map(|id| id.0)))?;
    Ok((written as u64, leaves.len() as u64))
}

/// `Retire(event, buf, capacity)`: the value's size is known before the
/// event is consumed, so a buffer too small loses nothing.
fn retire(pid: Pid, a: [u64; 6]) -> SysResult<(u64, u64)> {
    let (id, buf, cap) = (EventId(a[0]), a[1], a[2] as usize);
    let need = sched::with_current(|k, pid| Ok(k.events().value_len(pid, id)?))?;
    if need > cap {
        return Err(SysError::BufferTooSmall(need));
    }
    space::check(pid, buf, need, true)?;
    let r = super::retire(id)?;
    let (status, extra) = crate::status::event_status(r.status);
    let r0 = status.code() as u64 | (extra as u64) << 32;
    let r1 = match r.value {
        Value::Empty => 0,
        Value::Word(w) => w,
        Value::Fd(fd) => fd as u64,
        Value::Bytes(b) => {
            space::copy_out(pid, buf, &b)?;
            b.len() as u64
        }
    };
    Ok((r0, r1))
}

/// `Spawn(name, len, args, len, rights)`: the exit event is the caller's;
/// the child gets at most the caller's rights.
fn spawn(pid: Pid, a: [u64; 6]) -> SysResult<(u64, u64)> {
    need(rights::SPAWN)?;
    if a[1] as usize > abi::MAX_NAME {
        return Err(SysError::TooLarge);
    }
    let name = text(pid, a[0], a[1])?;
    if a[3] as usize > abi::MAX_ARGS_BYTES {
        return Err(SysError::TooLarge);
    }
    let args = bytes(pid, a[2], a[3])?;
    let child_rights = a[4] as u32 & sched::current_rights();
    let mut child = None;
    let exit = super::start_event(ValueKind::Word, |parent, exit| {
        child = Some(program::spawn(program::Spawn {
            name: &name,
            args: &args,
            rights: child_rights,
            exit_event: Some((parent, exit)),
            runner: run_program,
        })?);
        Ok(())
    })?;
    Ok((child.map_or(0, |c| c.0 as u64), exit.0))
}

/// `List(out, len)`: the caller's unretired events; all of them or, when
/// they do not fit, nothing and the size needed.
fn list(pid: Pid, a: [u64; 6]) -> SysResult<(u64, u64)> {
    crate::mm::range::aligned(a[0], 8)?;
    let l = super::list()?;
    let total = l.pending.len() + l.completed.len() + l.cancelled.len();
    let need = total * 8;
    if need > a[1] as usize {
        return Err(SysError::BufferTooSmall(need));
    }
    let ids = l.pending.iter().chain(&l.completed).chain(&l.cancelled);
    space::copy_out(pid, a[0], &le_bytes(ids.map(|id| id.0)))?;
    Ok((
        l.pending.len() as u64,
        l.completed.len() as u64 | (l.cancelled.len() as u64) << 32,
    ))
}

/// `KernelStats(out, len)`: the counters as little-endian u64s, in the
/// order `ethos::stats` names them.
fn kernel_stats(pid: Pid, a: [u64; 6]) -> SysResult<(u64, u64)> {
    let (s, e) = super::kernel_stats()?;
    let (heap_used, heap_free) = hal::heap::usage();
    let (spaces, tables, mapped) = space::usage();
    // The RPC channel's: notifications sent to the daemon and taken from
    // it (0 while there is no channel), for rpc-bench's per-RPC figures.
    let (rpc_kicks, rpc_port_events) =
        crate::rpc::client::stats().map_or((0, 0), |(c, events)| (c.kicks, events));
    let words = [
        e.created,
        e.completed,
        e.retired,
        e.cancelled,
        e.discarded,
        e.wakes,
        e.coalesced,
        s.context_switches,
        s.syscalls,
        s.timers_fired,
        s.upcalls,
        s.port_events,
        s.idle_blocks,
        s.preemptions,
        s.frames_free,
        heap_used as u64,
        heap_free as u64,
        spaces as u64,
        tables as u64,
        mapped as u64,
        rpc_kicks,
        rpc_port_events,
    ];
    let bytes = le_bytes(words.iter().copied());
    let n = bytes.len().min(a[1] as usize);
    space::copy_out(pid, a[0], &bytes[..n])?;
    Ok((n as u64, 0))
}

/// The socket calls on an image without networking: a name for the
/// refusal, so a program can tell "no network here" from a bad call.
#[cfg(not(feature = "net"))]
fn net_call(_pid: Pid, _call: Call, _a: [u64; 6]) -> SysResult<(u64, u64)> {
    Err(SysError::NoNetwork)
}

/// The socket calls (`abi::net`): every word is checked before the stack
/// sees it, and a buffer is bounded by `abi::MAX_BUFFER` before it is
/// copied in. The stack itself keeps sockets per pid, so a handle of
/// another process answers `BadHandle` there.
#[cfg(feature = "net")]
fn net_call(pid: Pid, call: Call, a: [u64; 6]) -> SysResult<(u64, u64)> {
    use super::net as sn;
    if call == Call::NetStats {
        return net_stats(pid, a);
    }
    need(rights::NETWORK)?;
    match call {
        Call::TcpListen => {
            let backlog = usize::try_from(a[1]).map_err(|_| SysError::InvalidArgument)?;
            sn::tcp_listen(port(a[0])?, backlog, flag(a[2])?).map(|h| (h as u64, 0))
        }
        Call::TcpAccept => event(sn::tcp_accept(socket(a[0])?)),
        Call::TcpConnect => {
            let ip = abi::net::ipv4_octets(a[0]).ok_or(SysError::InvalidArgument)?;
            sn::tcp_connect(ip, port(a[1])?).map(|(h, id)| (h as u64, id.0))
        }
        Call::SockRecv => {
            let max = net_len(a[1])?;
            event(sn::sock_recv(socket(a[0])?, max))
        }
        Call::SockSend => {
            let h = socket(a[0])?;
            let data = bytes(pid, a[1], net_len(a[2])? as u64)?;
            event(sn::sock_send(h, data))
        }
        Call::SockClose => unit(sn::sock_close(socket(a[0])?)),
        Call::UdpBind => sn::udp_bind(port(a[0])?).map(|h| (h as u64, 0)),
        Call::UdpRecv => event(sn::udp_recv(socket(a[0])?)),
        Call::UdpSend => {
            let h = socket(a[0])?;
            let ip = abi::net::ipv4_octets(a[1]).ok_or(SysError::InvalidArgument)?;
            let port = port(a[2])?;
            if a[4] > abi::MAX_BUFFER as u64 {
                return Err(SysError::BadLength);
            }
            let data = bytes(pid, a[3], a[4])?;
            unit(sn::udp_send(h, ip, port, &data))
        }
        _ => Err(SysError::UnknownCall),
    }
}

/// A port word: 1..=65535 (0 is no port to listen on or reach).
#[cfg(feature = "net")]
fn port(v: u64) -> SysResult<u16> {
    match u16::try_from(v) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(SysError::InvalidArgument),
    }
}

/// A flag word: 0 or 1, nothing else (a stray value is a caller's bug).
#[cfg(feature = "net")]
fn flag(v: u64) -> SysResult<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(SysError::InvalidArgument),
    }
}

/// A socket handle: the stack's are u32s, so a wider word names none.
#[cfg(feature = "net")]
fn socket(v: u64) -> SysResult<u32> {
    u32::try_from(v).map_err(|_| SysError::BadHandle)
}

/// A receive or send length: 1..=`abi::MAX_BUFFER`.
#[cfg(feature = "net")]
fn net_len(v: u64) -> SysResult<usize> {
    match usize::try_from(v) {
        Ok(n) if (1..=abi::MAX_BUFFER).contains(&n) => Ok(n),
        _ => Err(SysError::BadLength),
    }
}

/// `NetStats(out, len)`: the counters as little-endian u64s, in the order
/// `abi::net::STATS` names them.
#[cfg(feature = "net")]
fn net_stats(pid: Pid, a: [u64; 6]) -> SysResult<(u64, u64)> {
    let (n, d) = super::net::net_stats()?;
    let words: [u64; abi::net::STATS.len()] = [
        n.sockets as u64,
        n.accepted,
        n.polls,
        d.rx_frames,
        d.tx_frames,
        d.tx_gso,
        d.rx_dropped,
        d.rx_errors,
        d.rx_malformed,
        d.rx_not_ours,
        d.tx_errors,
        d.notifies,
        d.port_events,
        n.half_open,
        n.half_open_reaped,
    ];
    let bytes = le_bytes(words.iter().copied());
    // Whole counters only: a short buffer gets the first ones.
    let n = bytes.len().min(usize::try_from(a[1]).unwrap_or(usize::MAX)) / 8 * 8;
    space::copy_out(pid, a[0], &bytes[..n])?;
    Ok((n as u64, 0))
}
