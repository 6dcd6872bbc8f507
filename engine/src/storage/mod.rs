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
mod journal;
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
pub(crate) use journal::JournalEntries;
use keyfile::KeyFile;
pub(crate) use progress::AppliedLines;
pub(crate) use progress::{IdempotencyEntry, ImportKey};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The first event-chunk sequence that a live slot of tag `0x01` (written before
    /// format 7) does not count; `u64::MAX` in a directory that never had such slots.
    fold_floor: u64,
    /// The profiles that may have event chunks their slot does not count (a superset:
    /// the union of the `U` sets, less the profiles rewritten since open). Reading any
    /// other profile reads its slot only. A leaf lock, held for one lookup or update.
    uncounted: RwLock<RoaringBitmap>,
    /// Which profiles have event chunks in which batch's journal blocks (the `K` sets).
    /// A leaf lock, held for one lookup or update.
    journal: RwLock<journal::JournalSets>,
    /// The data directory's lock, held while the store is open (dropped after `db`).
    _dir_lock: dir_lock::DirLock,
}

/// A profile's event chunks by sequence: under their own `E` keys, and in the journal.
pub(crate) type StoredEvents = (Vec<(u64, EventChunk)>, Vec<(u64, EventChunk)>);

/// A live profile read from its slot, with the event chunks stored after it was written
/// counted in (see [`Store::slot`]).
pub(crate) struct FoldedProfile {
    /// The profile, counting every stored chunk.
    pub(crate) profile: Profile,
    /// The sequences of the chunks counted here that its stored slot did not count.
    pub(crate) folded: Vec<u64>,
}

/// A profile slot read with its chunks counted in ([`Store::slot_folded`]).
pub(crate) enum FoldedSlot {
    Live(FoldedProfile),
    Merged(ProfileId),
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
        let floor_key = keys::meta(keys::FOLD_FLOOR);
        let fold_floor = match db.get(&floor_key).map_err(StorageError::from)? {
            Some(v) => {
                u64::from_le_bytes(v.as_ref().try_into().map_err(|_| StorageError::Corrupted {
                    what: "fold floor",
                    key: floor_key.clone(),
                    detail: format!("{} bytes, expected 8", v.len()),
                })?)
            }
            None => u64::MAX,
        };
        let mut uncounted = RoaringBitmap::new();
        for item in db.scan_prefix([keys::UNCOUNTED]) {
            let (k, v) = item.map_err(StorageError::from)?;
            uncounted |= stored_bitmap("set of profiles with uncounted chunks", &k, &v)?;
        }
        let mut journal = journal::JournalSets::default();
        for item in db.scan_prefix([keys::JOURNAL_SET]) {
            let (k, v) = item.map_err(StorageError::from)?;
            let pids = stored_bitmap("set of profiles in the event journal", &k, &v)?;
            let batch = journal::batch_of(&k).ok_or_else(|| StorageError::Corrupted {
                what: "set of profiles in the event journal",
                key: k.to_vec(),
                detail: "short key".into(),
            })?;
            journal.insert(batch, pids);
        }
        Ok((
            Store {
                dir: dir.to_path_buf(),
                db,
                identifier_hasher: crypto::IdentifierHasher::new(keys.secret()),
                keys: RwLock::new(keys),
                audit_lock: std::sync::Mutex::new(RoaringBitmap::new()),
                fold_floor,
                uncounted: RwLock::new(uncounted),
                journal: RwLock::new(journal),
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

    /// Reads a profile slot. A live profile counts every event chunk stored for it, also
    /// those written after its slot (by records that only added events, see
    /// `write::plan`).
    pub(crate) fn slot(&self, pid: ProfileId) -> Result<Option<Slot>, StorageError> {
        Ok(self.slot_folded(pid)?.map(|slot| match slot {
            FoldedSlot::Live(f) => Slot::Live(f.profile),
            FoldedSlot::Merged(into) => Slot::Merged(into),
        }))
    }

    /// [`Store::slot`], also saying which chunks were counted on reading.
    pub(crate) fn slot_folded(&self, pid: ProfileId) -> Result<Option<FoldedSlot>, StorageError> {
        // The set is read before the slot: a batch that rewrites the profile unmarks it
        // only after it is applied, so a slot read after an unmarked answer counts every
        // chunk (and a batch that adds chunks marks the profile before it is applied).
        let may_have_uncounted = self.uncounted.read().expect("uncounted lock").contains(pid);
        let key = keys::profile(pid);
        let Some(value) = self.db.get(key)? else {
            return Ok(None);
        };
        let (profile, unfolded_from) = match self.decode_read_slot(pid, &value)? {
            None => return Ok(None),
            Some(DecodedSlot::Merged(into)) => return Ok(Some(FoldedSlot::Merged(into))),
            Some(DecodedSlot::Live(profile, from)) => (profile, from),
        };
        let mut folded = FoldedProfile {
            profile,
            folded: Vec::new(),
        };
        if unfolded_from == u64::MAX || !may_have_uncounted {
            return Ok(Some(FoldedSlot::Live(folded)));
        }
        let start = keys::pid_seq(keys::EVENTS, pid, unfolded_from);
        let end = keys::pid_seq(keys::EVENTS, pid, u64::MAX);
        let mut chunks = Vec::new();
        for item in self.db.range(start..=end) {
            let (k, v) = item?;
            let plain = self.open_sealed("event chunk", pid, &k, &v)?;
            chunks.push((keys::seq_of(&k).unwrap_or(0), decode_chunk(&plain)?));
        }
        chunks.extend(self.journal_chunks(pid, unfolded_from)?);
        chunks.sort_unstable_by_key(|(seq, _)| *seq);
        for (seq, chunk) in chunks {
            folded
                .profile
                .count_record(&chunk.source, chunk.observed_at, chunk.events.len());
            folded.folded.push(seq);
        }
        if self.db.get(key)?.as_deref() != Some(&value[..]) {
            // A batch replaced the slot between the two reads: it may have moved chunks
            // in that the slot read does not count, or out that it does. Read again.
            return self.slot_folded(pid);
        }
        Ok(Some(FoldedSlot::Live(folded)))
    }

    /// Decodes a slot just read. An erasure or a merge destroys the profile's key only
    /// after its batch replaced the slot, so a live slot whose key is missing was read
    /// just before such a batch: the slot as it is now is the answer (absent or a
    /// redirect). Only a slot that still holds the same bytes without a key is corrupt.
    fn decode_read_slot(
        &self,
        pid: ProfileId,
        value: &[u8],
    ) -> Result<Option<DecodedSlot>, StorageError> {
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

    /// The parts of a live slot's value (`None` for any other tag).
    fn live_value<'v>(&self, pid: ProfileId, value: &'v [u8]) -> Option<LiveValue<'v>> {
        let key = keys::profile(pid);
        match *value.first()? {
            keys::SLOT_LIVE => Some(LiveValue {
                aad: LiveAad::Plain(key),
                sealed: &value[1..],
                unfolded_from: self.fold_floor,
            }),
            keys::SLOT_LIVE_FOLDED => {
                let folded: [u8; 8] = value.get(1..9)?.try_into().expect("8 bytes");
                Some(LiveValue {
                    aad: LiveAad::Folded(folded_aad(key, folded)),
                    sealed: &value[9..],
                    unfolded_from: u64::from_le_bytes(folded).saturating_add(1),
                })
            }
            _ => None,
        }
    }

    fn decode_slot(&self, pid: ProfileId, value: &[u8]) -> Result<DecodedSlot, StorageError> {
        let key = keys::profile(pid);
        let corrupted = |detail: &str| StorageError::Corrupted {
            what: "profile slot",
            key: key.to_vec(),
            detail: detail.into(),
        };
        if let Some(live) = self.live_value(pid, value) {
            let plain = self.open_sealed("profile", pid, live.aad.as_bytes(), live.sealed)?;
            return Ok(DecodedSlot::Live(
                codec::decode_packed("profile", &plain)?,
                live.unfolded_from,
            ));
        }
        match value.first() {
            Some(&keys::SLOT_MERGED) => {
                let into = value.get(1..5).ok_or_else(|| corrupted("short redirect"))?;
                Ok(DecodedSlot::Merged(u32::from_le_bytes(
                    into.try_into().expect("4 bytes"),
                )))
            }
            Some(&keys::SLOT_LIVE_FOLDED) => Err(corrupted("short live slot")),
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

    /// The event chunks of a profile (under its `E` keys and in the journal), in ingest
    /// sequence order.
    pub(crate) fn events(&self, pid: ProfileId) -> Result<Vec<(u64, EventChunk)>, StorageError> {
        let (mut chunks, journaled) = self.events_by_place(pid)?;
        if !journaled.is_empty() {
            chunks.extend(journaled);
            chunks.sort_unstable_by_key(|(seq, _)| *seq);
        }
        Ok(chunks)
    }

    /// The event chunks of a profile as [`Store::events`] reads them, apart: those under
    /// their own `E` keys, then those in the event journal (each in sequence order).
    pub(crate) fn events_by_place(&self, pid: ProfileId) -> Result<StoredEvents, StorageError> {
        let keyed = self.scan_sealed(keys::EVENTS, pid, "event chunk", codec::decode_packed)?;
        Ok((keyed, self.journal_chunks(pid, 0)?))
    }

    /// How many batches' journal blocks hold chunks of `pid` (for tests).
    #[cfg(test)]
    pub(crate) fn journal_batches(&self, pid: ProfileId) -> usize {
        self.journal.read().unwrap().batches_of(pid).len()
    }

    /// Every profile named by an entry of a journal block, garbage included (for tests).
    #[cfg(test)]
    pub(crate) fn journal_entry_pids(&self) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        for item in self.db.scan_prefix([keys::JOURNAL]) {
            let (k, v) = item.unwrap();
            out.extend(journal::entries(&k, &v).unwrap().iter().map(|e| e.pid));
        }
        out
    }

    /// The chunks of `pid` in the event journal, of sequence `from_seq` or above.
    fn journal_chunks(
        &self,
        pid: ProfileId,
        from_seq: u64,
    ) -> Result<Vec<(u64, EventChunk)>, StorageError> {
        let batches = self.journal.read().expect("journal lock").batches_of(pid);
        let mut out = Vec::new();
        for batch in batches {
            // The block holding `pid`'s entries is the last one starting at or before it.
            let first = journal::block_key(batch, 0);
            let Some(item) = self
                .db
                .range(first..=journal::block_key(batch, pid))
                .next_back()
            else {
                continue;
            };
            let (key, block) = item?;
            for entry in journal::entries(&key, &block)? {
                if entry.pid != pid || entry.seq < from_seq {
                    continue;
                }
                let aad = keys::pid_seq(keys::EVENTS, pid, entry.seq);
                let plain = self.open_sealed("event chunk", pid, &aad, entry.sealed)?;
                out.push((entry.seq, decode_chunk(&plain)?));
            }
        }
        Ok(out)
    }

    /// Writes into `batch` the journal sets without `dropped` (profiles whose chunks are
    /// erased or moved under another profile); a batch whose set becomes empty loses its
    /// blocks too. [`Store::journal_dropped`] updates the sets in memory once it is applied.
    pub(crate) fn drop_from_journal(
        &self,
        dropped: &RoaringBitmap,
        batch: &mut sled::Batch,
    ) -> Result<(), StorageError> {
        let changes = self.journal.read().expect("journal lock").without(dropped);
        for (number, set) in changes {
            if set.is_empty() {
                batch.remove(&journal::set_key(number)[..]);
                let mut prefix = vec![keys::JOURNAL];
                prefix.extend_from_slice(&number.to_be_bytes());
                for key in self.db.scan_prefix(prefix).keys() {
                    batch.remove(key?);
                }
            } else {
                batch.insert(&journal::set_key(number)[..], bitmap_bytes(&set));
            }
        }
        Ok(())
    }

    /// What is wrong with the event journal: a block that does not parse, a set naming a
    /// profile that is not live (its chunks should have left with it), or one naming a
    /// profile with no entry in that batch's blocks.
    pub(crate) fn verify_journal(&self, live: &RoaringBitmap) -> Result<Vec<String>, StorageError> {
        let mut problems = Vec::new();
        let mut held: BTreeMap<u64, RoaringBitmap> = BTreeMap::new();
        for item in self.db.scan_prefix([keys::JOURNAL]) {
            let (key, block) = item?;
            match journal::entries(&key, &block) {
                Ok(entries) => {
                    let batch = journal::batch_of(&key).unwrap_or(u64::MAX);
                    held.entry(batch)
                        .or_default()
                        .extend(entries.iter().map(|e| e.pid));
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        let sets = self.journal.read().expect("journal lock");
        for (batch, set) in sets.sets() {
            let not_live = set - live;
            if let Some(first) = not_live.min() {
                problems.push(format!(
                    "event journal batch {batch}: {} profile(s) that are not live (first: {first})",
                    not_live.len()
                ));
            }
            let missing = held.get(batch).map_or_else(|| set.clone(), |h| set - h);
            if let Some(first) = missing.min() {
                problems.push(format!(
                    "event journal batch {batch}: {} profile(s) without entries (first: {first})",
                    missing.len()
                ));
            }
        }
        Ok(problems)
    }

    /// For an erasure: writes into `batch` the blocks that hold `pid`'s entries again
    /// without them (and without entries their set no longer names), so that no block
    /// header names the person any more, then drops `pid` as
    /// [`Store::drop_from_journal`] does.
    pub(crate) fn erase_from_journal(
        &self,
        pid: ProfileId,
        batch: &mut sled::Batch,
    ) -> Result<(), StorageError> {
        let dropped: RoaringBitmap = std::iter::once(pid).collect();
        let rewrites: Vec<(u64, RoaringBitmap)> = {
            let sets = self.journal.read().expect("journal lock");
            sets.batches_of(pid)
                .into_iter()
                .filter_map(|number| Some((number, sets.set(number)? - &dropped)))
                .filter(|(_, kept)| !kept.is_empty())
                .collect()
        };
        for (number, kept) in rewrites {
            let first = journal::block_key(number, 0);
            let last = journal::block_key(number, pid);
            let Some(item) = self.db.range(first..=last).next_back() else {
                continue;
            };
            let (key, block) = item?;
            let entries: Vec<journal::Entry<'_>> = journal::entries(&key, &block)?
                .into_iter()
                .filter(|e| kept.contains(e.pid))
                .collect();
            batch.remove(&key);
            if let Some(head) = entries.first() {
                let new_key = journal::block_key(number, head.pid);
                batch.insert(
                    &new_key[..],
                    journal::encode_block(entries.into_iter(), block.len()),
                );
            }
        }
        self.drop_from_journal(&dropped, batch)
    }

    /// Updates the journal sets in memory after a batch written with
    /// [`Store::drop_from_journal`] was applied.
    pub(crate) fn journal_dropped(&self, dropped: &RoaringBitmap) {
        if !dropped.is_empty() {
            self.journal
                .write()
                .expect("journal lock")
                .apply(dropped, None);
        }
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

    /// Marks profiles that a batch about to be applied stores events-only chunks for
    /// (before it is applied: a reader must not skip a chunk it could see).
    pub(crate) fn mark_uncounted(&self, pids: &RoaringBitmap) {
        if !pids.is_empty() {
            *self.uncounted.write().expect("uncounted lock") |= pids;
        }
    }

    /// Unmarks profiles whose slots an applied batch rewrote (counting every chunk).
    pub(crate) fn unmark_uncounted(&self, pids: &RoaringBitmap) {
        let mut uncounted = self.uncounted.write().expect("uncounted lock");
        if !uncounted.is_disjoint(pids) {
            *uncounted -= pids;
        }
    }

    /// Replaces the stored `U` sets by one holding the current set (at a checkpoint, so
    /// they do not pile up), in one atomic batch. It is kept under the last key, which
    /// no batch's own set uses.
    pub(crate) fn store_uncounted(&self) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.db.scan_prefix([keys::UNCOUNTED]) {
            batch.remove(item?.0);
        }
        let uncounted = self.uncounted.read().expect("uncounted lock");
        if !uncounted.is_empty() {
            batch.insert(&keys::uncounted(u64::MAX)[..], bitmap_bytes(&uncounted));
        }
        drop(uncounted);
        self.db.apply_batch(batch)?;
        Ok(())
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
        if !batch.journal_dropped.is_empty() || batch.journal_added.is_some() {
            self.journal
                .write()
                .expect("journal lock")
                .apply(&batch.journal_dropped, batch.journal_added.as_ref());
        }
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

    /// The stored value of a live profile that counts every event chunk of sequence up
    /// to `folded`: encoded and sealed with its key (which must be issued), `folded`
    /// in front and bound to it. Safe to call from several threads.
    pub(crate) fn sealed_profile(&self, profile: &Profile, folded: u64) -> Vec<u8> {
        let folded = folded.to_le_bytes();
        let aad = folded_aad(keys::profile(profile.id), folded);
        let mut value = Vec::with_capacity(SEALED_PROFILE_CAPACITY);
        value.push(keys::SLOT_LIVE_FOLDED);
        value.extend_from_slice(&folded);
        self.seal_for(profile.id, &aad, &mut value, |buf| {
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

/// Rewrites a closed data directory as a format-6 build left it: every live slot with
/// tag `0x01` (sealed again, bound to its key only), no `fold_floor`, format 6. For the
/// tests of the upgrade to format 7.
#[cfg(test)]
pub(crate) fn downgrade_to_format_6(dir: &Path) {
    let (store, _) = Store::open(dir).unwrap();
    assert!(
        store.uncounted.read().unwrap().is_empty(),
        "a format-6 slot would not count the chunks a later slot does not"
    );
    let mut batch = sled::Batch::default();
    for item in store.db.scan_prefix([keys::PROFILE]) {
        let (k, v) = item.unwrap();
        let pid = keys::pid_of(&k).unwrap();
        let Some(live) = store.live_value(pid, &v) else {
            continue;
        };
        let plain = store
            .open_sealed("profile", pid, live.aad.as_bytes(), live.sealed)
            .unwrap();
        let mut value = vec![keys::SLOT_LIVE];
        store.seal_for(pid, &k, &mut value, |buf| buf.extend_from_slice(&plain));
        batch.insert(k, value);
    }
    batch.remove(keys::meta(keys::FOLD_FLOOR));
    batch.insert(keys::meta("format"), &6u32.to_le_bytes()[..]);
    store.db.apply_batch(batch).unwrap();
    store.flush().unwrap();
}

/// Moves the event journal's chunks back under their own `E` keys, as builds before
/// format 9 stored them (for the tests of the upgrades from older formats).
#[cfg(test)]
fn downgrade_journal(store: &Store, batch: &mut sled::Batch) {
    let sets = store.journal.read().unwrap();
    for item in store.db.scan_prefix([keys::JOURNAL]) {
        let (k, v) = item.unwrap();
        let set = &sets
            .sets()
            .find(|(b, _)| Some(**b) == journal::batch_of(&k));
        for e in journal::entries(&k, &v).unwrap() {
            if set.is_some_and(|(_, pids)| pids.contains(e.pid)) {
                batch.insert(&keys::pid_seq(keys::EVENTS, e.pid, e.seq)[..], e.sealed);
            }
        }
        batch.remove(k);
    }
    for item in store.db.scan_prefix([keys::JOURNAL_SET]) {
        batch.remove(item.unwrap().0);
    }
}

/// Rewrites a closed data directory as the format-8 builds left it: no event journal.
/// For the test of the upgrade to format 9.
#[cfg(test)]
pub(crate) fn downgrade_to_format_8(dir: &Path) {
    let (store, _) = Store::open(dir).unwrap();
    let mut batch = sled::Batch::default();
    downgrade_journal(&store, &mut batch);
    batch.insert(keys::meta("format"), &8u32.to_le_bytes()[..]);
    store.db.apply_batch(batch).unwrap();
    store.flush().unwrap();
}

/// Rewrites a closed data directory as the format-7 builds left it: no `U` sets, no
/// event journal. For the test of the upgrade to format 8.
#[cfg(test)]
pub(crate) fn downgrade_to_format_7(dir: &Path) {
    let (store, _) = Store::open(dir).unwrap();
    let mut batch = sled::Batch::default();
    downgrade_journal(&store, &mut batch);
    for item in store.db.scan_prefix([keys::UNCOUNTED]) {
        batch.remove(item.unwrap().0);
    }
    batch.insert(keys::meta("format"), &7u32.to_le_bytes()[..]);
    store.db.apply_batch(batch).unwrap();
    store.flush().unwrap();
}

/// A live slot as decoded: the profile as its slot holds it, and the first event-chunk
/// sequence it does not count (`u64::MAX`: it counts them all).
enum DecodedSlot {
    Live(Profile, u64),
    Merged(ProfileId),
}

/// The parts of a live slot's value.
pub(super) struct LiveValue<'v> {
    pub(super) aad: LiveAad,
    pub(super) sealed: &'v [u8],
    /// The first event-chunk sequence the profile does not count.
    pub(super) unfolded_from: u64,
}

/// What a live slot's value was sealed with: its key, and for tag `0x03` the folded
/// sequence too (so a damaged sequence does not unseal).
pub(super) enum LiveAad {
    Plain([u8; 5]),
    Folded([u8; 13]),
}

impl LiveAad {
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            LiveAad::Plain(k) => k,
            LiveAad::Folded(k) => k,
        }
    }
}

fn folded_aad(key: [u8; 5], folded: [u8; 8]) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..5].copy_from_slice(&key);
    aad[5..].copy_from_slice(&folded);
    aad
}

/// Starting capacity of a sealed profile value, so the buffer rarely grows (growing copies
/// it): the 100k-person generated import's sealed profiles measured 497 bytes at the
/// median, 955 at the 99th percentile, 1,296 at most.
const SEALED_PROFILE_CAPACITY: usize = 1024;
/// Starting capacity of a sealed event chunk or merge log entry.
const SEALED_ENTRY_CAPACITY: usize = 256;

/// Decodes an unsealed event chunk.
fn decode_chunk(plain: &[u8]) -> Result<EventChunk, StorageError> {
    codec::decode_packed("event chunk", plain)
}

/// A roaring bitmap as stored (its portable serialization).
pub(crate) fn bitmap_bytes(pids: &RoaringBitmap) -> Vec<u8> {
    let mut value = Vec::with_capacity(pids.serialized_size());
    pids.serialize_into(&mut value)
        .expect("writing to a Vec cannot fail");
    value
}

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
            store.apply(writer.finish().unwrap()).unwrap();
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
        writer.put_sealed_profile(1, store.sealed_profile(&new, 0));
        store.apply(writer.finish().unwrap()).unwrap();
        assert_eq!(store.slot(1).unwrap(), Some(Slot::Live(new)));
        assert_eq!(store.slot(0).unwrap(), Some(Slot::Live(old)));
    }

    fn chunk(source: &str, at: i64, events: usize) -> EventChunk {
        EventChunk {
            source: source.into(),
            observed_at: at,
            events: (0..events)
                .map(|i| crate::input::record::Event {
                    kind: "page_view".into(),
                    at: at - i as i64,
                    category: None,
                    value: None,
                })
                .collect(),
        }
    }

    /// A format-6 directory (`format_6_directory`) opened by this build: its floor is one
    /// past the stored chunk, and profile 0 reads as it was counted.
    fn upgraded_format_6(with_counters: bool) -> (tempfile::TempDir, Store, Profile) {
        let dir = tempfile::tempdir().unwrap();
        let counted = format_6_directory(dir.path(), with_counters);
        let (store, _) = Store::open(dir.path()).unwrap();
        assert_eq!(store.fold_floor, 5);
        assert_eq!(store.slot(0).unwrap(), Some(Slot::Live(counted.clone())));
        (dir, store, counted)
    }

    /// Writes what a format-6 build left in `dir`: profile 0 in a tag 1 slot counting its
    /// one event chunk (sequence 4), keys for profiles 0 and 1, and counters (next
    /// sequence 5) if `with_counters`. Returns profile 0.
    fn format_6_directory(dir: &Path, with_counters: bool) -> Profile {
        let mut counted = Profile::new(0);
        counted.count_record(&"crm".into(), 1_000, 2);
        let (store, _) = Store::open(dir).unwrap();
        let mut writer = BatchWriter::new(&store);
        writer.issue_keys(&[0, 1]).unwrap();
        let mut value = vec![keys::SLOT_LIVE];
        store.seal_for(0, &keys::profile(0), &mut value, |buf| {
            codec::encode_packed_into(&counted, buf)
        });
        writer.put_sealed_profile(0, value);
        let c = chunk("crm", 1_000, 2);
        writer.put_sealed_events(0, 4, store.sealed_events(0, 4, &c));
        let mut batch = writer.finish().unwrap();
        if with_counters {
            batch.put_counters(&Counters {
                next_pid: 2,
                next_seq: 5,
                ..Counters::default()
            });
        }
        store.apply(batch).unwrap();
        store
            .db
            .insert(keys::meta("format"), &6u32.to_le_bytes()[..])
            .unwrap();
        store.flush().unwrap();
        counted
    }

    /// A live slot counts the event chunks up to the sequence it names (tag 3), or below
    /// the floor of the upgrade to format 7 (tag 1); reading counts the later ones in,
    /// as `Profile::count_record`, and says which they were.
    #[test]
    fn reading_a_slot_counts_the_chunks_written_after_it() {
        let (_dir, store, counted) = upgraded_format_6(true);
        // Two records that only added events, after the upgrade.
        store.mark_uncounted(&[0, 1].into_iter().collect());
        let mut writer = BatchWriter::new(&store);
        for (seq, c) in [(5, chunk("web", 3_000, 1)), (6, chunk("crm", 500, 3))] {
            writer.put_sealed_events(0, seq, store.sealed_events(0, seq, &c));
        }
        // Profile 1 is written by this build: it counts its chunks up to 7.
        let mut one = Profile::new(1);
        one.count_record(&"app".into(), 2_000, 1);
        writer.put_sealed_profile(1, store.sealed_profile(&one, 7));
        writer.put_sealed_events(1, 7, store.sealed_events(1, 7, &chunk("app", 2_000, 1)));
        writer.put_sealed_events(1, 8, store.sealed_events(1, 8, &chunk("app", 2_500, 4)));
        store.apply(writer.finish().unwrap()).unwrap();

        let mut expected = counted.clone();
        expected.count_record(&"web".into(), 3_000, 1);
        expected.count_record(&"crm".into(), 500, 3);
        match store.slot_folded(0).unwrap() {
            Some(FoldedSlot::Live(read)) => {
                assert_eq!(read.profile, expected);
                assert_eq!(read.folded, vec![5, 6]);
            }
            _ => panic!("profile 0 is live"),
        }
        assert_eq!(expected.sources["crm"].records, 2);
        assert_eq!(expected.sources["crm"].first_seen, 500);
        assert_eq!((expected.records, expected.events), (3, 6));
        let mut expected_one = one.clone();
        expected_one.count_record(&"app".into(), 2_500, 4);
        match store.slot_folded(1).unwrap() {
            Some(FoldedSlot::Live(read)) => {
                assert_eq!(read.profile, expected_one);
                assert_eq!(read.folded, vec![8]);
            }
            _ => panic!("profile 1 is live"),
        }

        // The counted sequence is bound to the sealed value: a damaged one does not read.
        let mut damaged = store.db.get(keys::profile(1)).unwrap().unwrap().to_vec();
        damaged[1] ^= 1;
        store.db.insert(keys::profile(1), damaged).unwrap();
        assert!(store.slot(1).is_err());
        store
            .db
            .insert(keys::profile(1), &[keys::SLOT_LIVE_FOLDED, 7][..])
            .unwrap();
        assert!(store.slot(1).is_err());
    }

    /// A format-6 directory without counters (a real build always writes them): the
    /// floor is one past its highest stored chunk, so no chunk is counted twice.
    #[test]
    fn an_upgrade_without_counters_takes_the_floor_from_the_stored_chunks() {
        upgraded_format_6(false);
    }
}
