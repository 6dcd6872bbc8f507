//! `cidb generate --out FILE --json`, `cidb stats --json`, `cidb check --json`.

use serde::Serialize;
use std::path::PathBuf;

/// What `cidb generate --out FILE` wrote (fields in alphabetical order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generated {
    /// The file.
    pub out: PathBuf,
    /// Persons generated.
    pub persons: u64,
    /// Records (lines) written.
    pub records: u64,
    /// Events in them.
    pub events: u64,
}

impl Generated {
    /// The summary of a run that wrote `out`.
    pub fn new(summary: &engine::GenerateSummary, out: PathBuf) -> Self {
        let engine::GenerateSummary {
            persons,
            records,
            events,
        } = summary;
        Generated {
            out,
            persons: *persons,
            records: *records,
            events: *events,
        }
    }
}

/// Database statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Live profiles.
    pub profiles: u64,
    /// Profile ids issued (live, merged and erased).
    pub profile_ids: u64,
    /// Records ingested.
    pub records: u64,
    /// Merges performed.
    pub merges: u64,
    /// Events ingested.
    pub events: u64,
    /// Index sizes.
    pub indexes: IndexSizes,
    /// Identifier links (distinct identifiers held by live profiles).
    pub identifier_links: u64,
    /// Profiles changed since the last index checkpoint.
    pub dirty_profiles: u64,
    /// Size on disk in bytes.
    pub disk_bytes: u64,
}

/// Index sizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexSizes {
    /// Equality bitmaps.
    pub term_bitmaps: usize,
    /// Their serialized size in bytes.
    pub term_bytes: usize,
    /// Bit-sliced indexes.
    pub numeric_indexes: usize,
    /// Slices across them.
    pub numeric_slices: usize,
    /// Event keys.
    pub event_keys: usize,
    /// Indexed event entries.
    pub event_entries: usize,
}

/// The result of `cidb check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Live profiles read.
    pub profiles: u64,
    /// Events read.
    pub events: u64,
    /// Every difference found (empty when the database is consistent).
    pub problems: Vec<String>,
}

impl From<&engine::Stats> for Stats {
    fn from(s: &engine::Stats) -> Self {
        let engine::Stats {
            profiles,
            profile_ids,
            records,
            merges,
            events,
            indexes,
            identifier_links,
            dirty_profiles,
            disk_bytes,
        } = s;
        Stats {
            profiles: *profiles,
            profile_ids: *profile_ids,
            records: *records,
            merges: *merges,
            events: *events,
            indexes: IndexSizes::from(indexes),
            identifier_links: *identifier_links,
            dirty_profiles: *dirty_profiles,
            disk_bytes: *disk_bytes,
        }
    }
}

impl From<&engine::IndexSizes> for IndexSizes {
    fn from(i: &engine::IndexSizes) -> Self {
        let engine::IndexSizes {
            term_bitmaps,
            term_bytes,
            numeric_indexes,
            numeric_slices,
            event_keys,
            event_entries,
        } = *i;
        IndexSizes {
            term_bitmaps,
            term_bytes,
            numeric_indexes,
            numeric_slices,
            event_keys,
            event_entries,
        }
    }
}

impl From<&engine::CheckReport> for CheckReport {
    fn from(c: &engine::CheckReport) -> Self {
        let engine::CheckReport {
            profiles,
            events,
            problems,
        } = c;
        CheckReport {
            profiles: *profiles,
            events: *events,
            problems: problems.clone(),
        }
    }
}

/// What `cidb compact` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompactReport {
    /// Keys copied.
    pub keys: u64,
    /// Bytes of keys and values copied (the live data).
    pub live_bytes: u64,
    /// Size of the storage directory before.
    pub bytes_before: u64,
    /// Size of the storage directory after.
    pub bytes_after: u64,
}

impl From<&engine::CompactReport> for CompactReport {
    fn from(c: &engine::CompactReport) -> Self {
        let engine::CompactReport {
            keys,
            live_bytes,
            bytes_before,
            bytes_after,
        } = *c;
        CompactReport {
            keys,
            live_bytes,
            bytes_before,
            bytes_after,
        }
    }
}

/// What `cidb dump-tables` wrote: rows per table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TablesDumped {
    /// The directory.
    pub out: PathBuf,
    /// Rows of `profiles` (live profiles).
    pub profiles: u64,
    /// Rows of `list_values`.
    pub list_values: u64,
    /// Rows of `identifier_types`.
    pub identifier_types: u64,
    /// Rows of `consent`.
    pub consent: u64,
    /// Rows of `sources`.
    pub sources: u64,
    /// Rows of `events`.
    pub events: u64,
    /// Rows of `suppressed` (live profiles on each suppression list).
    pub suppressed: u64,
    /// Rows of `scores` (one per live profile and model).
    pub scores: u64,
}

super::answers!(Generated, Stats, CheckReport, CompactReport, TablesDumped);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_keep_every_field_in_order() {
        let s = engine::Stats {
            profiles: 1,
            profile_ids: 2,
            records: 3,
            merges: 4,
            events: 5,
            indexes: engine::IndexSizes {
                term_bitmaps: 6,
                term_bytes: 7,
                numeric_indexes: 8,
                numeric_slices: 9,
                event_keys: 10,
                event_entries: 11,
            },
            identifier_links: 12,
            dirty_profiles: 13,
            disk_bytes: 14,
        };
        assert_eq!(
            serde_json::to_string(&Stats::from(&s)).unwrap(),
            r#"{"profiles":1,"profile_ids":2,"records":3,"merges":4,"events":5,"indexes":{"term_bitmaps":6,"term_bytes":7,"numeric_indexes":8,"numeric_slices":9,"event_keys":10,"event_entries":11},"identifier_links":12,"dirty_profiles":13,"disk_bytes":14}"#
        );
    }
}
