//! Write batches: everything one ingest batch or erasure writes, applied with one atomic
//! `apply_batch` (`Store::apply`).

use super::journal::{self, JournalEntries};
use super::progress::{
    idempotency_key, import_lines_entry, import_progress_key, IdempotencyEntry, ImportKey,
};
use super::SEALED_ENTRY_CAPACITY;
use super::{codec, keys, Counters, EventChunk, MergeLogEntry, Store};
use crate::base::error::StorageError;
use crate::storage::profile::ProfileId;
use roaring::RoaringBitmap;

/// Writes to apply atomically.
#[derive(Default)]
pub(crate) struct WriteBatch {
    pub(super) batch: sled::Batch,
    pub(super) issued_keys: bool,
    /// The batch's own journal set, added to the sets in memory once applied.
    pub(super) journal_added: Option<(u64, RoaringBitmap)>,
    /// Profiles whose journal chunks the batch erases or moves away.
    pub(super) journal_dropped: RoaringBitmap,
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

    /// Records, in the batch itself, the lines of a grouped import that it applies
    /// (not a run from the start of the input, see [`super::AppliedLines`]).
    pub(crate) fn put_import_lines(&mut self, import: &ImportKey, lines: &roaring::RoaringTreemap) {
        if let Some((key, value)) = import_lines_entry(import, lines) {
            self.batch.insert(key, value);
        }
    }
}

impl WriteBatch {
    /// Records, in the batch itself, the answer to an idempotent ingest.
    pub(crate) fn put_idempotency(&mut self, key: &[u8; 32], entry: &IdempotencyEntry) {
        self.batch.insert(idempotency_key(key), entry.encode());
    }
}

/// Builds a write batch against a store.
pub(crate) struct BatchWriter<'a> {
    store: &'a Store,
    batch: WriteBatch,
}

impl Store {
    /// One record's events as stored under `pid` at `seq`: encoded and sealed with the
    /// profile's key (which must be issued). Safe to call from several threads.
    pub(crate) fn sealed_events(&self, pid: ProfileId, seq: u64, chunk: &EventChunk) -> Vec<u8> {
        let key = keys::pid_seq(keys::EVENTS, pid, seq);
        let mut sealed = Vec::with_capacity(SEALED_ENTRY_CAPACITY);
        self.seal_for(pid, &key, &mut sealed, |buf| {
            codec::encode_packed_into(chunk, buf)
        });
        sealed
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
        self.batch
            .batch
            .insert(&keys::dirty(batch)[..], super::bitmap_bytes(pids));
    }

    /// Records which profiles batch number `batch` stores events-only chunks for.
    pub(crate) fn put_uncounted(&mut self, batch: u64, pids: &RoaringBitmap) {
        self.batch
            .batch
            .insert(&keys::uncounted(batch)[..], super::bitmap_bytes(pids));
    }

    /// Stores one record's events sealed earlier with [`Store::sealed_events`].
    pub(crate) fn put_sealed_events(&mut self, pid: ProfileId, seq: u64, value: Vec<u8>) {
        self.batch
            .batch
            .insert(&keys::pid_seq(keys::EVENTS, pid, seq)[..], value);
    }

    /// Stores the chunks of batch number `batch` that go to the event journal (see
    /// `storage::journal`): its blocks and its set of profiles.
    pub(crate) fn put_journal(&mut self, batch: u64, entries: JournalEntries) {
        if entries.is_empty() {
            return;
        }
        let (blocks, pids) = entries.into_blocks(batch);
        for (key, value) in blocks {
            self.batch.batch.insert(key, value);
        }
        self.batch
            .batch
            .insert(&journal::set_key(batch)[..], super::bitmap_bytes(&pids));
        self.batch.journal_added = Some((batch, pids));
    }

    /// Takes `pid`'s chunks out of the event journal (they are read and stored anew
    /// under another profile, or erased). Written by [`BatchWriter::finish`].
    pub(crate) fn drop_from_journal(&mut self, pid: ProfileId) {
        self.batch.journal_dropped.insert(pid);
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
        self.store.seal_for(pid, &key, &mut sealed, |buf| {
            codec::encode_compressed_into(value, buf)
        });
        self.batch.batch.insert(&key[..], sealed);
    }

    /// Finishes the batch.
    pub(crate) fn finish(mut self) -> Result<WriteBatch, StorageError> {
        if !self.batch.journal_dropped.is_empty() {
            self.store
                .drop_from_journal(&self.batch.journal_dropped, &mut self.batch.batch)?;
        }
        Ok(self.batch)
    }
}
