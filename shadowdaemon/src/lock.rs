//! One daemon per state folder.
//!
//! Two daemons on one state folder each open the guests' journals: the second
//! rewrites (compacts) a journal under the first, which goes on appending to a file
//! that is no longer there, and exactly-once is silently lost. So `serve` takes an
//! exclusive `flock(2)` on `<state>/shadowdaemon.lock` before anything else and holds
//! it for its life; the file holds the holder's pid, so a second daemon is refused with
//! a line that names it. The lock belongs to the open file, so it goes when the
//! process does, however it ends (no stale lock after a `kill -9`).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// The lock file's name in the state folder.
pub const LOCK_FILE: &str = "shadowdaemon.lock";

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Held {
        /// The lock file.
        path: PathBuf,
        /// The pid it names, if it names one.
        pid: Option<u32>,
    },
    /// The file could not be opened, locked or written.
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        error: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held {
                path,
                pid: Some(pid),
            } => write!(
                f,
                "another shadowdaemon (pid {pid}) holds {}: one daemon per state folder",
                path.display()
            ),
            LockError::Held { path, pid: None } => write!(
                f,
                "another shadowdaemon holds {}: one daemon per state folder",
                path.display()
            ),
            LockError::Io { path, error } => write!(f, "cannot lock {}: {error}", path.display()),
        }
    }
}

impl StateLock {
    /// Takes the lock of `state_dir` (which must exist) and writes our pid into it.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let path = state_dir.join(LOCK_FILE);
        let io = |error| LockError::Io {
            path: path.clone(),
            error,
        };
        // Not truncated on open: the holder's pid stays readable for a second daemon.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                // A pid is a few digits; read no more than that.
                let mut text = String::new();
                let _ = (&mut file).take(32).read_to_string(&mut text);
                let pid = text.trim().parse().ok();
                return Err(LockError::Held { path, pid });
            }
            Err(e) => return Err(io(e.into())),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(StateLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        match StateLock::acquire(dir.path()) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        let e = StateLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "another shadowdaemon (pid {})",
                std::process::id()
            )),
            "{e}"
        );
        drop(first);
        StateLock::acquire(dir.path()).expect("free once released");
    }
}
