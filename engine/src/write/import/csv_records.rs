//! CSV records read in bounded memory. The `csv` crate's reader grows its buffers to hold
//! whatever record it is given (a 200 MB field was read whole and imported), so the
//! importer drives `csv_core` (the parser inside `csv`, with the same defaults: `,`,
//! `"` quotes doubled inside quoted fields, CR, LF or CRLF ends a record, a UTF-8 BOM is
//! skipped) itself: input is read 64 KiB at a time, and the fields of a record longer than
//! [`MAX_RECORD_BYTES`] are parsed but not kept, so the record can be reported with its
//! line and skipped.

use crate::base::limits::MAX_RECORD_BYTES;
use csv_core::ReadRecordResult;
use std::io::{self, Read};

/// Input read at a time.
const INPUT_CHUNK: usize = 64 * 1024;

/// One record as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Its fields are available through [`CsvRecords::fields`].
    Read,
    /// Longer than [`MAX_RECORD_BYTES`] (its size in bytes); the fields were dropped.
    TooLong(u64),
}

/// The line after consuming `b`: `\r` and `\n` each end a line, except a `\n` right
/// after a `\r` (one `\r\n` break).
fn next_line(line: u64, after_cr: bool, b: u8) -> (u64, bool) {
    match b {
        b'\r' => (line + 1, true),
        b'\n' if after_cr => (line, false),
        b'\n' => (line + 1, false),
        _ => (line, false),
    }
}

/// Reads CSV records one at a time.
pub(crate) struct CsvRecords<R> {
    reader: R,
    core: csv_core::Reader,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    /// Line of the next byte (1 + line breaks consumed: `\n`, `\r\n` or a lone `\r`,
    /// the breaks csv_core ends records at; resumable imports skip by this number).
    line: u64,
    /// The last byte consumed was `\r` (a `\n` right after it ends no further line).
    after_cr: bool,
    /// Bytes consumed.
    bytes: u64,
    /// The current record's field bytes and field ends.
    out: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
}

impl<R: Read> CsvRecords<R> {
    pub(crate) fn new(reader: R) -> Self {
        CsvRecords {
            reader,
            core: csv_core::Reader::new(),
            buf: vec![0; INPUT_CHUNK].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            line: 1,
            after_cr: false,
            bytes: 0,
            out: vec![0; 4096],
            ends: vec![0; 64],
            fields: 0,
        }
    }

    /// Counts the line breaks in `bytes` (consumed).
    fn count_breaks(&mut self, bytes: &[u8]) {
        for &b in bytes {
            (self.line, self.after_cr) = next_line(self.line, self.after_cr, b);
        }
    }

    /// Input bytes consumed so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Refills the input buffer when it is used up; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    self.eof = n == 0;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the next record: its line (where its first byte is) and whether its fields
    /// were kept; `None` at the end of the input.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<(u64, Status)>> {
        // Skip blank lines (csv_core skips them too) so the line is the record's own.
        while self.fill()? {
            let b = self.buf[self.pos];
            if b != b'\n' && b != b'\r' {
                break;
            }
            self.count_breaks(&[b]);
            self.pos += 1;
            self.bytes += 1;
        }
        let (start_line, start_bytes) = (self.line, self.bytes);
        let (mut outlen, mut endlen) = (0, 0);
        let mut too_long = false;
        let mut last = 0u8;
        loop {
            self.fill()?;
            let input = &self.buf[self.pos..self.len];
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[outlen..], &mut self.ends[endlen..]);
            let consumed = &self.buf[self.pos..self.pos + nin];
            if let Some(&b) = consumed.last() {
                last = b;
            }
            let (mut line, mut after_cr) = (self.line, self.after_cr);
            for &b in consumed {
                (line, after_cr) = next_line(line, after_cr, b);
            }
            (self.line, self.after_cr) = (line, after_cr);
            self.pos += nin;
            self.bytes += nin as u64;
            outlen += nout;
            endlen += nend;
            // One byte more than the limit may be the record's line break.
            if self.bytes - start_bytes > MAX_RECORD_BYTES as u64 + 1 {
                too_long = true;
            }
            if too_long {
                // Keep parsing (to find where the record ends) but drop its fields.
                outlen = 0;
                endlen = 0;
            }
            match res {
                ReadRecordResult::InputEmpty => {
                    if self.eof && nin == 0 && nout == 0 && nend == 0 {
                        // Not expected from csv_core at the end of the input, but never spin.
                        return Ok(None);
                    }
                }
                ReadRecordResult::OutputFull => {
                    if outlen == self.out.len() {
                        let grown = self.out.len() * 2;
                        self.out.resize(grown, 0);
                    }
                }
                ReadRecordResult::OutputEndsFull => {
                    if endlen == self.ends.len() {
                        let grown = self.ends.len() * 2;
                        self.ends.resize(grown, 0);
                    }
                }
                ReadRecordResult::Record => {
                    let mut size = self.bytes - start_bytes;
                    if matches!(last, b'\n' | b'\r') {
                        size -= 1;
                    }
                    if too_long || size > MAX_RECORD_BYTES as u64 {
                        self.fields = 0;
                        return Ok(Some((start_line, Status::TooLong(size))));
                    }
                    self.fields = endlen;
                    return Ok(Some((start_line, Status::Read)));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// The fields of the record last read (empty after [`Status::TooLong`]).
    pub(crate) fn fields(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.fields).map(|i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.out[start..self.ends[i]]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record with its line, as text (`!N` for a record too long, of N bytes).
    fn read_all(input: &[u8]) -> Vec<(u64, String)> {
        let mut r = CsvRecords::new(input);
        let mut out = Vec::new();
        while let Some((line, status)) = r.next_record().unwrap() {
            let text = match status {
                Status::Read => r
                    .fields()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
                    .join("|"),
                Status::TooLong(n) => format!("!{n}"),
            };
            out.push((line, text));
        }
        assert_eq!(r.bytes(), input.len() as u64);
        out
    }

    /// A lone `\r` ends a record and a line (resumable imports skip by line: with every
    /// record on "line 1", a resume skipped the whole rest of a file); `\r\n` is one break,
    /// also across a buffer refill.
    #[test]
    fn lone_carriage_returns_end_lines_too() {
        assert_eq!(
            read_all(b"a,b\rc,d\r\re,f\r\ng,h"),
            vec![
                (1, "a|b".to_string()),
                (2, "c|d".to_string()),
                (4, "e|f".to_string()),
                (5, "g|h".to_string()),
            ]
        );
        let mut long = vec![b'x'; INPUT_CHUNK - 1];
        long.extend_from_slice(b"\r\nnext");
        let lines: Vec<u64> = read_all(&long).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines, [1, 2], "a CRLF split by a refill is one break");
    }

    #[test]
    fn reads_records_like_the_csv_crate_with_their_lines() {
        let input = b"\xef\xbb\xbfa,b\r\n\r\n\"x\ny\",\"q\"\"\"\n\n\nlast,\"open";
        assert_eq!(
            read_all(input),
            vec![
                (1, "a|b".to_string()),
                (3, "x\ny|q\"".to_string()),
                (7, "last|open".to_string()),
            ]
        );
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&input[..]);
        let theirs: Vec<String> = csv
            .byte_records()
            .map(|r| {
                r.unwrap()
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        let ours: Vec<String> = read_all(input).into_iter().map(|(_, t)| t).collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_record_over_the_limit_is_skipped_whole() {
        let mut input = b"h\n\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES));
        input.extend_from_slice(b"\n,\n\"\nnext\n");
        let size = MAX_RECORD_BYTES as u64 + 5;
        assert_eq!(
            read_all(&input),
            vec![
                (1, "h".to_string()),
                (2, format!("!{size}")),
                (5, "next".to_string())
            ]
        );
        // 64 MiB in one quoted field, streamed: parsed to its end, never held.
        let huge = 64u64 << 20;
        let input = (&b"a,\""[..])
            .chain(io::repeat(b'x').take(huge))
            .chain(&b"\"\nb\n"[..]);
        let mut r = CsvRecords::new(input);
        assert_eq!(
            r.next_record().unwrap(),
            Some((1, Status::TooLong(huge + 4)))
        );
        assert!(r.out.len() <= 2 * MAX_RECORD_BYTES, "{}", r.out.len());
        assert!(r.ends.len() <= 64);
        assert_eq!(r.next_record().unwrap(), Some((2, Status::Read)));
        assert_eq!(r.fields().collect::<Vec<_>>(), vec![&b"b"[..]]);
        assert_eq!(r.next_record().unwrap(), None);
        // Exactly at the limit (line break not counted) is fine.
        let mut input = vec![b'y'; MAX_RECORD_BYTES];
        input.extend_from_slice(b"\r\nz");
        let records = read_all(&input);
        assert_eq!(records[0].1.len(), MAX_RECORD_BYTES);
        assert_eq!(records[1], (2, "z".to_string()));
    }
}
