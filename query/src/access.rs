//! Access requests (GDPR Art. 15): everything held about a person, found by any
//! identifier: every value with its source and observed_at, the consent history, events,
//! the merge log, the saved segments they are in now, and every audited export that
//! included them.

use crate::error::Error;
use crate::segments::Segments;
use engine::audit::AuditEntry;
use engine::{Lookup, ProfileView};
use serde::Serialize;

/// The answer to an access request.
#[derive(Debug, Clone, Serialize)]
pub struct AccessReport {
    /// The unified profile (values with provenance, consent history), its events and
    /// merge log.
    #[serde(flatten)]
    pub view: ProfileView,
    /// Saved segments the person is a member of now.
    pub segments: Vec<String>,
    /// Audited exports and syncs that included the person (destination or format, time,
    /// who).
    pub exports: Vec<AuditEntry>,
}

impl Segments<'_> {
    /// Everything held about the person `how` finds (`None` when nobody).
    pub fn access(&self, how: &Lookup) -> Result<Option<AccessReport>, Error> {
        let engine = self.engine();
        let Some(view) = engine.lookup(how).map_err(Error::Engine)? else {
            return Ok(None);
        };
        let pid = view.profile.id;
        let mut segments = Vec::new();
        for saved in self.list()? {
            let src = format!("segment(\"{}\")", saved.name);
            if self.evaluate(&src)?.bitmap().contains(pid) {
                segments.push(saved.name);
            }
        }
        let exports = engine.exports_including(pid)?;
        Ok(Some(AccessReport {
            view,
            segments,
            exports,
        }))
    }
}
