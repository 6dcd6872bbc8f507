//! The export stage: `cidb export`, `destination`, `sync`, `suppress` `--json`, and the
//! bodies of `POST /v1/segments/{name}/export` and `/export/ack` (whose answer is the
//! sync's [`AckReport`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What an export did (`cidb export --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportReport {
    /// Format name.
    pub format: String,
    /// Platform whose rules applied.
    pub platform: String,
    /// Live members of the segment.
    pub members: u64,
    /// Members outside the policy.
    pub removed_by_policy: u64,
    /// Members with an identifier on a suppression list.
    pub removed_by_suppression: u64,
    /// Members without a valid email or phone.
    pub skipped_no_identifier: u64,
    /// Members merged or erased while the export ran.
    pub skipped_changed: u64,
    /// Profiles written.
    pub profiles: u64,
    /// Rows written.
    pub rows: u64,
    /// API request bodies.
    pub batches: u64,
    /// Valid and invalid values per field.
    pub fields: BTreeMap<String, FieldCounts>,
    /// Warnings (e.g. below the minimum audience size).
    pub warnings: Vec<String>,
}

/// Valid and invalid values of one field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldCounts {
    /// Values normalized and sent.
    pub valid: u64,
    /// Values present but not acceptable.
    pub invalid: u64,
}

/// A destination (`cidb destination create --json`; inside [`DestinationList`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Destination {
    /// Its name.
    pub name: String,
    /// Output format (`meta-api`, ...).
    pub format: String,
    /// Platform rules (`meta`, `google`).
    pub platform: String,
    /// A saved segment's name or an expression.
    pub segment: String,
    /// The policy expression.
    pub policy: String,
    /// Never emit removes.
    pub additive_only: bool,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Where cidb pushes its syncs (absent: files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushConfig>,
}

/// A destination's push target: the names of the environment variables that hold the
/// secrets, never the secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushConfig {
    /// `meta` or `google`.
    pub platform: String,
    /// Meta's custom audience id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience_id: Option<String>,
    /// Google's customer id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Google's user list id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_list_id: Option<String>,
    /// Google's manager account id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_customer_id: Option<String>,
    /// The variable holding the access token.
    pub token_env: String,
    /// The variable holding Google's developer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_token_env: Option<String>,
    /// The API base URL (absent: the platform's public endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
}

impl From<&engine::export::PushTarget> for PushConfig {
    fn from(p: &engine::export::PushTarget) -> Self {
        match p.clone() {
            engine::export::PushTarget::Meta {
                audience_id,
                token_env,
                api_base,
            } => PushConfig {
                platform: "meta".into(),
                audience_id: Some(audience_id),
                customer_id: None,
                user_list_id: None,
                login_customer_id: None,
                token_env,
                developer_token_env: None,
                api_base,
            },
            engine::export::PushTarget::Google {
                customer_id,
                user_list_id,
                login_customer_id,
                token_env,
                developer_token_env,
                api_base,
            } => PushConfig {
                platform: "google".into(),
                audience_id: None,
                customer_id: Some(customer_id),
                user_list_id: Some(user_list_id),
                login_customer_id,
                token_env,
                developer_token_env: Some(developer_token_env),
                api_base,
            },
        }
    }
}

/// What `cidb sync DEST --push --json` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PushReport {
    /// The destination.
    pub destination: String,
    /// The platform (`meta`, `google`).
    pub platform: String,
    /// Profiles added (identifiers sent as adds).
    pub adds: u64,
    /// Hashes removed.
    pub removes: u64,
    /// Requests the platform accepted.
    pub requests: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Whether the sync was recorded as sent.
    pub acknowledged: bool,
    /// Meta: `num_received` summed over the requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_received: Option<u64>,
    /// Meta: `num_invalid_entries` summed over the requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_invalid_entries: Option<u64>,
    /// Google: operations the platform refused in a partial failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_failures: Option<u64>,
    /// Google: `addOperations` requests that reported a partial failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_failure_requests: Option<u64>,
    /// Google: the offline user data jobs run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
}

/// `GET /v1/destinations`: every destination with its last push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationStatusList {
    /// Every destination, by name.
    pub destinations: Vec<DestinationStatus>,
}

/// A destination, the profiles last acknowledged as sent, and its last push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationStatus {
    /// The destination.
    pub destination: Destination,
    /// Profiles recorded as sent.
    pub sent_profiles: u64,
    /// The last push (absent: never pushed).
    pub last_push: Option<LastPush>,
}

/// A push as the audit trail recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastPush {
    /// When it ended (ms since the epoch).
    pub at: i64,
    /// Who ran it (`key:ID`, `cli`, `scheduler`).
    pub actor: String,
    /// Profiles added.
    pub adds: u64,
    /// Hashes removed.
    pub removes: u64,
    /// Requests accepted.
    pub requests: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Whether it was acknowledged.
    pub acknowledged: bool,
    /// `ok` or `failed`.
    pub outcome: String,
    /// The platform's message when it failed.
    pub error: Option<String>,
}

impl LastPush {
    /// From a `sync_push` audit entry.
    pub fn from_audit(e: &engine::audit::AuditEntry) -> LastPush {
        let d = &e.details;
        let n = |k: &str| d.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        LastPush {
            at: e.at,
            actor: e.actor.clone(),
            adds: n("adds"),
            removes: n("removes"),
            requests: n("requests"),
            retries: n("retries"),
            acknowledged: d.get("acknowledged").and_then(serde_json::Value::as_bool) == Some(true),
            outcome: d
                .get("outcome")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string(),
            error: d
                .get("error")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
        }
    }
}

/// `cidb destination list --json` (printed sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationList {
    /// Every destination.
    pub destinations: Vec<ListedDestination>,
}

/// A destination with the profiles last acknowledged as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedDestination {
    /// The destination.
    pub destination: Destination,
    /// Profiles recorded as sent.
    pub sent_profiles: u64,
}

/// What a sync wrote (`cidb sync --out DIR --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// The destination.
    pub destination: String,
    /// Profiles exported now.
    pub members: u64,
    /// Members outside the policy.
    pub removed_by_policy: u64,
    /// Members on a suppression list.
    pub removed_by_suppression: u64,
    /// Members without a valid email or phone.
    pub skipped_no_identifier: u64,
    /// Profiles in `adds`.
    pub adds: u64,
    /// Rows in the adds file.
    pub add_rows: u64,
    /// Request bodies in the adds file.
    pub add_batches: u64,
    /// Hashes sent before that no current member holds.
    pub removes: u64,
    /// Rows in the removes file.
    pub remove_rows: u64,
    /// Request bodies in the removes file.
    pub remove_batches: u64,
    /// The adds file.
    pub adds_file: PathBuf,
    /// The removes file.
    pub removes_file: PathBuf,
    /// The generation this sync will have once acknowledged.
    pub generation: u64,
    /// Valid and invalid values per field.
    pub fields: BTreeMap<String, FieldCounts>,
}

/// An acknowledged sync (`cidb sync --ack --json`, `POST .../export/ack`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AckReport {
    /// The destination.
    pub destination: String,
    /// The generation now recorded as sent.
    pub generation: u64,
    /// Profiles recorded as sent.
    pub profiles: u64,
}

/// What `cidb suppress import --json` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionReport {
    /// The list.
    pub list: String,
    /// Lines read.
    pub lines: u64,
    /// New digests added.
    pub added: u64,
    /// Digests the list already held.
    pub already_present: u64,
    /// Empty or placeholder lines.
    pub blank: u64,
    /// Lines that could not be read (count).
    pub invalid_count: u64,
    /// The first invalid lines: `[line, reason]`.
    pub invalid: Vec<(u64, String)>,
    /// Live profiles the list matches after the import.
    pub profiles: u64,
}

/// `cidb suppress list --json` (printed sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionLists {
    /// Every list.
    pub lists: Vec<SuppressionList>,
}

/// A suppression list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionList {
    /// Its name.
    pub name: String,
    /// Digests held.
    pub entries: u64,
    /// Entries imported as raw emails.
    pub emails: u64,
    /// Entries imported as raw phones.
    pub phones: u64,
    /// Entries imported already hashed.
    pub hashed: u64,
    /// Live profiles it currently matches.
    pub profiles: u64,
}

/// `POST /v1/segments/{name}/export`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// `meta-api`, `meta-csv`, `google-api`, `google-csv` or `hashes`.
    pub format: String,
    /// `meta` or `google` (for `hashes`).
    pub platform: Option<String>,
    /// The policy (an analyst's only narrows the default).
    pub policy: Option<String>,
    /// `full` (default): the whole audience; `adds` / `removes`: a diff sync against
    /// what was acknowledged for this segment and format.
    pub mode: Option<String>,
}

/// `POST /v1/segments/{name}/export/ack`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The format of the diff sync to acknowledge.
    pub format: String,
}

fn fields(stats: &engine::export::FieldStats) -> BTreeMap<String, FieldCounts> {
    stats
        .iter()
        .map(|(field, c)| {
            let engine::export::FieldCounts { valid, invalid } = *c;
            (field.to_string(), FieldCounts { valid, invalid })
        })
        .collect()
}

impl From<&engine::export::ExportReport> for ExportReport {
    fn from(r: &engine::export::ExportReport) -> Self {
        let engine::export::ExportReport {
            format,
            platform,
            members,
            removed_by_policy,
            removed_by_suppression,
            skipped_no_identifier,
            skipped_changed,
            profiles,
            rows,
            batches,
            fields: field_stats,
            warnings,
        } = r;
        ExportReport {
            format: format.to_string(),
            platform: platform.to_string(),
            members: *members,
            removed_by_policy: *removed_by_policy,
            removed_by_suppression: *removed_by_suppression,
            skipped_no_identifier: *skipped_no_identifier,
            skipped_changed: *skipped_changed,
            profiles: *profiles,
            rows: *rows,
            batches: *batches,
            fields: fields(field_stats),
            warnings: warnings.clone(),
        }
    }
}

impl From<&engine::export::Destination> for Destination {
    fn from(d: &engine::export::Destination) -> Self {
        let engine::export::Destination {
            name,
            format,
            platform,
            segment,
            policy,
            additive_only,
            created_at,
            push,
        } = d;
        Destination {
            name: name.clone(),
            format: format.name().to_string(),
            platform: platform.name().to_string(),
            segment: segment.clone(),
            policy: policy.clone(),
            additive_only: *additive_only,
            created_at: *created_at,
            push: push.as_ref().map(PushConfig::from),
        }
    }
}

impl From<&engine::export::SyncReport> for SyncReport {
    fn from(r: &engine::export::SyncReport) -> Self {
        let engine::export::SyncReport {
            destination,
            members,
            removed_by_policy,
            removed_by_suppression,
            skipped_no_identifier,
            adds,
            add_rows,
            add_batches,
            removes,
            remove_rows,
            remove_batches,
            adds_file,
            removes_file,
            generation,
            // Internal: a push acknowledges with it; not part of the report.
            pending_digest: _,
            fields: field_stats,
        } = r;
        SyncReport {
            destination: destination.clone(),
            members: *members,
            removed_by_policy: *removed_by_policy,
            removed_by_suppression: *removed_by_suppression,
            skipped_no_identifier: *skipped_no_identifier,
            adds: *adds,
            add_rows: *add_rows,
            add_batches: *add_batches,
            removes: *removes,
            remove_rows: *remove_rows,
            remove_batches: *remove_batches,
            adds_file: adds_file.clone(),
            removes_file: removes_file.clone(),
            generation: *generation,
            fields: fields(field_stats),
        }
    }
}

impl From<&engine::export::AckReport> for AckReport {
    fn from(r: &engine::export::AckReport) -> Self {
        let engine::export::AckReport {
            destination,
            generation,
            profiles,
        } = r;
        AckReport {
            destination: destination.clone(),
            generation: *generation,
            profiles: *profiles,
        }
    }
}

impl From<&engine::suppression::SuppressionReport> for SuppressionReport {
    fn from(r: &engine::suppression::SuppressionReport) -> Self {
        let engine::suppression::SuppressionReport {
            list,
            lines,
            added,
            already_present,
            blank,
            invalid_count,
            invalid,
            profiles,
        } = r;
        SuppressionReport {
            list: list.clone(),
            lines: *lines,
            added: *added,
            already_present: *already_present,
            blank: *blank,
            invalid_count: *invalid_count,
            invalid: invalid.clone(),
            profiles: *profiles,
        }
    }
}

impl From<&engine::suppression::SuppressionListInfo> for SuppressionList {
    fn from(l: &engine::suppression::SuppressionListInfo) -> Self {
        let engine::suppression::SuppressionListInfo {
            name,
            entries,
            emails,
            phones,
            hashed,
            profiles,
        } = l;
        SuppressionList {
            name: name.clone(),
            entries: *entries,
            emails: *emails,
            phones: *phones,
            hashed: *hashed,
            profiles: *profiles,
        }
    }
}

super::answers!(
    ExportReport,
    Destination,
    DestinationList,
    SyncReport,
    AckReport,
    SuppressionReport,
    SuppressionLists,
    PushReport,
    DestinationStatusList
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_keeps_every_field_in_order() {
        let d = engine::export::Destination {
            name: "nl-meta".into(),
            format: engine::export::Format::MetaApi,
            platform: engine::export::Platform::Meta,
            segment: "nl".into(),
            policy: "consent(\"custom_audiences\")".into(),
            additive_only: false,
            created_at: 5,
            push: None,
        };
        let answer = Destination::from(&d);
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"name":"nl-meta","format":"meta-api","platform":"meta","segment":"nl","policy":"consent(\"custom_audiences\")","additive_only":false,"created_at":5}"#
        );
        // Listed, it is sorted (golden dest-list.json).
        let list = DestinationList {
            destinations: vec![ListedDestination {
                destination: answer,
                sent_profiles: 0,
            }],
        };
        assert_eq!(
            serde_json::to_string(&crate::api::sorted(&list).unwrap()).unwrap(),
            r#"{"destinations":[{"destination":{"additive_only":false,"created_at":5,"format":"meta-api","name":"nl-meta","platform":"meta","policy":"consent(\"custom_audiences\")","segment":"nl"},"sent_profiles":0}]}"#
        );
    }
}
