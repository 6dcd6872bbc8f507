//! Export on an open engine: selection, the row pipeline, the output writer and the audit entry.

use crate::base::error::Error;
use crate::engine::Engine;
use crate::export::formats::{writer, BatchOptions, Direction, Format, Written};
use crate::export::pipeline::rows_in_order;
use crate::export::rows::{ProfileRow, RowBuilder};
use crate::export::run::{ExportOptions, ExportReport, SeenHashes, Selection};
use crate::input::normalize::platform::Platform;
use roaring::RoaringBitmap;
use std::io::Write;

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

    /// Builds the rows `format` writes, by `platform`'s rules.
    pub(crate) fn row_builder(&self, format: Format, platform: Platform) -> RowBuilder<'_> {
        RowBuilder {
            platform,
            default_region: self.config().default_region.as_deref(),
            today: crate::base::time::day_of(crate::base::time::now_millis()),
            identifiers_only: format == Format::Hashes,
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
        let mut seen = SeenHashes::with_capacity(selection.exported.len());
        let (mut profiles, mut skipped) = (0u64, 0u64);
        let mut included = RoaringBitmap::new();
        let builder = self.row_builder(options.format, platform);
        let written = rows_in_order(
            &self.store,
            &self.export_cache,
            &builder,
            &selection.exported,
            options.worker_threads(self.export_cache.mostly_cached(
                platform,
                builder.identifiers_only,
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
