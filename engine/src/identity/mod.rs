//! Identity rules (records.md "Identity rules"): blocked values, per-type limits and
//! priority. Resolution itself runs in the writer (`crate::writer`), which applies these
//! rules to the stored identity graph.

mod rules;

pub use rules::IdentityRules;
