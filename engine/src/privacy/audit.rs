//! The audit trail: every export, sync, erasure and suppression-list change, with who did
//! it (an API key id, `cli`, or `embedded`), when, what and counts. Exports also keep the
//! bitmap of profiles they included, so an access request can list every export that
//! included a person; erasure removes the person from those bitmaps.
//!
//! sled keys: `A` seq:u64 BE → a stored `AuditRecord`; `B` seq:u64 BE → roaring bitmap of
//! the profiles an export included. Entries hold ids, names and counts, never personal
//! values.

use crate::base::time::Millis;
use crate::storage::records::AuditRecord;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

thread_local! {
    static ACTOR: RefCell<String> = RefCell::new("embedded".to_string());
}

/// Runs `f` with `actor` recorded as the author of the audited operations it performs on
/// this thread (`key:<id>` for API keys, `cli` for the command line).
pub fn with_actor<T>(actor: &str, f: impl FnOnce() -> T) -> T {
    let previous = ACTOR.with(|a| std::mem::replace(&mut *a.borrow_mut(), actor.to_string()));
    let result = f();
    ACTOR.with(|a| *a.borrow_mut() = previous);
    result
}

pub(crate) fn current_actor() -> String {
    ACTOR.with(|a| a.borrow().clone())
}

/// One audited operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number (ascending).
    pub seq: u64,
    /// When (ms since the epoch).
    pub at: Millis,
    /// Who: `key:<id>`, `cli` or `embedded`.
    pub actor: String,
    /// What: `export`, `sync`, `sync_ack`, `forget`, `suppress_import`, `suppress_delete`.
    pub action: String,
    /// Details: format, destination, list, counts (no personal values).
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// The stored form.
    pub(crate) fn to_record(&self) -> AuditRecord {
        AuditRecord {
            seq: self.seq,
            at: self.at,
            actor: self.actor.clone(),
            action: self.action.clone(),
            details: self.details.to_string(),
        }
    }

    /// The entry a stored record holds (details that are not JSON, which this build never
    /// writes, come back as a string).
    pub(crate) fn from_record(record: AuditRecord) -> AuditEntry {
        let details = serde_json::from_str(&record.details)
            .unwrap_or(serde_json::Value::String(record.details));
        AuditEntry {
            seq: record.seq,
            at: record.at,
            actor: record.actor,
            action: record.action,
            details,
        }
    }
}
