//! Optimization: simplifies a resolved tree bottom-up and fills in each node's estimated
//! cardinality from this snapshot's indexes (see the module doc of `plan`).

use crate::ir::{Node, Op};
use engine::Indexes;

/// Optimizes `node` against `ix`.
pub(super) fn optimize(ix: &Indexes, node: Node) -> Node {
    Optimizer { ix }.optimize(node)
}

struct Optimizer<'a> {
    ix: &'a Indexes,
}

impl Optimizer<'_> {
    /// Simplifies bottom-up and fills in estimates.
    fn optimize(&self, node: Node) -> Node {
        let live = self.ix.live().len();
        match node.op {
            Op::And(children) => self.optimize_and(children),
            Op::Or(children) => {
                let mut flat = Vec::new();
                for c in children.into_iter().map(|c| self.optimize(c)) {
                    match c.op {
                        Op::Empty => {}
                        Op::All => return self.leaf(Op::All),
                        Op::Or(v) => flat.extend(v),
                        _ => flat.push(c),
                    }
                }
                if flat.len() <= 1 {
                    return flat.pop().unwrap_or_else(|| self.leaf(Op::Empty));
                }
                let sum = flat.iter().map(|c| c.estimate).sum::<u64>();
                Node {
                    op: Op::Or(flat),
                    estimate: sum.min(live),
                    id: 0,
                }
            }
            Op::Not(inner) => {
                let inner = self.optimize(*inner);
                match inner.op {
                    Op::Empty => return self.leaf(Op::All),
                    Op::All => return self.leaf(Op::Empty),
                    Op::Not(x) => return *x,
                    _ => {}
                }
                Node {
                    estimate: live.saturating_sub(inner.estimate),
                    op: Op::Not(Box::new(inner)),
                    id: 0,
                }
            }
            Op::Segment { name, inner } => {
                let inner = self.optimize(*inner);
                Node {
                    estimate: inner.estimate,
                    op: Op::Segment {
                        name,
                        inner: Box::new(inner),
                    },
                    id: 0,
                }
            }
            op => self.leaf(op),
        }
    }

    fn optimize_and(&self, children: Vec<Node>) -> Node {
        let mut all: Vec<Node> = Vec::new();
        let mut but_not = Vec::new();
        for c in children.into_iter().map(|c| self.optimize(c)) {
            match c.op {
                Op::Empty => return self.leaf(Op::Empty),
                Op::All => {}
                Op::Not(x) => but_not.push(*x),
                Op::AndNot { all: a, but_not: b } => {
                    all.extend(a);
                    but_not.extend(b);
                }
                _ => all.push(c),
            }
        }
        // Merge ranges over the same bit-sliced index into one range.
        let mut merged: Vec<Node> = Vec::new();
        for c in all {
            if let Op::Range { key, low, high } = &c.op {
                if let Some(prev) = merged
                    .iter_mut()
                    .find(|m| matches!(&m.op, Op::Range { key: k, .. } if k == key))
                {
                    if let Op::Range {
                        low: pl, high: ph, ..
                    } = &mut prev.op
                    {
                        *pl = (*pl).max(*low);
                        *ph = (*ph).min(*high);
                        if pl > ph {
                            return self.leaf(Op::Empty);
                        }
                    }
                    continue;
                }
            }
            merged.push(c);
        }
        let mut all = merged;
        if all.is_empty() {
            all.push(self.leaf(Op::All));
        }
        if but_not.is_empty() && all.len() == 1 {
            return all.pop().expect("one");
        }
        all.sort_by_key(|n| n.estimate);
        but_not.sort_by_key(|n| std::cmp::Reverse(n.estimate));
        Node {
            estimate: all[0].estimate,
            op: Op::AndNot { all, but_not },
            id: 0,
        }
    }

    /// A leaf with its estimate; leaves that are empty in this snapshot become `Empty`.
    fn leaf(&self, op: Op) -> Node {
        let ix = self.ix;
        let estimate = match &op {
            Op::Empty => 0,
            Op::All => ix.live().len(),
            Op::Term(t) => ix.term(t).len(),
            Op::Range { key, .. } | Op::NumericExists(key) => {
                ix.numeric(key).map_or(0, |b| b.exists().len())
            }
            Op::Event(q) => ix.events().series.get(&q.key).map_or(0, |s| s.any.len()),
            Op::Bitmap { bits, .. } => bits.len(),
            Op::Score {
                scores, low, high, ..
            } => scores.count_between(*low, *high),
            _ => unreachable!("leaf() is only called with leaves"),
        };
        if estimate == 0 {
            return Node {
                op: Op::Empty,
                estimate: 0,
                id: 0,
            };
        }
        Node {
            op,
            estimate,
            id: 0,
        }
    }
}
