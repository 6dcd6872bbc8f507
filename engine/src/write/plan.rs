//! Planning a batch: resolving its records against the stored identity graph (and the
//! previous batch's overlay) into staged profiles, link changes, index changes, events and
//! merge-log entries, all in memory.

use super::commit::{Resolved, ResolvedBatch};
use super::overlay::{Delta, Overlay, OverlaySlot};
use crate::base::digest::LinkKey;
use crate::base::error::StorageError;
use crate::index::Postings;
use crate::input::config::Config;
use crate::input::record::{Event, Identifier, ParsedRecord, Record};
use crate::input::report::IngestReport;
use crate::storage::profile::{Profile, ProfileId, Provenance};
use crate::storage::{Counters, EventChunk, FoldedSlot, MergeLogEntry, Store};
use crate::write::state::State;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// The published identifier links a batch's records look up, read in one short lock
/// before resolution (the committer holds the state lock while it writes the previous
/// batch; reading links one by one would wait for it). Links published later can only
/// come from the previous batch, whose links resolution reads from its overlay first.
#[derive(Default)]
pub(crate) struct StoredLinks {
    links: HashMap<LinkKey, ProfileId>,
    /// Whether suppression lists exist (the batch then collects identifier forms).
    track_forms: bool,
    /// The linked profiles that resolution will read: those linked by a record that is
    /// not [`only_adds_events`] or whose identifiers are not all linked to one profile.
    /// (Resolution may still read others: when the previous batch changed a profile or
    /// a link an events-only record needs, the record takes the full path.)
    wanted: HashSet<ProfileId>,
    /// Slots of the linked profiles, read ahead (see [`StoredLinks::prefetch`]).
    prefetched: HashMap<ProfileId, Prefetched>,
}

/// A profile slot read before resolution.
enum Prefetched {
    Live(Box<PrefetchedProfile>),
    Merged(ProfileId),
}

/// A live profile read before resolution, with its postings and the sequences of the
/// event chunks counted in on reading it.
struct PrefetchedProfile {
    profile: Profile,
    postings: Postings,
    counted: Vec<u64>,
}

/// Whether a record carries events and nothing else that a profile keeps per value (no
/// attributes, no consent). When all its identifiers are already linked to one profile
/// that neither this batch nor the one before rewrites, the batch stores only its event
/// chunk and leaves the profile's slot as it is; reading the profile counts the chunk
/// in (`Store::slot`). This is the live traffic of a customer database: a page view,
/// an e-mail opened, a purchase.
fn only_adds_events(record: &Record) -> bool {
    record.attributes.is_empty() && record.consent.is_empty() && !record.events.is_empty()
}

/// Below this many profiles to read, [`StoredLinks::prefetch`] reads on one thread.
const PARALLEL_PREFETCH_MIN: usize = 256;

impl StoredLinks {
    /// Computes the link keys of every record (where the parser threads have not) and
    /// reads their published links.
    pub(crate) fn read(
        store: &Store,
        state: &RwLock<State>,
        items: &mut [(
            u64,
            Result<ParsedRecord, crate::input::record::RejectReason>,
        )],
    ) -> StoredLinks {
        for (_, item) in items.iter_mut() {
            if let Ok(parsed) = item {
                store.fill_link_keys(parsed);
            }
        }
        let state = state.read().expect("state lock");
        let mut links = HashMap::new();
        let mut wanted = HashSet::new();
        let mut found = Vec::new();
        for (_, item) in items.iter() {
            let Ok(parsed) = item else { continue };
            found.clear();
            for keys in &parsed.link_keys {
                if let Some(pid) = state.links.get(&keys[0]) {
                    links.insert(keys[0], pid);
                    found.push(pid);
                }
            }
            let events_only = only_adds_events(&parsed.record)
                && found.len() == parsed.link_keys.len()
                && found.windows(2).all(|w| w[0] == w[1]);
            if !events_only {
                wanted.extend(found.iter().copied());
            }
        }
        StoredLinks {
            links,
            track_forms: !state.suppression.is_empty(),
            wanted,
            prefetched: HashMap::new(),
        }
    }

    /// Reads the slots of the linked profiles that `previous` (the overlay of the batch
    /// before, which resolution reads first) does not hold, decodes them and computes
    /// their postings, on two threads; resolution then takes them from here instead of
    /// reading sled one profile at a time on its own thread.
    ///
    /// Must run when every batch before `previous`'s is durable (the importer calls it
    /// right after handing that batch to the committer): a slot read here is then
    /// current for every profile that `previous` does not hold, whether or not that
    /// batch has reached sled yet. It also runs before the committer applies that batch,
    /// while it seals, so these reads seldom wait for sled's write lock.
    pub(crate) fn prefetch(
        &mut self,
        store: &Store,
        previous: &Overlay,
    ) -> Result<(), StorageError> {
        let mut pids: Vec<ProfileId> = self
            .wanted
            .iter()
            .copied()
            .filter(|pid| !previous.slots.contains_key(pid))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        let read = |part: &[ProfileId]| -> Result<Vec<(ProfileId, Prefetched)>, StorageError> {
            let mut out = Vec::with_capacity(part.len());
            for &pid in part {
                match store.slot_folded(pid)? {
                    Some(FoldedSlot::Live(read)) => {
                        let postings = Postings::of(&read.profile);
                        let read = PrefetchedProfile {
                            profile: read.profile,
                            postings,
                            counted: read.folded,
                        };
                        out.push((pid, Prefetched::Live(Box::new(read))));
                    }
                    Some(FoldedSlot::Merged(into)) => out.push((pid, Prefetched::Merged(into))),
                    None => {}
                }
            }
            Ok(out)
        };
        let found = if pids.len() < PARALLEL_PREFETCH_MIN {
            read(&pids)?
        } else {
            let (left, right) = pids.split_at(pids.len() / 2);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| read(right));
                let mut found = read(left)?;
                found.extend(other.join().expect("prefetch thread panicked")?);
                Ok::<_, StorageError>(found)
            })?
        };
        self.prefetched = found.into_iter().collect();
        Ok(())
    }
}

/// A profile touched by the batch.
pub(super) struct Staged {
    /// Live profile, or `None` once merged away.
    profile: Option<Profile>,
    /// Postings before the batch (`None` for a profile created in it).
    before: Option<Postings>,
    /// Merged into this profile during the batch (its stored events and merge log follow
    /// at prepare time).
    redirect: Option<ProfileId>,
}

/// A change to the published identifier links, applied at commit in order (an alias
/// key may have several holders, so a merge removes the absorbed holder explicitly).
#[derive(Debug, Clone, Copy)]
pub(super) enum LinkOp {
    Add(LinkKey, ProfileId),
    Remove(LinkKey, ProfileId),
}

/// An index change to apply at commit, in order.
pub(super) enum EventOp {
    Add(ProfileId, Vec<Event>),
    Remove(ProfileId, Vec<Event>),
}

/// The pending changes of one batch.
pub(crate) struct BatchPlan<'a> {
    store: &'a Store,
    config: &'a Config,
    /// Published links of this batch's identifiers, read before resolution started (see
    /// [`StoredLinks`]).
    stored_links: StoredLinks,
    /// What the previous batch left, while it may still be committing.
    previous: Overlay,
    counters: Counters,
    staged: HashMap<ProfileId, Staged>,
    /// Links made by this batch (the latest holder of each key, for resolution).
    links: HashMap<LinkKey, ProfileId>,
    /// The same changes in order, for publishing.
    link_ops: Vec<LinkOp>,
    new_events: BTreeMap<(ProfileId, u64), EventChunk>,
    new_log: BTreeMap<(ProfileId, u64), MergeLogEntry>,
    event_ops: Vec<EventOp>,
    /// Records that only added events to profiles the batch does not rewrite (see
    /// [`only_adds_events`]); a profile staged later in the batch takes its own.
    deltas: HashMap<ProfileId, Vec<Delta>>,
    new_pids: Vec<ProfileId>,
    merged_away: Vec<ProfileId>,
    pub(crate) report: IngestReport,
}

impl<'a> BatchPlan<'a> {
    pub(crate) fn new(
        store: &'a Store,
        config: &'a Config,
        stored_links: StoredLinks,
        counters: Counters,
        previous: Overlay,
    ) -> Self {
        BatchPlan {
            store,
            config,
            stored_links,
            previous,
            counters,
            staged: HashMap::new(),
            links: HashMap::new(),
            link_ops: Vec::new(),
            new_events: BTreeMap::new(),
            new_log: BTreeMap::new(),
            event_ops: Vec::new(),
            deltas: HashMap::new(),
            new_pids: Vec::new(),
            merged_away: Vec::new(),
            report: IngestReport::default(),
        }
    }

    /// The live profile an identifier currently links to.
    fn linked_profile(&mut self, key: &LinkKey) -> Result<Option<ProfileId>, StorageError> {
        let pid = match self.links.get(key) {
            Some(p) => *p,
            None => match self.previous.link(key) {
                Some(p) => p,
                None => match self.stored_links.links.get(key) {
                    Some(p) => *p,
                    None => return Ok(None),
                },
            },
        };
        self.canonical(pid)
    }

    /// Stages a live profile read from the store or the previous batch (with its
    /// postings, when they were computed ahead).
    ///
    /// A profile read from the store counts the event chunks sled held (`counted`); the
    /// previous batch's deltas it does not count yet are counted here (that batch may not
    /// have reached sled when it was read). The postings before are those of the
    /// profile as published; this batch's own deltas for it are counted after.
    fn stage_existing(
        &mut self,
        mut profile: Profile,
        mut postings: Option<Postings>,
        counted: &[u64],
    ) {
        let pid = profile.id;
        if let Some(deltas) = self.previous.deltas.get(&pid) {
            for delta in deltas.iter().filter(|d| !counted.contains(&d.seq)) {
                delta.apply(&mut profile);
                postings = None;
            }
        }
        let before = postings.unwrap_or_else(|| Postings::of(&profile));
        for delta in self.deltas.remove(&pid).unwrap_or_default() {
            delta.apply(&mut profile);
        }
        self.staged.insert(
            pid,
            Staged {
                before: Some(before),
                profile: Some(profile),
                redirect: None,
            },
        );
    }

    /// Follows redirects (staged, previous batch, stored) to a live profile, staging it.
    fn canonical(&mut self, mut pid: ProfileId) -> Result<Option<ProfileId>, StorageError> {
        for _ in 0..64 {
            if let Some(s) = self.staged.get(&pid) {
                match s.redirect {
                    Some(into) => pid = into,
                    None => return Ok(Some(pid)),
                }
                continue;
            }
            match self.previous.take(pid) {
                Some(OverlaySlot::Live(profile)) => {
                    // Shared with the previous batch while it commits: copy it then.
                    let profile = Arc::try_unwrap(profile).unwrap_or_else(|p| (*p).clone());
                    self.stage_existing(profile, None, &[]);
                    return Ok(Some(pid));
                }
                Some(OverlaySlot::Merged(into)) => {
                    pid = into;
                    continue;
                }
                Some(OverlaySlot::Gone) => return Ok(None),
                None => {}
            }
            match self.stored_links.prefetched.remove(&pid) {
                Some(Prefetched::Live(read)) => {
                    let PrefetchedProfile {
                        profile,
                        postings,
                        counted,
                    } = *read;
                    self.stage_existing(profile, Some(postings), &counted);
                    return Ok(Some(pid));
                }
                Some(Prefetched::Merged(into)) => {
                    pid = into;
                    continue;
                }
                None => {}
            }
            match self.store.slot_folded(pid)? {
                Some(FoldedSlot::Live(read)) => {
                    self.stage_existing(read.profile, None, &read.folded);
                    return Ok(Some(pid));
                }
                Some(FoldedSlot::Merged(into)) => pid = into,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    fn profile(&self, pid: ProfileId) -> &Profile {
        self.staged[&pid]
            .profile
            .as_ref()
            .expect("canonical profiles are live")
    }

    fn profile_mut(&mut self, pid: ProfileId) -> &mut Profile {
        self.staged
            .get_mut(&pid)
            .and_then(|s| s.profile.as_mut())
            .expect("canonical profiles are live")
    }

    fn create_profile(&mut self) -> ProfileId {
        let pid = self.counters.next_pid;
        self.counters.next_pid += 1;
        self.new_pids.push(pid);
        self.staged.insert(
            pid,
            Staged {
                profile: Some(Profile::new(pid)),
                before: None,
                redirect: None,
            },
        );
        pid
    }

    /// Whether `a` and `b` together respect every per-type limit.
    fn can_merge(&self, a: ProfileId, b: ProfileId) -> bool {
        let (pa, pb) = (self.profile(a), self.profile(b));
        let mut kinds: Vec<&str> = pa
            .identifiers
            .iter()
            .chain(&pb.identifiers)
            .map(|i| i.id.kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.into_iter().all(|kind| {
            let limit = self.config.identity.limit(kind);
            let extra = pb
                .identifiers
                .iter()
                .filter(|i| i.id.kind == kind && !pa.has_identifier(&i.id))
                .count();
            pa.identifier_count(kind) + extra <= limit
        })
    }

    /// Folds one parsed record into the plan.
    pub(crate) fn add(&mut self, line: u64, parsed: ParsedRecord) -> Result<(), StorageError> {
        let ParsedRecord {
            record,
            warnings,
            dropped_by_scope,
            link_keys,
        } = parsed;
        self.report.records += 1;
        self.report.accepted += 1;
        for w in warnings {
            self.report.warn(line, w.field, w.reason);
        }
        for field in dropped_by_scope {
            *self
                .report
                .dropped_by_scope
                .entry(record.source.to_string())
                .or_default()
                .entry(field)
                .or_default() += 1;
        }
        let seq = self.counters.next_seq;
        self.counters.next_seq += 1;
        self.counters.records += 1;

        if only_adds_events(&record) {
            if let Some(pid) = self.events_only_target(&link_keys) {
                self.add_events_only(pid, seq, record);
                return Ok(());
            }
        }

        // Which live profile each identifier links to, by priority.
        let mut ids: Vec<(usize, usize, &Identifier, LinkKey)> = record
            .identifiers
            .iter()
            .enumerate()
            .map(|(i, id)| (self.config.identity.rank(&id.kind), i, id, link_keys[i][0]))
            .collect();
        ids.sort_by_key(|(rank, i, _, _)| (*rank, *i));
        let mut matched: Vec<(Option<ProfileId>, &Identifier, usize)> =
            Vec::with_capacity(ids.len());
        for (_, i, id, key) in ids {
            matched.push((self.linked_profile(&key)?, id, i));
        }

        let target = match matched.iter().find_map(|(p, _, _)| *p) {
            Some(pid) => pid,
            None => self.create_profile(),
        };
        let provenance = Provenance {
            source: record.source.clone(),
            observed_at: record.observed_at,
        };
        for (pid, id, index) in &matched {
            match pid {
                Some(pid) => {
                    let current = self.canonical(*pid)?.expect("matched profiles are live");
                    if current == target {
                        continue;
                    }
                    if self.can_merge(target, current) {
                        self.merge(target, current, id, &record.source, record.observed_at, seq)?;
                    } else {
                        self.report.warn(
                            line,
                            format!("identifiers.{}", id.kind),
                            "belongs to another profile that cannot be merged without exceeding an identifier limit; not attached".into(),
                        );
                    }
                }
                None => {
                    let limit = self.config.identity.limit(&id.kind);
                    let profile = self.profile(target);
                    if profile.has_identifier(id) {
                        continue;
                    }
                    if profile.identifier_count(&id.kind) >= limit {
                        self.report.warn(
                            line,
                            format!("identifiers.{}", id.kind),
                            format!("profile already holds the limit of {limit} {} value(s); not attached", id.kind),
                        );
                        continue;
                    }
                    self.profile_mut(target)
                        .attach((*id).clone(), provenance.clone());
                    for key in &link_keys[*index] {
                        self.links.insert(*key, target);
                        self.link_ops.push(LinkOp::Add(*key, target));
                    }
                }
            }
        }

        self.profile_mut(target).apply_record(&record, seq);
        if !record.events.is_empty() {
            self.counters.events += record.events.len() as u64;
            self.event_ops
                .push(EventOp::Add(target, record.events.clone()));
            self.new_events.insert(
                (target, seq),
                EventChunk {
                    source: record.source,
                    observed_at: record.observed_at,
                    events: record.events,
                },
            );
        }
        Ok(())
    }

    /// The profile that a record carrying only events adds them to without rewriting it:
    /// the one every identifier of the record is linked to in the published links, if
    /// neither this batch nor the previous one changed those links or that profile.
    fn events_only_target(&self, link_keys: &[Vec<LinkKey>]) -> Option<ProfileId> {
        let mut target = None;
        for keys in link_keys {
            let key = keys.first()?;
            if self.links.contains_key(key) || self.previous.link(key).is_some() {
                return None;
            }
            let pid = *self.stored_links.links.get(key)?;
            if target.is_some_and(|t| t != pid) {
                return None;
            }
            target = Some(pid);
        }
        let pid = target?;
        let untouched = !self.staged.contains_key(&pid) && !self.previous.slots.contains_key(&pid);
        untouched.then_some(pid)
    }

    /// Stores a record's events under `pid` without staging the profile: its delta is
    /// counted in whenever the profile is read.
    fn add_events_only(&mut self, pid: ProfileId, seq: u64, record: Record) {
        let count = record.events.len();
        self.counters.events += count as u64;
        self.deltas.entry(pid).or_default().push(Delta {
            seq,
            source: record.source.clone(),
            observed_at: record.observed_at,
            events: count,
        });
        self.event_ops
            .push(EventOp::Add(pid, record.events.clone()));
        self.new_events.insert(
            (pid, seq),
            EventChunk {
                source: record.source,
                observed_at: record.observed_at,
                events: record.events,
            },
        );
    }

    /// Merges `absorbed` into `survivor`: profile data, identifier links, events and merge
    /// log follow; the absorbed id redirects. Work is proportional to the absorbed
    /// profile's own data. Entries added earlier in this batch move here; stored ones move
    /// when the batch is prepared (the store is current then even while the previous batch
    /// was still committing during resolution).
    fn merge(
        &mut self,
        survivor: ProfileId,
        absorbed: ProfileId,
        linked_by: &Identifier,
        source: &str,
        observed_at: i64,
        seq: u64,
    ) -> Result<(), StorageError> {
        let staged = self
            .staged
            .get_mut(&absorbed)
            .expect("absorbed profile is staged");
        let other = staged.profile.take().expect("absorbed profile is live");
        staged.redirect = Some(survivor);
        for sid in &other.identifiers {
            for key in self.store.link_keys(&sid.id) {
                self.links.insert(key, survivor);
                self.link_ops.push(LinkOp::Remove(key, absorbed));
                self.link_ops.push(LinkOp::Add(key, survivor));
            }
        }
        // Events added earlier in this batch move to the survivor.
        let moved = take_profile_entries(&mut self.new_events, absorbed);
        let events: Vec<Event> = moved
            .iter()
            .flat_map(|(_, c)| c.events.iter().cloned())
            .collect();
        if !events.is_empty() {
            self.event_ops
                .push(EventOp::Remove(absorbed, events.clone()));
            self.event_ops.push(EventOp::Add(survivor, events));
        }
        for (q, chunk) in moved {
            self.new_events.insert((survivor, q), chunk);
        }
        // Merge log entries added earlier in this batch move too.
        for (q, entry) in take_profile_entries(&mut self.new_log, absorbed) {
            self.new_log.insert((survivor, q), entry);
        }
        self.new_log.insert(
            (survivor, seq),
            MergeLogEntry {
                survivor,
                absorbed,
                linked_by: linked_by.clone(),
                source: source.to_string(),
                observed_at,
                seq,
            },
        );
        self.profile_mut(survivor).absorb(other);
        self.merged_away.push(absorbed);
        self.counters.merges += 1;
        self.report.merged_profiles += 1;
        Ok(())
    }

    /// Whether the plan changes anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.staged.is_empty() && self.deltas.is_empty()
    }

    /// Ends resolution: the batch's result, to prepare and commit, and the overlay the
    /// next batch resolves against (sharing the profiles, so nothing is copied).
    pub(crate) fn resolve(mut self) -> (ResolvedBatch, Overlay) {
        let mut overlay = Overlay::default();
        let rewritten: roaring::RoaringBitmap = self.staged.keys().copied().collect();
        let changed = &rewritten | &self.deltas.keys().copied().collect();
        // Every chunk stored for a rewritten profile is counted in it by now: those of
        // earlier batches were counted when it was read, and this batch's went through
        // the staged profile. (A sequence is issued only to this batch's records.)
        let folded = self.counters.next_seq.saturating_sub(1);
        let mut events_only: Vec<(ProfileId, crate::input::record::ShortText)> = Vec::new();
        for (pid, deltas) in &self.deltas {
            let mut sources: Vec<&crate::input::record::ShortText> =
                deltas.iter().map(|d| &d.source).collect();
            sources.sort_unstable();
            sources.dedup();
            events_only.extend(sources.into_iter().map(|s| (*pid, s.clone())));
        }
        overlay.deltas = std::mem::take(&mut self.deltas);
        let staged = std::mem::take(&mut self.staged)
            .into_iter()
            .map(|(pid, staged)| {
                // Postings here: the resolver has time to spare while the committer
                // seals and writes the previous batch.
                let after = staged.profile.as_ref().map(Postings::of);
                let profile = staged.profile.map(Arc::new);
                let slot = match (&profile, staged.redirect) {
                    (Some(profile), _) => OverlaySlot::Live(Arc::clone(profile)),
                    (None, Some(into)) => OverlaySlot::Merged(into),
                    (None, None) => OverlaySlot::Gone,
                };
                overlay.slots.insert(pid, slot);
                let resolved = Resolved {
                    profile,
                    before: staged.before,
                    after,
                    redirect: staged.redirect,
                };
                (pid, resolved)
            })
            .collect();
        let links = self.link_ops;
        overlay.links = self.links;
        // What the batch before left: its last references to profiles die with it, which
        // is worth doing off the resolver's thread (`ResolvedBatch::prepare` drops it).
        let retired = std::mem::take(&mut self.previous);
        let batch_number = self.counters.batches;
        self.counters.batches += 1;
        self.report.batches = 1;
        let resolved = ResolvedBatch {
            staged,
            changed,
            rewritten,
            folded,
            events_only,
            batch_number,
            track_forms: self.stored_links.track_forms,
            new_pids: self.new_pids,
            new_events: self.new_events,
            new_log: self.new_log,
            event_ops: self.event_ops,
            links,
            merged_away: self.merged_away,
            counters: self.counters,
            report: self.report,
            retired,
        };
        (resolved, overlay)
    }
}

/// Removes and returns the entries of `pid` (keyed by sequence) from a batch-pending map,
/// in time proportional to their number (a merge must not cost work proportional to the
/// whole batch).
fn take_profile_entries<T>(
    map: &mut BTreeMap<(ProfileId, u64), T>,
    pid: ProfileId,
) -> Vec<(u64, T)> {
    let keys: Vec<(ProfileId, u64)> = map
        .range((pid, 0)..=(pid, u64::MAX))
        .map(|(key, _)| *key)
        .collect();
    keys.into_iter()
        .filter_map(|key| Some((key.1, map.remove(&key)?)))
        .collect()
}
