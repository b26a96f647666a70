//! The operations: one function per op, each taking the guest's folder and the decoded
//! request and returning the reply body or why there is none.
//!
//! The functions block (file I/O), so they run on the worker pool, never on a
//! connection's loop. They are plain functions of `(&GuestRoot, request)`: no state
//! between requests, so any number run at once, in any order, and a request that is
//! replayed is just run again.
//!
//! # Semantics worth knowing
//!
//! * `FileRead` and `FileWrite` work on regular files only: a directory gives
//!   `IsADirectory`; a FIFO, socket or device gives `PermissionDenied`. Files are opened
//!   with `O_NONBLOCK` so that a FIFO planted in a guest's folder makes the check fail at
//!   once instead of stalling a worker in `open`.
//! * `FileRead` returns up to `len` bytes from `offset` (fewer only at end of file),
//!   with `pread`, so concurrent reads of one file do not interfere.
//! * `FileWrite` writes all of `data` at `offset` with `pwrite` (no `O_APPEND`), after
//!   `CREATE` (create if missing, never exclusive) and `TRUNCATE` (cut to 0 first).
//!   **Idempotence:** the write is addressed by offset, so replaying the same request
//!   leaves the file as the first one did: the same bytes land at the same place. That
//!   holds as long as nothing else wrote the range in between, and not for `TRUNCATE`
//!   replayed after later writes (it would cut them away again); a guest that replays
//!   replays in order. A write that fails part-way (`NoSpace`) may have written a prefix;
//!   replaying it once there is space completes it. Nothing is `fsync`ed: durability is
//!   that of dom0's page cache, as for any local write.
//! * `FileWrite`, `DirCreate` and `Remove` keep to the guest's budget
//!   ([`crate::quota`]): a write or create that would pass it is refused with `NoSpace`
//!   (a file past the file-size cap: `TooLarge`) before anything changes; in particular
//!   a refused `TRUNCATE` write has not cut the file. Without a budget nothing is counted.
//! * `FileInfo` describes the entry itself: a symlink is reported as a symlink.
//! * `DirList` pages through the directory in the file system's order from index
//!   `cursor`; a page is as many entries as fit in one reply. Names the guest could not
//!   send back in a path (not UTF-8) are not listed and not counted.
//!   **Resuming:** the wire carries only the index, and skipping `cursor` entries from
//!   the start for every page costs O(N²) reads for N entries. So when a page ends the
//!   daemon keeps the open directory stream, the entry that did not fit, and the cookie
//!   the guest will send next, `(path, cursor + entries listed)`; the next page with
//!   that cookie goes on from the stream, and paging through N entries reads the
//!   directory once, O(N). The cookie stays inside the daemon (the wire format is
//!   unchanged); a guest keeps at most
//!   [`MAX_PAUSED_LISTINGS`](crate::confine::MAX_PAUSED_LISTINGS) paused listings (each an
//!   open descriptor), oldest dropped first, and one whose path now names another
//!   directory is not resumed. Any page the cache does not hold (dropped, another
//!   cursor, the daemon restarted) is read the old way, by skipping from the start, so
//!   every cursor still works. If the directory changes between pages, an entry may be
//!   missed or repeated, as with `readdir`/`telldir`; the listing never fails because
//!   of it.
//! * `Remove` removes a file, a symlink (not its target) or an empty directory; a
//!   non-empty one gives `NotEmpty`.
//! * `Random` returns exactly `len` bytes from the kernel's CSPRNG (`getrandom(2)`);
//!   `Unavailable` if it cannot.

use std::io;
use std::os::unix::fs::FileExt as _;

use cap_std::fs::{FileType, MetadataExt as _, OpenOptions, OpenOptionsExt as _, ReadDir};
use rpc::{
    DirEntry, DirListBuilder, FileInfo, FileKind, Name, ReplyBody, Request, Status, MAX_IO,
    WRITE_CREATE, WRITE_TRUNCATE,
};

use crate::confine::GuestRoot;
use crate::error::OpError;

/// Largest offset a file can be addressed at (`off_t` is signed).
const MAX_FILE_END: u64 = i64::MAX as u64;

/// Runs one request against the guest's folder.
pub fn handle(root: &GuestRoot, request: Request) -> Result<ReplyBody, OpError> {
    match request {
        Request::Ping => Ok(ReplyBody::Ping),
        Request::Random { len } => random(len),
        Request::FileRead { path, offset, len } => file_read(root, path.as_str(), offset, len),
        Request::FileWrite {
            path,
            offset,
            flags,
            data,
        } => file_write(root, path.as_str(), offset, flags, &data),
        Request::FileInfo { path } => file_info(root, path.as_str()),
        Request::DirCreate { path } => dir_create(root, path.as_str()),
        Request::DirList { path, cursor } => dir_list(root, path.as_str(), cursor),
        Request::Remove { path } => remove(root, path.as_str()),
        Request::Trace {
            seq,
            dropped,
            records,
        } => crate::trace::append(root, seq, dropped, &records),
    }
}

fn too_large(what: &'static str) -> OpError {
    OpError::Policy {
        status: Status::TooLarge,
        what,
    }
}

/// `n` bytes from the kernel's CSPRNG.
pub fn random(len: u32) -> Result<ReplyBody, OpError> {
    let len = len as usize;
    if len > MAX_IO {
        return Err(too_large("more random bytes than one reply carries"));
    }
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).map_err(|e| OpError::Unavailable {
        what: format!("the kernel's random source: {e}"),
    })?;
    Ok(ReplyBody::Random(buf))
}

/// Refuses anything but a regular file, once it is open (so the check is about the
/// file that will be read or written, not one that was there before).
fn check_regular(meta: &std::fs::Metadata) -> Result<(), OpError> {
    if meta.is_dir() {
        Err(OpError::Io(io::Error::from_raw_os_error(libc::EISDIR)))
    } else if !meta.is_file() {
        Err(OpError::Policy {
            status: Status::PermissionDenied,
            what: "not a regular file",
        })
    } else {
        Ok(())
    }
}

/// Up to `len` bytes of a regular file from `offset`.
pub fn file_read(
    root: &GuestRoot,
    path: &str,
    offset: u64,
    len: u32,
) -> Result<ReplyBody, OpError> {
    let len = len as usize;
    if len > MAX_IO {
        return Err(too_large("a read larger than one reply carries"));
    }
    if offset
        .checked_add(len as u64)
        .is_none_or(|end| end > MAX_FILE_END)
    {
        return Err(too_large("a read past the largest file offset"));
    }
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NONBLOCK);
    let file = root.open(path, &options)?.into_std();
    check_regular(&file.metadata()?)?;
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(OpError::Io(e)),
        }
    }
    buf.truncate(filled);
    Ok(ReplyBody::FileRead(buf))
}

/// All of `data` into a regular file at `offset`, after `CREATE`/`TRUNCATE`.
pub fn file_write(
    root: &GuestRoot,
    path: &str,
    offset: u64,
    flags: u8,
    data: &[u8],
) -> Result<ReplyBody, OpError> {
    if data.len() > MAX_IO {
        return Err(too_large("a write larger than one request carries"));
    }
    if flags & !(WRITE_CREATE | WRITE_TRUNCATE) != 0 {
        return Err(OpError::Policy {
            status: Status::Invalid,
            what: "unknown write flags",
        });
    }
    if offset
        .checked_add(data.len() as u64)
        .is_none_or(|end| end > MAX_FILE_END)
    {
        return Err(too_large("a write past the largest file offset"));
    }
    let end = offset + data.len() as u64;
    // The size the file will have, given the one it has: a write extends it to its end
    // (an empty write does not), TRUNCATE cuts it to 0 first.
    let size_after = |old: u64| {
        let kept = if flags & WRITE_TRUNCATE != 0 { 0 } else { old };
        if data.is_empty() {
            kept
        } else {
            kept.max(end)
        }
    };
    let mut ledger = root.quota().ledger();
    let mut options = OpenOptions::new();
    options.write(true).custom_flags(libc::O_NONBLOCK);
    // Opened without CREATE first, so that a new file is admitted to the budget before
    // it exists, and without TRUNCATE, so that a refused write has cut nothing.
    let (file, created) = match root.open(path, &options) {
        Ok(file) => (file, false),
        Err(e) if flags & WRITE_CREATE != 0 && e.status() == Status::NotFound => {
            ledger.admit(0, size_after(0), 1)?;
            (root.open(path, options.create(true))?, true)
        }
        Err(e) => return Err(e),
    };
    let file = file.into_std();
    let meta = file.metadata()?;
    check_regular(&meta)?;
    let old = if created { 0 } else { meta.len() };
    if !created {
        ledger.admit(old, size_after(old), 0)?;
    }
    let wrote = (|| {
        if flags & WRITE_TRUNCATE != 0 {
            file.set_len(0)?;
        }
        file.write_all_at(data, offset)
    })();
    if ledger.counts() {
        // What the file holds now, also after a write that failed half-way.
        let now = file.metadata().map_or(size_after(old), |m| m.len());
        ledger.grew(old, now, u64::from(created));
    }
    wrote?;
    Ok(ReplyBody::FileWrite {
        // At most MAX_IO, checked above.
        written: data.len() as u32,
    })
}

/// Creates one directory, within the guest's entry budget.
pub fn dir_create(root: &GuestRoot, path: &str) -> Result<ReplyBody, OpError> {
    let mut ledger = root.quota().ledger();
    ledger.admit(0, 0, 1)?;
    root.create_dir(path)?;
    ledger.grew(0, 0, 1);
    Ok(ReplyBody::DirCreate)
}

/// Removes a file, a link or an empty directory, giving its budget back.
pub fn remove(root: &GuestRoot, path: &str) -> Result<ReplyBody, OpError> {
    let mut ledger = root.quota().ledger();
    let bytes = if ledger.counts() {
        let meta = root.symlink_metadata(path)?;
        if meta.is_file() {
            meta.len()
        } else {
            0
        }
    } else {
        0
    };
    root.remove(path)?;
    ledger.removed(bytes);
    Ok(ReplyBody::Remove)
}

fn kind_of(t: FileType) -> FileKind {
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    }
}

/// Kind, permissions, size and mtime of the entry itself (a symlink is not followed).
pub fn file_info(root: &GuestRoot, path: &str) -> Result<ReplyBody, OpError> {
    let meta = root.symlink_metadata(path)?;
    let nanos = meta.mtime_nsec();
    Ok(ReplyBody::FileInfo(FileInfo {
        kind: kind_of(meta.file_type()),
        perm: (meta.mode() & 0o7777) as u16,
        size: meta.size(),
        mtime_s: meta.mtime(),
        // The kernel gives 0..1e9; anything else would not encode, so clamp.
        mtime_ns: nanos.clamp(0, 999_999_999) as u32,
    }))
}

/// A directory listing paused after a page, to go on from where it stopped when the
/// guest asks for the next one (see the module documentation).
pub struct Paused {
    /// The guest's path, as it sent it.
    pub(crate) path: String,
    /// The cursor the next page's request carries: the entries listed so far.
    pub(crate) next: u32,
    /// The directory's device and inode when the listing began.
    identity: (u64, u64),
    /// The open stream, just past `held`.
    stream: ReadDir,
    /// The entry read that did not fit the last page.
    held: Option<DirEntry>,
}

/// One page of a directory listing from index `cursor` (see the module documentation).
pub fn dir_list(root: &GuestRoot, path: &str, cursor: u32) -> Result<ReplyBody, OpError> {
    let resumed = match root.resume_listing(path, cursor) {
        // The same directory still: go on from the paused stream.
        Some(p) if root.identity(path).ok() == Some(p.identity) => Some(p),
        _ => None,
    };
    let (identity, mut stream, mut held, skip) = match resumed {
        Some(p) => (p.identity, p.stream, p.held, 0),
        None => {
            let (identity, stream) = root.open_listing(path)?;
            (identity, stream, None, u64::from(cursor))
        }
    };
    let mut page = DirListBuilder::new();
    let mut listed: u32 = 0;
    let mut skipped: u64 = 0;
    let mut read: u64 = 0;
    let done = loop {
        let entry = match held.take() {
            Some(e) => e,
            None => {
                let Some(entry) = stream.next() else {
                    break true;
                };
                read += 1;
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        root.count_dir_entries(read);
                        return Err(e.into());
                    }
                };
                let Some(name) = entry.file_name().to_str().and_then(|s| Name::new(s).ok()) else {
                    continue;
                };
                if skipped < skip {
                    skipped += 1;
                    continue;
                }
                let kind = match entry.file_type() {
                    Ok(t) => kind_of(t),
                    Err(e) => {
                        root.count_dir_entries(read);
                        return Err(e.into());
                    }
                };
                DirEntry { kind, name }
            }
        };
        if let Err(entry) = page.try_push(entry) {
            held = Some(entry);
            break false;
        }
        listed += 1;
    };
    root.count_dir_entries(read);
    if !done {
        if let Some(next) = cursor.checked_add(listed) {
            root.pause_listing(Paused {
                path: path.to_string(),
                next,
                identity,
                stream,
                held,
            });
        }
    }
    Ok(page.finish(done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::{GuestName, Share, MAX_PAUSED_LISTINGS};
    use rpc::{Path, MAX_DIR_ENTRIES};
    use std::collections::BTreeSet;
    use std::os::unix::fs::MetadataExt as _;

    struct Fixture {
        _tmp: tempfile::TempDir,
        share: Share,
        root: GuestRoot,
    }

    impl Fixture {
        fn new() -> Fixture {
            let tmp = tempfile::tempdir().unwrap();
            let share = Share::open(tmp.path()).unwrap();
            let root = share.guest(&GuestName::new("g").unwrap()).unwrap();
            Fixture {
                _tmp: tmp,
                share,
                root,
            }
        }

        fn host(&self, rel: &str) -> std::path::PathBuf {
            self.share.path().join("g").join(rel)
        }

        fn run(&self, req: Request) -> Result<ReplyBody, Status> {
            handle(&self.root, req).map_err(|e| e.status())
        }
    }

    fn p(s: &str) -> Path {
        Path::new(s).unwrap()
    }

    fn write(path: &str, offset: u64, flags: u8, data: &[u8]) -> Request {
        Request::FileWrite {
            path: p(path),
            offset,
            flags,
            data: data.to_vec(),
        }
    }

    fn read(path: &str, offset: u64, len: u32) -> Request {
        Request::FileRead {
            path: p(path),
            offset,
            len,
        }
    }

    #[test]
    fn ping_and_random() {
        let f = Fixture::new();
        assert_eq!(f.run(Request::Ping), Ok(ReplyBody::Ping));
        let Ok(ReplyBody::Random(a)) = f.run(Request::Random { len: 64 }) else {
            panic!("random");
        };
        let Ok(ReplyBody::Random(b)) = f.run(Request::Random { len: 64 }) else {
            panic!("random");
        };
        assert_eq!((a.len(), b.len()), (64, 64));
        assert_ne!(a, b, "two draws of 512 bits are equal");
        assert_eq!(
            f.run(Request::Random { len: 0 }),
            Ok(ReplyBody::Random(vec![]))
        );
        assert_eq!(
            f.run(Request::Random {
                len: MAX_IO as u32 + 1
            }),
            Err(Status::TooLarge)
        );
    }

    #[test]
    fn write_then_read_back() {
        let f = Fixture::new();
        assert_eq!(f.run(write("f", 0, 0, b"x")), Err(Status::NotFound));
        assert_eq!(
            f.run(write("f", 0, WRITE_CREATE, b"hello world")),
            Ok(ReplyBody::FileWrite { written: 11 })
        );
        assert_eq!(std::fs::read(f.host("f")).unwrap(), b"hello world");
        assert_eq!(
            f.run(read("f", 6, 100)),
            Ok(ReplyBody::FileRead(b"world".to_vec()))
        );
        assert_eq!(
            f.run(read("f", 0, 5)),
            Ok(ReplyBody::FileRead(b"hello".to_vec()))
        );
        assert_eq!(f.run(read("f", 11, 5)), Ok(ReplyBody::FileRead(vec![])));
        assert_eq!(
            f.run(read("f", 1 << 40, 5)),
            Ok(ReplyBody::FileRead(vec![]))
        );
        // A write past the end leaves a hole of zeros.
        f.run(write("f", 13, 0, b"!")).unwrap();
        assert_eq!(std::fs::read(f.host("f")).unwrap(), b"hello world\0\0!");
        // TRUNCATE cuts first; without CREATE it still needs the file.
        f.run(write("f", 0, WRITE_TRUNCATE, b"new")).unwrap();
        assert_eq!(std::fs::read(f.host("f")).unwrap(), b"new");
        assert_eq!(
            f.run(write("g", 0, WRITE_TRUNCATE, b"x")),
            Err(Status::NotFound)
        );
    }

    #[test]
    fn a_replayed_write_leaves_the_same_file() {
        let f = Fixture::new();
        let first = write("log", 0, WRITE_CREATE, b"0123456789");
        let middle = write("log", 3, 0, b"abc");
        f.run(first.clone()).unwrap();
        f.run(middle.clone()).unwrap();
        let once = std::fs::read(f.host("log")).unwrap();
        f.run(middle).unwrap();
        f.run(first).unwrap();
        f.run(write("log", 3, 0, b"abc")).unwrap();
        assert_eq!(std::fs::read(f.host("log")).unwrap(), once);
        assert_eq!(once, b"012abc6789");
    }

    #[test]
    fn largest_chunks_round_trip() {
        let f = Fixture::new();
        let data: Vec<u8> = (0..MAX_IO).map(|i| (i * 7) as u8).collect();
        f.run(write("big", 5, WRITE_CREATE, &data)).unwrap();
        assert_eq!(
            f.run(read("big", 5, MAX_IO as u32)),
            Ok(ReplyBody::FileRead(data))
        );
    }

    #[test]
    fn offsets_beyond_a_file_are_too_large() {
        let f = Fixture::new();
        f.run(write("f", 0, WRITE_CREATE, b"x")).unwrap();
        assert_eq!(f.run(read("f", u64::MAX, 1)), Err(Status::TooLarge));
        assert_eq!(f.run(read("f", i64::MAX as u64, 1)), Err(Status::TooLarge));
        assert_eq!(
            f.run(write("f", i64::MAX as u64 - 1, 0, b"ab")),
            Err(Status::TooLarge)
        );
        assert_eq!(f.run(write("f", 3, 0x4, b"x")), Err(Status::Invalid));
    }

    #[test]
    fn directories_and_special_files_are_not_files() {
        let f = Fixture::new();
        f.run(Request::DirCreate { path: p("d") }).unwrap();
        assert_eq!(f.run(read("d", 0, 1)), Err(Status::IsADirectory));
        assert_eq!(
            f.run(write("d", 0, WRITE_CREATE, b"x")),
            Err(Status::IsADirectory)
        );
        assert_eq!(f.run(read(".", 0, 1)), Err(Status::IsADirectory));
        // A FIFO with no writer: without O_NONBLOCK the open would block forever.
        rustix::fs::mkfifoat(rustix::fs::CWD, f.host("fifo"), 0o600.into()).unwrap();
        assert_eq!(f.run(read("fifo", 0, 1)), Err(Status::PermissionDenied));
        let info = f.run(Request::FileInfo { path: p("fifo") });
        assert!(matches!(
            info,
            Ok(ReplyBody::FileInfo(FileInfo {
                kind: FileKind::Other,
                ..
            }))
        ));
    }

    #[test]
    fn file_info_describes_the_entry() {
        let f = Fixture::new();
        f.run(write("f", 0, WRITE_CREATE, b"12345")).unwrap();
        std::fs::set_permissions(
            f.host("f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
        let Ok(ReplyBody::FileInfo(info)) = f.run(Request::FileInfo { path: p("f") }) else {
            panic!("info");
        };
        let host = std::fs::metadata(f.host("f")).unwrap();
        assert_eq!(info.kind, FileKind::File);
        assert_eq!(info.perm, 0o640);
        assert_eq!(info.size, 5);
        assert_eq!(info.mtime_s, host.mtime());
        assert_eq!(i64::from(info.mtime_ns), host.mtime_nsec());
        std::os::unix::fs::symlink("f", f.host("link")).unwrap();
        let Ok(ReplyBody::FileInfo(link)) = f.run(Request::FileInfo { path: p("link") }) else {
            panic!("info");
        };
        assert_eq!(link.kind, FileKind::Symlink);
        let Ok(ReplyBody::FileInfo(root)) = f.run(Request::FileInfo { path: p(".") }) else {
            panic!("info");
        };
        assert_eq!(root.kind, FileKind::Dir);
        assert_eq!(
            f.run(Request::FileInfo { path: p("nope") }),
            Err(Status::NotFound)
        );
        assert_eq!(
            f.run(Request::FileInfo { path: p("f/x") }),
            Err(Status::NotADirectory)
        );
    }

    #[test]
    fn dir_create_and_remove() {
        let f = Fixture::new();
        let mk = |s: &str| Request::DirCreate { path: p(s) };
        let rm = |s: &str| Request::Remove { path: p(s) };
        assert_eq!(f.run(mk("a")), Ok(ReplyBody::DirCreate));
        assert_eq!(f.run(mk("a")), Err(Status::Exists));
        assert_eq!(f.run(mk("x/y")), Err(Status::NotFound));
        f.run(write("a/f", 0, WRITE_CREATE, b"x")).unwrap();
        assert_eq!(f.run(mk("a/f/z")), Err(Status::NotADirectory));
        assert_eq!(f.run(rm("a")), Err(Status::NotEmpty));
        assert_eq!(f.run(rm("a/f")), Ok(ReplyBody::Remove));
        assert_eq!(f.run(rm("a/f")), Err(Status::NotFound));
        assert_eq!(f.run(rm("a")), Ok(ReplyBody::Remove));
        assert!(!f.host("a").exists());
        assert_eq!(f.run(rm(".")), Err(Status::PermissionDenied));
    }

    fn list_all(f: &Fixture, path: &str) -> (Vec<(String, FileKind)>, usize) {
        let (mut all, mut pages, mut cursor) = (Vec::new(), 0, 0u32);
        loop {
            let Ok(ReplyBody::DirList { entries, done }) = f.run(Request::DirList {
                path: p(path),
                cursor,
            }) else {
                panic!("list {path} at {cursor}");
            };
            pages += 1;
            cursor += entries.len() as u32;
            all.extend(
                entries
                    .into_iter()
                    .map(|e| (e.name.as_str().to_owned(), e.kind)),
            );
            if done {
                return (all, pages);
            }
            assert!(pages < 100, "listing does not end");
        }
    }

    #[test]
    fn dir_list_small() {
        let f = Fixture::new();
        assert_eq!(list_all(&f, "."), (vec![], 1));
        f.run(Request::DirCreate { path: p("d") }).unwrap();
        f.run(write("d/f", 0, WRITE_CREATE, b"")).unwrap();
        f.run(Request::DirCreate { path: p("d/sub") }).unwrap();
        std::os::unix::fs::symlink("/etc", f.host("d/l")).unwrap();
        let (mut got, pages) = list_all(&f, "d");
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(pages, 1);
        assert_eq!(
            got,
            [
                ("f".to_owned(), FileKind::File),
                ("l".to_owned(), FileKind::Symlink),
                ("sub".to_owned(), FileKind::Dir)
            ]
        );
        assert_eq!(
            f.run(Request::DirList {
                path: p("d/f"),
                cursor: 0
            }),
            Err(Status::NotADirectory)
        );
        assert_eq!(
            f.run(Request::DirList {
                path: p("none"),
                cursor: 0
            }),
            Err(Status::NotFound)
        );
        // A cursor past the end is an empty, finished page.
        assert_eq!(
            f.run(Request::DirList {
                path: p("d"),
                cursor: 99
            }),
            Ok(ReplyBody::DirList {
                entries: vec![],
                done: true
            })
        );
    }

    #[test]
    fn dir_list_pages_by_count_and_by_bytes() {
        let f = Fixture::new();
        // More entries than one page may hold.
        f.run(Request::DirCreate { path: p("many") }).unwrap();
        let n = MAX_DIR_ENTRIES + 37;
        for i in 0..n {
            std::fs::write(f.host(&format!("many/{i}")), b"").unwrap();
        }
        let (got, pages) = list_all(&f, "many");
        assert_eq!(pages, 2);
        let names: BTreeSet<_> = got.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names.len(), n, "every entry exactly once");
        assert_eq!(names, (0..n).map(|i| i.to_string()).collect());
        // Long names fill a page's bytes before its count: 300 x 255-byte names.
        f.run(Request::DirCreate { path: p("long") }).unwrap();
        for i in 0..300 {
            let name = format!("{i:03}{}", "n".repeat(252));
            std::fs::write(f.host(&format!("long/{name}")), b"").unwrap();
        }
        let (got, pages) = list_all(&f, "long");
        assert!(pages >= 2, "{pages} pages");
        let names: BTreeSet<_> = got.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 300);
    }

    /// Paging through N entries reads the directory once when each page goes on from
    /// the last; read from the start for every page (what a page the cache does not
    /// hold costs, and what every page cost before), it is quadratic.
    #[test]
    fn paging_through_a_directory_reads_it_once() {
        let f = Fixture::new();
        f.run(Request::DirCreate { path: p("big") }).unwrap();
        let n = 4 * MAX_DIR_ENTRIES;
        for i in 0..n {
            std::fs::write(f.host(&format!("big/{i}")), b"").unwrap();
        }
        let before = f.root.dir_entries_read();
        let (got, pages) = list_all(&f, "big");
        let resumed = f.root.dir_entries_read() - before;
        let names: BTreeSet<_> = got.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!((names.len(), pages), (n, 4), "every entry once, in 4 pages");
        // Every entry read once (the end of the stream costs nothing more).
        assert_eq!(resumed as usize, n);

        // The same listing with every paused stream dropped between pages.
        let (mut all, mut cursor, before) = (BTreeSet::new(), 0u32, f.root.dir_entries_read());
        loop {
            f.root.forget_listings();
            let Ok(ReplyBody::DirList { entries, done }) = f.run(Request::DirList {
                path: p("big"),
                cursor,
            }) else {
                panic!("list");
            };
            cursor += entries.len() as u32;
            all.extend(entries.into_iter().map(|e| e.name.as_str().to_owned()));
            if done {
                break;
            }
        }
        let from_start = f.root.dir_entries_read() - before;
        assert_eq!(all, names, "the same entries either way");
        eprintln!(
            "{n} entries in {pages} pages: {resumed} reads resumed, {from_start} from the start"
        );
        // Page k = 1..=4 reads k x 1024 entries (+1 that did not fit): 10 x 1024 in all.
        assert!(from_start as usize >= 10 * MAX_DIR_ENTRIES, "{from_start}");
    }

    #[test]
    fn a_resumed_listing_survives_changes_and_never_follows_another_directory() {
        let f = Fixture::new();
        f.run(Request::DirCreate { path: p("d") }).unwrap();
        let n = MAX_DIR_ENTRIES + 10;
        for i in 0..n {
            std::fs::write(f.host(&format!("d/{i}")), b"").unwrap();
        }
        let page = |cursor| match f.run(Request::DirList {
            path: p("d"),
            cursor,
        }) {
            Ok(ReplyBody::DirList { entries, done }) => (entries, done),
            other => panic!("{other:?}"),
        };
        let (first, done) = page(0);
        assert!(!done);
        // The directory is replaced by another between pages: the paused stream is not
        // used; the new directory is listed from the cursor as usual.
        std::fs::rename(f.host("d"), f.host("old")).unwrap();
        std::fs::create_dir(f.host("d")).unwrap();
        std::fs::write(f.host("d/new"), b"").unwrap();
        let (rest, done) = page(first.len() as u32);
        assert!(done);
        assert!(rest.is_empty(), "{rest:?}");
        // A cursor nobody paused at still works (read from the start).
        assert_eq!(page(0).0.len(), 1);
        // Paused listings are bounded per guest (long names fill a page by its bytes).
        for i in 0..(MAX_PAUSED_LISTINGS + 3) {
            let dir = format!("many{i}");
            f.run(Request::DirCreate { path: p(&dir) }).unwrap();
            for k in 0..300 {
                let name = format!("{k:03}{}", "n".repeat(252));
                std::fs::write(f.host(&format!("{dir}/{name}")), b"").unwrap();
            }
            assert!(matches!(
                f.run(Request::DirList {
                    path: p(&dir),
                    cursor: 0
                }),
                Ok(ReplyBody::DirList { done: false, .. })
            ));
        }
        assert_eq!(f.root.paused_listings(), MAX_PAUSED_LISTINGS);
    }

    #[test]
    fn non_utf8_names_are_neither_listed_nor_counted() {
        use std::os::unix::ffi::OsStrExt as _;
        let f = Fixture::new();
        f.run(Request::DirCreate { path: p("d") }).unwrap();
        let raw = std::ffi::OsStr::from_bytes(b"bad\xff");
        std::fs::write(f.host("d").join(raw), b"").unwrap();
        std::fs::write(f.host("d/good"), b"").unwrap();
        let (got, _) = list_all(&f, "d");
        assert_eq!(got, [("good".to_owned(), FileKind::File)]);
    }
}
