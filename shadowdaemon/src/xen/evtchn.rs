//! `/dev/xen/evtchn`: one interdomain event channel to a guest, as the serve
//! loop's [`EventChannel`].
//!
//! Each connection opens the device on its own, so a `read` only ever returns
//! that connection's port, and closing the file (on drop) unbinds it whatever
//! happened before. The device delivers a port once and then masks it until
//! the port number is written back; [`XenEventChannel::wait`] does both, the
//! unmasking at the next wait and, when the loop asks for a hold (late EOI:
//! the guest's kicks moved nothing), only once the hold has passed, so that a
//! guest kicking in a loop costs one wake per hold. Other threads wake the loop through an `eventfd` polled next to the
//! device: both are level-triggered until read, so a wake or a kick that came
//! before the sleep is never lost.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shadowdaemon::pool::Wake;
use shadowdaemon::serve::EventChannel;

use super::gntdev::{ioc, IOC_NONE};

/// `struct ioctl_evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoctlEvtchnBindInterdomain {
    /// The guest.
    pub remote_domain: u32,
    /// The guest's unbound port.
    pub remote_port: u32,
}

/// `struct ioctl_evtchn_notify` (and, same layout, `ioctl_evtchn_unbind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoctlEvtchnPort {
    /// The local port.
    pub port: u32,
}

/// `IOCTL_EVTCHN_BIND_INTERDOMAIN`: `_IOC(_IOC_NONE, 'E', 1, 8)`; returns the
/// local port.
pub const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 =
    ioc(IOC_NONE, b'E', 1, size_of::<IoctlEvtchnBindInterdomain>());
/// `IOCTL_EVTCHN_NOTIFY`: `_IOC(_IOC_NONE, 'E', 4, 4)`.
pub const IOCTL_EVTCHN_NOTIFY: u32 = ioc(IOC_NONE, b'E', 4, size_of::<IoctlEvtchnPort>());

/// An interdomain port bound through its own `/dev/xen/evtchn` file.
#[derive(Debug)]
pub struct XenEventChannel {
    dev: File,
    port: u32,
    wake: Arc<EventFd>,
    /// A kick was delivered and the port not written back yet: it is masked, and
    /// the guest's further kicks wait as one pending kick.
    masked: bool,
}

impl XenEventChannel {
    /// Binds the guest's `remote_port` of domain `domid`.
    pub fn bind(path: &Path, domid: u16, remote_port: u32) -> io::Result<Self> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        let mut op = IoctlEvtchnBindInterdomain {
            remote_domain: u32::from(domid),
            remote_port,
        };
        // SAFETY: the request is IOCTL_EVTCHN_BIND_INTERDOMAIN, whose argument
        // is a struct ioctl_evtchn_bind_interdomain, mirrored by `op` (layout
        // pinned in tests), alive on the stack for the call.
        let rc = unsafe {
            libc::ioctl(
                dev.as_raw_fd(),
                IOCTL_EVTCHN_BIND_INTERDOMAIN as libc::Ioctl,
                &mut op as *mut IoctlEvtchnBindInterdomain,
            )
        };
        let port = u32::try_from(rc).map_err(|_| {
            let e = io::Error::last_os_error();
            io::Error::new(
                e.kind(),
                format!("bind to domid {domid} port {remote_port}: {e}"),
            )
        })?;
        Ok(XenEventChannel {
            dev,
            port,
            wake: Arc::new(EventFd::new()?),
            masked: false,
        })
    }

    /// The local port (for the grant unmap notification).
    pub fn local_port(&self) -> u32 {
        self.port
    }

    /// Reads every delivered port (only ever our one port, masked now until
    /// [`Self::unmask`]); whether any was.
    fn drain(&mut self) -> io::Result<bool> {
        let mut any = false;
        let mut buf = [0u8; 64];
        loop {
            match self.dev.read(&mut buf) {
                Ok(0) => break,
                // Whole u32 port numbers.
                Ok(n) => any |= n >= 4,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.masked |= any;
        Ok(any)
    }

    /// Writes the port back: Xen delivers it again if the guest kicked meanwhile.
    fn unmask(&mut self) -> io::Result<()> {
        if self.masked {
            self.dev.write_all(&self.port.to_ne_bytes())?;
            self.masked = false;
        }
        Ok(())
    }

    /// Sleeps on the device and the eventfd, or only on the eventfd (`device`
    /// false), for at most `timeout_ms` (-1: no limit); the revents.
    fn poll(&self, device: bool, timeout_ms: libc::c_int) -> io::Result<Option<[i16; 2]>> {
        let mut fds = [
            libc::pollfd {
                fd: self.wake.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.dev.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let n = if device { 2 } else { 1 };
        // SAFETY: `fds` is a valid array of at least `n` pollfd.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some([fds[0].revents, fds[1].revents]))
    }
}

impl EventChannel for XenEventChannel {
    fn notify(&mut self) -> io::Result<()> {
        let mut op = IoctlEvtchnPort { port: self.port };
        // SAFETY: the request is IOCTL_EVTCHN_NOTIFY, whose argument is a
        // struct ioctl_evtchn_notify, mirrored by `op`, alive for the call.
        let rc = unsafe {
            libc::ioctl(
                self.dev.as_raw_fd(),
                IOCTL_EVTCHN_NOTIFY as libc::Ioctl,
                &mut op as *mut IoctlEvtchnPort,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&mut self, hold: Duration) -> io::Result<bool> {
        if self.masked && !hold.is_zero() {
            // The late EOI: the port stays masked for the hold; only a waker ends it.
            let ms = libc::c_int::try_from(hold.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
            match self.poll(false, ms)? {
                None => return Ok(false),
                Some([wake, _]) if wake & libc::POLLIN != 0 => {
                    self.wake.reset();
                    return Ok(false);
                }
                Some(_) => {}
            }
        }
        self.unmask()?;
        let Some([wake, dev]) = self.poll(true, -1)? else {
            return Ok(false);
        };
        if dev & (libc::POLLERR | libc::POLLNVAL) != 0 {
            return Err(io::Error::other("event channel device reported an error"));
        }
        let kicked = dev & libc::POLLIN != 0 && self.drain()?;
        if wake & libc::POLLIN != 0 {
            self.wake.reset();
        }
        Ok(kicked)
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::clone(&self.wake) as Arc<dyn Wake>
    }
}

/// A non-blocking `eventfd`: `wake` adds one, `reset` reads the count back to 0.
#[derive(Debug)]
struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked and then owned.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn reset(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from our own
        // eventfd; non-blocking, so EAGAIN when already 0, which is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
    }
}

impl Wake for EventFd {
    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our own eventfd. It can
        // only fail when the counter would overflow, i.e. a wake is pending.
        unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    // sys/evtchn.h: _IOC(_IOC_NONE, 'E', nr, size) = size << 16 | 'E' << 8 | nr.
    #[test]
    fn ioctl_numbers_match_the_c_header() {
        assert_eq!(IOCTL_EVTCHN_BIND_INTERDOMAIN, 0x0008_4501);
        assert_eq!(IOCTL_EVTCHN_NOTIFY, 0x0004_4504);
        assert_eq!(size_of::<IoctlEvtchnBindInterdomain>(), 8);
        assert_eq!(offset_of!(IoctlEvtchnBindInterdomain, remote_port), 4);
        assert_eq!(size_of::<IoctlEvtchnPort>(), 4);
    }

    #[test]
    fn binding_on_a_non_evtchn_file_fails_with_a_named_error() {
        let err = XenEventChannel::bind(Path::new("/dev/null"), 3, 7).unwrap_err();
        assert!(err.to_string().contains("bind to domid 3 port 7"), "{err}");
        let err = XenEventChannel::bind(Path::new("/nonexistent/evtchn"), 3, 7).unwrap_err();
        assert!(
            err.to_string().contains("open /nonexistent/evtchn"),
            "{err}"
        );
    }

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let fd = EventFd::new().unwrap();
        fd.wake();
        fd.wake();
        let mut p = libc::pollfd {
            fd: fd.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut p, 1, 0) }, 1);
        fd.reset();
        p.revents = 0;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::poll(&mut p, 1, 0) }, 0);
    }
}
