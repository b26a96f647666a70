//! The boot module's cpio archive, in the "newc" format of `cpio -o -H newc`.
//!
//! An entry is a 110-byte ASCII header, the name, the data:
//!
//! ```text
//! magic "070701" (or "070702": the check field is the byte sum of the data)
//! 13 fields of 8 hex digits: ino mode uid gid nlink mtime filesize
//!                            devmajor devminor rdevmajor rdevminor namesize check
//! name: namesize bytes, the last one NUL; then NULs up to a multiple of 4
//! data: filesize bytes;                   then NULs up to a multiple of 4
//! ```
//!
//! Padding is counted from the start of the archive, as `cpio` writes it. The entry named
//! `TRAILER!!!` ends the archive; whatever follows it (GNU cpio pads to 512-byte blocks,
//! Xen may round the module up) is not read.
//!
//! The module comes from whoever wrote the domain's config, so it is read as hostile:
//! every field is checked before it is used, each failure is a named [`ArchiveError`]
//! with the offset of the entry that caused it, nothing panics, and every step moves
//! forward by at least one header, so a walk is bounded by the archive's size.

use core::fmt;

/// Magic of the newc format without checksums.
const MAGIC_NEWC: &[u8; 6] = b"070701";
/// Magic of the newc format whose `check` field is the wrapping byte sum of the data.
const MAGIC_CRC: &[u8; 6] = b"070702";
/// Size of an entry header: the magic and 13 eight-digit fields.
const HEADER_LEN: usize = 6 + 13 * 8;
/// The name of the entry that ends an archive.
const TRAILER: &[u8] = b"TRAILER!!!";

/// The longest name accepted, its NUL included (Linux's `PATH_MAX`). Longer names are
/// refused rather than walked, so one bad header cannot make a lookup compare megabytes.
pub const MAX_NAME: usize = 4096;

/// The file-type bits of a mode (`S_IFMT`).
const S_IFMT: u32 = 0o170_000;
/// A regular file.
const S_IFREG: u32 = 0o100_000;
/// A directory.
const S_IFDIR: u32 = 0o040_000;
/// A symbolic link.
const S_IFLNK: u32 = 0o120_000;

/// Why an archive (or a lookup in it) failed. `at` is the byte offset of the header of the
/// entry that failed, for the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// The header does not start with `070701` or `070702` (an old `odc` or binary cpio,
    /// a compressed archive, or garbage where an entry should start).
    BadMagic {
        /// Offset of the header.
        at: usize,
    },
    /// A header field holds something other than 8 hex digits.
    BadHex {
        /// Offset of the header.
        at: usize,
    },
    /// The archive ends inside a header, a name or a file's data.
    Truncated {
        /// Offset of the header.
        at: usize,
    },
    /// The name size is 0 or the name's last byte is not NUL.
    BadName {
        /// Offset of the header.
        at: usize,
    },
    /// The name is longer than [`MAX_NAME`] bytes.
    NameTooLong {
        /// Offset of the header.
        at: usize,
    },
    /// A `070702` entry's data does not sum to its `check` field.
    BadChecksum {
        /// Offset of the header.
        at: usize,
    },
    /// The archive ended (at an entry boundary) without a `TRAILER!!!` entry: it was cut
    /// short, or is not a cpio archive.
    NoTrailer {
        /// Offset where the next header should have been.
        at: usize,
    },
    /// No entry has the name looked for.
    NotFound,
    /// The name is there but is not a regular file (a directory, a link, a device...).
    NotAFile {
        /// Offset of the header.
        at: usize,
    },
    /// Two entries have the name looked for (after dropping a leading `./`). `cpio -i`
    /// would keep the later one; a loader that picked either could run something other
    /// than what was meant, so it picks neither.
    DuplicateName {
        /// Offset of the second header with the name.
        at: usize,
    },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic { at } => write!(f, "cpio: bad magic at {at}"),
            Self::BadHex { at } => write!(f, "cpio: bad hex field at {at}"),
            Self::Truncated { at } => write!(f, "cpio: entry at {at} truncated"),
            Self::BadName { at } => write!(f, "cpio: bad name at {at}"),
            Self::NameTooLong { at } => write!(f, "cpio: name too long at {at}"),
            Self::BadChecksum { at } => write!(f, "cpio: checksum mismatch at {at}"),
            Self::NoTrailer { at } => write!(f, "cpio: no trailer (ended at {at})"),
            Self::NotFound => write!(f, "cpio: not found"),
            Self::NotAFile { at } => write!(f, "cpio: entry at {at} is not a regular file"),
            Self::DuplicateName { at } => write!(f, "cpio: duplicate name at {at}"),
        }
    }
}

/// What kind of file an entry is, from its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file: the only kind that can be a program.
    File,
    /// A directory (`cpio` lists them, `.` included).
    Dir,
    /// A symbolic link; its data is the target path. Not followed.
    Symlink,
    /// A device, FIFO or socket node.
    Other,
}

/// One entry of the archive. `name` and `data` borrow from the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The name as stored, without its NUL (e.g. `./bin/init`).
    pub name: &'a [u8],
    /// The mode: file-type bits and permissions.
    pub mode: u32,
    /// The file's bytes (for a symlink, its target).
    pub data: &'a [u8],
    /// The inode number, which hard links share.
    pub ino: u32,
    /// The number of links. newc stores a hard-linked file's data once, with the last
    /// of its links; the others have no data.
    pub nlink: u32,
    /// The device (major, minor) the inode number belongs to.
    pub dev: (u32, u32),
    /// Offset of this entry's header in the archive.
    pub offset: usize,
}

impl<'a> Entry<'a> {
    /// What kind of file this is.
    pub fn kind(&self) -> Kind {
        match self.mode & S_IFMT {
            S_IFREG => Kind::File,
            S_IFDIR => Kind::Dir,
            S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind() == Kind::File
    }

    /// The name without a leading `./` (or several): the name a lookup matches.
    pub fn path(&self) -> &'a [u8] {
        normalize(self.name)
    }
}

/// Drops leading `./` and `/` so that `./init`, `/init` and `init` name one file. A name
/// made only of them (the `.` directory entry, say) becomes empty and matches nothing.
fn normalize(mut name: &[u8]) -> &[u8] {
    loop {
        name = match name {
            [b'.', b'/', rest @ ..] | [b'/', rest @ ..] => rest,
            [b'.'] => &[],
            _ => return name,
        }
    }
}

/// Iterates over the entries of an archive, up to (not including) its trailer.
///
/// Yields `Err` once at the first malformed entry (or for a missing trailer) and then
/// stops: a corrupt archive is not read past the damage.
pub fn entries(archive: &[u8]) -> Entries<'_> {
    Entries {
        archive,
        pos: 0,
        done: false,
    }
}

/// The iterator of [`entries`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    archive: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match parse_entry(self.archive, self.pos) {
            Ok(Some((entry, next))) => {
                // `next` > `pos` always (at least a header was consumed), so the walk
                // ends within `archive.len() / HEADER_LEN` steps.
                self.pos = next;
                Some(Ok(entry))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for Entries<'_> {}

/// Finds the regular file `name` (with or without a leading `./`) and returns its bytes.
///
/// Walks the whole archive, not just up to the match, so that a damaged archive is refused
/// whatever is asked of it and a duplicate name is noticed. A hard link without data is
/// resolved to the link that carries the inode's data.
pub fn find<'a>(archive: &'a [u8], name: &str) -> Result<&'a [u8], ArchiveError> {
    let want = normalize(name.as_bytes());
    let mut found: Option<Entry<'a>> = None;
    // Set when `found` is a hard link whose data comes with a later link.
    let mut data: Option<&'a [u8]> = None;
    for entry in entries(archive) {
        let entry = entry?;
        if !want.is_empty() && entry.path() == want {
            if found.is_some() {
                return Err(ArchiveError::DuplicateName { at: entry.offset });
            }
            found = Some(entry);
            continue;
        }
        if let Some(f) = &found {
            let same_inode = f.nlink > 1 && entry.ino == f.ino && entry.dev == f.dev;
            if same_inode && f.data.is_empty() && !entry.data.is_empty() {
                data = Some(entry.data);
            }
        }
    }
    match found {
        None => Err(ArchiveError::NotFound),
        Some(f) if !f.is_file() => Err(ArchiveError::NotAFile { at: f.offset }),
        Some(f) => Ok(data.unwrap_or(f.data)),
    }
}

/// Parses the entry whose header is at `at`. `Ok(None)` is the trailer; otherwise the
/// entry and the offset of the next header.
fn parse_entry(archive: &[u8], at: usize) -> Result<Option<(Entry<'_>, usize)>, ArchiveError> {
    let rest = archive.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Err(ArchiveError::NoTrailer { at });
    }
    let header = rest
        .get(..HEADER_LEN)
        .ok_or(ArchiveError::Truncated { at })?;
    let (magic, fields) = header.split_at(6);
    let crc = match magic {
        m if m == MAGIC_NEWC => false,
        m if m == MAGIC_CRC => true,
        _ => return Err(ArchiveError::BadMagic { at }),
    };
    let mut values = [0u32; 13];
    for (value, digits) in values.iter_mut().zip(fields.chunks_exact(8)) {
        *value = hex8(digits).ok_or(ArchiveError::BadHex { at })?;
    }
    let [ino, mode, _uid, _gid, nlink, _mtime, filesize, ..] = values;
    let [.., devmajor, devminor, _rdevmajor, _rdevminor, namesize, check] = values;

    let namesize = namesize as usize;
    if namesize == 0 {
        return Err(ArchiveError::BadName { at });
    }
    if namesize > MAX_NAME {
        return Err(ArchiveError::NameTooLong { at });
    }
    // Each term is at most `archive.len()` or a u32, so on a 64-bit kernel these sums
    // cannot wrap; they are checked anyway so that a 32-bit build (or a wrong
    // assumption) gets `Truncated` instead of a wrapped offset.
    let name_start = at
        .checked_add(HEADER_LEN)
        .ok_or(ArchiveError::Truncated { at })?;
    let name_end = name_start
        .checked_add(namesize)
        .ok_or(ArchiveError::Truncated { at })?;
    let name = archive
        .get(name_start..name_end)
        .ok_or(ArchiveError::Truncated { at })?;
    let name = match name.split_last() {
        Some((0, name)) if !name.contains(&0) => name,
        _ => return Err(ArchiveError::BadName { at }),
    };

    let data_start = align4(name_end).ok_or(ArchiveError::Truncated { at })?;
    let data_end = data_start
        .checked_add(filesize as usize)
        .ok_or(ArchiveError::Truncated { at })?;
    if name == TRAILER {
        return Ok(None);
    }
    let data = archive
        .get(data_start..data_end)
        .ok_or(ArchiveError::Truncated { at })?;
    if crc && data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b))) != check {
        return Err(ArchiveError::BadChecksum { at });
    }
    // The last entry's data padding may be missing when the archive ends right there;
    // the next read then reports NoTrailer, which says what is wrong.
    let next = align4(data_end).ok_or(ArchiveError::Truncated { at })?;
    let entry = Entry {
        name,
        mode,
        data,
        ino,
        nlink,
        dev: (devmajor, devminor),
        offset: at,
    };
    Ok(Some((entry, next)))
}

/// Rounds up to a multiple of 4.
fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// Parses exactly 8 hex digits (either case; no sign, prefix or spaces).
fn hex8(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &c| {
        // ASCII 0-9, a-f, A-F only; 8 digits of 4 bits fill a u32 exactly, so the shift
        // never loses a set bit.
        Some((acc << 4) | char::from(c).to_digit(16)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_fields() {
        assert_eq!(hex8(b"0000001a"), Some(26));
        assert_eq!(hex8(b"FFFFFFFF"), Some(u32::MAX));
        assert_eq!(hex8(b"0000001g"), None);
        assert_eq!(hex8(b" 000001a"), None);
        assert_eq!(hex8(b"+000001a"), None);
        assert_eq!(hex8(b"0000001"), None);
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize(b"./init"), b"init");
        assert_eq!(normalize(b"././bin/x"), b"bin/x");
        assert_eq!(normalize(b"/init"), b"init");
        assert_eq!(normalize(b"init"), b"init");
        assert_eq!(normalize(b"."), b"");
        assert_eq!(normalize(b"./"), b"");
        assert_eq!(normalize(b".init"), b".init");
        assert_eq!(normalize(b"../init"), b"../init");
    }

    #[test]
    fn alignment() {
        assert_eq!(align4(0), Some(0));
        assert_eq!(align4(1), Some(4));
        assert_eq!(align4(4), Some(4));
        assert_eq!(align4(usize::MAX), None);
    }
}
