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

    /// The input lines an interrupted import of `import` applied (empty: none).
    pub(crate) fn import_progress(&self, import: &ImportKey) -> Result<AppliedLines, StorageError> {
        let key = import_progress_key(import);
        let mut applied = AppliedLines::default();
        if let Some(v) = self.db.get(&key)? {
            applied.through = v.as_ref().try_into().map(u64::from_le_bytes).map_err(|_| {
                StorageError::Corrupted {
                    what: "import progress",
                    key: key.clone(),
                    detail: format!("{} bytes, expected 8", v.len()),
                }
            })?;
        }
        for item in self.db.scan_prefix(import_lines_prefix(import)) {
            let (k, v) = item?;
            let lines = roaring::RoaringTreemap::deserialize_from(&v[..]).map_err(|e| {
                StorageError::Corrupted {
                    what: "import progress",
                    key: k.to_vec(),
                    detail: format!("not a set of lines: {e}"),
                }
            })?;
            applied.lines |= lines;
        }
        Ok(applied)
    }

    /// Records lines of a grouped import that a batch which wrote nothing applied (all
    /// rejected), so that a rerun leaves them out too. Durable with the next flush.
    pub(crate) fn record_import_lines(
        &self,
        import: &ImportKey,
        lines: &roaring::RoaringTreemap,
    ) -> Result<(), StorageError> {
        if let Some((key, value)) = import_lines_entry(import, lines) {
            self.db.insert(key, value)?;
        }
        Ok(())
    }

    /// Forgets an import's progress once it finished; durable.
    pub(crate) fn clear_import_progress(&self, import: &ImportKey) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        batch.remove(import_progress_key(import));
        for key in self.db.scan_prefix(import_lines_prefix(import)).keys() {
            batch.remove(key?);
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }
}

/// The entry of one batch's lines of a grouped import (`None` for no lines): under the
/// import's progress key, `/`, and the batch's first line (big-endian), which no other
/// batch of it applies; the lines as a serialized `RoaringTreemap`.
pub(super) fn import_lines_entry(
    import: &ImportKey,
    lines: &roaring::RoaringTreemap,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let first = lines.min()?;
    let mut key = import_lines_prefix(import);
    key.extend_from_slice(&first.to_be_bytes());
    let mut value = Vec::with_capacity(lines.serialized_size());
    lines
        .serialize_into(&mut value)
        .expect("serializing to a Vec");
    Some((key, value))
}

fn import_lines_prefix(import: &ImportKey) -> Vec<u8> {
    let mut key = import_progress_key(import);
    key.push(b'/');
    key
}

/// The input lines an interrupted import applied, so that a rerun leaves them out.
///
/// A file-order import records the last line of each batch (`M import/KEY`: 8 bytes,
/// the batch is everything up to it); a grouped import applies lines out of file order
/// and records each batch's lines (`M import/KEY/FIRST`: a serialized
/// `RoaringTreemap`), in the batch itself either way.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AppliedLines {
    through: u64,
    lines: roaring::RoaringTreemap,
}

impl AppliedLines {
    /// Whether line `line` (1-based) was applied.
    pub fn contains(&self, line: u64) -> bool {
        line <= self.through || self.lines.contains(line)
    }

    /// Whether no line was applied.
    pub fn is_empty(&self) -> bool {
        self.through == 0 && self.lines.is_empty()
    }

    /// How many lines were applied.
    pub fn len(&self) -> u64 {
        self.through + self.lines.iter().filter(|&l| l > self.through).count() as u64
    }

    /// The last line of the longest run of applied lines from line 1.
    pub fn through(&self) -> u64 {
        let mut line = self.through;
        while self.lines.contains(line + 1) {
            line += 1;
        }
        line
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
