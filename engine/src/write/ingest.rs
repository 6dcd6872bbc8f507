//! Batch ingest: resolve a batch against the identity graph, then commit it (sled writes,
//! then the indexes and links readers see, then a flush).
//!
//! A stream of batches (the importers) overlaps the two halves: a committer thread writes
//! batch N while the calling thread resolves batch N+1 against what batch N left (see
//! `write::overlay`). Commits stay strictly ordered and one at a time, so every batch is
//! still atomic and durable before the next one is applied.

use crate::base::error::{IngestError, StorageError};
use crate::base::limits::MAX_BATCH_RECORDS;
use crate::base::time::Millis;
use crate::input::record::{ParsedRecord, RejectReason};
use crate::input::report::IngestReport;
use crate::write::{Overlay, ResolvedBatch};
use crossbeam_channel::Receiver;

/// One batch of parsed records with their line numbers.
pub(crate) type ParsedBatch = Vec<(u64, Result<ParsedRecord, RejectReason>)>;

/// How often idempotent ingests sweep expired answers.
pub(crate) const PRUNE_EVERY_MS: Millis = 60 * 60 * 1000;

/// A client's idempotency key for one ingest request (SHA-256 of the key as sent) and the
/// SHA-256 of the request it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// SHA-256 of the client's key.
    pub key: [u8; 32],
    /// SHA-256 of the request body.
    pub request: [u8; 32],
}

/// The outcome of [`crate::Engine::ingest_json_idempotent`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IdempotentIngest {
    /// The records were ingested now.
    Applied(IngestReport),
    /// The same key and request were ingested before (at `at`): nothing was ingested
    /// again; this is the first answer.
    Replayed {
        /// The first answer.
        report: IngestReport,
        /// When the first request was ingested.
        at: Millis,
    },
    /// The key was used for another request within [`crate::IDEMPOTENCY_TTL_MS`].
    KeyReused {
        /// When the key was first used.
        at: Millis,
    },
}

/// A resolved batch.
pub(crate) enum Planned {
    /// The batch changes nothing (every record rejected); its report.
    Nothing(IngestReport),
    /// The writes, and the overlay the next batch resolves against.
    Batch(Box<ResolvedBatch>, Overlay),
}

/// How a commit went: the batch's report once it is durable.
pub(crate) type Commit = Result<IngestReport, StorageError>;

/// A batch for the committer thread, with where to say how its commit went.
pub(crate) struct Job {
    pub(crate) batch: ResolvedBatch,
    /// The input lines the batch covers (recorded with it for resumable imports).
    pub(crate) lines: BatchLines,
    pub(crate) done: crossbeam_channel::Sender<Commit>,
}

/// How a resumable import records, with each batch, the input lines it applied.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ImportProgress<'a> {
    /// Lines in file order: the batch's last line (it applied everything up to it).
    InFileOrder(&'a crate::storage::ImportKey),
    /// Lines grouped by person (`write::import::grouping`): each of the batch's lines.
    Grouped(&'a crate::storage::ImportKey),
}

/// The input lines a batch covers, as its import records them.
pub(crate) enum BatchLines {
    /// Not a resumable import.
    Unrecorded,
    /// Every line up to this one.
    Through(u64),
    /// These lines.
    Lines(roaring::RoaringTreemap),
}

impl BatchLines {
    pub(crate) fn of(import: Option<ImportProgress<'_>>, items: &ParsedBatch) -> Self {
        match import {
            None => BatchLines::Unrecorded,
            Some(ImportProgress::InFileOrder(_)) => {
                items.last().map_or(BatchLines::Unrecorded, |(line, _)| {
                    BatchLines::Through(*line)
                })
            }
            Some(ImportProgress::Grouped(_)) => {
                BatchLines::Lines(items.iter().map(|(line, _)| *line).collect())
            }
        }
    }
}

/// Waits for a batch handed to the committer to be durable.
pub(crate) fn finish(commit: Receiver<Commit>) -> Result<IngestReport, StorageError> {
    commit
        .recv()
        .unwrap_or(Err(StorageError::CommitThreadStopped))
}

pub(crate) fn check_batch_size(items: &ParsedBatch) -> Result<(), IngestError> {
    if items.len() > MAX_BATCH_RECORDS {
        return Err(IngestError::BatchTooLarge {
            got: items.len(),
            limit: MAX_BATCH_RECORDS,
        });
    }
    Ok(())
}
