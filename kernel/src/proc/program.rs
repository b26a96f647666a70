//! Programs: finding one in the boot archive, checking its image, and
//! building the address space it starts in.
//!
//! The archive is the xl config's `ramdisk=` (cpio newc); every image in
//! it is hostile until `loader::plan` has checked it. A program's space
//! holds its segments (text read-only and executable, read-only data, data
//! and bss writable and never executable), one read-only page of arguments
//! at `abi::ARGS_ADDRESS`, and a stack of `abi::STACK_PAGES` pages below
//! `abi::STACK_TOP` with an unmapped guard page under it. It starts at the
//! image's entry with `rsp` 8 below the stack top, as if called.

use super::sched::{self, New};
use crate::mm::space::{self, PageFill};
use crate::status::{SysError, SysResult};
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use events::{EventId, Pid};
use hal::mm::Perms;
use log::{debug, warn};

/// Where images may place segments: below the arguments page.
const IMAGE_RANGE: core::ops::Range<u64> = abi::USER_START..abi::ARGS_ADDRESS;
/// The largest image a program may need in memory.
const MAX_IMAGE_BYTES: u64 = 8 << 20;

/// How to start a program.
pub struct Spawn<'a> {
    pub name: &'a str,
    /// The arguments after the name, NUL-separated.
    pub args: &'a [u8],
    pub rights: u32,
    /// The parent and its exit event.
    pub exit_event: Option<(Pid, EventId)>,
    /// The kernel context's loop that runs it (the system-call layer's).
    pub runner: fn(),
}

/// Names of the programs in the archive, for messages.
pub fn names() -> String {
    let mut out = String::new();
    if let Some(archive) = hal::mm::boot_module() {
        for entry in loader::entries(archive).flatten() {
            if entry.is_file() {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                out.push_str(core::str::from_utf8(entry.path()).unwrap_or("?"));
            }
        }
    }
    out
}

/// The argument page: the `Args` record, then `name\0arg\0...`.
fn args_page(pid: Pid, name: &str, args: &[u8]) -> SysResult<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(args);
    if bytes.last() != Some(&0) {
        bytes.push(0);
    }
    if bytes.len() > abi::MAX_ARGS_BYTES {
        return Err(SysError::TooLarge);
    }
    let argc = bytes.iter().filter(|&&b| b == 0).count() as u32;
    let record = abi::Args {
        pid: pid.0,
        argc,
        len: bytes.len() as u32,
        reserved: 0,
    };
    let mut page = Vec::with_capacity(16 + bytes.len());
    for word in [record.pid, record.argc, record.len, record.reserved] {
        page.extend_from_slice(&word.to_le_bytes());
    }
    page.extend_from_slice(&bytes);
    Ok(page)
}

/// Builds the program's pages (image, arguments, stack) in one batch.
fn load(pid: Pid, image: &[u8], plan: &loader::LoadPlan, args: &[u8]) -> SysResult<()> {
    let mut fills = Vec::new();
    for seg in plan.segments() {
        let perms = Perms {
            writable: seg.flags.writable,
            executable: seg.flags.executable,
        };
        for fill in seg.page_fills() {
            let bytes = image.get(fill.src.clone()).ok_or(SysError::BadProgram)?;
            fills.push(PageFill {
                va: fill.page,
                perms,
                offset: fill.offset_in_page,
                bytes,
            });
        }
    }
    fills.push(PageFill {
        va: abi::ARGS_ADDRESS,
        perms: Perms {
            writable: false,
            executable: false,
        },
        offset: 0,
        bytes: args,
    });
    for n in 1..=abi::STACK_PAGES {
        fills.push(PageFill {
            va: abi::STACK_TOP - n * abi::PAGE_SIZE,
            perms: Perms {
                writable: true,
                executable: false,
            },
            offset: 0,
            bytes: &[],
        });
    }
    space::map_new_pages(pid, &fills)
}

/// Starts a program: finds it, checks it, builds its space, and creates
/// its process (runnable at once). Nothing is left behind on failure.
pub fn spawn(s: Spawn) -> SysResult<Pid> {
    let archive = hal::mm::boot_module().ok_or(SysError::NoSuchProgram)?;
    let image = loader::find(archive, s.name).map_err(|e| {
        debug!("program {}: {e}", s.name);
        match e {
            loader::ArchiveError::NotFound => SysError::NoSuchProgram,
            _ => SysError::BadProgram,
        }
    })?;
    let limits = loader::Limits {
        max_segments: loader::MAX_SEGMENTS,
        max_bytes: MAX_IMAGE_BYTES,
    };
    let plan = loader::plan(image, IMAGE_RANGE, limits).map_err(|e| {
        warn!("program {} refused: {e}", s.name);
        SysError::BadProgram
    })?;
    sched::check_room()?;
    let pid = sched::reserve_pid();
    let args = args_page(pid, s.name, s.args)?;
    space::create(pid)?;
    if let Err(e) = load(pid, image, &plan, &args) {
        space::destroy(pid);
        return Err(e);
    }
    let new = New {
        name: Cow::Owned(String::from(s.name)),
        entry: s.runner,
        service: false,
        exit_event: s.exit_event,
        user_start: Some((plan.entry(), abi::STACK_TOP - 8)),
        rights: s.rights,
        stack_kib: sched::PROGRAM_STACK_KIB,
    };
    sched::spawn_process(new, Some(pid)).inspect_err(|_| {
        space::destroy(pid);
    })
}
