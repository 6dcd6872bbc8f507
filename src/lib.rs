//! cidb: an embedded customer identity database.
//!
//! This crate is the embedding API a host application depends on. It re-exports the
//! storage engine ([`Engine`], ingest, lookups, integrity check) and the segment query
//! layer ([`EngineExt`] adds `engine.segment(expr)` and `engine.segments()`; the whole
//! query crate is [`query`]).
//!
//! ```
//! use cidb::{Engine, Lookup};
//! let dir = tempfile::tempdir().unwrap();
//! let db = Engine::open(dir.path()).unwrap();
//! db.ingest_json(&[
//!     r#"{"source":"crm","identifiers":{"email":"Jane@Example.com","crm_id":"C1"}}"#,
//!     r#"{"source":"web_form","identifiers":{"email":" jane@example.com","phone":"+31 6 1234 5678"}}"#,
//! ]).unwrap();
//! let jane = db.lookup(&Lookup::Phone("+31612345678".into())).unwrap().unwrap();
//! assert_eq!(jane.profile.identifiers.len(), 3);
//!
//! use cidb::EngineExt;
//! assert_eq!(db.segment(r#"identifier("phone") AND source("crm")"#).unwrap().count(), 1);
//! db.segments().save("with_phone", r#"identifier("phone")"#).unwrap();
//! assert_eq!(db.segments().count(r#"segment("with_phone")"#).unwrap(), 1);
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use engine::*;
pub use query::{
    Breakdown, EngineExt, Explain, Overlap, QueryError, SavedSegment, Segment, Segments,
    TrainRequest,
};

/// The segment query layer (parser, planner, evaluator, saved segments).
pub mod query {
    pub use ::query::*;
}
