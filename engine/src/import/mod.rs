//! Streaming importers for JSON Lines and CSV. A reader thread cuts the input into chunks,
//! parser threads parse and normalize them in parallel (crossbeam channels), and the
//! calling thread applies them in input order, one atomic batch per
//! `Config::import_batch_records` records (the first few smaller, see `batch_sizes`).
//! Memory stays bounded by the channel depth whatever the file size.

use crate::engine::Engine;
use crate::error::ImportError;
use crate::record::{parse_json_record, CsvMapping, ParsedRecord, RejectReason};
use crate::report::IngestReport;
use crossbeam_channel::{bounded, Receiver, Sender};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

/// Lines per chunk handed to a parser thread.
const CHUNK_LINES: usize = 512;
/// Longest accepted input line (bytes); longer lines are rejected, not buffered.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Options of an import.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Source for records that name none (JSON Lines) or rows without a `source` column
    /// (CSV).
    pub source: Option<String>,
    /// CSV column → field renames.
    pub csv_renames: BTreeMap<String, String>,
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
}

/// Progress of an import, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Records applied so far.
    pub records: u64,
    /// Input bytes consumed so far.
    pub bytes: u64,
}

type Parsed = (u64, Result<ParsedRecord, RejectReason>);

enum Input {
    Json(Vec<(u64, String)>),
    Csv(Vec<(u64, Result<Json, RejectReason>)>),
}

impl Engine {
    /// Imports a JSON Lines stream.
    pub fn import_jsonl<R: BufRead + Send>(
        &self,
        reader: R,
        options: &ImportOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestReport, ImportError> {
        self.run_pipeline(
            progress,
            |tx, bytes| read_json_lines(reader, tx, bytes),
            options,
        )
    }

    /// Imports a CSV stream with a header row.
    pub fn import_csv<R: Read + Send>(
        &self,
        reader: R,
        options: &ImportOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestReport, ImportError> {
        let mapping = CsvMapping {
            renames: options.csv_renames.clone(),
            source: options.source.clone(),
        };
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = csv
            .headers()
            .map_err(|e| ImportError::CsvHeader(e.to_string()))?
            .clone();
        let layout = mapping.layout(&header).map_err(ImportError::CsvHeader)?;
        self.run_pipeline(
            progress,
            move |tx, bytes| {
                let mut chunk = Vec::with_capacity(CHUNK_LINES);
                let mut row = csv::StringRecord::new();
                loop {
                    let before = csv.position().line();
                    match csv.read_record(&mut row) {
                        Ok(false) => break,
                        Ok(true) => {
                            let line = row.position().map(|p| p.line()).unwrap_or(before);
                            chunk.push((line, Ok(layout.to_json(&row))));
                        }
                        Err(e) => chunk.push((
                            e.position().map(|p| p.line()).unwrap_or(before),
                            Err(RejectReason {
                                field: None,
                                message: format!("invalid CSV: {e}"),
                            }),
                        )),
                    }
                    bytes.store(csv.position().byte(), std::sync::atomic::Ordering::Relaxed);
                    if chunk.len() == CHUNK_LINES
                        && tx.send(Input::Csv(std::mem::take(&mut chunk))).is_err()
                    {
                        return Ok(());
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.send(Input::Csv(chunk));
                }
                Ok(())
            },
            options,
        )
    }

    fn run_pipeline<F>(
        &self,
        progress: &mut dyn FnMut(Progress),
        read: F,
        options: &ImportOptions,
    ) -> Result<IngestReport, ImportError>
    where
        F: FnOnce(Sender<Input>, &std::sync::atomic::AtomicU64) -> Result<(), ImportError> + Send,
    {
        let threads = match self.config().import_threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let batch_records = self
            .config()
            .import_batch_records
            .clamp(1, crate::MAX_BATCH_RECORDS);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let now = crate::time::now_millis();
        let config = self.config();
        let default_source = options.source.as_deref();
        std::thread::scope(|scope| {
            let (in_tx, in_rx) = bounded::<(u64, Input)>(threads * 4);
            // Parsed chunks may run a batch and a half ahead of the writer: parsers keep
            // working while it resolves a batch, and the next batch is ready when it asks.
            let ahead = (batch_records * 3 / 2)
                .div_ceil(CHUNK_LINES)
                .max(threads * 4);
            let (out_tx, out_rx) = bounded::<(u64, Vec<Parsed>)>(ahead);
            let (raw_tx, raw_rx) = bounded::<Input>(threads * 4);
            let bytes_ref = &bytes;
            let reader = scope.spawn(move || read(raw_tx, bytes_ref));
            scope.spawn(move || {
                for (seq, input) in raw_rx.into_iter().enumerate() {
                    if in_tx.send((seq as u64, input)).is_err() {
                        break;
                    }
                }
            });
            for _ in 0..threads {
                let (rx, tx): (Receiver<(u64, Input)>, Sender<_>) = (in_rx.clone(), out_tx.clone());
                scope.spawn(move || {
                    for (seq, input) in rx {
                        let mut parsed = parse_chunk(input, config, now, default_source);
                        for (_, item) in &mut parsed {
                            if let Ok(p) = item {
                                self.store.fill_link_keys(p);
                            }
                        }
                        if tx.send((seq, parsed)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(out_tx);
            let mut ordered = InOrder {
                chunks: out_rx.into_iter(),
                pending: BTreeMap::new(),
                next: 0,
                current: Vec::new().into_iter(),
            };
            let mut sizes = batch_sizes(batch_records);
            let mut batches = std::iter::from_fn(move || {
                let size = sizes.next().expect("endless");
                let batch: Vec<Parsed> = ordered.by_ref().take(size).collect();
                (!batch.is_empty()).then_some(batch)
            });
            let mut applied = 0u64;
            let report = self.ingest_batches(batches.by_ref(), &mut |committed| {
                applied += committed.records;
                progress(Progress {
                    records: applied,
                    bytes: bytes.load(std::sync::atomic::Ordering::Relaxed),
                });
            });
            // Dropping the receiving end stops the parser threads if ingest failed early.
            drop(batches);
            let report = report?;
            reader.join().expect("reader thread panicked")?;
            Ok(report)
        })
    }
}

/// Batch sizes large enough to ramp up from (smaller batch sizes are kept exactly).
const RAMP_MIN_BATCH: usize = 4 * CHUNK_LINES;

/// The sizes of an import's batches: `batch_records` each, except that a large batch size
/// ramps up over the first three batches (1/8, 1/4, 1/2 of it). The committer cannot start
/// before the first batch is parsed and resolved, and nothing overlaps the last commit, so a
/// small first batch gets the pipeline going sooner; a batch still never exceeds
/// `batch_records`.
fn batch_sizes(batch_records: usize) -> impl Iterator<Item = usize> {
    let ramp = if batch_records >= RAMP_MIN_BATCH {
        [batch_records / 8, batch_records / 4, batch_records / 2]
    } else {
        [batch_records; 3]
    };
    ramp.into_iter().chain(std::iter::repeat(batch_records))
}

/// Parsed records in input order, from chunks that parser threads finish in any order.
struct InOrder<I> {
    chunks: I,
    pending: BTreeMap<u64, Vec<Parsed>>,
    next: u64,
    current: std::vec::IntoIter<Parsed>,
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

fn read_json_lines<R: BufRead>(
    mut reader: R,
    tx: Sender<Input>,
    bytes: &std::sync::atomic::AtomicU64,
) -> Result<(), ImportError> {
    let mut chunk = Vec::with_capacity(CHUNK_LINES);
    let mut line_no = 0u64;
    let mut total = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| ImportError::Io {
                path: "<input>".into(),
                source: e,
            })?;
        if n == 0 {
            break;
        }
        total += n as u64;
        line_no += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of an over-long line without buffering it.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = (&mut reader)
                    .take(1 << 16)
                    .read_until(b'\n', &mut sink)
                    .map_err(|e| ImportError::Io {
                        path: "<input>".into(),
                        source: e,
                    })?;
                total += m as u64;
                if m == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
            chunk.push((line_no, String::from("\u{0}too-long")));
        } else {
            match std::str::from_utf8(&buf) {
                Ok(s) => {
                    let s = s.trim_end_matches(['\n', '\r']);
                    if s.trim().is_empty() {
                        continue;
                    }
                    chunk.push((line_no, s.to_string()));
                }
                Err(e) => chunk.push((line_no, format!("\u{0}utf8 {}", e.valid_up_to()))),
            }
        }
        bytes.store(total, std::sync::atomic::Ordering::Relaxed);
        if chunk.len() == CHUNK_LINES && tx.send(Input::Json(std::mem::take(&mut chunk))).is_err() {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Input::Json(chunk));
    }
    Ok(())
}

fn parse_chunk(
    input: Input,
    config: &crate::Config,
    now: i64,
    default_source: Option<&str>,
) -> Vec<Parsed> {
    match input {
        Input::Json(lines) => lines
            .into_iter()
            .map(|(line, text)| {
                let parsed = if let Some(marker) = text.strip_prefix('\u{0}') {
                    Err(RejectReason {
                        field: None,
                        message: match marker.strip_prefix("utf8 ") {
                            Some(offset) => {
                                format!("invalid UTF-8 at byte offset {offset} of the line")
                            }
                            None => format!("line longer than {MAX_LINE_BYTES} bytes"),
                        },
                    })
                } else if let Some(source) = default_source {
                    match serde_json::from_str::<Json>(&text) {
                        Ok(Json::Object(mut obj)) => {
                            obj.entry("source")
                                .or_insert_with(|| Json::String(source.to_string()));
                            crate::record::parse_json_value_pub(Json::Object(obj), config, now)
                        }
                        _ => parse_json_record(&text, config, now),
                    }
                } else {
                    parse_json_record(&text, config, now)
                };
                (line, parsed)
            })
            .collect(),
        Input::Csv(rows) => rows
            .into_iter()
            .map(|(line, row)| {
                (
                    line,
                    row.and_then(|json| crate::record::parse_json_value_pub(json, config, now)),
                )
            })
            .collect(),
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
