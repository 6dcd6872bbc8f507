//! Hashed audiences from segment expressions: the query layer evaluates the segment and
//! the policy on one snapshot and hands both bitmaps to the engine's export stage
//! (`engine::export`), which never parses expressions.

use crate::error::Error;
use crate::saved::valid_name;
use crate::segments::Segments;
use engine::export::{Destination, ExportOptions, ExportReport, Format, Platform, SyncReport};
use std::io::Write;
use std::path::Path;

/// The policy a destination or export uses unless told otherwise (export.md).
pub const DEFAULT_POLICY: &str = r#"consent("custom_audiences")"#;

/// The expression for a command-line `SEGMENT_OR_EXPR`: a saved segment's name becomes
/// `segment("name")`; anything else is an expression.
pub fn segment_or_expr(segments: &Segments<'_>, arg: &str) -> Result<String, Error> {
    if valid_name(arg) && segments.get(arg).is_ok() {
        // Saved segment names are `[A-Za-z0-9_.-]`: nothing to escape.
        Ok(format!("segment(\"{arg}\")"))
    } else {
        Ok(arg.to_string())
    }
}

/// What to create a destination from.
#[derive(Debug, Clone)]
pub struct DestinationSpec {
    /// Name (`[a-z0-9_-]{1,64}`).
    pub name: String,
    /// Output format.
    pub format: Format,
    /// Platform rules for `hashes` (the format's platform otherwise).
    pub platform: Option<Platform>,
    /// Saved segment name or expression.
    pub segment: String,
    /// Policy expression (`None`: [`DEFAULT_POLICY`]).
    pub policy: Option<String>,
    /// Never emit removes.
    pub additive_only: bool,
    /// Where cidb itself sends the syncs (platforms.md).
    pub push: Option<engine::export::PushTarget>,
}

impl Segments<'_> {
    /// Exports the members of `segment` (a saved segment name or an expression) that
    /// satisfy `policy` (default [`DEFAULT_POLICY`]) and are on no suppression list.
    pub fn export(
        &self,
        segment: &str,
        policy: Option<&str>,
        options: &ExportOptions,
        out: &mut dyn Write,
    ) -> Result<ExportReport, Error> {
        let segment = segment_or_expr(self, segment)?;
        let policy = policy.unwrap_or(DEFAULT_POLICY);
        let sets = self.evaluate_all(&[&segment, policy])?;
        // The audit entry records the policy applied.
        let options = options.clone().with_policy_text(policy);
        Ok(self.engine().export(&sets[0], &sets[1], &options, out)?)
    }

    /// Creates (or replaces) a destination after checking its segment and policy.
    pub fn create_destination(&self, spec: &DestinationSpec) -> Result<Destination, Error> {
        let policy = spec
            .policy
            .clone()
            .unwrap_or_else(|| DEFAULT_POLICY.to_string());
        let segment = segment_or_expr(self, &spec.segment)?;
        self.evaluate_all(&[&segment, &policy])?;
        let destination = Destination {
            name: spec.name.clone(),
            format: spec.format,
            platform: spec.platform.unwrap_or(spec.format.platform()),
            segment: spec.segment.clone(),
            policy,
            additive_only: spec.additive_only,
            created_at: engine::now_millis(),
            push: spec.push.clone(),
        };
        self.engine().destination_put(&destination)?;
        Ok(destination)
    }

    /// The counts a sync of `destination` would have now (adds, removes, ...), writing
    /// nothing.
    pub fn sync_preview(&self, destination: &str) -> Result<SyncReport, Error> {
        let dest =
            self.engine()
                .destination(destination)?
                .ok_or_else(|| engine::Error::NotFound {
                    what: "destination",
                    name: destination.to_string(),
                })?;
        let segment = segment_or_expr(self, &dest.segment)?;
        let sets = self.evaluate_all(&[&segment, &dest.policy])?;
        Ok(self
            .engine()
            .sync_preview_evaluated(&dest, &sets[0], &sets[1])?)
    }

    /// Syncs a destination into `out_dir` (`adds.*`, `removes.*`); acknowledge with
    /// [`engine::Engine::sync_ack`] once uploaded.
    pub fn sync(&self, destination: &str, out_dir: &Path) -> Result<SyncReport, Error> {
        let dest =
            self.engine()
                .destination(destination)?
                .ok_or_else(|| engine::Error::NotFound {
                    what: "destination",
                    name: destination.to_string(),
                })?;
        let segment = segment_or_expr(self, &dest.segment)?;
        let sets = self.evaluate_all(&[&segment, &dest.policy])?;
        Ok(self
            .engine()
            .sync_evaluated(&dest, &sets[0], &sets[1], out_dir)?)
    }
}
