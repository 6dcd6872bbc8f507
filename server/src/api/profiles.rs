//! A unified profile with everything stored about it: `cidb lookup --json` (fields in
//! declaration order), `GET /v1/profiles/lookup` and `/v1/profiles/{id}` (sorted), and the
//! body of an access request (`privacy::AccessReport`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A profile, its events and its merge log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileView {
    /// The unified profile (with per-value provenance).
    pub profile: Profile,
    /// Its events, one chunk per record, with provenance.
    pub events: Vec<EventChunk>,
    /// Merges into it.
    pub merges: Vec<MergeLogEntry>,
}

/// A unified profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Its id.
    pub id: u32,
    /// Identifiers, with where each came from.
    pub identifiers: Vec<StoredIdentifier>,
    /// Attributes by name.
    pub attributes: BTreeMap<String, Attribute>,
    /// Consent history per purpose, oldest first.
    pub consent: BTreeMap<String, Vec<ConsentChange>>,
    /// Sources that contributed, by name.
    pub sources: BTreeMap<String, SourceSeen>,
    /// Profiles merged into it.
    pub merged_from: Vec<u32>,
    /// Records applied.
    pub records: u64,
    /// Events held.
    pub events: u64,
}

/// Where and when a value was observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// The record's source.
    pub source: String,
    /// The record's `observed_at` (ms since the epoch).
    pub observed_at: i64,
}

/// An identifier of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredIdentifier {
    /// The identifier.
    pub id: Identifier,
    /// Where it came from.
    pub provenance: Provenance,
}

/// A normalized identifier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identifier {
    /// Its type (`email`, `phone`, `crm_id`, ...).
    pub kind: String,
    /// Its normalized value.
    pub value: String,
}

/// An attribute: one value, or a list whose items each have their provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Attribute {
    /// `{"Scalar": {...}}`.
    Scalar(Scalar),
    /// `{"List": [...]}`.
    List(Vec<ListItem>),
}

/// A single-valued attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scalar {
    /// The value.
    pub value: Value,
    /// Where it came from.
    pub provenance: Provenance,
    /// The ingest sequence number of its record.
    pub seq: u64,
}

/// A value: `{"Text": ..}`, `{"Number": ..}`, `{"Bool": ..}`, `{"Date": day number}` or
/// `{"List": [..]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Value {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A date, as days since 1970-01-01.
    Date(i32),
    /// A list of strings.
    List(Vec<String>),
}

/// An item of a list attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListItem {
    /// The item.
    pub value: String,
    /// Every source that sent it.
    pub provenance: Vec<Provenance>,
}

/// A consent change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentChange {
    /// Granted or withdrawn.
    pub granted: bool,
    /// Where it came from.
    pub provenance: Provenance,
    /// The ingest sequence number of its record.
    pub seq: u64,
}

/// A source's contribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSeen {
    /// Records from it.
    pub records: u64,
    /// Earliest `observed_at`.
    pub first_seen: i64,
    /// Latest `observed_at`.
    pub last_seen: i64,
}

/// One record's events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventChunk {
    /// The record's source.
    pub source: String,
    /// The record's `observed_at`.
    pub observed_at: i64,
    /// The events.
    pub events: Vec<Event>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Its type.
    pub kind: String,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// Its category.
    pub category: Option<String>,
    /// Its value (amount).
    pub value: Option<f64>,
}

/// One merge into the profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeLogEntry {
    /// The profile that remained.
    pub survivor: u32,
    /// The profile merged into it.
    pub absorbed: u32,
    /// The identifier that linked them.
    pub linked_by: Identifier,
    /// The linking record's source.
    pub source: String,
    /// The linking record's `observed_at`.
    pub observed_at: i64,
    /// The linking record's ingest sequence number.
    pub seq: u64,
}

/// `GET /v1/profiles/lookup?email=…|phone=…|id=…` and `GET /v1/privacy/access?…`: exactly
/// one of the three.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// By email.
    pub email: Option<String>,
    /// By phone.
    pub phone: Option<String>,
    /// By profile id.
    pub id: Option<u32>,
}

impl From<&engine::ProfileView> for ProfileView {
    fn from(v: &engine::ProfileView) -> Self {
        let engine::ProfileView {
            profile,
            events,
            merges,
        } = v;
        ProfileView {
            profile: Profile::from(profile),
            events: events.iter().map(EventChunk::from).collect(),
            merges: merges.iter().map(MergeLogEntry::from).collect(),
        }
    }
}

impl From<&engine::Profile> for Profile {
    fn from(p: &engine::Profile) -> Self {
        let engine::Profile {
            id,
            identifiers,
            attributes,
            consent,
            sources,
            merged_from,
            records,
            events,
        } = p;
        Profile {
            id: *id,
            identifiers: identifiers.iter().map(StoredIdentifier::from).collect(),
            attributes: attributes
                .iter()
                .map(|(name, a)| (name.to_string(), Attribute::from(a)))
                .collect(),
            consent: consent
                .iter()
                .map(|(purpose, changes)| {
                    (
                        purpose.to_string(),
                        changes.iter().map(ConsentChange::from).collect(),
                    )
                })
                .collect(),
            sources: sources
                .iter()
                .map(|(name, s)| (name.to_string(), SourceSeen::from(s)))
                .collect(),
            merged_from: merged_from.clone(),
            records: *records,
            events: *events,
        }
    }
}

impl From<&engine::Provenance> for Provenance {
    fn from(p: &engine::Provenance) -> Self {
        let engine::Provenance {
            source,
            observed_at,
        } = p;
        Provenance {
            source: source.to_string(),
            observed_at: *observed_at,
        }
    }
}

impl From<&engine::StoredIdentifier> for StoredIdentifier {
    fn from(s: &engine::StoredIdentifier) -> Self {
        let engine::StoredIdentifier { id, provenance } = s;
        StoredIdentifier {
            id: Identifier::from(id),
            provenance: Provenance::from(provenance),
        }
    }
}

impl From<&engine::Identifier> for Identifier {
    fn from(i: &engine::Identifier) -> Self {
        let engine::Identifier { kind, value } = i;
        Identifier {
            kind: kind.to_string(),
            value: value.clone(),
        }
    }
}

impl From<&engine::Attribute> for Attribute {
    fn from(a: &engine::Attribute) -> Self {
        match a {
            engine::Attribute::Scalar(s) => Attribute::Scalar(Scalar::from(s)),
            engine::Attribute::List(items) => {
                Attribute::List(items.iter().map(ListItem::from).collect())
            }
        }
    }
}

impl From<&engine::Scalar> for Scalar {
    fn from(s: &engine::Scalar) -> Self {
        let engine::Scalar {
            value,
            provenance,
            seq,
        } = s;
        Scalar {
            value: Value::from(value),
            provenance: Provenance::from(provenance),
            seq: *seq,
        }
    }
}

impl From<&engine::Value> for Value {
    fn from(v: &engine::Value) -> Self {
        match v {
            engine::Value::Text(t) => Value::Text(t.to_string()),
            engine::Value::Number(n) => Value::Number(*n),
            engine::Value::Bool(b) => Value::Bool(*b),
            engine::Value::Date(d) => Value::Date(*d),
            engine::Value::List(items) => {
                Value::List(items.iter().map(|i| i.to_string()).collect())
            }
        }
    }
}

impl From<&engine::ListItem> for ListItem {
    fn from(i: &engine::ListItem) -> Self {
        let engine::ListItem { value, provenance } = i;
        ListItem {
            value: value.to_string(),
            provenance: provenance.iter().map(Provenance::from).collect(),
        }
    }
}

impl From<&engine::ConsentChange> for ConsentChange {
    fn from(c: &engine::ConsentChange) -> Self {
        let engine::ConsentChange {
            granted,
            provenance,
            seq,
        } = c;
        ConsentChange {
            granted: *granted,
            provenance: Provenance::from(provenance),
            seq: *seq,
        }
    }
}

impl From<&engine::SourceSeen> for SourceSeen {
    fn from(s: &engine::SourceSeen) -> Self {
        let engine::SourceSeen {
            records,
            first_seen,
            last_seen,
        } = s;
        SourceSeen {
            records: *records,
            first_seen: *first_seen,
            last_seen: *last_seen,
        }
    }
}

impl From<&engine::EventChunk> for EventChunk {
    fn from(c: &engine::EventChunk) -> Self {
        let engine::EventChunk {
            source,
            observed_at,
            events,
        } = c;
        EventChunk {
            source: source.to_string(),
            observed_at: *observed_at,
            events: events.iter().map(Event::from).collect(),
        }
    }
}

impl From<&engine::Event> for Event {
    fn from(e: &engine::Event) -> Self {
        let engine::Event {
            kind,
            at,
            category,
            value,
        } = e;
        Event {
            kind: kind.to_string(),
            at: *at,
            category: category.as_ref().map(|c| c.to_string()),
            value: *value,
        }
    }
}

impl From<&engine::MergeLogEntry> for MergeLogEntry {
    fn from(m: &engine::MergeLogEntry) -> Self {
        let engine::MergeLogEntry {
            survivor,
            absorbed,
            linked_by,
            source,
            observed_at,
            seq,
        } = m;
        MergeLogEntry {
            survivor: *survivor,
            absorbed: *absorbed,
            linked_by: Identifier::from(linked_by),
            source: source.clone(),
            observed_at: *observed_at,
            seq: *seq,
        }
    }
}

super::answers!(ProfileView);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures::view;

    #[test]
    fn the_view_keeps_every_field_in_order() {
        assert_eq!(
            serde_json::to_string(&ProfileView::from(&view())).unwrap(),
            concat!(
                r#"{"profile":{"id":7,"identifiers":[{"id":{"kind":"email","value":"ann@example.com"},"provenance":{"source":"crm","observed_at":1000}}],"#,
                r#""attributes":{"birth_date":{"Scalar":{"value":{"Date":2716},"provenance":{"source":"crm","observed_at":1000},"seq":2}},"#,
                r#""city":{"Scalar":{"value":{"Text":"Delft"},"provenance":{"source":"crm","observed_at":1000},"seq":2}},"#,
                r#""interests":{"List":[{"value":"running","provenance":[{"source":"crm","observed_at":1000}]}]},"#,
                r#""ltv":{"Scalar":{"value":{"Number":12.5},"provenance":{"source":"crm","observed_at":1000},"seq":2}},"#,
                r#""tags":{"Scalar":{"value":{"List":["a"]},"provenance":{"source":"crm","observed_at":1000},"seq":2}},"#,
                r#""vip":{"Scalar":{"value":{"Bool":true},"provenance":{"source":"crm","observed_at":1000},"seq":2}}},"#,
                r#""consent":{"marketing":[{"granted":true,"provenance":{"source":"crm","observed_at":1000},"seq":2}]},"#,
                r#""sources":{"crm":{"records":2,"first_seen":900,"last_seen":1000}},"merged_from":[8],"records":2,"events":1},"#,
                r#""events":[{"source":"shop","observed_at":1000,"events":[{"kind":"purchase","at":999,"category":"jeans","value":59.95}]}],"#,
                r#""merges":[{"survivor":7,"absorbed":8,"linked_by":{"kind":"email","value":"ann@example.com"},"source":"crm","observed_at":1000,"seq":3}]}"#,
            )
        );
    }
}
