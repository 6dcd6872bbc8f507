//! Planner: resolves a syntax tree against one snapshot of the engine (fields, types,
//! saved segments), then optimizes it into a tree of bitmap operations:
//!
//! - AND/OR chains are flattened into n-ary nodes;
//! - `A AND NOT B` becomes a difference (`AndNot`), never a complement of B;
//! - range predicates on the same bit-sliced index inside one AND merge into one range;
//! - leaves that are empty in this snapshot become `Empty`, and `Empty`/`ALL` fold away;
//! - AND operands are ordered by estimated cardinality, smallest first (the evaluator
//!   stops as soon as an intermediate result is empty).

use crate::age;
use crate::error::{Error, ErrorKind, QueryError};
use crate::limits::Limits;
use crate::parser::{
    self, CmpOp, EventOptionKind, Expr, ExprKind, HasMode, Literal, LiteralValue, Name, Predicate,
};
use crate::span::Span;
use crate::schema::{self, Field, BIRTH_DATE};
use engine::{
    bool_text, day_of, index_text, normalize_country, parse_date, scale_number, EventKey, Indexes,
    Millis, NumericKey, NumericKind, Snapshot, StorageError, Term, TimeRange, ValueKind,
    MS_PER_DAY,
};
use roaring::RoaringBitmap;

/// Where the planner finds saved segments' definitions.
pub trait SegmentSource {
    /// The expression text of a saved segment, `None` when there is none by that name.
    fn definition(&self, name: &str) -> Result<Option<String>, StorageError>;
}

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
    fn new(op: Op) -> Node {
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
}

impl Plan {
    /// The evaluation time the plan was made for (milliseconds since the epoch, UTC).
    pub fn at(&self) -> Millis {
        self.at
    }
}

/// Plans `expr` against `ix` at time `at`.
pub(crate) fn plan(
    snap: &Snapshot<'_>,
    segments: &dyn SegmentSource,
    limits: &Limits,
    at: Millis,
    expr: &Expr,
    saving: Option<&str>,
    cache: Option<&crate::cache::LeafCache>,
) -> Result<Plan, Error> {
    let mut p = Planner {
        ix: snap.indexes(),
        suppressed: &|name| snap.suppressed(name).map(|b| b & snap.indexes().live()),
        segments,
        limits,
        at,
        stack: saving.map(|s| vec![s.to_string()]).unwrap_or_default(),
    };
    let node = p.compile(expr)?;
    let mut root = p.optimize(node);
    if let Some(cache) = cache {
        cache.materialize(&mut root, snap.indexes(), snap.generation());
    }
    let mut next = 0;
    number(&mut root, &mut next);
    Ok(Plan {
        root,
        nodes: next,
        at,
    })
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

struct Planner<'a> {
    ix: &'a Indexes,
    /// Live profiles on any suppression list (`None`) or on a named one.
    suppressed: &'a dyn Fn(Option<&str>) -> Option<RoaringBitmap>,
    segments: &'a dyn SegmentSource,
    limits: &'a Limits,
    at: Millis,
    /// Saved segments being planned, outermost first (cycle detection).
    stack: Vec<String>,
}

fn err(kind: ErrorKind, span: Span) -> Error {
    Error::Query(QueryError::new(kind, span))
}

fn mismatch(message: String, span: Span) -> Error {
    err(ErrorKind::TypeMismatch(message), span)
}

fn numeric(field: &str, kind: NumericKind) -> NumericKey {
    NumericKey {
        field: field.into(),
        kind,
    }
}

/// Inclusive integer bounds of `op c` (not for `!=`).
fn bounds(op: CmpOp, c: i64) -> (i64, i64) {
    match op {
        CmpOp::Lt => (i64::MIN, c.saturating_sub(1)),
        CmpOp::Le => (i64::MIN, c),
        CmpOp::Gt => (c.saturating_add(1), i64::MAX),
        CmpOp::Ge => (c, i64::MAX),
        CmpOp::Eq | CmpOp::Ne => (c, c),
    }
}

fn range(key: NumericKey, (low, high): (i64, i64)) -> Node {
    if low > high {
        Node::new(Op::Empty)
    } else {
        Node::new(Op::Range { key, low, high })
    }
}

/// The indexed form of a string compared to `field`.
fn indexed_text(field: &str, s: &str) -> engine::ShortText {
    if field == "country" {
        if let Some(code) = normalize_country(s) {
            return index_text(code);
        }
    }
    index_text(s)
}

impl Planner<'_> {
    fn compile(&mut self, expr: &Expr) -> Result<Node, Error> {
        Ok(match &expr.kind {
            ExprKind::Or(v) => Node::new(Op::Or(
                v.iter()
                    .map(|e| self.compile(e))
                    .collect::<Result<_, _>>()?,
            )),
            ExprKind::And(v) => Node::new(Op::And(
                v.iter()
                    .map(|e| self.compile(e))
                    .collect::<Result<_, _>>()?,
            )),
            ExprKind::Not(e) => Node::new(Op::Not(Box::new(self.compile(e)?))),
            ExprKind::All => Node::new(Op::All),
            ExprKind::Predicate(p) => self.predicate(p)?,
        })
    }

    fn predicate(&mut self, p: &Predicate) -> Result<Node, Error> {
        match p {
            Predicate::Compare { field, op, value } => self.compare(field, *op, value),
            Predicate::In { field, values } => Ok(Node::new(Op::Or(
                values
                    .iter()
                    .map(|v| self.compare(field, CmpOp::Eq, v))
                    .collect::<Result<_, _>>()?,
            ))),
            Predicate::Between { field, low, high } => Ok(Node::new(Op::And(vec![
                self.compare(field, CmpOp::Ge, low)?,
                self.compare(field, CmpOp::Le, high)?,
            ]))),
            Predicate::Has {
                field,
                mode,
                values,
            } => self.has(field, *mode, values),
            Predicate::Exists { field } => Ok(match schema::resolve(self.ix, field)? {
                Field::Age => Node::new(Op::NumericExists(numeric(BIRTH_DATE, NumericKind::Date))),
                Field::Attribute(_) => {
                    Node::new(Op::Term(Term::Exists(field.text.as_str().into())))
                }
            }),
            Predicate::Consent(n) => Ok(Node::new(Op::Term(Term::Consent(
                name_arg(n, "purpose")?.into(),
            )))),
            Predicate::Identifier(n) => Ok(Node::new(Op::Term(Term::IdentifierType(
                name_arg(n, "identifier type")?.into(),
            )))),
            Predicate::Source(n) => Ok(Node::new(Op::Term(Term::Source(
                name_arg(n, "source")?.into(),
            )))),
            Predicate::Suppressed(None) => Ok(Node::new(Op::Bitmap {
                what: "suppressed()".into(),
                bits: std::sync::Arc::new((self.suppressed)(None).unwrap_or_default()),
            })),
            Predicate::Suppressed(Some(n)) => match (self.suppressed)(Some(&n.text)) {
                Some(bits) => Ok(Node::new(Op::Bitmap {
                    what: format!("suppressed({:?})", n.text),
                    bits: std::sync::Arc::new(bits),
                })),
                None => Err(err(
                    ErrorKind::UnknownSuppressionList(n.text.clone()),
                    n.span,
                )),
            },
            Predicate::Event { kind, options } => self.event(kind, options),
            Predicate::Segment(n) => self.segment(n),
        }
    }

    fn compare(&mut self, field: &Name, op: CmpOp, value: &Literal) -> Result<Node, Error> {
        match schema::resolve(self.ix, field)? {
            Field::Age => {
                let LiteralValue::Num(x) = value.value else {
                    return Err(mismatch(
                        format!(
                            "`age` is a number; {} does not compare to it",
                            value.value.type_name()
                        ),
                        value.span,
                    ));
                };
                let key = numeric(BIRTH_DATE, NumericKind::Date);
                let today = day_of(self.at);
                let exact = |op| match age::birth_range(today, op, x) {
                    Some(b) => range(key.clone(), b),
                    None => Node::new(Op::Empty),
                };
                Ok(match op {
                    CmpOp::Ne => Node::new(Op::And(vec![
                        Node::new(Op::NumericExists(key.clone())),
                        Node::new(Op::Not(Box::new(exact(CmpOp::Eq)))),
                    ])),
                    op => exact(op),
                })
            }
            Field::Attribute(kinds) => match op {
                CmpOp::Eq => self.equal(field, &kinds, value),
                CmpOp::Ne => Ok(Node::new(Op::And(vec![
                    Node::new(Op::Term(Term::Exists(field.text.as_str().into()))),
                    Node::new(Op::Not(Box::new(self.equal(field, &kinds, value)?))),
                ]))),
                _ => self.ordered(field, &kinds, op, value),
            },
        }
    }

    fn equal(&self, field: &Name, kinds: &[ValueKind], value: &Literal) -> Result<Node, Error> {
        let f = &field.text;
        let mut alternatives = Vec::new();
        match &value.value {
            LiteralValue::Str(s) => {
                if kinds.contains(&ValueKind::Date) {
                    match parse_date(s) {
                        Some(d) => alternatives.push(range(
                            numeric(f, NumericKind::Date),
                            (i64::from(d), i64::from(d)),
                        )),
                        None if !kinds.contains(&ValueKind::Text)
                            && !kinds.contains(&ValueKind::List) =>
                        {
                            return Err(err(ErrorKind::InvalidDate(s.clone()), value.span))
                        }
                        None => {}
                    }
                }
                if kinds.contains(&ValueKind::Text) || kinds.contains(&ValueKind::List) {
                    alternatives.push(Node::new(Op::Term(Term::Eq(
                        f.as_str().into(),
                        indexed_text(f, s),
                    ))));
                }
            }
            LiteralValue::Num(x) if kinds.contains(&ValueKind::Number) => {
                let c = scale_number(*x);
                alternatives.push(range(numeric(f, NumericKind::Number), (c, c)));
            }
            LiteralValue::Bool(b) if kinds.contains(&ValueKind::Bool) => {
                alternatives.push(Node::new(Op::Term(Term::Eq(
                    f.as_str().into(),
                    bool_text(*b).into(),
                ))));
            }
            _ => {}
        }
        match alternatives.len() {
            0 => Err(mismatch(
                format!(
                    "`{f}` is {}; {} does not compare to it",
                    schema::describe(kinds),
                    value.value.type_name()
                ),
                value.span,
            )),
            1 => Ok(alternatives.pop().expect("one")),
            _ => Ok(Node::new(Op::Or(alternatives))),
        }
    }

    fn ordered(
        &self,
        field: &Name,
        kinds: &[ValueKind],
        op: CmpOp,
        value: &Literal,
    ) -> Result<Node, Error> {
        let f = &field.text;
        match &value.value {
            LiteralValue::Num(x) if kinds.contains(&ValueKind::Number) => Ok(range(
                numeric(f, NumericKind::Number),
                bounds(op, scale_number(*x)),
            )),
            LiteralValue::Str(s) if kinds.contains(&ValueKind::Date) => match parse_date(s) {
                Some(d) => Ok(range(
                    numeric(f, NumericKind::Date),
                    bounds(op, i64::from(d)),
                )),
                None => Err(err(ErrorKind::InvalidDate(s.clone()), value.span)),
            },
            _ if !kinds.contains(&ValueKind::Number) && !kinds.contains(&ValueKind::Date) => {
                Err(mismatch(
                    format!(
                        "`{f}` is {}; `{}` needs a number or a date field",
                        schema::describe(kinds),
                        op.symbol()
                    ),
                    field.span.to(value.span),
                ))
            }
            _ => Err(mismatch(
                format!(
                    "`{f}` is {}; {} does not compare to it",
                    schema::describe(kinds),
                    value.value.type_name()
                ),
                value.span,
            )),
        }
    }

    fn has(&self, field: &Name, mode: HasMode, values: &[Literal]) -> Result<Node, Error> {
        match schema::resolve(self.ix, field)? {
            Field::Attribute(k) if k.contains(&ValueKind::List) => {}
            other => {
                let is = match other {
                    Field::Age => "a number".to_string(),
                    Field::Attribute(k) => schema::describe(&k),
                };
                return Err(mismatch(
                    format!("`HAS` needs a list field; `{}` is {is}", field.text),
                    field.span,
                ));
            }
        }
        let terms = values
            .iter()
            .map(|v| match &v.value {
                LiteralValue::Str(s) => Ok(Node::new(Op::Term(Term::Eq(
                    field.text.as_str().into(),
                    indexed_text(&field.text, s),
                )))),
                other => Err(mismatch(
                    format!(
                        "`{}` is a list of strings; {} is not one",
                        field.text,
                        other.type_name()
                    ),
                    v.span,
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match mode {
            HasMode::All => Node::new(Op::And(terms)),
            HasMode::One | HasMode::Any => Node::new(Op::Or(terms)),
        })
    }

    fn event(&self, kind: &Name, options: &[parser::EventOption]) -> Result<Node, Error> {
        let event_type = index_text(&kind.text);
        if event_type.is_empty() {
            return Err(err(
                ErrorKind::InvalidArgument("empty event type".into()),
                kind.span,
            ));
        }
        let mut category = None;
        let (mut within, mut since, mut before) = (None, None, None);
        let mut filters = Vec::new();
        let date = |n: &Name| {
            parse_date(&n.text)
                .map(|d| i64::from(d) * MS_PER_DAY)
                .ok_or_else(|| err(ErrorKind::InvalidDate(n.text.clone()), n.span))
        };
        for o in options {
            let slot_taken = match &o.kind {
                EventOptionKind::Category(c) => category.replace(index_text(&c.text)).is_some(),
                EventOptionKind::Within(n, unit) => within
                    .replace(self.at.saturating_sub(unit.millis(*n)))
                    .is_some(),
                EventOptionKind::Since(d) => since.replace(date(d)?).is_some(),
                EventOptionKind::Before(d) => before.replace(date(d)?).is_some(),
                EventOptionKind::Count(op, n) => {
                    filters.push(EventFilter::Count(*op, *n));
                    false
                }
                EventOptionKind::Sum(op, x) => {
                    filters.push(EventFilter::Sum(*op, scale_number(*x)));
                    false
                }
            };
            if slot_taken {
                return Err(err(ErrorKind::DuplicateOption(o.kind.keyword()), o.span));
            }
        }
        let from = match (within, since) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(Node::new(Op::Event(EventQuery {
            key: EventKey {
                kind: event_type,
                category,
            },
            range: TimeRange {
                from,
                until: before,
            },
            filters,
        })))
    }

    fn segment(&mut self, name: &Name) -> Result<Node, Error> {
        if let Some(i) = self.stack.iter().position(|s| *s == name.text) {
            let mut cycle = self.stack[i..].to_vec();
            cycle.push(name.text.clone());
            return Err(err(ErrorKind::SegmentCycle(cycle), name.span));
        }
        if self.stack.len() > self.limits.max_segment_nesting {
            return Err(err(
                ErrorKind::SegmentsTooDeep(self.limits.max_segment_nesting),
                name.span,
            ));
        }
        let Some(text) = self.segments.definition(&name.text)? else {
            return Err(err(ErrorKind::UnknownSegment(name.text.clone()), name.span));
        };
        let in_segment = |e: QueryError| {
            if e.segment.is_some() {
                return e;
            }
            let mut e = e.locate(&text);
            e.segment = Some(name.text.clone());
            e
        };
        let expr = parser::parse(&text, self.limits).map_err(|e| {
            let mut e = e;
            e.segment = Some(name.text.clone());
            Error::Query(e)
        })?;
        self.stack.push(name.text.clone());
        let inner = self.compile(&expr);
        self.stack.pop();
        let inner = inner.map_err(|e| match e {
            Error::Query(q) => Error::Query(in_segment(q)),
            other => other,
        })?;
        Ok(Node::new(Op::Segment {
            name: name.text.clone(),
            inner: Box::new(inner),
        }))
    }

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

/// A lower-cased name argument; empty is an error.
fn name_arg(n: &Name, what: &str) -> Result<String, Error> {
    let s = n.text.trim().to_lowercase();
    if s.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument(format!("empty {what}")),
            n.span,
        ));
    }
    Ok(s)
}
