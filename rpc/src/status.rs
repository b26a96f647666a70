//! The statuses a reply carries, Ethos style: every way a request can fail has a name.
//!
//! On the wire a status is a little-endian `u16` in the frame header. Requests carry 0;
//! a reply carries [`Status::Ok`] with the op's result payload, or another status with an
//! empty payload. An unknown code breaks the channel
//! ([`BrokenReason::UnknownStatus`](crate::BrokenReason::UnknownStatus)): the two sides
//! are built from this one crate, so an unknown code means a corrupt or hostile peer.

use core::fmt;

/// The outcome of a request, as the shadowdaemon reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Status {
    /// Success; the payload is the op's result.
    Ok = 0,
    /// No such file or directory (`ENOENT`).
    NotFound = 1,
    /// The file or directory already exists (`EEXIST`).
    Exists = 2,
    /// A path component, or the `DirList` target, is not a directory (`ENOTDIR`).
    NotADirectory = 3,
    /// A file operation named a directory (`EISDIR`).
    IsADirectory = 4,
    /// The daemon's policy or the file system forbids it (`EACCES`, `EPERM`, or a path
    /// escaping the guest's share).
    PermissionDenied = 5,
    /// The request or its result exceeds a limit (a file too large to address, more
    /// random bytes than the daemon serves at once, ...).
    TooLarge = 6,
    /// The request is well-formed on the wire but meaningless (an absolute path where
    /// relative ones are required, a `..` component, ...).
    Invalid = 7,
    /// The service behind the op is not available now (no entropy source, share not
    /// mounted); retrying later may work.
    Unavailable = 8,
    /// `Remove` of a directory that is not empty (`ENOTEMPTY`).
    NotEmpty = 9,
    /// No space left on the device (`ENOSPC`, `EDQUOT`).
    NoSpace = 10,
    /// Another I/O error (`EIO` and anything the daemon cannot name better).
    Io = 11,
    /// The daemon does not implement this op.
    Unsupported = 12,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 13] = [
        Status::Ok,
        Status::NotFound,
        Status::Exists,
        Status::NotADirectory,
        Status::IsADirectory,
        Status::PermissionDenied,
        Status::TooLarge,
        Status::Invalid,
        Status::Unavailable,
        Status::NotEmpty,
        Status::NoSpace,
        Status::Io,
        Status::Unsupported,
    ];

    /// The wire code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The status with this wire code, if any.
    pub fn from_code(code: u16) -> Option<Status> {
        Status::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(usize::from(s.code()), i);
            assert_eq!(Status::from_code(s.code()), Some(*s));
        }
        assert_eq!(Status::from_code(Status::ALL.len() as u16), None);
        assert_eq!(Status::from_code(u16::MAX), None);
    }
}
