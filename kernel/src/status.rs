//! The statuses system calls return: every failure has a name.

use core::fmt;

/// Why a system call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysError {
    /// The event model refused the call (see [`events::Status`]).
    Event(events::Status),
    /// The kernel could not allocate memory for the call.
    OutOfMemory,
    /// A deadline or argument is outside what the call accepts.
    InvalidArgument,
    /// Too many timers are outstanding in the whole kernel.
    TooManyTimers,
    /// The call needs a running process and there is none (kernel context).
    NoProcess,
    /// A Xen hypercall the call depends on failed.
    Hypervisor(i64),
    /// A bounded queue of the service is full: retry after some complete.
    Busy,
    /// The argument is larger than the service accepts.
    TooLarge,
    /// No such handle (or it belongs to another process).
    BadHandle,
    /// The connection to the service broke (its peer misbehaved); it stays down.
    ServiceBroken,
    /// The capability was never issued by the kernel.
    ForgedCapability,
    /// The capability named a page that has since been freed or revoked.
    StaleCapability,
    /// The capability belongs to another process.
    ForeignCapability,
    /// The page is already bound; unbind it first.
    AlreadyBound,
    /// The page is not bound.
    NotBound,
    /// The address is not a free page-aligned address of the caller's region.
    BadAddress,
    /// The page is already granted to a peer.
    AlreadyGranted,
    /// The page is not granted.
    NotGranted,
    /// The peer still maps the granted page: access cannot end yet.
    StillMapped,
}

impl From<events::Status> for SysError {
    fn from(s: events::Status) -> Self {
        SysError::Event(s)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysError::Event(s) => write!(f, "{s}"),
            SysError::OutOfMemory => f.write_str("out of memory"),
            SysError::InvalidArgument => f.write_str("invalid argument"),
            SysError::TooManyTimers => f.write_str("too many timers outstanding"),
            SysError::NoProcess => f.write_str("no current process"),
            SysError::Hypervisor(e) => write!(f, "hypercall failed ({e})"),
            SysError::Busy => f.write_str("busy: too many requests outstanding"),
            SysError::TooLarge => f.write_str("argument too large"),
            SysError::BadHandle => f.write_str("no such handle"),
            SysError::ServiceBroken => f.write_str("service connection broken"),
            SysError::ForgedCapability => f.write_str("forged capability"),
            SysError::StaleCapability => f.write_str("stale capability"),
            SysError::ForeignCapability => f.write_str("capability of another process"),
            SysError::AlreadyBound => f.write_str("page already bound"),
            SysError::NotBound => f.write_str("page not bound"),
            SysError::BadAddress => f.write_str("bad address"),
            SysError::AlreadyGranted => f.write_str("page already granted"),
            SysError::NotGranted => f.write_str("page not granted"),
            SysError::StillMapped => f.write_str("peer still maps the page"),
        }
    }
}

/// The result of a system call.
pub type SysResult<T> = Result<T, SysError>;
