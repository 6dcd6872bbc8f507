//! Request progress kept in the meta space (`M`): the answers of idempotent ingests
//! (`M idem/…`) and how far a resumable import got (`M import/…`).

use super::{keys, Store};
use crate::base::error::StorageError;

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
    pub(super) fn encode(&self) -> Vec<u8> {
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

pub(super) fn idempotency_key(key: &[u8; 32]) -> Vec<u8> {
    let mut k = keys::meta("idem/");
    k.extend_from_slice(key);
    k
}

/// Identifies one import input (see `ImportOptions::resumable`).
pub(crate) type ImportKey = [u8; 32];

pub(super) fn import_progress_key(import: &ImportKey) -> Vec<u8> {
    let mut name = String::from("import/");
    for b in import {
        name.push_str(&format!("{b:02x}"));
    }
    keys::meta(&name)
}

impl Store {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
