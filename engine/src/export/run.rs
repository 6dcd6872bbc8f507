//! `Engine::export`: who is exported (`segment AND policy AND NOT suppressed`), the
//! pipeline, the writer, and the report.

use super::formats::Format;
use super::rows::{FieldStats, ProfileRow};
use crate::input::normalize::platform::Platform;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::HashSet;

/// Audiences smaller than this are reported with a warning by default: platforms match
/// too few people to deliver.
pub const DEFAULT_MIN_AUDIENCE: u64 = 1_000;

/// How to export.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Output format.
    pub format: Format,
    /// Normalization rules for `hashes` (other formats imply their platform).
    pub platform: Option<Platform>,
    /// Worker threads (0 = number of cores).
    pub threads: usize,
    /// Warn below this many exported profiles.
    pub min_audience: u64,
    /// `session_id` of `meta-api` bodies (kept deterministic: same options, same bytes).
    pub session_id: u64,
    /// The policy's expression text, recorded in the audit entry (the query layer sets
    /// it; the engine never parses it).
    pub policy_text: Option<String>,
}

impl ExportOptions {
    /// Defaults for `format`.
    pub fn new(format: Format) -> Self {
        ExportOptions {
            format,
            platform: None,
            threads: 0,
            min_audience: DEFAULT_MIN_AUDIENCE,
            session_id: 1,
            policy_text: None,
        }
    }

    /// Sets the platform (for `hashes`).
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }

    /// Sets the worker threads (0 = cores).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets the minimum audience size for the warning.
    pub fn with_min_audience(mut self, n: u64) -> Self {
        self.min_audience = n;
        self
    }

    /// Sets the policy text the audit entry records.
    pub fn with_policy_text(mut self, policy: impl Into<String>) -> Self {
        self.policy_text = Some(policy.into());
        self
    }

    /// Sets the Meta session id.
    pub fn with_session_id(mut self, id: u64) -> Self {
        self.session_id = id;
        self
    }

    /// The platform whose rules apply.
    pub fn platform(&self) -> Platform {
        match self.format {
            Format::Hashes => self.platform.unwrap_or(Platform::Meta),
            f => f.platform(),
        }
    }

    /// Worker threads: as set, or by default one per core, but one fewer when most rows
    /// come from the row cache (then the ordered consumer, formatting on its own thread,
    /// is the bottleneck and needs a core of its own; measured on two cores).
    pub(crate) fn worker_threads(&self, mostly_cached: bool) -> usize {
        match self.threads {
            0 => {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                if mostly_cached {
                    (cores - 1).max(1)
                } else {
                    cores
                }
            }
            n => n,
        }
    }
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportReport {
    /// Format name.
    pub format: &'static str,
    /// Platform whose rules applied.
    pub platform: &'static str,
    /// Live members of the segment.
    pub members: u64,
    /// Members outside the destination policy (e.g. no `custom_audiences` consent).
    pub removed_by_policy: u64,
    /// Members with an identifier on a suppression list.
    pub removed_by_suppression: u64,
    /// Members without a valid email or phone (nothing to match on).
    pub skipped_no_identifier: u64,
    /// Members merged or erased while the export ran.
    pub skipped_changed: u64,
    /// Profiles written.
    pub profiles: u64,
    /// Rows written (CSV or `hashes` lines, API rows or operations).
    pub rows: u64,
    /// API request bodies (1 for a non-empty file format).
    pub batches: u64,
    /// Valid and invalid values per field.
    pub fields: FieldStats,
    /// Warnings (e.g. below the minimum audience size).
    pub warnings: Vec<String>,
}

/// Identifier hashes already written to a file (by their first 128 bits), so each
/// appears once. (SHA-256 output needs no keyed hashing against flooding: foldhash.)
#[derive(Default)]
pub(crate) struct SeenHashes(HashSet<u128, foldhash::fast::RandomState>);

/// The most hashes [`SeenHashes::with_capacity`] reserves room for up front: 2^21 buckets
/// at hashbrown's 7/8 load, about 36 MB (one more would double the table).
const MOST_RESERVED: usize = 1_835_008;

impl SeenHashes {
    /// A set with room for the hashes of `profiles` rows (about 1.3 each), so a large
    /// export does not rehash the set as it grows.
    pub(crate) fn with_capacity(profiles: u64) -> Self {
        let room = usize::try_from(profiles.saturating_mul(4) / 3).unwrap_or(usize::MAX);
        SeenHashes(HashSet::with_capacity_and_hasher(
            room.min(MOST_RESERVED),
            foldhash::fast::RandomState::default(),
        ))
    }

    /// Drops from `row` the email and phone hashes written before.
    pub(crate) fn dedupe(&mut self, row: &mut ProfileRow) {
        let seen = &mut self.0;
        let mut first = |h: &String| seen.insert(leading_bits(h));
        row.emails.retain(&mut first);
        row.phones.retain(&mut first);
    }
}

/// The first 128 bits of a hex digest (0 for text that is not hex).
fn leading_bits(hex: &str) -> u128 {
    let Some(head) = hex.as_bytes().get(..32) else {
        return 0;
    };
    let mut bits = 0u128;
    for &c in head {
        let nibble = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return 0,
        };
        bits = bits << 4 | u128::from(nibble);
    }
    bits
}

/// The members left after policy and suppression, with the counts removed.
pub(crate) struct Selection {
    pub(crate) members: u64,
    pub(crate) removed_by_policy: u64,
    pub(crate) removed_by_suppression: u64,
    pub(crate) exported: RoaringBitmap,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::digest::sha256_hex;

    /// The key of a hash is its first 32 hex digits read as a number, as
    /// `u128::from_str_radix` reads them; text that is not hex is 0.
    #[test]
    fn a_hash_is_keyed_by_its_leading_128_bits() {
        for s in ["a@example.com", "b", "31612345678"] {
            let hex = sha256_hex(s);
            let reference = u128::from_str_radix(&hex[..32], 16).unwrap();
            assert_eq!(leading_bits(&hex), reference);
            assert_eq!(leading_bits(&hex.to_ascii_uppercase()), reference);
        }
        assert_eq!(leading_bits(&"f".repeat(32)), u128::MAX);
        for odd in ["", "abc", &"g".repeat(64), &"é".repeat(32)] {
            assert_eq!(leading_bits(odd), 0, "{odd}");
        }
    }

    /// A row keeps the first of equal hashes, across rows and between emails and phones.
    #[test]
    fn each_hash_is_written_once() {
        let (a, b) = (sha256_hex("a"), sha256_hex("b"));
        let mut seen = SeenHashes::with_capacity(2);
        let mut row = ProfileRow {
            emails: vec![a.clone(), a.clone(), b.clone()],
            ..ProfileRow::default()
        };
        seen.dedupe(&mut row);
        assert_eq!(row.emails, [a.clone(), b.clone()]);
        let mut again = ProfileRow {
            emails: vec![b],
            phones: vec![a],
            ..ProfileRow::default()
        };
        seen.dedupe(&mut again);
        assert!(!again.has_identifier());
    }
}
