//! The ingest report.

use crate::base::limits::MAX_LISTED_PROBLEMS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A rejected record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// 1-based line (JSON Lines, CSV data row counted from the header line) or position in
    /// the batch.
    pub line: u64,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// Why.
    pub reason: String,
}

/// A problem with one field that did not reject the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Line, as in [`Rejected`].
    pub line: u64,
    /// The field.
    pub field: String,
    /// What happened.
    pub reason: String,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestReport {
    /// Records read.
    pub records: u64,
    /// Records applied.
    pub accepted: u64,
    /// Profiles created (and still live at the end).
    pub new_profiles: u64,
    /// Existing profiles changed.
    pub updated_profiles: u64,
    /// Merges of two profiles into one.
    pub merged_profiles: u64,
    /// Records rejected (total).
    pub rejected_count: u64,
    /// The first rejected records.
    pub rejected: Vec<Rejected>,
    /// Field warnings (total).
    pub warning_count: u64,
    /// The first field warnings (bad or blocked identifiers, limit conflicts, ...).
    pub warnings: Vec<Warning>,
    /// Fields dropped by scope policy: source → field → count.
    pub dropped_by_scope: BTreeMap<String, BTreeMap<String, u64>>,
    /// Batches committed.
    pub batches: u64,
    /// For a resumable import: the input line after which it resumed an interrupted
    /// import of the same input (`None`: it started at the beginning).
    pub resumed_after_line: Option<u64>,
}

impl IngestReport {
    /// Records a rejected record.
    pub fn reject(&mut self, line: u64, field: Option<String>, reason: String) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED_PROBLEMS {
            self.rejected.push(Rejected {
                line,
                field,
                reason,
            });
        }
    }

    /// Records a field warning.
    pub fn warn(&mut self, line: u64, field: String, reason: String) {
        self.warning_count += 1;
        if self.warnings.len() < MAX_LISTED_PROBLEMS {
            self.warnings.push(Warning {
                line,
                field,
                reason,
            });
        }
    }

    /// Adds another report (of a later batch) to this one.
    pub fn absorb(&mut self, other: IngestReport) {
        self.records += other.records;
        self.accepted += other.accepted;
        self.new_profiles += other.new_profiles;
        self.updated_profiles += other.updated_profiles;
        self.merged_profiles += other.merged_profiles;
        self.rejected_count += other.rejected_count;
        self.warning_count += other.warning_count;
        self.batches += other.batches;
        let room = MAX_LISTED_PROBLEMS.saturating_sub(self.rejected.len());
        self.rejected.extend(other.rejected.into_iter().take(room));
        let room = MAX_LISTED_PROBLEMS.saturating_sub(self.warnings.len());
        self.warnings.extend(other.warnings.into_iter().take(room));
        for (source, fields) in other.dropped_by_scope {
            let mine = self.dropped_by_scope.entry(source).or_default();
            for (f, n) in fields {
                *mine.entry(f).or_default() += n;
            }
        }
    }
}
