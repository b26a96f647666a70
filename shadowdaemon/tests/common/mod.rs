//! Two ends of a channel on two threads: the guest's `Caller` (vchan server) and the
//! daemon's `Connection` (vchan client) over the same heap pages, with event channels
//! simulated by condvars. A lost wake-up leaves one side asleep: after a generous
//! timeout that is reported as a failure instead of a hang.
#![allow(dead_code)] // each test binary uses a different part

use std::io;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use rpc::{Caller, Config, HeapMem, Layout, Placement, Probe, Reply, Request, Side, Vchan};
use shadowdaemon::pool::Wake;
use shadowdaemon::serve::EventChannel;

pub type Mem = Arc<HeapMem>;

/// Longer than any test needs; only a lost wake-up waits this long.
const PATIENCE: Duration = Duration::from_secs(30);

/// A simulated event-channel port: a sticky pending flag and a waiter.
#[derive(Default)]
pub struct Bell {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    pub fn ring(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Waits for a ring; false if none came within [`PATIENCE`].
    pub fn wait(&self) -> bool {
        let guard = self.pending.lock().unwrap();
        let (mut guard, timeout) = self
            .cv
            .wait_timeout_while(guard, PATIENCE, |p| !*p)
            .unwrap();
        *guard = false;
        !timeout.timed_out()
    }
}

impl Wake for Bell {
    fn wake(&self) {
        self.ring();
    }
}

/// The daemon's port as Xen and `/dev/xen/evtchn` keep it: a kick is delivered once,
/// then the port is masked (further kicks coalesce into the pending bit) until the
/// daemon's next wait unmasks it; a waker (the eventfd) is apart from it.
///
/// It can also play a hostile guest that kicks in a loop: [`PortState::storm`] kicks,
/// one per virtual microsecond, sent whenever the port can take them. A hold (late EOI)
/// passes in virtual time, its microseconds' kicks coalescing into one pending kick, so
/// the counts are exact and nothing depends on how fast the machine is.
#[derive(Default)]
pub struct PortState {
    /// Xen's pending bit: a kick not yet delivered.
    kick: bool,
    /// The eventfd: a waker was called.
    woken: bool,
    /// Delivered and not yet unmasked.
    masked: bool,
    /// Storm kicks still to be sent.
    pub storm: u64,
    /// Virtual microseconds the storm has taken so far.
    pub storm_us: u64,
    /// Kicks the daemon saw (deliveries).
    pub delivered: u64,
    /// Kicks that found the port masked or already pending: coalesced into one.
    pub coalesced: u64,
    /// Waits that asked for a hold while a delivered kick was masked.
    pub held: u64,
}

impl PortState {
    /// One kick from the guest.
    fn kick(&mut self) {
        if self.kick {
            self.coalesced += 1;
        }
        self.kick = true;
    }
}

/// The port both ends share.
#[derive(Default)]
pub struct Port {
    state: Mutex<PortState>,
    cv: Condvar,
}

impl Port {
    /// A look at the counts (and the storm left).
    pub fn state<R>(&self, f: impl FnOnce(&mut PortState) -> R) -> R {
        let r = f(&mut self.state.lock().unwrap());
        self.cv.notify_all();
        r
    }
}

/// What the guest's kick does: raise the daemon's port.
struct GuestKick(Arc<Port>);

impl Wake for GuestKick {
    fn wake(&self) {
        self.0.state(PortState::kick);
    }
}

/// What a waker does: the eventfd.
struct PortWaker(Arc<Port>);

impl Wake for PortWaker {
    fn wake(&self) {
        self.0.state(|s| s.woken = true);
    }
}

/// The daemon's side of the simulated event channel.
pub struct DaemonPort {
    port: Arc<Port>,
    guest: Arc<Bell>,
}

impl DaemonPort {
    /// The shared port, for the test to start a storm or read the counts.
    pub fn port(&self) -> Arc<Port> {
        self.port.clone()
    }
}

impl EventChannel for DaemonPort {
    fn notify(&mut self) -> io::Result<()> {
        self.guest.ring();
        Ok(())
    }

    fn wait(&mut self, hold: Duration) -> io::Result<bool> {
        let mut s = self.port.state.lock().unwrap();
        if s.masked {
            if !hold.is_zero() {
                s.held += 1;
                if s.woken {
                    s.woken = false;
                    return Ok(false);
                }
                // The hold passes; the storm's kicks meanwhile coalesce.
                let us = u64::try_from(hold.as_micros()).unwrap_or(u64::MAX);
                let sent = s.storm.min(us);
                s.storm -= sent;
                s.storm_us += sent;
                if sent > 0 {
                    s.kick();
                    s.coalesced += sent - 1;
                }
            }
            s.masked = false;
        }
        let (mut s, timeout) = self
            .port
            .cv
            .wait_timeout_while(s, PATIENCE, |s| !s.kick && !s.woken && s.storm == 0)
            .unwrap();
        if timeout.timed_out() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "daemon never woken: lost notification",
            ));
        }
        // Unmasked: a storming guest kicks at once.
        if !s.kick && s.storm > 0 {
            s.storm -= 1;
            s.storm_us += 1;
            s.kick = true;
        }
        let kicked = std::mem::take(&mut s.kick);
        if kicked {
            s.delivered += 1;
            s.masked = true;
        }
        s.woken = false;
        Ok(kicked)
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(PortWaker(self.port.clone()))
    }
}

/// The guest's end: a caller and its bell, collecting replies in arrival order.
pub struct Guest {
    pub caller: Caller<Mem>,
    bell: Arc<Bell>,
    daemon: Arc<dyn Wake>,
    pub received: Vec<Reply>,
}

fn moved(c: &Caller<Mem>) -> u64 {
    let s = c.vchan().stats();
    s.bytes_read + s.bytes_written
}

impl Guest {
    fn kick(&mut self) {
        if self.caller.take_notify().is_yes() {
            self.daemon.wake();
        }
    }

    /// Takes every reply that is there; true if anything moved.
    pub fn pump(&mut self) -> bool {
        let before = (self.received.len(), moved(&self.caller));
        while let Some(r) = self.caller.poll().expect("guest poll") {
            self.received.push(r);
        }
        self.kick();
        before != (self.received.len(), moved(&self.caller))
    }

    /// Sleeps until the daemon kicks; panics on a lost wake-up.
    pub fn sleep(&self) {
        assert!(self.bell.wait(), "guest never woken: lost notification");
    }

    /// Tries once to send; `Err` is the channel's answer (back-pressure included).
    pub fn try_call(&mut self, id: u64, req: &Request) -> Result<(), rpc::Error> {
        let r = self.caller.call(id, req);
        self.kick();
        r
    }

    /// Sends, taking replies while the channel pushes back.
    pub fn call(&mut self, id: u64, req: &Request) {
        loop {
            match self.try_call(id, req) {
                Ok(()) => return,
                Err(rpc::Error::Full | rpc::Error::TooManyInFlight) => {
                    if !self.pump() {
                        self.sleep();
                    }
                }
                Err(e) => panic!("call {id}: {e}"),
            }
        }
    }

    /// Waits until `n` replies have been received in all.
    pub fn collect(&mut self, n: usize) {
        while self.received.len() < n {
            if !self.pump() && self.received.len() < n {
                self.sleep();
            }
        }
    }

    /// Sends one request and waits for its reply (nothing else may be in flight).
    pub fn rpc(&mut self, id: u64, req: Request) -> Result<rpc::ReplyBody, rpc::Status> {
        assert_eq!(self.caller.in_flight(), 0);
        self.call(id, &req);
        let n = self.received.len() + 1;
        self.collect(n);
        let reply = self.received.pop().unwrap();
        assert_eq!((reply.event_id, reply.op), (id, req.op()));
        reply.result
    }

    /// Waits until the daemon has closed its end.
    pub fn wait_for_daemon_close(&mut self) {
        loop {
            match self.caller.vchan_mut().peer_state() {
                Ok(rpc::PeerState::Closed) | Err(_) => return,
                Ok(_) => self.sleep(),
            }
        }
    }

    /// Writes raw bytes into the request ring, bypassing the caller's encoder: what a
    /// hostile guest does.
    pub fn raw(&mut self, bytes: &[u8]) {
        let t = self.caller.vchan_mut().write(bytes).expect("raw write");
        assert_eq!(t.bytes, bytes.len(), "raw frame did not fit the ring");
        if t.notify.is_yes() {
            self.daemon.wake();
        }
    }

    /// Closes the guest's end and kicks the daemon.
    pub fn close(&mut self) {
        if self.caller.close().is_yes() {
            self.daemon.wake();
        }
    }
}

/// A connected pair over fresh heap pages: the guest end and the daemon's vchan end with
/// its port. Ring orders as in `Layout::new` (10 and 11 live in the shared page).
pub fn pair(left_order: u16, right_order: u16, config: Config) -> (Guest, Vchan<Mem>, DaemonPort) {
    let layout = Layout::new(left_order, right_order).expect("valid orders");
    let ring = |side| match layout.placement(side) {
        Placement::InPage { .. } => None,
        Placement::Granted { .. } => Some(Arc::new(HeapMem::new(layout.ring_size(side)))),
    };
    let ctrl: Mem = Arc::new(HeapMem::new(rpc::layout::PAGE_SIZE));
    let (left, right) = (ring(Side::Left), ring(Side::Right));
    let grants: Vec<u32> = (0..layout.grant_count() as u32).collect();
    let server = Vchan::server(layout, ctrl.clone(), left.clone(), right.clone(), &grants)
        .expect("server set-up");
    let probe = Probe::read(&*ctrl).expect("probe");
    let (client, _attach_kick) =
        Vchan::client(probe.layout, ctrl, left, right).expect("client attach");
    let guest_bell = Arc::new(Bell::default());
    let port = Arc::new(Port::default());
    let guest = Guest {
        caller: Caller::new(server, config),
        bell: guest_bell.clone(),
        daemon: Arc::new(GuestKick(port.clone())),
        received: Vec::new(),
    };
    let port = DaemonPort {
        port,
        guest: guest_bell,
    };
    (guest, client, port)
}

/// A gate that requests wait at until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    waiting: Mutex<usize>,
    arrived: Condvar,
}

impl Gate {
    /// Blocks until opened (or, if a failing test never opens it, for [`PATIENCE`], so
    /// that the pool's workers still end); counts itself as waiting meanwhile.
    pub fn pass(&self) {
        *self.waiting.lock().unwrap() += 1;
        self.arrived.notify_all();
        let g = self.open.lock().unwrap();
        drop(
            self.cv
                .wait_timeout_while(g, PATIENCE, |open| !*open)
                .unwrap(),
        );
    }

    /// Waits until `n` callers are (or were) at the gate.
    pub fn wait_for(&self, n: usize) {
        let g = self.waiting.lock().unwrap();
        let (_g, t) = self
            .arrived
            .wait_timeout_while(g, PATIENCE, |w| *w < n)
            .unwrap();
        assert!(!t.timed_out(), "fewer than {n} requests reached the gate");
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Opens the gate when dropped, also when a failing test unwinds, so the workers
    /// held there are released at once.
    pub fn opener(self: &Arc<Self>) -> OpenOnDrop {
        OpenOnDrop(Arc::clone(self))
    }

    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap()
    }
}

/// See [`Gate::opener`].
pub struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Every log line of the test binary, to check what the daemon says.
pub struct Capture {
    lines: Mutex<Vec<String>>,
}

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Debug
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.lines
                .lock()
                .unwrap()
                .push(format!("{} {}", r.level(), r.args()));
        }
    }

    fn flush(&self) {}
}

/// The captured log (installed on first use).
pub fn logs() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture {
            lines: Mutex::new(Vec::new()),
        }));
        log::set_logger(c).expect("one logger per test binary");
        log::set_max_level(log::LevelFilter::Debug);
        c
    })
}

impl Capture {
    /// Lines that contain every one of `words`.
    pub fn matching(&self, words: &[&str]) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .cloned()
            .collect()
    }
}
