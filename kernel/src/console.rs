//! The kernel's console: the PV console ring bound to its event channel, and
//! the `log` backend that writes every record to it.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};
use hal::hypercall::{evtchn_send, sched_poll};
use hal::shared::SharedPage;
use spin::Mutex;
use xen::console::{ConsoleRing, Doorbell, RingMemory};
use xen::public::{console as layout, shared_info};

/// The console page as `RingMemory`.
pub struct ConsolePage(SharedPage);

impl RingMemory for ConsolePage {
    fn out_cons(&self) -> u32 {
        self.0.load_u32(layout::OUT_CONS, Ordering::Acquire)
    }
    fn publish_out_prod(&self, prod: u32) {
        self.0.store_u32(layout::OUT_PROD, prod, Ordering::Release)
    }
    fn write_out(&self, index: usize, byte: u8) {
        self.0
            .store_u8(layout::OUT + index, byte, Ordering::Relaxed)
    }
}

/// The console's event channel: kicks xenconsoled, and waits on the port
/// with `SCHEDOP_poll` (upcalls are masked) when the ring is full. The port
/// is [`PORT`]'s: a restored domain gets another one.
pub struct ConsoleEvtchn;

static PORT: AtomicU32 = AtomicU32::new(0);

impl ConsoleEvtchn {
    fn port(&self) -> u32 {
        PORT.load(Ordering::Relaxed)
    }
}

/// How long one wait for xenconsoled lasts before the ring is checked again.
/// After `xen::console::STALLED_WAITS` of them in a row (300 ms) without
/// xenconsoled taking a byte, output is dropped and counted instead of
/// stalling the kernel.
const CONSUMER_WAIT_NS: u64 = 10_000_000;

impl Doorbell for ConsoleEvtchn {
    fn notify(&self) {
        // A failed send cannot be reported on the console it is for; the
        // ring keeps the bytes and the next send or wait retries.
        let _ = evtchn_send(self.port());
    }

    fn wait_for_consumer(&self) {
        // SCHEDOP_poll refuses to run with upcalls enabled.
        let was_masked = hal::upcall::mask();
        let _ = sched_poll(
            &[self.port()],
            crate::clock::xen_deadline(crate::clock::now_ns() + CONSUMER_WAIT_NS),
        );
        if let Some(si) = hal::shared_info() {
            let port = self.port();
            let word = shared_info::EVTCHN_PENDING + (port as usize / 64) * 8;
            si.clear_bits_u64(word, 1 << (port % 64));
        }
        if !was_masked {
            hal::upcall::unmask();
        }
    }
}

type Ring = ConsoleRing<ConsolePage, ConsoleEvtchn>;

static CONSOLE: Mutex<Option<Ring>> = Mutex::new(None);
/// The console page, for writing when the lock cannot be had.
static PAGE: spin::Once<SharedPage> = spin::Once::new();

/// Runs `f` on the console ring.
///
/// The kernel runs on one vCPU and the upcall never logs, so the lock is
/// only ever found taken when a fault or panic interrupted its holder, which
/// will never run again. Then `f` gets a ring of its own over the same page,
/// starting from the index the holder last published: the holder's
/// unpublished bytes are overwritten, nothing else is lost, and no lock is
/// ever broken.
fn with_ring(f: impl FnOnce(&mut Ring)) {
    if let Some(mut guard) = CONSOLE.try_lock() {
        if let Some(ring) = guard.as_mut() {
            f(ring);
        }
        return;
    }
    if let Some(&page) = PAGE.get() {
        let prod = page.load_u32(layout::OUT_PROD, Ordering::Acquire);
        f(&mut ConsoleRing::new(
            ConsolePage(page),
            ConsoleEvtchn,
            prod,
        ));
    }
}

/// Binds the console and installs the logger at `level`.
pub fn init(page: SharedPage, port: u32, level: log::LevelFilter) {
    // Start after whatever the builder or an earlier kernel left in the ring.
    let prod = page.load_u32(layout::OUT_PROD, Ordering::Acquire);
    PAGE.call_once(|| page);
    PORT.store(port, Ordering::Relaxed);
    *CONSOLE.lock() = Some(ConsoleRing::new(ConsolePage(page), ConsoleEvtchn, prod));
    // Only fails if a logger is already set, which would be a boot-order bug.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The domain is back from a suspend with the console on `port`: the ring
/// page is ours and kept its bytes; only the event channel is new.
pub fn resume(port: u32) {
    PORT.store(port, Ordering::Relaxed);
}

/// Waits (bounded) until xenconsoled has read everything, so the last lines
/// survive the domain's shutdown.
pub fn flush() {
    with_ring(|ring| {
        let _ = ring.drain(200);
    });
}

struct ConsoleLogger;
static LOGGER: ConsoleLogger = ConsoleLogger;

/// Writes into the ring, repeating the record's prefix after each newline so
/// every line of a multi-line message stays greppable on its own.
struct LineWriter<'a> {
    ring: &'a mut Ring,
    prefix: fmt::Arguments<'a>,
}

impl Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut lines = s.split('\n');
        if let Some(first) = lines.next() {
            self.ring.write(first.as_bytes()).map_err(|_| fmt::Error)?;
        }
        for line in lines {
            self.ring.write(b"\n").map_err(|_| fmt::Error)?;
            let prefix = self.prefix;
            RingFmt(self.ring).write_fmt(prefix)?;
            self.ring.write(line.as_bytes()).map_err(|_| fmt::Error)?;
        }
        Ok(())
    }
}

struct RingFmt<'a>(&'a mut Ring);

impl Write for RingFmt<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = crate::clock::uptime_ns() / 1000;
        let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
        let level = record.level();
        let target = record.target();
        with_ring(|ring| {
            let prefix = format_args!("[{secs:4}.{frac:06}] {level:<5} {target}: ");
            let _ = RingFmt(ring).write_fmt(prefix);
            let mut w = LineWriter { ring, prefix };
            let _ = write!(w, "{}", record.args());
            let _ = w.ring.write(b"\n");
        });
    }

    fn flush(&self) {}
}
