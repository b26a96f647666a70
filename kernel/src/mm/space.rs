//! Process address spaces, and the one path by which the kernel touches
//! user memory.
//!
//! Each user process has its own pinned roots (`hal::mm::AddressSpace`):
//! a user root with only its own pages, and a kernel root that adds the
//! kernel. The kernel keeps a record of every page it mapped for the
//! process, with its permissions, so a user pointer is checked against
//! the process's own mappings ([`super::range::check`]) before it is
//! copied, once, into kernel memory ([`copy_in`]) or out of it
//! ([`copy_out`]). Nothing else in the kernel reads or writes user memory.

use super::frames;
use super::range;
use crate::status::{SysError, SysResult};
use alloc::vec::Vec;
use events::Pid;
use hal::mm::{AddressSpace, Frame, Perms, SpaceError};
use spin::Mutex;
use vecmap::VecMap;

/// Most pages one process may have mapped (image, stack, arguments and
/// bound pages): 16 MiB.
pub const MAX_PAGES: usize = 4096;

struct Mapping {
    /// The frame, when this space owns it (image, stack, arguments); pages
    /// bound from a capability are owned by `pages` and only mapped here.
    frame: Option<Frame>,
    writable: bool,
}

struct Space {
    tables: AddressSpace,
    pages: VecMap<u64, Mapping>,
}

static SPACES: Mutex<VecMap<u32, Space>> = Mutex::new(VecMap::new());

fn space_error(e: SpaceError) -> SysError {
    match e {
        SpaceError::OutOfFrames => SysError::OutOfMemory,
        SpaceError::NotUser => SysError::BadAddress,
        SpaceError::Xen(e) => SysError::Hypervisor(e.0),
        // The loader's plan puts every page's bytes inside it.
        SpaceError::BadFill => SysError::BadProgram,
    }
}

/// Builds an empty address space for `pid`.
pub fn create(pid: Pid) -> SysResult<()> {
    let mut spaces = SPACES.lock();
    if spaces.contains_key(&pid.0) {
        return Err(SysError::InvalidArgument);
    }
    let tables = frames::with_pool(AddressSpace::new)
        .ok_or(SysError::OutOfMemory)?
        .map_err(space_error)?;
    spaces.insert(
        pid.0,
        Space {
            tables,
            pages: VecMap::new(),
        },
    );
    Ok(())
}

/// Whether `pid` runs in an address space of its own (a user program).
pub fn exists(pid: Pid) -> bool {
    SPACES.lock().contains_key(&pid.0)
}

fn with_space<R>(pid: Pid, f: impl FnOnce(&mut Space) -> SysResult<R>) -> SysResult<R> {
    let mut spaces = SPACES.lock();
    f(spaces.get_mut(&pid.0).ok_or(SysError::NoProcess)?)
}

fn map_frame(space: &mut Space, va: u64, frame: &Frame, perms: Perms) -> SysResult<()> {
    if space.pages.contains_key(&va) {
        return Err(SysError::BadAddress);
    }
    if space.pages.len() >= MAX_PAGES {
        return Err(SysError::OutOfMemory);
    }
    frames::with_pool(|pool| space.tables.map(pool, va, frame, perms))
        .ok_or(SysError::OutOfMemory)?
        .map_err(space_error)
}

/// A page for [`map_new_pages`]: at `va` with `perms`, holding `bytes` at
/// `offset` (zero elsewhere).
pub struct PageFill<'a> {
    pub va: u64,
    pub perms: Perms,
    pub offset: usize,
    pub bytes: &'a [u8],
}

/// Maps new pages for `pid` in one batch (`hal::mm::AddressSpace::
/// map_new_pages`: a few hypercalls whatever their number), each from a
/// fresh frame; a program's whole image, arguments and stack at spawn. On
/// failure the frames go back to the pool and nothing is recorded (the
/// space is destroyed by the caller).
pub fn map_new_pages(pid: Pid, fills: &[PageFill]) -> SysResult<()> {
    let mut frames = Vec::new();
    frames
        .try_reserve_exact(fills.len())
        .map_err(|_| SysError::OutOfMemory)?;
    let give_back = |frames: Vec<Frame>| frames.into_iter().for_each(frames::give_back);
    for _ in fills {
        match frames::with_pool(|p| p.take()).flatten() {
            Some(f) => frames.push(f),
            None => {
                give_back(frames);
                return Err(SysError::OutOfMemory);
            }
        }
    }
    let r = with_space(pid, |s| {
        if s.pages.len() + fills.len() > MAX_PAGES {
            return Err(SysError::OutOfMemory);
        }
        // Quadratic, but a batch is one program's pages, and this keeps
        // the image small (no sort or set code for it).
        let repeated = fills
            .iter()
            .enumerate()
            .any(|(i, f)| fills[..i].iter().any(|g| g.va == f.va));
        if repeated || fills.iter().any(|f| s.pages.contains_key(&f.va)) {
            return Err(SysError::BadAddress);
        }
        let pages: Vec<hal::mm::NewPage> = fills
            .iter()
            .zip(&frames)
            .map(|(f, frame)| hal::mm::NewPage {
                va: f.va,
                frame,
                perms: f.perms,
                offset: f.offset,
                bytes: f.bytes,
            })
            .collect();
        frames::with_pool(|pool| s.tables.map_new_pages(pool, &pages))
            .ok_or(SysError::OutOfMemory)?
            .map_err(space_error)
    });
    if let Err(e) = r {
        give_back(frames);
        return Err(e);
    }
    with_space(pid, |s| {
        for (f, frame) in fills.iter().zip(frames) {
            s.pages.insert(
                f.va,
                Mapping {
                    frame: Some(frame),
                    writable: f.perms.writable,
                },
            );
        }
        Ok(())
    })
}

/// Maps a page that `pages` owns (a bound capability) at `va`.
pub fn map_bound(pid: Pid, va: u64, frame: &Frame, writable: bool) -> SysResult<()> {
    if !(abi::HEAP_START..abi::HEAP_END).contains(&va) {
        return Err(SysError::BadAddress);
    }
    with_space(pid, |s| {
        let perms = Perms {
            writable,
            executable: false,
        };
        map_frame(s, va, frame, perms)?;
        s.pages.insert(
            va,
            Mapping {
                frame: None,
                writable,
            },
        );
        Ok(())
    })
}

/// Unmaps pages that `pages` owns (bound capabilities); the TLB is flushed.
pub fn unmap_bound(pid: Pid, vas: &[u64]) -> SysResult<()> {
    with_space(pid, |s| {
        let mine: Vec<u64> = vas
            .iter()
            .copied()
            .filter(|va| s.pages.get(va).is_some_and(|m| m.frame.is_none()))
            .collect();
        s.tables.unmap(&mine).map_err(space_error)?;
        for va in mine {
            s.pages.remove(&va);
        }
        Ok(())
    })
}

/// Loads `pid`'s roots; the kernel then reaches its pages at their user
/// addresses.
pub fn activate(pid: Pid) -> SysResult<()> {
    with_space(pid, |s| {
        s.tables.activate().map_err(|e| SysError::Hypervisor(e.0))
    })
}

/// Ends `pid`'s address space: its tables and the pages it owns return to
/// the pool. Returns how many frames came back.
pub fn destroy(pid: Pid) -> usize {
    let Some(space) = SPACES.lock().remove(&pid.0) else {
        return 0;
    };
    let mut returned = space.tables.table_frames();
    if let Some(Err(e)) = frames::with_pool(|pool| space.tables.destroy(pool)) {
        // The tables stay typed with Xen: their frames are lost to the
        // pool rather than reused as something else.
        log::warn!("tearing down the address space of pid {}: {e}", pid.0);
        returned = 0;
    }
    for m in space.pages.into_values() {
        if let Some(frame) = m.frame {
            frames::give_back(frame);
            returned += 1;
        }
    }
    returned
}

/// Checks a user range of `pid` against its mappings (see
/// [`range::check`]).
pub fn check(pid: Pid, va: u64, len: usize, write: bool) -> SysResult<()> {
    with_space(pid, |s| {
        range::check(va, len, write, abi::MAX_BUFFER, |page| {
            s.pages.get(&page).map(|m| m.writable)
        })
        .map(drop)
    })
}

/// Copies `len` bytes from `pid`'s memory at `va` into a kernel buffer,
/// once: the one way in. `pid`'s space must be the one loaded (the
/// process is the caller).
pub fn copy_in(pid: Pid, va: u64, len: usize) -> SysResult<Vec<u8>> {
    check(pid, va, len, false)?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| SysError::OutOfMemory)?;
    buf.resize(len, 0);
    hal::mm::copy_from_user(va, &mut buf).map_err(|_| SysError::BadAddress)?;
    Ok(buf)
}

/// Copies `data` into `pid`'s memory at `va` (writable pages only): the
/// one way out.
pub fn copy_out(pid: Pid, va: u64, data: &[u8]) -> SysResult<()> {
    check(pid, va, data.len(), true)?;
    hal::mm::copy_to_user(va, data).map_err(|_| SysError::BadAddress)
}

/// (address spaces, page-table frames, pages mapped) over all processes.
pub fn usage() -> (usize, usize, usize) {
    let spaces = SPACES.lock();
    (
        spaces.len(),
        spaces.values().map(|s| s.tables.table_frames()).sum(),
        spaces.values().map(|s| s.pages.len()).sum(),
    )
}
