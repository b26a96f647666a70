//! Primitive fields of a payload: fixed-width little-endian integers, `u16`-length-prefixed
//! strings and `u32`-length-prefixed byte strings.
//!
//! The reader works on private memory only (a payload already copied out of the ring),
//! checks every length against what is left before slicing, and never panics.

use alloc::vec::Vec;

use crate::error::PayloadError;

/// Appends fields to a payload.
pub(crate) struct Put<'a>(pub(crate) &'a mut Vec<u8>);

impl Put<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// `u16` length + bytes. The caller guarantees `s.len() <= u16::MAX`.
    pub(crate) fn str16(&mut self, s: &str) {
        self.u16(s.len() as u16);
        self.0.extend_from_slice(s.as_bytes());
    }
    /// `u32` length + bytes. The caller guarantees `b.len() <= u32::MAX`.
    pub(crate) fn bytes32(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
}

/// Reads fields from a payload in private memory.
pub(crate) struct Take<'a> {
    rest: &'a [u8],
}

impl<'a> Take<'a> {
    pub(crate) fn new(payload: &'a [u8]) -> Self {
        Take { rest: payload }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PayloadError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(PayloadError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        if n > self.rest.len() {
            return Err(PayloadError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, PayloadError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, PayloadError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, PayloadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, PayloadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, PayloadError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub(crate) fn bool(&mut self) -> Result<bool, PayloadError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(PayloadError::BadBool),
        }
    }

    /// `u16` length + UTF-8 bytes.
    pub(crate) fn str16(&mut self) -> Result<&'a str, PayloadError> {
        let n = self.u16()?;
        let b = self.bytes(usize::from(n))?;
        core::str::from_utf8(b).map_err(|_| PayloadError::NotUtf8)
    }

    /// `u32` length (at most `max`) + bytes.
    pub(crate) fn bytes32(&mut self, max: usize) -> Result<&'a [u8], PayloadError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(PayloadError::DataTooLong);
        }
        self.bytes(n)
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), PayloadError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(PayloadError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut v = Vec::new();
        let mut p = Put(&mut v);
        p.u8(7);
        p.u16(0x1234);
        p.u32(0xdead_beef);
        p.u64(u64::MAX - 1);
        p.i64(-5);
        p.str16("héllo");
        p.bytes32(&[1, 2, 3]);
        let mut t = Take::new(&v);
        assert_eq!(t.u8(), Ok(7));
        assert_eq!(t.u16(), Ok(0x1234));
        assert_eq!(t.u32(), Ok(0xdead_beef));
        assert_eq!(t.u64(), Ok(u64::MAX - 1));
        assert_eq!(t.i64(), Ok(-5));
        assert_eq!(t.str16(), Ok("héllo"));
        assert_eq!(t.bytes32(3), Ok(&[1u8, 2, 3][..]));
        assert_eq!(t.finish(), Ok(()));
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(Take::new(&[1, 2, 3]).u32(), Err(PayloadError::Truncated));
        assert_eq!(
            Take::new(&[5, 0, b'a']).str16(),
            Err(PayloadError::Truncated)
        );
        assert_eq!(Take::new(&[1, 0, 0xff]).str16(), Err(PayloadError::NotUtf8));
        assert_eq!(Take::new(&[2]).bool(), Err(PayloadError::BadBool));
        assert_eq!(
            Take::new(&[4, 0, 0, 0, 1, 2, 3, 4]).bytes32(3),
            Err(PayloadError::DataTooLong)
        );
        assert_eq!(Take::new(&[0]).finish(), Err(PayloadError::TrailingBytes));
        assert_eq!(
            Take::new(&[0xff, 0xff, 0xff, 0xff]).bytes32(usize::MAX),
            Err(PayloadError::Truncated)
        );
    }
}
