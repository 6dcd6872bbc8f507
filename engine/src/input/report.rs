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
    /// For a resumable import that resumed an interrupted import of the same input:
    /// every line up to this one was applied before (`None`: it started at the
    /// beginning, or line 1 was not applied). A grouped import
    /// (`Engine::import_jsonl_file`) applies lines out of file order and does not record
    /// blank lines, so this is a lower bound: see `resumed_skipped_lines`.
    pub resumed_after_line: Option<u64>,
    /// For a resumed import: how many input lines the interrupted one had applied,
    /// which this one left out.
    pub resumed_skipped_lines: Option<u64>,
}

impl IngestReport {
    /// Records a rejected record.
    pub fn reject(&mut self, line: u64, field: Option<String>, reason: String) {
        self.rejected_count += 1;
        keep_first_lines(
            &mut self.rejected,
            Rejected {
                line,
                field,
                reason,
            },
            |r| r.line,
        );
    }

    /// Records a field warning.
    pub fn warn(&mut self, line: u64, field: String, reason: String) {
        self.warning_count += 1;
        keep_first_lines(
            &mut self.warnings,
            Warning {
                line,
                field,
                reason,
            },
            |w| w.line,
        );
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
        for r in other.rejected {
            keep_first_lines(&mut self.rejected, r, |r| r.line);
        }
        for w in other.warnings {
            keep_first_lines(&mut self.warnings, w, |w| w.line);
        }
        for (source, fields) in other.dropped_by_scope {
            let mine = self.dropped_by_scope.entry(source).or_default();
            for (f, n) in fields {
                *mine.entry(f).or_default() += n;
            }
        }
    }
}

/// Lists `item` if it is among the [`MAX_LISTED_PROBLEMS`] earliest lines seen. The list
/// stays sorted by line (problems of one line in the order they were found), so a full
/// list only compares with its last entry: in file order that is all it ever does; a
/// grouped import applies lines out of order, and an earlier line replaces the latest.
fn keep_first_lines<T>(list: &mut Vec<T>, item: T, line: impl Fn(&T) -> u64) {
    let at = line(&item);
    if list.len() >= MAX_LISTED_PROBLEMS {
        match list.last() {
            Some(latest) if at < line(latest) => {
                list.pop();
            }
            _ => return,
        }
    }
    let position = list.partition_point(|x| line(x) <= at);
    list.insert(position, item);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever order lines come in, across batches, the report lists the earliest
        /// lines' problems, by line, each line's in the order they were found.
        #[test]
        fn reports_list_the_earliest_lines_in_order(
            batches in proptest::collection::vec(
                proptest::collection::vec(0..3_000u64, 0..1_200),
                1..4,
            ),
        ) {
            let mut total = IngestReport::default();
            let mut all = Vec::new();
            for (b, lines) in batches.iter().enumerate() {
                let mut report = IngestReport::default();
                for (i, &line) in lines.iter().enumerate() {
                    let reason = format!("{b}/{i}");
                    report.warn(line, "f".into(), reason.clone());
                    all.push((line, reason));
                }
                total.absorb(report);
            }
            all.sort_by_key(|(line, _)| *line);
            all.truncate(MAX_LISTED_PROBLEMS);
            let listed: Vec<(u64, String)> =
                total.warnings.iter().map(|w| (w.line, w.reason.clone())).collect();
            prop_assert_eq!(listed, all);
        }
    }
}
