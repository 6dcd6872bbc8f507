//! Privacy: erasure (`cidb forget`, `POST /v1/privacy/forget`), access requests
//! (`cidb access`, `GET /v1/privacy/access`), the audit trail (`cidb audit`,
//! `GET /v1/audit`) and objections (`cidb object`, `/v1/privacy/objections`).

use super::profiles::ProfileView;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForgetReport {
    /// Whether a live profile was found.
    pub found: bool,
    /// The erased profile's id.
    pub profile: Option<u32>,
    /// Identifiers removed.
    pub identifiers: u64,
    /// Events removed.
    pub events: u64,
    /// Hashed identifiers added to the suppression list.
    pub suppressed: u64,
    /// The suppression list they went to.
    pub suppression_list: Option<String>,
    /// Destinations whose sync state held the profile.
    pub destinations: u64,
}

/// Everything held about a person (always printed sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessReport {
    /// The unified profile, its events and merge log (`profile`, `events`, `merges`).
    #[serde(flatten)]
    pub view: ProfileView,
    /// Saved segments the person is a member of now.
    pub segments: Vec<String>,
    /// Audited exports and syncs that included the person.
    pub exports: Vec<AuditEntry>,
    /// `cidb access --consent-at T`: each purpose's consent at T.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_at: Option<ConsentAt>,
}

/// Each purpose's consent at a past time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentAt {
    /// The time (RFC 3339).
    pub at: String,
    /// Purpose → granted (`null`: nothing known yet).
    pub purposes: BTreeMap<String, Option<bool>>,
}

impl ConsentAt {
    /// Each of `profile`'s purposes as it stood at `at`.
    pub fn new(profile: &engine::Profile, at: engine::Millis) -> Self {
        ConsentAt {
            at: engine::format_rfc3339(at),
            purposes: profile
                .consent
                .keys()
                .map(|purpose| (purpose.to_string(), profile.consent_at(purpose, at)))
                .collect(),
        }
    }
}

/// One audited operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Sequence number (ascending).
    pub seq: u64,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who: `key:<id>`, `cli` or `embedded`.
    pub actor: String,
    /// What: `export`, `sync`, `sync_ack`, `forget`, `object`, ...
    pub action: String,
    /// Details: format, destination, list, counts (no personal values). The engine
    /// records them as a JSON object per action; they are passed on as recorded.
    pub details: serde_json::Value,
}

/// The audit trail (printed sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditLog {
    /// Entries, oldest first.
    pub entries: Vec<AuditEntry>,
}

/// A recorded objection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objection {
    /// Its id.
    pub id: u64,
    /// When it was recorded (ms since the epoch).
    pub at: i64,
    /// The channel it came through.
    pub channel: String,
    /// The profile it was found on, if any.
    pub profile: Option<u32>,
    /// SHA-256 digests (hex) of the identifier forms it covers.
    pub digests: Vec<String>,
}

/// Recorded objections (printed sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objections {
    /// Every objection.
    pub objections: Vec<Objection>,
}

/// `{"withdrawn": id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Withdrawn {
    /// The objection withdrawn.
    pub withdrawn: u64,
}

/// `POST /v1/privacy/forget`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetBody {
    /// By email.
    pub email: Option<String>,
    /// By phone.
    pub phone: Option<String>,
    /// By profile id.
    pub id: Option<u32>,
    /// Default true: add the hashed emails and phones to the `erased` suppression list.
    pub suppress: Option<bool>,
}

/// `POST /v1/privacy/objections`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectBody {
    /// By email.
    pub email: Option<String>,
    /// By phone.
    pub phone: Option<String>,
    /// By profile id.
    pub id: Option<u32>,
    /// The channel the objection came through.
    pub channel: String,
}

/// `GET /v1/audit?after=&limit=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries after this sequence number.
    pub after: Option<u64>,
    /// At most this many (default 100, at most 10,000).
    pub limit: Option<usize>,
}

impl From<&engine::ForgetReport> for ForgetReport {
    fn from(r: &engine::ForgetReport) -> Self {
        let engine::ForgetReport {
            found,
            profile,
            identifiers,
            events,
            suppressed,
            suppression_list,
            destinations,
        } = r;
        ForgetReport {
            found: *found,
            profile: *profile,
            identifiers: *identifiers,
            events: *events,
            suppressed: *suppressed,
            suppression_list: suppression_list.clone(),
            destinations: *destinations,
        }
    }
}

impl From<&query::AccessReport> for AccessReport {
    fn from(r: &query::AccessReport) -> Self {
        let query::AccessReport {
            view,
            segments,
            exports,
        } = r;
        AccessReport {
            view: ProfileView::from(view),
            segments: segments.clone(),
            exports: exports.iter().map(AuditEntry::from).collect(),
            consent_at: None,
        }
    }
}

impl From<&engine::audit::AuditEntry> for AuditEntry {
    fn from(e: &engine::audit::AuditEntry) -> Self {
        let engine::audit::AuditEntry {
            seq,
            at,
            actor,
            action,
            details,
        } = e;
        AuditEntry {
            seq: *seq,
            at: *at,
            actor: actor.clone(),
            action: action.clone(),
            details: details.clone(),
        }
    }
}

impl AuditLog {
    /// The log of `entries`.
    pub fn new(entries: &[engine::audit::AuditEntry]) -> Self {
        AuditLog {
            entries: entries.iter().map(AuditEntry::from).collect(),
        }
    }
}

impl From<&engine::Objection> for Objection {
    fn from(o: &engine::Objection) -> Self {
        let engine::Objection {
            id,
            at,
            channel,
            profile,
            digests,
        } = o;
        Objection {
            id: *id,
            at: *at,
            channel: channel.clone(),
            profile: *profile,
            digests: digests.clone(),
        }
    }
}

impl Objections {
    /// The list of `all`.
    pub fn new(all: &[engine::Objection]) -> Self {
        Objections {
            objections: all.iter().map(Objection::from).collect(),
        }
    }
}

super::answers!(
    ForgetReport,
    AccessReport,
    AuditLog,
    Objection,
    Objections,
    Withdrawn
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erasure_report_keeps_every_field_in_order() {
        let r = engine::ForgetReport {
            found: true,
            profile: Some(3),
            identifiers: 2,
            events: 1,
            suppressed: 2,
            suppression_list: Some("erased".into()),
            destinations: 0,
        };
        assert_eq!(
            serde_json::to_string(&ForgetReport::from(&r)).unwrap(),
            r#"{"found":true,"profile":3,"identifiers":2,"events":1,"suppressed":2,"suppression_list":"erased","destinations":0}"#
        );
    }

    #[test]
    fn an_access_report_is_the_view_with_segments_and_exports() {
        let view = crate::api::fixtures::view();
        let report = query::AccessReport {
            view: view.clone(),
            segments: vec!["nl".into()],
            exports: vec![engine::audit::AuditEntry {
                seq: 4,
                at: 5,
                actor: "cli".into(),
                action: "export".into(),
                details: serde_json::json!({"format": "meta-api", "profiles": 1}),
            }],
        };
        let mut answer = AccessReport::from(&report);
        let sorted = crate::api::sorted(&answer).unwrap().0;
        let keys: Vec<&str> = sorted
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["events", "exports", "merges", "profile", "segments"]);
        assert_eq!(
            sorted["profile"],
            crate::api::sorted(&ProfileView::from(&view)).unwrap().0["profile"]
        );
        assert_eq!(
            serde_json::to_string(&sorted["exports"]).unwrap(),
            r#"[{"action":"export","actor":"cli","at":5,"details":{"format":"meta-api","profiles":1},"seq":4}]"#
        );
        answer.consent_at = Some(ConsentAt::new(&view.profile, 1_000));
        assert_eq!(
            serde_json::to_string(&crate::api::sorted(&answer).unwrap().0["consent_at"]).unwrap(),
            r#"{"at":"1970-01-01T00:00:01Z","purposes":{"marketing":true}}"#
        );
    }
}
