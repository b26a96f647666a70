//! The boot sequence: the one place that names every part of the kernel
//! and brings each up in order (clock, console, traps, heap, events, pages,
//! xenstore, the scheduler, the services), then runs the processes.

use crate::clock::{self, now_ns, uptime_ns};
use crate::console;
use crate::event::shutdown::Kind;
use crate::panic::{die_with_message, shut_down};
use crate::proc::sched;
use hal::{hypercall, mm, traps, upcall};
use log::{error, info, warn};
use xen::boot_info::BootInfo;
use xen::cmdline::TestFault;
use xen::options::{Image, Opt, Options};
use xen::public::{ShutdownReason, StartInfo};
use xen::version::XenVersion;

/// Which of scripts/build-guest's images this is: the options' table says
/// which options and values each has.
const IMAGE: Image = if cfg!(feature = "test-apps") {
    Image::Test
} else if cfg!(feature = "net") {
    Image::Net
} else {
    Image::Core
};

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
    let options = Options::new(boot.cmdline, IMAGE);
    // By position in the table's `off|error|warn|info|debug|trace` (a test
    // of the xen crate keeps that order), which is `LevelFilter`'s.
    let level = match options.choice(Opt::LogLevel) {
        Some(0) => log::LevelFilter::Off,
        Some(1) => log::LevelFilter::Error,
        Some(2) => log::LevelFilter::Warn,
        Some(4) => log::LevelFilter::Debug,
        Some(5) => log::LevelFilter::Trace,
        _ => log::LevelFilter::Info,
    };
    console::init(console_page, boot.console_evtchn, level);
    info!(
        "Ethos-Xen guest kernel {} starting ({})",
        env!("CARGO_PKG_VERSION"),
        boot.magic
    );
    info!("command line: \"{}\"", boot.cmdline.as_str());
    check_options(&options);

    if let Err(e) = traps::install(crate::panic::die_with_fault) {
        error!("set_trap_table failed: {e}");
        shut_down(ShutdownReason::Crash);
    }

    init_core(&boot, options.get(Opt::Trace) == Some("on"));

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

    let mut app = options.get(Opt::App);
    match options.get(Opt::TestFault).and_then(TestFault::from_value) {
        None => {}
        // Needs a process with a bound page: the app commits it.
        Some(TestFault::StalePage) => app = Some("stale-page"),
        Some(fault) => commit_test_fault(fault),
    }
    // A user program as the first process (`ethos.init=NAME`, its
    // arguments after `--`) replaces the linked-in apps. With neither
    // asked for, the demo program is the sensible first process (an image
    // booted without a boot archive says that it needs one).
    let init = match (options.get(Opt::Init), app) {
        (Some(name), _) => Some(name),
        (None, None) => Some("demo"),
        (None, Some(_)) => None,
    };
    let app = if init.is_some() {
        "none"
    } else {
        app.unwrap_or("none")
    };
    // The options' table lets through only the apps this image has
    // (apps::by_name's names are its values).
    let processes = crate::apps::by_name(app).unwrap_or(&[]);
    // The RPC channel to dom0's shadowdaemon, unless told otherwise.
    if options.get(Opt::Rpc) != Some("off") {
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
    match xen::cmdline::NetConfig::from_options(&options) {
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
        start_init(name, &options);
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

/// The pool every kernel secret is drawn from (crate::entropy): dom0's
/// boot seed goes in first, when there is one ([`take_dom0_seed`]).
static POOL: spin::Mutex<crate::entropy::Pool> = spin::Mutex::new(crate::entropy::Pool::new());

/// 64 bits for a kernel secret (event-id and page-capability keys, the
/// network stack's secret, the boot id): the pool (dom0's seed) mixed with
/// the CPU's RDSEED or RDRAND where CPUID offers them and with the TSC and
/// Xen time. With neither seed nor CPU bits a patient attacker can guess
/// it (tens of bits). [`say_entropy`] tells which, once, at boot.
#[inline(never)]
fn secret() -> u64 {
    let clock = hal::rdtsc().rotate_left(17) ^ now_ns();
    let cpu = hal::entropy::source().and_then(hal::entropy::draw);
    POOL.lock().draw(cpu, clock)
}

/// Reads dom0's boot seed (`ethos/seed`, xen::seed) into the pool, once,
/// and removes the node so that it is never used again (it is removed
/// when refused too). Returns whether the pool has a seed. No node is the
/// usual case of a domain created without one, and says nothing here.
fn take_dom0_seed() -> bool {
    use crate::xen::xenstore::call_at_boot;
    use events::{Status, Value};
    use xen::xenstore::Request;
    const NO_NODE: u32 = xen::xenstore::Errno::NoEnt.number();
    if crate::xen::xenstore::port().is_none() {
        return false;
    }
    let value = match call_at_boot(Request::Read(xen::seed::PATH)) {
        Some((Status::Ok, Value::Bytes(value))) => value,
        Some((Status::Remote(NO_NODE), _)) => return false,
        failed => {
            seed_store_failed("unreadable", failed);
            return false;
        }
    };
    let seeded = match xen::seed::parse(&value) {
        Ok(seed) => {
            POOL.lock().add_seed(&seed);
            true
        }
        Err(why) => {
            warn!("entropy: dom0 seed refused: {why}");
            false
        }
    };
    match call_at_boot(Request::Rm(xen::seed::PATH)) {
        Some((Status::Ok, _)) => {}
        failed => seed_store_failed("not removed", failed),
    }
    seeded
}

/// Says why a xenstore request for the seed failed (`None`: no answer).
#[inline(never)]
fn seed_store_failed(what: &str, answer: Option<(events::Status, events::Value)>) {
    match answer {
        Some((status, _)) => warn!("entropy: dom0 seed {what} (xenstore: {status})"),
        None => warn!("entropy: dom0 seed {what} (xenstore did not answer)"),
    }
}

/// One line at boot: what the secrets come from ("dom0 seed (+RDRAND
/// CPU)", "dom0 seed", "RDRAND (CPU)"), or a warning when only the clock.
fn say_entropy(seeded: bool) {
    let (first, second, third) = match (seeded, hal::entropy::source()) {
        (true, Some(cpu)) => ("dom0 seed (+", cpu.name(), " CPU)"),
        (true, None) => ("dom0 seed", "", ""),
        (false, Some(cpu)) => (cpu.name(), " (CPU)", ""),
        (false, None) => {
            return warn!("entropy: no RDSEED or RDRAND, no dom0 seed: TSC and Xen time only (guessable; scripts/xl-create-seeded gives a seed)");
        }
    };
    info!("entropy: {first}{second}{third}, mixed with the TSC and Xen time");
}

/// The heap the kernel needs whatever the domain's size (its processes,
/// events, rings; the network image's stack and buffers too): a large
/// domain's boot mapping has little room left past the P2M list, and the
/// heap then grows into the frames past it.
const HEAP_MIN: u64 = if cfg!(feature = "net") {
    2 << 20
} else {
    1 << 20
};
/// Frames below which a small domain's pool takes the boot mapping's tail
/// past `HEAP_MIN` from the heap: a 4 MiB domain's boot mapping is all of
/// its memory, and its programs need frames.
const POOL_MIN: u64 = 256;

/// Brings up event delivery, the timer, the heap and the scheduler.
fn init_core(boot: &BootInfo, trace: bool) {
    let Some(memory) = mm::init_memory(HEAP_MIN, POOL_MIN) else {
        die_with_message(format_args!("no memory for the heap and frame pool"))
    };
    let heap = memory.heap;
    // Where the P2M list is, for the toolstack when it saves the domain.
    hal::suspend::publish_p2m();
    info!(
        "memory: {} KiB heap ({} frames past the boot mapping), {} frames for programs, their page tables, bound pages and grants",
        (heap.end - heap.start) / 1024,
        memory.heap_frames + memory.heap_tables,
        memory.frames.len()
    );
    if let Err(e) = upcall::install(
        crate::xen::evtchn::on_upcall,
        crate::panic::die_after_failsafe,
    ) {
        die_with_message(format_args!("cannot register event callbacks: {e}"));
    }
    let timer_port = crate::xen::evtchn::bind_timer();
    match mm::store_page() {
        Some(page) if boot.store_evtchn != 0 => crate::xen::xenstore::init(page, boot.store_evtchn),
        _ => warn!("no xenstore ring in start_info: xenstore calls will fail"),
    }
    // Before the first secret: each is drawn from the pool the seed is in.
    say_entropy(take_dom0_seed());
    let key = [secret(), secret()];
    crate::mm::frames::init(memory.frames);
    if let Err(why) = crate::mm::pages::init(key) {
        warn!("page binding unavailable: {why}");
    }
    // The timeline records from the first event on (`ethos.trace=on`).
    if trace {
        crate::event::trace::start();
    }
    // Ids must not be guessable: the event table's key is a secret too.
    let seed = events::Seed([secret(), secret() ^ boot.nr_pages]);
    sched::init(seed, timer_port);
    register_sources();
    hal::upcall::unmask();
}

/// Says what is wrong with each word of the command line (the options'
/// table decides), and powers off where going on would not be safe (what to
/// run is wrong) or when the table was asked for (`ethos.help`).
fn check_options(options: &Options) {
    let mut stop = false;
    for problem in options.problems() {
        warn!("{problem}");
        stop |= problem.stops();
    }
    if options.get(Opt::Help).is_some() {
        // Asked for: shown whatever the log level. Its own line says the
        // domain powers off next.
        log::set_max_level(log::max_level().max(log::LevelFilter::Info));
        for spec in &xen::options::TABLE {
            info!("ethos.help: {}", spec.line());
        }
        stop = true;
    }
    if stop {
        shut_down(ShutdownReason::Poweroff);
    }
}

/// Starts the first user program with every right; its arguments are the
/// command line's words after `--`.
fn start_init(name: &str, options: &Options) {
    let mut args = alloc::vec::Vec::new();
    for word in options.init_args() {
        args.extend_from_slice(word.as_bytes());
        args.push(0);
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
                error!("ethos.init={name}: {e} (no boot archive: give the xl config a ramdisk=); powering off");
            } else {
                error!("ethos.init={name}: {e} (the boot archive has: {known}); powering off");
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
        // The options' table lets these through on the guest-test image only.
        #[cfg(not(feature = "test-apps"))]
        _ => {}
    }
}
