//! Unsigned LEB128 and zig-zag numbers in byte strings, for the packed stored forms
//! (`index::packed_entries`, `storage::packed`): a number below 128 takes one byte, a
//! time in milliseconds six, where bincode's variable-width integers take nine.

/// Appends `v` as unsigned LEB128.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the signed `v` zig-zag encoded (small magnitudes take few bytes either sign).
pub(crate) fn put_signed(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Reads numbers and bytes in order from a byte string; every error names `what` and the
/// byte offset where the bytes stop making sense.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`, which hold `what` (for errors).
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, at: 0, what }
    }

    /// Whether every byte was read.
    pub(crate) fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// The offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    fn ends_early(&self) -> String {
        format!("{} end early at byte {}", self.what, self.at)
    }

    /// The next byte.
    pub(crate) fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or_else(|| self.ends_early())?;
        self.at += 1;
        Ok(b)
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or_else(|| self.ends_early())?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| self.ends_early())?;
        self.at = end;
        Ok(out)
    }

    /// The next unsigned LEB128 number; more than 64 bits is an error.
    pub(crate) fn leb(&mut self) -> Result<u64, String> {
        // Fast path, with no bounds check a byte: at most 10 bytes, all present.
        if let Some(chunk) = self.bytes.get(self.at..self.at + 10) {
            let mut v = 0u64;
            for (i, &b) in chunk.iter().enumerate() {
                if i == 9 && b > 1 {
                    break; // more than 64 bits
                }
                v |= u64::from(b & 0x7f) << (7 * i);
                if b & 0x80 == 0 {
                    self.at += i + 1;
                    return Ok(v);
                }
            }
            return Err(self.over_long(self.at));
        }
        let start = self.at;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                break; // more than 64 bits
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.over_long(start))
    }

    fn over_long(&self, start: usize) -> String {
        format!("over-long number at byte {start} of {}", self.what)
    }

    /// The next zig-zag number written by [`put_signed`].
    pub(crate) fn signed(&mut self) -> Result<i64, String> {
        let z = self.leb()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// The next number, which must fit a `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let start = self.at;
        u32::try_from(self.leb()?)
            .map_err(|_| format!("number out of range at byte {start} of {}", self.what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn numbers_read_back(values in proptest::collection::vec(any::<i64>(), 0..40)) {
            let mut out = Vec::new();
            for &v in &values {
                put_signed(&mut out, v);
                put(&mut out, v as u64);
            }
            let mut r = Reader::new(&out, "test numbers");
            for &v in &values {
                prop_assert_eq!(r.signed().unwrap(), v);
                prop_assert_eq!(r.leb().unwrap(), v as u64);
            }
            prop_assert!(r.is_done());
        }

        #[test]
        fn damaged_bytes_are_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let mut r = Reader::new(&bytes, "test numbers");
            while !r.is_done() {
                if r.leb().is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn small_numbers_take_one_byte_and_times_six() {
        let mut out = Vec::new();
        put(&mut out, 127);
        assert_eq!(out.len(), 1);
        put_signed(&mut out, -64);
        assert_eq!(out.len(), 2);
        out.clear();
        put_signed(&mut out, 1_780_000_000_000);
        assert_eq!(out.len(), 6);
        let mut over = vec![0xff; 10];
        over.push(0);
        let err = Reader::new(&over, "test numbers").leb().unwrap_err();
        assert_eq!(err, "over-long number at byte 0 of test numbers");
        let err = Reader::new(&[0x80], "test numbers").leb().unwrap_err();
        assert_eq!(err, "test numbers end early at byte 1");
    }
}
