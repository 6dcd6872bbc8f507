//! cidb's storage engine: unified customer profiles in sled, identity resolution, and
//! roaring-bitmap indexes that segment queries (the `query` crate) evaluate against.
//!
//! # Brief overview
//! - [`Engine`]: open a database, ingest records ([`Engine::ingest_json`],
//!   [`Engine::import_jsonl`], [`Engine::import_csv`]), look profiles up, check integrity.
//! - [`Snapshot`] / [`Indexes`]: a consistent read view of the bitmap indexes.
//! - [`Config`], [`IdentityRules`], [`ScopePolicies`]: how records are normalized and
//!   resolved.
//! - [`Generator`]: deterministic synthetic data.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let engine = engine::Engine::open(dir.path()).unwrap();
//! let report = engine
//!     .ingest_json(&[r#"{"source":"crm","identifiers":{"email":"Jane@Example.com"}}"#])
//!     .unwrap();
//! assert_eq!(report.new_profiles, 1);
//! let found = engine.lookup(&engine::Lookup::Email("jane@example.com".into())).unwrap();
//! assert!(found.is_some());
//! ```

#![deny(missing_docs)]
// One exception, with its reason: `index::checkpoint` maps the checkpoint file.
#![deny(unsafe_code)]

// The layers, bottom to top; each imports only from the ones above it in this list
// (ARCHITECTURE.md "Engine layers"; `tests/layers.rs` enforces it).
mod base;
mod engine;
pub mod export;
mod identity;
mod index;
mod input;
mod model;
mod privacy;
mod storage;
mod write;

pub use base::kind::IdentifierKind;
pub use privacy::{audit, suppression};
pub use storage::records::{
    ApiKeyRecord, SavedSegmentRecord, SegmentHistoryRecord, SEGMENT_HISTORY_DAYS,
};

pub use base::error::{Error, ImportError, IngestError, OpenError, StorageError};
pub use base::limits::{
    IDEMPOTENCY_TTL_MS, MAX_ABS_NUMBER, MAX_BATCH_RECORDS, MAX_EVENTS_PER_RECORD, MAX_FIELDS,
    MAX_LINE_BYTES, MAX_LISTED_PROBLEMS, MAX_LIST_ITEMS, MAX_RECORD_BYTES, MAX_VALUE_BYTES,
};
pub use base::time::{
    civil_from_day, day_from_civil_clamped, day_of, format_date, format_rfc3339, now_millis,
    parse_date, parse_rfc3339, DayNumber, Millis, MS_PER_DAY,
};
pub use engine::models::ScoreExplanation;
pub use engine::{CheckReport, Engine, Lookup, ProfileView, Stats};
pub use index::{
    bool_text, scale_number, set_range_slices_threshold, AggFilter, Bsi, Cmp, EventIndex, EventKey,
    IndexSizes, Indexes, NumericKey, NumericKind, Series, Term, TimeRange, Totals, ValueKind,
    NUMBER_SCALE,
};
pub use input::config::Config;
pub use input::generate::{GenerateSummary, Generator, DEFAULT_EVENTS_PER_PERSON, REFERENCE_TIME};
pub use input::normalize::{
    country as normalize_country, email as normalize_email, index_text, phone as normalize_phone,
    IdentifierProblem,
};
pub use input::record::{
    parse_json_record, Event, FieldWarning, Identifier, ParsedRecord, Record, RejectReason,
    ShortText, Value,
};
pub use input::report::{IngestReport, Rejected, Warning};
pub use input::rules::IdentityRules;
pub use input::scope::ScopePolicies;
pub use model::{auc_of, holdout_split};
pub use model::{
    Feature, Model, ModelReport, Quality, ScoreIndex, TopFeature, TrainOptions, MAX_PERCENTILE,
    MIN_SEED, MIN_SUPPORT, PERSONAL_FIELDS, REDUNDANT_PHI, WARN_SEED,
};
pub use privacy::forget::{ForgetOptions, ForgetReport, ERASED_LIST};
pub use privacy::lists::RESERVED_LISTS;
pub use privacy::objections::{Objection, OBJECTIONS_LIST};
pub use storage::codec::{FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT};
pub use storage::profile::{
    Attribute, ConsentChange, ListItem, Profile, ProfileId, Provenance, ProvenanceList, Scalar,
    SourceSeen, StoredIdentifier,
};
pub use storage::{CompactReport, EventChunk, MergeLogEntry};
pub use write::import::{input_fingerprint, ImportOptions, Progress};
pub use write::ingest::{IdempotencyKey, IdempotentIngest};
pub use write::state::Snapshot;
