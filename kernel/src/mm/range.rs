//! The check every user pointer goes through before the kernel touches
//! it: the range lies in the user half, does not wrap, is not longer than
//! a call may copy, and every page of it is mapped in the caller's own
//! address space (writable, where the kernel will write). Pure: the caller
//! passes its mappings as a lookup, so the rule is tested on the host.

use crate::status::SysError;

/// A user range `[va, va + len)` as the kernel may copy it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRange {
    pub va: u64,
    pub len: usize,
}

const PAGE: u64 = abi::PAGE_SIZE;

/// Checks `[va, va + len)`: `mapped(page)` says whether the page at that
/// address is mapped and whether it is writable. A zero length is always
/// fine (nothing is touched).
pub fn check(
    va: u64,
    len: usize,
    write: bool,
    max_len: usize,
    mapped: impl Fn(u64) -> Option<bool>,
) -> Result<UserRange, SysError> {
    if len == 0 {
        return Ok(UserRange { va, len });
    }
    if len > max_len {
        return Err(SysError::BadLength);
    }
    let end = va.checked_add(len as u64).ok_or(SysError::BadAddress)?;
    if va < abi::USER_START || end > abi::USER_END {
        return Err(SysError::BadAddress);
    }
    let mut page = va & !(PAGE - 1);
    while page < end {
        match mapped(page) {
            Some(writable) if writable || !write => {}
            _ => return Err(SysError::BadAddress),
        }
        page += PAGE;
    }
    Ok(UserRange { va, len })
}

/// Checks that `va` is aligned to `align` bytes (a power of two).
pub fn aligned(va: u64, align: u64) -> Result<(), SysError> {
    if va.is_multiple_of(align) {
        Ok(())
    } else {
        Err(SysError::BadAlignment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = abi::USER_START + 0x10_0000;

    /// Two pages at BASE: the first read-only, the second writable.
    fn mapping(page: u64) -> Option<bool> {
        match page {
            p if p == BASE => Some(false),
            p if p == BASE + PAGE => Some(true),
            _ => None,
        }
    }

    #[test]
    fn mapped_ranges_pass_and_zero_length_touches_nothing() {
        assert!(check(BASE + 10, 100, false, 4096, mapping).is_ok());
        assert!(check(BASE, 2 * PAGE as usize, false, 1 << 20, mapping).is_ok());
        assert!(check(BASE + PAGE, 8, true, 4096, mapping).is_ok());
        assert!(check(0, 0, true, 4096, mapping).is_ok());
        assert!(check(u64::MAX, 0, true, 4096, mapping).is_ok());
    }

    #[test]
    fn kernel_unmapped_wrapping_and_readonly_ranges_are_named() {
        // The kernel image, below the user half.
        assert_eq!(
            check(0x40_0000, 8, false, 4096, mapping),
            Err(SysError::BadAddress)
        );
        // Xen's half and beyond the user half.
        assert_eq!(
            check(0xffff_8000_0000_0000, 8, false, 4096, mapping),
            Err(SysError::BadAddress)
        );
        assert_eq!(
            check(abi::USER_END - 4, 8, false, 4096, mapping),
            Err(SysError::BadAddress)
        );
        // Unmapped: the page after the two, and a range running into it.
        assert_eq!(
            check(BASE + 2 * PAGE, 1, false, 4096, mapping),
            Err(SysError::BadAddress)
        );
        assert_eq!(
            check(BASE + PAGE + 4000, 200, false, 4096, mapping),
            Err(SysError::BadAddress)
        );
        // Wrapping around the address space.
        assert_eq!(
            check(u64::MAX - 3, 8, false, 4096, mapping),
            Err(SysError::BadAddress)
        );
        // Writing into a read-only page, also when only its tail is in range.
        assert_eq!(
            check(BASE, 8, true, 4096, mapping),
            Err(SysError::BadAddress)
        );
        assert_eq!(
            check(BASE + PAGE - 4, 8, true, 4096, mapping),
            Err(SysError::BadAddress)
        );
        // Longer than the call may copy.
        assert_eq!(
            check(BASE, 4097, false, 4096, mapping),
            Err(SysError::BadLength)
        );
    }

    #[test]
    fn alignment_is_named() {
        assert!(aligned(BASE + 16, 8).is_ok());
        assert_eq!(aligned(BASE + 4, 8), Err(SysError::BadAlignment));
    }
}
