//! Layer 1, input: what a record is before it touches storage. Records and their parsers,
//! normalization of identifiers and values (for identity and for the ad platforms), scope
//! policies, identity rules, the engine's configuration, ingest reports and the synthetic
//! data generator.

pub(crate) mod config;
pub(crate) mod generate;
pub(crate) mod normalize;
pub(crate) mod record;
pub(crate) mod report;
pub(crate) mod rules;
pub(crate) mod scope;
