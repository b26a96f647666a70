//! A small network service on the socket calls, one program, no threads:
//! every accept, receive and send is an event, and the program blocks on
//! one OR tree of all of them. It was a kernel-linked app; it is a user
//! program now, with the same lines on the console and the same answers.
//!
//! * TCP port 80: HTTP/1.1 `GET /` answers the kernel's event statistics
//!   (4 KiB buffers, a backlog of 100: many small clients at once).
//! * TCP port 8080 (large buffers): `GET /blob` sends 10 MiB of a fixed
//!   pattern and logs its POSIX cksum; `POST /upload` reads the body and
//!   answers the cksum of what arrived. The rig compares both with dom0's
//!   `cksum`.
//!   For throughput alone (what scripts/bench compares with Linux's httpd
//!   and nc, which checksum nothing): `GET /zero` sends 10 MiB of zeros and
//!   `POST /sink` reads the body and answers `received`.
//! * UDP port 7: echo.
//! * A connection that sends no request for [`IDLE_NS`] is closed: the
//!   kernel reaps connections that never finish their handshake, and ones
//!   that finish it and then say nothing are the application's to time out
//!   (one timer for all, checked every [`IDLE_CHECK_NS`]).
//! * `GET /connect-back` connects to dom0 (192.0.2.1:9999) and sends a line:
//!   the outgoing direction.
//!
//! When the backend goes away every socket event ends with `NET_DOWN`; the
//! program says so, waits for the network and serves again. Runs until
//! `GET /quit` (the rig asks at the end). Needs `abi::rights::NETWORK`
//! (as `ethos.init` it has every right).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use ethos::cksum::Cksum;
use ethos::net::{self, Buffers, Conn, Datagram, Listener, Udp};
use ethos::{event, println, stats, time, Event, Retired, Status, Tree};

ethos::main!(main);

/// Bytes `GET /blob` sends.
const BLOB: u64 = 10 * 1024 * 1024;
/// Largest request head we read.
const MAX_HEAD: usize = 4096;
/// Bytes per receive and send call.
const CHUNK: usize = 32 * 1024;
/// How long a connection may wait before its request head is complete.
const IDLE_NS: u64 = 10_000 * time::MS;
/// How often the idle connections are looked for, while there are any.
const IDLE_CHECK_NS: u64 = 2_000 * time::MS;
/// Where `GET /connect-back` connects to (dom0 on the rig's bridge).
const CONNECT_BACK: ([u8; 4], u16) = ([192, 0, 2, 1], 9999);

fn say(text: &str) {
    println!("net-demo: {text}");
}

/// The pattern byte at `offset` of the blob.
fn blob_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

enum Phase {
    /// Reading the request head.
    Head(Vec<u8>),
    /// Reading an upload body.
    /// `check`: keep the cksum (else only count: `/sink`).
    Body { left: u64, sum: Cksum, check: bool },
    /// Sending `out[sent..]`, then `blob_left` bytes of the blob.
    Reply {
        out: Vec<u8>,
        sent: usize,
        blob_left: u64,
        blob_at: u64,
        sum: Cksum,
        /// The blob is the checksummed pattern (else zeros: `/zero`).
        pattern: bool,
    },
}

impl Phase {
    /// Sending `out`, then `blob_left` bytes of the pattern (or of zeros).
    fn reply(out: Vec<u8>, blob_left: u64, pattern: bool) -> Phase {
        Phase::Reply {
            out,
            sent: 0,
            blob_left,
            blob_at: 0,
            sum: Cksum::new(),
            pattern,
        }
    }

    /// Whether the connection's outstanding event is a receive (its value
    /// is bytes) rather than a send (a word).
    fn receiving(&self) -> bool {
        !matches!(self, Phase::Reply { .. })
    }
}

/// What an event is for.
enum Source {
    Accept(Listener),
    /// The one outstanding receive or send of a connection.
    Conn(Conn),
    /// An outgoing connection being set up.
    Connect(Conn),
    Udp,
    /// Time to close connections idle for [`IDLE_NS`].
    IdleCheck,
}

/// A retired event's value, as its source's call defines it.
enum Value {
    Empty,
    Word(u64),
    Bytes(Vec<u8>),
}

fn http(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Indices of `ethos::stats::read`'s counters (the kernel's order).
mod counter {
    pub const CREATED: usize = 0;
    pub const COMPLETED: usize = 1;
    pub const RETIRED: usize = 2;
    pub const CANCELLED: usize = 3;
    pub const WAKES: usize = 5;
    pub const CONTEXT_SWITCHES: usize = 7;
    pub const SYSCALLS: usize = 8;
    pub const UPCALLS: usize = 10;
    pub const PORT_EVENTS: usize = 11;
    pub const HEAP_USED: usize = 15;
    pub const HEAP_FREE: usize = 16;
    pub const COUNT: usize = 17;
}

fn stats_page(idle_closed: u64) -> String {
    use counter::*;
    let mut c = [0u64; COUNT];
    let mut page = match stats::read(&mut c) {
        Ok(n) if n >= COUNT => format!(
            "Ethos-Xen event statistics\nevents created={} completed={} retired={} cancelled={} wakes={}\n\
             syscalls={} context_switches={} upcalls={} port_events={}\n\
             memory heap_used={} heap_free={}\n",
            c[CREATED], c[COMPLETED], c[RETIRED], c[CANCELLED], c[WAKES], c[SYSCALLS],
            c[CONTEXT_SWITCHES], c[UPCALLS], c[PORT_EVENTS], c[HEAP_USED], c[HEAP_FREE]
        ),
        Ok(n) => format!("no statistics: only {n} counters\n"),
        Err(e) => format!("no statistics: {e}\n"),
    };
    if let Ok(n) = net::stats() {
        page.push_str(&format!(
            "net sockets={} accepted={} polls={} rx_frames={} tx_frames={} tx_gso={} rx_dropped={} \
             rx_errors={} rx_malformed={} rx_not_ours={} notifies={} port_events={} \
             half_open={} half_open_reaped={} idle_closed={}\n",
            n.sockets,
            n.accepted,
            n.polls,
            n.rx_frames,
            n.tx_frames,
            n.tx_gso,
            n.rx_dropped,
            n.rx_errors,
            n.rx_malformed,
            n.rx_not_ours,
            n.notifies,
            n.port_events,
            n.half_open,
            n.half_open_reaped,
            idle_closed
        ));
    }
    page
}

struct Server {
    events: BTreeMap<Event, Source>,
    conns: BTreeMap<Conn, Phase>,
    udp: Udp,
    quit: bool,
    served: u64,
    /// When each connection waiting for its request head last sent bytes.
    heard: BTreeMap<Conn, u64>,
    /// The idle check's timer, while one is set.
    idle_check: Option<Event>,
    /// Connections closed for saying nothing.
    idle_closed: u64,
    /// Where receives are retired to: one call, no allocation.
    scratch: Vec<u8>,
}

impl Server {
    fn watch_accept(&mut self, listener: Listener) -> Result<(), String> {
        let id = listener.accept().map_err(|e| format!("accept: {e}"))?;
        self.events.insert(id, Source::Accept(listener));
        Ok(())
    }

    fn watch_udp(&mut self) -> Result<(), String> {
        let id = self.udp.recv().map_err(|e| format!("udp recv: {e}"))?;
        self.events.insert(id, Source::Udp);
        Ok(())
    }

    fn recv(&mut self, h: Conn, phase: Phase) {
        match h.recv(CHUNK) {
            Ok(id) => {
                self.events.insert(id, Source::Conn(h));
                if matches!(phase, Phase::Head(_)) {
                    self.heard
                        .entry(h)
                        .or_insert_with(|| time::now().unwrap_or(0));
                    self.arm_idle_check();
                } else {
                    self.heard.remove(&h);
                }
                self.conns.insert(h, phase);
            }
            Err(e) => {
                say(&format!("recv on {}: {e}", h.raw()));
                let _ = h.close();
            }
        }
    }

    fn arm_idle_check(&mut self) {
        if self.idle_check.is_none() {
            if let Ok(id) = time::beep_in(IDLE_CHECK_NS) {
                self.events.insert(id, Source::IdleCheck);
                self.idle_check = Some(id);
            }
        }
    }

    /// Closes the connections that sent no (complete) request head for
    /// [`IDLE_NS`]; their receive ends `Cancelled` and is retired as any.
    fn close_idle(&mut self) {
        self.idle_check = None;
        let now = time::now().unwrap_or(0);
        let idle: Vec<Conn> = self
            .heard
            .iter()
            .filter(|&(_, &t)| now.saturating_sub(t) >= IDLE_NS)
            .map(|(&h, _)| h)
            .collect();
        for h in idle {
            self.heard.remove(&h);
            self.conns.remove(&h);
            let _ = h.close();
            self.idle_closed += 1;
        }
        if !self.heard.is_empty() {
            self.arm_idle_check();
        }
    }

    /// Sends the next piece of a reply, or closes when it is all out.
    fn send_more(&mut self, h: Conn, mut phase: Phase) {
        let Phase::Reply {
            out,
            sent,
            blob_left,
            blob_at,
            sum,
            pattern,
        } = &mut phase
        else {
            return;
        };
        let piece: Vec<u8> = if *sent < out.len() {
            out[*sent..].iter().take(CHUNK).copied().collect()
        } else if *blob_left > 0 {
            let n = (*blob_left).min(CHUNK as u64);
            if *pattern {
                (0..n).map(|i| blob_byte(*blob_at + i)).collect()
            } else {
                vec![0; n as usize]
            }
        } else {
            let _ = h.close();
            self.served += 1;
            if *blob_at > 0 && *pattern {
                say(&format!("blob sent: cksum {} {}", sum.value(), sum.len()));
            }
            return;
        };
        match h.send(&piece) {
            Ok(id) => {
                self.events.insert(id, Source::Conn(h));
                self.conns.insert(h, phase);
            }
            Err(e) => {
                say(&format!("send on {}: {e}", h.raw()));
                let _ = h.close();
            }
        }
    }

    /// A request head is complete: choose the reply.
    fn respond(&mut self, h: Conn, head: &[u8], rest: &[u8]) {
        let text = String::from_utf8_lossy(head);
        let first = text.lines().next().unwrap_or("");
        let length: u64 = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let reply = |out: Vec<u8>, blob_left: u64| Phase::reply(out, blob_left, false);
        let blob_head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BLOB}\r\nConnection: close\r\n\r\n"
        );
        let phase = if first.starts_with("GET / ") {
            reply(http("200 OK", &stats_page(self.idle_closed)), 0)
        } else if first.starts_with("GET /blob ") {
            Phase::reply(blob_head.into_bytes(), BLOB, true)
        } else if first.starts_with("GET /zero ") {
            reply(blob_head.into_bytes(), BLOB)
        } else if first.starts_with("POST /upload ") || first.starts_with("POST /sink ") {
            let check = first.starts_with("POST /upload ");
            let mut sum = Cksum::new();
            let take = rest.len().min(length as usize);
            if check {
                sum.update(&rest[..take]);
            }
            let left = length - take as u64;
            if left > 0 {
                self.recv(h, Phase::Body { left, sum, check });
                return;
            }
            reply(
                http("200 OK", &format!("{} {}\n", sum.value(), sum.len())),
                0,
            )
        } else if first.starts_with("GET /connect-back ") {
            let (ip, port) = CONNECT_BACK;
            match Conn::connect(ip, port) {
                Ok((conn, id)) => {
                    self.events.insert(id, Source::Connect(conn));
                    reply(http("200 OK", "connecting\n"), 0)
                }
                Err(e) => reply(http("503 Service Unavailable", &format!("{e}\n")), 0),
            }
        } else if first.starts_with("GET /quit ") {
            self.quit = true;
            reply(http("200 OK", "bye\n"), 0)
        } else {
            reply(http("404 Not Found", "not found\n"), 0)
        };
        self.send_more(h, phase);
    }

    fn on_conn(&mut self, h: Conn, phase: Phase, status: Status, value: Value) {
        if status != Status::Ok {
            self.heard.remove(&h);
            let _ = h.close();
            return;
        }
        match (phase, value) {
            (Phase::Head(mut head), Value::Bytes(b)) => {
                if b.is_empty() {
                    self.heard.remove(&h);
                    let _ = h.close();
                    return;
                }
                if let Some(t) = self.heard.get_mut(&h) {
                    *t = time::now().unwrap_or(*t);
                }
                head.extend_from_slice(&b);
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    let (h0, rest) = head.split_at(end + 4);
                    self.respond(h, h0, rest);
                } else if head.len() > MAX_HEAD {
                    self.send_more(
                        h,
                        Phase::reply(
                            http("431 Request Header Fields Too Large", "too large\n"),
                            0,
                            false,
                        ),
                    );
                } else {
                    self.recv(h, Phase::Head(head));
                }
            }
            (
                Phase::Body {
                    left,
                    mut sum,
                    check,
                },
                Value::Bytes(b),
            ) => {
                if b.is_empty() {
                    let _ = h.close();
                    return;
                }
                let take = b.len().min(left as usize);
                if check {
                    sum.update(&b[..take]);
                }
                let left = left - take as u64;
                if left > 0 {
                    self.recv(h, Phase::Body { left, sum, check });
                } else {
                    let body = if check {
                        say(&format!(
                            "upload received: cksum {} {}",
                            sum.value(),
                            sum.len()
                        ));
                        format!("{} {}\n", sum.value(), sum.len())
                    } else {
                        String::from("received\n")
                    };
                    self.send_more(h, Phase::reply(http("200 OK", &body), 0, false));
                }
            }
            (
                Phase::Reply {
                    out,
                    sent,
                    blob_left,
                    blob_at,
                    mut sum,
                    pattern,
                },
                Value::Word(n),
            ) => {
                let n = n as usize;
                let phase = if sent < out.len() {
                    Phase::Reply {
                        sent: sent + n,
                        out,
                        blob_left,
                        blob_at,
                        sum,
                        pattern,
                    }
                } else {
                    if pattern {
                        let bytes: Vec<u8> =
                            (0..n as u64).map(|i| blob_byte(blob_at + i)).collect();
                        sum.update(&bytes);
                    }
                    Phase::Reply {
                        out,
                        sent,
                        blob_left: blob_left - n as u64,
                        blob_at: blob_at + n as u64,
                        sum,
                        pattern,
                    }
                };
                self.send_more(h, phase);
            }
            _ => {
                let _ = h.close();
            }
        }
    }

    fn on_udp(&mut self, status: Status, value: Value) -> Result<(), String> {
        if let (Status::Ok, Value::Bytes(d)) = (status, value) {
            if let Some(d) = Datagram::parse(&d) {
                if let Err(e) = self.udp.send(d.ip, d.port, d.payload) {
                    say(&format!("udp echo: {e}"));
                }
            }
        }
        self.watch_udp()
    }

    /// Retires `id` as its source's call defines its value: a handle word
    /// for an accept, bytes for a receive or a datagram, a word for a
    /// send, nothing for a connect.
    fn retire(&mut self, id: Event, source: &Source) -> Result<Retired<Value>, Status> {
        let receiving = match source {
            // A connection closed for idleness had a receive outstanding.
            Source::Conn(h) => self.conns.get(h).is_none_or(Phase::receiving),
            Source::Udp => true,
            Source::Accept(_) | Source::Connect(_) | Source::IdleCheck => false,
        };
        match source {
            Source::Connect(_) => event::retire_empty(id).map(|r| r.map(|()| Value::Empty)),
            _ if receiving => {
                let r = event::retire_bytes(id, &mut self.scratch)?;
                let scratch = &self.scratch;
                Ok(r.map(|n| Value::Bytes(scratch[..n].to_vec())))
            }
            _ => event::retire_word(id).map(|r| r.map(Value::Word)),
        }
    }
}

/// Listens on the demo's ports once the stack is up (waits for it).
fn listen_when_up() -> Result<(Listener, Listener, Udp), String> {
    let mut waited = false;
    let small = loop {
        match Listener::listen(80, 100, Buffers::Small) {
            Ok(h) => break h,
            Err(e) => {
                if !waited {
                    // No stack yet (net-setup is still talking to netback).
                    let why = match e {
                        Status::NetDown => String::from("not up yet"),
                        other => format!("{other}"),
                    };
                    say(&format!("waiting for the network ({why})"));
                    waited = true;
                }
                if e == Status::NoNetwork || e == Status::NotPermitted {
                    // Waiting would never help.
                    return Err(format!("listen 80: {e}"));
                }
                let now = time::now().map_err(|e| format!("time: {e}"))?;
                let beep = event::beep(now + 100 * time::MS).map_err(|e| format!("beep: {e}"))?;
                let _ = event::block_and_retire(beep);
            }
        }
    };
    let large =
        Listener::listen(8080, 2, Buffers::Large).map_err(|e| format!("listen 8080: {e}"))?;
    let udp = Udp::bind(7).map_err(|e| format!("udp bind: {e}"))?;
    Ok((small, large, udp))
}

fn run() -> Result<(), String> {
    let mut first = true;
    loop {
        let (small, large, udp) = listen_when_up()?;
        let mut s = Server {
            events: BTreeMap::new(),
            conns: BTreeMap::new(),
            udp,
            quit: false,
            served: 0,
            heard: BTreeMap::new(),
            idle_check: None,
            idle_closed: 0,
            scratch: vec![0; CHUNK],
        };
        s.watch_accept(small)?;
        s.watch_accept(large)?;
        s.watch_udp()?;
        if first {
            say("serving http on 80 and 8080, udp echo on 7");
        } else {
            say("serving again: the network is back");
        }
        first = false;
        match serve(&mut s)? {
            None => {
                say(&format!("quit after {} replies", s.served));
                return Ok(());
            }
            Some(ended) => say(&format!(
                "network down: {ended} waiting events ended with NET_DOWN; the guest runs on"
            )),
        }
    }
}

/// Serves until quit (`None`) or the network goes down (`Some(events that
/// ended with NET_DOWN)`; every outstanding event is retired then).
fn serve(s: &mut Server) -> Result<Option<usize>, String> {
    while !s.quit || !s.conns.is_empty() {
        let woken =
            event::wait(&Tree::any(s.events.keys().copied())).map_err(|e| format!("block: {e}"))?;
        for id in woken {
            let Some(source) = s.events.remove(&id) else {
                continue;
            };
            let r = s.retire(id, &source).map_err(|e| format!("retire: {e}"))?;
            if net::is_net_down(&r) {
                // The stack ended every socket: retire what is left and start over.
                let mut ended = 1;
                for (id, _) in core::mem::take(&mut s.events) {
                    if event::block_one(id).is_ok() {
                        // Whatever its kind: an empty buffer first, then the bytes.
                        if let Ok(r) = event::retire_vec(id) {
                            ended += usize::from(net::is_net_down(&r));
                        }
                    }
                }
                s.conns.clear();
                s.heard.clear();
                s.idle_check = None;
                return Ok(Some(ended));
            }
            match source {
                Source::Accept(listener) => {
                    if let (Status::Ok, Value::Word(h)) = (r.status, r.value) {
                        s.recv(Conn::from_raw(h as u32), Phase::Head(Vec::new()));
                    }
                    if !s.quit {
                        s.watch_accept(listener)?;
                    }
                }
                Source::Conn(h) => {
                    if let Some(phase) = s.conns.remove(&h) {
                        s.on_conn(h, phase, r.status, r.value);
                    }
                }
                Source::Connect(h) => {
                    if r.status == Status::Ok {
                        say("connected to dom0");
                        s.send_more(
                            h,
                            Phase::reply(b"hello from ethos over tcp_connect\n".to_vec(), 0, false),
                        );
                    } else {
                        say(&format!("connect-back failed: {}", r.status));
                        let _ = h.close();
                    }
                }
                Source::Udp => s.on_udp(r.status, r.value)?,
                Source::IdleCheck => s.close_idle(),
            }
        }
    }
    Ok(None)
}

fn main(_: ethos::Args) -> i32 {
    match run() {
        Ok(()) => 0,
        Err(e) => {
            say(&format!("FAILED: {e}"));
            1
        }
    }
}
