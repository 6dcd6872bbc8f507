//! Ingest on an open engine: batches through the write pipeline, idempotent ingests.

use crate::base::error::{IngestError, StorageError};
use crate::base::limits::{IDEMPOTENCY_TTL_MS, MAX_BATCH_RECORDS};
use crate::base::time::Millis;
use crate::engine::Engine;
use crate::input::record::{ParsedRecord, RejectReason};
use crate::input::report::IngestReport;
use crate::storage::IdempotencyEntry;
use crate::write::ingest::{
    check_batch_size, finish, BatchLines, Commit, IdempotencyKey, IdempotentIngest, ImportProgress,
    Job, ParsedBatch, Planned, PRUNE_EVERY_MS,
};
use crate::write::state::WriterState;
use crate::write::{BatchPlan, Overlay, PreparedBatch, StoredLinks};
use crossbeam_channel::{bounded, Receiver};
use roaring::RoaringBitmap;
use std::sync::atomic::Ordering;

impl Engine {
    /// Ingests already-parsed records (with their line numbers) as one atomic batch.
    pub fn ingest_parsed(
        &self,
        items: Vec<(u64, Result<ParsedRecord, RejectReason>)>,
    ) -> Result<IngestReport, IngestError> {
        check_batch_size(&items)?;
        let mut w = self.writer.lock().expect("writer lock");
        self.ingest_locked(&mut w, items, None)
    }

    /// Like [`Engine::ingest_json`], once per idempotency key: the key, the request's
    /// digest and the answer are written in the batch itself, so a retry (after a
    /// timeout, a lost answer or a crash) within [`IDEMPOTENCY_TTL_MS`] gets the first
    /// answer and ingests nothing, and a retry can never apply the records twice. A retry
    /// that arrives while the first request still runs waits for it.
    pub fn ingest_json_idempotent<S: AsRef<str>>(
        &self,
        records: &[S],
        idempotency: &IdempotencyKey,
    ) -> Result<IdempotentIngest, IngestError> {
        // A retry is answered before its records are parsed or the writer is waited for;
        // the check is repeated under the writer lock, which orders it after any request
        // with the same key that is still committing.
        if let Some(answer) = self.earlier_answer(idempotency)? {
            return Ok(answer);
        }
        if records.len() > MAX_BATCH_RECORDS {
            return Err(IngestError::BatchTooLarge {
                got: records.len(),
                limit: MAX_BATCH_RECORDS,
            });
        }
        let items = self.parse_json_batch(records);
        let mut w = self.writer.lock().expect("writer lock");
        if let Some(answer) = self.earlier_answer(idempotency)? {
            return Ok(answer);
        }
        let now = crate::base::time::now_millis();
        let report = self.ingest_locked(&mut w, items, Some((idempotency, now)))?;
        if now - self.idempotency_pruned_at.load(Ordering::Relaxed) > PRUNE_EVERY_MS {
            self.prune_idempotency()?;
        }
        Ok(IdempotentIngest::Applied(report))
    }

    /// Removes idempotency answers older than [`IDEMPOTENCY_TTL_MS`] (on open, then at
    /// most hourly from idempotent ingests).
    pub(crate) fn prune_idempotency(&self) -> Result<(), StorageError> {
        let now = crate::base::time::now_millis();
        self.idempotency_pruned_at.store(now, Ordering::Relaxed);
        let expired = self.store.prune_idempotency(now - IDEMPOTENCY_TTL_MS)?;
        if expired > 0 {
            tracing::info!(expired, "expired idempotency keys removed");
        }
        Ok(())
    }

    /// The answer an earlier request with this idempotency key left, if it is recent.
    fn earlier_answer(
        &self,
        idempotency: &IdempotencyKey,
    ) -> Result<Option<IdempotentIngest>, StorageError> {
        let Some(entry) = self.store.idempotency(&idempotency.key)? else {
            return Ok(None);
        };
        if crate::base::time::now_millis() - entry.at >= IDEMPOTENCY_TTL_MS {
            return Ok(None);
        }
        Ok(Some(if entry.request == idempotency.request {
            IdempotentIngest::Replayed {
                report: entry.report,
                at: entry.at,
            }
        } else {
            IdempotentIngest::KeyReused { at: entry.at }
        }))
    }

    /// One batch under the writer lock; with `idempotency`, its answer is recorded in the
    /// same atomic write.
    fn ingest_locked(
        &self,
        w: &mut WriterState,
        mut items: ParsedBatch,
        idempotency: Option<(&IdempotencyKey, Millis)>,
    ) -> Result<IngestReport, IngestError> {
        let counters = w.counters.clone();
        let mut stored = StoredLinks::read(&self.store, &self.state, &mut items);
        stored.prefetch(&self.store, &Overlay::default())?;
        let entry = |report: &IngestReport, at| IdempotencyEntry {
            at,
            request: idempotency.map(|(k, _)| k.request).unwrap_or_default(),
            report: report.clone(),
        };
        match self.plan_batch(items, stored, counters, Overlay::default())? {
            Planned::Nothing(report) => {
                if let Some((key, at)) = idempotency {
                    self.store.put_idempotency(&key.key, &entry(&report, at))?;
                }
                Ok(report)
            }
            Planned::Batch(resolved, _) => {
                let mut prepared =
                    resolved.prepare(&self.store, self.config().journal_min_chunks)?;
                if let Some((key, at)) = idempotency {
                    // The answer as the commit will give it (the report is final here).
                    prepared
                        .batch
                        .put_idempotency(&key.key, &entry(&prepared.report, at));
                }
                let report = self.commit_prepared(w, prepared)?;
                crate::base::crash_point::crash_point("ingest.after_commit");
                Ok(report)
            }
        }
    }

    /// Ingests a stream of batches (under the writer lock, which the caller holds), each
    /// atomic and durable before the next is applied,
    /// resolving each batch while the previous one commits. `on_committed` sees each
    /// batch's report once it is durable.
    ///
    /// With `import`, each batch also records (in its own atomic write) the input lines
    /// it covers, so a rerun of the same input after a crash leaves them out.
    pub(crate) fn ingest_batches(
        &self,
        w: &mut WriterState,
        mut batches: impl Iterator<Item = ParsedBatch>,
        import: Option<ImportProgress<'_>>,
        on_committed: &mut dyn FnMut(&IngestReport),
    ) -> Result<IngestReport, IngestError> {
        let mut counters = w.counters.clone();
        let journal_min_chunks = self.config().journal_min_chunks;
        let (job_tx, job_rx) = bounded::<Job>(0);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for job in job_rx {
                    let started = std::time::Instant::now();
                    let outcome = job.batch.prepare(&self.store, journal_min_chunks).and_then(
                        |mut prepared| {
                            match (import, &job.lines) {
                                (
                                    Some(ImportProgress::InFileOrder(key)),
                                    BatchLines::Through(line),
                                ) => prepared.batch.put_import_progress(key, *line),
                                (Some(ImportProgress::Grouped(key)), BatchLines::Lines(lines)) => {
                                    prepared.batch.put_import_lines(key, lines)
                                }
                                _ => {}
                            }
                            let prepare_ms = started.elapsed().as_millis() as u64;
                            tracing::debug!(prepare_ms, "batch prepared");
                            self.commit_prepared(w, prepared)
                        },
                    );
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
            let mut next = self.next_batch(&mut batches, &previous)?;
            while let Some((items, stored)) = next.take() {
                let lines = BatchLines::of(import, &items);
                let resolving = std::time::Instant::now();
                let planned = self.plan_batch(
                    items,
                    stored,
                    counters.clone(),
                    std::mem::take(&mut previous),
                )?;
                let (resolved, overlay) = match planned {
                    Planned::Nothing(report) => {
                        // A grouped import records these lines on their own: no later
                        // batch's lines cover them.
                        if let (Some(ImportProgress::Grouped(key)), BatchLines::Lines(lines)) =
                            (import, &lines)
                        {
                            self.store.record_import_lines(key, lines)?;
                        }
                        // Nothing to write; report it in order, after the batch before.
                        if let Some(f) = in_flight.take() {
                            done(finish(f)?);
                        }
                        done(report);
                        next = self.next_batch(&mut batches, &previous)?;
                        continue;
                    }
                    Planned::Batch(resolved, overlay) => (resolved, overlay),
                };
                counters = resolved.counters.clone();
                let resolve_ms = resolving.elapsed().as_millis() as u64;
                tracing::debug!(resolve_ms, "batch resolved");
                let waited = std::time::Instant::now();
                if let Some(f) = in_flight.take() {
                    done(finish(f)?);
                }
                let wait_ms = waited.elapsed().as_millis() as u64;
                tracing::debug!(wait_ms, "resolver waited for the previous commit");
                let (done_tx, done_rx) = bounded(1);
                let job = Job {
                    batch: *resolved,
                    lines,
                    done: done_tx,
                };
                if job_tx.send(job).is_err() {
                    return Err(StorageError::CommitThreadStopped.into());
                }
                in_flight = Some(done_rx);
                previous = overlay;
                // Read the next batch's links now, while the committer is still sealing
                // (before it takes the state lock to publish).
                let reading = std::time::Instant::now();
                next = self.next_batch(&mut batches, &previous)?;
                let next_ms = reading.elapsed().as_millis() as u64;
                tracing::debug!(next_ms, "next batch read");
            }
            if let Some(f) = in_flight.take() {
                done(finish(f)?);
            }
            Ok(total)
        })
    }

    /// The next batch of a stream, with its published links and their profiles read
    /// (those that `previous`, the overlay it will resolve against, does not hold).
    /// Called when every batch before `previous`'s is durable.
    fn next_batch(
        &self,
        batches: &mut impl Iterator<Item = ParsedBatch>,
        previous: &Overlay,
    ) -> Result<Option<(ParsedBatch, StoredLinks)>, IngestError> {
        let Some(mut items) = batches.next() else {
            return Ok(None);
        };
        check_batch_size(&items)?;
        let mut stored = StoredLinks::read(&self.store, &self.state, &mut items);
        stored.prefetch(&self.store, previous)?;
        Ok(Some((items, stored)))
    }

    /// Resolves one batch against the previous batch's overlay and the published links.
    fn plan_batch(
        &self,
        items: ParsedBatch,
        stored: StoredLinks,
        counters: crate::storage::Counters,
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
        let started = std::time::Instant::now();
        {
            let mut state = self.state.write().expect("state lock");
            self.store.mark_uncounted(&rest.uncounted);
            self.store.apply(batch)?;
            self.store.unmark_uncounted(&rest.rewritten);
            let apply_ms = started.elapsed().as_millis() as u64;
            tracing::debug!(apply_ms, "batch applied to sled");
            let crate::write::state::State { indexes, links, .. } = &mut *state;
            rest.apply_derived(indexes, links);
            state.suppression.refresh_profiles(&rest.forms);
            if !state.models.is_empty() {
                let touched: RoaringBitmap = &changed | &rest.merged_away.iter().copied().collect();
                let crate::write::state::State {
                    indexes, models, ..
                } = &mut *state;
                models.rescore(indexes, &touched);
            }
            self.bump_generation(&mut state);
            self.export_cache.invalidate(rest.rewritten.iter());
            state.counters = counters.clone();
        }
        let published_ms = started.elapsed().as_millis() as u64;
        w.counters = counters;
        w.dirty |= changed;
        self.publish_counts(w);
        self.store.flush()?;
        self.store.destroy_keys(&rest.merged_away)?;
        let flushed_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(published_ms, flushed_ms, "batch durable");
        let threshold = self
            .config()
            .checkpoint_min_dirty
            .max((self.state.read().expect("state lock").indexes.live().len() / 2) as usize);
        if w.dirty.len() as usize >= threshold {
            let started = std::time::Instant::now();
            self.checkpoint_locked(w)?;
            let checkpoint_ms = started.elapsed().as_millis() as u64;
            tracing::debug!(checkpoint_ms, "index checkpoint written");
        }
        Ok(rest.report)
    }
}
