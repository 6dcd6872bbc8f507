//! Imports on an open engine: JSON Lines and CSV files through the write pipeline, resumable.

use crate::base::error::ImportError;
use crate::base::limits::MAX_RECORD_BYTES;
use crate::engine::Engine;
use crate::input::record::CsvMapping;
use crate::input::report::IngestReport;
use crate::storage::AppliedLines;
use crate::write::import::csv_records::{CsvRecords, Status};
use crate::write::import::grouping::{group_lines, read_grouped, Linked};
use crate::write::import::{
    batch_sizes, csv_row, io_error, parse_chunk, read_json_lines, ImportOptions, InOrder, Input,
    Parsed, Progress, CHUNK_LINES,
};
use crate::write::ingest::ImportProgress;
use crate::write::state::WriterState;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::io::{BufRead, Read};

impl Engine {
    /// Imports a JSON Lines stream.
    pub fn import_jsonl<R: BufRead + Send>(
        &self,
        reader: R,
        options: &ImportOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestReport, ImportError> {
        let mut writer = self.writer.lock().expect("writer lock");
        let applied = self.applied_lines(options)?;
        self.run_pipeline(
            &mut writer,
            progress,
            |tx, bytes| read_json_lines(reader, tx, bytes, &applied),
            options,
            &applied,
            PipelineOrder::InFileOrder,
        )
    }

    /// Imports a JSON Lines file: first a pass that groups the records that can touch
    /// one profile (`write::import::grouping`), then the records in that order, each
    /// group in file order. The result is that of [`Engine::import_jsonl`] but for
    /// profile ids and ingest sequence numbers; a profile is rewritten far less often.
    /// [`ImportOptions::in_file_order`] skips the grouping pass.
    pub fn import_jsonl_file(
        &self,
        file: &std::fs::File,
        options: &ImportOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestReport, ImportError> {
        let reader = || std::io::BufReader::with_capacity(1 << 20, file);
        if options.in_file_order {
            return self.import_jsonl(reader(), options, progress);
        }
        // Held from the grouping pass on: no other write can link two groups between the
        // passes (which would apply their lines out of file order).
        let mut writer = self.writer.lock().expect("writer lock");
        let applied = self.applied_lines(options)?;
        let scanned = std::sync::atomic::AtomicU64::new(0);
        let started = std::time::Instant::now();
        // The import starts at the file's cursor (as `import_jsonl` would); lines are
        // read back at absolute offsets.
        let base = {
            use std::io::Seek;
            let mut cursor = file;
            cursor.stream_position().map_err(io_error)?
        };
        let spans = group_lines(
            reader(),
            base,
            self.import_threads(),
            &applied,
            &|texts| self.link_candidates(texts),
            &scanned,
            &mut |scanned| {
                progress(Progress {
                    scanned,
                    ..Progress::default()
                })
            },
        )?;
        let scanned = scanned.into_inner();
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            lines = spans.len(),
            "grouping pass done"
        );
        self.run_pipeline(
            &mut writer,
            &mut |p| progress(Progress { scanned, ..p }),
            |tx, bytes| read_grouped(file, &spans, tx, bytes),
            options,
            &applied,
            PipelineOrder::Grouped,
        )
    }

    /// The candidate link keys of record texts and the live profiles holding them.
    fn link_candidates(&self, texts: &[&str]) -> Vec<Linked> {
        let config = self.config();
        let mut linked: Vec<Linked> = texts
            .iter()
            .map(|text| Linked {
                keys: crate::input::record::candidate_identifiers(text, config)
                    .iter()
                    .flat_map(|id| self.store.link_keys(id))
                    .collect(),
                holders: Vec::new(),
            })
            .collect();
        let state = self.state.read().expect("state lock");
        for l in &mut linked {
            for key in &l.keys {
                l.holders.extend(state.links.holders(key));
            }
        }
        linked
    }

    /// The lines an interrupted import of the same input applied.
    fn applied_lines(&self, options: &ImportOptions) -> Result<AppliedLines, ImportError> {
        let Some(key) = &options.resume_key else {
            return Ok(AppliedLines::default());
        };
        let applied = self
            .store
            .import_progress(key)
            .map_err(|e| ImportError::Ingest(e.into()))?;
        if !applied.is_empty() {
            tracing::info!(
                lines = applied.len(),
                through = applied.through(),
                "resuming an interrupted import"
            );
        }
        Ok(applied)
    }

    fn import_threads(&self) -> usize {
        match self.config().import_threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        }
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
        let mut csv = CsvRecords::new(reader);
        let header = match csv.next_record().map_err(io_error)? {
            None => Vec::new(),
            Some((_, Status::TooLong(size))) => {
                return Err(ImportError::CsvHeader(format!(
                    "header row of {size} bytes is longer than the limit of \
                     {MAX_RECORD_BYTES} bytes"
                )))
            }
            Some((_, Status::Read)) => csv
                .fields()
                .enumerate()
                .map(|(i, f)| {
                    std::str::from_utf8(f).map(str::to_string).map_err(|e| {
                        ImportError::CsvHeader(format!(
                            "invalid UTF-8 in column {} of the header at byte offset {}",
                            i + 1,
                            e.valid_up_to()
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let layout = mapping.layout(&header).map_err(ImportError::CsvHeader)?;
        let mut writer = self.writer.lock().expect("writer lock");
        let applied = self.applied_lines(options)?;
        self.run_pipeline(
            &mut writer,
            progress,
            |tx, bytes| {
                let mut chunk = Vec::with_capacity(CHUNK_LINES);
                while let Some((line, status)) = csv.next_record().map_err(io_error)? {
                    if applied.contains(line) {
                        continue;
                    }
                    chunk.push((line, csv_row(&csv, status, &layout)));
                    bytes.store(csv.bytes(), std::sync::atomic::Ordering::Relaxed);
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
            &applied,
            PipelineOrder::InFileOrder,
        )
    }

    /// Parses what `read` sends on parser threads and applies it in batches, under the
    /// writer lock (`writer`, which the caller took before reading `applied`). `applied`
    /// are the lines an interrupted import of the same input applied (`read` leaves
    /// them out); `order` says how the batches record their lines for a rerun.
    fn run_pipeline<F>(
        &self,
        writer: &mut WriterState,
        progress: &mut dyn FnMut(Progress),
        read: F,
        options: &ImportOptions,
        applied: &AppliedLines,
        order: PipelineOrder,
    ) -> Result<IngestReport, ImportError>
    where
        F: FnOnce(Sender<Input>, &std::sync::atomic::AtomicU64) -> Result<(), ImportError> + Send,
    {
        let resume = options.resume_key.as_ref().map(|key| match order {
            PipelineOrder::InFileOrder => ImportProgress::InFileOrder(key),
            PipelineOrder::Grouped => ImportProgress::Grouped(key),
        });
        let threads = self.import_threads();
        let batch_records = self
            .config()
            .import_batch_records
            .clamp(1, crate::base::limits::MAX_BATCH_RECORDS);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let now = crate::base::time::now_millis();
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
            let mut ordered = InOrder::new(out_rx.into_iter());
            let mut sizes = batch_sizes(batch_records);
            let mut batches = std::iter::from_fn(move || {
                let size = sizes.next().expect("endless");
                let batch: Vec<Parsed> = ordered.by_ref().take(size).collect();
                (!batch.is_empty()).then_some(batch)
            });
            let mut applied_records = 0u64;
            let report = self.ingest_batches(writer, batches.by_ref(), resume, &mut |committed| {
                applied_records += committed.records;
                progress(Progress {
                    records: applied_records,
                    bytes: bytes.load(std::sync::atomic::Ordering::Relaxed),
                    scanned: 0,
                });
            });
            // Dropping the receiving end stops the parser threads if ingest failed early.
            drop(batches);
            let mut report = report?;
            reader.join().expect("reader thread panicked")?;
            if let Some(key) = &options.resume_key {
                self.store
                    .clear_import_progress(key)
                    .map_err(|e| ImportError::Ingest(e.into()))?;
            }
            if !applied.is_empty() {
                report.resumed_after_line = Some(applied.through()).filter(|&line| line > 0);
                report.resumed_skipped_lines = Some(applied.len());
            }
            Ok(report)
        })
    }
}

/// The order an import's pipeline applies lines in.
#[derive(Debug, Clone, Copy)]
enum PipelineOrder {
    InFileOrder,
    Grouped,
}
