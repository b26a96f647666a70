//! The slice of Xen's public ABI (x86_64 PV) this kernel uses.
//!
//! Written from Xen's canonical headers (`xen/xen.h`, `xen/arch-x86/xen.h`,
//! `xen/arch-x86/xen-x86_64.h`, `xen/io/console.h`, `xen/sched.h`,
//! `xen/version.h`, `xen/event_channel.h`). Each structure's size and the
//! offsets we rely on are pinned by compile-time assertions, so a mistake here
//! fails the build instead of corrupting memory at run time.
//!
//! The `xen-sys` crate has these too, but its hypercall wrappers pass the fifth
//! argument in the wrong register and it exports unmangled symbols, so the
//! kernel keeps its own small, checked copy.

use core::mem::{offset_of, size_of};

/// Hypercall numbers (`xen/xen.h`, `__HYPERVISOR_*`).
pub mod hypercall {
    pub const SET_TRAP_TABLE: usize = 0;
    pub const MMU_UPDATE: usize = 1;
    pub const STACK_SWITCH: usize = 3;
    pub const GRANT_TABLE_OP: usize = 20;
    pub const MULTICALL: usize = 13;
    pub const MMUEXT_OP: usize = 26;
    pub const MEMORY_OP: usize = 12;
    pub const SET_TIMER_OP: usize = 15;
    pub const UPDATE_VA_MAPPING: usize = 14;
    pub const XEN_VERSION: usize = 17;
    pub const IRET: usize = 23;
    pub const VCPU_OP: usize = 24;
    pub const SCHED_OP: usize = 29;
    pub const CALLBACK_OP: usize = 30;
    pub const EVENT_CHANNEL_OP: usize = 32;
}

/// `SCHEDOP_*` commands (`xen/sched.h`).
pub mod schedop {
    pub const YIELD: u32 = 0;
    pub const BLOCK: u32 = 1;
    pub const SHUTDOWN: u32 = 2;
    pub const POLL: u32 = 3;
}

/// `VCPUOP_*` commands (`xen/vcpu.h`).
pub mod vcpuop {
    /// Turns off the default periodic timer tick (100 Hz), so an idle guest
    /// is woken only by the deadlines it sets.
    pub const STOP_PERIODIC_TIMER: u32 = 7;
    /// Copies out `struct vcpu_runstate_info` (the kernel's fallback clock).
    pub const GET_RUNSTATE_INFO: u32 = 4;
}

/// `struct vcpu_runstate_info` (`xen/vcpu.h`): the vCPU's scheduling state
/// and the Xen system time (ns) at which it entered that state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuRunstateInfo {
    pub state: i32,
    pub state_entry_time: u64,
    pub time: [u64; 4],
}
const _: () = assert!(core::mem::size_of::<VcpuRunstateInfo>() == 48);

/// `SHUTDOWN_*` reasons (`xen/sched.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ShutdownReason {
    Poweroff = 0,
    Reboot = 1,
    Suspend = 2,
    Crash = 3,
}

/// `XENVER_*` commands (`xen/version.h`).
pub mod xenver {
    pub const VERSION: u32 = 0;
    pub const EXTRAVERSION: u32 = 1;
    /// `xen_extraversion_t` is `char[16]`.
    pub const EXTRAVERSION_LEN: usize = 16;
}

/// `EVTCHNOP_*` commands (`xen/event_channel.h`).
pub mod evtchnop {
    pub const BIND_INTERDOMAIN: u32 = 0;
    pub const BIND_VIRQ: u32 = 1;
    pub const CLOSE: u32 = 3;
    pub const SEND: u32 = 4;
    pub const ALLOC_UNBOUND: u32 = 6;
    pub const UNMASK: u32 = 9;
}

/// Virtual IRQs (`VIRQ_*`, `xen/xen.h`).
pub mod virq {
    /// Timebase update and the one-shot timer set by `set_timer_op`.
    pub const TIMER: u32 = 0;
}

/// Number of event-channel ports the 2-level ABI has on x86_64 (64 x 64).
pub const EVTCHN_2L_NR_PORTS: u32 = 4096;

/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;

/// `struct evtchn_alloc_unbound`: a port that `remote_dom` may bind to.
#[repr(C)]
pub struct EvtchnAllocUnbound {
    pub dom: u16,
    pub remote_dom: u16,
    /// Out: the new local port.
    pub port: u32,
}

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
pub struct EvtchnBindInterdomain {
    pub remote_dom: u16,
    pub remote_port: u32,
    /// Out: the new local port.
    pub local_port: u32,
}

/// `struct evtchn_bind_virq`.
#[repr(C)]
pub struct EvtchnBindVirq {
    pub virq: u32,
    pub vcpu: u32,
    /// Out: the new local port.
    pub port: u32,
}

/// `struct evtchn_close`, `struct evtchn_unmask`: a port alone.
#[repr(C)]
pub struct EvtchnPort {
    pub port: u32,
}

const _: () = {
    assert!(size_of::<EvtchnAllocUnbound>() == 8);
    assert!(offset_of!(EvtchnBindInterdomain, remote_port) == 4);
    assert!(size_of::<EvtchnBindInterdomain>() == 12);
    assert!(size_of::<EvtchnBindVirq>() == 12);
};

/// `CALLBACKOP_*` and `CALLBACKTYPE_*` (`xen/callback.h`).
pub mod callback {
    pub const OP_REGISTER: u32 = 0;
    pub const TYPE_EVENT: u16 = 0;
    pub const TYPE_FAILSAFE: u16 = 1;
    /// A 64-bit user `syscall` instruction (`CALLBACKTYPE_syscall`).
    pub const TYPE_SYSCALL: u16 = 2;
    /// Xen masks event upcalls while the callback runs.
    pub const FLAG_MASK_EVENTS: u16 = 1;
}

/// `struct callback_register`.
#[repr(C)]
pub struct CallbackRegister {
    pub kind: u16,
    pub flags: u16,
    pub address: u64,
}

const _: () = assert!(size_of::<CallbackRegister>() == 16);

/// `UVMF_*` flags for `update_va_mapping`.
pub mod uvmf {
    /// Flush the one TLB entry of the address being changed.
    pub const INVLPG: u64 = 2;
}

/// Page-table entry bits (x86).
pub mod pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITABLE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    /// No instruction fetch from the page (EFER.NXE, which Xen sets).
    pub const NX: u64 = 1 << 63;
}

pub const PAGE_SIZE: usize = 4096;
pub const PAGE_SHIFT: u32 = 12;

/// Ring-3 flat code selector; a 64-bit PV kernel runs in ring 3 (`FLAT_KERNEL_CS`).
pub const FLAT_KERNEL_CS: u16 = 0xe033;
/// The flat stack selector of the kernel (`FLAT_KERNEL_SS`).
pub const FLAT_KERNEL_SS: u16 = 0xe02b;
/// User mode's code selector: the same as the kernel's; Xen tells the two
/// modes apart by a flag of its own, and `cs & 3 == 3` in a bounce frame
/// means the frame interrupted user mode.
pub const FLAT_USER_CS: u16 = 0xe033;
/// User mode's stack selector.
pub const FLAT_USER_SS: u16 = 0xe02b;

/// Read-only machine-to-physical table Xen maps into every 64-bit PV guest.
pub const MACH2PHYS_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// `MACH2PHYS_VIRT_END`: entries past it do not exist.
pub const MACH2PHYS_VIRT_END: u64 = 0xFFFF_8040_0000_0000;

/// What `start_info.magic` starts with for a 64-bit PV guest.
pub const START_INFO_MAGIC_PREFIX: &[u8] = b"xen-3.0-x86_64";

/// `struct start_info` (`xen/xen.h`), the page Xen hands over at entry.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StartInfo {
    pub magic: [u8; 32],
    pub nr_pages: u64,
    /// Machine address of the shared-info page.
    pub shared_info: u64,
    pub flags: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    /// For a domU: console ring mfn (u64) then its event channel (u32).
    pub console_mfn: u64,
    pub console_evtchn: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    pub first_p2m_pfn: u64,
    pub nr_p2m_frames: u64,
}

/// `SIF_MOD_START_PFN`: `mod_start` is a pfn, not a virtual address (only
/// for kernels that ask for it with an ELF note; this one does not).
pub const SIF_MOD_START_PFN: u32 = 1 << 3;

/// `MAX_GUEST_CMDLINE` in `xen/xen.h`.
pub const MAX_GUEST_CMDLINE: usize = 1024;

const _: () = {
    assert!(offset_of!(StartInfo, nr_pages) == 32);
    assert!(offset_of!(StartInfo, shared_info) == 40);
    assert!(offset_of!(StartInfo, flags) == 48);
    assert!(offset_of!(StartInfo, store_mfn) == 56);
    assert!(offset_of!(StartInfo, store_evtchn) == 64);
    assert!(offset_of!(StartInfo, console_mfn) == 72);
    assert!(offset_of!(StartInfo, console_evtchn) == 80);
    assert!(offset_of!(StartInfo, pt_base) == 88);
    assert!(offset_of!(StartInfo, mfn_list) == 104);
    assert!(offset_of!(StartInfo, cmd_line) == 128);
    assert!(offset_of!(StartInfo, first_p2m_pfn) == 1152);
    assert!(size_of::<StartInfo>() == 1168);
};

/// `struct vcpu_time_info` (`xen/xen.h`): Xen system time, published per vCPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuTimeInfo {
    /// Odd while Xen updates the record (see `time::read_consistent`).
    pub version: u32,
    pub pad0: u32,
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    pub flags: u8,
    pub pad1: [u8; 2],
}

const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);

/// Offsets inside `struct vcpu_info` (64 bytes, `xen/xen.h`).
pub mod vcpu_info {
    pub const SIZE: usize = 64;
    pub const UPCALL_PENDING: usize = 0;
    pub const UPCALL_MASK: usize = 1;
    pub const PENDING_SEL: usize = 8;
    /// `arch.cr2`: Xen stores the faulting address here for a PV guest.
    pub const ARCH_CR2: usize = 16;
    pub const TIME: usize = 32;
}

/// Offsets inside `struct shared_info` (`xen/xen.h`, x86_64).
pub mod shared_info {
    /// `XEN_LEGACY_MAX_VCPUS` vcpu_info records come first.
    pub const VCPU_INFO: usize = 0;
    pub const EVTCHN_PENDING: usize = 32 * super::vcpu_info::SIZE;
    pub const EVTCHN_MASK: usize = EVTCHN_PENDING + 64 * 8;
    pub const WC_VERSION: usize = EVTCHN_MASK + 64 * 8;
    pub const WC_SEC: usize = WC_VERSION + 4;
    pub const WC_NSEC: usize = WC_SEC + 4;
    pub const WC_SEC_HI: usize = WC_NSEC + 4;
    /// `struct arch_shared_info` (x86_64): what the toolstack reads to save
    /// the domain. `max_pfn` is the size of the P2M list; with `p2m_cr3`
    /// non-zero, the list is virtually mapped at `p2m_vaddr` under that
    /// root (the toolstack walks the tables to find it), and
    /// `p2m_generation` changes while the guest changes the list.
    pub const ARCH_MAX_PFN: usize = WC_SEC_HI + 4;
    pub const ARCH_FRAME_LIST_LIST: usize = ARCH_MAX_PFN + 8;
    pub const ARCH_P2M_CR3: usize = ARCH_MAX_PFN + 24;
    pub const ARCH_P2M_VADDR: usize = ARCH_MAX_PFN + 32;
    pub const ARCH_P2M_GENERATION: usize = ARCH_MAX_PFN + 40;
}

const _: () = assert!(shared_info::WC_VERSION == 3072);
const _: () = assert!(shared_info::ARCH_MAX_PFN == 3088);

/// `struct trap_info` (`xen/arch-x86/xen.h`): one virtual IDT entry.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapInfo {
    pub vector: u8,
    /// Bits 0-1: privilege level allowed to raise it with `int`; bit 2: mask events on entry.
    pub flags: u8,
    pub cs: u16,
    /// Handler address; an entry with address 0 ends the table.
    pub address: u64,
}

const _: () = assert!(size_of::<TrapInfo>() == 16);

/// `struct sched_shutdown`.
#[repr(C)]
pub struct SchedShutdown {
    pub reason: u32,
}

/// `struct sched_poll`: wait for one of `ports` to become pending, or `timeout`.
#[repr(C)]
pub struct SchedPoll {
    pub ports: *const u32,
    pub nr_ports: u32,
    /// Absolute Xen system time in ns; 0 waits without a deadline.
    pub timeout: u64,
}

const _: () = {
    assert!(size_of::<SchedPoll>() == 24);
    assert!(offset_of!(SchedPoll, timeout) == 16);
};

/// `struct evtchn_send`.
#[repr(C)]
pub struct EvtchnSend {
    pub port: u32,
}

/// Layout of `struct xencons_interface` (`xen/io/console.h`).
pub mod console {
    pub const IN_SIZE: usize = 1024;
    pub const OUT: usize = 1024;
    pub const OUT_SIZE: usize = 2048;
    pub const IN_CONS: usize = 3072;
    pub const IN_PROD: usize = 3076;
    pub const OUT_CONS: usize = 3080;
    pub const OUT_PROD: usize = 3084;
}

/// `struct mmu_update`: `*ptr = val`, checked by Xen; `ptr` is the machine
/// address of a page-table entry with the command in its low bits.
#[repr(C)]
pub struct MmuUpdate {
    pub ptr: u64,
    pub val: u64,
}

/// `MMU_NORMAL_PT_UPDATE`.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;

/// Grant tables, version 1 (`xen/grant_table.h`).
pub mod gnttab {
    pub const OP_SETUP_TABLE: u32 = 2;
    /// Size of `struct grant_entry_v1`: flags u16, domid u16, frame u32.
    pub const ENTRY_SIZE: usize = 8;
    pub const ENTRY_FLAGS: usize = 0;
    pub const ENTRY_DOMID: usize = 2;
    pub const ENTRY_FRAME: usize = 4;
    /// Entries 0..8 are reserved for the toolstack (console, xenstore).
    pub const FIRST_FREE_REF: u32 = 8;
    pub const GTF_PERMIT_ACCESS: u16 = 1 << 0;
    pub const GTF_READONLY: u16 = 1 << 2;
    /// Set by Xen while the peer has the page mapped for reading / writing.
    pub const GTF_READING: u16 = 1 << 3;
    pub const GTF_WRITING: u16 = 1 << 4;
}

/// `struct gnttab_setup_table`.
#[repr(C)]
pub struct GnttabSetupTable {
    pub dom: u16,
    pub nr_frames: u32,
    /// Out: `GNTST_*` (0 is okay).
    pub status: i16,
    /// Out: the table's machine frames.
    pub frame_list: *mut u64,
}

const _: () = {
    assert!(size_of::<MmuUpdate>() == 16);
    assert!(offset_of!(GnttabSetupTable, status) == 8);
    assert!(offset_of!(GnttabSetupTable, frame_list) == 16);
};

/// `struct multicall_entry`: one hypercall of a batch.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MulticallEntry {
    pub op: u64,
    /// Out: the hypercall's return value.
    pub result: u64,
    pub args: [u64; 6],
}

const _: () = assert!(size_of::<MulticallEntry>() == 64);

/// `struct mmuext_op`: extended MMU commands (TLB flushes, pinning).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MmuextOp {
    pub cmd: u32,
    /// `mfn` or `linear_addr`, by command.
    pub arg1: u64,
    /// `nr_ents` or a vCPU mask pointer, by command.
    pub arg2: u64,
}

/// `MMUEXT_TLB_FLUSH_LOCAL`: flush this vCPU's whole TLB.
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
/// `MMUEXT_PIN_L4_TABLE`: validate and type a root, and keep it typed.
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
/// `MMUEXT_UNPIN_TABLE`.
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
/// `MMUEXT_NEW_BASEPTR`: the kernel root, loaded now.
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
/// `MMUEXT_NEW_USER_BASEPTR`: the user root, loaded at the next entry to
/// user mode (mfn 0 clears it).
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
/// `MMUEXT_CLEAR_PAGE`: Xen zeroes frame `arg1` (one of the domain's,
/// not a page table).
pub const MMUEXT_CLEAR_PAGE: u32 = 16;
/// `MMUEXT_COPY_PAGE`: Xen copies frame `arg2` into frame `arg1`.
pub const MMUEXT_COPY_PAGE: u32 = 17;

const _: () = {
    assert!(size_of::<MmuextOp>() == 24);
    assert!(offset_of!(MmuextOp, arg1) == 8);
};

/// `XENMEM_*` commands of `memory_op` (`xen/memory.h`).
pub mod xenmem {
    pub const INCREASE_RESERVATION: u64 = 0;
    pub const DECREASE_RESERVATION: u64 = 1;
}

/// `struct xen_memory_reservation`: `nr_extents` frames of order
/// `extent_order` for `domid`, listed (by mfn to give back, or filled in
/// with the mfns Xen gives) at `extent_start`.
#[repr(C)]
pub struct MemoryReservation {
    pub extent_start: u64,
    pub nr_extents: u64,
    pub extent_order: u32,
    pub mem_flags: u32,
    pub domid: u16,
}

const _: () = {
    assert!(offset_of!(MemoryReservation, nr_extents) == 8);
    assert!(offset_of!(MemoryReservation, extent_order) == 16);
    assert!(offset_of!(MemoryReservation, domid) == 24);
    assert!(size_of::<MemoryReservation>() == 32);
};

/// `MMU_MACHPHYS_UPDATE`: an `mmu_update` that sets the M2P entry of the
/// frame in `ptr` to the pfn in `val`.
pub const MMU_MACHPHYS_UPDATE: u64 = 1;

/// A P2M entry for a pfn with no frame behind it (given back to Xen).
pub const INVALID_MFN: u64 = !0;
