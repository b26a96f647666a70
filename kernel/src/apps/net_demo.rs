//! A small network service on the event system calls, one process, no
//! threads: every accept, receive and send is an event, and the process
//! blocks on one OR tree of all of them.
//!
//! * TCP port 80: HTTP/1.1 `GET /` answers the kernel's event statistics
//!   (4 KiB buffers, a backlog of 100: many small clients at once).
//! * TCP port 8080 (64 KiB buffers): `GET /blob` sends 10 MiB of a fixed
//!   pattern and logs its POSIX cksum; `POST /upload` reads the body and
//!   answers the cksum of what arrived. The rig compares both with dom0's
//!   `cksum`.
//!   For throughput alone (what scripts/bench compares with Linux's httpd
//!   and nc, which checksum nothing): `GET /zero` sends 10 MiB of zeros and
//!   `POST /sink` reads the body and answers its length.
//! * UDP port 7: echo.
//! * `GET /connect-back` connects to dom0 (192.0.2.1:9999) and sends a line:
//!   the outgoing direction (`tcp_connect`).
//!
//! Runs until `GET /quit` (the rig asks at the end).

use crate::net::cksum::Cksum;
use crate::syscall::{self as sys, net as sysnet};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use events::{EventId, Status, Tree, Value};

pub const PROCESSES: &[super::ProcessSpec] = &[("net-demo", net_demo)];

/// Bytes `GET /blob` sends.
const BLOB: u64 = 10 * 1024 * 1024;
/// Largest request head we read.
const MAX_HEAD: usize = 4096;
/// Bytes per receive and send call.
const CHUNK: usize = 32 * 1024;

fn say(text: &str) {
    let _ = sys::print(&format!("net-demo: {text}"));
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
}

/// A connection with its one outstanding event (a receive or a send).
struct Conn {
    phase: Phase,
}

enum Source {
    Accept(u32),
    Conn(u32),
    /// An outgoing connection being set up.
    Connect(u32),
    Udp,
}

/// Where `GET /connect-back` connects to (dom0 on the rig's bridge).
const CONNECT_BACK: ([u8; 4], u16) = ([192, 0, 2, 1], 9999);

fn http(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn stats_page() -> String {
    let mut page = match sys::kernel_stats() {
        Ok((k, e)) => format!(
            "Ethos-Xen event statistics\nevents created={} completed={} retired={} cancelled={} wakes={}\n\
             syscalls={} context_switches={} upcalls={} port_events={}\n",
            e.created, e.completed, e.retired, e.cancelled, e.wakes, k.syscalls,
            k.context_switches, k.upcalls, k.port_events
        ),
        Err(e) => format!("no statistics: {e}\n"),
    };
    if let Ok((used, free)) = sys::heap_usage() {
        page.push_str(&format!("memory heap_used={used} heap_free={free}\n"));
    }
    if let Ok((n, d)) = sysnet::net_stats() {
        page.push_str(&format!(
            "net sockets={} accepted={} polls={} rx_frames={} tx_frames={} tx_gso={} rx_dropped={} \
             rx_errors={} rx_malformed={} rx_not_ours={} notifies={} port_events={}\n",
            n.sockets,
            n.accepted,
            n.polls,
            d.rx_frames,
            d.tx_frames,
            d.tx_gso,
            d.rx_dropped,
            d.rx_errors,
            d.rx_malformed,
            d.rx_not_ours,
            d.notifies,
            d.port_events
        ));
    }
    page
}

struct Server {
    events: BTreeMap<EventId, Source>,
    conns: BTreeMap<u32, Conn>,
    udp: u32,
    quit: bool,
    served: u64,
}

impl Server {
    fn watch_accept(&mut self, listener: u32) -> Result<(), String> {
        let id = sysnet::tcp_accept(listener).map_err(|e| format!("accept: {e}"))?;
        self.events.insert(id, Source::Accept(listener));
        Ok(())
    }

    fn watch_udp(&mut self) -> Result<(), String> {
        let id = sysnet::udp_recv(self.udp).map_err(|e| format!("udp recv: {e}"))?;
        self.events.insert(id, Source::Udp);
        Ok(())
    }

    fn recv(&mut self, h: u32, phase: Phase) {
        match sysnet::sock_recv(h, CHUNK) {
            Ok(id) => {
                self.events.insert(id, Source::Conn(h));
                self.conns.insert(h, Conn { phase });
            }
            Err(e) => {
                say(&format!("recv on {h}: {e}"));
                let _ = sysnet::sock_close(h);
            }
        }
    }

    /// Sends the next piece of a reply, or closes when it is all out.
    fn send_more(&mut self, h: u32, mut phase: Phase) {
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
                alloc::vec![0; n as usize]
            }
        } else {
            let _ = sysnet::sock_close(h);
            self.served += 1;
            if *blob_at > 0 && *pattern {
                say(&format!("blob sent: cksum {} {}", sum.value(), sum.len()));
            }
            return;
        };
        match sysnet::sock_send(h, &piece) {
            Ok(id) => {
                self.events.insert(id, Source::Conn(h));
                self.conns.insert(h, Conn { phase });
            }
            Err(e) => {
                say(&format!("send on {h}: {e}"));
                let _ = sysnet::sock_close(h);
            }
        }
    }

    /// A request head is complete: choose the reply.
    fn respond(&mut self, h: u32, head: &[u8], rest: &[u8]) {
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
            reply(http("200 OK", &stats_page()), 0)
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
            match sysnet::tcp_connect(ip, port) {
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

    fn on_conn(&mut self, h: u32, status: Status, value: Value) {
        let Some(conn) = self.conns.remove(&h) else {
            return;
        };
        if status != Status::Ok {
            let _ = sysnet::sock_close(h);
            return;
        }
        match (conn.phase, value) {
            (Phase::Head(mut head), Value::Bytes(b)) => {
                if b.is_empty() {
                    let _ = sysnet::sock_close(h);
                    return;
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
                    let _ = sysnet::sock_close(h);
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
                let _ = sysnet::sock_close(h);
            }
        }
    }

    fn on_udp(&mut self, status: Status, value: Value) -> Result<(), String> {
        if let (Status::Ok, Value::Bytes(d)) = (status, value) {
            if d.len() >= 6 {
                let ip = [d[0], d[1], d[2], d[3]];
                let port = u16::from_le_bytes([d[4], d[5]]);
                if let Err(e) = sysnet::udp_send(self.udp, ip, port, &d[6..]) {
                    say(&format!("udp echo: {e}"));
                }
            }
        }
        self.watch_udp()
    }
}

/// `Remote` code of events ended because the network went away.
const NET_DOWN: u32 = 3;

/// Listens on the demo's ports once the stack is up (waits for it).
fn listen_when_up() -> Result<(u32, u32, u32), String> {
    let mut waited = false;
    let small = loop {
        match sysnet::tcp_listen(80, 100, false) {
            Ok(h) => break h,
            Err(e) => {
                if !waited {
                    // No stack yet (net-setup is still talking to netback).
                    let why = match e {
                        crate::status::SysError::ServiceBroken => String::from("not up yet"),
                        other => format!("{other}"),
                    };
                    say(&format!("waiting for the network ({why})"));
                    waited = true;
                }
                let beep = sys::beep(sys::get_time() + 100_000_000).map_err(|e| format!("{e}"))?;
                let _ = sys::block_and_retire(beep);
            }
        }
    };
    let large = sysnet::tcp_listen(8080, 2, true).map_err(|e| format!("listen 8080: {e}"))?;
    let udp = sysnet::udp_bind(7).map_err(|e| format!("udp bind: {e}"))?;
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
        let ids: Vec<EventId> = s.events.keys().copied().collect();
        let spec = Tree::any(ids.iter().copied())
            .to_spec()
            .map_err(|e| format!("tree: {e}"))?;
        let woken = sys::block(&spec).map_err(|e| format!("block: {e}"))?;
        for id in woken {
            let Some(source) = s.events.remove(&id) else {
                continue;
            };
            let r = sys::retire(id).map_err(|e| format!("retire: {e}"))?;
            if r.status == Status::Remote(NET_DOWN) {
                // The stack ended every socket: retire what is left and start over.
                let mut ended = 1;
                for (id, _) in core::mem::take(&mut s.events) {
                    if let Ok(r) = sys::block_and_retire(id) {
                        ended += usize::from(r.status == Status::Remote(NET_DOWN));
                    }
                }
                s.conns.clear();
                return Ok(Some(ended));
            }
            match source {
                Source::Accept(listener) => {
                    if let (Status::Ok, Value::Word(h)) = (r.status, r.value) {
                        s.recv(h as u32, Phase::Head(Vec::new()));
                    }
                    if !s.quit {
                        s.watch_accept(listener)?;
                    }
                }
                Source::Conn(h) => s.on_conn(h, r.status, r.value),
                Source::Connect(h) => {
                    if r.status == Status::Ok {
                        say("connected to dom0");
                        s.send_more(
                            h,
                            Phase::reply(b"hello from ethos over tcp_connect\n".to_vec(), 0, false),
                        );
                    } else {
                        say(&format!("connect-back failed: {}", r.status));
                        let _ = sysnet::sock_close(h);
                    }
                }
                Source::Udp => s.on_udp(r.status, r.value)?,
            }
        }
    }
    Ok(None)
}

fn net_demo() {
    if let Err(e) = run() {
        say(&format!("FAILED: {e}"));
    }
}
