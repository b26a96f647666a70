//! The boot sequence and the kernel's crash policy.

use crate::arch::{self, hypercall, mm, shared::SharedPage, traps};
use crate::klog;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use guest::abi::{shared_info, vcpu_info, ShutdownReason, StartInfo, VcpuTimeInfo};
use guest::boot_info::BootInfo;
use guest::cmdline::TestFault;
use guest::fault::FaultReport;
use guest::time;
use guest::version::XenVersion;
use log::{error, info, warn};

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

/// Xen system time now, in ns (0 before the shared-info page is mapped).
pub fn now_ns() -> u64 {
    shared_info().map_or(0, |si| time::system_time_ns(&time_info(si), arch::rdtsc()))
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
    let time_at_entry = time_info(si);
    ENTRY_NS.store(
        time::system_time_ns(&time_at_entry, entry_tsc),
        Ordering::Relaxed,
    );

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

    let (major, minor) = hypercall::xen_version();
    let extra = hypercall::xen_extraversion().unwrap_or_else(|e| {
        warn!("XENVER_extraversion failed: {e}");
        [0; 16]
    });
    let version = XenVersion::new(major, minor, extra);
    let ready_tsc = arch::rdtsc();
    let boot_us = time::scale_tsc_delta(
        ready_tsc.saturating_sub(entry_tsc),
        time_at_entry.tsc_to_system_mul,
        time_at_entry.tsc_shift,
    ) / 1000;
    info!(
        "ready: xen={version} pages={} memory_mib={} boot_us={boot_us}",
        boot.nr_pages,
        boot.memory_mib()
    );

    match TestFault::from_cmdline(&boot.cmdline) {
        Ok(None) => {}
        Ok(Some(fault)) => commit_test_fault(fault),
        Err(value) => warn!("ignoring unknown {}={value}", TestFault::OPTION),
    }

    info!("work done: powering off");
    shut_down(ShutdownReason::Poweroff)
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
