//! Evaluates a plan against one snapshot of the indexes: stored bitmaps are borrowed, never
//! copied, until an operation needs a new bitmap; ANDs stop at the first empty
//! intermediate; a count computes its last operation with `intersection_len`,
//! `difference_len` or `union_len` instead of materializing it.

use crate::ir::{EventFilter, EventQuery, Node, Op, Plan};
use crate::parser::CmpOp;
use engine::{scale_number, AggFilter, Cmp, Indexes, NumericKey, Series, TimeRange, Totals};
use roaring::{MultiOps, RoaringBitmap};
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// What one node did, for `explain`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeRun {
    pub actual: u64,
    pub elapsed: Duration,
}

pub(crate) struct Evaluator<'a> {
    ix: &'a Indexes,
    /// Per node id, when tracing (`explain`).
    trace: Option<Vec<Option<NodeRun>>>,
}

type Bits<'a> = Cow<'a, RoaringBitmap>;

/// A range is evaluated within an AND's intermediate result when that result has fewer
/// than 1/`FILTER_RATIO` of the index's profiles (measured: filtering a dense intermediate
/// is slower than evaluating the range alone and intersecting).
const FILTER_RATIO: u64 = 8;

fn intersect<'a>(a: Bits<'a>, b: Bits<'a>) -> Bits<'a> {
    match (a, b) {
        // Built from the much smaller side: intersecting a big owned bitmap in place
        // turns its dense containers into arrays one by one, which costs more than
        // looking the small side's members up in them.
        (Cow::Owned(x), b) if x.len() > b.len().saturating_mul(SMALL_SIDE_RATIO) => {
            Cow::Owned(b.as_ref() & &x)
        }
        (Cow::Owned(mut x), b) => {
            x &= b.as_ref();
            Cow::Owned(x)
        }
        (Cow::Borrowed(x), Cow::Owned(mut y)) => {
            y &= x;
            Cow::Owned(y)
        }
        (Cow::Borrowed(x), Cow::Borrowed(y)) => Cow::Owned(x & y),
    }
}

/// How much smaller one side of an intersection must be to build the result from it.
const SMALL_SIDE_RATIO: u64 = 4;

/// An AND's intermediate this many times smaller than an event series has profiles is
/// intersected with each bitmap of a closed window instead of the window's union (intersecting
/// bigger ones costs more than the union: roaring intersects two arrays by merging them).
const WINDOW_FILTER_RATIO: u64 = 64;

/// The profiles of `within` with an event of `series` in `range`.
fn window_within(series: &Series, range: TimeRange, within: &RoaringBitmap) -> RoaringBitmap {
    // A window open at the end is a range over latest days, as cheap within any set.
    if range.until.is_none() || within.len().saturating_mul(WINDOW_FILTER_RATIO) < series.any.len()
    {
        series.members_within(range, within)
    } else {
        within & &series.members(range)
    }
}

fn subtract<'a>(a: Bits<'a>, b: &RoaringBitmap) -> Bits<'a> {
    match a {
        Cow::Owned(mut x) => {
            x -= b;
            Cow::Owned(x)
        }
        Cow::Borrowed(x) => Cow::Owned(x - b),
    }
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(ix: &'a Indexes) -> Self {
        Evaluator { ix, trace: None }
    }

    pub(crate) fn tracing(ix: &'a Indexes, plan: &Plan) -> Self {
        Evaluator {
            ix,
            trace: Some(vec![None; plan.nodes]),
        }
    }

    pub(crate) fn into_trace(self) -> Vec<Option<NodeRun>> {
        self.trace.unwrap_or_default()
    }

    /// The members of a node.
    pub(crate) fn eval(&mut self, node: &'a Node) -> Bits<'a> {
        self.traced(node, |ev| ev.eval_op(node))
    }

    /// Runs `f` for `node`, recording its cardinality and time when tracing.
    fn traced(&mut self, node: &Node, f: impl FnOnce(&mut Self) -> Bits<'a>) -> Bits<'a> {
        let started = self.trace.is_some().then(Instant::now);
        let out = f(self);
        if let (Some(t), Some(started)) = (self.trace.as_mut(), started) {
            t[node.id] = Some(NodeRun {
                actual: out.len(),
                elapsed: started.elapsed(),
            });
        }
        out
    }

    fn eval_op(&mut self, node: &'a Node) -> Bits<'a> {
        let ix = self.ix;
        match &node.op {
            Op::Empty => Cow::Owned(RoaringBitmap::new()),
            Op::All => Cow::Borrowed(ix.live()),
            Op::Term(t) => Cow::Borrowed(ix.term(t)),
            Op::Bitmap { bits, .. } => Cow::Borrowed(&**bits),
            Op::Score {
                scores, low, high, ..
            } => Cow::Owned(scores.between(*low, *high)),
            Op::Range { key, low, high } => Cow::Owned(self.range(key, *low, *high, None)),
            Op::NumericExists(key) => match ix.numeric(key) {
                Some(b) => Cow::Borrowed(b.exists()),
                None => Cow::Owned(RoaringBitmap::new()),
            },
            Op::Event(q) => self.event(q),
            Op::AndNot { all, but_not } => {
                let mut acc = self.eval(&all[0]);
                for n in &all[1..] {
                    if acc.is_empty() {
                        break;
                    }
                    acc = self.and_step(acc, n);
                }
                for n in but_not {
                    if acc.is_empty() {
                        break;
                    }
                    acc = self.minus_step(acc, n);
                }
                acc
            }
            Op::And(v) => {
                // Only before optimization; kept total for safety.
                let mut acc = Cow::Borrowed(ix.live());
                for n in v {
                    let b = self.eval(n);
                    acc = intersect(acc, b);
                }
                acc
            }
            Op::Or(v) => {
                let parts: Vec<Bits<'a>> = v.iter().map(|n| self.eval(n)).collect();
                Cow::Owned(parts.iter().map(|c| c.as_ref()).union())
            }
            Op::Not(n) => {
                let inner = self.eval(n);
                Cow::Owned(ix.live() - inner.as_ref())
            }
            Op::Segment { inner, .. } => self.eval(inner),
        }
    }

    /// The cardinality of a node, avoiding materializing its last operation.
    pub(crate) fn count(&mut self, node: &'a Node) -> u64 {
        if self.trace.is_some() {
            return self.eval(node).len();
        }
        match &node.op {
            Op::Empty => 0,
            Op::All => self.ix.live().len(),
            Op::Term(t) => self.ix.term(t).len(),
            Op::Bitmap { bits, .. } => bits.len(),
            Op::Score {
                scores, low, high, ..
            } => scores.count_between(*low, *high),
            Op::NumericExists(key) => self.ix.numeric(key).map_or(0, |b| b.exists().len()),
            Op::Range { key, low, high } => self.range_count(key, *low, *high, None),
            Op::Segment { inner, .. } => self.count(inner),
            Op::Not(n) => self.ix.live().len() - self.count(n),
            Op::Or(v) if v.len() == 2 => {
                let (a, b) = (self.eval(&v[0]), self.eval(&v[1]));
                a.union_len(&b)
            }
            Op::AndNot { all, but_not } if but_not.is_empty() => {
                let mut acc = self.eval(&all[0]);
                for n in &all[1..all.len() - 1] {
                    if acc.is_empty() {
                        return 0;
                    }
                    acc = self.and_step(acc, n);
                }
                if acc.is_empty() || all.len() == 1 {
                    return acc.len();
                }
                let last = &all[all.len() - 1];
                if let Op::Range { key, low, high } = &last.op {
                    return self.range_count(key, *low, *high, Some(&acc));
                }
                if matches!(last.op, Op::Score { .. }) {
                    return self.and_step(acc, last).len();
                }
                let last = self.eval(last);
                acc.intersection_len(&last)
            }
            Op::AndNot { all, but_not } => {
                let mut acc = self.eval(&all[0]);
                for n in &all[1..] {
                    if acc.is_empty() {
                        return 0;
                    }
                    acc = self.and_step(acc, n);
                }
                for n in &but_not[..but_not.len() - 1] {
                    if acc.is_empty() {
                        return 0;
                    }
                    acc = self.minus_step(acc, n);
                }
                if acc.is_empty() {
                    return 0;
                }
                let last = &but_not[but_not.len() - 1];
                if let Some((series, range)) = self.existence_window(last) {
                    let gone =
                        self.traced(last, |_| Cow::Owned(series.members_within(range, &acc)));
                    return acc.len() - gone.len();
                }
                let last = self.eval(last);
                acc.difference_len(&last)
            }
            _ => self.eval(node).len(),
        }
    }

    /// A range over a bit-sliced index, restricted to `within` when given.
    fn range(
        &self,
        key: &NumericKey,
        low: i64,
        high: i64,
        within: Option<&RoaringBitmap>,
    ) -> RoaringBitmap {
        let Some(bsi) = self.ix.numeric(key) else {
            return RoaringBitmap::new();
        };
        let low = (low != i64::MIN).then_some(low);
        let high = (high != i64::MAX).then_some(high);
        bsi.range_within(low, high, within)
    }

    /// How many profiles (of `within`, when given) a range holds, without building them.
    fn range_count(
        &self,
        key: &NumericKey,
        low: i64,
        high: i64,
        within: Option<&RoaringBitmap>,
    ) -> u64 {
        let Some(bsi) = self.ix.numeric(key) else {
            return 0;
        };
        let low = (low != i64::MIN).then_some(low);
        let high = (high != i64::MAX).then_some(high);
        bsi.count_within(low, high, within)
    }

    /// One step of an AND: `acc ∩ node`. A range is evaluated only within `acc` (the
    /// bit-sliced work shrinks with the intermediate result).
    fn and_step(&mut self, acc: Bits<'a>, node: &'a Node) -> Bits<'a> {
        if let Op::Score {
            scores, low, high, ..
        } = &node.op
        {
            if acc.len().saturating_mul(FILTER_RATIO) < scores.scored().len() {
                return self.traced(node, |_| {
                    Cow::Owned(scores.between_within(*low, *high, &acc))
                });
            }
        }
        if let Op::Range { key, low, high } = &node.op {
            let exists = self.ix.numeric(key).map_or(0, |b| b.exists().len());
            if acc.len().saturating_mul(FILTER_RATIO) > exists {
                // A dense intermediate gains nothing from filtering the slices.
                let b = self.eval(node);
                return intersect(acc, b);
            }
            return self.traced(node, |ev| {
                Cow::Owned(ev.range(key, *low, *high, Some(&acc)))
            });
        }
        if let Some((series, range)) = self.existence_window(node) {
            return self.traced(node, |_| Cow::Owned(window_within(series, range, &acc)));
        }
        let b = self.eval(node);
        intersect(acc, b)
    }

    /// One step of an AND NOT: `acc - node`. An event window is evaluated only within
    /// `acc`.
    fn minus_step(&mut self, acc: Bits<'a>, node: &'a Node) -> Bits<'a> {
        if let Some((series, range)) = self.existence_window(node) {
            let gone = self.traced(node, |_| Cow::Owned(window_within(series, range, &acc)));
            return subtract(acc, &gone);
        }
        let b = self.eval(node);
        subtract(acc, &b)
    }

    /// The series and window of "any event in a window" (`event(type, within …)` without
    /// count or sum), also through a saved segment that is only that: such a node is
    /// cheaper restricted to what an AND has so far than built whole.
    fn existence_window(&self, node: &'a Node) -> Option<(&'a Series, TimeRange)> {
        match &node.op {
            Op::Segment { inner, .. } => self.existence_window(inner),
            Op::Event(q) if q.filters.is_empty() && !q.range.is_unbounded() => {
                let series = self.ix.events().series.get(&q.key)?;
                Some((series, q.range))
            }
            _ => None,
        }
    }

    fn event(&self, q: &'a EventQuery) -> Bits<'a> {
        let Some(series) = self.ix.events().series.get(&q.key) else {
            return Cow::Owned(RoaringBitmap::new());
        };
        if q.filters.is_empty() {
            if q.range.is_unbounded() {
                return Cow::Borrowed(&series.any);
            }
            return Cow::Owned(series.members(q.range));
        }
        let filters: Vec<AggFilter> = q
            .filters
            .iter()
            .map(|f| match *f {
                EventFilter::Count(op, n) => AggFilter::Count(cmp(op), n),
                EventFilter::Sum(op, x) => AggFilter::Sum(cmp(op), x),
            })
            .collect();
        if let Some(members) = series.select(q.range, &filters) {
            return Cow::Owned(members);
        }
        // A sum over values off the number grid: aggregate the entries.
        let keep = |t: &Totals| {
            t.count > 0
                && q.filters.iter().all(|f| match *f {
                    EventFilter::Count(op, n) => op.holds(u64::from(t.count), n),
                    EventFilter::Sum(op, x) => op.holds(scale_number(t.sum), x),
                })
        };
        let members: RoaringBitmap = if q.range.is_unbounded() {
            let mut v: Vec<u32> = series
                .totals()
                .iter()
                .filter(|(_, t)| keep(t))
                .map(|(p, _)| *p)
                .collect();
            v.sort_unstable();
            RoaringBitmap::from_sorted_iter(v).expect("sorted")
        } else {
            let mut v: Vec<u32> = series
                .aggregate(q.range)
                .into_iter()
                .filter(|(_, t)| keep(t))
                .map(|(p, _)| p)
                .collect();
            v.sort_unstable();
            RoaringBitmap::from_sorted_iter(v).expect("sorted")
        };
        Cow::Owned(members)
    }
}

fn cmp(op: CmpOp) -> Cmp {
    match op {
        CmpOp::Eq => Cmp::Eq,
        CmpOp::Ne => Cmp::Ne,
        CmpOp::Lt => Cmp::Lt,
        CmpOp::Le => Cmp::Le,
        CmpOp::Gt => Cmp::Gt,
        CmpOp::Ge => Cmp::Ge,
    }
}
