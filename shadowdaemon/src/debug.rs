//! `shadowdaemon debug ...`: small tools the rig runs in dom0 to check one
//! mechanism at a time against a guest.
//!
//! `grant-read` maps a page a guest granted to dom0 and prints it;
//! `grant-write` maps it writable and writes bytes into it;
//! `evtchn-notify` binds a port a guest offers dom0 and notifies it once.
//! Arguments are validated here (named [`ArgError`]s) before any device is
//! touched; the device work is in [`crate::xen::gntdev`] and
//! [`crate::xen::evtchn`].

use crate::xen::gntdev::{self, Access, Gntdev, GntdevError, GRANT_PAGE_SIZE};
use clap::Args;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The first domain id Xen reserves (`DOMID_FIRST_RESERVED`); no guest has it
/// or a higher one.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;

/// Exit status for arguments rejected before any device was touched (the
/// same as clap's usage errors).
const EXIT_BAD_ARGS: u8 = 2;

/// `debug grant-read` arguments.
#[derive(Args, Debug, Clone)]
pub struct GrantReadArgs {
    /// Domain that granted the page.
    #[arg(long)]
    pub domid: u16,
    /// Grant reference the domain published.
    #[arg(long)]
    pub gref: u32,
    /// First byte of the page to print (0..4096).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Number of bytes to print (1..=4096-offset).
    #[arg(long, default_value_t = 64)]
    pub len: usize,
    /// Grant-mapping device.
    #[arg(long, value_name = "PATH", default_value = gntdev::DEFAULT_PATH)]
    pub gntdev: PathBuf,
}

/// `debug grant-write` arguments.
#[derive(Args, Debug, Clone)]
pub struct GrantWriteArgs {
    /// Domain that granted the page (it must have granted it writable).
    #[arg(long)]
    pub domid: u16,
    /// Grant reference the domain published.
    #[arg(long)]
    pub gref: u32,
    /// First byte of the page to write (0..4096).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Bytes to write, as hex digits, two per byte (e.g. 48656c6c6f); at
    /// most 4096-offset bytes.
    #[arg(long)]
    pub hex: String,
    /// Grant-mapping device.
    #[arg(long, value_name = "PATH", default_value = gntdev::DEFAULT_PATH)]
    pub gntdev: PathBuf,
}

/// An argument rejected before any device is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// `--hex` is empty.
    HexEmpty,
    /// `--hex` has an odd number of digits.
    HexOddLength {
        /// How many digits it has.
        digits: usize,
    },
    /// `--hex` has a character that is not a hex digit.
    HexBadDigit {
        /// Its position (0-based, in characters).
        position: usize,
        /// The character.
        found: char,
    },
    /// `--len 0`.
    LenZero,
    /// `offset + len` goes past the end of the page.
    OutOfPage {
        /// The offset asked for.
        offset: usize,
        /// The length asked for.
        len: usize,
    },
    /// A domain id Xen reserves (`>= DOMID_FIRST_RESERVED`).
    ReservedDomid {
        /// The id given.
        domid: u16,
    },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::HexEmpty => f.write_str("bad --hex: empty"),
            ArgError::HexOddLength { digits } => {
                write!(f, "bad --hex: odd number of digits ({digits})")
            }
            ArgError::HexBadDigit { position, found } => {
                write!(
                    f,
                    "bad --hex: {found:?} at position {position} is not a hex digit"
                )
            }
            ArgError::LenZero => f.write_str("bad --len: must be at least 1"),
            ArgError::OutOfPage { offset, len } => write!(
                f,
                "bad range: offset {offset} + length {len} exceeds the {GRANT_PAGE_SIZE}-byte page"
            ),
            ArgError::ReservedDomid { domid } => write!(
                f,
                "bad --domid: {domid} is reserved by Xen (>= {DOMID_FIRST_RESERVED})"
            ),
        }
    }
}

impl std::error::Error for ArgError {}

/// A checked `grant-read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    /// Granting domain.
    pub domid: u16,
    /// Grant reference.
    pub gref: u32,
    /// First byte.
    pub offset: usize,
    /// Number of bytes, `1..=GRANT_PAGE_SIZE - offset`.
    pub len: usize,
}

impl ReadRequest {
    /// Checks the arguments.
    pub fn new(domid: u16, gref: u32, offset: usize, len: usize) -> Result<Self, ArgError> {
        check_domid(domid)?;
        check_range(offset, len)?;
        Ok(ReadRequest {
            domid,
            gref,
            offset,
            len,
        })
    }
}

/// A checked `grant-write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    /// Granting domain.
    pub domid: u16,
    /// Grant reference.
    pub gref: u32,
    /// First byte.
    pub offset: usize,
    /// The bytes, `1..=GRANT_PAGE_SIZE - offset` of them.
    pub bytes: Vec<u8>,
}

impl WriteRequest {
    /// Checks the arguments and decodes `hex`.
    pub fn new(domid: u16, gref: u32, offset: usize, hex: &str) -> Result<Self, ArgError> {
        check_domid(domid)?;
        let bytes = parse_hex(hex)?;
        check_range(offset, bytes.len())?;
        Ok(WriteRequest {
            domid,
            gref,
            offset,
            bytes,
        })
    }
}

fn check_domid(domid: u16) -> Result<(), ArgError> {
    if domid >= DOMID_FIRST_RESERVED {
        return Err(ArgError::ReservedDomid { domid });
    }
    Ok(())
}

/// Checks that `offset..offset + len` is a non-empty range inside the page.
pub fn check_range(offset: usize, len: usize) -> Result<(), ArgError> {
    if len == 0 {
        return Err(ArgError::LenZero);
    }
    match offset.checked_add(len) {
        Some(end) if end <= GRANT_PAGE_SIZE => Ok(()),
        _ => Err(ArgError::OutOfPage { offset, len }),
    }
}

/// Decodes hex digits (either case, two per byte, no prefix or separators).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, ArgError> {
    if s.is_empty() {
        return Err(ArgError::HexEmpty);
    }
    let mut nibbles = Vec::with_capacity(s.len());
    for (position, found) in s.chars().enumerate() {
        match found.to_digit(16) {
            // A hex digit is < 16, so it fits in a u8.
            Some(d) => nibbles.push(d as u8),
            None => return Err(ArgError::HexBadDigit { position, found }),
        }
    }
    if nibbles.len() % 2 != 0 {
        return Err(ArgError::HexOddLength {
            digits: nibbles.len(),
        });
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|p| (p[0] << 4) | p[1])
        .collect())
}

/// Lowercase hex, two digits per byte, nothing between.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Printable ASCII (space through `~`) as itself, every other byte as `.`.
pub fn to_ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..=0x7e).contains(&b) {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

/// The two lines `grant-read` prints (without a final newline).
pub fn read_report(req: &ReadRequest, bytes: &[u8]) -> String {
    format!(
        "grant-read domid={} gref={} offset={} len={} hex={}\nascii={}",
        req.domid,
        req.gref,
        req.offset,
        bytes.len(),
        to_hex(bytes),
        to_ascii(bytes)
    )
}

/// The line `grant-write` prints.
pub fn write_report(req: &WriteRequest) -> String {
    format!(
        "grant-write domid={} gref={} offset={} len={} hex={}",
        req.domid,
        req.gref,
        req.offset,
        req.bytes.len(),
        to_hex(&req.bytes)
    )
}

/// Maps the grant read-only through `device`, copies the bytes out once and
/// unmaps (an unmap failure is reported too).
pub fn grant_read(device: &Path, req: &ReadRequest) -> Result<Vec<u8>, GntdevError> {
    let dev = Gntdev::open(device)?;
    let map = dev.map_grant(req.domid, req.gref, Access::ReadOnly)?;
    let bytes = map.read(req.offset, req.len)?;
    map.unmap()?;
    Ok(bytes)
}

/// Maps the grant read-write through `device`, writes the bytes and unmaps
/// (an unmap failure is reported too).
pub fn grant_write(device: &Path, req: &WriteRequest) -> Result<(), GntdevError> {
    let dev = Gntdev::open(device)?;
    let map = dev.map_grant(req.domid, req.gref, Access::ReadWrite)?;
    map.write(req.offset, &req.bytes)?;
    map.unmap()
}

/// `debug evtchn-notify` arguments.
#[derive(Args, Debug, Clone)]
pub struct EvtchnNotifyArgs {
    /// Domain that offers the port (allocated unbound for dom0).
    #[arg(long)]
    pub domid: u16,
    /// The domain's port.
    #[arg(long)]
    pub port: u32,
    /// Event-channel device.
    #[arg(long, value_name = "PATH", default_value = "/dev/xen/evtchn")]
    pub evtchn: PathBuf,
}

/// Runs `debug evtchn-notify`: binds, notifies once, unbinds (the binding
/// is closed with its file); the report goes to stdout, errors to the log.
pub fn run_evtchn_notify(args: &EvtchnNotifyArgs) -> ExitCode {
    use shadowdaemon::serve::EventChannel;
    let notified = crate::xen::evtchn::XenEventChannel::bind(&args.evtchn, args.domid, args.port)
        .and_then(|mut channel| {
            channel
                .notify()
                .map(|()| channel.local_port())
                .map_err(|e| std::io::Error::new(e.kind(), format!("notify: {e}")))
        });
    match notified {
        Ok(local) => {
            println!(
                "evtchn-notify domid={} port={} local_port={local}",
                args.domid, args.port
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("evtchn-notify: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `debug grant-read`: the report goes to stdout, errors to the log.
pub fn run_grant_read(args: &GrantReadArgs) -> ExitCode {
    let req = match ReadRequest::new(args.domid, args.gref, args.offset, args.len) {
        Ok(req) => req,
        Err(e) => {
            log::error!("grant-read: {e}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    match grant_read(&args.gntdev, &req) {
        Ok(bytes) => {
            println!("{}", read_report(&req, &bytes));
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("grant-read: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `debug grant-write`: the report goes to stdout, errors to the log.
pub fn run_grant_write(args: &GrantWriteArgs) -> ExitCode {
    let req = match WriteRequest::new(args.domid, args.gref, args.offset, &args.hex) {
        Ok(req) => req,
        Err(e) => {
            log::error!("grant-write: {e}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    match grant_write(&args.gntdev, &req) {
        Ok(()) => {
            println!("{}", write_report(&req));
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("grant-write: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::gntdev::Step;

    #[test]
    fn hex_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        let hex = to_hex(&all);
        assert_eq!(hex.len(), 512);
        assert!(hex.starts_with("000102"));
        assert!(hex.ends_with("fdfeff"));
        assert_eq!(parse_hex(&hex).unwrap(), all);
        assert_eq!(parse_hex("DEADbeef").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(to_hex(&[]), "");
    }

    #[test]
    fn bad_hex_is_named() {
        assert_eq!(parse_hex(""), Err(ArgError::HexEmpty));
        assert_eq!(parse_hex("abc"), Err(ArgError::HexOddLength { digits: 3 }));
        assert_eq!(
            parse_hex("0g"),
            Err(ArgError::HexBadDigit {
                position: 1,
                found: 'g'
            })
        );
        assert_eq!(
            parse_hex("0x12"),
            Err(ArgError::HexBadDigit {
                position: 1,
                found: 'x'
            })
        );
        assert_eq!(
            parse_hex("12 34"),
            Err(ArgError::HexBadDigit {
                position: 2,
                found: ' '
            })
        );
        assert_eq!(
            parse_hex("1é"),
            Err(ArgError::HexBadDigit {
                position: 1,
                found: 'é'
            })
        );
        assert!(parse_hex("zz").unwrap_err().to_string().contains("--hex"));
    }

    #[test]
    fn ascii_replaces_unprintables() {
        assert_eq!(to_ascii(b"Hi there~"), "Hi there~");
        assert_eq!(
            to_ascii(&[0x00, b'A', 0x1f, 0x7f, 0x80, 0xff, b' ']),
            ".A.... "
        );
    }

    #[test]
    fn read_report_format() {
        let req = ReadRequest::new(5, 8, 16, 4).unwrap();
        assert_eq!(
            read_report(&req, &[0x45, 0x74, 0x00, 0xff]),
            "grant-read domid=5 gref=8 offset=16 len=4 hex=457400ff\nascii=Et.."
        );
    }

    #[test]
    fn write_report_format() {
        let req = WriteRequest::new(7, 9, 100, "48690A").unwrap();
        assert_eq!(req.bytes, [0x48, 0x69, 0x0a]);
        assert_eq!(
            write_report(&req),
            "grant-write domid=7 gref=9 offset=100 len=3 hex=48690a"
        );
    }

    #[test]
    fn read_range_is_bounded_by_the_page() {
        assert!(ReadRequest::new(1, 0, 0, 4096).is_ok());
        assert!(ReadRequest::new(1, 0, 4095, 1).is_ok());
        assert_eq!(
            ReadRequest::new(1, 0, 4033, 64),
            Err(ArgError::OutOfPage {
                offset: 4033,
                len: 64
            })
        );
        assert_eq!(
            ReadRequest::new(1, 0, 0, 4097),
            Err(ArgError::OutOfPage {
                offset: 0,
                len: 4097
            })
        );
        assert_eq!(
            ReadRequest::new(1, 0, 4096, 1),
            Err(ArgError::OutOfPage {
                offset: 4096,
                len: 1
            })
        );
        assert_eq!(
            ReadRequest::new(1, 0, usize::MAX, 1),
            Err(ArgError::OutOfPage {
                offset: usize::MAX,
                len: 1
            })
        );
        assert_eq!(ReadRequest::new(1, 0, 0, 0), Err(ArgError::LenZero));
    }

    #[test]
    fn write_range_is_bounded_by_the_page() {
        assert!(WriteRequest::new(1, 0, 4094, "abcd").is_ok());
        assert_eq!(
            WriteRequest::new(1, 0, 4095, "abcd"),
            Err(ArgError::OutOfPage {
                offset: 4095,
                len: 2
            })
        );
        let page = "00".repeat(4096);
        assert!(WriteRequest::new(1, 0, 0, &page).is_ok());
        assert!(WriteRequest::new(1, 0, 1, &page).is_err());
        assert_eq!(
            WriteRequest::new(1, 0, 0, "0"),
            Err(ArgError::HexOddLength { digits: 1 })
        );
    }

    #[test]
    fn reserved_domids_are_rejected() {
        assert!(ReadRequest::new(0x7fef, 0, 0, 1).is_ok());
        assert_eq!(
            ReadRequest::new(0x7ff0, 0, 0, 1),
            Err(ArgError::ReservedDomid { domid: 0x7ff0 })
        );
        assert_eq!(
            WriteRequest::new(0xffff, 0, 0, "00"),
            Err(ArgError::ReservedDomid { domid: 0xffff })
        );
    }

    #[test]
    fn missing_device_fails_at_open() {
        let missing = Path::new("/nonexistent/dev/xen/gntdev");
        let req = ReadRequest::new(5, 8, 0, 64).unwrap();
        let err = grant_read(missing, &req).unwrap_err();
        assert_eq!(err.step(), Some(Step::Open));
        assert!(err.to_string().starts_with("open failed"), "{err}");

        let req = WriteRequest::new(5, 8, 0, "00").unwrap();
        let err = grant_write(missing, &req).unwrap_err();
        assert_eq!(err.step(), Some(Step::Open));
    }
}
