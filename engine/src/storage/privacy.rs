//! Stored privacy data: suppression list entries (`S`), erasures and their intents (`F`),
//! the audit log (`A`, with the bitmaps of exported profiles under `B`) and objections
//! (`O`).

use super::records::{AuditRecord, ObjectionRecord, StoredRecord};
use super::{codec, keys, stored_bitmap, Counters, Store};
use crate::base::error::StorageError;
use crate::storage::profile::ProfileId;
use roaring::RoaringBitmap;

impl Store {
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

    /// Removes a profile's slot, event chunks (its `E` keys and its event journal entries)
    /// and merge-log entries in one atomic batch,
    /// recording it in dirty set `batch` (for index recovery) with `counters`. The caller
    /// makes it durable ([`Store::flush`]; not here, so that it can apply the batch under
    /// the state lock without holding that lock through an fsync), then destroys the key,
    /// which makes every older version of those values in sled's log unreadable.
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
        // Its entries leave the journal's blocks and sets.
        self.erase_from_journal(pid, &mut b)?;
        let dirty: RoaringBitmap = std::iter::once(pid).collect();
        b.insert(&keys::dirty(batch)[..], super::bitmap_bytes(&dirty));
        b.insert(keys::meta("counters"), codec::encode(counters));
        // The intent: whatever happens after this batch (key destruction, checkpoint,
        // sync states, audit bitmaps) is finished on open until it is removed.
        b.insert(&keys::prefixed_pid(keys::ERASURE, pid)[..], intent);
        self.db.apply_batch(b)?;
        self.journal_dropped(&dirty);
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
            batch.insert(
                &keys::audit(keys::AUDIT_BITMAP, entry.seq)[..],
                super::bitmap_bytes(&pids),
            );
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

    /// Audit entries before `before` (all when `None`), newest first.
    pub(crate) fn audit_entries_newest_first(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let start = keys::audit(keys::AUDIT, 0);
        let end = keys::audit(keys::AUDIT, before.unwrap_or(u64::MAX));
        let mut out = Vec::new();
        for item in self.db.range(start..end).rev().take(limit) {
            let (k, v) = item?;
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
                batch.insert(k, super::bitmap_bytes(&pids));
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
}
