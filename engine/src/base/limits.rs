//! Every documented limit of the engine, in one place (README "Behaviour and limits").
//! Each is enforced where its input is read; exceeding one is a typed error or a rejected
//! record that names the limit, never a panic or a partial write.

use crate::base::time::Millis;

// Size limits of one record, enforced in the record layer, so JSON Lines, CSV and
// `Engine::ingest_json` (the HTTP API) all apply them alike. A record over a limit is
// rejected as a whole, naming the field (`attributes.first_name: value of 20971520 bytes
// exceeds the limit of 4096`); the records around it are still ingested.

/// Largest record, in bytes: a JSON Lines line (without its line break), one
/// `Engine::ingest_json` record, or one CSV record (as in the file, quotes included).
/// Longer records are rejected without being parsed, and the importers do not buffer them.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Longest accepted input line (bytes, without its line break): JSON Lines lines and CSV
/// records alike (the same as [`MAX_RECORD_BYTES`]). Longer ones are rejected with their
/// line number, and neither importer buffers them.
pub const MAX_LINE_BYTES: usize = MAX_RECORD_BYTES;

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

/// Largest accepted magnitude of a number attribute or event value (so fixed-precision
/// indexing cannot overflow).
pub const MAX_ABS_NUMBER: f64 = 1e12;

/// The most records one ingest call (one atomic batch) may carry.
pub const MAX_BATCH_RECORDS: usize = 100_000;

/// At most this many rejected lines and warnings are listed one by one in an ingest
/// report; the totals count all of them.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// At most this many invalid lines of a suppression import are listed one by one.
pub(crate) const MAX_LISTED_INVALID: usize = 1000;

/// Longest name of a suppression list or destination.
pub(crate) const MAX_NAME: usize = 64;

/// How long an idempotency key's answer is kept: a retry within this time gets the first
/// answer instead of a second ingest.
pub const IDEMPOTENCY_TTL_MS: Millis = 24 * 60 * 60 * 1000;
