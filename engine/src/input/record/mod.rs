//! Ingest records (records.md): the validated, normalized form of one observation, and the
//! readers that produce it from JSON and CSV.

mod csv_row;
mod json;
mod lite;

pub(crate) use csv_row::{CsvLayout, CsvMapping};
pub(crate) use json::{
    candidate_identifiers, parse_json_value as parse_json_value_pub, record_too_long,
};
pub use json::{parse_json_record, RejectReason};

use crate::base::kind::IdentifierKind;
use crate::base::time::{DayNumber, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Short text inside records, profiles and index keys (names, identifier types, sources,
/// list values): stored inline up to 24 bytes instead of in its own heap allocation, and
/// serialized exactly like a `String`. Profiles hold hundreds of these, so this keeps
/// decoding, copying and dropping them cheap.
pub type ShortText = compact_str::CompactString;

/// Well-known attributes (`records.md`) that hold numbers: a string is accepted only when
/// it is a decimal number (JSON number syntax, e.g. a CSV cell `1e5`), and the value must be
/// finite and within [`MAX_ABS_NUMBER`].
pub(crate) const NUMBER_ATTRIBUTES: &[&str] = &["lifetime_value"];

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Text, stored as given.
    Text(ShortText),
    /// A number (f64 in JSON; indexed at 1/1000 precision).
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A `YYYY-MM-DD` date.
    Date(DayNumber),
    /// A list of strings.
    List(Vec<ShortText>),
}

/// One normalized identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// Identifier type (`email`, `phone`, `crm_id`, ...).
    pub kind: ShortText,
    /// Normalized value.
    pub value: String,
}

impl Identifier {
    /// An identifier of a named kind.
    pub fn of_kind(kind: IdentifierKind, value: impl Into<String>) -> Identifier {
        Identifier {
            kind: kind.name().into(),
            value: value.into(),
        }
    }

    /// Its kind, if its type is one records.md names (`None`: a custom opaque id).
    pub fn known_kind(&self) -> Option<IdentifierKind> {
        IdentifierKind::of(&self.kind)
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event type (`purchase`, `visit`, ...), lower-cased.
    pub kind: ShortText,
    /// When it happened.
    pub at: Millis,
    /// Optional category, lower-cased.
    pub category: Option<ShortText>,
    /// Optional value (amount).
    pub value: Option<f64>,
}

/// A validated record, ready for identity resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where the observation came from.
    pub source: ShortText,
    /// When it was observed.
    pub observed_at: Millis,
    /// Normalized, non-blocked identifiers (at least one).
    pub identifiers: Vec<Identifier>,
    /// Attributes after scope policy.
    pub attributes: BTreeMap<ShortText, Value>,
    /// Consent per purpose.
    pub consent: BTreeMap<ShortText, bool>,
    /// Events.
    pub events: Vec<Event>,
}

/// A problem with one field of a record that did not reject the whole record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldWarning {
    /// The field, as a path (`identifiers.phone`, `attributes.age`).
    pub field: String,
    /// What was wrong.
    pub reason: String,
}

/// A record as parsed, before identity resolution: the record plus what was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecord {
    /// The usable record.
    pub record: Record,
    /// Fields that were ignored (bad identifiers, bad attribute values).
    pub warnings: Vec<FieldWarning>,
    /// Fields dropped by the source's scope policy.
    pub dropped_by_scope: Vec<String>,
    /// Link keys of each identifier (canonical first), computed before the writer when
    /// the caller can (parser threads); empty when not computed yet.
    pub(crate) link_keys: Vec<Vec<crate::base::digest::LinkKey>>,
}

/// Whether `s` matches `[a-z0-9_]{1,max}`.
pub(crate) fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
