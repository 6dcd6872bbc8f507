//! JSON forms of query results, shared by the CLI (`--json`) and the HTTP server, so both
//! speak the same contract.

use engine::{format_rfc3339, Millis};
use query::{Breakdown, Explain, ExplainNode, Overlap, QueryError, SavedSegment};
use serde_json::{json, Value};

/// Largest sample a caller may ask for (`--sample`, `"size"`).
pub const MAX_SAMPLE: usize = 100_000;

/// A breakdown.
pub fn breakdown(b: &Breakdown, at: Millis) -> Value {
    json!({
        "count": b.members, "at": format_rfc3339(at), "field": b.field, "missing": b.missing,
        "distinct": b.distinct,
        "values": b.values.iter().map(|v| json!({"value": v.value, "count": v.count})).collect::<Vec<_>>(),
    })
}

fn node(n: &ExplainNode) -> Value {
    json!({
        "label": n.label, "estimate": n.estimate, "actual": n.actual, "micros": n.micros,
        "children": n.children.iter().map(node).collect::<Vec<_>>(),
    })
}

/// An explained plan.
pub fn explain(e: &Explain) -> Value {
    json!({
        "count": e.count, "expr": e.expr, "at": format_rfc3339(e.at),
        "plan_us": e.plan_micros, "eval_us": e.eval_micros, "plan": node(&e.root),
    })
}

/// A saved segment.
pub fn saved(seg: &SavedSegment) -> Value {
    json!({"name": seg.name, "expr": seg.expr,
        "created_at": format_rfc3339(seg.created_at), "updated_at": format_rfc3339(seg.updated_at)})
}

/// An overlap matrix.
pub fn overlap(o: &Overlap, at: Millis) -> Value {
    json!({"counts": o.counts, "matrix": o.matrix, "at": format_rfc3339(at)})
}

/// The error object of a bad expression (`segment`: the saved segment it is in).
pub fn expression_error(e: &QueryError) -> Value {
    json!({"error": {
        "code": "invalid_expression",
        "message": e.kind.to_string(),
        "position": {
            "line": e.position.line,
            "column": e.position.column,
            "offset": e.span.start,
        },
        "segment": e.segment,
    }})
}
