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
    /// A length is larger than the call accepts.
    BadLength,
    /// A pointer is not aligned as the call needs.
    BadAlignment,
    /// The caller's buffer cannot hold the value: this many bytes are needed.
    BufferTooSmall(usize),
    /// No such system call.
    UnknownCall,
    /// The program was not given this right at spawn.
    NotPermitted,
    /// No program of that name in the boot archive.
    NoSuchProgram,
    /// The program image is not a static ELF executable this kernel loads.
    BadProgram,
    /// Too many processes alive.
    TooManyProcesses,
    /// Text is not valid UTF-8.
    BadText,
    /// The network is not up.
    NetDown,
    /// The image was built without networking (feature `net`).
    NoNetwork,
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
            SysError::BadLength => f.write_str("bad length"),
            SysError::BadAlignment => f.write_str("bad alignment"),
            SysError::BufferTooSmall(n) => write!(f, "buffer too small ({n} bytes needed)"),
            SysError::UnknownCall => f.write_str("unknown system call"),
            SysError::NotPermitted => f.write_str("not permitted"),
            SysError::NoSuchProgram => f.write_str("no such program"),
            SysError::BadProgram => f.write_str("bad program image"),
            SysError::TooManyProcesses => f.write_str("too many processes"),
            SysError::BadText => f.write_str("text not valid UTF-8"),
            SysError::NetDown => f.write_str("network down"),
            SysError::NoNetwork => f.write_str("this image has no networking"),
        }
    }
}

/// The result of a system call.
pub type SysResult<T> = Result<T, SysError>;

/// An event's own status as the ABI numbers it, with what goes alongside
/// (the peer's errno for `Remote`).
pub fn event_status(s: events::Status) -> (abi::Status, u32) {
    use abi::Status as A;
    use events::Status as E;
    let a = match s {
        E::Ok => A::Ok,
        E::Remote(errno) => return (A::Remote, errno),
        E::NotComplete => A::NotComplete,
        // Someone else's event answers as an unknown one: a program cannot
        // learn that another process's id is live.
        E::NotOwner | E::UnknownEvent => A::UnknownEvent,
        E::AlreadyComplete => A::AlreadyComplete,
        E::Cancelled => A::Cancelled,
        E::WrongValueKind => A::InvalidArgument,
        E::QuotaExceeded => A::QuotaExceeded,
        E::TableFull => A::TableFull,
        E::TreeTooLarge => A::TreeTooLarge,
        E::EmptyTree => A::EmptyTree,
        E::NoRoot
        | E::MisplacedLeaf
        | E::BadParent
        | E::Cycle
        | E::CountOutOfRange
        | E::LeafUnsorted
        | E::LeafDuplicated => A::BadTree,
        E::EventInAnotherTree => A::EventInAnotherTree,
        E::SecondTree | E::NotBlocked => A::NotBlocked,
        E::UnknownSource => A::InvalidArgument,
        E::Faulted => A::Faulted,
        E::NotServed => A::NotServed,
        E::Rebound => A::Rebound,
        E::PeerGone => A::PeerGone,
        // `events::Status` is non-exhaustive: a status added later reads as
        // an invalid argument until it is given its own number.
        _ => A::InvalidArgument,
    };
    (a, 0)
}

impl SysError {
    /// The status a program sees in `rax`, and the word that goes with it
    /// (the length needed for `BufferTooSmall`, the errno for `Remote`).
    pub fn to_abi(self) -> (abi::Status, u64) {
        use abi::Status as A;
        let a = match self {
            SysError::Event(s) => {
                let (a, extra) = event_status(s);
                return (a, extra as u64);
            }
            SysError::OutOfMemory => A::OutOfMemory,
            SysError::InvalidArgument => A::InvalidArgument,
            SysError::TooManyTimers => A::TooManyTimers,
            SysError::NoProcess => A::InvalidArgument,
            SysError::Hypervisor(e) => return (A::Hypervisor, e as u64),
            SysError::Busy => A::Busy,
            SysError::TooLarge => A::TooLarge,
            SysError::BadHandle => A::BadHandle,
            SysError::ServiceBroken => A::ServiceBroken,
            SysError::ForgedCapability => A::ForgedCapability,
            SysError::StaleCapability => A::StaleCapability,
            SysError::ForeignCapability => A::ForeignCapability,
            SysError::AlreadyBound => A::AlreadyBound,
            SysError::NotBound => A::NotBound,
            SysError::BadAddress => A::BadAddress,
            SysError::AlreadyGranted => A::AlreadyGranted,
            SysError::NotGranted => A::NotGranted,
            SysError::StillMapped => A::StillMapped,
            SysError::BadLength => A::BadLength,
            SysError::BadAlignment => A::BadAlignment,
            SysError::BufferTooSmall(n) => return (A::BufferTooSmall, n as u64),
            SysError::UnknownCall => A::UnknownCall,
            SysError::NotPermitted => A::NotPermitted,
            SysError::NoSuchProgram => A::NoSuchProgram,
            SysError::BadProgram => A::BadProgram,
            SysError::TooManyProcesses => A::TooManyProcesses,
            SysError::BadText => A::BadText,
            SysError::NetDown => A::NetDown,
            SysError::NoNetwork => A::NoNetwork,
        };
        (a, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_distinct_abi_status_or_a_reason_to_share() {
        assert_eq!(SysError::BadAddress.to_abi().0, abi::Status::BadAddress);
        assert_eq!(
            SysError::BufferTooSmall(77).to_abi(),
            (abi::Status::BufferTooSmall, 77)
        );
        assert_eq!(
            SysError::Event(events::Status::Remote(2)).to_abi(),
            (abi::Status::Remote, 2)
        );
        // A foreign event id reads like an unknown one.
        assert_eq!(
            SysError::Event(events::Status::NotOwner).to_abi().0,
            SysError::Event(events::Status::UnknownEvent).to_abi().0
        );
        assert_eq!(
            event_status(events::Status::Faulted).0,
            abi::Status::Faulted
        );
        assert_eq!(
            event_status(events::Status::NotServed).0,
            abi::Status::NotServed
        );
        assert_eq!(
            event_status(events::Status::Rebound).0,
            abi::Status::Rebound
        );
        assert_eq!(
            event_status(events::Status::PeerGone).0,
            abi::Status::PeerGone
        );
    }
}
