//! `explain`: the optimized plan with each node's estimated and actual cardinality and
//! time.

use crate::eval::NodeRun;
use crate::plan::{EventFilter, Node, Op};
use engine::{format_date, format_rfc3339, Millis, NumericKind, Term, NUMBER_SCALE};
use std::fmt;

/// One node of an explained plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainNode {
    /// What the node does.
    pub label: String,
    /// Estimated members before evaluation.
    pub estimate: u64,
    /// Members it produced; `None` when evaluation stopped before reaching it (an earlier
    /// AND operand was already empty).
    pub actual: Option<u64>,
    /// Time spent in it and below, in microseconds (`None` when not evaluated).
    pub micros: Option<f64>,
    /// Operands.
    pub children: Vec<ExplainNode>,
}

/// An explained evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Explain {
    /// The expression in canonical form.
    pub expr: String,
    /// Evaluation time.
    pub at: Millis,
    /// Members of the segment.
    pub count: u64,
    /// Planning time in microseconds.
    pub plan_micros: f64,
    /// Evaluation time in microseconds.
    pub eval_micros: f64,
    /// The plan.
    pub root: ExplainNode,
}

pub(crate) fn build(node: &Node, runs: &[Option<NodeRun>]) -> ExplainNode {
    let run = runs.get(node.id).copied().flatten();
    let children = match &node.op {
        Op::AndNot { all, but_not } => all
            .iter()
            .map(|n| build(n, runs))
            .chain(but_not.iter().map(|n| {
                let mut e = build(n, runs);
                e.label = format!("EXCEPT {}", e.label);
                e
            }))
            .collect(),
        Op::And(v) | Op::Or(v) => v.iter().map(|n| build(n, runs)).collect(),
        Op::Not(n) | Op::Segment { inner: n, .. } => vec![build(n, runs)],
        _ => Vec::new(),
    };
    ExplainNode {
        label: label(&node.op),
        estimate: node.estimate,
        actual: run.map(|r| r.actual),
        micros: run.map(|r| r.elapsed.as_secs_f64() * 1e6),
        children,
    }
}

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
        Op::Bitmap { what, .. } => what.clone(),
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

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "expr:  {}", self.expr)?;
        writeln!(f, "at:    {}", format_rfc3339(self.at))?;
        writeln!(
            f,
            "count: {}   plan {:.1} us   eval {:.1} us",
            self.count, self.plan_micros, self.eval_micros
        )?;
        fn node(f: &mut fmt::Formatter<'_>, n: &ExplainNode, depth: usize) -> fmt::Result {
            let actual = n.actual.map_or("skipped".to_string(), |a| a.to_string());
            let time = n.micros.map_or(String::new(), |m| format!("  {m:.1} us"));
            writeln!(
                f,
                "{}{}  (est {}, actual {actual}){time}",
                "  ".repeat(depth),
                n.label,
                n.estimate
            )?;
            n.children.iter().try_for_each(|c| node(f, c, depth + 1))
        }
        node(f, &self.root, 0)
    }
}
