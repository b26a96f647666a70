//! The boot sequence: the one place that names every part of the kernel
//! and brings each up in order (clock, console, traps, heap, events, pages,
//! xenstore, the scheduler, the services), then runs the processes.

use crate::clock::{self, now_ns, uptime_ns};
use crate::console;
use crate::event::shutdown::Kind;
use crate::panic::{die_with_message, shut_down};
use crate::proc::sched;
use hal::{hypercall, mm, traps, upcall};
use log::{debug, error, info, warn};
use xen::boot_info::BootInfo;
use xen::cmdline::TestFault;
use xen::public::{ShutdownReason, StartInfo};
use xen::version::XenVersion;

/// Entered from `_start` with BSS zeroed and our own stack.
pub fn boot(start_info: &'static StartInfo, entry_tsc: u64) -> ! {
    // Without a valid start_info there is no console to complain on: a crash
    // shutdown is the only report possible, and Xen logs it.
    let Ok(boot) = BootInfo::parse(start_info) else {
        hypercall::sched_shutdown(ShutdownReason::Crash)
    };
    // The shared-info page comes up with event upcalls masked: nothing
    // handles them yet, and SCHEDOP_poll (used by the console) requires it.
    let Ok(si) = hal::map_shared_info(boot.shared_info_maddr) else {
        hypercall::sched_shutdown(ShutdownReason::Crash)
    };
    clock::start(si, boot.console_evtchn, entry_tsc);

    let Some(console_page) = mm::console_page() else {
        hypercall::sched_shutdown(ShutdownReason::Crash)
    };
    let level = match boot.cmdline.get("loglevel") {
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        Some("warn") => log::LevelFilter::Warn,
        _ => log::LevelFilter::Info,
    };
    console::init(console_page, boot.console_evtchn, level);
    info!(
        "Ethos-Xen guest kernel {} starting ({})",
        env!("CARGO_PKG_VERSION"),
        boot.magic
    );
    info!("command line: \"{}\"", boot.cmdline.as_str());

    if let Err(e) = traps::install(crate::panic::die_with_fault) {
        error!("set_trap_table failed: {e}");
        shut_down(ShutdownReason::Crash);
    }

    init_core(&boot);

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

    let mut app = boot.cmdline.get("ethos.app");
    match TestFault::from_cmdline(&boot.cmdline) {
        Ok(None) => {}
        // Needs a process with a bound page: the app commits it.
        Ok(Some(TestFault::StalePage)) => app = Some("stale-page"),
        Ok(Some(fault)) => commit_test_fault(fault),
        Err(value) => warn!("ignoring unknown {}={value}", TestFault::OPTION),
    }
    // A user program as the first process (`ethos.init=NAME`, its
    // arguments after `--`) replaces the linked-in apps. With neither
    // asked for, the demo program is the sensible first process (an image
    // booted without a boot archive says that it needs one).
    let init = match (boot.cmdline.get("ethos.init"), app) {
        (Some(name), _) => Some(name),
        (None, None) => Some("demo"),
        (None, Some(_)) => None,
    };
    let app = if init.is_some() {
        "none"
    } else {
        app.unwrap_or("none")
    };
    let Some(processes) = crate::apps::by_name(app) else {
        error!("unknown ethos.app={app} (known: {})", crate::apps::KNOWN);
        shut_down(ShutdownReason::Crash)
    };
    // The RPC channel to dom0's shadowdaemon, unless told otherwise.
    if boot.cmdline.get("ethos.rpc") != Some("off") {
        match crate::rpc::client::init() {
            Ok(_) => {
                // Tells this boot from the VM's others (the daemon's journal);
                // a restore keeps it, being memory.
                crate::apps::rpc_offer::set_boot_id(secret());
                // Measured 1.7 KiB deep: the smallest stack.
                if let Err(e) =
                    sched::spawn_service("rpc-offer", crate::apps::rpc_offer::rpc_offer, 8)
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
    match xen::cmdline::NetConfig::from_cmdline(&boot.cmdline) {
        Ok(Some(config)) => {
            crate::net::stack::configure(config, [secret(), secret()]);
            if let Err(e) = sched::spawn_service(
                "net-setup",
                crate::apps::net_setup::net_setup,
                // smoltcp's bring-up and tear-down run on it: bring-up
                // measured 16.5 KiB deep, and the tear-down when the
                // backend goes reached the red zone of a 24 KiB stack (the
                // 16 KiB it had before was silently overrun). 64 KiB: one
                // process, and the network image's heap has room.
                64,
            ) {
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
    if let Some(name) = init {
        start_init(name, boot.cmdline.as_str());
    }
    // Answers `xl shutdown` and `xl reboot` (the toolstack asks through
    // xenstore). Like rpc-offer, a small stack; started after the first
    // program, which keeps pid 1 when RPC is off.
    if crate::xen::xenstore::port().is_some() {
        if let Err(e) = sched::spawn_service("control", crate::apps::control::control, 8) {
            warn!("cannot start control: {e}");
        }
    }
    sched::run();
    report_stats();
    ship_trace();
    let (why, reason) = match crate::event::shutdown::asked() {
        Some(Kind::Reboot) => ("rebooting, as the toolstack asked", ShutdownReason::Reboot),
        Some(Kind::Poweroff) => (
            "powering off, as the toolstack asked",
            ShutdownReason::Poweroff,
        ),
        None => ("work done: powering off", ShutdownReason::Poweroff),
    };
    info!("{why}");
    shut_down(reason)
}

/// 64 bits for a kernel secret (event-id and page-capability keys, the
/// network stack's seed): from the CPU's RDSEED or RDRAND where CPUID
/// offers them, mixed with the TSC and Xen time; from those alone
/// otherwise, which a patient attacker can guess (tens of bits).
/// [`say_entropy`] tells which, once, at boot.
fn secret() -> u64 {
    let weak = hal::rdtsc().rotate_left(17) ^ now_ns() ^ 0x9e37_79b9_7f4a_7c15;
    hal::entropy::source()
        .and_then(hal::entropy::draw)
        .map_or(weak, |bits| bits ^ weak)
}

fn say_entropy() {
    match hal::entropy::source() {
        Some(s) => info!(
            "entropy: {} (CPU), mixed with the TSC and Xen time",
            s.name()
        ),
        None => warn!("entropy: no RDSEED or RDRAND: TSC and Xen time only (guessable)"),
    }
}

/// Brings up event delivery, the timer, the heap and the scheduler.
fn init_core(boot: &BootInfo) {
    let Some(memory) = mm::init_memory() else {
        die_with_message(format_args!("the boot memory was set up twice"))
    };
    let heap = memory.heap;
    // Where the P2M list is, for the toolstack when it saves the domain.
    hal::suspend::publish_p2m();
    debug!(
        "heap: {:#x}..{:#x} ({} KiB)",
        heap.start,
        heap.end,
        (heap.end - heap.start) / 1024
    );
    if let Err(e) = upcall::install(
        crate::xen::evtchn::on_upcall,
        crate::panic::die_after_failsafe,
    ) {
        die_with_message(format_args!("cannot register event callbacks: {e}"));
    }
    let timer_port = crate::xen::evtchn::bind_timer();
    say_entropy();
    let key = [secret(), secret()];
    crate::mm::frames::init(memory.frames);
    if let Err(why) = crate::mm::pages::init(key) {
        warn!("page binding unavailable: {why}");
    }
    match mm::store_page() {
        Some(page) if boot.store_evtchn != 0 => crate::xen::xenstore::init(page, boot.store_evtchn),
        _ => warn!("no xenstore ring in start_info: xenstore calls will fail"),
    }
    // The timeline records from the first event on (`ethos.trace=on`).
    if boot.cmdline.get("ethos.trace") == Some("on") {
        crate::event::trace::start();
    }
    // Ids must not be guessable: the event table's key is a secret too.
    let seed = events::Seed([secret(), secret() ^ boot.nr_pages]);
    sched::init(seed, timer_port);
    register_sources();
    hal::upcall::unmask();
}

/// Starts the first user program with every right; its arguments are the
/// command line's words after `--`.
fn start_init(name: &str, cmdline: &str) {
    let mut args = alloc::vec::Vec::new();
    if let Some((_, rest)) = cmdline.split_once(" -- ") {
        for word in rest.split_ascii_whitespace() {
            args.extend_from_slice(word.as_bytes());
            args.push(0);
        }
    }
    let spawned = crate::proc::program::spawn(crate::proc::program::Spawn {
        name,
        args: &args,
        rights: abi::rights::ALL,
        exit_event: None,
        runner: crate::syscall::program::run_program,
    });
    match spawned {
        Ok(pid) => info!("init: program {name} started as pid {}", pid.0),
        Err(e) => {
            let known = crate::proc::program::names();
            if known.is_empty() {
                error!("ethos.init={name}: {e} (no boot archive: give the xl config a ramdisk=)");
            } else {
                error!("ethos.init={name}: {e} (the boot archive has: {known})");
            }
            shut_down(ShutdownReason::Poweroff)
        }
    }
}

/// The services that complete events, for the scheduler to reach through
/// the registry (each answers `None` for its port until it is up).
fn register_sources() {
    static SHUTDOWN: crate::event::shutdown::ShutdownSource =
        crate::event::shutdown::ShutdownSource;
    static STORE: crate::xen::xenstore::StoreSource = crate::xen::xenstore::StoreSource;
    static RPC: crate::rpc::client::RpcSource = crate::rpc::client::RpcSource;
    #[cfg(feature = "net")]
    static NET: crate::net::stack::NetSource = crate::net::stack::NetSource;
    let sources: &[&'static dyn crate::event::Source] = &[
        &SHUTDOWN,
        &STORE,
        &RPC,
        #[cfg(feature = "net")]
        &NET,
    ];
    for &source in sources {
        if crate::event::register(source).is_err() {
            die_with_message(format_args!(
                "no room to register the {} source",
                source.name()
            ));
        }
    }
}

fn report_stats() {
    let (s, e) = sched::stats();
    let (heap_used, heap_free) = hal::heap::usage();
    info!(
        "event stats: created={} completed={} retired={} cancelled={} discarded={} wakes={} coalesced={}",
        e.created, e.completed, e.retired, e.cancelled, e.discarded, e.wakes, e.coalesced
    );
    info!(
        "kernel stats: context_switches={} syscalls={} timers_fired={} upcalls={} port_events={} idle_blocks={}",
        s.context_switches, s.syscalls, s.timers_fired, s.upcalls, s.port_events, s.idle_blocks
    );
    let (frames_free, pages_held) = crate::mm::pages::usage();
    let (out, given, taken) = crate::mm::balloon::counts();
    info!("memory: heap {heap_used} bytes used, {heap_free} free; {frames_free} frames free, {pages_held} pages held; balloon: {out} frames out ({given} given, {taken} taken)");
}

/// How long the trace's last batches may hold up the power-off.
const TRACE_WAIT_NS: u64 = 2_000_000_000;

/// Sends the daemon what the trace holds still, waiting for each batch's
/// answer at most until [`TRACE_WAIT_NS`] after the processes ended; what
/// does not make it is dropped.
fn ship_trace() {
    if !crate::event::trace::on() {
        return;
    }
    crate::event::trace::stop();
    let deadline = now_ns() + TRACE_WAIT_NS;
    while crate::rpc::client::ship_trace(true) && now_ns() < deadline {
        sched::wait_until(deadline);
    }
}

/// Commits the fault the rig asked for, to prove faults are reported.
fn commit_test_fault(fault: TestFault) {
    warn!(
        "committing test fault {} as asked on the command line",
        fault.value()
    );
    match fault {
        TestFault::Panic => panic!("test panic requested on the command line"),
        TestFault::StalePage => {}
        #[cfg(feature = "test-apps")]
        TestFault::PageFault => {
            // Below the image: never mapped.
            let value = hal::test_hooks::read_unmapped(0x10);
            error!("read of an unmapped address returned {value:#x}: no fault taken");
        }
        #[cfg(feature = "test-apps")]
        TestFault::InvalidOpcode => hal::test_hooks::invalid_opcode(),
        #[cfg(feature = "test-apps")]
        TestFault::DivideError => {
            let divisor = core::hint::black_box(0u64);
            let value = hal::test_hooks::divide(1, divisor);
            error!("division by zero returned {value}: no fault taken");
        }
        #[cfg(not(feature = "test-apps"))]
        other => warn!(
            "test fault {} needs the guest-test image: ignored",
            other.value()
        ),
    }
}
