//! Layer 7, privacy: the audit trail, erasure, objections and suppression lists (their
//! entries, reports and loading). The `Engine` operations that use them are in
//! `crate::engine`.

pub mod audit;
pub(crate) mod forget;
pub(crate) mod lists;
pub(crate) mod objections;
pub mod suppression;
