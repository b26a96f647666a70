//! A hostile ELF image in, a validated [`LoadPlan`] out.
//!
//! Only what the kernel can run is accepted: ELF64, little-endian, version 1, `ET_EXEC`
//! (static, not position-independent), `EM_X86_64`. Only the ELF header and the program
//! headers are read; section headers are not needed to load and are ignored.
//!
//! # Program headers
//!
//! * `PT_LOAD` becomes a [`Segment`] (one with `memsz == 0` maps nothing and is skipped).
//! * `PT_INTERP`, `PT_DYNAMIC`: the program wants a dynamic linker: [`ElfError::NotStatic`].
//! * `PT_TLS`: the kernel sets up no thread-local block: [`ElfError::Tls`].
//! * `PT_GNU_STACK` asking for an executable stack: [`ElfError::ExecutableStack`] (the
//!   kernel's user stacks are never executable, so running it would fault later).
//! * `PT_SHLIB` (reserved, meaning undefined): [`ElfError::UnsupportedSegment`].
//! * Anything else (`PT_NULL`, `PT_NOTE`, `PT_PHDR`, `PT_GNU_PROPERTY`, `PT_GNU_RELRO`,
//!   `PT_GNU_EH_FRAME`, OS- and processor-specific types) is ignored, as Linux does: only
//!   `PT_LOAD` makes the kernel map anything, so an ignored header cannot widen what a
//!   program gets.
//!
//! # What the kernel does with a plan
//!
//! For each [`Segment`], for each page of [`Segment::pages`]: take a fresh frame, fill it
//! as [`Segment::page_fills`] says (copy the file bytes it names, zero the rest of the
//! page), then map it at that page with the segment's [`Flags`]:
//!
//! * text (`R+X`): read-only, executable;
//! * rodata (`R`): read-only, NX;
//! * data and bss (`R+W`): writable, NX. Bytes from `filesz` to `memsz` are the bss and
//!   read as zero. The page shared by the file's last bytes and the start of the bss is
//!   copied only up to `filesz` and zeroed past it: the file holds whatever follows the
//!   segment there (the next section, symbols), which must not show through as bss.
//!
//! A page is never both writable and executable (refused here, W^X), and no two segments
//! share a page (refused here), so every page gets exactly one set of permissions and
//! the kernel never merges two fills into one frame. The stack, the heap and the entry
//! registers are the kernel's choice, placed outside [`LoadPlan::segments`]; execution
//! starts at [`LoadPlan::entry`], which lies in file-backed bytes of an executable
//! segment.
//!
//! Copying into fresh frames keeps the boot module read-only and lets it be freed once
//! programs are loaded. Page congruence (`vaddr ≡ offset` mod 4096) is still required,
//! as every ELF loader requires it: it is what lets a kernel instead map a file page
//! straight into a read-only segment, and it is what every linker emits. The ELF
//! `p_align` (often 2 MiB) says nothing more that a 4 KiB-page loader needs, so it is
//! not read.

use core::fmt;
use core::ops::Range;

/// Size of a page, the granule of mappings and of every range check here.
pub const PAGE_SIZE: u64 = 4096;
/// The most loadable segments a [`LoadPlan`] holds. A static program has two to four
/// (text, rodata, data+bss, maybe a separate relro).
pub const MAX_SEGMENTS: usize = 8;

const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;

const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const ELFOSABI_SYSV: u8 = 0;
const ELFOSABI_GNU: u8 = 3;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
/// `e_phnum` value meaning "the real count is in section header 0".
const PN_XNUM: u16 = 0xffff;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_SHLIB: u32 = 5;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// How big a program may be. The defaults: [`MAX_SEGMENTS`] segments, 64 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// At most this many `PT_LOAD` segments (values above [`MAX_SEGMENTS`] count as it).
    pub max_segments: usize,
    /// At most this many bytes of memory in all, counted in whole pages (what the kernel
    /// will allocate: [`LoadPlan::pages_needed`] × [`PAGE_SIZE`]).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_segments: MAX_SEGMENTS,
            max_bytes: 64 << 20,
        }
    }
}

/// Why an image cannot be loaded. `index` is the program header's index in the table (as
/// `readelf -l` numbers them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The image is shorter than an ELF header (64 bytes).
    Truncated,
    /// It does not start with `\x7fELF`.
    BadMagic,
    /// Not ELFCLASS64.
    NotElf64,
    /// Not little-endian.
    NotLittleEndian,
    /// `EI_VERSION` or `e_version` is not 1 (EV_CURRENT).
    BadVersion,
    /// The OS ABI is neither System V (0) nor GNU (3).
    BadOsAbi {
        /// `EI_OSABI` as read.
        osabi: u8,
    },
    /// Not `ET_EXEC`: a PIE or shared object (`ET_DYN`), an object file, a core dump.
    NotExecutable {
        /// `e_type` as read.
        e_type: u16,
    },
    /// Not for x86-64.
    WrongMachine {
        /// `e_machine` as read.
        machine: u16,
    },
    /// `e_ehsize` is not 64.
    BadHeaderSize,
    /// `e_phentsize` is not 56, the size of an ELF64 program header.
    BadPhentsize {
        /// `e_phentsize` as read.
        phentsize: u16,
    },
    /// `e_phnum` is `PN_XNUM`: the count lives in a section header, which a program with
    /// so many headers does not need to be loaded by us.
    ExtendedPhnum,
    /// The program header table (`e_phoff` + `e_phnum` × 56) overflows or ends past the
    /// image.
    TruncatedPhdrs,
    /// More `PT_LOAD` segments than [`Limits::max_segments`].
    TooManySegments,
    /// The segments need more than [`Limits::max_bytes`].
    TooLarge,
    /// A segment has more file bytes than memory bytes.
    FileSizeOverMemSize {
        /// Program header index.
        index: usize,
    },
    /// A segment's file range (`p_offset` + `p_filesz`) overflows or ends past the image.
    FileRangeOutOfBounds {
        /// Program header index.
        index: usize,
    },
    /// A segment's `p_vaddr` + `p_memsz`, rounded up to a page, overflows.
    AddressOverflow {
        /// Program header index.
        index: usize,
    },
    /// A segment's pages are not all inside the user range.
    OutsideUser {
        /// Program header index.
        index: usize,
    },
    /// `p_vaddr` and `p_offset` differ modulo the page size, so file bytes cannot keep
    /// their offset within a page.
    NotPageCongruent {
        /// Program header index.
        index: usize,
    },
    /// Two segments share a page (after rounding each out to pages).
    Overlap {
        /// The earlier program header's index.
        first: usize,
        /// The later program header's index.
        second: usize,
    },
    /// A segment is both writable and executable (W^X).
    WriteAndExecute {
        /// Program header index.
        index: usize,
    },
    /// `PT_INTERP` or `PT_DYNAMIC`: the program needs a dynamic linker.
    NotStatic,
    /// `PT_TLS`: the program needs thread-local storage, which the kernel does not set up.
    Tls,
    /// `PT_GNU_STACK` asks for an executable stack.
    ExecutableStack,
    /// A program header type with no defined meaning that we could honour (`PT_SHLIB`).
    UnsupportedSegment {
        /// `p_type` as read.
        p_type: u32,
    },
    /// No `PT_LOAD` segment with any memory.
    NoLoadSegments,
    /// `e_entry` is 0.
    EntryZero,
    /// `e_entry` is not inside the file-backed bytes of an executable segment.
    EntryNotExecutable,
    /// The caller's user range is empty or not page-aligned.
    BadUserRange,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug already spells each name and field; one spelling for the log.
        write!(f, "elf: {self:?}")
    }
}

/// A segment's permissions. x86 cannot map a page executable but not readable, so an
/// `X`-only segment is mapped `R+X`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `PF_R`.
    pub readable: bool,
    /// `PF_W`.
    pub writable: bool,
    /// `PF_X`.
    pub executable: bool,
}

/// One `PT_LOAD` segment, checked: its pages are in the user range, its file bytes are in
/// the image, and it is not both writable and executable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Where it starts in the program's address space (not necessarily page-aligned).
    pub vaddr: u64,
    /// Bytes of memory, `filesz` of them from the file, the rest zero (bss).
    pub memsz: u64,
    /// Where its file bytes start in the image.
    pub file_offset: u64,
    /// Bytes taken from the image; `filesz <= memsz`.
    pub filesz: u64,
    /// Permissions.
    pub flags: Flags,
}

/// One page of a segment and how to fill it: copy `image[src]` to `offset_in_page`, zero
/// every other byte of the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageFill {
    /// The page's address (page-aligned).
    pub page: u64,
    /// Where in the page the copied bytes go.
    pub offset_in_page: usize,
    /// Which bytes of the image to copy there (possibly empty: an all-zero page).
    pub src: Range<usize>,
}

impl Segment {
    /// The page-aligned addresses the segment covers, `start..end`, end exclusive.
    pub fn pages(&self) -> Range<u64> {
        // `plan` checked that rounding `vaddr + memsz` up does not overflow.
        page_down(self.vaddr)..page_up(self.vaddr.saturating_add(self.memsz)).unwrap_or(u64::MAX)
    }

    /// How many pages the segment covers.
    pub fn page_count(&self) -> u64 {
        let pages = self.pages();
        pages.end.saturating_sub(pages.start) / PAGE_SIZE
    }

    /// The image bytes the segment copies, `file_offset..file_offset + filesz`.
    pub fn file_range(&self) -> Range<usize> {
        // `plan` checked that the range is inside the image, so it fits a usize.
        let start = usize::try_from(self.file_offset).unwrap_or(usize::MAX);
        let len = usize::try_from(self.filesz).unwrap_or(usize::MAX);
        start..start.saturating_add(len)
    }

    /// How to fill each page of [`pages`](Self::pages), in order: pages wholly in the
    /// bss get an empty `src`; the page holding the file's tail gets only the bytes up to
    /// `filesz`, so the bss part of it is zero. Any page can be asked for directly
    /// (`nth`, from either end) without walking the ones before it.
    pub fn page_fills(&self) -> PageFills {
        PageFills {
            segment: *self,
            front: 0,
            back: self.page_count(),
        }
    }

    /// How to fill page `i` (counted from the segment's first page).
    fn fill(&self, i: u64) -> PageFill {
        let page = self
            .pages()
            .start
            .saturating_add(i.saturating_mul(PAGE_SIZE));
        let page_end = page.saturating_add(PAGE_SIZE);
        let file_end = self.vaddr.saturating_add(self.filesz);
        let file_range = self.file_range();
        // The part of this page backed by the file: [max(page, vaddr), min(page_end,
        // vaddr + filesz)); empty when the page is past the file bytes.
        let from = page.max(self.vaddr);
        let to = page_end.min(file_end).max(from);
        let offset_in_page = usize::try_from(from.saturating_sub(page)).unwrap_or(0);
        let skip = usize::try_from(from.saturating_sub(self.vaddr)).unwrap_or(usize::MAX);
        let len = usize::try_from(to.saturating_sub(from)).unwrap_or(0);
        let start = file_range.start.saturating_add(skip).min(file_range.end);
        let src = start..start.saturating_add(len).min(file_range.end);
        PageFill {
            page,
            offset_in_page,
            src,
        }
    }
}

/// The iterator of [`Segment::page_fills`]: one [`PageFill`] per page, computed on
/// demand (a large bss costs no memory here).
#[derive(Clone, Debug)]
pub struct PageFills {
    segment: Segment,
    /// Index of the next page from the front.
    front: u64,
    /// One past the index of the next page from the back.
    back: u64,
}

impl Iterator for PageFills {
    type Item = PageFill;

    fn next(&mut self) -> Option<PageFill> {
        if self.front >= self.back {
            return None;
        }
        let fill = self.segment.fill(self.front);
        self.front = self.front.saturating_add(1);
        Some(fill)
    }

    fn nth(&mut self, n: usize) -> Option<PageFill> {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.front = self.front.saturating_add(n).min(self.back);
        self.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // A plan's pages are at most `max_bytes / PAGE_SIZE`, far below `usize::MAX`.
        let n = usize::try_from(self.back.saturating_sub(self.front)).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl DoubleEndedIterator for PageFills {
    fn next_back(&mut self) -> Option<PageFill> {
        if self.front >= self.back {
            return None;
        }
        self.back = self.back.saturating_sub(1);
        Some(self.segment.fill(self.back))
    }
}

impl ExactSizeIterator for PageFills {}

impl core::iter::FusedIterator for PageFills {}

/// What to map for a program, checked against the image, the user range and the limits.
/// Only [`plan`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

impl LoadPlan {
    /// Where execution starts.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The segments, in program header order; at least one, at most [`MAX_SEGMENTS`],
    /// no two sharing a page.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.count).unwrap_or_default()
    }

    /// Pages to allocate for all segments (the stack is not included).
    pub fn pages_needed(&self) -> u64 {
        self.segments()
            .iter()
            .fold(0u64, |n, s| n.saturating_add(s.page_count()))
    }
}

/// Checks `image` and says what to map for it.
///
/// `user` is the part of the address space the program may occupy (the user half, minus
/// whatever the kernel keeps for itself such as page 0); it must be page-aligned and not
/// empty. Every segment's pages must lie inside it.
pub fn plan(image: &[u8], user: Range<u64>, limits: Limits) -> Result<LoadPlan, ElfError> {
    if user.start >= user.end || page_offset(user.start) != 0 || page_offset(user.end) != 0 {
        return Err(ElfError::BadUserRange);
    }
    let header = Header::parse(image)?;
    let max_segments = limits.max_segments.min(MAX_SEGMENTS);

    let mut plan = LoadPlan {
        entry: header.entry,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: 0,
    };
    // Program header index of each planned segment, for the overlap error.
    let mut indices = [0usize; MAX_SEGMENTS];
    let mut bytes: u64 = 0;

    for index in 0..usize::from(header.phnum) {
        let ph = header.phdr(image, index).ok_or(ElfError::TruncatedPhdrs)?;
        match ph.p_type {
            PT_LOAD => {}
            PT_INTERP | PT_DYNAMIC => return Err(ElfError::NotStatic),
            PT_TLS => return Err(ElfError::Tls),
            PT_SHLIB => return Err(ElfError::UnsupportedSegment { p_type: ph.p_type }),
            PT_GNU_STACK if ph.flags & PF_X != 0 => return Err(ElfError::ExecutableStack),
            _ => continue,
        }
        let segment = check_load(&ph, index, image.len(), &user)?;
        if segment.memsz == 0 {
            continue;
        }
        if plan.count >= max_segments {
            return Err(ElfError::TooManySegments);
        }
        for (planned, &first) in plan.segments().iter().zip(&indices) {
            if overlaps(&planned.pages(), &segment.pages()) {
                return Err(ElfError::Overlap {
                    first,
                    second: index,
                });
            }
        }
        bytes = bytes.saturating_add(segment.page_count().saturating_mul(PAGE_SIZE));
        if bytes > limits.max_bytes {
            return Err(ElfError::TooLarge);
        }
        // `count < max_segments <= MAX_SEGMENTS`, so both slots exist.
        if let (Some(slot), Some(i)) = (
            plan.segments.get_mut(plan.count),
            indices.get_mut(plan.count),
        ) {
            *slot = segment;
            *i = index;
        }
        plan.count = plan.count.saturating_add(1);
    }

    if plan.count == 0 {
        return Err(ElfError::NoLoadSegments);
    }
    if plan.entry == 0 {
        return Err(ElfError::EntryZero);
    }
    let entry_ok = plan.segments().iter().any(|s| {
        s.flags.executable
            && plan
                .entry
                .checked_sub(s.vaddr)
                .is_some_and(|into| into < s.filesz)
    });
    if !entry_ok {
        return Err(ElfError::EntryNotExecutable);
    }
    Ok(plan)
}

/// The checks of one `PT_LOAD` header, in the order a reader of the error would want the
/// first failure reported: sizes, file range, address range, placement, permissions.
fn check_load(
    ph: &Phdr,
    index: usize,
    image_len: usize,
    user: &Range<u64>,
) -> Result<Segment, ElfError> {
    if ph.filesz > ph.memsz {
        return Err(ElfError::FileSizeOverMemSize { index });
    }
    let file_end = ph
        .offset
        .checked_add(ph.filesz)
        .ok_or(ElfError::FileRangeOutOfBounds { index })?;
    if file_end > image_len as u64 {
        return Err(ElfError::FileRangeOutOfBounds { index });
    }
    let mem_end = ph
        .vaddr
        .checked_add(ph.memsz)
        .and_then(page_up)
        .ok_or(ElfError::AddressOverflow { index })?;
    let segment = Segment {
        vaddr: ph.vaddr,
        memsz: ph.memsz,
        file_offset: ph.offset,
        filesz: ph.filesz,
        flags: Flags {
            readable: ph.flags & PF_R != 0,
            writable: ph.flags & PF_W != 0,
            executable: ph.flags & PF_X != 0,
        },
    };
    if ph.memsz == 0 {
        // Maps nothing; its address and flags do not matter.
        return Ok(segment);
    }
    if page_down(ph.vaddr) < user.start || mem_end > user.end {
        return Err(ElfError::OutsideUser { index });
    }
    if page_offset(ph.vaddr) != page_offset(ph.offset) {
        return Err(ElfError::NotPageCongruent { index });
    }
    if segment.flags.writable && segment.flags.executable {
        return Err(ElfError::WriteAndExecute { index });
    }
    Ok(segment)
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

fn page_offset(addr: u64) -> u64 {
    addr & (PAGE_SIZE - 1)
}

fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

fn page_up(addr: u64) -> Option<u64> {
    Some(addr.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// The fields of the ELF header that loading needs, after the identity checks.
struct Header {
    entry: u64,
    phoff: u64,
    phnum: u16,
}

impl Header {
    fn parse(image: &[u8]) -> Result<Self, ElfError> {
        let ehdr = image.get(..EHDR_LEN).ok_or(ElfError::Truncated)?;
        let b = |i: usize| ehdr.get(i).copied().unwrap_or(0);
        if ehdr.get(..4) != Some(b"\x7fELF") {
            return Err(ElfError::BadMagic);
        }
        if b(4) != ELFCLASS64 {
            return Err(ElfError::NotElf64);
        }
        if b(5) != ELFDATA2LSB {
            return Err(ElfError::NotLittleEndian);
        }
        if b(6) != EV_CURRENT || le32(ehdr, 20) != Some(u32::from(EV_CURRENT)) {
            return Err(ElfError::BadVersion);
        }
        if !matches!(b(7), ELFOSABI_SYSV | ELFOSABI_GNU) {
            return Err(ElfError::BadOsAbi { osabi: b(7) });
        }
        let e_type = le16(ehdr, 16).unwrap_or(0);
        if e_type != ET_EXEC {
            return Err(ElfError::NotExecutable { e_type });
        }
        let machine = le16(ehdr, 18).unwrap_or(0);
        if machine != EM_X86_64 {
            return Err(ElfError::WrongMachine { machine });
        }
        if le16(ehdr, 52) != Some(EHDR_LEN as u16) {
            return Err(ElfError::BadHeaderSize);
        }
        let phentsize = le16(ehdr, 54).unwrap_or(0);
        if usize::from(phentsize) != PHDR_LEN {
            return Err(ElfError::BadPhentsize { phentsize });
        }
        let phnum = le16(ehdr, 56).unwrap_or(0);
        if phnum == PN_XNUM {
            return Err(ElfError::ExtendedPhnum);
        }
        let phoff = le64(ehdr, 32).unwrap_or(0);
        // The whole table must be in the image before any entry is read: a table that
        // runs off the end is refused as such, not as whichever entry it cuts.
        let table_end = (PHDR_LEN as u64)
            .checked_mul(u64::from(phnum))
            .and_then(|len| phoff.checked_add(len))
            .ok_or(ElfError::TruncatedPhdrs)?;
        if table_end > image.len() as u64 {
            return Err(ElfError::TruncatedPhdrs);
        }
        Ok(Self {
            entry: le64(ehdr, 24).unwrap_or(0),
            phoff,
            phnum,
        })
    }

    /// Program header `index`; `None` only if the table is not in the image, which
    /// `parse` already ruled out.
    fn phdr(&self, image: &[u8], index: usize) -> Option<Phdr> {
        let start = usize::try_from(self.phoff)
            .ok()?
            .checked_add(index.checked_mul(PHDR_LEN)?)?;
        let ph = image.get(start..start.checked_add(PHDR_LEN)?)?;
        Some(Phdr {
            p_type: le32(ph, 0)?,
            flags: le32(ph, 4)?,
            offset: le64(ph, 8)?,
            vaddr: le64(ph, 16)?,
            filesz: le64(ph, 32)?,
            memsz: le64(ph, 40)?,
        })
    }
}

/// The fields of a program header that loading needs (`p_paddr` and `p_align` are not).
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_rounding() {
        assert_eq!(page_down(0x1fff), 0x1000);
        assert_eq!(page_up(0x1001), Some(0x2000));
        assert_eq!(page_up(0x2000), Some(0x2000));
        assert_eq!(page_up(u64::MAX), None);
    }

    #[test]
    fn fills_zero_the_bss_part_of_the_tail_page() {
        // 0x10 bytes of file at 0x400ff8: 8 on the first page, 8 on the second, then
        // bss to 0x403000.
        let s = Segment {
            vaddr: 0x40_0ff8,
            memsz: 0x2008,
            file_offset: 0xff8,
            filesz: 0x10,
            flags: Flags::default(),
        };
        assert_eq!(s.pages(), 0x40_0000..0x40_3000);
        let fills: [PageFill; 3] = [
            PageFill {
                page: 0x40_0000,
                offset_in_page: 0xff8,
                src: 0xff8..0x1000,
            },
            PageFill {
                page: 0x40_1000,
                offset_in_page: 0,
                src: 0x1000..0x1008,
            },
            PageFill {
                page: 0x40_2000,
                offset_in_page: 0,
                src: 0x1008..0x1008,
            },
        ];
        assert!(s.page_fills().eq(fills.clone()));
        assert!(s.page_fills().rev().eq(fills.clone().into_iter().rev()));
        assert_eq!(s.page_fills().len(), 3);
        assert_eq!(s.page_fills().nth(2), Some(fills[2].clone()));
        assert_eq!(s.page_fills().nth(3), None);
        let mut it = s.page_fills();
        assert_eq!(it.next_back(), Some(fills[2].clone()));
        assert_eq!(it.nth(1), Some(fills[1].clone()));
        assert_eq!(it.next(), None);
        assert_eq!(it.next_back(), None);
    }
}
