//! The server's public JSON: the request and response types of every HTTP route and every
//! CLI `--json` output, owned by the server.
//!
//! The engine's and the query layer's structs are never serialized as an answer: each
//! answer is one of these types, built by an explicit conversion (`From<&engine::X>`), so
//! renaming a field inside the engine cannot change the API silently (the conversions
//! destructure the engine's structs without `..`, so a field added there does not
//! compile until it is either exposed here or left out on purpose).
//!
//! Field order is part of the contract (the output is compared byte for byte):
//! - A type printed as-is (CLI `--json` of reports) keeps its fields in declaration
//!   order.
//! - Every HTTP answer, and the CLI outputs that have always been built as JSON objects
//!   (lists, audit entries, objections, access), go through [`sorted`] / the HTTP
//!   `answer` helper: serde_json's object is a sorted map, so their keys come out in
//!   alphabetical order at every level.
//! - Types whose doc says "fields in alphabetical order" were JSON objects before they
//!   were types: they are declared sorted so that printing them directly is the same.
//!
//! - `ingest`: the ingest report (`cidb import`, `POST /v1/records`);
//! - `data`: `cidb generate`, `stats`, `check`;
//! - `profiles`: the unified profile view (`cidb lookup`, `GET /v1/profiles/...`);
//! - `segments`: counts, samples, ids, breakdowns, explain, overlap, saved segments,
//!   bench, and the expression request bodies;
//! - `export`: export, sync and ack reports, destinations, suppression lists, and the
//!   export request bodies;
//! - `models`: model reports, lists, per-profile score explanations, and the train body;
//! - `privacy`: erasure, access, audit, objections, and their requests;
//! - `keys`: API keys as shown;
//! - `errors`: the error object;
//! - `console`: the console's routes: whoami, the field catalog, segment history, model
//!   curves.

pub mod console;
pub mod data;
pub mod errors;
pub mod export;
#[cfg(test)]
mod fixtures;
pub mod ingest;
pub mod keys;
pub mod models;
pub mod privacy;
pub mod profiles;
pub mod segments;

use serde::Serialize;

/// A whole answer: an HTTP response body or a CLI `--json` line. The output functions
/// (`cli::output::json`, the HTTP routes' `answer`) take only these, so an engine struct
/// cannot become an answer by accident.
pub trait Answer: Serialize {}

macro_rules! answers {
    ($($t:ty),* $(,)?) => { $(impl $crate::api::Answer for $t {})* };
}
pub(crate) use answers;

/// The JSON of an answer with the keys of every object in alphabetical order (the form
/// of the outputs that have always been built as `serde_json::Value`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Sorted(pub serde_json::Value);

impl Answer for Sorted {}

/// `answer` with the keys of every object sorted.
pub fn sorted<T: Answer>(answer: &T) -> serde_json::Result<Sorted> {
    serde_json::to_value(answer).map(Sorted)
}

/// `{"deleted": name}`: a saved segment, model, destination or suppression list deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deleted {
    /// Its name.
    pub deleted: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

answers!(Deleted, Health);
