//! `rig-net`: the network client dom0 uses in the rig to test the guest's
//! stack (only ever aimed at the guest on the rig's bridge, 192.0.2.0/24).
//!
//! ```text
//! rig-net get HOST:PORT PATH [OUT]        HTTP/1.1 GET; body to OUT or stdout; prints "status=N bytes=N us=N"
//! rig-net post HOST:PORT PATH FILE        HTTP/1.1 POST of FILE; prints the status line and body
//! rig-net parallel N HOST:PORT PATH       N GETs at once; prints "ok=N of N"
//! rig-net udp HOST:PORT MESSAGE           one datagram; prints the echo (or "timeout")
//! rig-net listen PORT OUT                 accepts one connection, writes what it sends to OUT
//! rig-net cksum FILE                      POSIX cksum of FILE ("CRC LENGTH"; busybox here has none)
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
        ["cksum", file] => {
            let data = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            let mut sum = guest::cksum::Cksum::new();
            sum.update(&data);
            println!("{} {}", sum.value(), sum.len());
            Ok(())
        }
        _ => Err("usage: rig-net get|post|parallel|udp|listen ... (see the source)".into()),
    }
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
