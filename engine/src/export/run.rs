//! `Engine::export`: who is exported (`segment AND policy AND NOT suppressed`), the
//! pipeline, the writer, and the report.

use super::formats::{writer, BatchOptions, Direction, Format, Written};
use super::pipeline::rows_in_order;
use super::rows::{FieldStats, ProfileRow, RowBuilder};
use crate::base::error::Error;
use crate::engine::Engine;
use crate::input::normalize::platform::Platform;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::HashSet;
use std::io::Write;

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
/// appears once.
#[derive(Default)]
pub(crate) struct SeenHashes(HashSet<u128>);

impl SeenHashes {
    /// Drops from `row` the email and phone hashes written before.
    pub(crate) fn dedupe(&mut self, row: &mut ProfileRow) {
        let seen = &mut self.0;
        let mut first = |h: &String| {
            let key = h
                .get(..32)
                .and_then(|p| u128::from_str_radix(p, 16).ok())
                .unwrap_or_default();
            seen.insert(key)
        };
        row.emails.retain(&mut first);
        row.phones.retain(&mut first);
    }
}

/// The members left after policy and suppression, with the counts removed.
pub(crate) struct Selection {
    pub(crate) members: u64,
    pub(crate) removed_by_policy: u64,
    pub(crate) removed_by_suppression: u64,
    pub(crate) exported: RoaringBitmap,
}

impl Engine {
    /// `segment AND policy AND NOT suppressed`, on one snapshot (live profiles only).
    pub(crate) fn select(&self, segment: &RoaringBitmap, policy: &RoaringBitmap) -> Selection {
        let snap = self.snapshot();
        let members = segment & snap.indexes().live();
        let allowed = &members & policy;
        let suppressed = snap.suppressed(None).cloned().unwrap_or_default();
        let exported = &allowed - &suppressed;
        Selection {
            members: members.len(),
            removed_by_policy: members.len() - allowed.len(),
            removed_by_suppression: allowed.len() - exported.len(),
            exported,
        }
    }

    pub(crate) fn row_builder(&self, platform: Platform) -> RowBuilder<'_> {
        RowBuilder {
            platform,
            default_region: self.config().default_region.as_deref(),
            today: crate::base::time::day_of(crate::base::time::now_millis()),
        }
    }

    /// Exports the members of `segment` (a bitmap from the query layer) that are in
    /// `policy` and on no suppression list, hashed for the format's platform, to `out`.
    /// Rows come in profile-id order; each email and phone hash appears once per file.
    pub fn export(
        &self,
        segment: &RoaringBitmap,
        policy: &RoaringBitmap,
        options: &ExportOptions,
        out: &mut dyn Write,
    ) -> Result<ExportReport, Error> {
        let selection = self.select(segment, policy);
        let platform = options.platform();
        let mut report = ExportReport {
            format: options.format.name(),
            platform: platform.name(),
            members: selection.members,
            removed_by_policy: selection.removed_by_policy,
            removed_by_suppression: selection.removed_by_suppression,
            ..Default::default()
        };
        let batch = BatchOptions {
            direction: Direction::Add,
            session_id: options.session_id,
            estimated_total: selection.exported.len(),
        };
        let mut w = writer(options.format, out, batch).map_err(Error::Output)?;
        let mut seen = SeenHashes::default();
        let (mut profiles, mut skipped) = (0u64, 0u64);
        let mut included = RoaringBitmap::new();
        let builder = self.row_builder(platform);
        let written = rows_in_order(
            &self.store,
            &self.export_cache,
            &builder,
            &selection.exported,
            options.worker_threads(self.export_cache.mostly_cached(
                platform,
                builder.today,
                selection.exported.len(),
            )),
            &mut |mut row: ProfileRow| {
                seen.dedupe(&mut row);
                if !row.has_identifier() {
                    skipped += 1;
                    return Ok(());
                }
                profiles += 1;
                included.insert(row.pid);
                w.push(&row)
            },
        )?
        .map_err(Error::Output)
        .and_then(|stats| Ok((stats, w.finish().map_err(Error::Output)?)));
        let ((fields, vanished), Written { rows, batches }) = match written {
            Ok(done) => done,
            Err(e) => {
                // Rows may have reached the reader before the output failed (a client
                // that went away): audit what was handed out, marked incomplete.
                self.audit(
                    "export",
                    serde_json::json!({
                        "format": report.format, "platform": report.platform,
                        "members": report.members, "profiles": profiles,
                        "policy": options.policy_text, "completed": false,
                    }),
                    Some(&included),
                )?;
                return Err(e);
            }
        };
        report.skipped_no_identifier = skipped;
        report.skipped_changed = vanished;
        report.profiles = profiles;
        report.rows = rows;
        report.batches = batches;
        report.fields = fields;
        if profiles < options.min_audience {
            report.warnings.push(format!(
                "only {profiles} profiles exported, below the minimum audience size of {}: platforms may not deliver to it",
                options.min_audience
            ));
        }
        self.audit(
            "export",
            serde_json::json!({
                "format": report.format, "platform": report.platform, "members": report.members,
                "removed_by_policy": report.removed_by_policy,
                "removed_by_suppression": report.removed_by_suppression,
                "profiles": report.profiles, "rows": report.rows,
                "policy": options.policy_text,
            }),
            Some(&included),
        )?;
        tracing::info!(format = report.format, profiles, rows, "export written");
        Ok(report)
    }
}
