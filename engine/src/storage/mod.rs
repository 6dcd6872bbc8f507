//! Durable storage: the only module that talks to sled. One sled tree with prefixed keys
//! (`keys`), personal data sealed with per-profile keys from the key file (`keyfile`,
//! `crypto`). A write batch is applied with one atomic `apply_batch`.

pub(crate) mod atomic_file;
mod batch;
mod catalog;
pub(crate) mod codec;
mod compact;
mod crypto;
mod dir_lock;
mod keyfile;
mod keys;
mod known_names;
pub(crate) mod migrate;
mod packed;
mod privacy;
pub(crate) mod profile;
mod progress;
pub(crate) mod records;
pub(crate) mod view;

use crate::base::digest::LinkKey;
use crate::base::error::{OpenError, StorageError};
use crate::base::time::Millis;
use crate::input::record::{Event, Identifier};
use crate::storage::profile::{Profile, ProfileId};
pub(crate) use batch::{BatchWriter, WriteBatch};
use codec::{FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT};
pub(crate) use compact::compact;
pub use compact::CompactReport;
use keyfile::KeyFile;
pub(crate) use progress::{IdempotencyEntry, ImportKey};
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
    /// The data directory's lock, held while the store is open (dropped after `db`).
    _dir_lock: dir_lock::DirLock,
}

/// The sled key of `pid`'s erasure intent (names the intent in errors).
pub(crate) fn erasure_key(pid: ProfileId) -> [u8; 5] {
    keys::prefixed_pid(keys::ERASURE, pid)
}

impl Store {
    /// Opens (or creates) the store in `dir`; returns it with its counters.
    pub(crate) fn open(dir: &Path) -> Result<(Store, Counters), OpenError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let (db, dir_lock) = open_sled(dir)?;
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
                _dir_lock: dir_lock,
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
    /// other forms ad platforms hash, see `input::normalize::forms`).
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
                Ok(Slot::Live(codec::decode_packed("profile", &plain)?))
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
        self.with_profile_key(what, pid, aad, |key| crypto::open(what, key, aad, sealed))
    }

    /// Runs `f` with `pid`'s key (under the key file's read lock); a missing key is an
    /// error naming `what` and the value's sled key `aad`.
    fn with_profile_key<T>(
        &self,
        what: &'static str,
        pid: ProfileId,
        aad: &[u8],
        f: impl FnOnce(&keyfile::Key) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let keys = self.keys.read().expect("key file lock");
        let key = keys.get(pid).ok_or_else(|| StorageError::Corrupted {
            what,
            key: aad.to_vec(),
            detail: "the profile's key is missing".into(),
        })?;
        f(key)
    }

    fn scan_sealed<T>(
        &self,
        tag: u8,
        pid: ProfileId,
        what: &'static str,
        decode: fn(&'static str, &[u8]) -> Result<T, StorageError>,
    ) -> Result<Vec<(u64, T)>, StorageError> {
        let prefix = keys::prefixed_pid(tag, pid);
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix) {
            let (k, v) = item?;
            let plain = self.open_sealed(what, pid, &k, &v)?;
            out.push((keys::seq_of(&k).unwrap_or(0), decode(what, &plain)?));
        }
        Ok(out)
    }

    /// The event chunks of a profile, keyed by ingest sequence.
    pub(crate) fn events(&self, pid: ProfileId) -> Result<Vec<(u64, EventChunk)>, StorageError> {
        self.scan_sealed(keys::EVENTS, pid, "event chunk", codec::decode_packed)
    }

    /// The merge log of a profile.
    pub(crate) fn merge_log(&self, pid: ProfileId) -> Result<Vec<MergeLogEntry>, StorageError> {
        Ok(self
            .scan_sealed(keys::MERGE_LOG, pid, "merge log entry", codec::decode)?
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
            codec::encode_packed_into(profile, buf)
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

/// Opens sled in the closed data directory `dir` and closes it again: sled 0.34 writes the
/// snapshot of its page table only while it opens (after replaying its log), so the first
/// open after a long write session replays everything written in it (1.5 GB after a
/// 1M-person import: a second) and later opens do not. Doing it once at the end of such
/// a session moves that second from the next start to the writer that caused it.
pub(crate) fn write_sled_snapshot(dir: &Path) -> Result<(), OpenError> {
    drop(open_sled(dir)?);
    Ok(())
}

/// How long [`open_sled`] waits for a lock held by a handle that is shutting down.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The sled directory inside a data directory.
const SLED_DIR: &str = "sled";

/// Takes the data directory's lock and opens its sled directory (see [`open_sled_locked`]).
fn open_sled(dir: &Path) -> Result<(sled::Db, dir_lock::DirLock), OpenError> {
    let lock = dir_lock::lock(dir)?;
    Ok((open_sled_locked(dir)?, lock))
}

/// Opens the sled directory of data directory `dir`, whose lock the caller holds: first
/// finishes a compaction that a crash interrupted, then removes its leftovers (`compact`).
fn open_sled_locked(dir: &Path) -> Result<sled::Db, OpenError> {
    compact::restore_after_crash(dir)?;
    let db = open_sled_at(dir, &dir.join(SLED_DIR))?;
    compact::remove_leftovers(dir)?;
    Ok(db)
}

/// sled's page cache. It bounds the import's memory more than anything else (issue 17:
/// peak RSS of a 1M-person import at most 2 GB). With the packed profiles of format 6,
/// 384 MiB: peak RSS 1,859–1,874 MB and 73.2–81.2 s for that import (512 MiB:
/// 1,954–2,001 MB and 73.9–75.8 s); the events-only stream, which reads profiles at
/// random, takes about 7 % longer than with 512 MiB.
const SLED_CACHE_BYTES: u64 = 384 << 20;

/// Opens sled at `path` (in data directory `dir`), waiting briefly when its file lock is
/// still held: sled's background flusher keeps a dropped database alive for a moment, so
/// an immediate reopen in the same process can find the lock taken.
fn open_sled_at(dir: &Path, path: &Path) -> Result<sled::Db, OpenError> {
    let started = std::time::Instant::now();
    loop {
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(SLED_CACHE_BYTES)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::record::Value;

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
