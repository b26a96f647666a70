//! Status codes: every outcome of a call or an event has a name and a
//! number. 0 is success; the numbers never change meaning.

use core::fmt;

macro_rules! statuses {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $text:literal; )*) => {
        /// The status of a system call (in `rax`) or of a retired event.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Status {
            $( $(#[$doc])* $name = $code, )*
        }

        impl Status {
            /// The status with code `code`; unknown codes are `None`.
            pub fn from_code(code: u32) -> Option<Status> {
                match code {
                    $( $code => Some(Status::$name), )*
                    _ => None,
                }
            }

            /// What it means, in a few words.
            pub fn text(self) -> &'static str {
                match self {
                    $( Status::$name => $text, )*
                }
            }

            /// Every status, for tests and tables.
            pub const ALL: &'static [Status] = &[ $( Status::$name, )* ];
        }
    };
}

statuses! {
    /// Success.
    Ok = 0, "ok";
    /// A peer (xenstore, the RPC daemon) refused; its errno is alongside.
    Remote = 1, "remote error";
    /// The event has not completed yet.
    NotComplete = 2, "event not complete";
    /// No such event for this process (also for another process's events:
    /// a program cannot tell whether someone else's id is live).
    UnknownEvent = 3, "unknown event";
    /// The event was already complete.
    AlreadyComplete = 4, "event already complete";
    /// The event was cancelled.
    Cancelled = 5, "event cancelled";
    /// The process has too many events.
    QuotaExceeded = 6, "event quota exceeded";
    /// The kernel's event table is full.
    TableFull = 7, "event table full";
    /// The wait tree is larger than allowed.
    TreeTooLarge = 8, "wait tree too large";
    /// The wait tree is empty.
    EmptyTree = 9, "wait tree empty";
    /// The wait tree is malformed (no root, a leaf after the root, a bad
    /// parent index, a cycle, a count out of range, unsorted or duplicated
    /// leaves).
    BadTree = 10, "wait tree malformed";
    /// An event of the tree is already in another tree.
    EventInAnotherTree = 11, "event already in a wait tree";
    /// The kernel is out of memory for this call.
    OutOfMemory = 12, "out of memory";
    /// An argument is outside what the call accepts.
    InvalidArgument = 13, "invalid argument";
    /// Too many timers outstanding.
    TooManyTimers = 14, "too many timers outstanding";
    /// A Xen hypercall the call depends on failed.
    Hypervisor = 15, "hypercall failed";
    /// A bounded queue of the service is full: retry after some complete.
    Busy = 16, "busy: too many requests outstanding";
    /// The argument is larger than the service accepts.
    TooLarge = 17, "argument too large";
    /// No such handle (or it belongs to another process).
    BadHandle = 18, "no such handle";
    /// The connection to the service broke; it stays down.
    ServiceBroken = 19, "service connection broken";
    /// The capability was never issued by the kernel.
    ForgedCapability = 20, "forged capability";
    /// The capability names a page since freed or revoked.
    StaleCapability = 21, "stale capability";
    /// The capability belongs to another process.
    ForeignCapability = 22, "capability of another process";
    /// The page is already bound.
    AlreadyBound = 23, "page already bound";
    /// The page is not bound.
    NotBound = 24, "page not bound";
    /// A pointer is outside the user half, unmapped, or not writable where
    /// the call writes.
    BadAddress = 25, "bad address";
    /// The page is already granted.
    AlreadyGranted = 26, "page already granted";
    /// The page is not granted.
    NotGranted = 27, "page not granted";
    /// The peer still maps the page.
    StillMapped = 28, "peer still maps the page";
    /// A pointer is not aligned as the call needs.
    BadAlignment = 29, "bad alignment";
    /// A length is larger than the call accepts, or wraps.
    BadLength = 30, "bad length";
    /// The buffer is too small for the value; the length needed is
    /// alongside, and nothing was consumed.
    BufferTooSmall = 31, "buffer too small";
    /// No such call number.
    UnknownCall = 32, "unknown system call";
    /// The program was not given this right at spawn.
    NotPermitted = 33, "not permitted";
    /// No program of that name in the boot archive.
    NoSuchProgram = 34, "no such program";
    /// The program image is not a valid static ELF executable for us.
    BadProgram = 35, "bad program image";
    /// Too many processes alive, or spawns in flight.
    TooManyProcesses = 36, "too many processes";
    /// The process ended by a fault (its exit event carries the vector).
    Faulted = 37, "process faulted";
    /// Text is not valid UTF-8 where the call needs it.
    BadText = 38, "text not valid UTF-8";
    /// The process has no wait tree / is not blocked.
    NotBlocked = 39, "process has no wait tree";
    /// The network is not up.
    NetDown = 40, "network down";
    /// The image was built without networking (the kernel's `net`
    /// feature): no socket call can ever succeed here.
    NoNetwork = 41, "this image has no networking";
    /// The RPC daemon in dom0 said it will not serve this domain (its name
    /// is refused, or already served for another domain): an RPC event
    /// completes with this at once instead of waiting for an answer that
    /// would never come. The kernel's log says why.
    NotServed = 42, "the RPC daemon in dom0 will not serve this domain";
    /// An event-channel wait ([`crate::Call::EvtchnWait`]): the domain was
    /// restored or migrated, and the kernel allocated the channel again
    /// (it was allocated unbound for a remote domain): same handle, a new
    /// Xen port, the event's word. Tell the peer the new port; the next
    /// wait waits for notifications again.
    Rebound = 43, "event channel allocated again: tell the peer its new port";
    /// An event-channel wait or notify: the domain was restored or migrated
    /// and the channel could not be made again by this domain alone (it was
    /// bound to a peer's port, whose side went with the old domain). The
    /// handle is dead: every wait completes with this, every notify answers
    /// it, until it is closed.
    PeerGone = 44, "event channel's peer side lost with the old domain";
}

impl Status {
    /// The status's code, as in `rax`.
    pub fn code(self) -> u32 {
        self as u32
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(Status::from_code(s.code()), Some(*s));
            assert!(Status::ALL[..i].iter().all(|o| o.code() != s.code()));
            assert!(!s.text().is_empty());
        }
        assert_eq!(Status::from_code(0), Some(Status::Ok));
        assert_eq!(Status::from_code(9999), None);
    }
}
