//! Processes, the run queue and the kernel loop.
//!
//! Processes are linked-in apps, each on its own stack, scheduled by the
//! kernel. A context switch happens only when a process blocks on a wait
//! tree that is not yet satisfied (to the kernel loop) or when the kernel
//! loop resumes a process whose tree completed. Everything interrupt-driven
//! is handled at the system-call return point and in the idle loop (see
//! [`crate::xen::evtchn`]), so the kernel state below has a single writer: the
//! code running on the one vCPU, outside the upcall.

use crate::event::timers::Timers;
use crate::status::{SysError, SysResult};
use crate::xen::evtchn;
use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use events::{
    Completion, Config, EventId, EventTable, Pid, Quota, Seed, Stats, Status, Value, Wake,
};
use hal::hypercall;
use hal::switch::{self, Context};
use log::{debug, info, warn};
use spin::Mutex;

/// Most processes alive at once.
pub const MAX_PROCESSES: usize = crate::mm::pages::MAX_REGIONS;
/// The kernel stack of a user program's process, in KiB. Every process's
/// end logs how deep its own stack went: on the core image the deepest
/// program measured is about 5 KiB (usertest, with its 512-byte FPU save
/// area), so 8 KiB, with the bottom [`RED_ZONE_WORDS`] never to be touched.
/// The network images keep 16 KiB: smoltcp's poll runs as deferred work on
/// whichever program's stack is current, and its bring-up went 16.5 KiB
/// deep on net-setup's (its tear-down deeper than 24 KiB). Kernel processes say what they need
/// ([`spawn_service`]).
pub const PROGRAM_STACK_KIB: usize = if cfg!(feature = "net") { 16 } else { 8 };
/// The linked-in test apps' (the test image's stale-page).
const KERNEL_APP_STACK_KIB: usize = 16;
/// The bottom of every kernel stack that must stay zero (1 KiB): checked
/// each time a process comes back to the kernel loop, so a stack that grew
/// too deep stops the kernel with a message instead of silently writing
/// over the heap below it.
const RED_ZONE_WORDS: usize = 128;
/// Timers outstanding in the whole kernel.
const MAX_TIMERS: usize = 4096;
/// A user program runs at most this long while others wait (Ethos's
/// scheduling quantum): then it is preempted at its next return to user.
pub const TIME_SLICE_NS: u64 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunState {
    Runnable,
    Blocked,
    Exited(i32),
}

struct Process {
    pid: Pid,
    name: Cow<'static, str>,
    entry: fn(),
    /// Whom to tell when it ends: the parent and the parent's exit event.
    exit_event: Option<(Pid, EventId)>,
    /// Where a user program starts (rip, rsp), until its kernel context
    /// takes it; `None` for a kernel process.
    user_start: Option<(u64, u64)>,
    /// A user program: it runs in an address space of its own.
    user: bool,
    /// What it may do beyond the ordinary calls (`abi::rights`).
    rights: u32,
    /// The vector of the fault that ended it.
    faulted: Option<u8>,
    /// The end of its time slice (kernel ns), set when it is switched in.
    slice_end: u64,
    /// A service process (rpc-offer): it does not keep the kernel running.
    service: bool,
    state: RunState,
    /// The leaves reported by the wake that made it runnable.
    woken_leaves: Option<Vec<EventId>>,
    /// Its stack and saved stack pointer (hal keeps it alive while it runs).
    context: Arc<Context>,
}

/// Counters of the scheduler, beside the event table's own.
#[derive(Clone, Copy, Debug, Default)]
pub struct SchedStats {
    pub context_switches: u64,
    pub syscalls: u64,
    /// User programs preempted at the end of a time slice.
    pub preemptions: u64,
    pub timers_fired: u64,
    pub idle_blocks: u64,
    /// Event upcalls taken and port events handled (from `evtchn`).
    pub upcalls: u64,
    pub port_events: u64,
    /// Frames free for pages (from `pages`).
    pub frames_free: u64,
}

pub struct Kernel {
    events: EventTable,
    slots: [Option<Process>; MAX_PROCESSES],
    run_queue: VecDeque<usize>,
    current: Option<usize>,
    timers: Timers,
    timer_port: u32,
    /// The deadline last given to `set_timer_op` (0: none).
    programmed_deadline: u64,
    /// The one timer that does not wake the vCPU by itself (deadline,
    /// event, whether a process was woken since it was set): see
    /// [`Kernel::set_lazy_timer`].
    lazy_timer: Option<(u64, EventId, bool)>,
    next_pid: u32,
    stats: SchedStats,
}

/// Boxed: an `Option<Kernel>` that is `None` is not all zero bytes, so it
/// would sit in the image's data (2.7 KiB of a 256 KiB budget); a `None`
/// box is a null pointer, in BSS.
static KERNEL: Mutex<Option<alloc::boxed::Box<Kernel>>> = Mutex::new(None);

fn with_kernel<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    let mut guard = KERNEL.lock();
    f(guard.as_mut().expect("kernel used before sched::init"))
}

/// Sets up the event table and binds the timer VIRQ.
pub fn init(seed: Seed, timer_port: u32) {
    let config = Config {
        default_quota: Quota {
            max_events: 2048,
            max_tree_elements: 4096,
        },
        ..Config::default()
    };
    let mut events = EventTable::with_config(seed, config);
    if crate::event::trace::on() {
        events.set_observer(Some(crate::event::trace::observe));
    }
    let kernel = Kernel {
        events,
        slots: [const { None }; MAX_PROCESSES],
        run_queue: VecDeque::with_capacity(MAX_PROCESSES),
        current: None,
        timers: Timers::new(MAX_TIMERS),
        timer_port,
        programmed_deadline: 0,
        lazy_timer: None,
        next_pid: 1,
        stats: SchedStats::default(),
    };
    *KERNEL.lock() = Some(alloc::boxed::Box::new(kernel));
}

/// Creates a process that will run `entry`; it is runnable at once.
pub fn spawn(name: &'static str, entry: fn()) -> SysResult<Pid> {
    spawn_process(New::kernel(name, entry, false, KERNEL_APP_STACK_KIB), None)
}

/// Creates a service process: like [`spawn`], but once only service
/// processes are left the kernel's work is done; its kernel stack is
/// `stack_kib` (what it was measured to need, with room).
pub fn spawn_service(name: &'static str, entry: fn(), stack_kib: usize) -> SysResult<Pid> {
    spawn_process(New::kernel(name, entry, true, stack_kib), None)
}

/// A process to create.
pub struct New {
    pub name: Cow<'static, str>,
    /// Its kernel context's first function (for a user program: the loop
    /// that runs it, from the system-call layer).
    pub entry: fn(),
    pub service: bool,
    pub exit_event: Option<(Pid, EventId)>,
    pub user_start: Option<(u64, u64)>,
    pub rights: u32,
    /// Its kernel stack, in KiB.
    pub stack_kib: usize,
}

impl New {
    fn kernel(name: &'static str, entry: fn(), service: bool, stack_kib: usize) -> New {
        New {
            name: Cow::Borrowed(name),
            entry,
            service,
            exit_event: None,
            user_start: None,
            rights: abi::rights::ALL,
            stack_kib,
        }
    }
}

/// Whether another process fits (processes alive are bounded by the
/// slots): `TooManyProcesses` otherwise.
pub fn check_room() -> SysResult<()> {
    with_kernel(|k| {
        if k.slots.iter().any(Option::is_none) {
            Ok(())
        } else {
            Err(SysError::TooManyProcesses)
        }
    })
}

/// A fresh pid, for a process whose memory is set up before it exists
/// ([`spawn_process`] with `Some(pid)`).
pub fn reserve_pid() -> Pid {
    with_kernel(|k| {
        let pid = Pid(k.next_pid);
        k.next_pid += 1;
        pid
    })
}

/// Creates a process (with the pid given, or a new one); runnable at once.
pub fn spawn_process(new: New, pid: Option<Pid>) -> SysResult<Pid> {
    let context =
        Context::new(new.stack_kib * 1024 / 8, process_main).ok_or(SysError::OutOfMemory)?;
    with_kernel(|k| {
        let slot = k
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(SysError::TooManyProcesses)?;
        let pid = pid.unwrap_or_else(|| {
            let pid = Pid(k.next_pid);
            k.next_pid += 1;
            pid
        });
        debug!("spawned process {} ({}) in slot {slot}", pid.0, new.name);
        crate::event::trace::name(pid.0, &new.name);
        k.slots[slot] = Some(Process {
            pid,
            name: new.name,
            entry: new.entry,
            exit_event: new.exit_event,
            user: new.user_start.is_some(),
            user_start: new.user_start,
            rights: new.rights,
            faulted: None,
            slice_end: 0,
            service: new.service,
            state: RunState::Runnable,
            woken_leaves: None,
            context,
        });
        k.run_queue.push_back(slot);
        Ok(pid)
    })
}

/// Runs processes until only service processes (or none) are left. Called
/// once, on the boot stack.
pub fn run() {
    loop {
        // A pass of the scheduler (after a switch back or a wake from idle)
        // is a kernel entry of its own for the timeline.
        crate::event::trace::new_entry();
        deferred_work();
        let now = crate::event::trace::read_clock();
        if crate::event::shutdown::grace_over(now) {
            end_all(true);
            return;
        }
        let next = with_kernel(|k| {
            let slot = k.run_queue.pop_front()?;
            let p = k.slots[slot].as_mut()?;
            p.slice_end = now + TIME_SLICE_NS;
            let context = p.context.clone();
            let space = p.user.then_some(p.pid);
            crate::event::trace::record(rpc::trace::Kind::Switch, p.pid.0, slot as u64);
            k.current = Some(slot);
            k.stats.context_switches += 1;
            Some((slot, context, space))
        });
        if let Some((slot, context, space)) = next {
            // A user program's process runs with its own roots loaded, so
            // the kernel reaches its memory at its user addresses.
            if let Some(pid) = space {
                if let Err(e) = crate::mm::space::activate(pid) {
                    warn!("cannot load the address space of pid {}: {e}", pid.0);
                }
            }
            hal::upcall::unmask();
            if switch::resume(&context).is_err() {
                crate::panic::die_with_message(format_args!("kernel loop entered from a process"));
            }
            if context.stack_touched_below(RED_ZONE_WORDS) {
                crate::panic::die_with_message(format_args!(
                    "kernel stack of slot {slot} reached its red zone: give it a larger stack"
                ));
            }
            reap_if_exited(slot);
            continue;
        }
        if with_kernel(|k| k.slots.iter().flatten().all(|p| p.service)) {
            end_all(false);
            return;
        }
        idle();
    }
}

/// Ends every process left: the service processes once nothing else
/// runs, or everything at the end of a shutdown's grace period (`at_shutdown`),
/// so that their events, pages, ports and spaces are accounted for like
/// any exited process's. None of them is running: the kernel loop calls
/// this between switches, so every stack is idle.
fn end_all(at_shutdown: bool) {
    let left = with_kernel(|k| {
        k.run_queue.clear();
        let mut slots = Vec::new();
        for (slot, p) in k.slots.iter_mut().enumerate() {
            if let Some(p) = p {
                if at_shutdown && !p.service {
                    warn!(
                        "process {} ({}) still running at shutdown: ending it",
                        p.pid.0, p.name
                    );
                }
                p.state = RunState::Exited(0);
                slots.push(slot);
            }
        }
        slots
    });
    for slot in left {
        reap_if_exited(slot);
    }
}

/// Frees an exited process's slot (its stack is no longer in use: the
/// switch back to the kernel loop has completed).
fn reap_if_exited(slot: usize) {
    let mut exited = None;
    let mut tell = None;
    with_kernel(|k| {
        k.current = None;
        if let Some(p) = &k.slots[slot] {
            if let RunState::Exited(code) = p.state {
                // How deep its kernel stack went: the figure that says
                // whether the stacks could be smaller. One line for both
                // ends (one format in the image, which must stay small).
                let (how, value) = match p.faulted {
                    Some(v) => ("ended by fault", v as i64),
                    None => ("exited with status", i64::from(code)),
                };
                info!(
                    "process {} ({}) {how} {value} (kernel stack: {} of {} bytes used)",
                    p.pid.0,
                    p.name,
                    p.context.stack_high_water().unwrap_or(0),
                    p.context.stack_bytes()
                );
                let pid = p.pid;
                let (status, word) = match p.faulted {
                    Some(v) => (Status::Faulted, v as u64),
                    None => (Status::Ok, code as u32 as u64),
                };
                tell = p.exit_event.map(|(_, event)| Completion {
                    event,
                    status,
                    value: Value::Word(word),
                });
                // Frees its tree and events; their counters stay in the totals.
                k.events.exit(pid);
                k.slots[slot] = None;
                exited = Some(pid);
            }
        }
    });
    if let Some(pid) = exited {
        crate::event::forget(pid);
        crate::mm::pages::release_all(pid);
        crate::mm::space::destroy(pid);
        let ports = evtchn::channels().disown_all(pid);
        for port in ports {
            if let Err(e) = hypercall::evtchn_close(port) {
                warn!("closing port {port} of exited pid {}: {e}", pid.0);
            }
        }
    }
    // The parent learns of the end through its exit event (gone if the
    // parent exited first: nobody to tell).
    if let Some(c) = tell {
        apply(alloc::vec![c]);
    }
}

/// For the kernel's own work after the processes (the trace's last
/// batches): sleeps as [`idle`] does, but not past `deadline_ns` (not at
/// all if something is pending), then runs the deferred work.
pub fn wait_until(deadline_ns: u64) {
    idle_until(deadline_ns);
    deferred_work();
}

/// Nothing can run: program the timer for the next deadline and block the
/// vCPU until an event arrives. `SCHEDOP_block` unmasks upcalls atomically
/// with the check for pending events, so a wake-up cannot slip in between.
fn idle() {
    idle_until(u64::MAX)
}

#[inline(never)]
fn idle_until(limit: u64) {
    hal::upcall::mask();
    if evtchn::has_pending() {
        hal::upcall::unmask();
        return;
    }
    // The lazy timer fires here, if it is due, instead of the vCPU
    // blocking (the clock is read only while it waits); it wakes the vCPU
    // only once a process was woken since it was set.
    let Some(deadline) = with_kernel(|k| {
        if k.lazy_timer.is_some() && k.fire_lazy_timer(crate::event::trace::read_clock()) {
            return None;
        }
        k.stats.idle_blocks += 1;
        let next = k.timers.next_deadline();
        Some(match k.lazy_timer {
            Some((lazy, _, true)) => Some(next.map_or(lazy, |n| n.min(lazy))),
            _ => next,
        })
    }) else {
        hal::upcall::unmask();
        return;
    };
    // A source's own deadline (smoltcp's retransmits, delayed ACKs) wakes
    // us too.
    let source_deadline = crate::event::next_deadline();
    let deadline = match (deadline, source_deadline) {
        (Some(a), Some(b)) => Some(a.min(b).max(1)),
        (a, b) => a.or(b.map(|b| b.max(1))),
    };
    let deadline = match deadline {
        Some(d) => Some(d.min(limit)),
        None => (limit != u64::MAX).then_some(limit),
    };
    program_timer(deadline.unwrap_or(0));
    hypercall::sched_block();
    hal::upcall::unmask();
}

fn program_timer(deadline_ns: u64) {
    let changed = with_kernel(|k| {
        let changed = k.programmed_deadline != deadline_ns;
        k.programmed_deadline = deadline_ns;
        changed
    });
    if changed {
        let xen_ns = if deadline_ns == 0 {
            0
        } else {
            crate::clock::xen_deadline(deadline_ns).max(1)
        };
        if let Err(e) = hypercall::set_timer_op(xen_ns) {
            warn!("set_timer_op({deadline_ns}) failed: {e}");
        }
    }
}

/// The deferred work: handle recorded event-channel ports, fire timers,
/// and queue the processes whose trees completed.
pub fn deferred_work() {
    if crate::event::trace::on() {
        crate::event::trace::note_upcalls(evtchn::counters().0);
    }
    let timer_port = with_kernel(|k| k.timer_port);
    let sources = crate::event::sources();
    evtchn::drain(|port| {
        if port == timer_port {
            // Expiry is checked below on every pass anyway.
        } else if let Some(source) = sources.iter().find(|s| s.port() == Some(port)) {
            apply(source.on_port());
        } else if let Some(woken) = evtchn::on_process_port(port) {
            if let Some((event, count)) = woken {
                apply(alloc::vec![Completion {
                    event,
                    status: Status::Ok,
                    value: Value::Word(count)
                }]);
            }
        } else {
            debug!("event on port {port} with no handler");
        }
    });
    for source in sources.iter() {
        apply(source.poll());
    }
    fire_timers();
}

/// Completes events on behalf of a service (xenstore replies, ...) and
/// queues the processes whose trees that completed.
pub fn apply(completions: Vec<Completion>) {
    if completions.is_empty() {
        return;
    }
    with_kernel(|k| {
        for c in completions {
            match k.events.complete(c.event, c.status, c.value) {
                Ok(Some(wake)) => k.wake(wake),
                Ok(None) => {}
                // Its process exited or retired it meanwhile: nobody to tell.
                Err(Status::UnknownEvent) => {}
                Err(e) => warn!("completion of event {} failed: {e}", c.event.0),
            }
        }
    });
}

fn fire_timers() {
    // Reading the clock is not free (under Xen on this rig each `rdtsc`
    // traps, about 5 µs under QEMU/TCG), and this pass runs at every
    // return to user: with no timer waiting and no deadline armed there is
    // nothing to compare the clock with.
    if with_kernel(|k| k.timers.next_deadline().is_none() && k.programmed_deadline == 0) {
        return;
    }
    let now = crate::event::trace::read_clock();
    let next = with_kernel(|k| {
        k.fire_lazy_timer(now);
        while let Some(t) = k.timers.pop_expired(now) {
            k.stats.timers_fired += 1;
            match k.events.complete(t.event, Status::Ok, Value::Word(now)) {
                Ok(Some(wake)) => k.wake(wake),
                Ok(None) => {}
                // Retired or exited before its deadline: nothing to tell.
                Err(Status::UnknownEvent) => {}
                Err(e) => warn!("timer completion of event {} failed: {e}", t.event.0),
            }
        }
        // Re-armed on every pass that reads the clock. Inferring from our
        // own clock that Xen's one-shot is still armed (and skipping the
        // set_timer_op) lost timers: the kernel clock may run behind Xen's
        // time, so the one-shot can have fired while our clock still reads
        // before its deadline, and nothing wakes the guest again (seen as a
        // network re-attach that never finished).
        k.programmed_deadline = 0;
        k.timers.next_deadline()
    });
    program_timer(next.unwrap_or(0));
}

impl Kernel {
    fn wake(&mut self, wake: Wake) {
        // Work is going on: the lazy timer may wake the vCPU now.
        if let Some(lazy) = &mut self.lazy_timer {
            lazy.2 = true;
        }
        let Some(slot) = self.slot_of(wake.pid) else {
            return;
        };
        if let Some(p) = self.slots[slot].as_mut() {
            p.state = RunState::Runnable;
            p.woken_leaves = Some(wake.completed);
            self.run_queue.push_back(slot);
        }
    }

    fn slot_of(&self, pid: Pid) -> Option<usize> {
        self.slots
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.pid == pid))
    }

    fn current_pid(&self) -> SysResult<Pid> {
        self.current
            .and_then(|s| self.slots[s].as_ref())
            .map(|p| p.pid)
            .ok_or(SysError::NoProcess)
    }
}

/// First Rust code of every process (from hal's context trampoline).
extern "C" fn process_main() -> ! {
    let entry = with_kernel(|k| k.current.and_then(|s| k.slots[s].as_ref()).map(|p| p.entry));
    match entry {
        Some(entry) => entry(),
        None => {
            crate::panic::die_with_message(format_args!("process started with no current slot"))
        }
    }
    exit_current(0)
}

/// Ends the current process and switches away for good.
pub fn exit_current(code: i32) -> ! {
    let slot = with_kernel(|k| {
        let slot = k.current?;
        if let Some(p) = k.slots[slot].as_mut() {
            p.state = RunState::Exited(code);
        }
        Some(slot)
    });
    let Some(slot) = slot else {
        crate::panic::die_with_message(format_args!("exit outside a process"))
    };
    switch::suspend();
    crate::panic::die_with_message(format_args!("exited process {slot} was resumed"))
}

/// The slot of the running process (its region is `pages::region_address(slot, _)`).
pub fn current_slot() -> SysResult<usize> {
    with_kernel(|k| k.current.ok_or(SysError::NoProcess))
}

/// Runs `f` on the kernel state on behalf of the current process.
pub fn with_current<R>(f: impl FnOnce(&mut Kernel, Pid) -> SysResult<R>) -> SysResult<R> {
    with_kernel(|k| {
        k.stats.syscalls += 1;
        let pid = k.current_pid()?;
        f(k, pid)
    })
}

/// Kernel-side operations the system-call layer uses.
impl Kernel {
    pub fn events(&mut self) -> &mut EventTable {
        &mut self.events
    }

    pub fn set_timer(&mut self, pid: Pid, deadline_ns: u64, event: EventId) -> SysResult<()> {
        let events = &self.events;
        self.timers
            .set(deadline_ns, event, pid, |t| {
                events
                    .state(t.owner, t.event)
                    .is_ok_and(|s| s == events::EventState::Pending)
            })
            .map_err(|_| SysError::TooManyTimers)
    }

    /// Sets the one lazy timer of the kernel (replacing the one set
    /// before): it completes `event` like a beep, at the first pass at or
    /// past its deadline where the kernel is awake anyway (a timer fires,
    /// or nothing is left to run), and it wakes the vCPU at its deadline
    /// only if a process was woken since it was set. So a guest where
    /// nothing happens is never woken for it, and one that was busy sees it
    /// fire about on time, once more after its work ended (the `control`
    /// service's tick of the live figures: what the work changed is
    /// published, then the guest is left alone).
    pub fn set_lazy_timer(&mut self, deadline_ns: u64, event: EventId) {
        self.lazy_timer = Some((deadline_ns, event, false));
    }

    /// Fires the lazy timer if it is due at `now`; whether it fired.
    fn fire_lazy_timer(&mut self, now: u64) -> bool {
        let Some((deadline, event, _)) = self.lazy_timer else {
            return false;
        };
        if deadline > now {
            return false;
        }
        self.lazy_timer = None;
        self.stats.timers_fired += 1;
        // Retired or exited meanwhile: nothing to tell.
        if let Ok(Some(wake)) = self.events.complete(event, Status::Ok, Value::Word(now)) {
            self.wake(wake);
        }
        true
    }

    /// Event statistics over every process, live and exited.
    pub fn event_totals(&self) -> Stats {
        self.events.totals()
    }
}

/// The domain is back from a suspend: in a new domain the timer VIRQ is
/// bound to `timer_port` now. Either way Xen's one-shot timer is not known
/// to be what was programmed (a new domain has none), so the next idle
/// programs it again.
pub fn resumed(timer_port: Option<u32>) {
    with_kernel(|k| {
        if let Some(port) = timer_port {
            k.timer_port = port;
            // The live figures' tick is due at once: the new domain's
            // store has none of the old one's nodes.
            if let Some(lazy) = &mut k.lazy_timer {
                lazy.0 = 0;
            }
        }
        k.programmed_deadline = u64::MAX;
    });
}

/// Blocks the current process until its installed tree completes; returns
/// the leaves the wake reported.
pub fn sleep_current() -> SysResult<Vec<EventId>> {
    let slot = with_kernel(|k| {
        let slot = k.current.ok_or(SysError::NoProcess)?;
        if let Some(p) = k.slots[slot].as_mut() {
            p.state = RunState::Blocked;
        }
        Ok::<_, SysError>(slot)
    })?;
    switch::suspend();
    // Resumed by the kernel loop: the wake left the leaves.
    Ok(
        with_kernel(|k| k.slots[slot].as_mut().and_then(|p| p.woken_leaves.take()))
            .unwrap_or_default(),
    )
}

/// The `n`th id no event ever has, for the kernel's own requests
/// (`EventTable::foreign_id`).
pub fn foreign_id(n: u32) -> EventId {
    with_kernel(|k| k.events.foreign_id(n))
}

/// A new timer may be earlier than the one programmed.
pub fn reprogram_timer() {
    let next = with_kernel(|k| k.timers.next_deadline());
    if let Some(d) = next {
        let programmed = with_kernel(|k| k.programmed_deadline);
        if programmed == 0 || d < programmed {
            program_timer(d);
        }
    }
}

/// Statistics for the demo and benchmarks.
pub fn stats() -> (SchedStats, Stats) {
    let (upcalls, port_events) = evtchn::counters();
    let frames_free = crate::mm::pages::usage().0 as u64;
    with_kernel(|k| {
        (
            SchedStats {
                upcalls,
                port_events,
                frames_free,
                ..k.stats
            },
            k.event_totals(),
        )
    })
}

/// Where the current user program starts (rip, rsp): given once, to its
/// kernel context.
pub fn take_user_start() -> Option<(u64, u64)> {
    with_kernel(|k| {
        k.current
            .and_then(|s| k.slots[s].as_mut())
            .and_then(|p| p.user_start.take())
    })
}

/// The current process's rights (`abi::rights`).
pub fn current_rights() -> u32 {
    with_kernel(|k| {
        k.current
            .and_then(|s| k.slots[s].as_ref())
            .map_or(0, |p| p.rights)
    })
}

/// The current process's name.
pub fn current_name() -> Cow<'static, str> {
    with_kernel(|k| {
        k.current
            .and_then(|s| k.slots[s].as_ref())
            .map_or(Cow::Borrowed("?"), |p| p.name.clone())
    })
}

/// Ends the current process because of a fault with `vector`; its parent's
/// exit event completes `Faulted` with the vector.
pub fn exit_faulted(vector: u8) -> ! {
    with_kernel(|k| {
        if let Some(p) = k.current.and_then(|s| k.slots[s].as_mut()) {
            p.faulted = Some(vector);
        }
    });
    exit_current(-1)
}

/// Before entering user mode: when others are waiting, make sure the timer
/// fires by the end of the current time slice.
pub fn arm_time_slice() {
    let end = with_kernel(|k| {
        if k.run_queue.is_empty() {
            return None;
        }
        let end = k.current.and_then(|s| k.slots[s].as_ref())?.slice_end;
        let sooner = k.programmed_deadline == 0 || end < k.programmed_deadline;
        sooner.then_some(end)
    });
    if let Some(end) = end {
        program_timer(end);
    }
}

/// At the return to user: if the time slice is over and others are
/// waiting, queue the current process behind them and run them first.
pub fn preempt_if_due() {
    // The clock only matters when someone waits (see `fire_timers`).
    if with_kernel(|k| k.run_queue.is_empty()) {
        return;
    }
    let now = crate::clock::now_ns();
    let slot = with_kernel(|k| {
        let slot = k.current?;
        let p = k.slots[slot].as_ref()?;
        if k.run_queue.is_empty() || now < p.slice_end {
            return None;
        }
        k.run_queue.push_back(slot);
        k.stats.preemptions += 1;
        Some(slot)
    });
    if slot.is_some() {
        switch::suspend();
    }
}
