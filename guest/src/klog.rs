//! The kernel's console: the PV console ring bound to its event channel, and
//! the `log` backend that writes every record to it.

use crate::arch::hypercall::{evtchn_send, sched_poll};
use crate::arch::shared::SharedPage;
use core::fmt::{self, Write};
use core::sync::atomic::Ordering;
use guest::abi::{console as layout, shared_info};
use guest::console::{ConsoleRing, Doorbell, RingMemory};
use spin::Mutex;

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
/// with `SCHEDOP_poll` (upcalls are masked) when the ring is full.
pub struct ConsoleEvtchn {
    port: u32,
}

/// How long one wait for xenconsoled lasts before the ring is checked again.
const CONSUMER_WAIT_NS: u64 = 10_000_000;

impl Doorbell for ConsoleEvtchn {
    fn notify(&self) {
        // A failed send cannot be reported on the console it is for; the
        // ring keeps the bytes and the next send or wait retries.
        let _ = evtchn_send(self.port);
    }

    fn wait_for_consumer(&self) {
        // SCHEDOP_poll refuses to run with upcalls enabled.
        let was_masked = crate::evtchn::mask_upcalls();
        let _ = sched_poll(
            &[self.port],
            crate::kernel::xen_deadline(crate::kernel::now_ns() + CONSUMER_WAIT_NS),
        );
        if let Some(si) = crate::kernel::shared_info() {
            let word = shared_info::EVTCHN_PENDING + (self.port as usize / 64) * 8;
            si.clear_bits_u64(word, 1 << (self.port % 64));
        }
        if !was_masked {
            crate::evtchn::unmask_upcalls();
        }
    }
}

type Ring = ConsoleRing<ConsolePage, ConsoleEvtchn>;

static CONSOLE: Mutex<Option<Ring>> = Mutex::new(None);

/// Binds the console and installs the logger at `level`.
pub fn init(page: SharedPage, port: u32, level: log::LevelFilter) {
    // Start after whatever the builder or an earlier kernel left in the ring.
    let prod = page.load_u32(layout::OUT_PROD, Ordering::Acquire);
    *CONSOLE.lock() = Some(ConsoleRing::new(
        ConsolePage(page),
        ConsoleEvtchn { port },
        prod,
    ));
    // Only fails if a logger is already set, which would be a boot-order bug.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Waits (bounded) until xenconsoled has read everything, so the last lines
/// survive the domain's shutdown.
pub fn flush() {
    if let Some(ring) = CONSOLE.lock().as_mut() {
        let _ = ring.drain(200);
    }
}

/// On the fault and panic paths the interrupted code may hold the console
/// lock; it will never run again, so the lock is taken from it.
pub fn break_lock_for_crash() {
    if CONSOLE.is_locked() {
        crate::arch::force_unlock_for_crash(&CONSOLE);
    }
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
        let micros = crate::kernel::uptime_ns() / 1000;
        let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
        let level = record.level();
        let target = record.target();
        let mut guard = CONSOLE.lock();
        let Some(ring) = guard.as_mut() else { return };
        let prefix = format_args!("[{secs:4}.{frac:06}] {level:<5} {target}: ");
        let _ = RingFmt(ring).write_fmt(prefix);
        let mut w = LineWriter { ring, prefix };
        let _ = write!(w, "{}", record.args());
        let _ = w.ring.write(b"\n");
    }

    fn flush(&self) {}
}
