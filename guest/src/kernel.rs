//! The boot sequence and the kernel's crash policy.

use crate::arch::{self, hypercall, mm, shared::SharedPage, traps, upcall};
use crate::klog;
use crate::sched;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use guest::abi::{shared_info, vcpu_info, ShutdownReason, StartInfo, VcpuTimeInfo};
use guest::boot_info::BootInfo;
use guest::cmdline::TestFault;
use guest::fault::FaultReport;
use guest::time;
use guest::version::XenVersion;
use log::{debug, error, info, warn};

static SHARED_INFO: spin::Once<SharedPage> = spin::Once::new();
/// Xen system time at `_start`, so log lines and the ready line count from entry.
static ENTRY_NS: AtomicU64 = AtomicU64::new(0);
/// Set by the first fault or panic; a second one shuts down at once.
static DYING: AtomicBool = AtomicBool::new(false);

pub fn shared_info() -> Option<&'static SharedPage> {
    SHARED_INFO.get()
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
    let Some(si) = shared_info() else { return 0 };
    let info = time_info(si);
    let tsc = arch::rdtsc();
    let xen_ns = if info.tsc_to_system_mul == 0 || tsc < info.tsc_timestamp {
        runstate_time(&info, tsc)
    } else {
        time::system_time_ns(&info, tsc)
    };
    CLOCK.observe(xen_ns)
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
    let Some(si) = shared_info() else {
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
    let total_ns = nsec + now_ns();
    (
        sec + total_ns / 1_000_000_000,
        (total_ns % 1_000_000_000) as u32,
    )
}

/// Nanoseconds since `_start`.
pub fn uptime_ns() -> u64 {
    now_ns().saturating_sub(ENTRY_NS.load(Ordering::Relaxed))
}

/// The faulting address Xen saved for the last page fault.
pub fn vcpu_cr2() -> Option<u64> {
    shared_info().map(|si| {
        si.load_u64(
            shared_info::VCPU_INFO + vcpu_info::ARCH_CR2,
            Ordering::Relaxed,
        )
    })
}

/// Flushes the console and ends the domain.
pub fn shut_down(reason: ShutdownReason) -> ! {
    klog::flush();
    hypercall::sched_shutdown(reason)
}

/// Entered from `_start` with BSS zeroed and our own stack.
pub fn boot(start_info: &'static StartInfo, entry_tsc: u64) -> ! {
    // Without a valid start_info there is no console to complain on: a crash
    // shutdown is the only report possible, and Xen logs it.
    let Ok(boot) = BootInfo::parse(start_info) else {
        hypercall::sched_shutdown(ShutdownReason::Crash)
    };
    let Ok(si) = mm::map_shared_info(boot.shared_info_maddr) else {
        hypercall::sched_shutdown(ShutdownReason::Crash)
    };
    // Keep event upcalls masked: nothing here handles them yet, and
    // SCHEDOP_poll (used by the console) requires them masked.
    si.store_u8(
        shared_info::VCPU_INFO + vcpu_info::UPCALL_MASK,
        1,
        Ordering::SeqCst,
    );
    let si = SHARED_INFO.call_once(|| si);
    refresh_time_record(si, boot.console_evtchn);
    // The clock works from here on; the time since entry is the TSC delta.
    let clock_info = time_info(si);
    let clock_start = now_ns();
    let since_entry = time::scale_tsc_delta(
        arch::rdtsc().saturating_sub(entry_tsc),
        clock_info.tsc_to_system_mul,
        clock_info.tsc_shift,
    );
    ENTRY_NS.store(clock_start.saturating_sub(since_entry), Ordering::Relaxed);

    let Some(console_page) = mm::boot_mapped_page(boot.console_mfn, boot.nr_pages) else {
        hypercall::sched_shutdown(ShutdownReason::Crash)
    };
    let level = match boot.cmdline.get("loglevel") {
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        Some("warn") => log::LevelFilter::Warn,
        _ => log::LevelFilter::Info,
    };
    klog::init(console_page, boot.console_evtchn, level);
    info!(
        "Ethos-Xen guest kernel {} starting ({})",
        env!("CARGO_PKG_VERSION"),
        boot.magic
    );
    info!("command line: \"{}\"", boot.cmdline.as_str());

    if let Err(e) = traps::install() {
        error!("set_trap_table failed: {e}");
        shut_down(ShutdownReason::Crash);
    }

    init_core(&boot, start_info);

    let (major, minor) = hypercall::xen_version();
    let extra = hypercall::xen_extraversion().unwrap_or_else(|e| {
        warn!("XENVER_extraversion failed: {e}");
        [0; 16]
    });
    let version = XenVersion::new(major, minor, extra);
    let boot_us = uptime_ns() / 1000;
    info!(
        "ready: xen={version} pages={} memory_mib={} boot_us={boot_us}",
        boot.nr_pages,
        boot.memory_mib()
    );

    let mut app = boot.cmdline.get("ethos.app").unwrap_or("demo");
    match TestFault::from_cmdline(&boot.cmdline) {
        Ok(None) => {}
        // Needs a process with a bound page: the app commits it.
        Ok(Some(TestFault::StalePage)) => app = "stale-page",
        Ok(Some(fault)) => commit_test_fault(fault),
        Err(value) => warn!("ignoring unknown {}={value}", TestFault::OPTION),
    }

    let Some(processes) = crate::apps::by_name(app) else {
        error!("unknown ethos.app={app} (known: {})", crate::apps::KNOWN);
        shut_down(ShutdownReason::Crash)
    };
    // The RPC channel to dom0's shadowdaemon, unless told otherwise.
    if boot.cmdline.get("ethos.rpc") != Some("off") {
        match crate::rpcclient::init() {
            Ok(_) => {
                if let Err(e) = sched::spawn_service("rpc-offer", crate::apps::rpc_offer::rpc_offer)
                {
                    warn!("cannot start rpc-offer: {e}");
                }
            }
            Err(e) => warn!("no RPC channel: {e}"),
        }
    }
    // Networking, when the command line gives an address: the net-setup
    // service process does the xenbus handshake with netback.
    #[cfg(feature = "net")]
    match guest::cmdline::NetConfig::from_cmdline(&boot.cmdline) {
        Ok(Some(config)) => {
            crate::netstack::configure(config, crate::arch::rdtsc() ^ now_ns());
            if let Err(e) = sched::spawn_service("net-setup", crate::apps::net_setup::net_setup) {
                warn!("cannot start net-setup: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => warn!("network options refused ({e:?}): no networking"),
    }
    for (name, entry) in processes {
        if let Err(e) = sched::spawn(name, *entry) {
            error!("cannot start process {name}: {e}");
            shut_down(ShutdownReason::Crash);
        }
    }
    sched::run();
    report_stats();
    info!("work done: powering off");
    shut_down(ShutdownReason::Poweroff)
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
    if info.tsc_to_system_mul == 0 || arch::rdtsc() < info.tsc_timestamp {
        info!("the vCPU time record is from another CPU: the clock follows the runstate until Xen restamps it");
    }
}

/// Brings up event delivery, the timer, the heap and the scheduler.
fn init_core(boot: &BootInfo, start_info: &StartInfo) {
    let heap = mm::boot_heap_region(start_info);
    arch::heap::init(heap.start, heap.end);
    debug!(
        "heap: {:#x}..{:#x} ({} KiB)",
        heap.start,
        heap.end,
        (heap.end - heap.start) / 1024
    );
    if let Err(e) = upcall::install() {
        die_with_message(format_args!("cannot register event callbacks: {e}"));
    }
    if let Err(e) = hypercall::stop_periodic_timer() {
        warn!("cannot stop the periodic timer (idle will wake every 10 ms): {e}");
    }
    let timer_port = hypercall::evtchn_bind_timer_virq()
        .unwrap_or_else(|e| die_with_message(format_args!("cannot bind VIRQ_TIMER: {e}")));
    let first_free_pfn = (heap.end - arch::VIRT_BASE) >> 12;
    let key = [
        arch::rdtsc().rotate_left(7) ^ 0x6a09_e667_f3bc_c908,
        now_ns() ^ 0xbb67_ae85_84ca_a73b,
    ];
    if let Err(why) = crate::pages::init(start_info, first_free_pfn, key) {
        warn!("page binding unavailable: {why}");
    }
    match mm::boot_mapped_page(boot.store_mfn, boot.nr_pages) {
        Some(page) if boot.store_evtchn != 0 => crate::xs::init(page, boot.store_evtchn),
        _ => warn!("no xenstore ring in start_info: xenstore calls will fail"),
    }
    // Ids must not be guessable: seed from the TSC and Xen time at boot.
    let seed = events::Seed([
        arch::rdtsc() ^ 0x9e37_79b9_7f4a_7c15,
        now_ns().rotate_left(17) ^ boot.nr_pages,
    ]);
    sched::init(seed, timer_port);
    crate::evtchn::unmask_upcalls();
}

fn report_stats() {
    let (s, e) = sched::stats();
    let (heap_used, heap_free) = arch::heap::usage();
    info!(
        "event stats: created={} completed={} retired={} cancelled={} discarded={} wakes={} coalesced={}",
        e.created, e.completed, e.retired, e.cancelled, e.discarded, e.wakes, e.coalesced
    );
    info!(
        "kernel stats: context_switches={} syscalls={} timers_fired={} upcalls={} port_events={} idle_blocks={}",
        s.context_switches, s.syscalls, s.timers_fired, s.upcalls, s.port_events, s.idle_blocks
    );
    let (frames_free, pages_held) = crate::pages::usage();
    info!("memory: heap {heap_used} bytes used, {heap_free} free; {frames_free} frames free, {pages_held} pages held");
}

/// Commits the fault the rig asked for, to prove faults are reported.
fn commit_test_fault(fault: TestFault) {
    warn!("committing test fault {fault:?} as asked on the command line");
    match fault {
        TestFault::PageFault => {
            // Below the image: never mapped.
            let value = arch::read_unmapped_for_test(0x10);
            error!("read of an unmapped address returned {value:#x}: no fault taken");
        }
        TestFault::InvalidOpcode => arch::invalid_opcode_for_test(),
        TestFault::DivideError => {
            let divisor = core::hint::black_box(0u64);
            let value = arch::divide_for_test(1, divisor);
            error!("division by zero returned {value}: no fault taken");
        }
        TestFault::Panic => panic!("test panic requested on the command line"),
        TestFault::StalePage => {}
    }
}

/// The fault policy: report everything, then crash the domain so Xen and
/// the toolstack see it (`on_crash=` in the xl config decides what follows).
pub fn die_with_fault(report: &FaultReport) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        hypercall::sched_shutdown(ShutdownReason::Crash);
    }
    klog::break_lock_for_crash();
    error!("{report}");
    error!("crashing the domain");
    shut_down(ShutdownReason::Crash)
}

/// Reports a fatal condition that is not a CPU fault, then crashes.
pub fn die_with_message(message: core::fmt::Arguments) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        hypercall::sched_shutdown(ShutdownReason::Crash);
    }
    klog::break_lock_for_crash();
    error!("FATAL: {message}");
    error!("crashing the domain");
    shut_down(ShutdownReason::Crash)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        hypercall::sched_shutdown(ShutdownReason::Crash);
    }
    klog::break_lock_for_crash();
    match info.location() {
        Some(loc) => error!(
            "PANIC at {}:{}:{}: {}",
            loc.file(),
            loc.line(),
            loc.column(),
            info.message()
        ),
        None => error!("PANIC: {}", info.message()),
    }
    error!("crashing the domain");
    shut_down(ShutdownReason::Crash)
}
