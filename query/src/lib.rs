//! cidb's segment expression language (`../shared/spec/segments.md`): a parser that
//! produces a syntax tree with spans, a planner that resolves it against one snapshot of
//! the engine and optimizes it, and an evaluator that runs it as roaring-bitmap
//! operations on the engine's indexes.
//!
//! # Brief overview
//! - [`Segments`] (or [`EngineExt`] on [`engine::Engine`]): evaluate, count, explain,
//!   break down and overlap expressions; save, list and delete saved segments.
//! - [`parse`] / [`Expr`]: the syntax tree; [`QueryError`]: what and where.
//! - [`Segment`]: an evaluated segment (count, paged ids, deterministic sample).
//!
//! ```
//! use query::EngineExt;
//! # let dir = tempfile::tempdir().unwrap();
//! let engine = engine::Engine::open(dir.path()).unwrap();
//! engine.ingest_json(&[r#"{"source":"crm","identifiers":{"email":"a@example.com"},"attributes":{"interests":["running"]}}"#]).unwrap();
//! assert_eq!(engine.segment(r#"interests HAS "Running""#).unwrap().count(), 1);
//! let err = engine.segment("interests HAS").unwrap_err();
//! assert!(err.to_string().contains("line 1, column 14"));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod access;
mod age;
mod audience;
mod cache;
mod error;
mod eval;
mod explain;
mod ir;
mod limits;
mod models;
mod parser;
mod plan;
mod results;
mod saved;
mod schema;
mod segments;
mod span;

pub use access::AccessReport;
pub use age::age_at;
pub use audience::{segment_or_expr, DestinationSpec, DEFAULT_POLICY};
pub use cache::LeafCache;
pub use error::{Error, ErrorKind, Position, QueryError};
pub use explain::{Explain, ExplainNode};
pub use ir::Plan;
pub use limits::{Limits, MAX_EXPR_BYTES, MAX_EXPR_DEPTH, MAX_SEGMENT_NESTING};
pub use models::TrainRequest;
pub use parser::{
    parse, CmpOp, DurationUnit, EventOption, EventOptionKind, Expr, ExprKind, HasMode, Literal,
    LiteralValue, Name, Predicate,
};
pub use plan::SegmentSource;
pub use results::{Breakdown, Overlap, Segment, ValueCount};
pub use saved::{valid_name as valid_segment_name, SavedSegment};
pub use segments::{EngineExt, Segments, MAX_BREAKDOWN_VALUES, MAX_OVERLAP_SEGMENTS};
pub use span::Span;
