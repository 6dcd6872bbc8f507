//! Batch ingest: resolve a batch against the identity graph, then commit it (sled writes,
//! then the indexes and links readers see, then a flush).
//!
//! A stream of batches (the importers) overlaps the two halves: a committer thread writes
//! batch N while the calling thread resolves batch N+1 against what batch N left (see
//! `writer::overlay`). Commits stay strictly ordered and one at a time, so every batch is
//! still atomic and durable before the next one is applied.

use crate::engine::{Engine, WriterState};
use crate::error::{IngestError, StorageError};
use crate::record::{ParsedRecord, RejectReason};
use crate::report::IngestReport;
use crate::writer::{BatchPlan, Overlay, PreparedBatch, ResolvedBatch, StoredLinks};
use crate::MAX_BATCH_RECORDS;
use crossbeam_channel::{bounded, Receiver};

/// One batch of parsed records with their line numbers.
pub(crate) type ParsedBatch = Vec<(u64, Result<ParsedRecord, RejectReason>)>;

impl Engine {
    /// Ingests already-parsed records (with their line numbers) as one atomic batch.
    pub fn ingest_parsed(
        &self,
        mut items: Vec<(u64, Result<ParsedRecord, RejectReason>)>,
    ) -> Result<IngestReport, IngestError> {
        check_batch_size(&items)?;
        let mut w = self.writer.lock().expect("writer lock");
        let counters = w.counters.clone();
        let stored = StoredLinks::read(&self.store, &self.state, &mut items);
        match self.plan_batch(items, stored, counters, Overlay::default())? {
            Planned::Nothing(report) => Ok(report),
            Planned::Batch(resolved, _) => {
                let prepared = resolved.prepare(&self.store)?;
                Ok(self.commit_prepared(&mut w, prepared)?)
            }
        }
    }

    /// Ingests a stream of batches, each atomic and durable before the next is applied,
    /// resolving each batch while the previous one commits. `on_committed` sees each
    /// batch's report once it is durable.
    pub(crate) fn ingest_batches(
        &self,
        mut batches: impl Iterator<Item = ParsedBatch>,
        on_committed: &mut dyn FnMut(&IngestReport),
    ) -> Result<IngestReport, IngestError> {
        let mut w = self.writer.lock().expect("writer lock");
        let mut counters = w.counters.clone();
        let w = &mut *w;
        let (job_tx, job_rx) = bounded::<Job>(0);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for job in job_rx {
                    let outcome = job
                        .batch
                        .prepare(&self.store)
                        .and_then(|prepared| self.commit_prepared(w, prepared));
                    let failed = outcome.is_err();
                    let _ = job.done.send(outcome);
                    if failed {
                        break;
                    }
                }
            });
            // Owned here, so that any return from this closure stops the committer.
            let job_tx = job_tx;
            let mut total = IngestReport::default();
            let mut done = |report: IngestReport| {
                on_committed(&report);
                total.absorb(report);
            };
            let mut previous = Overlay::default();
            // The batch the committer is writing: its outcome arrives here.
            let mut in_flight: Option<Receiver<Commit>> = None;
            let mut next = self.next_batch(&mut batches)?;
            while let Some((items, stored)) = next.take() {
                let planned = self.plan_batch(
                    items,
                    stored,
                    counters.clone(),
                    std::mem::take(&mut previous),
                )?;
                let (resolved, overlay) = match planned {
                    Planned::Nothing(report) => {
                        // Nothing to write; report it in order, after the batch before.
                        if let Some(f) = in_flight.take() {
                            done(finish(f)?);
                        }
                        done(report);
                        next = self.next_batch(&mut batches)?;
                        continue;
                    }
                    Planned::Batch(resolved, overlay) => (resolved, overlay),
                };
                counters = resolved.counters.clone();
                if let Some(f) = in_flight.take() {
                    done(finish(f)?);
                }
                let (done_tx, done_rx) = bounded(1);
                let job = Job {
                    batch: *resolved,
                    done: done_tx,
                };
                if job_tx.send(job).is_err() {
                    return Err(StorageError::Sled("the commit thread stopped".into()).into());
                }
                in_flight = Some(done_rx);
                previous = overlay;
                // Read the next batch's links now, while the committer is still sealing
                // (before it takes the state lock to publish).
                next = self.next_batch(&mut batches)?;
            }
            if let Some(f) = in_flight.take() {
                done(finish(f)?);
            }
            Ok(total)
        })
    }

    /// The next batch of a stream, with its published links read.
    fn next_batch(
        &self,
        batches: &mut impl Iterator<Item = ParsedBatch>,
    ) -> Result<Option<(ParsedBatch, StoredLinks)>, IngestError> {
        let Some(mut items) = batches.next() else {
            return Ok(None);
        };
        check_batch_size(&items)?;
        let stored = StoredLinks::read(&self.store, &self.state, &mut items);
        Ok(Some((items, stored)))
    }

    /// Resolves one batch against the previous batch's overlay and the published links.
    fn plan_batch(
        &self,
        items: ParsedBatch,
        stored: StoredLinks,
        counters: crate::store::Counters,
        previous: Overlay,
    ) -> Result<Planned, StorageError> {
        let mut plan = BatchPlan::new(&self.store, self.config(), stored, counters, previous);
        for (line, item) in items {
            match item {
                Ok(parsed) => plan.add(line, parsed)?,
                Err(reason) => {
                    plan.report.records += 1;
                    plan.report.reject(line, reason.field, reason.message);
                }
            }
        }
        if plan.is_empty() {
            return Ok(Planned::Nothing(std::mem::take(&mut plan.report)));
        }
        let (resolved, overlay) = plan.resolve();
        Ok(Planned::Batch(Box::new(resolved), overlay))
    }

    /// Commits a prepared batch: sled writes, then the indexes, links and counters readers
    /// see (atomically for them), then a flush; destroys the keys of merged-away profiles
    /// and checkpoints the indexes when enough profiles changed.
    fn commit_prepared(
        &self,
        w: &mut WriterState,
        prepared: PreparedBatch,
    ) -> Result<IngestReport, StorageError> {
        let mut counters = prepared.counters.clone();
        counters.checkpoint_generation = w.counters.checkpoint_generation;
        let changed = prepared.changed.clone();
        let (mut batch, rest) = prepared.split();
        batch.put_counters(&counters);
        {
            let mut state = self.state.write().expect("state lock");
            self.store.apply(batch)?;
            let crate::engine::State { indexes, links, .. } = &mut *state;
            rest.apply_derived(indexes, links);
            state.suppression.refresh_profiles(&rest.forms);
            state.generation += 1;
            self.export_cache.invalidate(changed.iter());
            state.counters = counters.clone();
        }
        w.counters = counters;
        w.dirty |= changed;
        self.publish_counts(w);
        self.store.flush()?;
        self.store.destroy_keys(&rest.merged_away)?;
        let threshold = self
            .config()
            .checkpoint_min_dirty
            .max((self.state.read().expect("state lock").indexes.live().len() / 2) as usize);
        if w.dirty.len() as usize >= threshold {
            self.checkpoint_locked(w)?;
        }
        Ok(rest.report)
    }
}

/// A resolved batch.
enum Planned {
    /// The batch changes nothing (every record rejected); its report.
    Nothing(IngestReport),
    /// The writes, and the overlay the next batch resolves against.
    Batch(Box<ResolvedBatch>, Overlay),
}

/// How a commit went: the batch's report once it is durable.
type Commit = Result<IngestReport, StorageError>;

/// A batch for the committer thread, with where to say how its commit went.
struct Job {
    batch: ResolvedBatch,
    done: crossbeam_channel::Sender<Commit>,
}

/// Waits for a batch handed to the committer to be durable.
fn finish(commit: Receiver<Commit>) -> Result<IngestReport, StorageError> {
    commit
        .recv()
        .unwrap_or_else(|_| Err(StorageError::CommitThreadStopped))
}

fn check_batch_size(items: &ParsedBatch) -> Result<(), IngestError> {
    if items.len() > MAX_BATCH_RECORDS {
        return Err(IngestError::BatchTooLarge {
            got: items.len(),
            limit: MAX_BATCH_RECORDS,
        });
    }
    Ok(())
}
