//! The engine handle: opening and recovery, batch ingest, lookups, statistics, the
//! integrity check and index checkpoints.

mod audit;
mod catalog;
mod export;
mod forget;
mod import;
mod ingest;
mod lists;
pub(crate) mod models;
mod objections;
mod sync;

use crate::base::error::{Error, IngestError, OpenError, StorageError};
use crate::base::kind::IdentifierKind;
use crate::identity::Links;
use crate::index::{read_checkpoint, write_checkpoint, IndexSizes, Indexes, Postings};
use crate::input::config::Config;
use crate::input::normalize;
use crate::input::record::{parse_json_record, Identifier};
use crate::input::report::IngestReport;
use crate::model::{decode_model, Models, MODEL_PREFIX};
use crate::storage::profile::{Profile, ProfileId};
use crate::storage::{CompactReport, EventChunk, MergeLogEntry, Store};
use crate::write::state::{Published, Snapshot, State, WriterState};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::{Mutex, RwLock};

/// An embedded cidb database. `Send + Sync`: share it behind an `Arc`; queries run
/// concurrently with one writer and always see whole batches.
pub struct Engine {
    pub(crate) store: Store,
    config: Config,
    /// Packed rows of exported profiles (see `export::cache`).
    pub(crate) export_cache: crate::export::RowCache,
    /// Destinations with a sync operation running (see `export::sync`).
    pub(crate) destination_locks: crate::export::DestinationLocks,
    /// When expired idempotency keys were last removed (ms; see `ingest`).
    pub(crate) idempotency_pruned_at: std::sync::atomic::AtomicI64,
    /// Set by [`Engine::close_quickly`]: drop flushes without a checkpoint.
    skip_checkpoint_on_close: std::sync::atomic::AtomicBool,
    pub(crate) state: RwLock<State>,
    pub(crate) writer: Mutex<WriterState>,
    /// Figures published by the writer for readers that must never wait on a lock
    /// (metrics, health): updated after each commit, erasure and checkpoint.
    pub(crate) published: Published,
}

/// How to find a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// By email (normalized like ingest).
    Email(String),
    /// By phone (normalized with the default region).
    Phone(String),
    /// By any identifier type and value.
    Identifier(String, String),
    /// By profile id (merged ids redirect).
    Id(ProfileId),
}

/// A profile with everything stored about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileView {
    /// The unified profile (with per-value provenance).
    pub profile: Profile,
    /// Its events, one chunk per record, with provenance.
    pub events: Vec<EventChunk>,
    /// Merges into it.
    pub merges: Vec<MergeLogEntry>,
}

/// Database statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Live profiles.
    pub profiles: u64,
    /// Profile ids issued (live, merged and erased).
    pub profile_ids: u64,
    /// Records ingested.
    pub records: u64,
    /// Merges performed.
    pub merges: u64,
    /// Events ingested.
    pub events: u64,
    /// Index sizes.
    pub indexes: IndexSizes,
    /// Identifier links (distinct identifiers held by live profiles).
    pub identifier_links: u64,
    /// Profiles changed since the last index checkpoint.
    pub dirty_profiles: u64,
    /// sled's size on disk in bytes.
    pub disk_bytes: u64,
}

/// The result of [`Engine::check`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Live profiles read.
    pub profiles: u64,
    /// Events read.
    pub events: u64,
    /// Every difference found (empty when the database is consistent).
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Whether nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Engine {
    /// Opens (or creates) the database in `path` with the default configuration.
    pub fn open(path: impl AsRef<Path>) -> Result<Engine, OpenError> {
        Engine::open_with(path, Config::default())
    }

    /// Opens (or creates) the database in `path`.
    pub fn open_with(path: impl AsRef<Path>, config: Config) -> Result<Engine, OpenError> {
        let (store, counters) = Store::open(path.as_ref())?;
        let dirty = store.dirty()?;
        let mut rebuilt = false;
        let (indexes, links) = match read_checkpoint(store.dir())? {
            Some((_, mut indexes, mut links)) => {
                if !dirty.is_empty() {
                    tracing::info!(
                        profiles = dirty.len(),
                        "replaying profiles changed since the index checkpoint"
                    );
                    indexes.remove_profiles(&dirty);
                    links.remove_profiles(&dirty);
                    for pid in &dirty {
                        index_stored_profile(&store, &mut indexes, &mut links, pid)?;
                    }
                }
                (indexes, links)
            }
            None if counters.next_pid == 0 => (Indexes::default(), Links::default()),
            None => {
                tracing::warn!("no index checkpoint: rebuilding indexes from stored profiles");
                rebuilt = true;
                let rebuilt = rebuild(&store)?;
                (rebuilt.indexes, rebuilt.links)
            }
        };
        // A crash between a commit and the key destruction that follows a merge or an
        // erasure leaves keys of profiles that are gone (a scan of the key file in memory).
        // Only slots that are really not live: a key is never destroyed on the word of
        // the indexes alone.
        let mut gone = store.keys_of_dead_profiles(counters.next_pid, indexes.live());
        gone.retain(|pid| !matches!(store.slot(*pid), Ok(Some(crate::storage::Slot::Live(_)))));
        if !gone.is_empty() {
            tracing::warn!(profiles = gone.len(), "destroying keys a crash left behind");
            store.destroy_keys(&gone)?;
        }
        let suppression = crate::privacy::lists::load_lists(&store, &links)?;
        let models = load_models(&store, &indexes)?;
        let published = Published::default();
        published.set(indexes.live().len(), dirty.len());
        let engine = Engine {
            published,
            store,
            export_cache: crate::export::RowCache::new(config.export_cache),
            destination_locks: Default::default(),
            idempotency_pruned_at: Default::default(),
            skip_checkpoint_on_close: Default::default(),
            config,
            state: RwLock::new(State {
                generation: 0,
                suppression,
                models,
                indexes,
                links,
                counters: counters.clone(),
            }),
            writer: Mutex::new(WriterState { counters, dirty }),
        };
        if rebuilt {
            // Checkpoint now, so that the next open does not rebuild again.
            engine.checkpoint()?;
        }
        engine.finish_interrupted_erasures()?;
        engine.prune_idempotency()?;
        Ok(engine)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A consistent read view of the indexes.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            guard: self.state.read().expect("state lock"),
        }
    }

    /// Ingests JSON records (one JSON object per string) as one atomic batch. A bad
    /// record is reported with its 1-based position and does not stop the others.
    pub fn ingest_json<S: AsRef<str>>(&self, records: &[S]) -> Result<IngestReport, IngestError> {
        self.ingest_parsed(self.parse_json_batch(records))
    }

    /// Parses JSON records for one batch, numbered from 1, with their link keys.
    pub(crate) fn parse_json_batch<S: AsRef<str>>(
        &self,
        records: &[S],
    ) -> crate::write::ingest::ParsedBatch {
        let now = crate::base::time::now_millis();
        records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut parsed = parse_json_record(r.as_ref(), &self.config, now);
                if let Ok(p) = &mut parsed {
                    self.store.fill_link_keys(p);
                }
                (i as u64 + 1, parsed)
            })
            .collect()
    }

    /// Writes an index checkpoint now (done automatically as profiles change and on drop).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let mut w = self.writer.lock().expect("writer lock");
        self.checkpoint_locked(&mut w)
    }

    pub(crate) fn checkpoint_locked(&self, w: &mut WriterState) -> Result<(), StorageError> {
        {
            let state = self.state.read().expect("state lock");
            write_checkpoint(
                self.store.dir(),
                w.counters.checkpoint_generation + 1,
                &state.indexes,
                &state.links,
            )?;
        }
        w.counters.checkpoint_generation += 1;
        self.store.clear_dirty()?;
        self.store.store_uncounted()?;
        self.store.flush()?;
        w.dirty.clear();
        self.published.dirty.store(0, Ordering::Release);
        Ok(())
    }

    /// Publishes the live and dirty counts for lock-free readers (writer lock held).
    pub(crate) fn publish_counts(&self, w: &WriterState) {
        let live = self.state.read().expect("state lock").indexes.live().len();
        self.published.set(live, w.dirty.len());
    }

    /// Finds a profile.
    pub fn lookup(&self, how: &Lookup) -> Result<Option<ProfileView>, Error> {
        let state = self.state.read().expect("state lock");
        let pid = match how {
            Lookup::Id(pid) => Some(*pid),
            other => {
                let id = self.normalize_lookup(other)?;
                state.links.get(&self.store.identifier_key(&id))
            }
        };
        let Some(pid) = pid else { return Ok(None) };
        let Some(profile) = self.store.resolve(pid)? else {
            return Ok(None);
        };
        let events = self
            .store
            .events(profile.id)?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let merges = self.store.merge_log(profile.id)?;
        Ok(Some(ProfileView {
            profile,
            events,
            merges,
        }))
    }

    pub(crate) fn normalize_lookup(&self, how: &Lookup) -> Result<Identifier, Error> {
        let bad = |what: &str, p: normalize::IdentifierProblem| {
            Error::InvalidArgument(format!("{what}: {p}"))
        };
        Ok(match how {
            Lookup::Email(e) => Identifier::of_kind(
                IdentifierKind::Email,
                normalize::email(e).map_err(|p| bad("email", p))?,
            ),
            Lookup::Phone(p) => Identifier::of_kind(
                IdentifierKind::Phone,
                normalize::phone(p, self.config.default_region.as_deref())
                    .map_err(|e| bad("phone", e))?,
            ),
            Lookup::Identifier(kind, value) => {
                let value =
                    normalize::identifier(kind, value, self.config.default_region.as_deref())
                        .map_err(|p| bad(kind, p))?;
                Identifier {
                    kind: kind.as_str().into(),
                    value,
                }
            }
            Lookup::Id(_) => unreachable!("handled by the caller"),
        })
    }

    /// The generation of the state readers see now ([`Snapshot::generation`]); never waits
    /// for a lock. Every change a reader can see (ingest, erasure, suppression lists,
    /// models, saved segments) moves it on before its call returns, so an answer cached
    /// against the value read here before the change is never served after it.
    pub fn generation(&self) -> u64 {
        self.published.generation.load(Ordering::Acquire)
    }

    /// Moves the generation on (call with the state's write lock, after changing the
    /// state) and publishes it for [`Engine::generation`].
    pub(crate) fn bump_generation(&self, state: &mut State) {
        state.generation += 1;
        self.published
            .generation
            .store(state.generation, Ordering::Release);
    }

    /// Live profiles, as of the last commit; never waits for a lock (for metrics and
    /// health checks).
    pub fn profile_count(&self) -> u64 {
        self.published.profiles.load(Ordering::Acquire)
    }

    /// Statistics. Takes only the state's read lock (never the writer's), so it waits at
    /// most for one commit to publish its batch.
    pub fn stats(&self) -> Stats {
        let state = self.state.read().expect("state lock");
        let dirty = self.published.dirty.load(Ordering::Acquire);
        Stats {
            profiles: state.indexes.live().len(),
            profile_ids: u64::from(state.counters.next_pid),
            records: state.counters.records,
            merges: state.counters.merges,
            events: state.counters.events,
            indexes: state.indexes.sizes(),
            identifier_links: state.links.len() as u64,
            dirty_profiles: dirty,
            disk_bytes: self.store.size_on_disk(),
        }
    }

    /// Rebuilds every index from the stored profiles and compares it with the live
    /// indexes; also checks that every identifier of every live profile links to it.
    pub fn check(&self) -> Result<CheckReport, StorageError> {
        let _w = self.writer.lock().expect("writer lock");
        let state = self.state.read().expect("state lock");
        let mut rebuilt = rebuild(&self.store)?;
        rebuilt
            .problems
            .extend(state.indexes.differences(&rebuilt.indexes));
        rebuilt
            .problems
            .extend(state.links.differences(&rebuilt.links));
        rebuilt.problems.extend(self.store.verify_records()?);
        rebuilt
            .problems
            .extend(self.store.verify_journal(rebuilt.indexes.live())?);
        rebuilt
            .problems
            .extend(state.models.differences(&rebuilt.indexes));
        let unfinished = self.store.erasure_intents()?;
        if let Some((first, _)) = unfinished.first() {
            rebuilt.problems.push(format!(
                "{} erasure(s) not finished (first: profile {first}); retried on the next open",
                unfinished.len()
            ));
        }
        let keyed = self
            .store
            .keys_of_dead_profiles(state.counters.next_pid, rebuilt.indexes.live());
        if !keyed.is_empty() {
            rebuilt.problems.push(format!(
                "{} merged or erased profile(s) still have a key (first: {})",
                keyed.len(),
                keyed[0]
            ));
        }
        Ok(CheckReport {
            profiles: rebuilt.profiles,
            events: rebuilt.events,
            problems: rebuilt.problems,
        })
    }

    /// Checkpoints the indexes and flushes; called on drop too.
    pub fn close(self) -> Result<(), StorageError> {
        self.flush_on_close()
    }

    /// Closes after a long write session (a large import) so that the next open is quick:
    /// checkpoints, closes, then opens and closes the storage once more, which makes sled
    /// write the snapshot it otherwise writes at the next open, after replaying its whole
    /// log (about a second for a 1M-person import). That last step only saves time: if it
    /// fails (another process opened the directory meanwhile), it is logged and the next
    /// open replays the log as before.
    pub fn close_for_fast_open(self) -> Result<(), StorageError> {
        let dir = self.store.dir().to_path_buf();
        let started = std::time::Instant::now();
        self.flush_on_close()?;
        drop(self);
        let closed_ms = started.elapsed().as_millis() as u64;
        if let Err(e) = crate::storage::write_sled_snapshot(&dir) {
            tracing::warn!(error = %e, "storage snapshot after closing not written; the next open replays the log");
        }
        let snapshot_ms = started.elapsed().as_millis() as u64 - closed_ms;
        tracing::debug!(closed_ms, snapshot_ms, "closed for a fast open");
        Ok(())
    }

    /// Closes the database (as [`Engine::close`]) and compacts its storage
    /// ([`Engine::compact`]): for the end of a bulk load.
    pub fn close_and_compact(self) -> Result<CompactReport, OpenError> {
        let dir = self.store.dir().to_path_buf();
        self.flush_on_close()?;
        drop(self);
        Engine::compact(&dir)
    }

    /// Rewrites the storage of the closed database in `path` with only its live data
    /// (sled keeps old versions of rewritten values until their segment is half empty, so
    /// a heavily written database holds about twice its data). Values are copied sealed,
    /// the swap survives a crash at any point, and nothing a reader sees changes. Fails
    /// with [`OpenError::Locked`] while the database is open elsewhere.
    pub fn compact(path: impl AsRef<Path>) -> Result<CompactReport, OpenError> {
        let report = crate::storage::compact(path.as_ref())?;
        tracing::info!(
            keys = report.keys,
            before = report.bytes_before,
            after = report.bytes_after,
            "storage compacted"
        );
        Ok(report)
    }

    /// Flushes without writing an index checkpoint: quick whatever the database's size
    /// (for a process that must stop now). Nothing is lost: the next open replays the
    /// profiles changed since the last checkpoint, as after a crash.
    pub fn close_quickly(self) -> Result<(), StorageError> {
        self.skip_checkpoint_on_close.store(true, Ordering::Release);
        self.store.flush()
    }

    fn flush_on_close(&self) -> Result<(), StorageError> {
        if self.skip_checkpoint_on_close.load(Ordering::Acquire) {
            return self.store.flush();
        }
        let mut w = self.writer.lock().expect("writer lock");
        if !w.dirty.is_empty() {
            self.checkpoint_locked(&mut w)?;
        }
        self.store.flush()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.flush_on_close() {
            tracing::error!(error = %e, "checkpoint on close failed; the next open replays changes");
        }
    }
}

/// Indexes one stored profile (if live), its events and its identifier links.
fn index_stored_profile(
    store: &Store,
    indexes: &mut Indexes,
    links: &mut Links,
    pid: ProfileId,
) -> Result<(), StorageError> {
    if let Some(crate::storage::Slot::Live(profile)) = store.slot(pid)? {
        indexes.update(pid, None, Some(&Postings::of(&profile)));
        for sid in &profile.identifiers {
            for key in store.link_keys(&sid.id) {
                links.insert(key, pid);
            }
        }
        for (_, chunk) in store.events(pid)? {
            indexes.add_events(pid, &chunk.events);
        }
    }
    Ok(())
}

/// Indexes and links rebuilt from the stored profiles.
struct Rebuilt {
    indexes: Indexes,
    links: Links,
    profiles: u64,
    events: u64,
    /// Inconsistencies found in the stored data itself.
    problems: Vec<String>,
}

/// Builds indexes and links from scratch from the stored profiles; also checks that no
/// identifier is held by two live profiles and that event counts match.
fn rebuild(store: &Store) -> Result<Rebuilt, StorageError> {
    let mut out = Rebuilt {
        indexes: Indexes::default(),
        links: Links::default(),
        profiles: 0,
        events: 0,
        problems: Vec::new(),
    };
    for profile in store.live_profiles() {
        let profile = profile?;
        out.profiles += 1;
        out.indexes
            .update(profile.id, None, Some(&Postings::of(&profile)));
        let mut held = 0u64;
        for (_, chunk) in store.events(profile.id)? {
            held += chunk.events.len() as u64;
            out.indexes.add_events(profile.id, &chunk.events);
        }
        out.events += held;
        if held != profile.events {
            out.problems.push(format!(
                "profile {}: holds {held} events, counts {}",
                profile.id, profile.events
            ));
        }
        for sid in &profile.identifiers {
            for (form, key) in store.link_keys(&sid.id).into_iter().enumerate() {
                // Only the canonical form is an identity; alias forms (a Gmail address
                // without dots, a phone's digits) may be shared by several profiles.
                if form == 0 {
                    if let Some(other) = out.links.get(&key) {
                        out.problems.push(format!(
                            "profiles {other} and {}: both hold one {} identifier",
                            profile.id, sid.id.kind
                        ));
                    }
                }
                out.links.insert(key, profile.id);
            }
        }
    }
    Ok(out)
}

/// Loads every model of the catalog and scores the live profiles.
fn load_models(store: &Store, indexes: &Indexes) -> Result<Models, StorageError> {
    let mut models = Models::default();
    for (name, bytes) in store.catalog_list()? {
        if name.starts_with(MODEL_PREFIX) {
            let key = [&[b'C'][..], name.as_bytes()].concat();
            models.install(Arc::new(decode_model(&key, &bytes)?), indexes);
        }
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(n: usize, source: &str, events_only: bool) -> Vec<String> {
        (0..n)
            .map(|i| {
                let mut record = serde_json::json!({
                    "source": source,
                    "observed_at": format!("2026-0{}-01T00:00:00Z", 1 + i % 5),
                    "identifiers": { "email": format!("p{i}@x.com") },
                    "events": [{ "type": "page_view", "at": "2026-03-01T00:00:00Z" }],
                });
                if !events_only {
                    record["identifiers"]["crm_id"] = format!("C{i}").into();
                    record["attributes"] = serde_json::json!({ "city": "Gent" });
                }
                record.to_string()
            })
            .collect()
    }

    /// Without identifier limits, so that one record can merge two people by e-mail.
    fn config() -> Config {
        let mut rules = crate::input::rules::IdentityRules::default();
        rules.limits.clear();
        // Batches of two or more events-only records write to the event journal.
        Config::default()
            .with_identity_rules(rules)
            .with_journal_min_chunks(2)
    }

    /// What happens to a database after its first batches: events-only records (stored
    /// without rewriting profiles), a full record, a merge of two people who got such
    /// records, an erasure of another.
    /// Two data directories written alike by `write` (one to be downgraded to an older
    /// format, one left as this build wrote it).
    fn twin_directories(write: impl Fn(&Engine)) -> (tempfile::TempDir, tempfile::TempDir) {
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for dir in [old.path(), new.path()] {
            let db = Engine::open_with(dir, config()).unwrap();
            write(&db);
            db.close().unwrap();
        }
        (old, new)
    }

    fn later_life(dir: &Path) -> Engine {
        let db = Engine::open_with(dir, config()).unwrap();
        db.ingest_json(&people(6, "web", true)).unwrap();
        db.ingest_json(&people(4, "app", true)[2..]).unwrap();
        let full = serde_json::json!({
            "source": "crm", "observed_at": "2026-06-01T00:00:00Z",
            "identifiers": { "email": "p1@x.com" },
            "attributes": { "city": "Delft" },
        });
        let bridge = serde_json::json!({
            "source": "shop", "observed_at": "2026-06-02T00:00:00Z",
            "identifiers": { "email": ["p2@x.com", "p3@x.com"] },
            "events": [{ "type": "purchase", "at": "2026-05-01T00:00:00Z", "value": 5 }],
        });
        db.ingest_json(&[full.to_string(), bridge.to_string()])
            .unwrap();
        db.forget(
            &Lookup::Email("p4@x.com".into()),
            &crate::privacy::forget::ForgetOptions::default(),
        )
        .unwrap();
        db
    }

    /// Both databases are sound (`check` clean) and hold the same people alike.
    fn assert_same(old_db: &Engine, new_db: &Engine) {
        for db in [old_db, new_db] {
            let report = db.check().unwrap();
            assert!(report.is_clean(), "{:#?}", report.problems);
        }
        for i in 0..6 {
            let how = Lookup::Email(format!("p{i}@x.com"));
            assert_eq!(
                old_db.lookup(&how).unwrap(),
                new_db.lookup(&how).unwrap(),
                "p{i}"
            );
        }
    }

    /// A database written by a format-6 build (slots with tag `0x01`) is upgraded on open
    /// and then lives on exactly as one written by this build: the same profiles, counts
    /// and events, and `check` clean.
    #[test]
    fn a_format_6_database_lives_on_as_a_new_one() {
        let (old, new) = twin_directories(|db| {
            db.ingest_json(&people(6, "crm", false)).unwrap();
        });
        crate::storage::downgrade_to_format_6(old.path());
        let (old_db, new_db) = (later_life(old.path()), later_life(new.path()));
        assert_same(&old_db, &new_db);
        for i in 0..6 {
            let a = old_db
                .lookup(&Lookup::Email(format!("p{i}@x.com")))
                .unwrap();
            if i == 4 {
                assert!(a.is_none(), "p4 was erased");
                continue;
            }
            let view = a.unwrap();
            let events: usize = view.events.iter().map(|c| c.events.len()).sum();
            assert_eq!(view.profile.events, events as u64, "p{i}");
            assert_eq!(
                view.profile.records,
                view.events.len() as u64 + u64::from(i == 1),
                "p{i}"
            );
        }
        let merged = old_db
            .lookup(&Lookup::Email("p2@x.com".into()))
            .unwrap()
            .unwrap();
        let sources: Vec<&str> = merged.profile.sources.keys().map(|s| s.as_str()).collect();
        assert_eq!(sources, ["app", "crm", "shop", "web"]);
        assert_eq!(merged.profile.sources["web"].records, 2);
        assert_eq!(merged.profile.records, 7);
    }

    /// A format-8 database (events-only chunks under their own `E` keys, no journal)
    /// reads the same after the upgrade to format 9 as one written with the journal,
    /// and lives on the same: later chunks go to the journal, merges and erasures take
    /// chunks from both places.
    #[test]
    fn a_format_8_database_reads_its_chunks_and_lives_on() {
        let journaled = |dir: &Path| {
            let (store, _) = crate::storage::Store::open(dir).unwrap();
            (0..6).filter(|pid| store.journal_batches(*pid) > 0).count()
        };
        let p0 = upgraded_with_uncounted_chunks(|old| {
            assert!(journaled(old) > 0, "events-only chunks are journaled");
            crate::storage::downgrade_to_format_8(old);
            assert_eq!(journaled(old), 0);
        });
        assert_eq!((p0.profile.records, p0.profile.events), (3, 3));
    }

    /// Writes twin databases whose profiles have chunks their slots do not count,
    /// downgrades one with `downgrade`, and checks that both read alike after the
    /// upgrade and live on alike; returns p0 as the upgraded one holds it.
    fn upgraded_with_uncounted_chunks(downgrade: impl Fn(&Path)) -> ProfileView {
        let (old, new) = twin_directories(|db| {
            db.ingest_json(&people(6, "crm", false)).unwrap();
            db.ingest_json(&people(5, "web", true)[1..]).unwrap();
            db.ingest_json(&people(3, "app", true)).unwrap();
        });
        downgrade(old.path());
        {
            let old_db = Engine::open_with(old.path(), config()).unwrap();
            let new_db = Engine::open_with(new.path(), config()).unwrap();
            assert_same(&old_db, &new_db);
        }
        let (old_db, new_db) = (later_life(old.path()), later_life(new.path()));
        assert_same(&old_db, &new_db);
        old_db
            .lookup(&Lookup::Email("p0@x.com".into()))
            .unwrap()
            .unwrap()
    }

    /// An erasure takes the person's entries out of the journal's blocks, not only out
    /// of its sets: no block header names the profile afterwards.
    #[test]
    fn an_erasure_leaves_no_journal_entry_of_the_person() {
        let dir = tempfile::tempdir().unwrap();
        let db = Engine::open_with(dir.path(), config()).unwrap();
        db.ingest_json(&people(6, "crm", false)).unwrap();
        db.ingest_json(&people(6, "web", true)).unwrap();
        db.ingest_json(&people(6, "app", true)[2..]).unwrap();
        let pid = |email: &str| {
            db.lookup(&Lookup::Email(email.into()))
                .unwrap()
                .unwrap()
                .profile
                .id
        };
        let (p3, p1) = (pid("p3@x.com"), pid("p1@x.com"));
        assert!(db.store.journal_entry_pids().contains(p3));
        for email in ["p3@x.com", "p0@x.com", "p1@x.com"] {
            db.forget(
                &Lookup::Email(email.into()),
                &crate::privacy::forget::ForgetOptions::default(),
            )
            .unwrap();
        }
        let left = db.store.journal_entry_pids();
        assert!(!left.contains(p3) && !left.contains(p1), "{left:?}");
        assert_eq!(left.len(), 3, "p2, p4 and p5 keep theirs");
        let report = db.check().unwrap();
        assert!(report.is_clean(), "{:#?}", report.problems);
        assert_eq!(
            db.lookup(&Lookup::Email("p4@x.com".into()))
                .unwrap()
                .unwrap()
                .profile
                .events,
            3
        );
    }

    /// A compaction writes the journal's live chunks under their own keys and leaves no
    /// journal behind (neither entries, garbage of a merge included, nor sets); every
    /// profile reads the same, and `check` is clean.
    #[test]
    fn a_compaction_empties_the_journal_and_every_profile_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Engine::open_with(dir.path(), config()).unwrap();
            db.ingest_json(&people(6, "crm", false)).unwrap();
            db.close().unwrap();
        }
        let db = later_life(dir.path());
        let views = |db: &Engine| -> Vec<Option<ProfileView>> {
            (0..6)
                .map(|i| db.lookup(&Lookup::Email(format!("p{i}@x.com"))).unwrap())
                .collect()
        };
        let before = views(&db);
        assert!(!db.store.journal_entry_pids().is_empty());
        db.close().unwrap();
        Engine::compact(dir.path()).unwrap();
        let db = Engine::open_with(dir.path(), config()).unwrap();
        assert!(db.store.journal_entry_pids().is_empty());
        assert!((0..8).all(|pid| db.store.journal_batches(pid) == 0));
        assert_eq!(views(&db), before);
        let report = db.check().unwrap();
        assert!(report.is_clean(), "{:#?}", report.problems);
    }

    /// A format-7 database (written before the `U` sets existed) whose profiles have
    /// chunks their slots do not count reads the same after the upgrade to format 8 as
    /// one that always had the sets, and lives on the same.
    #[test]
    fn a_format_7_database_finds_its_uncounted_chunks() {
        let p0 = upgraded_with_uncounted_chunks(crate::storage::downgrade_to_format_7);
        let sources: Vec<&str> = p0.profile.sources.keys().map(|s| s.as_str()).collect();
        assert_eq!(sources, ["app", "crm", "web"]);
        assert_eq!((p0.profile.records, p0.profile.events), (3, 3));
    }
}
