//! The console: `Print`, and the writer behind [`print!`](crate::print!)
//! and [`println!`](crate::println!).
//!
//! The kernel prints each `Print` as one console line tagged with the
//! program's pid. The writer formats into a fixed buffer on the stack
//! ([`LINE`] bytes) and never allocates: a newline ends a line (one call,
//! without the newline), a line longer than the buffer goes out in several
//! calls, split at a character boundary (the kernel wants UTF-8), and what
//! is left when the macro ends is one more call. So `print!("a")` followed
//! by `print!("b")` is two lines: there is no partial line across calls.

use core::fmt;

use abi::{Call, Status};

use crate::sys::{self, args, buf};

/// Bytes of one `Print` call from the writer.
pub const LINE: usize = 200;

/// `Print(text)`: one console line, tagged with the pid.
///
/// Errors: [`Status::BadLength`] (more than [`abi::MAX_BUFFER`] bytes),
/// [`Status::BadAddress`].
pub fn print(text: &str) -> Result<(), Status> {
    let (p, n) = buf(text.as_bytes());
    sys::call_unit(Call::Print, args([p, n]))
}

/// A line buffer that sends each line with `Print`. Errors of the calls
/// are counted, not returned: printing has nowhere to report them.
pub struct Writer {
    buf: [u8; LINE],
    len: usize,
    failed: u32,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// An empty writer.
    pub const fn new() -> Writer {
        Writer {
            buf: [0; LINE],
            len: 0,
            failed: 0,
        }
    }

    /// Sends what is buffered, if anything, as one line.
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        // Only whole characters are ever buffered (see `push`).
        let text = core::str::from_utf8(&self.buf[..self.len]).unwrap_or("");
        if print(text).is_err() {
            self.failed = self.failed.saturating_add(1);
        }
        self.len = 0;
    }

    /// How many `Print` calls failed.
    pub fn failures(&self) -> u32 {
        self.failed
    }

    /// Appends text without a newline, sending full buffers as they fill.
    fn push(&mut self, mut s: &str) {
        while !s.is_empty() {
            let room = LINE - self.len;
            if s.len() <= room {
                self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
                self.len += s.len();
                return;
            }
            // The longest prefix that fits and ends on a character boundary
            // (a boundary is at most 3 bytes back).
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut == 0 && self.len == 0 {
                // Cannot happen with LINE >= 4; never loop.
                return;
            }
            self.buf[self.len..self.len + cut].copy_from_slice(&s.as_bytes()[..cut]);
            self.len += cut;
            self.flush();
            s = &s[cut..];
        }
    }
}

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut lines = s.split('\n');
        if let Some(first) = lines.next() {
            self.push(first);
        }
        for line in lines {
            // Each '\n' ends the line so far, even an empty one.
            if self.len == 0 {
                if print("").is_err() {
                    self.failed = self.failed.saturating_add(1);
                }
            } else {
                self.flush();
            }
            self.push(line);
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
    }
}

/// What [`print!`](crate::print!) expands to: formats `args` through a
/// [`Writer`] and sends the rest.
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let mut w = Writer::new();
    let _ = fmt::Write::write_fmt(&mut w, args);
    w.flush();
}

/// Prints to the console through `Print`: formats into a stack buffer,
/// one call per line (see [`crate::console`]). Never allocates.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::print_fmt(::core::format_args!($($arg)*))
    };
}

/// [`print!`](crate::print!) and the end of the line: `println!()` is
/// an empty line.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::print_fmt(::core::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::console::print_fmt(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}
