//! `/dev/xen/gntdev`: map into dom0 a page that another domain granted to it.
//!
//! This is the one small room of the crate where `unsafe` lives for grant
//! mappings: the `#[repr(C)]` mirrors of Xen's `sys/gntdev.h`, the ioctls, and
//! the `mmap` of the granted page. Everything above it works with owned
//! `Vec<u8>` copies.
//!
//! The granted page is **hostile memory**: the granting domain can write it at
//! any time. No Rust reference into it is ever formed; bytes are read and
//! written one at a time with volatile accesses through a raw pointer, and a
//! read copies into private memory once.
//!
//! Life cycle, each step undone by RAII so that no error path leaks:
//! 1. `open` the device ([`Gntdev::open`]);
//! 2. `IOCTL_GNTDEV_MAP_GRANT_REF` reserves the grant in the device and returns
//!    the file offset (`index`) to `mmap` ([`GrantHandle`] unmaps it on drop);
//! 3. `mmap` of one page at that offset; a mapping without `PROT_WRITE` makes
//!    the kernel map the grant read-only (`GNTMAP_readonly`), which is what a
//!    read-only grant from the guest requires;
//! 4. dropping the [`GrantMapping`] `munmap`s and then issues
//!    `IOCTL_GNTDEV_UNMAP_GRANT_REF`; [`GrantMapping::unmap`] does the same but
//!    reports a failure instead of logging it.

use std::ffi::c_void;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

/// Where Linux puts the grant-mapping device.
pub const DEFAULT_PATH: &str = "/dev/xen/gntdev";

/// Size of one grant (Xen's page size on x86, independent of Linux's).
pub const GRANT_PAGE_SIZE: usize = 4096;

// The Linux `_IOC` encoding (include/uapi/asm-generic/ioctl.h, used by x86):
// bits 0..8 nr, 8..16 type, 16..30 size, 30..32 direction.
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = 8;
const IOC_SIZESHIFT: u32 = 16;
const IOC_DIRSHIFT: u32 = 30;
const IOC_SIZEBITS: u32 = 14;

/// `_IOC_NONE`: gntdev's ioctls all use it, whatever they copy.
pub const IOC_NONE: u32 = 0;

/// Linux's `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(dir < 4, "ioctl direction has 2 bits");
    assert!(size < (1 << IOC_SIZEBITS), "ioctl size has 14 bits");
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `struct ioctl_gntdev_grant_ref`: one grant to map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoctlGntdevGrantRef {
    /// The domain that granted the page.
    pub domid: u32,
    /// Its grant reference (`ref` in C).
    pub gref: u32,
}

/// `struct ioctl_gntdev_map_grant_ref` with `count == 1` (the C struct's
/// trailing `refs[1]` array is exactly one element long).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoctlGntdevMapGrantRef {
    /// IN: number of grants in `refs`.
    pub count: u32,
    /// Padding, zero.
    pub pad: u32,
    /// OUT: the offset to give `mmap`.
    pub index: u64,
    /// IN: the grants.
    pub refs: [IoctlGntdevGrantRef; 1],
}

/// `struct ioctl_gntdev_unmap_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoctlGntdevUnmapGrantRef {
    /// IN: the offset the map ioctl returned.
    pub index: u64,
    /// IN: number of pages to unmap.
    pub count: u32,
    /// Padding, zero.
    pub pad: u32,
}

/// `IOCTL_GNTDEV_MAP_GRANT_REF`:
/// `_IOC(_IOC_NONE, 'G', 0, sizeof(struct ioctl_gntdev_map_grant_ref))`.
pub const IOCTL_GNTDEV_MAP_GRANT_REF: u32 =
    ioc(IOC_NONE, b'G', 0, size_of::<IoctlGntdevMapGrantRef>());

/// `IOCTL_GNTDEV_UNMAP_GRANT_REF`:
/// `_IOC(_IOC_NONE, 'G', 1, sizeof(struct ioctl_gntdev_unmap_grant_ref))`.
pub const IOCTL_GNTDEV_UNMAP_GRANT_REF: u32 =
    ioc(IOC_NONE, b'G', 1, size_of::<IoctlGntdevUnmapGrantRef>());

// The layouts sys/gntdev.h gives on x86_64 (checked against gcc, see tests).
const _: () = assert!(size_of::<IoctlGntdevGrantRef>() == 8);
const _: () = assert!(size_of::<IoctlGntdevMapGrantRef>() == 24);
const _: () = assert!(size_of::<IoctlGntdevUnmapGrantRef>() == 16);

/// The step of the map/unmap sequence that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Opening the device.
    Open,
    /// `IOCTL_GNTDEV_MAP_GRANT_REF`.
    MapIoctl,
    /// `mmap` of the granted page.
    Mmap,
    /// `munmap` of the granted page.
    Munmap,
    /// `IOCTL_GNTDEV_UNMAP_GRANT_REF`.
    UnmapIoctl,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Open => "open",
            Step::MapIoctl => "map ioctl",
            Step::Mmap => "mmap",
            Step::Munmap => "munmap",
            Step::UnmapIoctl => "unmap ioctl",
        })
    }
}

/// What can go wrong with a grant mapping.
#[derive(Debug)]
pub enum GntdevError {
    /// A system call failed; `what` names its object.
    Os {
        /// Which step.
        step: Step,
        /// The device path or the grant, for the message.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// The byte range does not lie inside the granted page.
    OutOfPage {
        /// First byte asked for.
        offset: usize,
        /// Number of bytes asked for.
        len: usize,
    },
    /// A write to a mapping made read-only.
    ReadOnly,
}

impl GntdevError {
    /// The failed step, for an OS error.
    #[cfg(test)]
    pub fn step(&self) -> Option<Step> {
        match self {
            GntdevError::Os { step, .. } => Some(*step),
            _ => None,
        }
    }

    fn last_os(step: Step, what: String) -> Self {
        GntdevError::Os {
            step,
            what,
            source: io::Error::last_os_error(),
        }
    }
}

impl fmt::Display for GntdevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GntdevError::Os { step, what, source } => {
                write!(f, "{step} failed ({what}): {source}")
            }
            GntdevError::OutOfPage { offset, len } => write!(
                f,
                "bytes {offset}..{offset}+{len} lie outside the {GRANT_PAGE_SIZE}-byte grant"
            ),
            GntdevError::ReadOnly => f.write_str("write to a read-only grant mapping"),
        }
    }
}

impl std::error::Error for GntdevError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GntdevError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How dom0 maps the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `PROT_READ`: the kernel maps the grant with `GNTMAP_readonly`.
    ReadOnly,
    /// `PROT_READ | PROT_WRITE`: needs a grant the guest made writable.
    ReadWrite,
}

/// An open `/dev/xen/gntdev`.
#[derive(Debug)]
pub struct Gntdev {
    file: File,
}

impl Gntdev {
    /// Opens the device (read-write, close-on-exec).
    pub fn open(path: &Path) -> Result<Self, GntdevError> {
        // std opens with O_CLOEXEC.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| GntdevError::Os {
                step: Step::Open,
                what: path.display().to_string(),
                source,
            })?;
        Ok(Gntdev { file })
    }

    /// `IOCTL_GNTDEV_UNMAP_GRANT_REF`: releases `count` grants reserved at
    /// `index` by a map ioctl (after their pages were `munmap`ed).
    fn unmap_refs(&self, index: u64, count: u32) -> Result<(), GntdevError> {
        let mut op = IoctlGntdevUnmapGrantRef {
            index,
            count,
            pad: 0,
        };
        // SAFETY: the fd is this open gntdev; the request is
        // `IOCTL_GNTDEV_UNMAP_GRANT_REF`, whose argument is a pointer to a
        // `struct ioctl_gntdev_unmap_grant_ref`, mirrored by `op` (layout
        // pinned in tests), alive on the stack for the call. A wrong index
        // or count only makes the kernel refuse (EINVAL).
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                IOCTL_GNTDEV_UNMAP_GRANT_REF as libc::Ioctl,
                &mut op as *mut IoctlGntdevUnmapGrantRef,
            )
        };
        if rc != 0 {
            return Err(GntdevError::last_os(
                Step::UnmapIoctl,
                format!("index={index:#x} count={count}"),
            ));
        }
        Ok(())
    }

    /// Maps grant `gref` of domain `domid` into this process.
    pub fn map_grant(
        &self,
        domid: u16,
        gref: u32,
        access: Access,
    ) -> Result<GrantMapping<'_>, GntdevError> {
        let what = format!("domid={domid} gref={gref}");
        let mut op = IoctlGntdevMapGrantRef {
            count: 1,
            pad: 0,
            index: 0,
            refs: [IoctlGntdevGrantRef {
                domid: u32::from(domid),
                gref,
            }],
        };
        // SAFETY: the fd is an open file owned by `self`; the request number is
        // `IOCTL_GNTDEV_MAP_GRANT_REF`, whose argument is a pointer to a
        // `struct ioctl_gntdev_map_grant_ref` with `count` grants: `op` mirrors
        // it (layout pinned in tests) with count 1 and one grant, and lives on
        // the stack for the whole call. On a file that is not gntdev the
        // kernel does not touch `op` and fails with ENOTTY.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                IOCTL_GNTDEV_MAP_GRANT_REF as libc::Ioctl,
                &mut op as *mut IoctlGntdevMapGrantRef,
            )
        };
        if rc != 0 {
            return Err(GntdevError::last_os(Step::MapIoctl, what));
        }
        // From here on the handle undoes the map ioctl on every path.
        let handle = GrantHandle {
            dev: self,
            index: op.index,
            live: true,
        };
        let offset = libc::off_t::try_from(op.index).map_err(|_| GntdevError::Os {
            step: Step::Mmap,
            what: format!("{what} index={:#x}", op.index),
            source: io::Error::from_raw_os_error(libc::EOVERFLOW),
        })?;
        let prot = match access {
            Access::ReadOnly => libc::PROT_READ,
            Access::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        };
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL, no
        // MAP_FIXED), so no existing memory is replaced; fd and offset are the
        // gntdev file and the index its map ioctl returned for one page. The
        // result is checked against MAP_FAILED below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                GRANT_PAGE_SIZE,
                prot,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                offset,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(GntdevError::last_os(Step::Mmap, what));
        }
        let Some(addr) = NonNull::new(addr.cast::<u8>()) else {
            // The kernel placed the page at address 0 (only possible with
            // vm.mmap_min_addr = 0). NonNull cannot hold it: undo and fail.
            // SAFETY: unmaps exactly the page this call just mapped there.
            unsafe { libc::munmap(std::ptr::null_mut(), GRANT_PAGE_SIZE) };
            return Err(GntdevError::Os {
                step: Step::Mmap,
                what,
                source: io::Error::from_raw_os_error(libc::EFAULT),
            });
        };
        Ok(GrantMapping {
            handle,
            addr,
            mapped: true,
            access,
            domid,
            gref,
        })
    }
}

/// A grant reserved by `IOCTL_GNTDEV_MAP_GRANT_REF`; dropping it issues
/// `IOCTL_GNTDEV_UNMAP_GRANT_REF`.
#[derive(Debug)]
struct GrantHandle<'a> {
    dev: &'a Gntdev,
    index: u64,
    live: bool,
}

impl GrantHandle<'_> {
    /// Unmaps once; later calls do nothing.
    fn unmap(&mut self) -> Result<(), GntdevError> {
        if !self.live {
            return Ok(());
        }
        self.live = false;
        self.dev.unmap_refs(self.index, 1)
    }
}

impl Drop for GrantHandle<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.unmap() {
            log::warn!("gntdev: {e}");
        }
    }
}

/// One granted page mapped into this process. Dropping it unmaps the page and
/// releases the grant.
#[derive(Debug)]
pub struct GrantMapping<'a> {
    handle: GrantHandle<'a>,
    /// Start of the page; valid for `GRANT_PAGE_SIZE` bytes while `mapped`.
    /// Never turned into a reference: the other domain writes there.
    addr: NonNull<u8>,
    mapped: bool,
    access: Access,
    domid: u16,
    gref: u32,
}

impl GrantMapping<'_> {
    /// Copies `len` bytes from `offset` of the page into private memory,
    /// once, byte by byte with volatile reads.
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>, GntdevError> {
        check_range(offset, len)?;
        let mut out = Vec::with_capacity(len);
        for i in offset..offset + len {
            // SAFETY: `mapped` is true for every `&self` (only `release`, run
            // from the consuming `unmap` or from `drop`, clears it), so `addr`
            // points at a live readable mapping of GRANT_PAGE_SIZE bytes, and
            // `i < GRANT_PAGE_SIZE` by `check_range`. A volatile read of a
            // `u8` forms no reference, and each byte is read exactly once,
            // whatever the other domain writes meanwhile.
            out.push(unsafe { self.addr.as_ptr().add(i).read_volatile() });
        }
        Ok(out)
    }

    /// Writes `bytes` at `offset` of the page, byte by byte with volatile
    /// writes. Needs [`Access::ReadWrite`].
    pub fn write(&self, offset: usize, bytes: &[u8]) -> Result<(), GntdevError> {
        check_range(offset, bytes.len())?;
        if self.access != Access::ReadWrite {
            return Err(GntdevError::ReadOnly);
        }
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: as in `read`, the page is mapped for GRANT_PAGE_SIZE
            // bytes and `offset + i < GRANT_PAGE_SIZE` by `check_range`; it
            // was mapped with PROT_WRITE (checked just above). A volatile
            // `u8` write forms no reference.
            unsafe { self.addr.as_ptr().add(offset + i).write_volatile(b) };
        }
        Ok(())
    }

    /// Unmaps the page and releases the grant, reporting the first failure
    /// (both steps are attempted).
    pub fn unmap(mut self) -> Result<(), GntdevError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), GntdevError> {
        let mut first = Ok(());
        if self.mapped {
            self.mapped = false;
            // SAFETY: `addr` is the start of the one-page mapping `map_grant`
            // made, still mapped (`mapped` was true and is now cleared, so
            // it is never touched again). No reference into it exists: all
            // accesses were by volatile raw-pointer reads and writes.
            let rc = unsafe { libc::munmap(self.addr.as_ptr().cast::<c_void>(), GRANT_PAGE_SIZE) };
            if rc != 0 {
                first = Err(GntdevError::last_os(
                    Step::Munmap,
                    format!("domid={} gref={}", self.domid, self.gref),
                ));
            }
        }
        let unmapped = self.handle.unmap();
        first.and(unmapped)
    }
}

impl Drop for GrantMapping<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            log::warn!("gntdev: {e}");
        }
    }
}

/// `struct ioctl_gntdev_unmap_notify`: what the kernel does when a mapping
/// goes away, however it goes (munmap, or this process dying).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoctlGntdevUnmapNotify {
    /// IN: the mmap offset of the byte to clear (map index + byte offset).
    pub index: u64,
    /// IN: `UNMAP_NOTIFY_*` flags.
    pub action: u32,
    /// IN: the (local, bound) port to notify.
    pub event_channel_port: u32,
}

/// `IOCTL_GNTDEV_SET_UNMAP_NOTIFY`:
/// `_IOC(_IOC_NONE, 'G', 7, sizeof(struct ioctl_gntdev_unmap_notify))`.
pub const IOCTL_GNTDEV_SET_UNMAP_NOTIFY: u32 =
    ioc(IOC_NONE, b'G', 7, size_of::<IoctlGntdevUnmapNotify>());
/// Clear the byte at `index` on unmap.
pub const UNMAP_NOTIFY_CLEAR_BYTE: u32 = 0x1;
/// Kick `event_channel_port` on unmap.
pub const UNMAP_NOTIFY_SEND_EVENT: u32 = 0x2;
const _: () = assert!(size_of::<IoctlGntdevUnmapNotify>() == 16);

/// Most grants one [`GrantRegion`] maps: a vchan's interface page or one
/// ring of up to 1 MiB (the rpc crate's layout allows no more).
pub const MAX_REGION_PAGES: usize = 256;

/// Several grants of one domain mapped as one contiguous region, read and
/// written only through [`rpc::SharedMem`] (atomic and volatile accesses:
/// the other domain writes it at any time). Owns its device handle, so it
/// can move to the thread that serves the connection; dropping it unmaps
/// the pages and releases the grants.
#[derive(Debug)]
pub struct GrantRegion {
    dev: Arc<Gntdev>,
    index: u64,
    pages: usize,
    /// Start of the mapping, `pages * GRANT_PAGE_SIZE` bytes long.
    addr: NonNull<u8>,
}

// SAFETY: the mapping is process memory that stays valid until `drop`; every
// access goes through atomics or volatile copies (no references), which is
// sound from any thread, as it is for memory another domain writes.
unsafe impl Send for GrantRegion {}
// SAFETY: as for Send: shared access is only atomic or volatile.
unsafe impl Sync for GrantRegion {}

impl GrantRegion {
    /// Maps `grefs` of domain `domid`, read-write, as one region.
    pub fn map(dev: &Arc<Gntdev>, domid: u16, grefs: &[u32]) -> Result<Self, GntdevError> {
        let what = format!("domid={domid} grefs={grefs:?}");
        if grefs.is_empty() || grefs.len() > MAX_REGION_PAGES {
            return Err(GntdevError::Os {
                step: Step::MapIoctl,
                what,
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        // struct ioctl_gntdev_map_grant_ref with `count` refs: the 16-byte
        // head (count, pad, index) and then the refs, in u64 words so the
        // index is 8-aligned as in C.
        let mut words = vec![0u64; 2 + grefs.len()];
        words[0] = grefs.len() as u64; // count (low half), pad 0 (high half)
        for (w, &gref) in words[2..].iter_mut().zip(grefs) {
            *w = u64::from(domid) | (u64::from(gref) << 32);
        }
        // SAFETY: the request is IOCTL_GNTDEV_MAP_GRANT_REF, whose argument is
        // a struct ioctl_gntdev_map_grant_ref followed by `count - 1` more
        // refs; `words` holds exactly that layout (little-endian x86_64:
        // count at 0, pad at 4, index at 8, refs of (domid, ref) from 16) and
        // lives for the call. The ioctl's size field covers one ref; the
        // kernel reads `count` refs, all inside `words`.
        let rc = unsafe {
            libc::ioctl(
                dev.file.as_raw_fd(),
                IOCTL_GNTDEV_MAP_GRANT_REF as libc::Ioctl,
                words.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(GntdevError::last_os(Step::MapIoctl, what));
        }
        let index = words[1];
        let len = grefs.len() * GRANT_PAGE_SIZE;
        // Undoes the reservation on the failure paths below.
        let unmap_refs = |dev: &Gntdev| {
            if let Err(e) = dev.unmap_refs(index, grefs.len() as u32) {
                log::warn!("gntdev: {e}");
            }
        };
        let Ok(offset) = libc::off_t::try_from(index) else {
            unmap_refs(dev);
            return Err(GntdevError::Os {
                step: Step::Mmap,
                what,
                source: io::Error::from_raw_os_error(libc::EOVERFLOW),
            });
        };
        // SAFETY: a fresh shared mapping chosen by the kernel (no MAP_FIXED)
        // of the pages the map ioctl reserved at `offset`; checked below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                dev.file.as_raw_fd(),
                offset,
            )
        };
        let addr = match NonNull::new(addr.cast::<u8>()) {
            Some(a) if addr != libc::MAP_FAILED => a,
            _ => {
                let err = GntdevError::last_os(Step::Mmap, what);
                if addr.is_null() {
                    // SAFETY: unmaps exactly what this call mapped at 0.
                    unsafe { libc::munmap(addr, len) };
                }
                unmap_refs(dev);
                return Err(err);
            }
        };
        Ok(GrantRegion {
            dev: Arc::clone(dev),
            index,
            pages: grefs.len(),
            addr,
        })
    }

    /// Asks the kernel, when this mapping goes away for whatever reason
    /// (including this process being killed), to clear the byte at
    /// `byte_offset` and to kick `port` (a port bound in this process). The
    /// vchan client sets it on its liveness byte: that is how the guest learns
    /// the daemon is gone.
    pub fn set_unmap_notify(&self, byte_offset: usize, port: u32) -> Result<(), GntdevError> {
        assert!(byte_offset < self.pages * GRANT_PAGE_SIZE, "byte outside");
        let mut op = IoctlGntdevUnmapNotify {
            index: self.index + byte_offset as u64,
            action: UNMAP_NOTIFY_CLEAR_BYTE | UNMAP_NOTIFY_SEND_EVENT,
            event_channel_port: port,
        };
        // SAFETY: the request is IOCTL_GNTDEV_SET_UNMAP_NOTIFY, whose argument
        // is a struct ioctl_gntdev_unmap_notify, mirrored by `op` (layout
        // pinned in tests), alive on the stack for the call.
        let rc = unsafe {
            libc::ioctl(
                self.dev.file.as_raw_fd(),
                IOCTL_GNTDEV_SET_UNMAP_NOTIFY as libc::Ioctl,
                &mut op as *mut IoctlGntdevUnmapNotify,
            )
        };
        if rc != 0 {
            return Err(GntdevError::last_os(
                Step::MapIoctl,
                format!("unmap notify at {byte_offset} port {port}"),
            ));
        }
        Ok(())
    }

    fn at(&self, off: usize, n: usize) -> *mut u8 {
        assert!(
            off.checked_add(n)
                .is_some_and(|end| end <= self.pages * GRANT_PAGE_SIZE),
            "access outside the grant region"
        );
        // SAFETY: in bounds of the live mapping, as just checked.
        unsafe { self.addr.as_ptr().add(off) }
    }

    fn atomic_u8(&self, off: usize) -> &AtomicU8 {
        // SAFETY: in bounds (checked by `at`), live while `self` is, and only
        // ever accessed atomically or by volatile copies.
        unsafe { AtomicU8::from_ptr(self.at(off, 1)) }
    }
}

impl rpc::SharedMem for GrantRegion {
    fn size(&self) -> usize {
        self.pages * GRANT_PAGE_SIZE
    }
    fn load_u8(&self, off: usize) -> u8 {
        self.atomic_u8(off).load(Ordering::SeqCst)
    }
    fn store_u8(&self, off: usize, v: u8) {
        self.atomic_u8(off).store(v, Ordering::SeqCst)
    }
    fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 {
        self.atomic_u8(off).fetch_or(bits, Ordering::SeqCst)
    }
    fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
        self.atomic_u8(off).fetch_and(bits, Ordering::SeqCst)
    }
    fn load_u32_acquire(&self, off: usize) -> u32 {
        assert!(off.is_multiple_of(4), "unaligned u32 access");
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned).
        unsafe { AtomicU32::from_ptr(self.at(off, 4).cast::<u32>()) }.load(Ordering::Acquire)
    }
    fn store_u32_release(&self, off: usize, v: u32) {
        assert!(off.is_multiple_of(4), "unaligned u32 access");
        // SAFETY: as `load_u32_acquire`.
        unsafe { AtomicU32::from_ptr(self.at(off, 4).cast::<u32>()) }.store(v, Ordering::Release)
    }
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        let src = self.at(off, dst.len());
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: in bounds (checked by `at` for the whole range).
            *d = unsafe { src.add(i).read_volatile() };
        }
    }
    fn copy_in(&self, off: usize, src: &[u8]) {
        let dst = self.at(off, src.len());
        for (i, &b) in src.iter().enumerate() {
            // SAFETY: in bounds (checked by `at` for the whole range).
            unsafe { dst.add(i).write_volatile(b) };
        }
    }
}

impl Drop for GrantRegion {
    fn drop(&mut self) {
        let len = self.pages * GRANT_PAGE_SIZE;
        // SAFETY: the mapping `map` made; nothing refers into it (all access
        // was through raw pointers), and `self` is going away.
        if unsafe { libc::munmap(self.addr.as_ptr().cast::<c_void>(), len) } != 0 {
            log::warn!(
                "gntdev: munmap of {} pages failed: {}",
                self.pages,
                io::Error::last_os_error()
            );
        }
        if let Err(e) = self.dev.unmap_refs(self.index, self.pages as u32) {
            log::warn!("gntdev: {e}");
        }
    }
}

/// Checks that `offset..offset + len` lies inside one grant page.
pub fn check_range(offset: usize, len: usize) -> Result<(), GntdevError> {
    match offset.checked_add(len) {
        Some(end) if end <= GRANT_PAGE_SIZE => Ok(()),
        _ => Err(GntdevError::OutOfPage { offset, len }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    // Expected values printed by a C program built with gcc against
    // /root/.cache/ethos-xen/root/usr/include/xen/sys/gntdev.h and
    // <sys/ioctl.h> on x86_64 (and by hand: size << 16 | 'G' << 8 | nr).
    #[test]
    fn ioctl_numbers_match_the_c_header() {
        assert_eq!(IOCTL_GNTDEV_MAP_GRANT_REF, 0x0018_4700);
        assert_eq!(IOCTL_GNTDEV_UNMAP_GRANT_REF, 0x0010_4701);
        // The other gntdev ioctls, to pin the encoder itself.
        assert_eq!(ioc(IOC_NONE, b'G', 2, 24), 0x0018_4702); // GET_OFFSET_FOR_VADDR
        assert_eq!(ioc(IOC_NONE, b'G', 3, 4), 0x0004_4703); // SET_MAX_GRANTS
        assert_eq!(ioc(IOC_NONE, b'G', 7, 16), 0x0010_4707); // SET_UNMAP_NOTIFY
                                                             // Direction bits land at 30..32 (_IOR/_IOW of other drivers).
        assert_eq!(ioc(2, b'G', 0, 8), 0x8008_4700);
        assert_eq!(ioc(1, b'G', 0, 8), 0x4008_4700);
    }

    #[test]
    fn struct_layouts_match_the_c_header() {
        assert_eq!(size_of::<IoctlGntdevGrantRef>(), 8);
        assert_eq!(offset_of!(IoctlGntdevGrantRef, domid), 0);
        assert_eq!(offset_of!(IoctlGntdevGrantRef, gref), 4);

        assert_eq!(size_of::<IoctlGntdevMapGrantRef>(), 24);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, count), 0);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, pad), 4);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, index), 8);
        assert_eq!(offset_of!(IoctlGntdevMapGrantRef, refs), 16);

        assert_eq!(size_of::<IoctlGntdevUnmapGrantRef>(), 16);
        assert_eq!(offset_of!(IoctlGntdevUnmapGrantRef, index), 0);
        assert_eq!(offset_of!(IoctlGntdevUnmapGrantRef, count), 8);
        assert_eq!(offset_of!(IoctlGntdevUnmapGrantRef, pad), 12);
    }

    #[test]
    fn unmap_notify_matches_the_c_header() {
        assert_eq!(IOCTL_GNTDEV_SET_UNMAP_NOTIFY, 0x0010_4707);
        assert_eq!(size_of::<IoctlGntdevUnmapNotify>(), 16);
        assert_eq!(offset_of!(IoctlGntdevUnmapNotify, index), 0);
        assert_eq!(offset_of!(IoctlGntdevUnmapNotify, action), 8);
        assert_eq!(offset_of!(IoctlGntdevUnmapNotify, event_channel_port), 12);
        assert_eq!((UNMAP_NOTIFY_CLEAR_BYTE, UNMAP_NOTIFY_SEND_EVENT), (1, 2));
    }

    #[test]
    fn region_map_on_a_non_gntdev_file_fails_at_the_ioctl() {
        let dev = Arc::new(Gntdev::open(Path::new("/dev/null")).unwrap());
        let err = GrantRegion::map(&dev, 5, &[8, 9]).unwrap_err();
        assert_eq!(err.step(), Some(Step::MapIoctl));
        // Too many or no grants are refused before any ioctl.
        assert!(GrantRegion::map(&dev, 5, &[]).is_err());
        assert!(GrantRegion::map(&dev, 5, &[1; MAX_REGION_PAGES + 1]).is_err());
    }

    #[test]
    fn range_check() {
        assert!(check_range(0, GRANT_PAGE_SIZE).is_ok());
        assert!(check_range(4095, 1).is_ok());
        assert!(check_range(4096, 0).is_ok());
        assert!(matches!(
            check_range(4000, 97),
            Err(GntdevError::OutOfPage {
                offset: 4000,
                len: 97
            })
        ));
        assert!(check_range(usize::MAX, 2).is_err());
    }

    #[test]
    fn open_missing_device_names_the_open_step() {
        let err = Gntdev::open(Path::new("/nonexistent/xen/gntdev")).unwrap_err();
        assert_eq!(err.step(), Some(Step::Open));
        let msg = err.to_string();
        assert!(
            msg.starts_with("open failed (/nonexistent/xen/gntdev): "),
            "{msg}"
        );
        assert!(msg.contains("os error 2"), "{msg}");
    }

    #[test]
    fn map_on_a_non_gntdev_file_names_the_map_ioctl_step() {
        // /dev/null has no ioctls: the kernel answers ENOTTY without touching
        // the argument, which exercises the map path up to the ioctl.
        let dev = Gntdev::open(Path::new("/dev/null")).unwrap();
        let err = dev.map_grant(5, 8, Access::ReadOnly).unwrap_err();
        assert_eq!(err.step(), Some(Step::MapIoctl));
        match &err {
            GntdevError::Os { source, .. } => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOTTY))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with("map ioctl failed (domid=5 gref=8): "));
    }
}
