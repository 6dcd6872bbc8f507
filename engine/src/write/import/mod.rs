//! Streaming importers for JSON Lines and CSV. A reader thread cuts the input into chunks,
//! parser threads parse and normalize them in parallel (crossbeam channels), and the
//! calling thread applies them in input order, one atomic batch per
//! `Config::import_batch_records` records (the first few smaller, see `batch_sizes`).
//! Memory stays bounded by the channel depth whatever the input size, except in the
//! grouping pass of a file import (`grouping`), which holds a few dozen bytes per line.

pub(crate) mod csv_records;
pub(crate) mod grouping;

use crate::base::error::ImportError;
use crate::base::limits::MAX_LINE_BYTES;
use crate::input::record::{
    parse_json_record, record_too_long, CsvLayout, ParsedRecord, RejectReason,
};
use crate::storage::AppliedLines;
use crossbeam_channel::Sender;
use csv_records::{CsvRecords, Status};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

/// Lines per chunk handed to a parser thread.
pub(crate) const CHUNK_LINES: usize = 512;

/// Options of an import.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Source for records that name none (JSON Lines) or rows without a `source` column
    /// (CSV).
    pub source: Option<String>,
    /// CSV column → field renames.
    pub csv_renames: BTreeMap<String, String>,
    /// Makes the import resumable under this key (see [`ImportOptions::resumable`]).
    pub resume_key: Option<[u8; 32]>,
    /// Applies a file's records in file order, without the grouping pass (see
    /// [`ImportOptions::in_file_order`]).
    pub in_file_order: bool,
}

impl ImportOptions {
    /// Sets the default source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Maps a CSV column onto a field.
    pub fn with_csv_rename(mut self, column: impl Into<String>, field: impl Into<String>) -> Self {
        self.csv_renames.insert(column.into(), field.into());
        self
    }

    /// Makes the import resumable: each batch records, in its own atomic write, the
    /// last input line it applied under `key`, and an import with the same key after a
    /// crash skips the lines already applied instead of storing them (and their events)
    /// twice. The record is removed when the import completes, so importing the same
    /// input again later imports it again. [`input_fingerprint`] makes a key for a file.
    pub fn resumable(mut self, key: [u8; 32]) -> Self {
        self.resume_key = Some(key);
        self
    }

    /// Applies the records of a file (`Engine::import_jsonl_file`) in file order. By
    /// default a file is read twice: once to group the records that can touch one
    /// profile, then in that order, each group in file order. The result is the same
    /// but for profile ids and ingest sequence numbers, and it is written with far
    /// fewer rewrites of stored profiles.
    pub fn in_file_order(mut self) -> Self {
        self.in_file_order = true;
        self
    }
}

/// A key that identifies an import input for [`ImportOptions::resumable`]: SHA-256 over
/// the input's length, its first and last MiB, and `options` (whatever else changes
/// the meaning of the lines: format, default source, column mapping). A file changed
/// since the crash gets another key, so it is imported from the start.
pub fn input_fingerprint<R: Read + std::io::Seek>(
    input: &mut R,
    options: &[u8],
) -> std::io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    const EDGE: u64 = 1 << 20;
    let start = input.stream_position()?;
    let len = input.seek(std::io::SeekFrom::End(0))? - start;
    let mut hash = Sha256::new();
    hash.update(b"cidb import v1\0");
    hash.update(len.to_le_bytes());
    hash.update((options.len() as u64).to_le_bytes());
    hash.update(options);
    let mut buf = Vec::new();
    input.seek(std::io::SeekFrom::Start(start))?;
    input.by_ref().take(EDGE).read_to_end(&mut buf)?;
    if len > EDGE {
        input.seek(std::io::SeekFrom::Start(
            start + len.saturating_sub(EDGE).max(EDGE),
        ))?;
        input.by_ref().take(EDGE).read_to_end(&mut buf)?;
    }
    hash.update(&buf);
    input.seek(std::io::SeekFrom::Start(start))?;
    Ok(hash.finalize().into())
}

/// Progress of an import, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Records applied so far.
    pub records: u64,
    /// Input bytes consumed so far (read and handed to the parsers).
    pub bytes: u64,
    /// Input bytes read by the grouping pass of a file import (it comes first; it
    /// stays 0 for an import in file order).
    pub scanned: u64,
}

pub(crate) type Parsed = (u64, Result<ParsedRecord, RejectReason>);

pub(crate) enum Input {
    /// Lines, or why a line was refused before parsing (too long, not UTF-8).
    Json(Vec<(u64, Result<String, RejectReason>)>),
    Csv(Vec<(u64, Result<Json, RejectReason>)>),
}

pub(crate) fn io_error(source: std::io::Error) -> ImportError {
    ImportError::Io {
        path: "<input>".into(),
        source,
    }
}

/// One CSV record as the JSON object the record parser reads, or why it was refused.
pub(crate) fn csv_row<R: Read>(
    csv: &CsvRecords<R>,
    status: Status,
    layout: &CsvLayout,
) -> Result<Json, RejectReason> {
    if let Status::TooLong(size) = status {
        return Err(RejectReason {
            field: None,
            message: record_too_long(size),
        });
    }
    let cells = csv
        .fields()
        .enumerate()
        .map(|(i, f)| {
            std::str::from_utf8(f).map_err(|e| RejectReason {
                field: layout.field_path(i),
                message: format!(
                    "invalid UTF-8 in column {} at byte offset {} of the cell",
                    i + 1,
                    e.valid_up_to()
                ),
            })
        })
        .collect::<Result<Vec<&str>, _>>()?;
    Ok(layout.to_json(&cells))
}

/// Batch sizes large enough to ramp up from (smaller batch sizes are kept exactly).
const RAMP_MIN_BATCH: usize = 4 * CHUNK_LINES;

/// The sizes of an import's batches: `batch_records` each, except that a large batch size
/// ramps up over the first three batches (1/8, 1/4, 1/2 of it). The committer cannot start
/// before the first batch is parsed and resolved, and nothing overlaps the last commit, so a
/// small first batch gets the pipeline going sooner; a batch still never exceeds
/// `batch_records`.
pub(crate) fn batch_sizes(batch_records: usize) -> impl Iterator<Item = usize> {
    let ramp = if batch_records >= RAMP_MIN_BATCH {
        [batch_records / 8, batch_records / 4, batch_records / 2]
    } else {
        [batch_records; 3]
    };
    ramp.into_iter().chain(std::iter::repeat(batch_records))
}

/// Parsed records in input order, from chunks that parser threads finish in any order.
pub(crate) struct InOrder<I> {
    chunks: I,
    pending: BTreeMap<u64, Vec<Parsed>>,
    next: u64,
    current: std::vec::IntoIter<Parsed>,
}

impl<I> InOrder<I> {
    /// Orders the numbered chunks of `chunks` (which arrive in any order).
    pub(crate) fn new(chunks: I) -> Self {
        InOrder {
            chunks,
            pending: BTreeMap::new(),
            next: 0,
            current: Vec::new().into_iter(),
        }
    }
}

impl<I: Iterator<Item = (u64, Vec<Parsed>)>> Iterator for InOrder<I> {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            match self.pending.remove(&self.next) {
                Some(chunk) => {
                    self.next += 1;
                    self.current = chunk.into_iter();
                }
                None => {
                    let (seq, chunk) = self.chunks.next()?;
                    self.pending.insert(seq, chunk);
                }
            }
        }
    }
}

/// One line of a JSON Lines input, as [`cut_lines`] cut it.
pub(crate) struct CutLine<'a> {
    /// 1-based line number.
    pub(crate) number: u64,
    /// Byte offset of the line's first byte in the input.
    pub(crate) offset: u64,
    /// Byte offset just past the line (and its line break).
    pub(crate) end: u64,
    /// The line with its line break; empty for an over-long line.
    pub(crate) bytes: &'a [u8],
    /// The length of a line longer than [`MAX_LINE_BYTES`] (without its line break),
    /// which is read to its end but not buffered.
    pub(crate) too_long: Option<u64>,
}

impl CutLine<'_> {
    /// The line's length without its line break.
    pub(crate) fn len(&self) -> u64 {
        self.too_long
            .unwrap_or_else(|| self.bytes.strip_suffix(b"\n").unwrap_or(self.bytes).len() as u64)
    }
}

/// Cuts a JSON Lines input into lines, calling `on_line` for each until it returns
/// `false`. A line over [`MAX_LINE_BYTES`] is counted and skipped without buffering it.
pub(crate) fn cut_lines<R: BufRead>(
    mut reader: R,
    mut on_line: impl FnMut(CutLine<'_>) -> bool,
) -> Result<(), ImportError> {
    let mut number = 0u64;
    let mut total = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io_error)?;
        if n == 0 {
            return Ok(());
        }
        let offset = total;
        total += n as u64;
        number += 1;
        let line = if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of an over-long line without buffering it (but count it).
            let mut len = buf.len() as u64;
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = (&mut reader)
                    .take(1 << 16)
                    .read_until(b'\n', &mut sink)
                    .map_err(io_error)?;
                total += m as u64;
                len += m as u64;
                if m == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
            if sink.last() == Some(&b'\n') {
                len -= 1;
            }
            CutLine {
                number,
                offset,
                end: total,
                bytes: &[],
                too_long: Some(len),
            }
        } else {
            CutLine {
                number,
                offset,
                end: total,
                bytes: &buf,
                too_long: None,
            }
        };
        if !on_line(line) {
            return Ok(());
        }
    }
}

/// What an import hands the parsers for a line: its text, or why it is refused before
/// parsing (too long, not UTF-8); `None` for a blank line, which is skipped.
pub(crate) fn line_input(
    bytes: &[u8],
    too_long: Option<u64>,
) -> Option<Result<String, RejectReason>> {
    if let Some(len) = too_long {
        return Some(Err(RejectReason {
            field: None,
            message: format!(
                "line of {len} bytes is longer than the limit of {MAX_LINE_BYTES} bytes"
            ),
        }));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let s = s.trim_end_matches(['\n', '\r']);
            (!s.trim().is_empty()).then(|| Ok(s.to_string()))
        }
        Err(e) => Some(Err(RejectReason {
            field: None,
            message: format!(
                "invalid UTF-8 at byte offset {} of the line",
                e.valid_up_to()
            ),
        })),
    }
}

/// Sends a JSON Lines input to the parsers in chunks, in file order, leaving out the
/// lines `applied` names (applied by an interrupted import of the same input).
pub(crate) fn read_json_lines<R: BufRead>(
    reader: R,
    tx: Sender<Input>,
    bytes: &std::sync::atomic::AtomicU64,
    applied: &AppliedLines,
) -> Result<(), ImportError> {
    let mut chunk = Vec::with_capacity(CHUNK_LINES);
    let mut stopped = false;
    cut_lines(reader, |line| {
        if !applied.contains(line.number) {
            if let Some(input) = line_input(line.bytes, line.too_long) {
                chunk.push((line.number, input));
            }
        }
        bytes.store(line.end, std::sync::atomic::Ordering::Relaxed);
        if chunk.len() == CHUNK_LINES && tx.send(Input::Json(std::mem::take(&mut chunk))).is_err() {
            stopped = true;
            return false;
        }
        true
    })?;
    if !stopped && !chunk.is_empty() {
        let _ = tx.send(Input::Json(chunk));
    }
    Ok(())
}

pub(crate) fn parse_chunk(
    input: Input,
    config: &crate::input::config::Config,
    now: i64,
    default_source: Option<&str>,
) -> Vec<Parsed> {
    match input {
        Input::Json(lines) => lines
            .into_iter()
            .map(|(line, text)| {
                let parsed = match text {
                    Err(refused) => Err(refused),
                    Ok(text) => parse_line(&text, config, now, default_source),
                };
                (line, parsed)
            })
            .collect(),
        Input::Csv(rows) => rows
            .into_iter()
            .map(|(line, row)| {
                (
                    line,
                    row.and_then(|json| {
                        crate::input::record::parse_json_value_pub(json, config, now)
                    }),
                )
            })
            .collect(),
    }
}

/// Parses one JSON Lines line, with the import's default source.
fn parse_line(
    text: &str,
    config: &crate::input::config::Config,
    now: i64,
    default_source: Option<&str>,
) -> Result<ParsedRecord, RejectReason> {
    match default_source {
        Some(source) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(mut obj)) => {
                obj.entry("source")
                    .or_insert_with(|| Json::String(source.to_string()));
                crate::input::record::parse_json_value_pub(Json::Object(obj), config, now)
            }
            _ => parse_json_record(text, config, now),
        },
        None => parse_json_record(text, config, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_batches_ramp_up_and_small_ones_stay_exact() {
        let sizes: Vec<usize> = batch_sizes(20_000).take(5).collect();
        assert_eq!(sizes, [2_500, 5_000, 10_000, 20_000, 20_000]);
        let sizes: Vec<usize> = batch_sizes(2).take(4).collect();
        assert_eq!(sizes, [2, 2, 2, 2]);
        assert!(batch_sizes(RAMP_MIN_BATCH).take(3).all(|n| n >= 1));
    }
}
