//! Committing a batch: encoding and sealing what planning staged into one sled batch with
//! the matching index changes ([`PreparedBatch`]), applied all-or-nothing.

use super::plan::{EventOp, LinkOp};
use crate::base::error::StorageError;
use crate::identity::Links;
use crate::index::{EventIndex, Indexes, Postings};
use crate::input::record::ShortText;
use crate::input::report::IngestReport;
use crate::storage::profile::{Profile, ProfileId};
use crate::storage::{
    BatchWriter, Counters, EventChunk, JournalEntries, MergeLogEntry, Store, WriteBatch,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A profile the batch touched, as the batch leaves it.
pub(super) struct Resolved {
    /// Live profile (shared with the next batch's overlay), or `None` once merged away.
    pub(super) profile: Option<Arc<Profile>>,
    pub(super) before: Option<Postings>,
    /// Postings after the batch (live profiles).
    pub(super) after: Option<Postings>,
    pub(super) redirect: Option<ProfileId>,
}

/// A resolved batch, not yet encoded: [`ResolvedBatch::prepare`] turns it into writes
/// (on the committer thread when importing, which balances the two threads' work).
pub(crate) struct ResolvedBatch {
    pub(super) staged: HashMap<ProfileId, Resolved>,
    /// Profiles the batch changes.
    pub(crate) changed: roaring::RoaringBitmap,
    /// The profiles among them whose slots it rewrites (the others only got events).
    pub(super) rewritten: roaring::RoaringBitmap,
    /// The last event-chunk sequence every rewritten profile counts.
    pub(super) folded: u64,
    /// Each source of the records that only added events, per profile not rewritten:
    /// its `Source` term (the rest of their postings stays as it is).
    pub(super) events_only: Vec<(ProfileId, ShortText)>,
    pub(super) batch_number: u64,
    pub(super) track_forms: bool,
    pub(super) new_pids: Vec<ProfileId>,
    pub(super) new_events: BTreeMap<(ProfileId, u64), EventChunk>,
    pub(super) new_log: BTreeMap<(ProfileId, u64), MergeLogEntry>,
    pub(super) event_ops: Vec<EventOp>,
    pub(super) links: Vec<LinkOp>,
    pub(super) merged_away: Vec<ProfileId>,
    /// Counters after the batch (the commit sets the checkpoint generation).
    pub(crate) counters: Counters,
    pub(super) report: IngestReport,
    /// The previous batch's overlay, dropped by [`ResolvedBatch::prepare`] (on the
    /// committer thread when importing: freeing a batch of profiles is not free).
    pub(super) retired: super::overlay::Overlay,
}

impl ResolvedBatch {
    /// Moves the stored event chunks and merge-log entries of every stored profile merged
    /// away in this batch to the live profile it ended in.
    fn move_stored_entries(
        &mut self,
        store: &Store,
        writer: &mut BatchWriter<'_>,
    ) -> Result<(), StorageError> {
        let absorbed: Vec<(ProfileId, ProfileId)> = self
            .staged
            .iter()
            .filter(|(_, s)| s.profile.is_none() && s.before.is_some())
            .filter_map(|(pid, s)| Some((*pid, self.live_target(s.redirect?))))
            .collect();
        for (pid, target) in absorbed {
            let mut events = Vec::new();
            let (keyed, journaled) = store.events_by_place(pid)?;
            for (q, _) in &keyed {
                writer.remove_events(pid, *q);
            }
            // Out of every journal set (nothing to write when it is in none).
            writer.drop_from_journal(pid);
            for (q, chunk) in keyed.into_iter().chain(journaled) {
                events.extend(chunk.events.iter().cloned());
                self.new_events.insert((target, q), chunk);
            }
            if !events.is_empty() {
                self.event_ops.push(EventOp::Remove(pid, events.clone()));
                self.event_ops.push(EventOp::Add(target, events));
            }
            for entry in store.merge_log(pid)? {
                writer.remove_merge_log(pid, entry.seq);
                self.new_log.insert((target, entry.seq), entry);
            }
        }
        Ok(())
    }

    /// The live profile `pid` ended in, following this batch's redirects.
    fn live_target(&self, mut pid: ProfileId) -> ProfileId {
        while let Some(Resolved {
            profile: None,
            redirect: Some(into),
            ..
        }) = self.staged.get(&pid)
        {
            pid = *into;
        }
        pid
    }

    /// Builds the write batch (issuing keys of new profiles, sealing every value) and the
    /// index changes. Nothing is visible until the engine commits the result.
    /// Event chunks go to the event journal when at least `journal_min_chunks` are of
    /// profiles whose slot the batch does not rewrite.
    pub(crate) fn prepare(
        mut self,
        store: &Store,
        journal_min_chunks: usize,
    ) -> Result<PreparedBatch, StorageError> {
        drop(std::mem::take(&mut self.retired));
        let mut writer = BatchWriter::new(store);
        writer.issue_keys(&self.new_pids)?;
        let mut changes = Vec::with_capacity(self.staged.len());
        let mut forms = Vec::new();
        self.move_stored_entries(store, &mut writer)?;
        let Sealed {
            profiles: mut sealed,
            events: sealed_events,
        } = seal_in_parallel(store, &self.staged, &self.new_events, self.folded);
        for (pid, staged) in std::mem::take(&mut self.staged) {
            let after = match (&staged.profile, staged.redirect) {
                (Some(_), _) => {
                    let value = sealed.remove(&pid).expect("every live profile is sealed");
                    writer.put_sealed_profile(pid, value);
                    staged.after
                }
                (None, Some(into)) => {
                    writer.put_redirect(pid, into);
                    None
                }
                (None, None) => None,
            };
            if self.track_forms {
                let digests = staged.profile.as_ref().map(|p| {
                    p.identifiers
                        .iter()
                        .flat_map(|i| crate::input::normalize::forms::forms(&i.id))
                        .map(|(_, d)| d)
                        .collect()
                });
                forms.push((pid, digests));
            }
            match (&staged.before, &after) {
                (None, Some(_)) => self.report.new_profiles += 1,
                (Some(_), Some(_)) => self.report.updated_profiles += 1,
                _ => {}
            }
            changes.push((pid, staged.before, after));
        }
        // Chunks of profiles whose slot the batch does not rewrite (events-only records)
        // go to the event journal: a few large values instead of a sled key each.
        let uncounted = &self.changed - &self.rewritten;
        let journaled = sealed_events
            .iter()
            .filter(|((pid, _), _)| uncounted.contains(*pid))
            .count();
        let use_journal = journaled >= journal_min_chunks.max(1);
        let mut journal = JournalEntries::default();
        for ((pid, seq), value) in sealed_events {
            if use_journal && uncounted.contains(pid) {
                journal.push(pid, seq, value);
            } else {
                writer.put_sealed_events(pid, seq, value);
            }
        }
        writer.put_journal(self.batch_number, journal);
        for ((pid, seq), entry) in &self.new_log {
            writer.put_merge_log(*pid, *seq, entry);
        }
        writer.put_dirty(self.batch_number, &self.changed);
        if !uncounted.is_empty() {
            writer.put_uncounted(self.batch_number, &uncounted);
        }
        self.report.updated_profiles += uncounted.len();
        Ok(PreparedBatch {
            batch: writer.finish()?,
            changed: self.changed,
            rewritten: self.rewritten,
            uncounted,
            changes,
            events_only: self.events_only,
            links: self.links,
            forms,
            event_ops: self.event_ops,
            counters: self.counters,
            merged_away: self.merged_away,
            report: self.report,
        })
    }
}

/// Below this many values a batch is sealed on the calling thread.
const PARALLEL_SEAL_MIN: usize = 512;

/// A batch's sealed values.
struct Sealed {
    /// Live profiles by id.
    profiles: HashMap<ProfileId, Vec<u8>>,
    /// Event chunks by (profile, sequence).
    events: Vec<((ProfileId, u64), Vec<u8>)>,
}

/// One value to seal.
enum SealJob<'a> {
    Profile(&'a Profile),
    Events(ProfileId, u64, &'a EventChunk),
}

/// Encodes, compresses and seals every live staged profile and every new event chunk, on
/// two threads for large batches (committing is the import's bottleneck; the parser
/// threads leave spare CPU while they wait for it).
fn seal_in_parallel(
    store: &Store,
    staged: &HashMap<ProfileId, Resolved>,
    new_events: &BTreeMap<(ProfileId, u64), EventChunk>,
    folded: u64,
) -> Sealed {
    let jobs: Vec<SealJob<'_>> = staged
        .values()
        .filter_map(|s| s.profile.as_deref().map(SealJob::Profile))
        .chain(
            new_events
                .iter()
                .map(|((pid, seq), chunk)| SealJob::Events(*pid, *seq, chunk)),
        )
        .collect();
    let work = |part: &[SealJob<'_>]| -> Sealed {
        let mut out = Sealed {
            profiles: HashMap::with_capacity(part.len()),
            events: Vec::new(),
        };
        for job in part {
            match job {
                SealJob::Profile(p) => {
                    out.profiles.insert(p.id, store.sealed_profile(p, folded));
                }
                SealJob::Events(pid, seq, chunk) => out
                    .events
                    .push(((*pid, *seq), store.sealed_events(*pid, *seq, chunk))),
            }
        }
        out
    };
    if jobs.len() < PARALLEL_SEAL_MIN {
        return work(&jobs);
    }
    // Interleaved halves, so both threads get profiles and chunks alike.
    let (mut left, mut right) = (Vec::with_capacity(jobs.len() / 2 + 1), Vec::new());
    for (i, job) in jobs.into_iter().enumerate() {
        if i % 2 == 0 {
            left.push(job);
        } else {
            right.push(job);
        }
    }
    std::thread::scope(|scope| {
        let other = scope.spawn(|| work(&right));
        let mut out = work(&left);
        let theirs = other.join().expect("sealing thread panicked");
        out.profiles.extend(theirs.profiles);
        out.events.extend(theirs.events);
        out
    })
}

/// A batch ready to apply: the sled writes and the matching index changes.
pub(crate) struct PreparedBatch {
    /// The sled writes (all but the counters, which the commit adds).
    pub(crate) batch: WriteBatch,
    /// Profiles the batch changes.
    pub(crate) changed: roaring::RoaringBitmap,
    /// The profiles among them whose slots it rewrites (an export's cached rows of the
    /// others stay valid: events are not in them).
    pub(crate) rewritten: roaring::RoaringBitmap,
    /// The others: their slots do not count the chunks this batch stores for them.
    pub(crate) uncounted: roaring::RoaringBitmap,
    changes: Vec<(ProfileId, Option<Postings>, Option<Postings>)>,
    events_only: Vec<(ProfileId, ShortText)>,
    links: Vec<LinkOp>,
    /// Identifier form digests of changed profiles (`None`: no longer live); collected
    /// only when suppression lists exist.
    pub(crate) forms: Vec<(ProfileId, Option<Vec<[u8; 32]>>)>,
    event_ops: Vec<EventOp>,
    /// Counters after the batch (the commit sets the checkpoint generation).
    pub(crate) counters: Counters,
    /// Profiles merged away (their keys are destroyed once the batch is durable).
    pub(crate) merged_away: Vec<ProfileId>,
    /// The report.
    pub(crate) report: IngestReport,
}

impl PreparedBatch {
    /// Separates the sled writes (applied first) from the rest.
    pub(crate) fn split(mut self) -> (WriteBatch, PreparedBatch) {
        let batch = std::mem::take(&mut self.batch);
        (batch, self)
    }

    /// Applies the index and link changes. A batch with many events indexes them on a
    /// second thread meanwhile: the event index shares no data with the links and the
    /// postings' indexes, and indexing events is most of this work during an import,
    /// which runs it on its one committing thread, under the state lock.
    pub(crate) fn apply_derived(&self, indexes: &mut Indexes, links: &mut Links) {
        let (events, mut postings) = indexes.split_events();
        let index_events = |events: &mut EventIndex| {
            for op in &self.event_ops {
                match op {
                    EventOp::Add(pid, added) => events.add(*pid, added),
                    EventOp::Remove(pid, removed) => events.remove(*pid, removed),
                }
            }
        };
        let mut index_the_rest = || {
            for op in &self.links {
                match *op {
                    LinkOp::Add(key, pid) => links.insert(key, pid),
                    LinkOp::Remove(key, pid) => links.remove(&key, pid),
                }
            }
            for (pid, before, after) in &self.changes {
                postings.update(*pid, before.as_ref(), after.as_ref());
            }
            for (pid, source) in &self.events_only {
                postings.add_source(*pid, source);
            }
        };
        if self.event_ops.len() < PARALLEL_EVENTS_MIN {
            index_the_rest();
            index_events(events);
            return;
        }
        // The helper takes the event index from here; if no thread can be started (this
        // runs after the sled apply, under the state lock: it must not fail), this thread
        // indexes the events itself.
        let handoff = std::sync::Mutex::new(Some(events));
        let take = || handoff.lock().unwrap_or_else(|p| p.into_inner()).take();
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("cidb-index-events".into())
                .spawn_scoped(scope, || {
                    if let Some(events) = take() {
                        index_events(events);
                    }
                });
            index_the_rest();
            match helper {
                Ok(helper) => helper.join().expect("indexing a batch's events panicked"),
                Err(_) => {
                    if let Some(events) = take() {
                        index_events(events);
                    }
                }
            }
        });
    }
}

/// From this many event changes (one per record with events, two per merge that moves
/// stored events) a batch indexes its events on a second thread. Debug builds (the
/// tests) use 2, so that both paths run throughout the test suite: the model test's
/// two-record batches and every larger one take the second thread, single records not.
const PARALLEL_EVENTS_MIN: usize = if cfg!(debug_assertions) { 2 } else { 512 };
