//! The guest (caller, vchan server) and the daemon (responder, vchan client) on two
//! threads over the same heap pages, with simulated event channels. Many messages flow
//! both ways in whatever order the scheduler produces, through rings far smaller than the
//! traffic, and every wake-up comes from a `Notify::Yes`: a lost wake-up would leave one
//! side waiting forever, which the test reports (after a generous timeout) as a failure.

mod common;

use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use common::{pair, Mem};
use rpc::{Caller, Config, Error, Incoming, Reply, ReplyBody, Request, Responder};

/// A simulated event channel: a pending flag and a waiter.
#[derive(Default)]
struct Bell {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    fn kick(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }

    /// Waits for a kick; panics if none comes (a lost wake-up: the test would hang).
    fn wait(&self, who: &str) {
        let guard = self.pending.lock().unwrap();
        let (mut guard, timeout) = self
            .cv
            .wait_timeout_while(guard, Duration::from_secs(20), |p| !*p)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "{who} was never woken: lost notification"
        );
        *guard = false;
    }
}

fn pattern(id: u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (id as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

fn request(id: u64) -> Request {
    let path = rpc::Path::new(format!("dir/{id}")).unwrap();
    match id % 4 {
        0 => Request::Ping,
        1 => Request::Random {
            len: (id * 7 % 3000) as u32,
        },
        2 => Request::FileWrite {
            path,
            offset: id,
            flags: 0,
            data: pattern(id, (id * 37 % 20_000) as usize),
        },
        _ => Request::FileRead {
            path,
            offset: 0,
            len: (id * 13 % rpc::MAX_IO as u64) as u32,
        },
    }
}

/// What the daemon answers, checking that the request arrived intact.
fn answer(inc: &Incoming) -> Reply {
    let id = inc.event_id;
    assert_eq!(inc.request, request(id), "request {id} arrived intact");
    let body = match &inc.request {
        Request::Ping => ReplyBody::Ping,
        Request::Random { len } => ReplyBody::Random(pattern(id, *len as usize)),
        Request::FileWrite { data, .. } => ReplyBody::FileWrite {
            written: data.len() as u32,
        },
        Request::FileRead { len, .. } => ReplyBody::FileRead(pattern(id, *len as usize)),
        other => panic!("not sent: {other:?}"),
    };
    Reply::ok(id, body)
}

fn moved<M: rpc::SharedMem>(v: &rpc::Vchan<M>) -> u64 {
    v.stats().bytes_read + v.stats().bytes_written
}

fn guest(mut caller: Caller<Mem>, n: u64, window: usize, me: &Bell, daemon: &Bell) -> u64 {
    let (mut next, mut done) = (0u64, 0u64);
    while done < n {
        let before = (next, done, moved(caller.vchan()));
        while next < n && caller.in_flight() < window {
            match caller.call(next, &request(next)) {
                Ok(()) => next += 1,
                Err(Error::Full) => break,
                Err(e) => panic!("call {next}: {e}"),
            }
        }
        while let Some(reply) = caller.poll().unwrap() {
            assert_eq!(
                reply,
                answer(&Incoming {
                    event_id: reply.event_id,
                    request: request(reply.event_id),
                })
            );
            done += 1;
        }
        if caller.take_notify().is_yes() {
            daemon.kick();
        }
        if done < n && before == (next, done, moved(caller.vchan())) {
            me.wait("guest");
        }
    }
    assert_eq!(caller.in_flight(), 0);
    caller.stats().kicks
}

fn daemon(mut responder: Responder<Mem>, n: u64, me: &Bell, guest: &Bell) -> u64 {
    let mut answered = 0u64;
    let mut held: Option<Reply> = None;
    loop {
        let before = (answered, moved(responder.vchan()));
        if let Some(r) = held.take() {
            match responder.reply(&r) {
                Ok(()) => answered += 1,
                Err(Error::Full) => held = Some(r),
                Err(e) => panic!("reply: {e}"),
            }
        }
        responder.flush().unwrap();
        while held.is_none() {
            let Some(inc) = responder.poll().unwrap() else {
                break;
            };
            let r = answer(&inc);
            match responder.reply(&r) {
                Ok(()) => answered += 1,
                Err(Error::Full) => held = Some(r),
                Err(e) => panic!("reply: {e}"),
            }
        }
        if responder.take_notify().is_yes() {
            guest.kick();
        }
        if answered == n && responder.queued_bytes() == 0 {
            return responder.stats().kicks;
        }
        if before == (answered, moved(responder.vchan())) {
            me.wait("daemon");
        }
    }
}

fn run(l: u16, r: u16, n: u64, window: usize) {
    let (server, client, _pages) = pair(l, r);
    let config = Config {
        outbox_bytes: 0,
        max_in_flight: window,
    };
    let caller = Caller::new(server, config);
    let responder = Responder::new(client, config);
    let (guest_bell, daemon_bell) = (Bell::default(), Bell::default());
    thread::scope(|s| {
        let g = s.spawn(|| guest(caller, n, window, &guest_bell, &daemon_bell));
        let d = s.spawn(|| daemon(responder, n, &daemon_bell, &guest_bell));
        let kicks = g.join().unwrap() + d.join().unwrap();
        assert!(kicks > 0);
    });
}

#[test]
fn one_outstanding_through_tiny_rings() {
    run(10, 11, 400, 1);
}

#[test]
fn sixteen_outstanding_through_tiny_rings() {
    run(11, 10, 800, 16);
}

#[test]
fn many_outstanding_through_page_rings() {
    run(12, 13, 2000, 64);
}

#[test]
fn many_outstanding_through_large_rings() {
    run(16, 16, 2000, 256);
}
