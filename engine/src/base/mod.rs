//! Layer 0, the base: what every layer may use and that imports nothing of the engine.
//! Errors, time, SHA-256 digests, name rules, limits, identifier kinds, LEB128 numbers and
//! crash points.

pub(crate) mod crash_point;
pub(crate) mod digest;
pub(crate) mod error;
pub(crate) mod kind;
pub(crate) mod leb128;
pub(crate) mod limits;
pub(crate) mod names;
pub(crate) mod time;
