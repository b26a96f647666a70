//! Each guest's folder, `<root>/<guest-name>/`, and the rules that keep a guest inside it.
//!
//! # Guest names
//!
//! A guest's name comes from xenstore, which the guest can influence, so it is hostile
//! until [`GuestName::new`] accepts it: 1 to [`MAX_GUEST_NAME`] bytes of
//! `[A-Za-z0-9._-]`, and not `.` or `..`. Such a name is one plain path component: it can
//! name neither the root itself, nor its parent, nor anything below another folder.
//!
//! # Guest paths
//!
//! A guest names files by relative, `/`-separated UTF-8 paths (the rpc crate already
//! guarantees 1..=1024 bytes without NUL). Before anything touches the file system,
//! [`check_path`] refuses, with [`Status::Invalid`](rpc::Status::Invalid) (the request is
//! malformed by the daemon's rules):
//!
//! * an absolute path (leading `/`);
//! * any `..` component;
//! * any empty component (`a//b`, a trailing `/`);
//! * any `.` component, except that the whole path `.` names the guest's folder itself
//!   (so the guest can list and stat its root; every other file has exactly one
//!   spelling).
//!
//! # Resolution
//!
//! Every operation resolves the checked path *beneath an open handle* of the guest's
//! folder, never through a path string from `/`. This is [`cap_std`]: on Linux ≥ 5.6 it
//! is `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, where the kernel itself
//! refuses (`EXDEV`) any resolution step that leaves the folder; without `openat2` it
//! walks the components with `openat(O_NOFOLLOW)` from the handle, reading each symlink
//! itself and refusing one that is absolute or climbs out. Symlinks that stay inside the
//! folder are followed; one that points outside (absolute or through `..`, directly or
//! via other symlinks) is refused with
//! [`Status::PermissionDenied`](rpc::Status::PermissionDenied) ([`OpError::Escape`]).
//!
//! Operations on the last component do not follow it: `FileInfo` reports a symlink as a
//! symlink (`lstat`), `Remove` removes the link and not its target, `DirCreate` fails
//! with `Exists` on a link. Opening a file (`FileRead`, `FileWrite`) does follow a final
//! symlink, under the same beneath-the-folder rule, including `FileWrite` with `CREATE`
//! through a dangling link.
//!
//! # What this covers, and what it does not
//!
//! * **Races (TOCTOU).** Covered: no path is checked and then re-resolved. The check is
//!   the resolution, done relative to directory handles that stay valid whatever is
//!   renamed meanwhile, so a guest (or anyone) swapping a directory for a symlink while a
//!   request runs gets the swap refused, not followed outside. The operation on the last
//!   component (`mkdirat`, `unlinkat`, `fstatat(AT_SYMLINK_NOFOLLOW)`) works on the
//!   already-resolved parent handle.
//! * **One guest, one folder.** Each [`GuestRoot`] holds a handle of its own folder only;
//!   another guest's folder is outside it, so it is reachable neither by `..` (refused
//!   lexically) nor by a symlink (refused by resolution).
//! * **Not covered: hard links and mounts** made by someone with dom0 access (a hard link
//!   in a guest's folder to a file elsewhere, a bind mount inside it): they *are* inside
//!   the folder as far as any resolution can tell. Guests cannot create either (no op
//!   does). `RESOLVE_NO_XDEV` is not used, so a mount that an administrator put in a
//!   guest's folder is served.
//! * **Not covered: special files** made by someone with dom0 access. The operations
//!   refuse to read or write anything but regular files, and open with `O_NONBLOCK` so a
//!   FIFO cannot stall a worker before that check; opening a device node can still have
//!   the side effects of `open` itself.
//! * The guest's folder is created (mode 0700) on first use; if `<root>/<name>` exists
//!   but is a symlink or not a directory, the guest is refused rather than served there.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use cap_std::ambient_authority;
use cap_std::fs::{
    Dir, DirBuilder, DirBuilderExt as _, File, Metadata, MetadataExt as _, OpenOptions, ReadDir,
};

use crate::error::OpError;
use crate::quota::{scan, Budget, Quota, Usage};
use crate::service::Paused;

/// Longest guest name accepted as a folder name.
pub const MAX_GUEST_NAME: usize = 64;

/// A guest's name that is safe to use as one folder name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GuestName(String);

/// Why a guest name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// Longer than [`MAX_GUEST_NAME`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte outside `[A-Za-z0-9._-]`.
    BadByte {
        /// Its position.
        position: usize,
        /// The byte.
        byte: u8,
    },
    /// `.` or `..`.
    Dots,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("empty guest name"),
            NameError::TooLong { len } => {
                write!(f, "guest name of {len} bytes (at most {MAX_GUEST_NAME})")
            }
            NameError::BadByte { position, byte } => write!(
                f,
                "guest name has byte {byte:#04x} at {position} (only A-Z a-z 0-9 . _ -)"
            ),
            NameError::Dots => f.write_str("guest name is . or .."),
        }
    }
}

impl std::error::Error for NameError {}

impl GuestName {
    /// Validates a name (see the [module documentation](self)).
    pub fn new(name: &str) -> Result<GuestName, NameError> {
        GuestName::from_bytes(name.as_bytes())
    }

    /// Validates a name as read from xenstore (raw bytes, perhaps not UTF-8).
    pub fn from_bytes(name: &[u8]) -> Result<GuestName, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_GUEST_NAME {
            return Err(NameError::TooLong { len: name.len() });
        }
        if let Some((position, &byte)) = name
            .iter()
            .enumerate()
            .find(|(_, b)| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        {
            return Err(NameError::BadByte { position, byte });
        }
        if name == b"." || name == b".." {
            return Err(NameError::Dots);
        }
        // Only ASCII bytes passed the check above.
        Ok(GuestName(String::from_utf8_lossy(name).into_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a guest path was refused before touching the file system. Each is
/// [`Status::Invalid`](rpc::Status::Invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRefusal {
    /// The path starts with `/`.
    Absolute,
    /// A component is `..`.
    DotDot,
    /// A component is empty (`a//b`, a trailing `/`).
    EmptyComponent,
    /// A component is `.` (only the whole path `.` is allowed).
    Dot,
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathRefusal::Absolute => "absolute path",
            PathRefusal::DotDot => "`..` component",
            PathRefusal::EmptyComponent => "empty component",
            PathRefusal::Dot => "`.` component",
        })
    }
}

/// What a guest path that passed [`check_path`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// The guest's folder itself (the path `.`).
    Root,
    /// Something below it, by a relative path of plain components.
    Below(&'a Path),
}

/// Applies the lexical rules of the [module documentation](self).
pub fn check_path(path: &str) -> Result<Target<'_>, PathRefusal> {
    if path == "." {
        return Ok(Target::Root);
    }
    if path.starts_with('/') {
        return Err(PathRefusal::Absolute);
    }
    for component in path.split('/') {
        match component {
            "" => return Err(PathRefusal::EmptyComponent),
            "." => return Err(PathRefusal::Dot),
            ".." => return Err(PathRefusal::DotDot),
            _ => {}
        }
    }
    Ok(Target::Below(Path::new(path)))
}

fn target(path: &str) -> Result<Target<'_>, OpError> {
    check_path(path).map_err(OpError::BadPath)
}

fn errno(e: i32) -> OpError {
    OpError::Io(io::Error::from_raw_os_error(e))
}

/// The folder under which every guest gets its own, held open.
pub struct Share {
    dir: Dir,
    path: PathBuf,
}

impl Share {
    /// Creates the folder if needed (like `mkdir -p`) and opens it. This is the only
    /// place the daemon resolves a path from `/`: the administrator's `--root`.
    pub fn open(path: &Path) -> io::Result<Share> {
        std::fs::create_dir_all(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(Share {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Checks that files can be made in the folder (a read-only mount, a folder made
    /// read-only by the service manager), by making and removing one. Its name holds a
    /// `~`, which no guest name does, so it can never be a guest's folder.
    pub fn check_writable(&self) -> io::Result<()> {
        let probe = format!(".shadowdaemon~probe-{}", std::process::id());
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        drop(self.dir.open_with(&probe, &options)?);
        self.dir.remove_file(&probe)
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The guest's folder, created (mode 0700) if missing. Refused (`ELOOP`,
    /// `ENOTDIR`) if `<root>/<name>` is a symlink or not a directory, and if it was
    /// swapped for something else between the check and the open.
    pub fn guest(&self, name: &GuestName) -> io::Result<GuestRoot> {
        let mut builder = DirBuilder::new();
        builder.mode(0o700);
        match self.dir.create_dir_with(name.as_str(), &builder) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // The name is one plain component, so the only link that could be followed is
        // `<root>/<name>` itself: check it is a directory, open it, and check that what
        // was opened is what was checked.
        let before = self.dir.symlink_metadata(name.as_str())?;
        if before.file_type().is_symlink() {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        if !before.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let dir = self.dir.open_dir(name.as_str())?;
        let after = dir.dir_metadata()?;
        if (before.dev(), before.ino()) != (after.dev(), after.ino()) {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        Ok(GuestRoot {
            name: name.clone(),
            dir,
            quota: Quota::unlimited(),
            listings: Mutex::default(),
            dir_entries_read: AtomicU64::new(0),
        })
    }
}

/// Directory listings paused between pages, per guest: the most kept.
pub const MAX_PAUSED_LISTINGS: usize = 4;

/// One guest's folder, held open; every operation is confined to it.
pub struct GuestRoot {
    name: GuestName,
    dir: Dir,
    quota: Quota,
    /// Listings paused between pages, oldest first, at most [`MAX_PAUSED_LISTINGS`]
    /// (see [`crate::service`]'s `DirList`).
    listings: Mutex<VecDeque<Paused>>,
    /// Directory entries read from the file system, for tests and benchmarks.
    dir_entries_read: AtomicU64,
}

impl GuestRoot {
    /// The guest's name (the folder's name).
    pub fn name(&self) -> &GuestName {
        &self.name
    }

    /// Holds the guest to `budget`, counting from a [`scan`] of its
    /// folder now (see [`crate::quota`]).
    pub fn with_budget(mut self, budget: Budget) -> io::Result<GuestRoot> {
        let used = if budget.is_unlimited() {
            Usage::default()
        } else {
            scan(&self.dir)?
        };
        self.quota = Quota::new(budget, used);
        Ok(self)
    }

    /// The guest's budget and what it holds.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Opens a file below the folder (following symlinks that stay inside).
    /// The folder itself is not a file (`EISDIR`).
    pub fn open(&self, path: &str, options: &OpenOptions) -> Result<File, OpError> {
        match target(path)? {
            Target::Root => Err(errno(libc::EISDIR)),
            Target::Below(p) => Ok(self.dir.open_with(p, options)?),
        }
    }

    /// Opens a directory to list it (following symlinks that stay inside): its identity
    /// (device, inode) and a stream of its entries of its own.
    pub fn open_listing(&self, path: &str) -> Result<((u64, u64), ReadDir), OpError> {
        let dir = match target(path)? {
            Target::Root => self.dir.open_dir(".")?,
            Target::Below(p) => self.dir.open_dir(p)?,
        };
        let meta = dir.dir_metadata()?;
        Ok(((meta.dev(), meta.ino()), dir.entries()?))
    }

    /// The identity (device, inode) of what `path` names now, following symlinks that
    /// stay inside.
    pub fn identity(&self, path: &str) -> Result<(u64, u64), OpError> {
        let meta = match target(path)? {
            Target::Root => self.dir.dir_metadata()?,
            Target::Below(p) => self.dir.metadata(p)?,
        };
        Ok((meta.dev(), meta.ino()))
    }

    /// Keeps a listing paused between pages, dropping the oldest beyond
    /// [`MAX_PAUSED_LISTINGS`].
    pub(crate) fn pause_listing(&self, paused: Paused) {
        let mut list = self.listings.lock().unwrap_or_else(PoisonError::into_inner);
        list.push_back(paused);
        while list.len() > MAX_PAUSED_LISTINGS {
            list.pop_front();
        }
    }

    /// Takes the listing of `path` paused where a page ended at `cursor`, if kept.
    pub(crate) fn resume_listing(&self, path: &str, cursor: u32) -> Option<Paused> {
        let mut list = self.listings.lock().unwrap_or_else(PoisonError::into_inner);
        let at = list
            .iter()
            .position(|p| p.path == path && p.next == cursor)?;
        list.remove(at)
    }

    /// Drops every paused listing: the next page of each is read from the start, as a
    /// listing the cache no longer holds is (tests compare the two).
    pub fn forget_listings(&self) {
        self.listings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Listings paused now (at most [`MAX_PAUSED_LISTINGS`]).
    pub fn paused_listings(&self) -> usize {
        self.listings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Counts `n` directory entries read from the file system.
    pub(crate) fn count_dir_entries(&self, n: u64) {
        self.dir_entries_read.fetch_add(n, Ordering::Relaxed);
    }

    /// Directory entries read from the file system so far, by every `DirList`.
    pub fn dir_entries_read(&self) -> u64 {
        self.dir_entries_read.load(Ordering::Relaxed)
    }

    /// Lists a directory (following symlinks that stay inside).
    pub fn read_dir(&self, path: &str) -> Result<ReadDir, OpError> {
        Ok(match target(path)? {
            Target::Root => self.dir.entries()?,
            Target::Below(p) => self.dir.read_dir(p)?,
        })
    }

    /// What a path names, without following a final symlink.
    pub fn symlink_metadata(&self, path: &str) -> Result<Metadata, OpError> {
        Ok(match target(path)? {
            Target::Root => self.dir.dir_metadata()?,
            Target::Below(p) => self.dir.symlink_metadata(p)?,
        })
    }

    /// Creates one directory (its parent must exist). The folder itself exists.
    pub fn create_dir(&self, path: &str) -> Result<(), OpError> {
        match target(path)? {
            Target::Root => Err(errno(libc::EEXIST)),
            Target::Below(p) => Ok(self.dir.create_dir(p)?),
        }
    }

    /// Removes a file, a symlink (not its target) or an empty directory. The folder
    /// itself is never removed.
    pub fn remove(&self, path: &str) -> Result<(), OpError> {
        let p = match target(path)? {
            Target::Root => {
                return Err(OpError::Policy {
                    status: rpc::Status::PermissionDenied,
                    what: "removing the guest's own folder",
                })
            }
            Target::Below(p) => p,
        };
        // `unlinkat` without AT_REMOVEDIR fails with EISDIR on a directory; only then
        // try `rmdir`, so a file costs one system call and nothing is stat'ed first.
        match self.dir.remove_file(p) {
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Ok(self.dir.remove_dir(p)?),
            other => Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc::Status;
    use std::os::unix::fs::{symlink, MetadataExt as _};

    fn share() -> (tempfile::TempDir, Share) {
        let tmp = tempfile::tempdir().unwrap();
        let share = Share::open(&tmp.path().join("share")).unwrap();
        (tmp, share)
    }

    fn guest(share: &Share, name: &str) -> GuestRoot {
        share.guest(&GuestName::new(name).unwrap()).unwrap()
    }

    fn status<T: fmt::Debug>(r: Result<T, OpError>) -> Status {
        r.expect_err("should fail").status()
    }

    #[test]
    fn guest_names_are_single_safe_components() {
        for ok in ["a", "guest-1", "Dom_U.2", "..a", "a..", &"x".repeat(64)] {
            assert_eq!(GuestName::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(GuestName::new(""), Err(NameError::Empty));
        assert_eq!(
            GuestName::new(&"x".repeat(65)),
            Err(NameError::TooLong { len: 65 })
        );
        assert_eq!(GuestName::new("."), Err(NameError::Dots));
        assert_eq!(GuestName::new(".."), Err(NameError::Dots));
        assert_eq!(
            GuestName::new("a/b"),
            Err(NameError::BadByte {
                position: 1,
                byte: b'/'
            })
        );
        for bad in ["/a", "a b", "a\0", "ä", "a\\b", "a\n", "*"] {
            assert!(
                matches!(GuestName::new(bad), Err(NameError::BadByte { .. })),
                "{bad:?}"
            );
        }
        assert!(GuestName::from_bytes(&[b'a', 0xff]).is_err());
    }

    #[test]
    fn lexical_rules() {
        assert_eq!(check_path("."), Ok(Target::Root));
        assert_eq!(check_path("a"), Ok(Target::Below(Path::new("a"))));
        assert_eq!(
            check_path("a/b.c/..d"),
            Ok(Target::Below(Path::new("a/b.c/..d")))
        );
        assert_eq!(check_path("/a"), Err(PathRefusal::Absolute));
        assert_eq!(check_path("/"), Err(PathRefusal::Absolute));
        assert_eq!(check_path(".."), Err(PathRefusal::DotDot));
        assert_eq!(check_path("a/../b"), Err(PathRefusal::DotDot));
        assert_eq!(check_path("a/.."), Err(PathRefusal::DotDot));
        assert_eq!(check_path("a//b"), Err(PathRefusal::EmptyComponent));
        assert_eq!(check_path("a/"), Err(PathRefusal::EmptyComponent));
        assert_eq!(check_path(""), Err(PathRefusal::EmptyComponent));
        assert_eq!(check_path("./a"), Err(PathRefusal::Dot));
        assert_eq!(check_path("a/./b"), Err(PathRefusal::Dot));
    }

    #[test]
    fn lexical_refusals_are_invalid_before_any_lookup() {
        let (_tmp, share) = share();
        let g = guest(&share, "g");
        for p in ["/etc/passwd", "../g/x", "a/../x", "a//x", "./x", "x/"] {
            assert_eq!(status(g.symlink_metadata(p)), Status::Invalid, "{p}");
            assert_eq!(status(g.create_dir(p)), Status::Invalid, "{p}");
            assert_eq!(status(g.remove(p)), Status::Invalid, "{p}");
            assert_eq!(status(g.read_dir(p)), Status::Invalid, "{p}");
            assert_eq!(
                status(g.open(p, OpenOptions::new().read(true))),
                Status::Invalid,
                "{p}"
            );
        }
    }

    #[test]
    fn folder_is_created_on_first_use_and_reused() {
        let (_tmp, share) = share();
        let g = guest(&share, "alpha");
        g.create_dir("d").unwrap();
        assert!(share.path().join("alpha/d").is_dir());
        let again = guest(&share, "alpha");
        assert!(again.symlink_metadata("d").unwrap().is_dir());
        let mode = std::fs::metadata(share.path().join("alpha"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_symlinked_or_non_directory_guest_folder_is_refused() {
        let (tmp, share) = share();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, share.path().join("linked")).unwrap();
        let e = share
            .guest(&GuestName::new("linked").unwrap())
            .err()
            .unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        std::fs::write(share.path().join("plain"), b"x").unwrap();
        let e = share
            .guest(&GuestName::new("plain").unwrap())
            .err()
            .unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn symlinks_pointing_outside_are_refused() {
        let (tmp, share) = share();
        let g = guest(&share, "g");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"dom0 secret").unwrap();
        let folder = share.path().join("g");
        symlink(&outside, folder.join("abs")).unwrap(); // absolute target
        symlink("../../outside", folder.join("rel")).unwrap(); // climbs out
        symlink("../../outside/secret", folder.join("file")).unwrap();
        std::fs::create_dir(folder.join("sub")).unwrap();
        symlink("../rel", folder.join("sub/chain")).unwrap(); // inside, then out

        let read = OpenOptions::new().read(true).clone();
        for p in ["abs/secret", "rel/secret", "file", "sub/chain/secret"] {
            assert!(matches!(g.open(p, &read), Err(OpError::Escape)), "{p}");
        }
        let mut create = OpenOptions::new();
        create.write(true).create(true);
        assert!(matches!(g.open("abs/new", &create), Err(OpError::Escape)));
        assert!(!outside.join("new").exists());
        for p in ["abs", "rel", "sub/chain"] {
            assert!(matches!(g.read_dir(p), Err(OpError::Escape)), "{p}");
        }
        assert!(matches!(g.create_dir("abs/d"), Err(OpError::Escape)));
        assert!(matches!(g.remove("abs/secret"), Err(OpError::Escape)));
        assert!(matches!(
            g.symlink_metadata("rel/secret"),
            Err(OpError::Escape)
        ));
        assert_eq!(
            status(g.open("abs/secret", &read)),
            Status::PermissionDenied
        );
        assert!(outside.join("secret").exists());

        // The links themselves are the guest's: lstat sees a link, remove removes it.
        assert!(g.symlink_metadata("abs").unwrap().file_type().is_symlink());
        g.remove("abs").unwrap();
        assert!(outside.join("secret").exists());
    }

    #[test]
    fn dangling_link_pointing_outside_cannot_create_a_file() {
        let (tmp, share) = share();
        let g = guest(&share, "g");
        let target = tmp.path().join("planted");
        symlink(&target, share.path().join("g/trap")).unwrap();
        let mut create = OpenOptions::new();
        create.write(true).create(true);
        assert!(matches!(g.open("trap", &create), Err(OpError::Escape)));
        assert!(!target.exists());
    }

    #[test]
    fn symlinks_staying_inside_are_followed() {
        let (_tmp, share) = share();
        let g = guest(&share, "g");
        let folder = share.path().join("g");
        std::fs::create_dir(folder.join("real")).unwrap();
        std::fs::write(folder.join("real/f"), b"hi").unwrap();
        symlink("real", folder.join("alias")).unwrap();
        symlink("../real/f", folder.join("real/self")).unwrap();
        let read = OpenOptions::new().read(true).clone();
        assert!(g.open("alias/f", &read).is_ok());
        assert!(g.open("real/self", &read).is_ok());
        assert!(g.read_dir("alias").is_ok());
    }

    #[test]
    fn one_guest_never_sees_another() {
        let (_tmp, share) = share();
        let a = guest(&share, "a");
        let b = guest(&share, "b");
        let mut create = OpenOptions::new();
        create.write(true).create(true);
        a.open("secret", &create).unwrap();
        let read = OpenOptions::new().read(true).clone();
        assert!(a.open("secret", &read).is_ok());
        assert_eq!(status(b.open("secret", &read)), Status::NotFound);
        assert_eq!(status(b.open("../a/secret", &read)), Status::Invalid);
        // A link b's folder holds (planted in dom0) to a's folder is still refused.
        symlink("../a", share.path().join("b/to-a")).unwrap();
        assert!(matches!(b.open("to-a/secret", &read), Err(OpError::Escape)));
        assert!(matches!(b.read_dir("to-a"), Err(OpError::Escape)));
        let names: Vec<_> = b
            .read_dir(".")
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["to-a"]);
    }

    /// A directory on the path is swapped for a link to outside, over and over, while
    /// the guest's reads go on. A check-then-open scheme loses this race now and then;
    /// resolution beneath the folder's handle never reads the outside file.
    #[test]
    fn swapping_a_directory_for_an_outside_link_never_escapes() {
        let (tmp, share) = share();
        let g = guest(&share, "g");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"OUTSIDE").unwrap();
        let folder = share.path().join("g");
        std::fs::create_dir(folder.join("d")).unwrap();
        std::fs::write(folder.join("d/secret"), b"inside").unwrap();
        symlink(&outside, folder.join("link")).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let read = OpenOptions::new().read(true).clone();
        std::thread::scope(|s| {
            s.spawn(|| {
                let (d, real, link) = (folder.join("d"), folder.join("real"), folder.join("link"));
                for _ in 0..2000 {
                    std::fs::rename(&d, &real).unwrap();
                    std::fs::rename(&link, &d).unwrap();
                    std::fs::rename(&d, &link).unwrap();
                    std::fs::rename(&real, &d).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let (mut inside, mut refused) = (0u32, 0u32);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                match g.open("d/secret", &read) {
                    Ok(f) => {
                        let mut content = String::new();
                        io::Read::read_to_string(&mut f.into_std(), &mut content).unwrap();
                        assert_eq!(content, "inside", "read through the swapped link");
                        inside += 1;
                    }
                    Err(OpError::Escape) => refused += 1,
                    Err(e) => assert_eq!(e.status(), Status::NotFound, "{e}"),
                }
            }
            // Not asserted (timing): how often each outcome was seen.
            eprintln!("inside {inside}, refused {refused}");
        });
    }

    #[test]
    fn the_root_is_named_dot_and_is_not_removable() {
        let (_tmp, share) = share();
        let g = guest(&share, "g");
        assert!(g.symlink_metadata(".").unwrap().is_dir());
        assert_eq!(status(g.create_dir(".")), Status::Exists);
        assert_eq!(status(g.remove(".")), Status::PermissionDenied);
        assert_eq!(
            status(g.open(".", OpenOptions::new().read(true))),
            Status::IsADirectory
        );
        assert!(share.path().join("g").is_dir());
    }
}
