//! A fake kernel, for host builds: what [`crate::raw`] calls instead of the
//! `syscall` instruction when the target is not the guest. One per thread
//! (each test runs on its own thread, so each starts fresh).
//!
//! It implements the calls the library's logic depends on, after the ABI's
//! documentation, and nothing more:
//!
//! * `Pid`, `Time`, `WallClock` (a simulated clock that only [`advance`]
//!   and blocking move), `Print` (captured: [`printed`]), `Exit` (records
//!   the code and panics with `ethos-fake: exit(CODE)`: catch it with
//!   `std::panic::catch_unwind` and read [`exit_code`]);
//! * `Beep`, `Block` (validates the tree as the ABI states it, then moves
//!   the clock to each next deadline until the root is satisfied; a tree
//!   that could never be satisfied panics instead of hanging), `Retire`
//!   (with `BufferTooSmall` leaving the event), `Cancel`;
//! * `PageAlloc`, `PageBind`, `PageUnbind`, `PageFree` (bookkeeping only:
//!   each page holds its bytes, which [`crate::pages::write_at`] and
//!   [`crate::pages::read_at`] reach at the address it is bound at; an
//!   unbound address panics with `ethos-fake: page fault`, where the guest
//!   would fault), with a page limit ([`set_page_limit`]);
//!   `PageGrant` (grant references 42, 43, ...);
//! * `Spawn` and every call that starts work elsewhere (xenstore, RPC,
//!   event-channel waits, the shutdown event): the call is recorded ([`started`]) and its event
//!   stays pending until a test completes it ([`complete`]);
//! * `KernelStats`: three counters (live events, lines printed, the clock);
//! * the socket calls, validated as the kernel's dispatcher does (ports,
//!   flags, lengths, handles and their kinds) over a table of sockets
//!   ([`sockets`]), with the network up, down or absent
//!   ([`set_network`]); the calls that start work are recorded like the
//!   others, and `UdpSend` (which starts none) with the null event;
//!   `NetStats` reports the socket count, the other counters 0.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::string::String;
use std::vec;
use std::vec::Vec;

use abi::{Call, Status, WaitElement, HEAP_END, HEAP_START, MAX_BUFFER, PAGE_SIZE};

use crate::event::Event;
use crate::raw::{Ret, UserMemory};

/// The pid the fake reports.
pub const PID: u32 = 7;
/// The clock at the start, ns.
pub const START_NS: u64 = 1_000_000_000;
/// The largest tree the fake accepts.
pub const MAX_TREE: usize = 64;
/// How an `Exit` panic's message starts.
pub const EXIT_PANIC: &str = "ethos-fake: exit(";

/// An event's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Nothing.
    Empty,
    /// A word.
    Word(u64),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// A call that started work elsewhere, as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// Which call.
    pub call: Call,
    /// Its six argument registers.
    pub args: [u64; 6],
    /// The buffers it passed, copied in (in argument order).
    pub bufs: Vec<Vec<u8>>,
    /// The event it returned.
    pub event: Event,
}

enum State {
    Pending {
        deadline: Option<u64>,
    },
    Done {
        status: u32,
        errno: u32,
        value: Value,
    },
    Cancelled,
}

struct Page {
    bound: Option<u64>,
    revoked: u64,
    bytes: Vec<u8>,
}

/// What the fake's network is like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// Up: sockets work.
    Up,
    /// Not up (yet, or any more): `NetDown`.
    Down,
    /// An image without networking: `NoNetwork`.
    Absent,
}

/// A socket of the fake's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// A TCP listener on this port.
    Listener(u16),
    /// A TCP connection.
    Tcp,
    /// A UDP socket on this port.
    Udp(u16),
}

struct Kernel {
    clock: u64,
    network: Network,
    sockets: BTreeMap<u32, SocketKind>,
    next_socket: u32,
    made: u64,
    events: BTreeMap<u64, State>,
    printed: Vec<String>,
    started: Vec<Started>,
    pages: BTreeMap<u64, Page>,
    made_pages: u64,
    page_limit: usize,
    next_pid: u32,
    grants: u64,
    exit: Option<i32>,
}

std::thread_local! {
    static KERNEL: RefCell<Kernel> = const { RefCell::new(Kernel {
        clock: START_NS,
        network: Network::Up,
        sockets: BTreeMap::new(),
        next_socket: 1,
        made: 0,
        events: BTreeMap::new(),
        printed: Vec::new(),
        started: Vec::new(),
        pages: BTreeMap::new(),
        made_pages: 0,
        page_limit: 1024,
        next_pid: PID + 1,
        grants: 0,
        exit: None,
    }) };
}

fn with<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    KERNEL.with(|k| f(&mut k.borrow_mut()))
}

// ----- what tests use -----

/// The lines printed so far.
pub fn printed() -> Vec<String> {
    with(|k| k.printed.clone())
}

/// The calls that started work elsewhere, oldest first.
pub fn started() -> Vec<Started> {
    with(|k| k.started.clone())
}

/// Completes a pending event as a service would.
pub fn complete(e: Event, status: Status, errno: u32, value: Value) {
    with(|k| {
        if let Some(s @ State::Pending { .. }) = k.events.get_mut(&e.id()) {
            *s = State::Done {
                status: status.code(),
                errno,
                value,
            };
        }
    })
}

/// The simulated clock, ns.
pub fn now() -> u64 {
    with(|k| k.clock)
}

/// Moves the clock on by `ns`, firing the beeps that come due.
pub fn advance(ns: u64) {
    with(|k| {
        k.clock += ns;
        k.fire_due();
    })
}

/// How many pages `PageAlloc` will hand out in all.
pub fn set_page_limit(n: usize) {
    with(|k| k.page_limit = n)
}

/// The addresses at which pages are bound, ascending.
pub fn bound_pages() -> Vec<u64> {
    with(|k| {
        let mut v: Vec<u64> = k.pages.values().filter_map(|p| p.bound).collect();
        v.sort_unstable();
        v
    })
}

/// Makes the network up, down or absent. Taking it down ends the sockets
/// (their handles are gone) and completes their recorded events as the
/// kernel does: `Remote` with errno `NET_DOWN`.
pub fn set_network(n: Network) {
    with(|k| {
        if n != Network::Up {
            k.sockets.clear();
            let socket_calls: Vec<u64> = k
                .started
                .iter()
                .filter(|s| is_socket_call(s.call))
                .map(|s| s.event.id())
                .collect();
            for id in socket_calls {
                if let Some(s @ State::Pending { .. }) = k.events.get_mut(&id) {
                    *s = State::Done {
                        status: Status::Remote.code(),
                        errno: abi::net::NET_DOWN,
                        value: Value::Empty,
                    };
                }
            }
        }
        k.network = n;
    })
}

/// The open sockets: handle and kind, by handle.
pub fn sockets() -> Vec<(u32, SocketKind)> {
    with(|k| k.sockets.iter().map(|(h, s)| (*h, *s)).collect())
}

fn is_socket_call(c: Call) -> bool {
    matches!(
        c,
        Call::TcpAccept | Call::TcpConnect | Call::SockRecv | Call::SockSend | Call::UdpRecv
    )
}

/// Events not yet retired.
pub fn live_events() -> usize {
    with(|k| k.events.len())
}

/// The code of the `Exit` call, if one was made.
pub fn exit_code() -> Option<i32> {
    with(|k| k.exit)
}

/// The bytes of the page bound at `va`'s page, at `va`'s offset.
fn with_byte<R>(va: u64, f: impl FnOnce(&mut u8) -> R) -> R {
    with(|k| {
        let page = va - va % PAGE_SIZE;
        let Some(p) = k.pages.values_mut().find(|p| p.bound == Some(page)) else {
            panic!("ethos-fake: page fault at {va:#x} (no page bound there)");
        };
        f(&mut p.bytes[(va % PAGE_SIZE) as usize])
    })
}

pub(crate) fn region_write(va: u64, data: &[u8]) {
    for (i, &b) in data.iter().enumerate() {
        with_byte(va + i as u64, |x| *x = b);
    }
}

pub(crate) fn region_read(va: u64, out: &mut [u8]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = with_byte(va + i as u64, |x| *x);
    }
}

// ----- the kernel -----

fn ret(s: Status) -> Ret {
    (u64::from(s.code()), 0, 0)
}

fn ok(r0: u64, r1: u64) -> Ret {
    (0, r0, r1)
}

/// One call.
pub(crate) fn dispatch(mem: &mut UserMemory, n: u64, a: [u64; 6]) -> Ret {
    let Some(call) = Call::from_number(n) else {
        return ret(Status::UnknownCall);
    };
    if call == Call::Exit {
        let code = a[0] as i64 as i32;
        with(|k| k.exit = Some(code));
        panic!("{EXIT_PANIC}{code})");
    }
    with(|k| k.call(mem, call, a))
}

impl Kernel {
    fn new_event(&mut self, state: State) -> u64 {
        self.made += 1;
        // Unordered, non-zero, unique (an odd multiplier is a bijection).
        let id = (self.made.wrapping_mul(0x9e37_79b9) & 0xffff_ffff) | (self.made << 32);
        self.events.insert(id, state);
        id
    }

    fn fire_due(&mut self) {
        let now = self.clock;
        for s in self.events.values_mut() {
            if let State::Pending { deadline: Some(d) } = *s {
                if d <= now {
                    *s = State::Done {
                        status: 0,
                        errno: 0,
                        value: Value::Word(d),
                    };
                }
            }
        }
    }

    fn started(
        &mut self,
        mem: &UserMemory,
        call: Call,
        a: [u64; 6],
        bufs: &[(usize, usize)],
    ) -> u64 {
        let id = self.new_event(State::Pending { deadline: None });
        let bufs = bufs.iter().map(|&(p, l)| mem.read(a[p], a[l])).collect();
        self.started.push(Started {
            call,
            args: a,
            bufs,
            event: Event::from_raw(id),
        });
        id
    }

    fn call(&mut self, mem: &mut UserMemory, call: Call, a: [u64; 6]) -> Ret {
        use Call::*;
        let too_long = |i: usize| a[i] > MAX_BUFFER as u64;
        match call {
            Pid => ok(u64::from(PID), 0),
            Time => ok(self.clock, 0),
            WallClock => ok(
                1_700_000_000 + self.clock / 1_000_000_000,
                self.clock % 1_000_000_000,
            ),
            Print => {
                if too_long(1) {
                    return ret(Status::BadLength);
                }
                match String::from_utf8(mem.read(a[0], a[1])) {
                    Ok(s) => {
                        self.printed.push(s);
                        ok(0, 0)
                    }
                    Err(_) => ret(Status::BadText),
                }
            }
            Beep => {
                let id = self.new_event(State::Pending {
                    deadline: Some(a[0]),
                });
                self.fire_due();
                ok(id, 0)
            }
            Block => self.block(mem, a),
            Retire => self.retire(mem, a[0], a[1], a[2]),
            Cancel => match self.events.get_mut(&a[0]) {
                None => ret(Status::UnknownEvent),
                Some(State::Done { .. }) => ret(Status::AlreadyComplete),
                Some(State::Cancelled) => ret(Status::Cancelled),
                Some(s) => {
                    *s = State::Cancelled;
                    ok(0, 0)
                }
            },
            Spawn => {
                if too_long(1) || too_long(3) {
                    return ret(Status::BadLength);
                }
                if mem.read(a[0], a[1]) == b"missing" {
                    return ret(Status::NoSuchProgram);
                }
                let id = self.started(mem, call, a, &[(0, 1), (2, 3)]);
                let pid = self.next_pid;
                self.next_pid += 1;
                ok(u64::from(pid), id)
            }
            PageAlloc => {
                if self.pages.len() >= self.page_limit {
                    return ret(Status::OutOfMemory);
                }
                self.made_pages += 1;
                let cap = 0x5000_0000 + self.made_pages * 0x101;
                let revoked = self.new_event(State::Pending { deadline: None });
                self.pages.insert(
                    cap,
                    Page {
                        bound: None,
                        revoked,
                        bytes: vec![0; PAGE_SIZE as usize],
                    },
                );
                ok(cap, revoked)
            }
            PageBind => {
                let taken = self.pages.values().any(|p| p.bound == Some(a[1]));
                let Some(p) = self.pages.get_mut(&a[0]) else {
                    return ret(Status::ForgedCapability);
                };
                if p.bound.is_some() || taken {
                    ret(Status::AlreadyBound)
                } else if !a[1].is_multiple_of(PAGE_SIZE) {
                    ret(Status::BadAlignment)
                } else if !(HEAP_START..HEAP_END).contains(&a[1]) {
                    ret(Status::BadAddress)
                } else {
                    p.bound = Some(a[1]);
                    ok(0, 0)
                }
            }
            PageUnbind => match self.pages.get_mut(&a[0]) {
                None => ret(Status::ForgedCapability),
                Some(Page { bound: None, .. }) => ret(Status::NotBound),
                Some(p) => {
                    p.bound = None;
                    ok(0, 0)
                }
            },
            PageFree => match self.pages.remove(&a[0]) {
                None => ret(Status::ForgedCapability),
                Some(p) => {
                    if let Some(s @ State::Pending { .. }) = self.events.get_mut(&p.revoked) {
                        *s = State::Done {
                            status: 0,
                            errno: 0,
                            value: Value::Empty,
                        };
                    }
                    ok(0, 0)
                }
            },
            // Grant references count up from 42.
            PageGrant => {
                self.grants += 1;
                ok(41 + self.grants, 0)
            }
            PageUngrant | EvtchnNotify | EvtchnClose => ok(0, 0),
            // Handle 5 for Xen port 41: a program must not mix them up.
            EvtchnAllocUnbound | EvtchnBindInterdomain => ok(5, 41),
            KernelStats => {
                let counters = [
                    self.events.len() as u64,
                    self.printed.len() as u64,
                    self.clock,
                ];
                let bytes: Vec<u8> = counters.iter().flat_map(|c| c.to_le_bytes()).collect();
                let n = bytes.len().min(a[1] as usize / 8 * 8);
                mem.write(a[0], &bytes[..n]);
                ok(n as u64, 0)
            }
            List => {
                let mut pending = Vec::new();
                let mut completed = Vec::new();
                let mut cancelled = Vec::new();
                for (&id, s) in &self.events {
                    match s {
                        State::Pending { .. } => pending.push(id),
                        State::Done { .. } => completed.push(id),
                        State::Cancelled => cancelled.push(id),
                    }
                }
                let ids: Vec<u8> = pending
                    .iter()
                    .chain(&completed)
                    .chain(&cancelled)
                    .flat_map(|id| id.to_le_bytes())
                    .collect();
                if ids.len() > a[1] as usize {
                    return (
                        u64::from(Status::BufferTooSmall.code()),
                        0,
                        ids.len() as u64,
                    );
                }
                mem.write(a[0], &ids);
                ok(
                    pending.len() as u64,
                    completed.len() as u64 | (cancelled.len() as u64) << 32,
                )
            }
            XsWatch => {
                let id = self.started(mem, call, a, &[(0, 1)]);
                ok(1, id)
            }
            XsWrite | XsSetPerms => ok(self.started(mem, call, a, &[(0, 1), (2, 3)]), 0),
            FileWrite => ok(self.started(mem, call, a, &[(0, 1), (3, 4)]), 0),
            XsRead | XsDirectory | XsRm | FileRead | FileInfo | DirList | DirCreate | Remove => {
                ok(self.started(mem, call, a, &[(0, 1)]), 0)
            }
            XsTransactionStart | XsTransactionEnd | XsWatchNext | XsUnwatch | EvtchnWait | Ping
            | Random | ShutdownEvent => ok(self.started(mem, call, a, &[]), 0),
            TcpListen | TcpAccept | TcpConnect | SockRecv | SockSend | SockClose | UdpBind
            | UdpRecv | UdpSend | NetStats => match self.net(mem, call, a) {
                Ok(r) => r,
                Err(s) => ret(s),
            },
            _ => ret(Status::UnknownCall),
        }
    }

    /// The socket calls, checked in the kernel's order: the network, then
    /// each word, then the handle and its kind.
    fn net(&mut self, mem: &mut UserMemory, call: Call, a: [u64; 6]) -> Result<Ret, Status> {
        use Call::*;
        match self.network {
            Network::Absent => return Err(Status::NoNetwork),
            Network::Down => return Err(Status::NetDown),
            Network::Up => {}
        }
        let port = |v: u64| match u16::try_from(v) {
            Ok(p) if p != 0 => Ok(p),
            _ => Err(Status::InvalidArgument),
        };
        let len = |v: u64| {
            if (1..=MAX_BUFFER as u64).contains(&v) {
                Ok(v)
            } else {
                Err(Status::BadLength)
            }
        };
        let ip = |v: u64| abi::net::ipv4_octets(v).ok_or(Status::InvalidArgument);
        let kind = |k: &Kernel, h: u64| {
            u32::try_from(h)
                .ok()
                .and_then(|h| k.sockets.get(&h).copied())
                .ok_or(Status::BadHandle)
        };
        Ok(match call {
            NetStats => {
                let mut counters = [0u64; abi::net::STATS.len()];
                counters[0] = self.sockets.len() as u64;
                let bytes: Vec<u8> = counters.iter().flat_map(|c| c.to_le_bytes()).collect();
                let n = bytes.len().min(a[1] as usize / 8 * 8);
                mem.write(a[0], &bytes[..n]);
                ok(n as u64, 0)
            }
            TcpListen => {
                let p = port(a[0])?;
                if a[1] == 0 || a[1] > abi::net::MAX_BACKLOG as u64 || a[2] > 1 {
                    return Err(Status::InvalidArgument);
                }
                ok(u64::from(self.socket(SocketKind::Listener(p))), 0)
            }
            UdpBind => {
                let p = port(a[0])?;
                ok(u64::from(self.socket(SocketKind::Udp(p))), 0)
            }
            TcpConnect => {
                ip(a[0])?;
                port(a[1])?;
                let h = self.socket(SocketKind::Tcp);
                let id = self.started(mem, call, a, &[]);
                ok(u64::from(h), id)
            }
            TcpAccept | SockRecv | SockSend | UdpRecv => {
                if call == SockRecv {
                    len(a[1])?;
                }
                if call == SockSend {
                    len(a[2])?;
                }
                let fits = matches!(
                    (call, kind(self, a[0])?),
                    (TcpAccept, SocketKind::Listener(_))
                        | (SockRecv | SockSend, SocketKind::Tcp)
                        | (UdpRecv, SocketKind::Udp(_))
                );
                if !fits {
                    return Err(Status::BadHandle);
                }
                let bufs: &[(usize, usize)] = if call == SockSend { &[(1, 2)] } else { &[] };
                ok(self.started(mem, call, a, bufs), 0)
            }
            UdpSend => {
                ip(a[1])?;
                port(a[2])?;
                if a[4] > MAX_BUFFER as u64 {
                    return Err(Status::BadLength);
                }
                if !matches!(kind(self, a[0])?, SocketKind::Udp(_)) {
                    return Err(Status::BadHandle);
                }
                let payload = mem.read(a[3], a[4]);
                self.started.push(Started {
                    call,
                    args: a,
                    bufs: vec![payload],
                    event: Event::from_raw(0),
                });
                ok(0, 0)
            }
            SockClose => {
                kind(self, a[0])?;
                self.sockets.remove(&(a[0] as u32));
                // Its waiting events end as the kernel ends them.
                let waiting: Vec<u64> = self
                    .started
                    .iter()
                    .filter(|s| {
                        matches!(s.call, TcpAccept | SockRecv | SockSend | UdpRecv)
                            && s.args[0] == a[0]
                    })
                    .map(|s| s.event.id())
                    .collect();
                for id in waiting {
                    if let Some(s @ State::Pending { .. }) = self.events.get_mut(&id) {
                        *s = State::Cancelled;
                    }
                }
                ok(0, 0)
            }
            _ => return Err(Status::UnknownCall),
        })
    }

    fn socket(&mut self, kind: SocketKind) -> u32 {
        let h = self.next_socket;
        self.next_socket += 1;
        self.sockets.insert(h, kind);
        h
    }

    fn retire(&mut self, mem: &mut UserMemory, id: u64, buf: u64, len: u64) -> Ret {
        let (status, errno, value) = match self.events.get(&id) {
            None => return ret(Status::UnknownEvent),
            Some(State::Pending { .. }) => return ret(Status::NotComplete),
            Some(State::Cancelled) => (Status::Cancelled.code(), 0, Value::Empty),
            Some(State::Done {
                status,
                errno,
                value,
            }) => (*status, *errno, value.clone()),
        };
        let r1 = match value {
            Value::Empty => 0,
            Value::Word(w) => w,
            Value::Bytes(b) => {
                if b.len() as u64 > len {
                    return (u64::from(Status::BufferTooSmall.code()), 0, b.len() as u64);
                }
                mem.write(buf, &b);
                b.len() as u64
            }
        };
        self.events.remove(&id);
        ok(u64::from(status) | (u64::from(errno) << 32), r1)
    }

    fn block(&mut self, mem: &mut UserMemory, a: [u64; 6]) -> Ret {
        let n = a[1] as usize;
        if n == 0 {
            return ret(Status::EmptyTree);
        }
        if n > MAX_TREE {
            return ret(Status::TreeTooLarge);
        }
        let raw = mem.read(a[0], (n * WaitElement::SIZE) as u64);
        let tree: Vec<WaitElement> = raw
            .chunks_exact(WaitElement::SIZE)
            .map(|c| WaitElement {
                event: u64::from_le_bytes(c[0..8].try_into().unwrap_or_default()),
                parent: u32::from_le_bytes(c[8..12].try_into().unwrap_or_default()),
                count: u32::from_le_bytes(c[12..16].try_into().unwrap_or_default()),
            })
            .collect();
        if let Err(s) = check_tree(&tree) {
            return ret(s);
        }
        let leaves = tree.iter().take_while(|w| w.event != 0).count();
        if tree[..leaves]
            .iter()
            .any(|w| !self.events.contains_key(&w.event))
        {
            return ret(Status::UnknownEvent);
        }
        loop {
            let done: Vec<bool> = tree[..leaves]
                .iter()
                .map(|w| !matches!(self.events[&w.event], State::Pending { .. }))
                .collect();
            if satisfied(&tree, &done) {
                let ids: Vec<u8> = tree[..leaves]
                    .iter()
                    .zip(&done)
                    .filter(|(_, d)| **d)
                    .take(a[3] as usize)
                    .flat_map(|(w, _)| w.event.to_le_bytes())
                    .collect();
                mem.write(a[2], &ids);
                return ok((ids.len() / 8) as u64, 0);
            }
            let next = tree[..leaves]
                .iter()
                .filter_map(|w| match self.events[&w.event] {
                    State::Pending { deadline } => deadline,
                    _ => None,
                })
                .min();
            let Some(next) = next else {
                panic!("ethos-fake: block would never wake: {tree:?}");
            };
            self.clock = self.clock.max(next);
            self.fire_due();
        }
    }
}

/// The ABI's rules for a flat tree, checked by the kernel's own validator
/// (`events::validate`): leaves first, sorted, then the root, then the
/// other inner nodes.
fn check_tree(t: &[WaitElement]) -> Result<(), Status> {
    match kernel_validate(t) {
        Ok(()) => Ok(()),
        Err(events::Status::EmptyTree) => Err(Status::EmptyTree),
        Err(events::Status::TreeTooLarge) => Err(Status::TreeTooLarge),
        Err(_) => Err(Status::BadTree),
    }
}

/// `events::validate`, the kernel's own check, on a flat tree of ours.
pub(crate) fn kernel_validate(t: &[WaitElement]) -> Result<(), events::Status> {
    let spec: Vec<events::Element> = t
        .iter()
        .map(|w| events::Element {
            event_id: events::EventId(w.event),
            parent: w.parent,
            count: w.count,
        })
        .collect();
    events::validate(&spec, 4096).map(drop)
}

/// Whether the root is satisfied, given which leaves are done.
fn satisfied(t: &[WaitElement], done: &[bool]) -> bool {
    let l = done.len();
    let mut complete = vec![false; t.len()];
    complete[..l].copy_from_slice(done);
    // Fixpoint: at most one new node per pass.
    for _ in l..t.len() {
        for i in l..t.len() {
            let got = (0..t.len())
                .filter(|&c| t[c].parent as usize == i && complete[c])
                .count() as u32;
            complete[i] |= got >= t[i].count;
        }
    }
    // The root is the first inner node, right after the leaves.
    complete[l]
}
