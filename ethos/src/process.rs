//! The program itself: its pid, ending it, starting others.

use abi::{Call, Status, MAX_ARGS_BYTES, MAX_NAME};

use crate::event::{self, Event, Retired};
use crate::sys::{self, args, buf};

/// `Pid()`: the calling program's pid.
pub fn pid() -> Result<u32, Status> {
    sys::call(Call::Pid, args([])).map(|(p, _)| p as u32)
}

/// `Exit(code)`: ends the program; its exit event (held by whoever spawned
/// it) completes with `code` as a word (sign-extended to 64 bits).
pub fn exit(code: i32) -> ! {
    crate::raw::exit(i64::from(code) as u64)
}

/// `Spawn(name, args, rights)`: starts program `name` of the boot archive
/// with none of the [`abi::rights`] (see [`spawn_with`]): it cannot spawn,
/// write xenstore, reach other domains or open sockets (a network program
/// needs [`abi::rights::NETWORK`], which `ethos.init` has as part of
/// [`abi::rights::ALL`]). `args` go to it
/// NUL-separated; the kernel makes `name` its argument 0 (see
/// [`crate::Args`]), so `args` are the ones after the name. Returns its pid
/// and its exit event, which completes when it ends: retire it with
/// [`wait`] (or [`crate::event::retire_word`]). Needs
/// [`abi::rights::SPAWN`].
///
/// Errors: [`Status::NoSuchProgram`], [`Status::BadProgram`],
/// [`Status::TooManyProcesses`], [`Status::NotPermitted`],
/// [`Status::TooLarge`] (a name over [`MAX_NAME`] bytes, or arguments over
/// [`MAX_ARGS_BYTES`] joined, checked here before the call),
/// [`Status::InvalidArgument`] (an argument containing a NUL).
pub fn spawn(name: &str, argv: &[&str]) -> Result<(u32, Event), Status> {
    spawn_with(name, argv, 0)
}

/// [`spawn`], giving the child `rights` (`abi::rights`; the kernel keeps
/// only those the caller has): [`abi::rights::SPAWN`] to start programs
/// itself, [`abi::rights::XENSTORE_WRITE`], [`abi::rights::FOREIGN`]
/// (grants and event channels to other domains), [`abi::rights::NETWORK`]
/// for the sockets of [`crate::net`]. The first program (`ethos.init`)
/// has [`abi::rights::ALL`]; a child spawned with [`spawn`] has none, so
/// it cannot open a socket.
pub fn spawn_with(name: &str, argv: &[&str], rights: u32) -> Result<(u32, Event), Status> {
    if name.len() > MAX_NAME {
        return Err(Status::TooLarge);
    }
    let mut joined = [0u8; MAX_ARGS_BYTES];
    let len = join_args(argv, &mut joined)?;
    let (np, nl) = buf(name.as_bytes());
    let (ap, al) = buf(&joined[..len]);
    let (pid, exit) = sys::call(Call::Spawn, args([np, nl, ap, al, u64::from(rights)]))?;
    Ok((pid as u32, Event::from_raw(exit)))
}

/// Joins `argv` with NUL separators into `out`; returns the length.
pub(crate) fn join_args(argv: &[&str], out: &mut [u8]) -> Result<usize, Status> {
    let mut len = 0;
    for (i, a) in argv.iter().enumerate() {
        if a.as_bytes().contains(&0) {
            return Err(Status::InvalidArgument);
        }
        let sep = usize::from(i > 0);
        let end = len + sep + a.len();
        if end > out.len() {
            return Err(Status::TooLarge);
        }
        out[len..len + sep].fill(0);
        out[len + sep..end].copy_from_slice(a.as_bytes());
        len = end;
    }
    Ok(len)
}

/// How a program ended, from its exit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `Exit` (or returned from main) with this code.
    Code(i32),
    /// The kernel ended it for a fault with this vector (14: page fault,
    /// 13: general protection, 6: invalid opcode, ...).
    Faulted(u64),
}

/// `exit 0`, `fault 14`: how a program ended, for a person.
impl core::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Faulted(v) => write!(f, "fault {v}"),
        }
    }
}

impl ExitStatus {
    /// Decodes a retired exit event: [`Status::Faulted`] carries the vector,
    /// [`Status::Ok`] the code; any other event status is an error.
    pub fn from_retired(r: Retired<u64>) -> Result<ExitStatus, Status> {
        match r.status {
            Status::Ok => Ok(ExitStatus::Code(r.value as i32)),
            Status::Faulted => Ok(ExitStatus::Faulted(r.value)),
            s => Err(s),
        }
    }
}

/// Blocks until the program whose exit event is `exit` ends; says how.
pub fn wait(exit: Event) -> Result<ExitStatus, Status> {
    ExitStatus::from_retired(event::block_and_retire(exit)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_joined_with_nul_and_bounded() {
        let mut out = [0xffu8; 16];
        assert_eq!(join_args(&["ab", "", "c"], &mut out), Ok(5));
        assert_eq!(&out[..5], b"ab\0\0c");
        assert_eq!(join_args(&[], &mut out), Ok(0));
        assert_eq!(
            join_args(&["0123456789abcdefg"], &mut out),
            Err(Status::TooLarge)
        );
        assert_eq!(join_args(&["a\0b"], &mut out), Err(Status::InvalidArgument));
    }

    #[test]
    fn exit_status_decodes_codes_and_faults() {
        let r = |status, value| Retired {
            status,
            errno: 0,
            value,
        };
        assert_eq!(
            ExitStatus::from_retired(r(Status::Ok, (-1i64) as u64)),
            Ok(ExitStatus::Code(-1))
        );
        assert_eq!(
            ExitStatus::from_retired(r(Status::Faulted, 14)),
            Ok(ExitStatus::Faulted(14))
        );
        assert_eq!(
            ExitStatus::from_retired(r(Status::Cancelled, 0)),
            Err(Status::Cancelled)
        );
    }
}
