//! The export stage: a segment's members become hashed audience rows for Meta and Google
//! (`../shared/spec/export.md`).
//!
//! - `normalize`, `dates`, `geo`: per-platform normalization of one value;
//! - `hash`: SHA-256 hex;
//! - `rows`: one profile → one row of hashes for a platform, with per-field counts;
//! - `pipeline`: parallel, ordered, bounded row building over a bitmap of members;
//! - `cache`: packed rows of exported profiles, kept until the profile changes;
//! - `formats`: the five output formats as streaming writers;
//! - `run`: `Engine::export` (selection, pipeline, writer, report);
//! - `sync`: destinations and incremental sync (adds and removes, acknowledgement);
//! - `tool`: `cidb normalize`, one JSON line at a time.

pub(crate) mod cache;
pub(crate) mod formats;
/// SHA-256 as lower-case hex (the digest module, under its export-facing name).
pub mod hash {
    pub use crate::base::digest::{parse_hex, sha256, sha256_hex, to_hex};
}
pub(crate) mod pipeline;
pub(crate) mod rows;
pub(crate) mod run;
pub(crate) mod sync;
mod tool;

pub use crate::input::normalize::dates::BirthDate;
pub use crate::input::normalize::platform::{
    clean, e164, is_sha256_hex, normalize, Field, Normalized, Platform,
};
pub(crate) use cache::RowCache;
pub use formats::{
    Format, GOOGLE_MAX_IDENTIFIERS, GOOGLE_MAX_OPERATIONS, META_MAX_ROWS, META_SCHEMA,
};
pub use rows::{FieldCounts, FieldStats, ProfileRow};
pub use run::{ExportOptions, ExportReport, DEFAULT_MIN_AUDIENCE};
pub(crate) use sync::DestinationLocks;
pub use sync::{valid_destination_name, AckReport, Destination, PushAudit, PushTarget, SyncReport};
pub use tool::normalize_line;
