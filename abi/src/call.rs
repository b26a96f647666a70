//! The call numbers.

/// A system call, by number (`rax` at `syscall`). Arguments and results
/// are listed as `args -> results`; a buffer is `(ptr, len)`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// `() -> pid`.
    Pid = 0,
    /// `() -> ns`: the kernel's clock (Xen system time, monotonic).
    Time = 1,
    /// `() -> (seconds, nanoseconds)` since the Unix epoch.
    WallClock = 2,
    /// `(code) -> !`: ends the calling program.
    Exit = 3,
    /// `(text ptr, len) -> ()`: a line on the console, tagged with the pid.
    Print = 4,
    /// `(deadline ns) -> event`: completes at the deadline with the time.
    Beep = 5,
    /// `(tree ptr, elements, out ptr, out capacity) -> (ids written,
    /// leaves complete)`: waits until the tree's root completes; the ids of
    /// the leaves that had completed (or been cancelled) by then are written
    /// to `out`, as u64s, up to its capacity (in ids). Both pointers are
    /// 8-byte aligned. A tree already satisfied returns at once.
    Block = 6,
    /// `(event, buf ptr, buf len) -> (event status, value)`: see
    /// [`crate::retire`]. A buffer too small for the bytes is
    /// [`crate::Status::BufferTooSmall`] with the length needed in result 1,
    /// and the event stays.
    Retire = 7,
    /// `(event) -> ()`: a later completion is ignored; retiring it says
    /// [`crate::Status::Cancelled`].
    Cancel = 8,
    /// `(name ptr, len, args ptr, len, rights) -> (pid, exit event)`:
    /// starts a program of the boot archive with NUL-separated arguments
    /// and the [`crate::rights`] given (at most the caller's); the exit
    /// event completes with its exit status (a word), or
    /// [`crate::Status::Faulted`] with the vector in the word. Needs
    /// [`crate::rights::SPAWN`].
    Spawn = 9,
    /// `() -> (cap, revoked event)`: a zeroed page.
    PageAlloc = 10,
    /// `(cap, va) -> ()`: maps the page at a page-aligned address of the
    /// heap region.
    PageBind = 11,
    /// `(cap) -> ()`.
    PageUnbind = 12,
    /// `(cap) -> ()`: gives the page back; its revoked event completes.
    PageFree = 13,
    /// `(cap, peer domid, readonly) -> grant ref`.
    PageGrant = 14,
    /// `(cap) -> ()`.
    PageUngrant = 15,
    /// `(path ptr, len, tx) -> event` (bytes).
    XsRead = 16,
    /// `(path ptr, len, value ptr, len, tx) -> event`.
    XsWrite = 17,
    /// `(path ptr, len, tx) -> event` (NUL-separated names).
    XsDirectory = 18,
    /// `(path ptr, len, tx) -> event`.
    XsRm = 19,
    /// `() -> event` (the transaction id, a word).
    XsTransactionStart = 20,
    /// `(tx, commit) -> event`.
    XsTransactionEnd = 21,
    /// `(path ptr, len) -> (watch, event)`.
    XsWatch = 22,
    /// `(watch) -> event` (the fired path, bytes).
    XsWatchNext = 23,
    /// `(watch) -> event`.
    XsUnwatch = 24,
    /// `(remote domid) -> (handle, port)`: an event channel domain
    /// `remote` may bind. The caller names it by the handle (result 0) in
    /// every later call; the Xen port (result 1) is the number to tell the
    /// peer, and it is not a handle.
    ///
    /// Handles, not ports, because ports are the domain's: a restore or a
    /// migration makes a new domain where every old port is gone. The
    /// kernel then allocates such a channel again for the same `remote`:
    /// same handle, a new port, and the channel's wait completes with
    /// [`crate::Status::Rebound`], the new port as its word (the pending
    /// wait at once, else the next wait, once), so the process can tell
    /// its peer without polling. (The event rather than a query call: the
    /// process learns it where it already waits on the channel, and
    /// nothing is missed between a restore and a query.)
    EvtchnAllocUnbound = 25,
    /// `(remote domid, remote port) -> (handle, port)`: a channel bound to
    /// `remote port` of domain `remote`. After a restore the peer's side is
    /// gone with the old domain and this domain cannot bind it again
    /// alone: the handle's waits complete with [`crate::Status::PeerGone`]
    /// (the pending one at once, every later one too) and notify answers
    /// it, until the handle is closed. The peer must offer a new port.
    EvtchnBindInterdomain = 26,
    /// `(handle) -> ()`: notifies the peer.
    EvtchnNotify = 27,
    /// `(handle) -> event`: completes at the next notification, its word
    /// the notifications covered (those that came with nobody waiting are
    /// counted, not queued); or `Rebound`, `PeerGone` after a restore (see
    /// above). One wait at a time per handle ([`crate::Status::Busy`]).
    EvtchnWait = 28,
    /// `(handle) -> ()`: closes the channel; its wait completes
    /// [`crate::Status::Cancelled`].
    EvtchnClose = 29,
    /// `() -> event`: the RPC daemon answers.
    Ping = 30,
    /// `(len) -> event` (bytes from dom0).
    Random = 31,
    /// `(path ptr, len, offset, count) -> event` (bytes).
    FileRead = 32,
    /// `(path ptr, len, offset, data ptr, len, truncate) -> event` (bytes written).
    FileWrite = 33,
    /// `(path ptr, len) -> event` (kind u8, perm u16, size u64, mtime s i64, ns u32).
    FileInfo = 34,
    /// `(path ptr, len, cursor) -> event` (a done byte, then NUL-terminated names).
    DirList = 35,
    /// `(path ptr, len) -> event`.
    DirCreate = 36,
    /// `(path ptr, len) -> event`.
    Remove = 37,
    /// `(out ptr, len) -> bytes written`: the kernel's counters, as
    /// little-endian u64s (see `ethos::stats`).
    KernelStats = 38,
    /// `(port, backlog, large) -> handle`: listens on TCP `port` (1..=65535)
    /// with `backlog` (1..=[`crate::net::MAX_BACKLOG`]) sockets kept ready
    /// for connections; `large` (0 or 1) gives each 128 KiB buffers each
    /// way instead of 4 KiB (for bulk transfers). Needs
    /// [`crate::rights::NETWORK`]. The errors of every socket call are
    /// listed in [`crate::net`].
    TcpListen = 39,
    /// `(listener) -> event`: completes with the handle (a word) of the
    /// next connection. Needs [`crate::rights::NETWORK`].
    TcpAccept = 40,
    /// `(ipv4, port) -> (handle, event)`: connects to `ipv4:port` (the
    /// address in the low 32 bits, its first octet most significant, see
    /// [`crate::net::ipv4_word`]). The handle is valid at once; the event
    /// completes empty once connected, or [`crate::Status::Remote`] with
    /// [`crate::net::REFUSED`]. Needs [`crate::rights::NETWORK`].
    TcpConnect = 41,
    /// `(handle, max) -> event`: completes with up to `max`
    /// (1..=[`crate::MAX_BUFFER`]) received bytes; none at the end of the
    /// stream. Needs [`crate::rights::NETWORK`].
    SockRecv = 42,
    /// `(handle, data ptr, len) -> event`: `len` 1..=[`crate::MAX_BUFFER`];
    /// completes with how many of the bytes the socket took (a word, at
    /// least 1; the caller sends the rest again): back-pressure. Needs
    /// [`crate::rights::NETWORK`].
    SockSend = 43,
    /// `(handle) -> ()`: closes a socket (TCP: a FIN); its waiting events
    /// complete [`crate::Status::Cancelled`]. Needs
    /// [`crate::rights::NETWORK`].
    SockClose = 44,
    /// `(port) -> handle`: a UDP socket bound to `port` (1..=65535). Needs
    /// [`crate::rights::NETWORK`].
    UdpBind = 45,
    /// `(handle) -> event`: completes with the next datagram, as bytes: the
    /// sender's IPv4 address (4 bytes, first octet first), its port (2
    /// bytes, little-endian), then the payload
    /// ([`crate::net::UDP_HEADER`] bytes before it). Needs
    /// [`crate::rights::NETWORK`].
    UdpRecv = 46,
    /// `(handle, ipv4, port, data ptr, len) -> ()`: sends a datagram at
    /// once (`len` up to [`crate::MAX_BUFFER`]; [`crate::Status::Busy`]
    /// while the send buffer is full). Needs [`crate::rights::NETWORK`].
    UdpSend = 47,
    /// `(out ptr, len) -> bytes written`: the stack's and the device's
    /// counters as little-endian u64s, in the order of
    /// [`crate::net::STATS`]; [`crate::Status::NetDown`] while the stack
    /// is not up. Needs no right (like [`Call::KernelStats`]).
    NetStats = 48,
    /// `(path ptr, len, perms ptr, len, tx) -> event`: sets a node's
    /// permissions. The perms are xenstore's permission words, each ended
    /// by a NUL: the first names the owner and what everyone else may do
    /// (`n5`: domain 5 owns it, others none), each further one a domain
    /// and its access (`r0`: dom0 may read); letters `n`, `r`, `w`, `b`.
    /// At most [`crate::MAX_PERMS`] words. Needs
    /// [`crate::rights::XENSTORE_WRITE`].
    XsSetPerms = 49,
    /// `(out ptr, len) -> (pending, completed | cancelled << 32)`: the
    /// caller's events not yet retired, as little-endian u64 ids into
    /// `out` (8-aligned): the pending ones, then the completed, then the
    /// cancelled; the results count each. [`crate::Status::BufferTooSmall`]
    /// (with the bytes needed) when they do not all fit: nothing written.
    List = 50,
    /// `() -> event`: an event that completes when the toolstack asks this
    /// domain to stop (`xl shutdown`, `xl reboot`), with the kind as a
    /// word ([`crate::shutdown`]); at once if it has asked already. The
    /// kernel then gives the processes that hold one a grace period
    /// ([`crate::shutdown::GRACE_NS`]) to finish before it ends them. One
    /// pending per process ([`crate::Status::Busy`] for a second).
    ShutdownEvent = 51,
}

impl Call {
    /// How many calls there are: numbers `0..COUNT`.
    pub const COUNT: u64 = 52;

    /// The call with number `n`, if there is one.
    pub fn from_number(n: u64) -> Option<Call> {
        use Call::*;
        const ALL: [Call; 52] = [
            Pid,
            Time,
            WallClock,
            Exit,
            Print,
            Beep,
            Block,
            Retire,
            Cancel,
            Spawn,
            PageAlloc,
            PageBind,
            PageUnbind,
            PageFree,
            PageGrant,
            PageUngrant,
            XsRead,
            XsWrite,
            XsDirectory,
            XsRm,
            XsTransactionStart,
            XsTransactionEnd,
            XsWatch,
            XsWatchNext,
            XsUnwatch,
            EvtchnAllocUnbound,
            EvtchnBindInterdomain,
            EvtchnNotify,
            EvtchnWait,
            EvtchnClose,
            Ping,
            Random,
            FileRead,
            FileWrite,
            FileInfo,
            DirList,
            DirCreate,
            Remove,
            KernelStats,
            TcpListen,
            TcpAccept,
            TcpConnect,
            SockRecv,
            SockSend,
            SockClose,
            UdpBind,
            UdpRecv,
            UdpSend,
            NetStats,
            XsSetPerms,
            List,
            ShutdownEvent,
        ];
        ALL.get(usize::try_from(n).ok()?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::Call;

    #[test]
    fn numbers_round_trip_and_unknown_ones_are_none() {
        for n in 0..Call::COUNT {
            let call = Call::from_number(n).expect("known");
            assert_eq!(call as u64, n);
        }
        assert_eq!(Call::from_number(Call::COUNT), None);
        assert_eq!(Call::from_number(u64::MAX), None);
    }
}
