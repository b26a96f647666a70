//! The kernel's clock: Xen system time made monotonic, the wall clock, and
//! the time since entry, all read from the shared-info page's time records.

use core::sync::atomic::{AtomicU64, Ordering};
use hal::hypercall;
use hal::shared::SharedPage;
use log::info;
use xen::public::{shared_info, vcpu_info, VcpuTimeInfo};
use xen::time;

/// Xen system time at `_start`, so log lines and the ready line count from entry.
static ENTRY_NS: AtomicU64 = AtomicU64::new(0);

fn shared() -> Option<&'static SharedPage> {
    hal::shared_info()
}

/// vCPU 0's time record, read with the version protocol.
fn time_info(si: &SharedPage) -> VcpuTimeInfo {
    let base = shared_info::VCPU_INFO + vcpu_info::TIME;
    time::read_consistent(
        || si.load_u32(base, Ordering::Acquire),
        || VcpuTimeInfo {
            tsc_timestamp: si.load_u64(base + 8, Ordering::Relaxed),
            system_time: si.load_u64(base + 16, Ordering::Relaxed),
            tsc_to_system_mul: si.load_u32(base + 24, Ordering::Relaxed),
            tsc_shift: si.load_u8(base + 28, Ordering::Relaxed) as i8,
            ..Default::default()
        },
    )
}

/// The kernel's clock (see `time::Clock`).
static CLOCK: time::Clock = time::Clock::new();

/// Kernel time now, in ns: Xen system time, made monotonic (0 before the
/// shared-info page is mapped).
///
/// The record is only good with this physical CPU's TSC. Under QEMU/TCG a
/// new vCPU often runs for seconds with a record Xen stamped on another CPU
/// whose TSC is far ahead of ours (and sometimes with none at all):
/// extrapolating it gives a time before the domain even started, the clock
/// stands still, and every deadline looks far away while Xen's own clock
/// has long passed it, so timers fire at once, over and over. A reading
/// older than the record's stamp, or no record, is therefore not used: the
/// clock falls back to the Xen system time at which Xen last scheduled this
/// vCPU in (its runstate), advanced by our own TSC since then
/// ([`runstate_time`]). That is Xen's time, a little behind, never ahead,
/// so deadlines mean what they say; once Xen restamps the record here, it
/// takes over.
pub fn now_ns() -> u64 {
    let Some(xen_ns) = xen_now() else { return 0 };
    CLOCK.observe(xen_ns)
}

/// Xen system time now, as read (see [`now_ns`] for the fallback).
fn xen_now() -> Option<u64> {
    let si = shared()?;
    let info = time_info(si);
    let tsc = hal::rdtsc();
    Some(if info.tsc_to_system_mul == 0 || tsc < info.tsc_timestamp {
        runstate_time(&info, tsc)
    } else {
        time::system_time_ns(&info, tsc)
    })
}

/// The domain runs again after a suspend as a new domain, where Xen's time
/// is another (later on this host, anything on another): kernel time runs
/// on from where it stopped, so every deadline keeps the distance it had.
/// Returns the Xen time that passed between the last reading before the
/// suspend and now (0 on another host whose clock is behind).
pub fn resume() -> u64 {
    let Some(xen_ns) = xen_now() else { return 0 };
    let away = xen_ns.saturating_sub(CLOCK.to_xen(CLOCK.last()));
    CLOCK.resume(xen_ns);
    away
}

/// The runstate entry time last seen, and our TSC when we first saw it.
static RUNSTATE_ENTRY: AtomicU64 = AtomicU64::new(0);
static RUNSTATE_TSC: AtomicU64 = AtomicU64::new(0);

/// The fallback clock: the Xen system time at which this vCPU was last
/// scheduled in, plus the TSC ticks since we first saw that entry, scaled
/// with the record's rate (the rate is right even when the stamp is from
/// another CPU). It runs a little behind (by the gap between being
/// scheduled in and first looking), never ahead.
fn runstate_time(info: &VcpuTimeInfo, tsc: u64) -> u64 {
    let Ok(entry) = hypercall::runstate_entry_time() else {
        return 0;
    };
    if entry != RUNSTATE_ENTRY.load(Ordering::Relaxed) {
        RUNSTATE_ENTRY.store(entry, Ordering::Relaxed);
        RUNSTATE_TSC.store(tsc, Ordering::Relaxed);
        return entry;
    }
    if info.tsc_to_system_mul == 0 {
        return entry;
    }
    let ticks = tsc.saturating_sub(RUNSTATE_TSC.load(Ordering::Relaxed));
    entry + time::scale_tsc_delta(ticks, info.tsc_to_system_mul, info.tsc_shift)
}

/// The Xen system time for a kernel-time deadline (for `set_timer_op` and
/// `SCHEDOP_poll`).
pub fn xen_deadline(kernel_ns: u64) -> u64 {
    CLOCK.to_xen(kernel_ns)
}

/// Wall-clock time now as (seconds, nanoseconds) since the Unix epoch:
/// Xen's wall clock at system time 0 (`wc_*` in shared_info, read with the
/// same version protocol) plus the system time.
pub fn wall_clock() -> (u64, u32) {
    let Some(si) = shared() else {
        return (0, 0);
    };
    let (sec, nsec) = time::read_consistent(
        || si.load_u32(shared_info::WC_VERSION, Ordering::Acquire),
        || {
            let hi = si.load_u32(shared_info::WC_SEC_HI, Ordering::Relaxed) as u64;
            let lo = si.load_u32(shared_info::WC_SEC, Ordering::Relaxed) as u64;
            (
                hi << 32 | lo,
                si.load_u32(shared_info::WC_NSEC, Ordering::Relaxed) as u64,
            )
        },
    );
    // Xen's wall clock counts from Xen's time 0, not the kernel's (they
    // differ once a restore has moved the kernel's on).
    let total_ns = nsec + CLOCK.to_xen(now_ns());
    (
        sec + total_ns / 1_000_000_000,
        (total_ns % 1_000_000_000) as u32,
    )
}

/// Nanoseconds since `_start`.
pub fn uptime_ns() -> u64 {
    now_ns().saturating_sub(ENTRY_NS.load(Ordering::Relaxed))
}

/// Starts the clock: makes Xen stamp a good time record first, then takes
/// the time of `_start` from the TSC read there (`entry_tsc`).
pub fn start(si: &SharedPage, quiet_port: u32, entry_tsc: u64) {
    refresh_time_record(si, quiet_port);
    // The clock works from here on; the time since entry is the TSC delta.
    let clock_info = time_info(si);
    let clock_start = now_ns();
    let since_entry = time::scale_tsc_delta(
        hal::rdtsc().saturating_sub(entry_tsc),
        clock_info.tsc_to_system_mul,
        clock_info.tsc_shift,
    );
    ENTRY_NS.store(clock_start.saturating_sub(since_entry), Ordering::Relaxed);
}

/// Makes Xen (re)stamp this vCPU's time record on the physical CPU it runs
/// on, before anything reads the clock.
///
/// A new vCPU's record is all zero until Xen first reschedules it, or was
/// stamped on the CPU that built the domain, whose TSC under QEMU/TCG can
/// be a second apart from ours: time read against it is wrong, and timers
/// armed meanwhile fire at once, over and over. Polling a quiet port with a
/// deadline already past makes Xen deschedule the vCPU and wake it at once,
/// and every reschedule restamps the record. (Upcalls are still masked, as
/// SCHEDOP_poll requires.)
fn refresh_time_record(si: &SharedPage, quiet_port: u32) {
    // An all-zero record fills at the next reschedule; yielding asks for one.
    for _ in 0..1000 {
        if time_info(si).tsc_to_system_mul != 0 {
            break;
        }
        hypercall::sched_yield();
    }
    let stamp = time_info(si).tsc_timestamp;
    let pending = shared_info::EVTCHN_PENDING + (quiet_port as usize / 64) * 8;
    for _ in 0..5 {
        si.clear_bits_u64(pending, 1 << (quiet_port % 64));
        let _ = hypercall::sched_poll(&[quiet_port], 1);
        let now = time_info(si);
        if now.tsc_to_system_mul != 0 && now.tsc_timestamp != stamp {
            break;
        }
    }
    let info = time_info(si);
    if info.tsc_to_system_mul == 0 || hal::rdtsc() < info.tsc_timestamp {
        info!("the vCPU time record is from another CPU: the clock follows the runstate until Xen restamps it");
    }
}
