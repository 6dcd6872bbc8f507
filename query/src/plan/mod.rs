//! Planner: resolves a syntax tree against one snapshot of the engine (fields, types,
//! saved segments; `resolve.rs`), then optimizes it into a tree of bitmap operations
//! (`optimize.rs`; the tree is `crate::ir`):
//!
//! - AND/OR chains are flattened into n-ary nodes;
//! - `A AND NOT B` becomes a difference (`AndNot`), never a complement of B;
//! - range predicates on the same bit-sliced index inside one AND merge into one range;
//! - leaves that are empty in this snapshot become `Empty`, and `Empty`/`ALL` fold away;
//! - AND operands are ordered by estimated cardinality, smallest first (the evaluator
//!   stops as soon as an intermediate result is empty).

mod optimize;
mod resolve;

use crate::error::Error;
use crate::ir::Plan;
use crate::limits::Limits;
use crate::parser::Expr;
use engine::{Millis, Snapshot, StorageError};

/// Where the planner finds saved segments' definitions.
pub trait SegmentSource {
    /// The expression text of a saved segment, `None` when there is none by that name.
    fn definition(&self, name: &str) -> Result<Option<String>, StorageError>;
}

/// Plans `expr` against `snap` at time `at`. `saving`: the saved segment being defined
/// (a reference to it is a cycle).
pub(crate) fn plan(
    snap: &Snapshot<'_>,
    segments: &dyn SegmentSource,
    limits: &Limits,
    at: Millis,
    expr: &Expr,
    saving: Option<&str>,
) -> Result<Plan, Error> {
    let (node, valid) = resolve::resolve(snap, segments, limits, at, expr, saving)?;
    let root = optimize::optimize(snap.indexes(), node);
    let mut plan = Plan::new(root, at);
    plan.valid = valid;
    Ok(plan)
}
