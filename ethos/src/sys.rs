//! Decoding what a call returned, shared by the family modules.

use abi::{Call, Status};

use crate::event::Event;
use crate::raw;

/// The status in `rax`, or in the low 32 bits of an event's status word.
///
/// A code this library does not know (a kernel newer than it) decodes as
/// [`Status::InvalidArgument`]: the ABI has no "unknown status" value, and
/// treating it as success would be worse.
pub(crate) fn status(code: u64) -> Status {
    u32::try_from(code)
        .ok()
        .and_then(Status::from_code)
        .unwrap_or(Status::InvalidArgument)
}

/// `rax` as a result: `Ok((result 0, result 1))` or the call's status.
pub(crate) fn check((rax, r0, r1): raw::Ret) -> Result<(u64, u64), Status> {
    match status(rax) {
        Status::Ok => Ok((r0, r1)),
        s => Err(s),
    }
}

/// A read-only call: its two results.
pub(crate) fn call(c: Call, a: [u64; 6]) -> Result<(u64, u64), Status> {
    check(raw::call(c, a))
}

/// A read-only call that returns nothing.
pub(crate) fn call_unit(c: Call, a: [u64; 6]) -> Result<(), Status> {
    call(c, a).map(|_| ())
}

/// A read-only call that starts work: its event (result 0).
pub(crate) fn call_event(c: Call, a: [u64; 6]) -> Result<Event, Status> {
    call(c, a).map(|(id, _)| Event::from_raw(id))
}

/// A buffer's `(pointer, length)` words.
pub(crate) fn buf(b: &[u8]) -> (u64, u64) {
    (b.as_ptr() as u64, b.len() as u64)
}

/// Arguments padded to six.
pub(crate) fn args<const N: usize>(a: [u64; N]) -> [u64; 6] {
    let mut out = [0; 6];
    out[..N].copy_from_slice(&a);
    out
}
