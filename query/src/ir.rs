//! The plan's intermediate representation: the resolved, optimized tree of bitmap
//! operations that the planner produces, the evaluator runs, the leaf cache keys its
//! results by and `explain` describes. Types and their descriptions only; nothing here
//! plans, evaluates or caches.

use crate::parser::CmpOp;
use engine::{
    format_date, format_rfc3339, EventKey, Millis, NumericKey, NumericKind, Term, TimeRange,
    NUMBER_SCALE,
};
use roaring::RoaringBitmap;

/// A filter on the count or sum of a profile's matching events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EventFilter {
    /// Number of matching events.
    Count(CmpOp, u64),
    /// Sum of their values, at the engine's fixed number precision.
    Sum(CmpOp, i64),
}

/// An `event(...)` predicate, resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventQuery {
    pub key: EventKey,
    pub range: TimeRange,
    pub filters: Vec<EventFilter>,
}

/// One operation of a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// No profile.
    Empty,
    /// Every live profile.
    All,
    /// A stored equality bitmap (read in place, never copied).
    Term(Term),
    /// Profiles whose bit-sliced value is in `[low, high]` (`i64::MIN`/`MAX` for open).
    Range {
        key: NumericKey,
        low: i64,
        high: i64,
    },
    /// Profiles with any value in a bit-sliced index.
    NumericExists(NumericKey),
    /// Profiles with matching events.
    Event(EventQuery),
    /// Profiles whose percentile in a model is in `[low, high]` (evaluated within an
    /// AND's intermediate result when that is small).
    Score {
        /// The predicate as written, for explain.
        what: String,
        /// The model's percentiles in this snapshot.
        scores: std::sync::Arc<engine::ScoreIndex>,
        /// Lowest percentile, inclusive.
        low: i64,
        /// Highest percentile, inclusive.
        high: i64,
    },
    /// Before optimization: intersection of the operands.
    And(Vec<Node>),
    /// Intersection of `all`, minus the union of `but_not`.
    AndNot { all: Vec<Node>, but_not: Vec<Node> },
    /// Union.
    Or(Vec<Node>),
    /// Live profiles not in the operand.
    Not(Box<Node>),
    /// A saved segment, planned inline.
    Segment { name: String, inner: Box<Node> },
    /// A bitmap resolved while planning (suppression list members, cached leaves),
    /// named for explain.
    Bitmap {
        what: String,
        bits: std::sync::Arc<RoaringBitmap>,
    },
}

/// A plan node: its operation, the estimated cardinality, and an id (preorder) that
/// `explain` reports against.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub op: Op,
    pub estimate: u64,
    pub id: usize,
}

impl Node {
    /// A node without an estimate or id yet.
    pub(crate) fn new(op: Op) -> Node {
        Node {
            op,
            estimate: 0,
            id: 0,
        }
    }
}

/// A planned expression, bound to the evaluation time.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) root: Node,
    pub(crate) nodes: usize,
    pub(crate) at: Millis,
    /// The evaluation times at which the planned expression has the same members on the
    /// same snapshot (holds `at`; `resolve.rs` narrows it for `age` and `within`).
    pub(crate) valid: std::ops::Range<Millis>,
}

impl Plan {
    /// A plan of `root` for time `at`, its nodes numbered in preorder.
    pub(crate) fn new(mut root: Node, at: Millis) -> Plan {
        let mut next = 0;
        number(&mut root, &mut next);
        Plan {
            root,
            nodes: next,
            at,
            valid: at..at.saturating_add(1),
        }
    }

    /// The evaluation time the plan was made for (milliseconds since the epoch, UTC).
    pub fn at(&self) -> Millis {
        self.at
    }
}

fn number(node: &mut Node, next: &mut usize) {
    node.id = *next;
    *next += 1;
    match &mut node.op {
        Op::AndNot { all, but_not } => {
            all.iter_mut()
                .chain(but_not.iter_mut())
                .for_each(|n| number(n, next));
        }
        Op::And(v) | Op::Or(v) => v.iter_mut().for_each(|n| number(n, next)),
        Op::Not(n) | Op::Segment { inner: n, .. } => number(n, next),
        _ => {}
    }
}

/// A bound of a bit-sliced range, as a date or a number.
fn bound(kind: NumericKind, v: i64) -> String {
    match kind {
        NumericKind::Date => match i32::try_from(v) {
            Ok(d) if (-800_000..=3_000_000).contains(&d) => format_date(d),
            _ if v < 0 => "-inf".into(),
            _ => "+inf".into(),
        },
        NumericKind::Number => format!("{}", v as f64 / NUMBER_SCALE),
    }
}

/// What a node does, as `explain` prints it (and as cached leaves are named).
pub(crate) fn label(op: &Op) -> String {
    match op {
        Op::Empty => "EMPTY".into(),
        Op::All => "ALL (live profiles)".into(),
        Op::Term(t) => match t {
            Term::Live => "ALL (live profiles)".into(),
            Term::Exists(f) => format!("bitmap {f} EXISTS"),
            Term::Eq(f, v) => format!("bitmap {f} = {v:?}"),
            Term::Consent(p) => format!("bitmap consent({p:?})"),
            Term::ConsentKnown(p) => format!("bitmap consent known({p:?})"),
            Term::IdentifierType(t) => format!("bitmap identifier({t:?})"),
            Term::Source(s) => format!("bitmap source({s:?})"),
            other => format!("bitmap {other:?}"),
        },
        Op::Range { key, low, high } => {
            let lo = (*low != i64::MIN).then(|| bound(key.kind, *low));
            let hi = (*high != i64::MAX).then(|| bound(key.kind, *high));
            let r = match (lo, hi) {
                (Some(l), Some(h)) if l == h => format!("= {l}"),
                (Some(l), Some(h)) => format!("in [{l}, {h}]"),
                (Some(l), None) => format!(">= {l}"),
                (None, Some(h)) => format!("<= {h}"),
                (None, None) => "EXISTS".into(),
            };
            format!("bit-sliced {} {r}", key.field)
        }
        Op::NumericExists(key) => format!("bit-sliced {} EXISTS", key.field),
        Op::Bitmap { what, .. } | Op::Score { what, .. } => what.clone(),
        Op::Event(q) => {
            let mut s = format!("event {:?}", q.key.kind);
            if let Some(c) = &q.key.category {
                s.push_str(&format!(" category {c:?}"));
            }
            if let Some(f) = q.range.from {
                s.push_str(&format!(" from {}", format_rfc3339(f)));
            }
            if let Some(u) = q.range.until {
                s.push_str(&format!(" until {}", format_rfc3339(u)));
            }
            for f in &q.filters {
                match f {
                    EventFilter::Count(op, n) => s.push_str(&format!(" count {} {n}", op.symbol())),
                    EventFilter::Sum(op, x) => s.push_str(&format!(
                        " sum {} {}",
                        op.symbol(),
                        *x as f64 / NUMBER_SCALE
                    )),
                }
            }
            s
        }
        Op::And(_) => "AND".into(),
        Op::AndNot { but_not, .. } if but_not.is_empty() => "AND".into(),
        Op::AndNot { .. } => "AND ... EXCEPT (difference)".into(),
        Op::Or(_) => "OR".into(),
        Op::Not(_) => "NOT (live minus)".into(),
        Op::Segment { name, .. } => format!("segment({name:?})"),
    }
}
