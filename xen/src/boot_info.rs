//! Checks and summarises the `start_info` page Xen hands the kernel at entry.
//!
//! `start_info` is written by the domain builder; it is checked before any of
//! its addresses are used so a wrong or foreign page stops the boot with a
//! clear message instead of a wild pointer.

use crate::cmdline::Cmdline;
use crate::public::{StartInfo, PAGE_SIZE, START_INFO_MAGIC_PREFIX};
use core::fmt;

/// Why a `start_info` page was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The magic is not `xen-3.0-x86_64...`: not a 64-bit PV start_info.
    BadMagic,
    /// `nr_pages` is zero.
    NoMemory,
    /// The console ring frame or its event channel is missing.
    NoConsole,
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BootInfoError::BadMagic => "start_info magic is not xen-3.0-x86_64",
            BootInfoError::NoMemory => "start_info reports no memory pages",
            BootInfoError::NoConsole => "start_info has no console ring",
        })
    }
}

/// The facts the kernel takes from `start_info`.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo<'a> {
    /// The magic string up to its NUL, e.g. `xen-3.0-x86_64`.
    pub magic: &'a str,
    pub nr_pages: u64,
    pub shared_info_maddr: u64,
    pub console_mfn: u64,
    pub console_evtchn: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub cmdline: Cmdline<'a>,
}

impl<'a> BootInfo<'a> {
    pub fn parse(si: &'a StartInfo) -> Result<Self, BootInfoError> {
        if !si.magic.starts_with(START_INFO_MAGIC_PREFIX) {
            return Err(BootInfoError::BadMagic);
        }
        let magic_len = si
            .magic
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(si.magic.len());
        let magic =
            core::str::from_utf8(&si.magic[..magic_len]).map_err(|_| BootInfoError::BadMagic)?;
        if si.nr_pages == 0 {
            return Err(BootInfoError::NoMemory);
        }
        if si.console_mfn == 0 || si.console_evtchn == 0 {
            return Err(BootInfoError::NoConsole);
        }
        Ok(BootInfo {
            magic,
            nr_pages: si.nr_pages,
            shared_info_maddr: si.shared_info,
            console_mfn: si.console_mfn,
            console_evtchn: si.console_evtchn,
            store_mfn: si.store_mfn,
            store_evtchn: si.store_evtchn,
            cmdline: Cmdline::from_nul_terminated(&si.cmd_line),
        })
    }

    /// Memory given to the domain, in whole MiB.
    pub fn memory_mib(&self) -> u64 {
        self.nr_pages * PAGE_SIZE as u64 / (1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::public::MAX_GUEST_CMDLINE;

    fn sample() -> StartInfo {
        let mut magic = [0u8; 32];
        magic[..14].copy_from_slice(b"xen-3.0-x86_64");
        let mut cmd_line = [0u8; MAX_GUEST_CMDLINE];
        cmd_line[..9].copy_from_slice(b"hello=yes");
        StartInfo {
            magic,
            nr_pages: 2048,
            shared_info: 0x1234_5000,
            flags: 0,
            store_mfn: 77,
            store_evtchn: 1,
            console_mfn: 78,
            console_evtchn: 2,
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            mod_start: 0,
            mod_len: 0,
            cmd_line,
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
        }
    }

    #[test]
    fn parses_a_good_start_info() {
        let si = sample();
        let b = BootInfo::parse(&si).unwrap();
        assert_eq!(b.magic, "xen-3.0-x86_64");
        assert_eq!(b.nr_pages, 2048);
        assert_eq!(b.memory_mib(), 8);
        assert_eq!(b.console_mfn, 78);
        assert_eq!(b.console_evtchn, 2);
        assert_eq!(b.cmdline.as_str(), "hello=yes");
    }

    #[test]
    fn refuses_wrong_magic() {
        let mut si = sample();
        si.magic[8..14].copy_from_slice(b"x86_32");
        assert_eq!(BootInfo::parse(&si).unwrap_err(), BootInfoError::BadMagic);
        si.magic = [0xff; 32];
        assert_eq!(BootInfo::parse(&si).unwrap_err(), BootInfoError::BadMagic);
    }

    #[test]
    fn refuses_missing_memory_or_console() {
        let mut si = sample();
        si.nr_pages = 0;
        assert_eq!(BootInfo::parse(&si).unwrap_err(), BootInfoError::NoMemory);
        let mut si = sample();
        si.console_evtchn = 0;
        assert_eq!(BootInfo::parse(&si).unwrap_err(), BootInfoError::NoConsole);
    }

    #[test]
    fn magic_with_suffix_is_accepted() {
        let mut si = sample();
        si.magic[14..18].copy_from_slice(b"-abi");
        assert_eq!(BootInfo::parse(&si).unwrap().magic, "xen-3.0-x86_64-abi");
    }
}
