//! Each guest's storage budget: bytes, directory entries and the size of one file,
//! counted by the daemon.
//!
//! # Why the daemon counts
//!
//! Every guest's folder lives on one dom0 file system. Without a budget one guest can
//! write until that file system is full or out of inodes, and then every other guest
//! (and dom0) fails. File-system quotas (project quotas) need a file system and an
//! administrator that have them; the daemon's own count works on any, so it is what is
//! enforced, and a file system that also enforces one only adds a second fence
//! (`ENOSPC`/`EDQUOT` from it are `NoSpace` as well).
//!
//! # What is counted
//!
//! * **Bytes**: the sum of the sizes (`st_size`) of the regular files below the guest's
//!   folder. The apparent size, not the blocks: a write at a large offset counts the hole
//!   it leaves, so a guest cannot claim a sparse terabyte that later fills in.
//! * **Entries**: everything below the folder (files, directories, links, whatever an
//!   administrator put there), not the folder itself.
//! * **One file** may not grow past [`Budget::file_bytes`].
//!
//! The count starts from a scan of the folder when the guest attaches ([`scan`]) and then
//! follows every `FileWrite`, `DirCreate` and `Remove` the daemon runs for the guest. A
//! guest's changing requests hold its [`Ledger`] while they run, so they run one at a time
//! per guest (its reads and pings do not wait, nor do other guests): the count is then
//! exact rather than an estimate two racing writes could fool. After a write the file is
//! measured again, so a write that failed half-way (the disk really was full) is counted
//! as what it left.
//!
//! # What a guest sees
//!
//! A write or create that would pass the byte or entry budget is refused *before*
//! anything changes, with [`Status::NoSpace`]; one that would make a file larger than
//! [`Budget::file_bytes`] gets [`Status::TooLarge`] (as `EFBIG` does). `Remove` gives the
//! budget back. Other guests are untouched: each has its own count.
//!
//! What the daemon cannot see (an administrator copying files into a guest's folder
//! while it is served) is found at the next attach.

use std::fmt;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rpc::Status;

use crate::error::OpError;

/// Entries a scan counts before it stops: a folder an administrator filled far past any
/// budget is not walked to the end (it is over budget either way; the guest can only
/// remove until it is below).
pub const SCAN_LIMIT: u64 = 1 << 20;

/// What one guest may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Sum of the sizes of its regular files.
    pub bytes: u64,
    /// Entries below its folder.
    pub entries: u64,
    /// Size of one file.
    pub file_bytes: u64,
}

impl Budget {
    /// No budget: nothing is counted or refused (the library's default, for callers that
    /// enforce none).
    pub const UNLIMITED: Budget = Budget {
        bytes: u64::MAX,
        entries: u64::MAX,
        file_bytes: u64::MAX,
    };

    /// Whether this budget limits anything.
    pub fn is_unlimited(&self) -> bool {
        *self == Budget::UNLIMITED
    }
}

impl Default for Budget {
    /// 1 GiB in at most 10,000 entries, files of at most 256 MiB: room for what a guest
    /// keeps (logs, small databases, a few images), while ten guests cannot fill a
    /// modest dom0 disk.
    fn default() -> Self {
        Budget {
            bytes: 1 << 30,
            entries: 10_000,
            file_bytes: 256 << 20,
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unlimited() {
            return f.write_str("no budget");
        }
        write!(
            f,
            "{} bytes, {} entries, files of at most {} bytes",
            self.bytes, self.entries, self.file_bytes
        )
    }
}

/// What a guest holds, as far as the daemon counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sum of the sizes of its regular files.
    pub bytes: u64,
    /// Entries below its folder.
    pub entries: u64,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes in {} entries", self.bytes, self.entries)
    }
}

/// One guest's budget and count; see the [module documentation](self).
#[derive(Debug)]
pub struct Quota {
    budget: Budget,
    used: Mutex<Usage>,
}

impl Quota {
    /// A quota that counts from `used` (normally what [`scan`] found).
    pub fn new(budget: Budget, used: Usage) -> Quota {
        Quota {
            budget,
            used: Mutex::new(used),
        }
    }

    /// No budget, nothing counted.
    pub fn unlimited() -> Quota {
        Quota::new(Budget::UNLIMITED, Usage::default())
    }

    /// The budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// What is counted now.
    pub fn usage(&self) -> Usage {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ledger a changing request holds while it runs (none without a budget).
    pub fn ledger(&self) -> Ledger<'_> {
        Ledger {
            budget: self.budget,
            used: (!self.budget.is_unlimited())
                .then(|| self.used.lock().unwrap_or_else(PoisonError::into_inner)),
        }
    }
}

/// A guest's count, held by one changing request at a time.
pub struct Ledger<'a> {
    budget: Budget,
    used: Option<MutexGuard<'a, Usage>>,
}

fn no_space(what: &'static str) -> OpError {
    OpError::Policy {
        status: Status::NoSpace,
        what,
    }
}

impl Ledger<'_> {
    /// Whether anything is counted (a budget is set).
    pub fn counts(&self) -> bool {
        self.used.is_some()
    }

    /// Refuses a file of `size` bytes past the file-size cap.
    pub fn check_file_size(&self, size: u64) -> Result<(), OpError> {
        if self.used.is_some() && size > self.budget.file_bytes {
            return Err(OpError::Policy {
                status: Status::TooLarge,
                what: "a file larger than the guest's file-size cap",
            });
        }
        Ok(())
    }

    /// Refuses a change that takes a file from `old` to `new` bytes and adds
    /// `new_entries` entries, if it would pass the budget. Nothing is counted yet.
    pub fn admit(&self, old: u64, new: u64, new_entries: u64) -> Result<(), OpError> {
        let Some(used) = &self.used else {
            return Ok(());
        };
        self.check_file_size(new)?;
        if new_entries > 0 && used.entries.saturating_add(new_entries) > self.budget.entries {
            return Err(no_space("the guest's entry budget is used up"));
        }
        if new > old && used.bytes.saturating_add(new - old) > self.budget.bytes {
            return Err(no_space("the guest's byte budget is used up"));
        }
        Ok(())
    }

    /// Counts a change that took a file from `old` to `new` bytes and added
    /// `new_entries` entries.
    pub fn grew(&mut self, old: u64, new: u64, new_entries: u64) {
        if let Some(used) = &mut self.used {
            used.bytes = used.bytes.saturating_sub(old).saturating_add(new);
            used.entries = used.entries.saturating_add(new_entries);
        }
    }

    /// Counts an entry of `bytes` bytes (0 unless a regular file) that went away.
    pub fn removed(&mut self, bytes: u64) {
        if let Some(used) = &mut self.used {
            used.bytes = used.bytes.saturating_sub(bytes);
            used.entries = used.entries.saturating_sub(1);
        }
    }
}

/// Parses a size as the command line spells it: a decimal number of bytes, or one with
/// a binary suffix `K`, `M`, `G` or `T` (powers of 1024; `KiB`, `MiB`, ... too).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    let shift = match unit {
        "" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (K, M, G or T)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (a number, then K, M, G or T)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// One guest's own budget, `NAME=BYTES,ENTRIES` on the command line (`--quota`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The guest's name.
    pub guest: String,
    /// Its byte budget.
    pub bytes: u64,
    /// Its entry budget.
    pub entries: u64,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not NAME=BYTES,ENTRIES (e.g. web=2G,50000)");
        let (guest, rest) = s.split_once('=').ok_or_else(bad)?;
        let (bytes, entries) = rest.split_once(',').ok_or_else(bad)?;
        crate::confine::GuestName::new(guest).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(Override {
            guest: guest.to_string(),
            bytes: parse_size(bytes)?,
            entries: entries.parse().map_err(|_| bad())?,
        })
    }
}

/// Counts what is below a folder: every entry, and the sizes of the regular files,
/// without following symbolic links; stops after [`SCAN_LIMIT`] entries (the result is
/// then a lower bound, already far over any sane budget).
///
/// The walk keeps a list of directories still to read, not an open handle per level,
/// so neither its memory nor its file descriptors grow with the depth of the tree.
pub fn scan(dir: &cap_std::fs::Dir) -> io::Result<Usage> {
    let mut used = Usage::default();
    let mut pending: Vec<std::path::PathBuf> = vec![std::path::PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let entries = if rel.as_os_str().is_empty() {
            dir.entries()?
        } else {
            dir.read_dir(&rel)?
        };
        for entry in entries {
            let entry = entry?;
            used.entries += 1;
            if used.entries >= SCAN_LIMIT {
                return Ok(used);
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(rel.join(entry.file_name()));
            } else if kind.is_file() {
                used.bytes = used.bytes.saturating_add(entry.metadata()?.len());
            }
        }
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: u64, entries: u64, file_bytes: u64) -> Budget {
        Budget {
            bytes,
            entries,
            file_bytes,
        }
    }

    #[test]
    fn admits_up_to_the_budget_and_no_further() {
        let q = Quota::new(budget(100, 3, 60), Usage::default());
        let mut l = q.ledger();
        assert!(l.counts());
        l.admit(0, 60, 1).unwrap();
        l.grew(0, 60, 1);
        assert_eq!(l.admit(0, 41, 1).unwrap_err().status(), Status::NoSpace);
        l.admit(0, 40, 1).unwrap();
        l.grew(0, 40, 1);
        // Shrinking or rewriting in place is always fine.
        l.admit(60, 10, 0).unwrap();
        assert_eq!(l.admit(60, 61, 0).unwrap_err().status(), Status::TooLarge);
        l.admit(0, 0, 1).unwrap();
        l.grew(0, 0, 1);
        assert_eq!(l.admit(0, 0, 1).unwrap_err().status(), Status::NoSpace);
        l.removed(40);
        drop(l);
        assert_eq!(
            q.usage(),
            Usage {
                bytes: 60,
                entries: 2
            }
        );
    }

    #[test]
    fn sizes_and_overrides_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("3K"), Ok(3072));
        for bad in ["", "G", "1.5G", "-1", "1 G", "1g", "1P", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            "web=2G,500".parse(),
            Ok(Override {
                guest: "web".into(),
                bytes: 2 << 30,
                entries: 500
            })
        );
        for bad in ["web", "web=2G", "=1,2", "../x=1,2", "web=1,x", "web=x,1"] {
            assert!(bad.parse::<Override>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unlimited_counts_nothing() {
        let q = Quota::unlimited();
        let mut l = q.ledger();
        assert!(!l.counts());
        l.admit(0, u64::MAX, u64::MAX).unwrap();
        l.grew(0, 5, 1);
        drop(l);
        assert_eq!(q.usage(), Usage::default());
    }

    #[test]
    fn scan_counts_entries_and_file_bytes_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("a/b/c")).unwrap();
        std::fs::write(base.join("a/f"), vec![0u8; 10]).unwrap();
        std::fs::write(base.join("a/b/c/g"), vec![0u8; 5]).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("link")).unwrap();
        let dir = cap_std::fs::Dir::open_ambient_dir(base, cap_std::ambient_authority()).unwrap();
        assert_eq!(
            scan(&dir).unwrap(),
            Usage {
                bytes: 15,
                entries: 6
            }
        );
    }
}
