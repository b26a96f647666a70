//! What a completed event carries.
//!
//! An event is created with the [`ValueKind`] its completion will carry (a read promises
//! bytes, an open promises a file descriptor, a write promises nothing but its status), so
//! a completion of the wrong shape is caught where it happens, not when the process
//! retires the event.

use alloc::vec::Vec;

/// The shape of value an event promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Only the completion status (a write, a sleep).
    Empty,
    /// An owned byte buffer (a read, a random-bytes request, a packet).
    Bytes,
    /// A file descriptor.
    Fd,
    /// A small number (a byte count, a time).
    Word,
}

/// The value an event completes with; retiring the event hands it to the process.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Value {
    /// No value.
    #[default]
    Empty,
    /// An owned byte buffer.
    Bytes(Vec<u8>),
    /// A file descriptor.
    Fd(u32),
    /// A small number.
    Word(u64),
}

impl Value {
    /// The kind of this value.
    pub const fn kind(&self) -> ValueKind {
        match self {
            Value::Empty => ValueKind::Empty,
            Value::Bytes(_) => ValueKind::Bytes,
            Value::Fd(_) => ValueKind::Fd,
            Value::Word(_) => ValueKind::Word,
        }
    }

    /// Whether this value may complete an event of kind `kind` with status `ok`:
    /// it must be of that kind, except that a failed completion may carry nothing.
    pub(crate) fn fits(&self, kind: ValueKind, ok: bool) -> bool {
        self.kind() == kind || (!ok && matches!(self, Value::Empty))
    }
}
