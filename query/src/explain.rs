//! `explain`: the optimized plan with each node's estimated and actual cardinality and
//! time.

use crate::eval::NodeRun;
use crate::ir::{label, Node, Op};
use engine::{format_rfc3339, Millis};
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
