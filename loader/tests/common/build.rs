//! Builds inputs by hand: ELF64 images (header and program headers written field by
//! field) and newc cpio archives, valid or with any field set to anything.

/// `p_type` values used by the tests.
pub const PT_NULL: u32 = 0;
pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;
pub const PT_SHLIB: u32 = 5;
pub const PT_PHDR: u32 = 6;
pub const PT_TLS: u32 = 7;
pub const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PT_GNU_RELRO: u32 = 0x6474_e552;
pub const PT_GNU_PROPERTY: u32 = 0x6474_e553;

pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// Offsets of ELF header fields, for tests that poke one.
pub mod off {
    pub const CLASS: usize = 4;
    pub const DATA: usize = 5;
    pub const VERSION: usize = 6;
    pub const OSABI: usize = 7;
    pub const TYPE: usize = 16;
    pub const MACHINE: usize = 18;
    pub const E_VERSION: usize = 20;
    pub const ENTRY: usize = 24;
    pub const PHOFF: usize = 32;
    pub const EHSIZE: usize = 52;
    pub const PHENTSIZE: usize = 54;
    pub const PHNUM: usize = 56;
}

/// Where the example program's user range is.
pub const USER: core::ops::Range<u64> = 0x1000..0x0000_8000_0000_0000;

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ph {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

impl Ph {
    /// A `PT_LOAD` whose file bytes are at `offset` (congruent with `vaddr`).
    pub fn load(flags: u32, vaddr: u64, offset: u64, filesz: u64, memsz: u64) -> Self {
        Self {
            p_type: PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
            align: 0x1000,
        }
    }

    /// A header of another type, all zero but its flags.
    pub fn other(p_type: u32, flags: u32) -> Self {
        Self {
            p_type,
            flags,
            offset: 0,
            vaddr: 0,
            filesz: 0,
            memsz: 0,
            align: 0,
        }
    }
}

/// An ELF64 image: the header fields that matter, the program headers (at `phoff`), and
/// the image length; bytes outside the headers hold a pattern so copies can be checked.
#[derive(Clone, Debug)]
pub struct Elf {
    pub entry: u64,
    pub phoff: u64,
    pub phs: Vec<Ph>,
    pub len: usize,
}

impl Elf {
    /// A static program as GNU ld lays one out with `-z separate-code`: text R+X, rodata
    /// R, data+bss R+W, and a non-executable PT_GNU_STACK.
    pub fn example() -> Self {
        Self {
            entry: 0x40_1010,
            phoff: 64,
            phs: vec![
                Ph::load(PF_R | PF_X, 0x40_1000, 0x1000, 0x180, 0x180),
                Ph::load(PF_R, 0x40_2000, 0x2000, 0x80, 0x80),
                Ph::load(PF_R | PF_W, 0x40_3010, 0x3010, 0x40, 0x1ff0),
                Ph::other(PT_GNU_STACK, PF_R | PF_W),
            ],
            len: 0x3050,
        }
    }

    /// The image bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut img: Vec<u8> = (0..self.len).map(|i| (i % 251) as u8 ^ 0x5a).collect();
        let phnum = u16::try_from(self.phs.len()).unwrap();
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[off::CLASS] = 2;
        h[off::DATA] = 1;
        h[off::VERSION] = 1;
        h[off::OSABI] = 0;
        put16(&mut h, off::TYPE, 2);
        put16(&mut h, off::MACHINE, 62);
        put32(&mut h, off::E_VERSION, 1);
        put64(&mut h, off::ENTRY, self.entry);
        put64(&mut h, off::PHOFF, self.phoff);
        put16(&mut h, off::EHSIZE, 64);
        put16(&mut h, off::PHENTSIZE, 56);
        put16(&mut h, off::PHNUM, phnum);
        write_at(&mut img, 0, &h);
        for (i, ph) in self.phs.iter().enumerate() {
            let mut p = [0u8; 56];
            put32(&mut p, 0, ph.p_type);
            put32(&mut p, 4, ph.flags);
            put64(&mut p, 8, ph.offset);
            put64(&mut p, 16, ph.vaddr);
            put64(&mut p, 24, ph.vaddr);
            put64(&mut p, 32, ph.filesz);
            put64(&mut p, 40, ph.memsz);
            put64(&mut p, 48, ph.align);
            write_at(&mut img, self.phoff as usize + i * 56, &p);
        }
        img
    }
}

/// Byte offset of program header `i`'s field at `field` in an image from `Elf::build`.
pub fn ph_field(elf: &Elf, i: usize, field: usize) -> usize {
    elf.phoff as usize + i * 56 + field
}

/// Writes `bytes` at `at`, growing the image if needed (tests decide the length).
fn write_at(img: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    if img.len() < at + bytes.len() {
        img.resize(at + bytes.len(), 0);
    }
    img[at..at + bytes.len()].copy_from_slice(bytes);
}

pub fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The 13 header fields of a newc entry, in order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    pub devmajor: u32,
    pub devminor: u32,
    pub rdevmajor: u32,
    pub rdevminor: u32,
    pub namesize: u32,
    pub check: u32,
}

/// `S_IFREG | 0755`, `S_IFDIR | 0755`, `S_IFLNK | 0777`.
pub const MODE_FILE: u32 = 0o100_755;
pub const MODE_DIR: u32 = 0o040_755;
pub const MODE_LINK: u32 = 0o120_777;

/// A newc archive being written.
#[derive(Clone, Debug, Default)]
pub struct Cpio {
    pub buf: Vec<u8>,
    next_ino: u32,
}

impl Cpio {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry with the right sizes and `ino`; returns `self` for chaining.
    pub fn entry(mut self, name: &str, mode: u32, data: &[u8]) -> Self {
        self.next_ino += 1;
        let fields = Fields {
            ino: self.next_ino,
            mode,
            nlink: 1,
            filesize: data.len() as u32,
            namesize: name.len() as u32 + 1,
            ..Fields::default()
        };
        self.raw(b"070701", &fields, &nul(name), data)
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, MODE_FILE, data)
    }

    /// Appends an entry exactly as given: fields, name bytes and data bytes are not
    /// checked against each other. Pads name and data to 4 as cpio does.
    pub fn raw(mut self, magic: &[u8; 6], f: &Fields, name: &[u8], data: &[u8]) -> Self {
        self.buf.extend_from_slice(magic);
        for v in [
            f.ino,
            f.mode,
            f.uid,
            f.gid,
            f.nlink,
            f.mtime,
            f.filesize,
            f.devmajor,
            f.devminor,
            f.rdevmajor,
            f.rdevminor,
            f.namesize,
            f.check,
        ] {
            self.buf.extend_from_slice(format!("{v:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, b"").buf
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// `name` with its NUL.
pub fn nul(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}
