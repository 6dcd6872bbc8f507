//! cidb: an embedded customer identity database.
//!
//! This crate is the embedding API a host application depends on. It re-exports the
//! storage engine ([`Engine`], ingest, lookups, integrity check) and, as they land, the
//! segment query layer.
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
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use engine::*;
