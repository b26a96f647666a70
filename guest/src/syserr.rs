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
        }
    }
}

/// The result of a system call.
pub type SysResult<T> = Result<T, SysError>;
