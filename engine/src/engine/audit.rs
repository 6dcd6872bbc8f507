//! The audit trail of an open engine: appending entries and reading them.

use crate::base::error::StorageError;
use crate::engine::Engine;
use crate::privacy::audit::{current_actor, AuditEntry};
use crate::storage::profile::ProfileId;
use roaring::RoaringBitmap;

impl Engine {
    /// Records an audit entry (and, for exports, the profiles included).
    pub(crate) fn audit(
        &self,
        action: &str,
        details: serde_json::Value,
        included: Option<&RoaringBitmap>,
    ) -> Result<(), StorageError> {
        let entry = AuditEntry {
            seq: 0,
            at: crate::base::time::now_millis(),
            actor: current_actor(),
            action: action.to_string(),
            details,
        };
        self.store.audit_append(entry.to_record(), included, None)
    }

    /// Audit entries after `after` (exclusive), oldest first, at most `limit`.
    pub fn audit_log(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let records = self.store.audit_entries(after, limit)?;
        Ok(records.into_iter().map(AuditEntry::from_record).collect())
    }

    /// Audit entries before `before` (exclusive; all when `None`), newest first, at most
    /// `limit`: for "the last time something happened" without reading the whole trail.
    pub fn audit_log_newest_first(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let records = self.store.audit_entries_newest_first(before, limit)?;
        Ok(records.into_iter().map(AuditEntry::from_record).collect())
    }

    /// Export entries whose included profiles contain `pid`.
    pub fn exports_including(&self, pid: ProfileId) -> Result<Vec<AuditEntry>, StorageError> {
        let records = self.store.audit_exports_including(pid)?;
        Ok(records.into_iter().map(AuditEntry::from_record).collect())
    }
}
