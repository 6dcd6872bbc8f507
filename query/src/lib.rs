//! cidb's segment expression language (`../shared/spec/segments.md`): parser, planner and
//! evaluation as roaring-bitmap operations against the engine's indexes.
//!
//! Not implemented yet: the engine already exposes what evaluation needs
//! ([`engine::Snapshot`], equality bitmaps, bit-sliced indexes, the event index).

#![deny(missing_docs)]
#![forbid(unsafe_code)]
