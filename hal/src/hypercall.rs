//! Typed hypercall wrappers, one per hypercall the kernel uses.
//!
//! x86_64 PV ABI: hypercall number selects a 32-byte slot in the hypercall
//! page Xen filled in; arguments go in `rdi, rsi, rdx, r10, r8` (not `r9`: a
//! published crate gets the fifth one wrong); the result comes back in `rax`.
//! The slot's `syscall` clobbers `rcx` and `r11`, and Xen may clobber the
//! argument registers, so all of them are declared clobbered.

use core::fmt;
use xen::public::{
    callback, evtchnop, gnttab, hypercall as nr, schedop, vcpuop, virq, xenver, CallbackRegister,
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVirq, EvtchnPort, EvtchnSend,
    GnttabSetupTable, MmuUpdate, MmuextOp, MulticallEntry, SchedPoll, SchedShutdown,
    ShutdownReason, TrapInfo,
};

extern "C" {
    static hypercall_page: [u8; 4096];
}

/// A negative errno returned by Xen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenError(pub i64);

impl fmt::Display for XenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match -self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            22 => "EINVAL",
            28 => "ENOSPC",
            38 => "ENOSYS",
            _ => "errno",
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// Issues hypercall `op` with up to five arguments.
///
/// # Safety
/// The caller guarantees that the arguments are valid for `op` (pointers
/// point at live, correctly laid out memory for the whole call).
unsafe fn hypercall5(op: usize, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: i64;
    // SAFETY: the hypercall page is filled by Xen before entry; each slot is
    // 32 bytes. Register use follows the PV x86_64 ABI described above.
    unsafe {
        let entry = core::ptr::addr_of!(hypercall_page) as usize + op * 32;
        core::arch::asm!(
            "call {entry}",
            entry = in(reg) entry,
            lateout("rax") ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

fn check(ret: i64) -> Result<i64, XenError> {
    if ret < 0 {
        Err(XenError(ret))
    } else {
        Ok(ret)
    }
}

/// `set_trap_table(traps)`: installs the virtual IDT. The table must end with
/// an entry whose address is 0.
pub(crate) fn set_trap_table(traps: &[TrapInfo]) -> Result<(), XenError> {
    assert!(
        traps.last().is_some_and(|t| t.address == 0),
        "trap table lacks its terminator"
    );
    // SAFETY: the slice is live for the call and terminated as Xen requires.
    check(unsafe { hypercall5(nr::SET_TRAP_TABLE, traps.as_ptr() as u64, 0, 0, 0, 0) }).map(drop)
}

/// `update_va_mapping(va, pte, flags)`: sets the L1 entry that maps `va`.
///
/// # Safety
/// Changing a mapping can pull memory from under live references: the caller
/// guarantees nothing borrows the old contents of `va`'s page.
pub unsafe fn update_va_mapping(va: u64, pte: u64, flags: u64) -> Result<(), XenError> {
    // SAFETY: by the caller's guarantee above; Xen validates the entry.
    check(unsafe { hypercall5(nr::UPDATE_VA_MAPPING, va, pte, flags, 0, 0) }).map(drop)
}

/// `xen_version(XENVER_version)`: `(major, minor)`.
pub fn xen_version() -> (u32, u32) {
    // SAFETY: XENVER_version takes no buffer.
    let v = unsafe { hypercall5(nr::XEN_VERSION, xenver::VERSION as u64, 0, 0, 0, 0) } as u32;
    (v >> 16, v & 0xffff)
}

/// `xen_version(XENVER_extraversion)`: the suffix after `major.minor`,
/// e.g. `.5-pre`, NUL-padded.
pub fn xen_extraversion() -> Result<[u8; xenver::EXTRAVERSION_LEN], XenError> {
    let mut buf = [0u8; xenver::EXTRAVERSION_LEN];
    // SAFETY: Xen writes at most EXTRAVERSION_LEN bytes into the buffer.
    check(unsafe {
        hypercall5(
            nr::XEN_VERSION,
            xenver::EXTRAVERSION as u64,
            buf.as_mut_ptr() as u64,
            0,
            0,
            0,
        )
    })?;
    Ok(buf)
}

/// `sched_op(SCHEDOP_shutdown, reason)`: ends the domain. Does not return.
pub fn sched_shutdown(reason: ShutdownReason) -> ! {
    let arg = SchedShutdown {
        reason: reason as u32,
    };
    loop {
        // SAFETY: `arg` is live for the call.
        unsafe {
            hypercall5(
                nr::SCHED_OP,
                schedop::SHUTDOWN as u64,
                &arg as *const _ as u64,
                0,
                0,
                0,
            )
        };
        // Shutdown only returns for suspend; anything else: keep asking.
    }
}

/// `sched_op(SCHEDOP_shutdown, SHUTDOWN_suspend)` with the machine frame
/// of start_info in `rdx`, as the PV suspend protocol has it (the
/// toolstack finds start_info there, in the saved registers). Returns 0
/// when the domain runs again as a new domain (restored, migrated), 1 when
/// the suspend was cancelled and it carries on where it was, or an error.
///
/// # Safety
/// Every mapping of a frame that is not the domain's own (shared info,
/// grant-table frames) must be gone: the toolstack cannot save them.
pub(crate) unsafe fn sched_suspend(start_info_mfn: u64) -> Result<u64, XenError> {
    let arg = SchedShutdown {
        reason: ShutdownReason::Suspend as u32,
    };
    // SAFETY: `arg` is live for the call; the caller's guarantee above.
    check(unsafe {
        hypercall5(
            nr::SCHED_OP,
            schedop::SHUTDOWN as u64,
            &arg as *const _ as u64,
            start_info_mfn,
            0,
            0,
        )
    })
    .map(|r| r as u64)
}

/// `memory_op(cmd, reservation)`: gives frames back to Xen or takes new
/// ones (`xenmem::DECREASE_RESERVATION`, `INCREASE_RESERVATION`). Returns
/// how many extents Xen handled.
///
/// # Safety
/// The reservation's extent list must be live for `nr_extents` entries,
/// and for a decrease it must name frames nothing maps or uses.
pub(crate) unsafe fn memory_op(
    cmd: u64,
    reservation: &mut xen::public::MemoryReservation,
) -> Result<u64, XenError> {
    // SAFETY: by the caller's guarantee; the reservation is live.
    check(unsafe { hypercall5(nr::MEMORY_OP, cmd, reservation as *mut _ as u64, 0, 0, 0) })
        .map(|n| n as u64)
}

/// `sched_op(SCHEDOP_poll)`: blocks until one of `ports` is pending or the
/// absolute system time `deadline_ns` passes (0: no deadline). Upcalls must
/// be masked.
pub fn sched_poll(ports: &[u32], deadline_ns: u64) -> Result<(), XenError> {
    let arg = SchedPoll {
        ports: ports.as_ptr(),
        nr_ports: ports.len() as u32,
        timeout: deadline_ns,
    };
    // SAFETY: `arg` and `ports` are live for the call.
    check(unsafe {
        hypercall5(
            nr::SCHED_OP,
            schedop::POLL as u64,
            &arg as *const _ as u64,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// `sched_op(SCHEDOP_yield)`: gives up the pCPU; Xen reschedules.
pub fn sched_yield() {
    // SAFETY: no arguments.
    unsafe { hypercall5(nr::SCHED_OP, schedop::YIELD as u64, 0, 0, 0, 0) };
}

/// `event_channel_op(EVTCHNOP_send, port)`: notifies the remote end.
pub fn evtchn_send(port: u32) -> Result<(), XenError> {
    let arg = EvtchnSend { port };
    // SAFETY: `arg` is live for the call.
    check(unsafe {
        hypercall5(
            nr::EVENT_CHANNEL_OP,
            evtchnop::SEND as u64,
            &arg as *const _ as u64,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// `event_channel_op(op, arg)` for the commands below.
fn evtchn_op<T>(op: u32, arg: &mut T) -> Result<(), XenError> {
    // SAFETY: `arg` is a live, correctly laid out `#[repr(C)]` argument for
    // `op` (each caller passes the struct `op` takes).
    check(unsafe {
        hypercall5(
            nr::EVENT_CHANNEL_OP,
            op as u64,
            arg as *mut T as u64,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// `EVTCHNOP_alloc_unbound`: a new local port that domain `remote` may bind
/// (`DOMID_SELF` for a loop within this domain).
pub fn evtchn_alloc_unbound(remote: u16) -> Result<u32, XenError> {
    let mut arg = EvtchnAllocUnbound {
        dom: xen::public::DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    evtchn_op(evtchnop::ALLOC_UNBOUND, &mut arg)?;
    Ok(arg.port)
}

/// `EVTCHNOP_bind_interdomain`: connects a new local port to `remote_port`
/// of `remote_dom`.
pub fn evtchn_bind_interdomain(remote_dom: u16, remote_port: u32) -> Result<u32, XenError> {
    let mut arg = EvtchnBindInterdomain {
        remote_dom,
        remote_port,
        local_port: 0,
    };
    evtchn_op(evtchnop::BIND_INTERDOMAIN, &mut arg)?;
    Ok(arg.local_port)
}

/// `EVTCHNOP_close`.
pub fn evtchn_close(port: u32) -> Result<(), XenError> {
    evtchn_op(evtchnop::CLOSE, &mut EvtchnPort { port })
}

/// `EVTCHNOP_bind_virq` for the timer VIRQ on vCPU 0.
pub fn evtchn_bind_timer_virq() -> Result<u32, XenError> {
    let mut arg = EvtchnBindVirq {
        virq: virq::TIMER,
        vcpu: 0,
        port: 0,
    };
    evtchn_op(evtchnop::BIND_VIRQ, &mut arg)?;
    Ok(arg.port)
}

/// `callback_op(CALLBACKOP_register)` for the event, failsafe and syscall
/// callbacks; all run with event upcalls masked.
pub(crate) fn register_callbacks(event: u64, failsafe: u64, syscall: u64) -> Result<(), XenError> {
    for (kind, address) in [
        (callback::TYPE_EVENT, event),
        (callback::TYPE_FAILSAFE, failsafe),
        (callback::TYPE_SYSCALL, syscall),
    ] {
        let arg = CallbackRegister {
            kind,
            flags: callback::FLAG_MASK_EVENTS,
            address,
        };
        // SAFETY: `arg` is live for the call; the addresses are our entry stubs.
        check(unsafe {
            hypercall5(
                nr::CALLBACK_OP,
                callback::OP_REGISTER as u64,
                &arg as *const _ as u64,
                0,
                0,
                0,
            )
        })?;
    }
    Ok(())
}

/// `stack_switch(ss, sp)`: the stack every entry from user mode (system
/// call, trap, upcall) lands on; Xen writes its frame ending at `sp`.
pub(crate) fn stack_switch(ss: u16, sp: u64) -> Result<(), XenError> {
    // SAFETY: takes plain values; the caller passes the top of a stack that
    // stays allocated (a static).
    check(unsafe { hypercall5(nr::STACK_SWITCH, ss as u64, sp, 0, 0, 0) }).map(drop)
}

/// `mmuext_op(ops)` for this domain.
///
/// # Safety
/// Changing roots or pins can pull memory from under live references: the
/// caller guarantees every root it loads maps the kernel as the boot root
/// does, and that nothing it unpins is still in use.
pub(crate) unsafe fn mmuext(ops: &[MmuextOp]) -> Result<(), XenError> {
    // SAFETY: the slice is live for the call; the effect is the caller's
    // guarantee above.
    check(unsafe {
        hypercall5(
            nr::MMUEXT_OP,
            ops.as_ptr() as u64,
            ops.len() as u64,
            0,
            xen::public::DOMID_SELF as u64,
            0,
        )
    })
    .map(drop)
}

/// `set_timer_op(deadline)`: one-shot VIRQ_TIMER at absolute system time
/// `deadline_ns`; 0 cancels.
pub fn set_timer_op(deadline_ns: u64) -> Result<(), XenError> {
    // SAFETY: takes a plain value.
    check(unsafe { hypercall5(nr::SET_TIMER_OP, deadline_ns, 0, 0, 0, 0) }).map(drop)
}

/// `sched_op(SCHEDOP_block)`: unmasks event upcalls and sleeps until an event
/// is pending (the upcall then runs before this returns).
pub fn sched_block() {
    // SAFETY: no arguments.
    unsafe { hypercall5(nr::SCHED_OP, schedop::BLOCK as u64, 0, 0, 0, 0) };
}

/// `vcpu_op(VCPUOP_stop_periodic_timer, 0)`.
pub fn stop_periodic_timer() -> Result<(), XenError> {
    // SAFETY: takes no argument structure.
    check(unsafe { hypercall5(nr::VCPU_OP, vcpuop::STOP_PERIODIC_TIMER as u64, 0, 0, 0, 0) })
        .map(drop)
}

/// `vcpu_op(VCPUOP_get_runstate_info, 0, &info)`: the Xen system time at
/// which vCPU 0 entered its current state (for a running vCPU: when it was
/// last scheduled in).
pub fn runstate_entry_time() -> Result<u64, XenError> {
    let mut info = xen::public::VcpuRunstateInfo::default();
    // SAFETY: `info` mirrors struct vcpu_runstate_info (size asserted in abi)
    // and lives on the stack for the call; Xen only writes it.
    check(unsafe {
        hypercall5(
            nr::VCPU_OP,
            vcpuop::GET_RUNSTATE_INFO as u64,
            0,
            &mut info as *mut xen::public::VcpuRunstateInfo as u64,
            0,
            0,
        )
    })?;
    Ok(info.state_entry_time)
}

/// `mmu_update(reqs, count, &done, DOMID_SELF)`: checked page-table writes.
///
/// # Safety
/// Changing page tables can pull memory from under live references: the
/// caller guarantees nothing borrows memory whose mapping changes.
pub unsafe fn mmu_update(reqs: &[MmuUpdate]) -> Result<(), XenError> {
    let mut done: u32 = 0;
    // SAFETY: `reqs` and `done` are live for the call; by the caller's guarantee above.
    check(unsafe {
        hypercall5(
            nr::MMU_UPDATE,
            reqs.as_ptr() as u64,
            reqs.len() as u64,
            &mut done as *mut u32 as u64,
            xen::public::DOMID_SELF as u64,
            0,
        )
    })?;
    if done as usize != reqs.len() {
        return Err(XenError(-22));
    }
    Ok(())
}

/// `grant_table_op(GNTTABOP_setup_table)` for this domain: the machine
/// frame of its first (only) grant-table frame.
pub(crate) fn gnttab_setup_one_frame() -> Result<u64, XenError> {
    let mut frame: u64 = 0;
    let mut arg = GnttabSetupTable {
        dom: xen::public::DOMID_SELF,
        nr_frames: 1,
        status: 0,
        frame_list: &mut frame,
    };
    // SAFETY: `arg` and the one-entry frame list are live for the call.
    check(unsafe {
        hypercall5(
            nr::GRANT_TABLE_OP,
            gnttab::OP_SETUP_TABLE as u64,
            &mut arg as *mut _ as u64,
            1,
            0,
            0,
        )
    })?;
    if arg.status != 0 {
        return Err(XenError(arg.status as i64));
    }
    Ok(frame)
}

/// `multicall(entries)`: runs a batch of hypercalls in one guest exit.
/// Returns the first failing entry's index and error, if any.
///
/// # Safety
/// Every entry must be a valid hypercall with valid arguments, as if made
/// on its own (see the wrapper of each hypercall used).
pub unsafe fn multicall(entries: &mut [MulticallEntry]) -> Result<(), (usize, XenError)> {
    // SAFETY: `entries` is live for the call; by the caller's guarantee above.
    check(unsafe {
        hypercall5(
            nr::MULTICALL,
            entries.as_mut_ptr() as u64,
            entries.len() as u64,
            0,
            0,
            0,
        )
    })
    .map_err(|e| (0, e))?;
    match entries.iter().position(|e| (e.result as i64) < 0) {
        Some(i) => Err((i, XenError(entries[i].result as i64))),
        None => Ok(()),
    }
}
