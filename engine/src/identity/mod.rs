//! Identity rules (records.md "Identity rules"): blocked values, per-type limits and
//! priority, and the link table from identifiers to profiles. Resolution itself runs in
//! the writer (`crate::writer`), which applies these rules to the identity graph.

mod forms;
mod links;
mod rules;

pub(crate) use forms::{forms, SUPPRESSIBLE_TAGS};
pub(crate) use links::{LinkKey, Links};
pub use rules::IdentityRules;
