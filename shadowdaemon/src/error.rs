//! Why an operation failed, and the named [`Status`] the guest gets for it.
//!
//! The daemon keeps more than the status (the `io::Error`, which rule refused a path) so
//! the log can say what happened; the guest only ever sees the status. Refusals by the
//! daemon's own rules are kept apart from what the file system said, because they are
//! what a hostile guest produces and the log treats them differently.

use std::fmt;
use std::io;

use rpc::Status;

use crate::confine::PathRefusal;

/// A failed operation.
#[derive(Debug)]
pub enum OpError {
    /// The path breaks the lexical rules (absolute, `..`, empty or `.` component):
    /// [`Status::Invalid`].
    BadPath(PathRefusal),
    /// Resolving the path would leave the guest's folder (a symlink pointing outside):
    /// [`Status::PermissionDenied`].
    Escape,
    /// The daemon's policy refuses the operation (e.g. reading a FIFO, removing the
    /// guest's own folder).
    Policy {
        /// What the guest gets.
        status: Status,
        /// What was refused, for the log.
        what: &'static str,
    },
    /// A service the op needs failed on the host (the kernel's random source):
    /// [`Status::Unavailable`], the guest may retry later.
    Unavailable {
        /// What failed, for the log.
        what: String,
    },
    /// The file system refused; the status comes from the errno ([`status_of`]).
    Io(io::Error),
    /// A trace batch that breaks the record rules ([`rpc::trace::parse`]):
    /// [`Status::Invalid`].
    BadTrace(rpc::trace::TraceError),
}

impl OpError {
    /// The status the guest gets. Never [`Status::Ok`].
    pub fn status(&self) -> Status {
        match self {
            OpError::BadPath(_) => Status::Invalid,
            OpError::Escape => Status::PermissionDenied,
            OpError::Policy { status, .. } if *status != Status::Ok => *status,
            OpError::Policy { .. } => Status::Io,
            OpError::Unavailable { .. } => Status::Unavailable,
            OpError::Io(e) => status_of(e),
            OpError::BadTrace(_) => Status::Invalid,
        }
    }

    /// Whether the daemon's own rules refused the request (as opposed to the file system
    /// answering): these are what a misbehaving guest produces, worth a warning.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            OpError::BadPath(_) | OpError::Escape | OpError::Policy { .. } | OpError::BadTrace(_)
        )
    }

    /// Whether the failure points at a problem on the host (an I/O error, a full disk, a
    /// resource limit) rather than at the guest's request.
    pub fn is_host_problem(&self) -> bool {
        matches!(
            self.status(),
            Status::Io | Status::NoSpace | Status::Unavailable
        )
    }
}

impl From<io::Error> for OpError {
    /// Recognises cap-std's escape error (`PermissionDenied` without an errno, which is
    /// how it reports `openat2`'s `EXDEV` and a `..`/absolute symlink in its fallback
    /// walk); everything else is the file system's answer.
    fn from(e: io::Error) -> Self {
        if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::PermissionDenied {
            OpError::Escape
        } else {
            OpError::Io(e)
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::BadPath(r) => write!(f, "refused path: {r}"),
            OpError::Escape => f.write_str("refused path: it leads outside the guest's folder"),
            OpError::Policy { what, .. } => write!(f, "refused: {what}"),
            OpError::Unavailable { what } => write!(f, "unavailable: {what}"),
            OpError::Io(e) => write!(f, "{e}"),
            OpError::BadTrace(e) => write!(f, "refused trace batch: {e}"),
        }
    }
}

/// The status for an error from the file system, by errno (then by kind for errors
/// without one).
///
/// `ELOOP` is a refusal: with the rules of [`crate::confine`] it means a symlink where
/// none may be followed. `EAGAIN`, `EMFILE`, `ENFILE` and `ENOMEM` are the daemon running
/// short, so the guest may retry later ([`Status::Unavailable`]).
pub fn status_of(e: &io::Error) -> Status {
    if let Some(errno) = e.raw_os_error() {
        return match errno {
            libc::ENOENT => Status::NotFound,
            libc::EEXIST => Status::Exists,
            libc::ENOTDIR => Status::NotADirectory,
            libc::EISDIR => Status::IsADirectory,
            libc::EACCES | libc::EPERM | libc::EROFS | libc::ELOOP | libc::EXDEV => {
                Status::PermissionDenied
            }
            libc::EFBIG | libc::ENAMETOOLONG | libc::EOVERFLOW => Status::TooLarge,
            libc::EINVAL => Status::Invalid,
            libc::ENOTEMPTY => Status::NotEmpty,
            libc::ENOSPC | libc::EDQUOT => Status::NoSpace,
            libc::EAGAIN | libc::EMFILE | libc::ENFILE | libc::ENOMEM => Status::Unavailable,
            _ => Status::Io,
        };
    }
    match e.kind() {
        io::ErrorKind::NotFound => Status::NotFound,
        io::ErrorKind::AlreadyExists => Status::Exists,
        io::ErrorKind::PermissionDenied => Status::PermissionDenied,
        io::ErrorKind::InvalidInput => Status::Invalid,
        _ => Status::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_named_statuses() {
        let cases = [
            (libc::ENOENT, Status::NotFound),
            (libc::EEXIST, Status::Exists),
            (libc::ENOTDIR, Status::NotADirectory),
            (libc::EISDIR, Status::IsADirectory),
            (libc::EACCES, Status::PermissionDenied),
            (libc::EPERM, Status::PermissionDenied),
            (libc::ELOOP, Status::PermissionDenied),
            (libc::EXDEV, Status::PermissionDenied),
            (libc::EFBIG, Status::TooLarge),
            (libc::ENAMETOOLONG, Status::TooLarge),
            (libc::EINVAL, Status::Invalid),
            (libc::ENOTEMPTY, Status::NotEmpty),
            (libc::ENOSPC, Status::NoSpace),
            (libc::EDQUOT, Status::NoSpace),
            (libc::EMFILE, Status::Unavailable),
            (libc::EIO, Status::Io),
            (libc::ENXIO, Status::Io),
        ];
        for (errno, status) in cases {
            assert_eq!(
                status_of(&io::Error::from_raw_os_error(errno)),
                status,
                "errno {errno}"
            );
        }
    }

    #[test]
    fn cap_std_escape_is_recognised_and_eacces_is_not() {
        let escape = io::Error::new(io::ErrorKind::PermissionDenied, "outside");
        assert!(matches!(OpError::from(escape), OpError::Escape));
        let eacces = OpError::from(io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(eacces, OpError::Io(_)));
        assert_eq!(eacces.status(), Status::PermissionDenied);
        assert!(!eacces.is_refusal());
    }

    #[test]
    fn no_error_maps_to_ok() {
        let policy = OpError::Policy {
            status: Status::Ok,
            what: "a bug",
        };
        assert_eq!(policy.status(), Status::Io);
        assert!(OpError::Io(io::Error::other("x")).is_host_problem());
        let random = OpError::Unavailable {
            what: "entropy".into(),
        };
        assert_eq!(random.status(), Status::Unavailable);
        assert!(random.is_host_problem() && !random.is_refusal());
    }
}
