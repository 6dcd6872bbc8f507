//! Ingest records (records.md): the validated, normalized form of one observation, and the
//! readers that produce it from JSON and CSV.

mod csv_row;
mod json;
mod lite;

pub(crate) use csv_row::{CsvLayout, CsvMapping};
pub use json::{parse_json_record, RejectReason};
pub(crate) use json::{parse_json_value as parse_json_value_pub, record_too_long};

use crate::base::time::{DayNumber, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Short text inside records, profiles and index keys (names, identifier types, sources,
/// list values): stored inline up to 24 bytes instead of in its own heap allocation, and
/// serialized exactly like a `String`. Profiles hold hundreds of these, so this keeps
/// decoding, copying and dropping them cheap.
pub type ShortText = compact_str::CompactString;

/// Largest accepted magnitude of a number attribute or event value (so fixed-precision
/// indexing cannot overflow).
pub const MAX_ABS_NUMBER: f64 = 1e12;

// Size limits of one record, enforced here in the record layer, so JSON Lines, CSV and
// `Engine::ingest_json` (the HTTP API) all apply them alike. A record over a limit is
// rejected as a whole, naming the field (`attributes.first_name: value of 20971520 bytes
// exceeds the limit of 4096`); the records around it are still ingested.

/// Largest record, in bytes: a JSON Lines line (without its line break), one
/// `Engine::ingest_json` record, or one CSV record (as in the file, quotes included).
/// Longer records are rejected without being parsed, and the importers do not buffer them.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Largest text value, in bytes (UTF-8, as given): a text attribute, each item of a list
/// attribute, each identifier value (before normalization), each scope, an event's type and
/// category.
pub const MAX_VALUE_BYTES: usize = 4 * 1024;

/// Most items in one list of a record: a list attribute, the values of one identifier
/// type, the scopes.
pub const MAX_LIST_ITEMS: usize = 1_000;

/// Most events in one record.
pub const MAX_EVENTS_PER_RECORD: usize = 1_000;

/// Most entries in each object of a record: attributes, identifier types, consent purposes.
pub const MAX_FIELDS: usize = 1_000;

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
