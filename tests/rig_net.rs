//! `rig-net`: the network client dom0 uses in the rig to test the guest's
//! stack (only ever aimed at the guest on the rig's bridge, 192.0.2.0/24).
//!
//! ```text
//! rig-net get HOST:PORT PATH [OUT]        HTTP/1.1 GET; body to OUT or stdout; prints "status=N bytes=N us=N"
//! rig-net post HOST:PORT PATH FILE        HTTP/1.1 POST of FILE; prints the status line and body
//! rig-net parallel N HOST:PORT PATH       N GETs at once; prints "ok=N of N"
//! rig-net udp HOST:PORT MESSAGE           one datagram; prints the echo (or "timeout")
//! rig-net udp-size HOST:PORT BYTES        one datagram of BYTES (fragmented past the MTU); prints
//!                                         "echo=N" when the same bytes come back ("timeout", "differs")
//! rig-net isns IFACE HOST:PORT N          N connections one after the other; prints the SYN-ACKs'
//!                                         sequence numbers seen on IFACE, comma-separated, in order
//! rig-net orphans IFACE MAC N             sends N IPv4 fragments to MAC out of IFACE (from the made-up
//!                                         192.0.2.98) that never make a datagram (3 kinds)
//! rig-net synflood IFACE MAC HOST:PORT N sends N SYNs to HOST:PORT (at MAC, out of IFACE) from made-up,
//!                                         silent addresses 192.0.2.128-191 that never finish the handshake
//! rig-net silent N HOST:PORT SECS        opens N connections that send nothing; waits up to SECS for the peer
//!                                         to close each; prints "closed=K of N"
//! rig-net listen PORT OUT                 accepts one connection, writes what it sends to OUT
//! rig-net hold HOST:PORT                 connects, sends half a request, waits until the peer ends it
//! rig-net hold-many N HOST:PORT SECS      opens N such connections, keeps them SECS, closes them; prints "held=K of N"
//! rig-net garbage IFACE MAC N             sends N malformed Ethernet frames to MAC out of IFACE (4 kinds)
//! rig-net send HOST:PORT FILE             streams FILE, half-closes, waits for the peer to close; prints "bytes=N us=N"
//! rig-net rps N C HOST:PORT PATH          N GETs, C at a time; prints "requests=N ok=N us=N per_s=N"
//! rig-net cksum FILE                      POSIX cksum of FILE ("CRC LENGTH"; busybox here has none)
//! rig-net trace IFACE PORT SECS           watches TCP to/from PORT on IFACE for SECS; prints per-connection
//!                                         handshake counts for connections that did not go as usual
//! rig-net watch IFACE IP MAC STOP SECS    watches IFACE until the file STOP exists (SECS at most): prints,
//!                                         stamped with the wall clock (us), every ARP frame from IP, the
//!                                         first frame from MAC after each silence, and each echo reply
//!                                         from IP after a gap; then "replies=N longest_gap_ms=G
//!                                         gratuitous_arps=K" (a migration's timeline, dom0's view)
//! rig-net stamp                           copies stdin to stdout, each line prefixed by the wall clock (us)
//! ```
//! Exit status 0 on success, 1 on failure (with the reason on stderr).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long one connection may stall (a hung peer must not hang the rig).
const TIMEOUT: Duration = Duration::from_secs(30);

fn addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("{s}: {e}"))
}

/// Sends a request and reads the whole response: (status, body).
fn http(
    to: SocketAddr,
    request: &[u8],
    body: Option<&mut dyn Read>,
) -> Result<(u32, Vec<u8>), String> {
    let mut s = TcpStream::connect_timeout(&to, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT)).ok();
    s.set_write_timeout(Some(TIMEOUT)).ok();
    s.write_all(request).map_err(|e| format!("send: {e}"))?;
    if let Some(body) = body {
        std::io::copy(body, &mut s).map_err(|e| format!("send body: {e}"))?;
    }
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .map_err(|e| format!("receive: {e}"))?;
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no response head")?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((status, all[end + 4..].to_vec()))
}

fn get(to: &str, path: &str) -> Result<(u32, Vec<u8>), String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    http(addr(to)?, req.as_bytes(), None)
}

fn run(args: &[String]) -> Result<(), String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["get", to, path, rest @ ..] => {
            let t = Instant::now();
            let (status, body) = get(to, path)?;
            let us = t.elapsed().as_micros();
            match rest.first() {
                Some(out) => std::fs::write(out, &body).map_err(|e| format!("{out}: {e}"))?,
                None => std::io::stdout()
                    .write_all(&body)
                    .map_err(|e| e.to_string())?,
            }
            println!("status={status} bytes={} us={us}", body.len());
            if status == 200 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        }
        ["post", to, path, file] => {
            let mut f = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
            let len = f.metadata().map_err(|e| e.to_string())?.len();
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: {to}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            );
            let t = Instant::now();
            let (status, body) = http(addr(to)?, req.as_bytes(), Some(&mut f))?;
            println!(
                "status={status} us={} body={}",
                t.elapsed().as_micros(),
                String::from_utf8_lossy(&body).trim()
            );
            if status == 200 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        }
        ["parallel", n, to, path] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let threads: Vec<_> = (0..n)
                .map(|_| {
                    let (to, path) = (to.to_string(), path.to_string());
                    std::thread::spawn(move || get(&to, &path))
                })
                .collect();
            let mut ok = 0;
            for t in threads {
                match t.join() {
                    Ok(Ok((200, _))) => ok += 1,
                    Ok(Ok((s, _))) => eprintln!("status {s}"),
                    Ok(Err(e)) => eprintln!("{e}"),
                    Err(_) => eprintln!("thread panicked"),
                }
            }
            println!("ok={ok} of {n}");
            if ok == n {
                Ok(())
            } else {
                Err(format!("{} failed", n - ok))
            }
        }
        ["udp", to, message] => {
            let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            s.send_to(message.as_bytes(), addr(to)?)
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 2048];
            match s.recv_from(&mut buf) {
                Ok((n, _)) => {
                    println!("{}", String::from_utf8_lossy(&buf[..n]));
                    Ok(())
                }
                Err(_) => {
                    println!("timeout");
                    Err("no echo".into())
                }
            }
        }
        ["udp-size", to, bytes] => {
            let n: usize = bytes.parse().map_err(|_| "bad BYTES")?;
            let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let sent: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
            s.send_to(&sent, addr(to)?).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 65536];
            match s.recv_from(&mut buf) {
                Ok((k, _)) if buf[..k] == sent[..] => {
                    println!("echo={k}");
                    Ok(())
                }
                Ok((k, _)) => {
                    println!("differs: {k} bytes");
                    Err("echo differs".into())
                }
                Err(_) => {
                    println!("timeout");
                    Err("no echo".into())
                }
            }
        }
        ["isns", iface, to, n] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let isns = syn_ack_isns(iface, addr(to)?, n)?;
            let list: Vec<String> = isns.iter().map(u32::to_string).collect();
            println!("{}", list.join(","));
            Ok(())
        }
        ["orphans", iface, mac, n] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let mac = parse_mac(mac).ok_or("bad MAC")?;
            let frames: Vec<Vec<u8>> = (0..n).map(|i| orphan_fragment(i, mac)).collect();
            println!("sent={}", send_frames(iface, mac, &frames)?);
            Ok(())
        }
        ["synflood", iface, mac, to, n] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let mac = parse_mac(mac).ok_or("bad MAC")?;
            let SocketAddr::V4(to) = addr(to)? else {
                return Err("IPv4 only".into());
            };
            let frames: Vec<Vec<u8>> = (0..n).map(|i| spoofed_syn(i, mac, to)).collect();
            println!("sent={}", send_frames(iface, mac, &frames)?);
            Ok(())
        }
        ["silent", n, to, secs] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let secs: u64 = secs.parse().map_err(|_| "bad SECS")?;
            let to = addr(to)?;
            let opened: Vec<TcpStream> = (0..n)
                .filter_map(|_| TcpStream::connect_timeout(&to, Duration::from_secs(5)).ok())
                .collect();
            let until = Instant::now() + Duration::from_secs(secs);
            let threads: Vec<_> = opened
                .into_iter()
                .map(|mut s| {
                    std::thread::spawn(move || {
                        let left = until.saturating_duration_since(Instant::now());
                        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                            .ok();
                        let mut buf = [0u8; 16];
                        // Closed by the peer: end of stream or a reset (a
                        // timeout is not).
                        match s.read(&mut buf) {
                            Ok(0) => true,
                            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                            Ok(_) => false,
                        }
                    })
                })
                .collect();
            let closed = threads
                .into_iter()
                .map(|t| t.join().unwrap_or(false))
                .filter(|&c| c)
                .count();
            println!("closed={closed} of {n}");
            Ok(())
        }
        ["listen", port, out] => {
            let l = TcpListener::bind(("0.0.0.0", port.parse::<u16>().map_err(|_| "bad port")?))
                .map_err(|e| e.to_string())?;
            let (mut s, peer) = l.accept().map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(TIMEOUT)).ok();
            let mut got = Vec::new();
            s.read_to_end(&mut got).map_err(|e| e.to_string())?;
            std::fs::write(out, &got).map_err(|e| e.to_string())?;
            println!("from={peer} bytes={}", got.len());
            Ok(())
        }
        ["hold", to] => {
            let mut s = TcpStream::connect_timeout(&addr(to)?, TIMEOUT)
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(TIMEOUT)).ok();
            s.write_all(b"GET /held HTTP/1.1\r\n")
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => println!("ended: closed"),
                Ok(n) => println!("ended: {n} bytes"),
                Err(e) => println!("ended: {e}"),
            }
            Ok(())
        }
        ["hold-many", n, to, secs] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let secs: u64 = secs.parse().map_err(|_| "bad SECS")?;
            let to = addr(to)?;
            // Half a request each, so the server keeps every one open.
            let held: Vec<TcpStream> = (0..n)
                .filter_map(|_| {
                    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).ok()?;
                    s.write_all(b"GET /held HTTP/1.1\r\n").ok()?;
                    Some(s)
                })
                .collect();
            println!("held={} of {n}", held.len());
            std::io::stdout().flush().ok();
            std::thread::sleep(Duration::from_secs(secs));
            drop(held);
            Ok(())
        }
        ["garbage", iface, mac, n] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let mac = parse_mac(mac).ok_or("bad MAC")?;
            let frames: Vec<Vec<u8>> = (0..n).map(|kind| garbage_frame(kind, mac)).collect();
            println!("sent={}", send_frames(iface, mac, &frames)?);
            Ok(())
        }
        ["send", to, file] => {
            let data = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            let t = Instant::now();
            let mut s = TcpStream::connect_timeout(&addr(to)?, TIMEOUT)
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(TIMEOUT)).ok();
            s.write_all(&data).map_err(|e| format!("send: {e}"))?;
            s.shutdown(std::net::Shutdown::Write).ok();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest)
                .map_err(|e| format!("wait for close: {e}"))?;
            println!("bytes={} us={}", data.len(), t.elapsed().as_micros());
            Ok(())
        }
        ["rps", n, c, to, path] => {
            let n: usize = n.parse().map_err(|_| "bad N")?;
            let c: usize = c.parse().map_err(|_| "bad C")?;
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let t = Instant::now();
            let threads: Vec<_> = (0..c.max(1))
                .map(|_| {
                    let (to, path, next) = (to.to_string(), path.to_string(), next.clone());
                    std::thread::spawn(move || {
                        let mut ok = 0;
                        while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                            if matches!(get(&to, &path), Ok((200, _))) {
                                ok += 1;
                            }
                        }
                        ok
                    })
                })
                .collect();
            let ok: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
            let us = t.elapsed().as_micros().max(1);
            println!(
                "requests={n} ok={ok} us={us} per_s={}",
                (ok as u128 * 1_000_000) / us
            );
            Ok(())
        }
        ["cksum", file] => {
            let data = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            let mut sum = ethos::cksum::Cksum::new();
            sum.update(&data);
            println!("{} {}", sum.value(), sum.len());
            Ok(())
        }
        ["trace", iface, port, secs] => {
            let port: u16 = port.parse().map_err(|_| "bad PORT")?;
            let secs: u64 = secs.parse().map_err(|_| "bad SECS")?;
            trace(iface, port, Duration::from_secs(secs))
        }
        ["watch", iface, ip, mac, stop, secs] => {
            let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| "bad IP")?;
            let mac = parse_mac(mac).ok_or("bad MAC")?;
            let secs: u64 = secs.parse().map_err(|_| "bad SECS")?;
            watch(iface, ip.octets(), mac, stop, Duration::from_secs(secs))
        }
        ["stamp"] => {
            let mut out = std::io::stdout().lock();
            for line in std::io::stdin().lines() {
                let line = line.map_err(|e| format!("stdin: {e}"))?;
                writeln!(out, "{} {line}", wall_us()).map_err(|e| format!("stdout: {e}"))?;
                out.flush().map_err(|e| format!("stdout: {e}"))?;
            }
            Ok(())
        }
        _ => Err("usage: rig-net get|post|parallel|udp|listen ... (see the source)".into()),
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The malformed frames, in turn: an IPv4 header with a wrong checksum, an
/// IPv4 total length beyond the frame, an ethertype the guest does not
/// speak, and an IPv4 header cut short.
fn garbage_frame(kind: usize, dst: [u8; 6]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    let ipv4 = [0x08, 0x00];
    let mut header = [
        0x45u8, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    match kind % 4 {
        0 => {
            f.extend_from_slice(&ipv4);
            header[10] = 0xde; // not the checksum
            header[11] = 0xad;
            f.extend_from_slice(&header);
            f.extend_from_slice(&[0u8; 26]);
        }
        1 => {
            f.extend_from_slice(&ipv4);
            header[2] = 0x05; // 1500 bytes claimed
            header[3] = 0xdc;
            let sum = kernel::net::inetsum::checksum(&header);
            header[10..12].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&header);
            f.extend_from_slice(&[0u8; 26]);
        }
        2 => {
            f.extend_from_slice(&[0x88, 0xb5]);
            f.extend_from_slice(&[0x5a; 46]);
        }
        _ => {
            f.extend_from_slice(&ipv4);
            f.extend_from_slice(&header[..5]);
        }
    }
    f
}

/// A fragment of a UDP datagram from 192.0.2.98 to the guest that never
/// completes, with an ident of its own: in turn a first fragment (offset
/// 0, more to come), a middle one (offset 1480, more to come), and a last
/// one at offset 60,000 (a datagram larger than the guest reassembles).
fn orphan_fragment(i: usize, dst: [u8; 6]) -> Vec<u8> {
    let (offset, more, payload) = match i % 3 {
        0 => (0usize, true, 1000usize),
        1 => (1480, true, 1000),
        _ => (60_000, false, 512),
    };
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x98, 0x08, 0x00]);
    let total = (20 + payload) as u16;
    let ident = (0x4000 + i) as u16;
    let flags_offset = (u16::from(more) << 13) | (offset / 8) as u16;
    let mut header = [
        0x45u8, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 98, 192, 0, 2, 2,
    ];
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header[4..6].copy_from_slice(&ident.to_be_bytes());
    header[6..8].copy_from_slice(&flags_offset.to_be_bytes());
    let sum = kernel::net::inetsum::checksum(&header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&header);
    // A UDP header to port 7 in the first fragment; filler elsewhere.
    let mut body = vec![0x5au8; payload];
    if offset == 0 {
        body[..8].copy_from_slice(&[0x9c, 0x40, 0, 7, 0x0b, 0xc8, 0, 0]);
    }
    f.extend_from_slice(&body);
    f
}

/// A SYN to `to` from 192.0.2.(128 + i % 64), a made-up address on the
/// bridge that nobody answers for, with a port and sequence number of its
/// own: the half-open connection of a SYN flood.
fn spoofed_syn(i: usize, dst: [u8; 6], to: std::net::SocketAddrV4) -> Vec<u8> {
    let src_ip = [192, 0, 2, 128 + (i % 64) as u8];
    let dst_ip = to.ip().octets();
    let src_port = 20_000 + i as u16;
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0x01, (i % 64) as u8, 0x08, 0x00]);
    let mut ip = [
        0x45u8, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    ip[12..16].copy_from_slice(&src_ip);
    ip[16..20].copy_from_slice(&dst_ip);
    let sum = kernel::net::inetsum::checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&src_port.to_be_bytes());
    tcp[2..4].copy_from_slice(&to.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&(0x1234_5678u32.wrapping_mul(i as u32 + 1)).to_be_bytes());
    tcp[12] = 5 << 4; // data offset: 5 words
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut pseudo = Vec::with_capacity(32);
    pseudo.extend_from_slice(&src_ip);
    pseudo.extend_from_slice(&dst_ip);
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&tcp);
    let sum = kernel::net::inetsum::checksum(&pseudo);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f
}

/// The sequence numbers of the SYN-ACKs that `to` answers `n` connections
/// with, opened one after the other and closed at once, read off `iface`.
fn syn_ack_isns(iface: &str, to: SocketAddr, n: usize) -> Result<Vec<u32>, String> {
    let fd = capture(iface)?;
    let result = (|| {
        let mut isns = Vec::new();
        let mut buf = vec![0u8; 65536];
        for i in 0..n {
            let s = TcpStream::connect_timeout(&to, TIMEOUT)
                .map_err(|e| format!("connect {i}: {e}"))?;
            let local = s.local_addr().map_err(|e| e.to_string())?.port();
            let end = Instant::now() + Duration::from_secs(10);
            let isn = loop {
                if Instant::now() > end {
                    return Err(format!("connection {i}: no SYN-ACK seen on {iface}"));
                }
                // SAFETY: a receive into a buffer we own, on our socket.
                let k = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if k <= 0 {
                    continue;
                }
                if let Some(isn) = syn_ack_seq(&buf[..k as usize], to.port(), local) {
                    break isn;
                }
            };
            isns.push(isn);
            drop(s);
        }
        Ok(isns)
    })();
    // SAFETY: our socket, closed once.
    unsafe { libc::close(fd) };
    result
}

/// The sequence number of `f` if it is a SYN-ACK from port `from` to port `to`.
fn syn_ack_seq(f: &[u8], from: u16, to: u16) -> Option<u32> {
    if f.len() < 14 + 20 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 6 {
        return None;
    }
    let t = 14 + usize::from(f[14] & 0x0f) * 4;
    let tcp = f.get(t..t + 20)?;
    let (sport, dport) = (
        u16::from_be_bytes([tcp[0], tcp[1]]),
        u16::from_be_bytes([tcp[2], tcp[3]]),
    );
    let syn_ack = tcp[13] & 0x12 == 0x12;
    (syn_ack && sport == from && dport == to)
        .then(|| u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]))
}

/// An AF_PACKET socket that sees every frame on `iface`, both directions,
/// with receives that give up after 200 ms.
fn capture(iface: &str) -> Result<i32, String> {
    let name = std::ffi::CString::new(iface).map_err(|_| "bad interface name")?;
    // SAFETY: plain libc calls on a fresh socket we own (closed on error),
    // with structures built on the stack for each call.
    unsafe {
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(format!("{iface}: {}", std::io::Error::last_os_error()));
        }
        let all = (libc::ETH_P_ALL as u16).to_be() as i32;
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, all);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = all as u16;
        addr.sll_ifindex = index as i32;
        let bound = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        if bound < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(format!("bind: {e}"));
        }
        let tick = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tick as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        Ok(fd)
    }
}

/// Sends `frames` to `dst` through a raw AF_PACKET socket on `iface`;
/// returns how many went out whole.
fn send_frames(iface: &str, dst: [u8; 6], frames: &[Vec<u8>]) -> Result<usize, String> {
    let name = std::ffi::CString::new(iface).map_err(|_| "bad interface name")?;
    // SAFETY: plain libc calls on a NUL-terminated name, a fresh socket we
    // own and close, and a sockaddr_ll built on the stack for the call.
    unsafe {
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(format!("{iface}: {}", std::io::Error::last_os_error()));
        }
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = index as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&dst);
        let mut sent = 0;
        for frame in frames {
            let rc = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if rc == frame.len() as isize {
                sent += 1;
            }
        }
        libc::close(fd);
        Ok(sent)
    }
}

/// What one client connection (by its port) did on the wire.
#[derive(Default, Debug)]
struct Handshake {
    syn: u32,
    syn_ack: u32,
    client_rst: u32,
    server_rst: u32,
    client_fin: u32,
    server_fin: u32,
    client_data: u32,
    server_data: u32,
}

/// Watches TCP segments to and from `port` on `iface` (AF_PACKET, both
/// directions) and reports the connections whose handshake was not one SYN
/// answered by one SYN-ACK, or that saw a reset: the evidence for a lost
/// connection that the client alone cannot give.
fn trace(iface: &str, port: u16, secs: Duration) -> Result<(), String> {
    let mut conns: std::collections::BTreeMap<u16, Handshake> = Default::default();
    let mut frames = 0u64;
    let fd = capture(iface)?;
    let mut buf = vec![0u8; 65536];
    let end = Instant::now() + secs;
    while Instant::now() < end {
        // SAFETY: a receive into a buffer we own, on our socket.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        frames += 1;
        note_segment(&buf[..n as usize], port, &mut conns);
    }
    // SAFETY: our socket, closed once.
    unsafe { libc::close(fd) };
    let odd: Vec<_> = conns
        .iter()
        .filter(|(_, h)| h.syn != 1 || h.syn_ack != 1 || h.client_rst + h.server_rst > 0)
        .collect();
    println!(
        "frames={frames} connections={} unusual={}",
        conns.len(),
        odd.len()
    );
    for (client, h) in odd {
        println!("client port {client}: {h:?}");
    }
    Ok(())
}

/// Counts one Ethernet frame if it is a TCP segment to or from `port`.
fn note_segment(f: &[u8], port: u16, conns: &mut std::collections::BTreeMap<u16, Handshake>) {
    if f.len() < 14 + 20 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 6 {
        return;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let t = 14 + ihl;
    if f.len() < t + 20 || total < ihl + 20 {
        return;
    }
    let sport = u16::from_be_bytes([f[t], f[t + 1]]);
    let dport = u16::from_be_bytes([f[t + 2], f[t + 3]]);
    let data_len = total.saturating_sub(ihl + usize::from(f[t + 12] >> 4) * 4);
    let flags = f[t + 13];
    let (fin, syn, rst, ack) = (
        flags & 1 != 0,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 16 != 0,
    );
    let (client, from_client) = if dport == port {
        (sport, true)
    } else if sport == port {
        (dport, false)
    } else {
        return;
    };
    let h = conns.entry(client).or_default();
    match (from_client, syn, ack) {
        (true, true, false) => h.syn += 1,
        (false, true, true) => h.syn_ack += 1,
        _ => {}
    }
    let (rst_count, fin_count, data_count) = if from_client {
        (&mut h.client_rst, &mut h.client_fin, &mut h.client_data)
    } else {
        (&mut h.server_rst, &mut h.server_fin, &mut h.server_data)
    };
    *rst_count += u32::from(rst);
    *fin_count += u32::from(fin);
    *data_count += u32::from(data_len > 0);
}

/// The wall clock in microseconds, as dom0's `now_us` (scripts/dom0/init)
/// reads it: the stamps of `watch`, `stamp` and the scenario line up.
fn wall_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// A silence longer than this (ms) between two echo replies, or between
/// two frames from the guest, is worth a line: the ping stream sends one
/// request every 50 ms.
const SILENCE_MS: u128 = 150;

/// What one frame on the bridge says about the guest at `ip`/`mac`.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// An ARP frame whose sender is `ip`: (is a reply, from this MAC, the
    /// target IP, gratuitous: the target IP is the sender's own).
    Arp(bool, [u8; 6], [u8; 4], bool),
    /// An ICMP echo reply from `ip`, with its sequence number.
    EchoReply(u16),
    /// Any other frame from `mac`.
    Other,
    Unrelated,
}

fn classify(f: &[u8], ip: [u8; 4], mac: [u8; 6]) -> Seen {
    let from_mac = f.get(6..12) == Some(&mac[..]);
    match f.get(12..14) {
        // ARP for IPv4 over Ethernet: sender MAC at 22, sender IP at 28,
        // target IP at 38.
        Some([0x08, 0x06]) if f.len() >= 42 && f[28..32] == ip => {
            let mut sender = [0u8; 6];
            sender.copy_from_slice(&f[22..28]);
            let mut target = [0u8; 4];
            target.copy_from_slice(&f[38..42]);
            Seen::Arp(f[21] == 2, sender, target, target == ip)
        }
        Some([0x08, 0x00]) if f.len() >= 34 && f[26..30] == ip && f[23] == 1 => {
            let icmp = 14 + usize::from(f[14] & 0x0f) * 4;
            match f.get(icmp..icmp + 8) {
                Some(h) if h[0] == 0 => Seen::EchoReply(u16::from_be_bytes([h[6], h[7]])),
                _ if from_mac => Seen::Other,
                _ => Seen::Unrelated,
            }
        }
        _ if from_mac => Seen::Other,
        _ => Seen::Unrelated,
    }
}

/// `rig-net watch`: a migration as dom0's bridge sees it.
fn watch(iface: &str, ip: [u8; 4], mac: [u8; 6], stop: &str, secs: Duration) -> Result<(), String> {
    let fd = capture(iface)?;
    let mut buf = vec![0u8; 65536];
    let end = Instant::now() + secs;
    let (mut replies, mut longest_gap, mut gratuitous) = (0u64, 0u128, 0u64);
    let (mut last_reply, mut last_from_mac): (Option<(u128, u16)>, Option<u128>) = (None, None);
    while Instant::now() < end && !std::path::Path::new(stop).exists() {
        // SAFETY: a receive into a buffer we own, on our socket.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        let t = wall_us();
        let f = &buf[..n as usize];
        let seen = classify(f, ip, mac);
        if seen == Seen::Unrelated {
            continue;
        }
        if f.get(6..12) == Some(&mac[..]) {
            if let Some(before) = last_from_mac.filter(|&b| (t - b) / 1000 > SILENCE_MS) {
                println!(
                    "{t} first frame from the guest after {} ms of silence (ethertype {:02x}{:02x})",
                    (t - before) / 1000,
                    f[12],
                    f[13]
                );
            }
            last_from_mac = Some(t);
        }
        match seen {
            Seen::Arp(reply, sender, target, is_gratuitous) => {
                gratuitous += u64::from(is_gratuitous);
                let m = sender.map(|b| format!("{b:02x}")).join(":");
                println!(
                    "{t} arp {} from {m} for {}.{}.{}.{}{}",
                    if reply { "reply" } else { "request" },
                    target[0],
                    target[1],
                    target[2],
                    target[3],
                    if is_gratuitous { " (gratuitous)" } else { "" }
                );
            }
            Seen::EchoReply(seq) => {
                replies += 1;
                if let Some((before, before_seq)) = last_reply {
                    let gap = (t - before) / 1000;
                    longest_gap = longest_gap.max(gap);
                    if gap > SILENCE_MS {
                        println!("{t} echo reply seq={seq} after {gap} ms (last: seq={before_seq} at {before})");
                    }
                }
                last_reply = Some((t, seq));
            }
            _ => {}
        }
    }
    // SAFETY: our socket, closed once.
    unsafe { libc::close(fd) };
    println!("replies={replies} longest_gap_ms={longest_gap} gratuitous_arps={gratuitous}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rig-net: {e}");
            ExitCode::FAILURE
        }
    }
}
