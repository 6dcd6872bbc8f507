//! Durable storage: the only module that talks to sled. One sled tree with prefixed keys
//! (`keys`), personal data sealed with per-profile keys from the key file (`keyfile`,
//! `crypto`). A write batch is applied with one atomic `apply_batch`.

pub(crate) mod atomic_file;
pub(crate) mod codec;
mod crypto;
mod keyfile;
mod keys;
pub(crate) mod migrate;
pub(crate) mod profile;
pub(crate) mod records;

use crate::base::digest::LinkKey;
use crate::base::error::{OpenError, StorageError};
use crate::base::time::Millis;
use crate::input::record::{Event, Identifier};
use crate::storage::profile::{Profile, ProfileId};
use codec::{FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT};
use keyfile::KeyFile;
use records::{AuditRecord, ObjectionRecord, StoredRecord};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Durable counters, written with every batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Next profile id to issue.
    pub next_pid: u32,
    /// Next ingest sequence number.
    pub next_seq: u64,
    /// Records ingested.
    pub records: u64,
    /// Merges performed.
    pub merges: u64,
    /// Events ingested.
    pub events: u64,
    /// Generation of the last index checkpoint.
    pub checkpoint_generation: u64,
    /// Batches committed.
    pub batches: u64,
}

/// One record's events as stored, with their provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventChunk {
    /// The record's source.
    pub source: crate::input::record::ShortText,
    /// The record's `observed_at`.
    pub observed_at: Millis,
    /// The events.
    pub events: Vec<Event>,
}

/// One merge, as the merge log keeps it under the surviving profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeLogEntry {
    /// The profile that remained.
    pub survivor: ProfileId,
    /// The profile merged into it.
    pub absorbed: ProfileId,
    /// The identifier of the record that linked them.
    pub linked_by: Identifier,
    /// The record's source.
    pub source: String,
    /// The record's `observed_at`.
    pub observed_at: Millis,
    /// The record's ingest sequence number.
    pub seq: u64,
}

/// A profile slot as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// A live profile.
    Live(Profile),
    /// Merged into another profile.
    Merged(ProfileId),
}

/// The storage handle.
pub(crate) struct Store {
    dir: PathBuf,
    db: sled::Db,
    keys: RwLock<KeyFile>,
    /// Keyed hash of identifier forms (the key file's secret, which never changes).
    identifier_hasher: crypto::IdentifierHasher,
    /// Serializes audit appends (sequence numbers) and erasures of audit bitmaps; holds
    /// the profiles erased since open, which an export's bitmap appended after their
    /// erasure must not include.
    audit_lock: std::sync::Mutex<RoaringBitmap>,
}

/// Writes to apply atomically.
#[derive(Default)]
pub(crate) struct WriteBatch {
    batch: sled::Batch,
    issued_keys: bool,
}

impl WriteBatch {
    /// Writes the counters (added at commit, which knows the checkpoint generation).
    pub(crate) fn put_counters(&mut self, counters: &Counters) {
        self.batch
            .insert(keys::meta("counters"), codec::encode(counters));
    }

    /// Records, in the batch itself, that an import has applied its input up to `line`.
    pub(crate) fn put_import_progress(&mut self, import: &ImportKey, line: u64) {
        self.batch
            .insert(import_progress_key(import), &line.to_le_bytes()[..]);
    }
}

impl WriteBatch {
    /// Records, in the batch itself, the answer to an idempotent ingest.
    pub(crate) fn put_idempotency(&mut self, key: &[u8; 32], entry: &IdempotencyEntry) {
        self.batch.insert(idempotency_key(key), entry.encode());
    }
}

/// What an idempotent ingest left: when, the digest of the request, and its answer.
///
/// Stored as `at` (i64 LE), `request` (32 bytes), then the report as JSON: the report is
/// a public type that gains fields, and JSON (with serde defaults) reads entries written
/// before or after such a change, where a fixed binary layout would not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdempotencyEntry {
    pub(crate) at: crate::base::time::Millis,
    pub(crate) request: [u8; 32],
    pub(crate) report: crate::input::report::IngestReport,
}

impl IdempotencyEntry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.request);
        serde_json::to_writer(&mut out, &self.report).expect("serializing to a Vec");
        out
    }

    /// When it was written, from the fixed prefix alone.
    fn written_at(bytes: &[u8]) -> Option<crate::base::time::Millis> {
        Some(i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
    }

    /// The entry, or `None` if it cannot be read (then it answers nothing).
    fn decode(bytes: &[u8]) -> Option<IdempotencyEntry> {
        Some(IdempotencyEntry {
            at: Self::written_at(bytes)?,
            request: bytes.get(8..40)?.try_into().ok()?,
            report: serde_json::from_slice(bytes.get(40..)?).ok()?,
        })
    }
}

/// The sled key of `pid`'s erasure intent (names the intent in errors).
pub(crate) fn erasure_key(pid: ProfileId) -> [u8; 5] {
    keys::prefixed_pid(keys::ERASURE, pid)
}

fn idempotency_key(key: &[u8; 32]) -> Vec<u8> {
    let mut k = keys::meta("idem/");
    k.extend_from_slice(key);
    k
}

/// Identifies one import input (see `import::ImportOptions::resumable`).
pub(crate) type ImportKey = [u8; 32];

fn import_progress_key(import: &ImportKey) -> Vec<u8> {
    let mut name = String::from("import/");
    for b in import {
        name.push_str(&format!("{b:02x}"));
    }
    keys::meta(&name)
}

impl Store {
    /// Opens (or creates) the store in `dir`; returns it with its counters.
    pub(crate) fn open(dir: &Path) -> Result<(Store, Counters), OpenError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let db = open_sled(dir)?;
        let format_key = keys::meta("format");
        match db.get(&format_key).map_err(StorageError::from)? {
            None => {
                db.insert(&format_key, &FORMAT_VERSION.to_le_bytes())
                    .map_err(StorageError::from)?;
                db.flush().map_err(StorageError::from)?;
            }
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_le_bytes)
                    .unwrap_or(u32::MAX);
                match found {
                    FORMAT_VERSION => {}
                    OLDEST_SUPPORTED_FORMAT..FORMAT_VERSION => migrate::upgrade(&db, found)?,
                    _ => {
                        return Err(OpenError::UnknownFormat {
                            path: dir.to_path_buf(),
                            found,
                            oldest: OLDEST_SUPPORTED_FORMAT,
                            current: FORMAT_VERSION,
                        })
                    }
                }
            }
        }
        let keys = KeyFile::open(dir)?;
        let counters = match db.get(keys::meta("counters")).map_err(StorageError::from)? {
            Some(v) => codec::decode("counters", &v)?,
            None => Counters::default(),
        };
        Ok((
            Store {
                dir: dir.to_path_buf(),
                db,
                identifier_hasher: crypto::IdentifierHasher::new(keys.secret()),
                keys: RwLock::new(keys),
                audit_lock: std::sync::Mutex::new(RoaringBitmap::new()),
            },
            counters,
        ))
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Seals `plain` with a key derived from the database secret for `purpose` (data that
    /// must stay out of plain text but is not tied to one profile's key).
    pub(crate) fn seal_with_secret(&self, purpose: &str, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let key = self.purpose_key(purpose);
        let mut out = Vec::with_capacity(plain.len() + 40);
        crypto::seal(&key, aad, plain, &mut out);
        out
    }

    /// Opens a value written by [`Store::seal_with_secret`].
    pub(crate) fn open_with_secret(
        &self,
        purpose: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, StorageError> {
        crypto::open("sealed value", &self.purpose_key(purpose), aad, sealed)
    }

    fn purpose_key(&self, purpose: &str) -> keyfile::Key {
        self.identifier_hasher.hash(purpose, &[0u8; 32])
    }

    /// The link key of an identifier's canonical form (what resolution matches on).
    pub(crate) fn identifier_key(&self, id: &Identifier) -> LinkKey {
        self.link_key(&id.kind, &crate::base::digest::sha256(&id.value))
    }

    /// Every link key of an identifier: the canonical one first, then its aliases (the
    /// other forms ad platforms hash, see `identity::forms`).
    pub(crate) fn link_keys(&self, id: &Identifier) -> Vec<LinkKey> {
        crate::input::normalize::forms::forms(id)
            .iter()
            .map(|(tag, digest)| self.link_key(tag, digest))
            .collect()
    }

    /// Computes a parsed record's link keys, unless a parser thread already did.
    pub(crate) fn fill_link_keys(&self, parsed: &mut crate::input::record::ParsedRecord) {
        if parsed.link_keys.len() != parsed.record.identifiers.len() {
            parsed.link_keys = parsed
                .record
                .identifiers
                .iter()
                .map(|id| self.link_keys(id))
                .collect();
        }
    }

    /// The link key of one identifier form: the keyed hash of its SHA-256 digest,
    /// truncated to 128 bits.
    pub(crate) fn link_key(&self, tag: &str, digest: &[u8; 32]) -> LinkKey {
        let hash = self.identifier_hasher.hash(tag, digest);
        hash[..16].try_into().expect("16 of 32 bytes")
    }

    /// Reads a profile slot.
    pub(crate) fn slot(&self, pid: ProfileId) -> Result<Option<Slot>, StorageError> {
        let key = keys::profile(pid);
        match self.db.get(key)? {
            Some(value) => self.decode_read_slot(pid, &value),
            None => Ok(None),
        }
    }

    /// Decodes a slot just read. An erasure or a merge destroys the profile's key only
    /// after its batch replaced the slot, so a live slot whose key is missing was read
    /// just before such a batch: the slot as it is now is the answer (absent or a
    /// redirect). Only a slot that still holds the same bytes without a key is corrupt.
    fn decode_read_slot(&self, pid: ProfileId, value: &[u8]) -> Result<Option<Slot>, StorageError> {
        match self.decode_slot(pid, value) {
            Ok(slot) => Ok(Some(slot)),
            Err(e) if self.keys.read().expect("key file lock").get(pid).is_none() => {
                match self.db.get(keys::profile(pid))? {
                    None => Ok(None),
                    Some(now) if now.as_ref() != value => self.decode_slot(pid, &now).map(Some),
                    Some(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The slots of `first..=last` that exist, in id order, read with one range scan
    /// (cheaper than one lookup each when most ids in the range are wanted).
    pub(crate) fn slots_in(
        &self,
        first: ProfileId,
        last: ProfileId,
    ) -> impl Iterator<Item = Result<(ProfileId, Slot), StorageError>> + '_ {
        self.db
            .range(keys::profile(first)..=keys::profile(last))
            .map(move |item| {
                let (k, v) = item?;
                let pid = keys::pid_of(&k).ok_or_else(|| StorageError::Corrupted {
                    what: "profile slot",
                    key: k.to_vec(),
                    detail: "short key".into(),
                })?;
                Ok(self.decode_read_slot(pid, &v)?.map(|slot| (pid, slot)))
            })
            .filter_map(Result::transpose)
    }

    fn decode_slot(&self, pid: ProfileId, value: &[u8]) -> Result<Slot, StorageError> {
        let key = keys::profile(pid);
        let corrupted = |detail: &str| StorageError::Corrupted {
            what: "profile slot",
            key: key.to_vec(),
            detail: detail.into(),
        };
        match value.first() {
            Some(&keys::SLOT_LIVE) => {
                let plain = self.open_sealed("profile", pid, &key, &value[1..])?;
                Ok(Slot::Live(codec::decode("profile", &plain)?))
            }
            Some(&keys::SLOT_MERGED) => {
                let into = value.get(1..5).ok_or_else(|| corrupted("short redirect"))?;
                Ok(Slot::Merged(u32::from_le_bytes(
                    into.try_into().expect("4 bytes"),
                )))
            }
            _ => Err(corrupted("unknown slot tag")),
        }
    }

    /// Follows redirects from `pid` to the live profile it ended in.
    pub(crate) fn resolve(&self, mut pid: ProfileId) -> Result<Option<Profile>, StorageError> {
        for _ in 0..64 {
            match self.slot(pid)? {
                Some(Slot::Live(p)) => return Ok(Some(p)),
                Some(Slot::Merged(into)) => pid = into,
                None => return Ok(None),
            }
        }
        Err(StorageError::Corrupted {
            what: "profile redirect chain",
            key: keys::profile(pid).to_vec(),
            detail: "longer than 64 hops".into(),
        })
    }

    fn open_sealed(
        &self,
        what: &'static str,
        pid: ProfileId,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, StorageError> {
        let keys = self.keys.read().expect("key file lock");
        let key = keys.get(pid).ok_or_else(|| StorageError::Corrupted {
            what,
            key: aad.to_vec(),
            detail: "the profile's key is missing".into(),
        })?;
        crypto::open(what, key, aad, sealed)
    }

    fn scan_sealed<T: serde::de::DeserializeOwned>(
        &self,
        tag: u8,
        pid: ProfileId,
        what: &'static str,
    ) -> Result<Vec<(u64, T)>, StorageError> {
        let prefix = keys::prefixed_pid(tag, pid);
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix) {
            let (k, v) = item?;
            let plain = self.open_sealed(what, pid, &k, &v)?;
            out.push((keys::seq_of(&k).unwrap_or(0), codec::decode(what, &plain)?));
        }
        Ok(out)
    }

    /// The event chunks of a profile, keyed by ingest sequence.
    pub(crate) fn events(&self, pid: ProfileId) -> Result<Vec<(u64, EventChunk)>, StorageError> {
        self.scan_sealed(keys::EVENTS, pid, "event chunk")
    }

    /// The merge log of a profile.
    pub(crate) fn merge_log(&self, pid: ProfileId) -> Result<Vec<MergeLogEntry>, StorageError> {
        Ok(self
            .scan_sealed(keys::MERGE_LOG, pid, "merge log entry")?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// Every live profile, in id order.
    pub(crate) fn live_profiles(&self) -> impl Iterator<Item = Result<Profile, StorageError>> + '_ {
        self.db
            .scan_prefix([keys::PROFILE])
            .filter_map(move |item| {
                let (k, _) = match item {
                    Ok(kv) => kv,
                    Err(e) => return Some(Err(e.into())),
                };
                let pid = keys::pid_of(&k)?;
                match self.slot(pid) {
                    Ok(Some(Slot::Live(p))) => Some(Ok(p)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                }
            })
    }

    /// Profiles changed since the last index checkpoint.
    pub(crate) fn dirty(&self) -> Result<RoaringBitmap, StorageError> {
        let mut out = RoaringBitmap::new();
        for item in self.db.scan_prefix([keys::DIRTY]) {
            let (k, v) = item?;
            out |= stored_bitmap("dirty set", &k, &v)?;
        }
        Ok(out)
    }

    /// Forgets the dirty sets (after a checkpoint covering them).
    pub(crate) fn clear_dirty(&self) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.db.scan_prefix([keys::DIRTY]) {
            batch.remove(item?.0);
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// Reads a catalog entry.
    pub(crate) fn catalog_get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(keys::catalog(name))?.map(|v| v.to_vec()))
    }

    /// Writes (or with `None` removes) a catalog entry durably.
    pub(crate) fn catalog_put(&self, name: &str, value: Option<&[u8]>) -> Result<(), StorageError> {
        match value {
            Some(v) => self.db.insert(keys::catalog(name), v)?,
            None => self.db.remove(keys::catalog(name))?,
        };
        self.db.flush()?;
        Ok(())
    }

    /// Every catalog entry.
    pub(crate) fn catalog_list(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::CATALOG]) {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k[1..]).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    /// Decodes every stored record (audit entries, erasure intents, objections and the
    /// catalog's destinations, API keys and saved segments); one problem per record that
    /// does not decode as its current layout.
    pub(crate) fn verify_records(&self) -> Result<Vec<String>, StorageError> {
        fn each<R: StoredRecord>(
            db: &sled::Db,
            prefix: &[u8],
            problems: &mut Vec<String>,
        ) -> Result<(), StorageError> {
            for item in db.scan_prefix(prefix) {
                let (k, v) = item?;
                if let Err(e) = R::decode(&k, &v) {
                    problems.push(e.to_string());
                }
            }
            Ok(())
        }
        let mut problems = Vec::new();
        each::<AuditRecord>(&self.db, &[keys::AUDIT], &mut problems)?;
        each::<AuditRecord>(&self.db, &[keys::ERASURE], &mut problems)?;
        each::<ObjectionRecord>(&self.db, &[keys::OBJECTION], &mut problems)?;
        let catalog = |prefix: &str| keys::catalog(prefix);
        each::<records::DestinationRecord>(
            &self.db,
            &catalog(records::DESTINATION_PREFIX),
            &mut problems,
        )?;
        each::<records::ApiKeyRecord>(&self.db, &catalog(records::API_KEY_PREFIX), &mut problems)?;
        each::<records::SavedSegmentRecord>(
            &self.db,
            &catalog(records::SEGMENT_PREFIX),
            &mut problems,
        )?;
        Ok(problems)
    }

    /// Reads the stored record `name` of the catalog.
    pub(crate) fn record<R: StoredRecord>(&self, name: &str) -> Result<Option<R>, StorageError> {
        let key = keys::catalog(name);
        self.db.get(&key)?.map(|v| R::decode(&key, &v)).transpose()
    }

    /// Writes (or with `None` removes) the stored record `name` of the catalog durably.
    pub(crate) fn put_record<R: StoredRecord>(
        &self,
        name: &str,
        record: Option<&R>,
    ) -> Result<(), StorageError> {
        self.catalog_put(name, record.map(R::encode).as_deref())
    }

    /// Every stored record of the catalog whose name starts with `prefix`, by name.
    pub(crate) fn records<R: StoredRecord>(&self, prefix: &str) -> Result<Vec<R>, StorageError> {
        let start = keys::catalog(prefix);
        let mut out = Vec::new();
        for item in self.db.scan_prefix(&start) {
            let (k, v) = item?;
            out.push(R::decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Adds suppression entries `(digest, kind byte)` to `list` atomically and durably.
    pub(crate) fn suppression_add(
        &self,
        list: &str,
        entries: &[([u8; 32], u8)],
    ) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for (digest, kind) in entries {
            batch.insert(keys::suppression(list, digest), &[*kind][..]);
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes a whole suppression list atomically and durably.
    pub(crate) fn suppression_remove(&self, list: &str) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.db.scan_prefix(keys::suppression_prefix(list)) {
            batch.remove(item?.0);
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every suppression entry: (list, digest, kind byte).
    pub(crate) fn suppression_entries(
        &self,
    ) -> impl Iterator<Item = Result<(String, [u8; 32], u8), StorageError>> + '_ {
        self.db.scan_prefix([keys::SUPPRESSION]).map(|item| {
            let (k, v) = item?;
            let corrupted = || StorageError::Corrupted {
                what: "suppression entry",
                key: k.to_vec(),
                detail: "malformed key".into(),
            };
            let rest = &k[1..];
            let split = rest.len().checked_sub(33).ok_or_else(corrupted)?;
            if rest[split] != 0 {
                return Err(corrupted());
            }
            let name = String::from_utf8(rest[..split].to_vec()).map_err(|_| corrupted())?;
            let digest: [u8; 32] = rest[split + 1..].try_into().map_err(|_| corrupted())?;
            Ok((name, digest, v.first().copied().unwrap_or(3)))
        })
    }

    /// Removes a profile's slot, event chunks and merge-log entries in one atomic, durable
    /// batch, recording it in dirty set `batch` (for index recovery) with `counters`.
    /// Its key is destroyed afterwards by the caller, which makes every older version of
    /// those values in sled's log unreadable.
    pub(crate) fn erase_profile(
        &self,
        pid: ProfileId,
        batch: u64,
        counters: &Counters,
        intent: &[u8],
    ) -> Result<(), StorageError> {
        let mut b = sled::Batch::default();
        b.remove(&keys::profile(pid)[..]);
        for tag in [keys::EVENTS, keys::MERGE_LOG] {
            for item in self.db.scan_prefix(keys::prefixed_pid(tag, pid)) {
                b.remove(item?.0);
            }
        }
        let dirty: RoaringBitmap = std::iter::once(pid).collect();
        let mut value = Vec::new();
        dirty
            .serialize_into(&mut value)
            .expect("writing to a Vec cannot fail");
        b.insert(&keys::dirty(batch)[..], value);
        b.insert(keys::meta("counters"), codec::encode(counters));
        // The intent: whatever happens after this batch (key destruction, checkpoint,
        // sync states, audit bitmaps) is finished on open until it is removed.
        b.insert(&keys::prefixed_pid(keys::ERASURE, pid)[..], intent);
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    /// The answer recorded for an idempotency key, if any.
    pub(crate) fn idempotency(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<IdempotencyEntry>, StorageError> {
        Ok(self
            .db
            .get(idempotency_key(key))?
            .and_then(|v| IdempotencyEntry::decode(&v)))
    }

    /// Writes an idempotency entry on its own (for a request that changed nothing).
    pub(crate) fn put_idempotency(
        &self,
        key: &[u8; 32],
        entry: &IdempotencyEntry,
    ) -> Result<(), StorageError> {
        self.db.insert(idempotency_key(key), entry.encode())?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes idempotency entries recorded before `before`; returns how many.
    pub(crate) fn prune_idempotency(
        &self,
        before: crate::base::time::Millis,
    ) -> Result<usize, StorageError> {
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for item in self.db.scan_prefix(keys::meta("idem/")) {
            let (k, v) = item?;
            // Unreadable entries go too: they answer nothing.
            if IdempotencyEntry::written_at(&v).is_none_or(|at| at < before) {
                batch.remove(k);
                removed += 1;
            }
        }
        if removed > 0 {
            self.db.apply_batch(batch)?;
        }
        Ok(removed)
    }

    /// The last input line an interrupted import of `import` applied.
    pub(crate) fn import_progress(&self, import: &ImportKey) -> Result<Option<u64>, StorageError> {
        let key = import_progress_key(import);
        match self.db.get(&key)? {
            None => Ok(None),
            Some(v) => v
                .as_ref()
                .try_into()
                .map(|b| Some(u64::from_le_bytes(b)))
                .map_err(|_| StorageError::Corrupted {
                    what: "import progress",
                    key,
                    detail: format!("{} bytes, expected 8", v.len()),
                }),
        }
    }

    /// Forgets an import's progress once it finished; durable.
    pub(crate) fn clear_import_progress(&self, import: &ImportKey) -> Result<(), StorageError> {
        self.db.remove(import_progress_key(import))?;
        self.db.flush()?;
        Ok(())
    }

    /// Erasures that committed but may not have finished: the profile and what the
    /// intent holds (the audit entry to write when done).
    pub(crate) fn erasure_intents(&self) -> Result<Vec<(ProfileId, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::ERASURE]) {
            let (k, v) = item?;
            let pid = k
                .get(1..5)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StorageError::Corrupted {
                    what: "erasure intent",
                    key: k.to_vec(),
                    detail: "key is not F + pid".into(),
                })?;
            out.push((pid, v.to_vec()));
        }
        Ok(out)
    }

    /// What the erasure intent of `pid` holds, if it is still there.
    pub(crate) fn erasure_intent(&self, pid: ProfileId) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get(&keys::prefixed_pid(keys::ERASURE, pid)[..])?
            .map(|v| v.to_vec()))
    }

    /// Appends an audit entry (its `seq` is assigned here) and, for an export, the
    /// profiles it included; durable on return.
    ///
    /// With `finishing`, the entry ends that profile's erasure: its intent is removed in
    /// the same atomic write, so the erasure is audited exactly once.
    pub(crate) fn audit_append(
        &self,
        mut entry: AuditRecord,
        included: Option<&RoaringBitmap>,
        finishing: Option<ProfileId>,
    ) -> Result<(), StorageError> {
        let erased = self.audit_lock.lock().expect("audit lock");
        let last = self
            .db
            .scan_prefix([keys::AUDIT])
            .next_back()
            .transpose()?
            .and_then(|(k, _)| {
                k.get(1..9)
                    .map(|b| u64::from_be_bytes(b.try_into().expect("8")))
            });
        entry.seq = last.map_or(1, |s| s + 1);
        let mut batch = sled::Batch::default();
        batch.insert(&keys::audit(keys::AUDIT, entry.seq)[..], entry.encode());
        if let Some(pids) = included {
            let pids = pids - &*erased;
            let mut value = Vec::with_capacity(pids.serialized_size());
            pids.serialize_into(&mut value)
                .expect("writing to a Vec cannot fail");
            batch.insert(&keys::audit(keys::AUDIT_BITMAP, entry.seq)[..], value);
        }
        if let Some(pid) = finishing {
            batch.remove(&keys::prefixed_pid(keys::ERASURE, pid)[..]);
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Audit entries after `after`, oldest first.
    pub(crate) fn audit_entries(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let start = keys::audit(keys::AUDIT, after.map_or(0, |a| a.saturating_add(1)));
        let mut out = Vec::new();
        for item in self.db.range(start..).take(limit) {
            let (k, v) = item?;
            if k.first() != Some(&keys::AUDIT) {
                break;
            }
            out.push(AuditRecord::decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Audited exports whose included profiles contain `pid`.
    pub(crate) fn audit_exports_including(
        &self,
        pid: ProfileId,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::AUDIT_BITMAP]) {
            let (k, v) = item?;
            let pids = stored_bitmap("audit bitmap", &k, &v)?;
            if pids.contains(pid) {
                let seq = u64::from_be_bytes(k[1..9].try_into().expect("8"));
                if let Some(v) = self.db.get(keys::audit(keys::AUDIT, seq))? {
                    out.push(AuditRecord::decode(&k, &v)?);
                }
            }
        }
        Ok(out)
    }

    /// Removes `pid` from every audited export's bitmap (erasure).
    pub(crate) fn audit_forget(&self, pid: ProfileId) -> Result<(), StorageError> {
        let mut erased = self.audit_lock.lock().expect("audit lock");
        erased.insert(pid);
        let mut batch = sled::Batch::default();
        for item in self.db.scan_prefix([keys::AUDIT_BITMAP]) {
            let (k, v) = item?;
            let Ok(mut pids) = RoaringBitmap::deserialize_from(&v[..]) else {
                continue;
            };
            if pids.remove(pid) {
                let mut value = Vec::with_capacity(pids.serialized_size());
                pids.serialize_into(&mut value)
                    .expect("writing to a Vec cannot fail");
                batch.insert(k, value);
            }
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// The next objection id.
    pub(crate) fn next_objection_id(&self) -> Result<u64, StorageError> {
        let last = self
            .db
            .scan_prefix([keys::OBJECTION])
            .next_back()
            .transpose()?
            .and_then(|(k, _)| {
                k.get(1..9)
                    .map(|b| u64::from_be_bytes(b.try_into().expect("8")))
            });
        Ok(last.map_or(1, |l| l + 1))
    }

    /// Stores an objection durably.
    pub(crate) fn put_objection(&self, objection: &ObjectionRecord) -> Result<(), StorageError> {
        self.db.insert(
            keys::audit(keys::OBJECTION, objection.id),
            objection.encode(),
        )?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes an objection durably.
    pub(crate) fn remove_objection(&self, id: u64) -> Result<(), StorageError> {
        self.db.remove(keys::audit(keys::OBJECTION, id))?;
        self.db.flush()?;
        Ok(())
    }

    /// Every objection, oldest first.
    pub(crate) fn objections(&self) -> Result<Vec<ObjectionRecord>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::OBJECTION]) {
            let (k, v) = item?;
            out.push(ObjectionRecord::decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Removes digests from a suppression list durably; returns the kind bytes of the
    /// entries that were there.
    pub(crate) fn suppression_remove_digests(
        &self,
        list: &str,
        digests: &[[u8; 32]],
    ) -> Result<Vec<u8>, StorageError> {
        let mut batch = sled::Batch::default();
        let mut kinds = Vec::new();
        for d in digests {
            let key = keys::suppression(list, d);
            if let Some(v) = self.db.get(&key)? {
                kinds.push(v.first().copied().unwrap_or(3));
                batch.remove(key);
            }
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(kinds)
    }

    /// Bytes used on disk by sled.
    pub(crate) fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Applies a batch atomically (visible at once, durable after [`Store::flush`]).
    /// New profile keys are written and synced first.
    pub(crate) fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        if batch.issued_keys {
            self.keys.read().expect("key file lock").sync()?;
        }
        self.db.apply_batch(batch.batch)?;
        Ok(())
    }

    /// Makes everything applied so far durable.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
    }

    /// Destroys the keys of profiles whose data must become unreadable.
    pub(crate) fn destroy_keys(&self, pids: &[ProfileId]) -> Result<(), StorageError> {
        if pids.is_empty() {
            return Ok(());
        }
        let mut keys = self.keys.write().expect("key file lock");
        keys.destroy(pids)?;
        keys.sync()
    }

    /// Ids below `next_pid` that are not in `live` yet still have a key (an erasure or
    /// a merge whose key destruction a crash interrupted).
    pub(crate) fn keys_of_dead_profiles(
        &self,
        next_pid: ProfileId,
        live: &RoaringBitmap,
    ) -> Vec<ProfileId> {
        let keys = self.keys.read().expect("key file lock");
        (0..next_pid)
            .filter(|pid| !live.contains(*pid) && keys.get(*pid).is_some())
            .collect()
    }

    /// The stored value of a live profile: encoded and sealed with its key (which must be
    /// issued). Safe to call from several threads.
    pub(crate) fn sealed_profile(&self, profile: &Profile) -> Vec<u8> {
        let key = keys::profile(profile.id);
        let mut value = Vec::with_capacity(SEALED_PROFILE_CAPACITY);
        value.push(keys::SLOT_LIVE);
        self.seal_for(profile.id, &key, &mut value, |buf| {
            codec::encode_into(profile, buf)
        });
        value
    }

    /// Appends what `write` appends to `out`, sealed with `pid`'s key (issued in this batch
    /// or earlier).
    fn seal_for(
        &self,
        pid: ProfileId,
        aad: &[u8],
        out: &mut Vec<u8>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let keys = self.keys.read().expect("key file lock");
        let key = keys
            .get(pid)
            .expect("a profile written in a batch has a key issued earlier or in the batch");
        crypto::seal_with(key, aad, out, write);
    }
}

/// Starting capacity of a sealed profile value, so the buffer rarely grows (growing copies
/// it): the 100k-person generated import's sealed profiles measured 497 bytes at the
/// median, 955 at the 99th percentile, 1,296 at most.
const SEALED_PROFILE_CAPACITY: usize = 1024;
/// Starting capacity of a sealed event chunk or merge log entry.
const SEALED_ENTRY_CAPACITY: usize = 256;

/// Decodes a roaring bitmap stored under `key`, naming `what` if it is corrupt.
fn stored_bitmap(
    what: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<RoaringBitmap, StorageError> {
    RoaringBitmap::deserialize_from(value).map_err(|e| StorageError::Corrupted {
        what,
        key: key.to_vec(),
        detail: e.to_string(),
    })
}

/// Builds a write batch against a store.
pub(crate) struct BatchWriter<'a> {
    store: &'a Store,
    batch: WriteBatch,
}

/// How long [`open_sled`] waits for a lock held by a handle that is shutting down.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens sled, waiting briefly when its file lock is still held: sled's background
/// flusher keeps a dropped database alive for a moment, so an immediate reopen in the same
/// process can find the lock taken.
fn open_sled(dir: &Path) -> Result<sled::Db, OpenError> {
    let started = std::time::Instant::now();
    loop {
        let result = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(512 << 20)
            .mode(sled::Mode::HighThroughput)
            .open();
        match result {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(OpenError::Locked {
                        path: dir.to_path_buf(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(OpenError::Storage(e.into())),
        }
    }
}

impl<'a> BatchWriter<'a> {
    /// Starts a batch.
    pub(crate) fn new(store: &'a Store) -> Self {
        BatchWriter {
            store,
            batch: WriteBatch::default(),
        }
    }

    /// Issues keys for new profiles now (written to the key file; synced before the batch
    /// is applied, so no stored value can outlive its key's durability).
    pub(crate) fn issue_keys(&mut self, pids: &[ProfileId]) -> Result<(), StorageError> {
        if pids.is_empty() {
            return Ok(());
        }
        self.store
            .keys
            .write()
            .expect("key file lock")
            .issue(pids)?;
        self.batch.issued_keys = true;
        Ok(())
    }

    /// Writes a live profile sealed earlier with [`Store::sealed_profile`].
    pub(crate) fn put_sealed_profile(&mut self, pid: ProfileId, value: Vec<u8>) {
        self.batch.batch.insert(&keys::profile(pid)[..], value);
    }

    /// Turns a profile into a redirect to `into`.
    pub(crate) fn put_redirect(&mut self, pid: ProfileId, into: ProfileId) {
        let mut value = vec![keys::SLOT_MERGED];
        value.extend_from_slice(&into.to_le_bytes());
        self.batch.batch.insert(&keys::profile(pid)[..], value);
    }

    /// Records which profiles batch number `batch` changes, for index recovery.
    pub(crate) fn put_dirty(&mut self, batch: u64, pids: &RoaringBitmap) {
        let mut value = Vec::with_capacity(pids.serialized_size());
        pids.serialize_into(&mut value)
            .expect("writing to a Vec cannot fail");
        self.batch.batch.insert(&keys::dirty(batch)[..], value);
    }

    /// Stores one record's events under `pid` at `seq`.
    pub(crate) fn put_events(&mut self, pid: ProfileId, seq: u64, chunk: &EventChunk) {
        self.put_sealed(keys::EVENTS, pid, seq, chunk);
    }

    /// Removes an event chunk.
    pub(crate) fn remove_events(&mut self, pid: ProfileId, seq: u64) {
        self.batch
            .batch
            .remove(&keys::pid_seq(keys::EVENTS, pid, seq)[..]);
    }

    /// Appends a merge log entry under `pid`.
    pub(crate) fn put_merge_log(&mut self, pid: ProfileId, seq: u64, entry: &MergeLogEntry) {
        self.put_sealed(keys::MERGE_LOG, pid, seq, entry);
    }

    /// Removes a merge log entry.
    pub(crate) fn remove_merge_log(&mut self, pid: ProfileId, seq: u64) {
        self.batch
            .batch
            .remove(&keys::pid_seq(keys::MERGE_LOG, pid, seq)[..]);
    }

    fn put_sealed<T: serde::Serialize>(&mut self, tag: u8, pid: ProfileId, seq: u64, value: &T) {
        let key = keys::pid_seq(tag, pid, seq);
        let mut sealed = Vec::with_capacity(SEALED_ENTRY_CAPACITY);
        self.store
            .seal_for(pid, &key, &mut sealed, |buf| codec::encode_into(value, buf));
        self.batch.batch.insert(&key[..], sealed);
    }

    /// Finishes the batch.
    pub(crate) fn finish(self) -> WriteBatch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::record::Value;

    /// Idempotency answers read back across report changes (fields added or gone), and
    /// an unreadable one answers nothing and is pruned instead of failing the open.
    #[test]
    fn idempotency_entries_survive_report_changes_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path()).unwrap();
        let entry = IdempotencyEntry {
            at: 1_000,
            request: [9; 32],
            report: crate::input::report::IngestReport {
                records: 2,
                accepted: 2,
                ..Default::default()
            },
        };
        store.put_idempotency(&[1; 32], &entry).unwrap();
        assert_eq!(store.idempotency(&[1; 32]).unwrap(), Some(entry.clone()));
        // An answer written by a build whose report had other fields.
        let mut other = entry.encode()[..40].to_vec();
        other.extend_from_slice(br#"{"records":5,"accepted":4,"a_future_field":[1]}"#);
        store.db.insert(idempotency_key(&[2; 32]), other).unwrap();
        let read = store.idempotency(&[2; 32]).unwrap().unwrap();
        assert_eq!((read.report.records, read.report.accepted), (5, 4));
        // Damaged: no answer, and pruned whatever its age.
        store
            .db
            .insert(idempotency_key(&[3; 32]), &b"short"[..])
            .unwrap();
        assert_eq!(store.idempotency(&[3; 32]).unwrap(), None);
        assert_eq!(store.prune_idempotency(500).unwrap(), 1);
        assert_eq!(store.prune_idempotency(2_000).unwrap(), 2);
    }

    /// A format-2 directory holds tag 1 (fixed-width) values: format 3 reads them as they
    /// are, raises the version, and writes tag 2 values beside them.
    #[test]
    fn format_2_values_read_after_the_version_is_raised() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Profile::new(0);
        old.records = 3;
        old.attributes.insert(
            "city".into(),
            crate::storage::profile::Attribute::Scalar(crate::storage::profile::Scalar {
                value: Value::Text("Gent".into()),
                provenance: crate::storage::profile::Provenance {
                    source: "crm".into(),
                    observed_at: 1_700_000_000_000,
                },
                seq: 9,
            }),
        );
        {
            let (store, _) = Store::open(dir.path()).unwrap();
            let mut writer = BatchWriter::new(&store);
            writer.issue_keys(&[0, 1]).unwrap();
            let key = keys::profile(0);
            let mut value = vec![keys::SLOT_LIVE];
            store.seal_for(0, &key, &mut value, |buf| {
                codec::encode_fixed_width(&old, buf)
            });
            writer.put_sealed_profile(0, value);
            store.apply(writer.finish()).unwrap();
            store
                .db
                .insert(keys::meta("format"), &2u32.to_le_bytes()[..])
                .unwrap();
            store.flush().unwrap();
        }
        let (store, _) = Store::open(dir.path()).unwrap();
        let format = store.db.get(keys::meta("format")).unwrap().unwrap();
        assert_eq!(format.as_ref(), &FORMAT_VERSION.to_le_bytes());
        assert_eq!(store.slot(0).unwrap(), Some(Slot::Live(old.clone())));
        let mut new = Profile::new(1);
        new.merged_from.push(0);
        let mut writer = BatchWriter::new(&store);
        writer.put_sealed_profile(1, store.sealed_profile(&new));
        store.apply(writer.finish()).unwrap();
        assert_eq!(store.slot(1).unwrap(), Some(Slot::Live(new)));
        assert_eq!(store.slot(0).unwrap(), Some(Slot::Live(old)));
    }
}
