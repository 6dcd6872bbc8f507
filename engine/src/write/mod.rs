//! Applies a batch of parsed records: identity resolution against the stored graph, merges,
//! conflict rules, then one atomic commit of everything the batch changed.
//!
//! Nothing is written until the batch commits: records are folded into staged profiles,
//! links, events and merge-log entries in memory, [`ResolvedBatch::prepare`] turns them
//! into one sled batch plus index changes, and the engine applies both at once, so a
//! batch is applied all-or-nothing.
//!
//! The importer resolves one batch while the previous one commits: [`overlay`] holds what
//! the previous batch left, which resolution reads before the store.

mod commit;
pub(crate) mod import;
pub(crate) mod ingest;
mod overlay;
mod plan;
pub(crate) mod state;

pub(crate) use commit::{PreparedBatch, ResolvedBatch};
pub(crate) use overlay::Overlay;
pub(crate) use plan::{BatchPlan, StoredLinks};
