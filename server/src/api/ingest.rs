//! The ingest report: `cidb import --json` (fields in declaration order) and
//! `POST /v1/records` (sorted).

use serde::Serialize;
use std::collections::BTreeMap;

/// What an import or an ingest batch did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestReport {
    /// Records read.
    pub records: u64,
    /// Records applied.
    pub accepted: u64,
    /// Profiles created.
    pub new_profiles: u64,
    /// Existing profiles changed.
    pub updated_profiles: u64,
    /// Profiles merged into others.
    pub merged_profiles: u64,
    /// Records rejected (all of them).
    pub rejected_count: u64,
    /// The first rejected records.
    pub rejected: Vec<Rejected>,
    /// Field warnings (all of them).
    pub warning_count: u64,
    /// The first warnings.
    pub warnings: Vec<Warning>,
    /// Fields dropped by a source's scope policy: source → field → count.
    pub dropped_by_scope: BTreeMap<String, BTreeMap<String, u64>>,
    /// Write batches committed.
    pub batches: u64,
    /// A resumed import: every line up to this one was applied before.
    pub resumed_after_line: Option<u64>,
    /// A resumed import: how many lines were applied before (a grouped import applies
    /// lines out of file order, so more than `resumed_after_line`).
    pub resumed_skipped_lines: Option<u64>,
}

/// A rejected record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// 1-based line (or record number).
    pub line: u64,
    /// The field at fault, if one.
    pub field: Option<String>,
    /// Why.
    pub reason: String,
}

/// A value ignored in an accepted record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// 1-based line (or record number).
    pub line: u64,
    /// The field.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl From<&engine::IngestReport> for IngestReport {
    fn from(r: &engine::IngestReport) -> Self {
        let engine::IngestReport {
            records,
            accepted,
            new_profiles,
            updated_profiles,
            merged_profiles,
            rejected_count,
            rejected,
            warning_count,
            warnings,
            dropped_by_scope,
            batches,
            resumed_after_line,
            resumed_skipped_lines,
        } = r;
        IngestReport {
            records: *records,
            accepted: *accepted,
            new_profiles: *new_profiles,
            updated_profiles: *updated_profiles,
            merged_profiles: *merged_profiles,
            rejected_count: *rejected_count,
            rejected: rejected.iter().map(Rejected::from).collect(),
            warning_count: *warning_count,
            warnings: warnings.iter().map(Warning::from).collect(),
            dropped_by_scope: dropped_by_scope
                .iter()
                .map(|(source, fields)| (source.clone(), fields.clone()))
                .collect(),
            batches: *batches,
            resumed_after_line: *resumed_after_line,
            resumed_skipped_lines: *resumed_skipped_lines,
        }
    }
}

impl From<&engine::Rejected> for Rejected {
    fn from(r: &engine::Rejected) -> Self {
        let engine::Rejected {
            line,
            field,
            reason,
        } = r;
        Rejected {
            line: *line,
            field: field.clone(),
            reason: reason.clone(),
        }
    }
}

impl From<&engine::Warning> for Warning {
    fn from(w: &engine::Warning) -> Self {
        let engine::Warning {
            line,
            field,
            reason,
        } = w;
        Warning {
            line: *line,
            field: field.clone(),
            reason: reason.clone(),
        }
    }
}

super::answers!(IngestReport);

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> engine::IngestReport {
        let mut r = engine::IngestReport {
            records: 3,
            accepted: 2,
            new_profiles: 1,
            updated_profiles: 1,
            merged_profiles: 0,
            batches: 1,
            ..Default::default()
        };
        r.reject(3, Some("source".into()), "missing".into());
        r.warn(
            2,
            "identifiers.phone".into(),
            "blocked value ignored".into(),
        );
        r.dropped_by_scope
            .entry("web".into())
            .or_default()
            .insert("birth_date".into(), 1);
        r
    }

    #[test]
    fn the_cli_form_keeps_every_field_in_order() {
        let json = serde_json::to_string(&IngestReport::from(&report())).unwrap();
        assert_eq!(
            json,
            r#"{"records":3,"accepted":2,"new_profiles":1,"updated_profiles":1,"merged_profiles":0,"rejected_count":1,"rejected":[{"line":3,"field":"source","reason":"missing"}],"warning_count":1,"warnings":[{"line":2,"field":"identifiers.phone","reason":"blocked value ignored"}],"dropped_by_scope":{"web":{"birth_date":1}},"batches":1,"resumed_after_line":null,"resumed_skipped_lines":null}"#
        );
    }

    #[test]
    fn the_http_form_is_sorted() {
        // `POST /v1/records` (golden h-ingest.json).
        let json =
            serde_json::to_string(&crate::api::sorted(&IngestReport::from(&report())).unwrap())
                .unwrap();
        assert_eq!(
            json,
            r#"{"accepted":2,"batches":1,"dropped_by_scope":{"web":{"birth_date":1}},"merged_profiles":0,"new_profiles":1,"records":3,"rejected":[{"field":"source","line":3,"reason":"missing"}],"rejected_count":1,"resumed_after_line":null,"resumed_skipped_lines":null,"updated_profiles":1,"warning_count":1,"warnings":[{"field":"identifiers.phone","line":2,"reason":"blocked value ignored"}]}"#
        );
    }
}
