//! Resolution: a syntax tree → an unoptimized tree of bitmap operations. Names become
//! fields and types (`schema`), literals become indexed values and bit-sliced bounds, saved
//! segments are parsed and inlined (cycle and nesting checks), event options become one
//! event query.

use super::SegmentSource;
use crate::age;
use crate::error::{Error, ErrorKind, QueryError};
use crate::ir::{EventFilter, EventQuery, Node, Op};
use crate::limits::Limits;
use crate::parser::{
    self, CmpOp, EventOptionKind, Expr, ExprKind, HasMode, Literal, LiteralValue, Name, Predicate,
    ScoreTest,
};
use crate::schema::{self, Field, BIRTH_DATE};
use crate::span::Span;
use engine::{
    bool_text, day_of, index_text, normalize_country, parse_date, scale_number, EventKey, Indexes,
    Millis, NumericKey, NumericKind, Snapshot, Term, TimeRange, ValueKind, MS_PER_DAY,
};
use roaring::RoaringBitmap;
use std::cell::Cell;

/// Resolves `expr` against `snap` at time `at`. Also returns the evaluation times at which
/// the same expression on the same snapshot has the same members (half-open, holds `at`;
/// see [`Planner::valid`]).
pub(super) fn resolve(
    snap: &Snapshot<'_>,
    segments: &dyn SegmentSource,
    limits: &Limits,
    at: Millis,
    expr: &Expr,
    saving: Option<&str>,
) -> Result<(Node, std::ops::Range<Millis>), Error> {
    let mut p = Planner {
        ix: snap.indexes(),
        suppressed: &|name| snap.suppressed(name).map(|b| b & snap.indexes().live()),
        scores: &|name| snap.model_scores(name),
        segments,
        limits,
        at,
        stack: saving.map(|s| vec![s.to_string()]).unwrap_or_default(),
        valid: Cell::new((Millis::MIN, Millis::MAX)),
    };
    let node = p.compile(expr)?;
    let (lo, hi) = p.valid.get();
    let valid = if lo <= at && at < hi {
        lo..hi
    } else {
        at..at.saturating_add(1)
    };
    Ok((node, valid))
}

struct Planner<'a> {
    ix: &'a Indexes,
    /// Live profiles on any suppression list (`None`) or on a named one.
    suppressed: &'a dyn Fn(Option<&str>) -> Option<RoaringBitmap>,
    /// A model's percentiles of the live profiles.
    scores: &'a dyn Fn(&str) -> Option<std::sync::Arc<engine::ScoreIndex>>,
    segments: &'a dyn SegmentSource,
    limits: &'a Limits,
    at: Millis,
    /// Saved segments being planned, outermost first (cycle detection).
    stack: Vec<String>,
    /// Evaluation times `[lo, hi)` (around `at`) that resolve every time-dependent
    /// predicate seen so far to the same members on this snapshot: `age` to the same
    /// birth-date range (the same day), each `within` window to one holding exactly the
    /// same events. Everything else in a plan is independent of the evaluation time.
    valid: Cell<(Millis, Millis)>,
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

    /// `score("m") op n` / `BETWEEN`: the model's percentiles, resolved to a bitmap.
    fn score(&mut self, model: &Name, test: &ScoreTest) -> Result<Node, Error> {
        let Some(bsi) = (self.scores)(&model.text) else {
            return Err(err(ErrorKind::UnknownModel(model.text.clone()), model.span));
        };
        let number = |l: &Literal| match l.value {
            LiteralValue::Num(n) => Ok(n),
            _ => Err(mismatch(
                "a score is a percentile from 0 to 100: compare it with a number".into(),
                l.span,
            )),
        };
        // Percentiles are whole numbers: a bound between two rounds inwards.
        let (low, high) = match test {
            ScoreTest::Between(l, h) => (number(l)?.ceil(), number(h)?.floor()),
            ScoreTest::Compare(op, v) => {
                let x = number(v)?;
                match op {
                    CmpOp::Ge => (x.ceil(), f64::INFINITY),
                    CmpOp::Gt => (x.floor() + 1.0, f64::INFINITY),
                    CmpOp::Le => (f64::NEG_INFINITY, x.floor()),
                    CmpOp::Lt => (f64::NEG_INFINITY, x.ceil() - 1.0),
                    CmpOp::Eq | CmpOp::Ne if x.fract() != 0.0 => (1.0, 0.0),
                    CmpOp::Eq | CmpOp::Ne => (x, x),
                }
            }
        };
        let clamp = |x: f64| x.clamp(-1.0, engine::MAX_PERCENTILE as f64 + 1.0) as i64;
        let what = Predicate::Score {
            model: model.clone(),
            test: test.clone(),
        }
        .to_string();
        if matches!(test, ScoreTest::Compare(CmpOp::Ne, _)) {
            let mut bits = bsi.scored().clone();
            if low <= high {
                bits -= bsi.between(clamp(low), clamp(high));
            }
            return Ok(Node::new(Op::Bitmap {
                what,
                bits: std::sync::Arc::new(bits),
            }));
        }
        let (low, high) = if low > high {
            (1, 0)
        } else {
            (clamp(low), clamp(high))
        };
        Ok(Node::new(Op::Score {
            what,
            scores: bsi,
            low,
            high,
        }))
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
            Predicate::Score { model, test } => self.score(model, test),
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
                let start = i64::from(today).saturating_mul(MS_PER_DAY);
                self.narrow(start, start.saturating_add(MS_PER_DAY));
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
        let key = EventKey {
            kind: event_type,
            category,
        };
        if let (Some(start), Some(from)) = (within, from) {
            self.window_validity(&key, start, since, from);
        }
        Ok(Node::new(Op::Event(EventQuery {
            key,
            range: TimeRange {
                from,
                until: before,
            },
            filters,
        })))
    }

    /// Keeps only the evaluation times in `[lo, hi)`.
    fn narrow(&self, lo: Millis, hi: Millis) {
        let (l, h) = self.valid.get();
        self.valid.set((l.max(lo), h.min(hi)));
    }

    /// Narrows the valid evaluation times to those whose window starts at the same
    /// events: `within` starts the window at `start` = `at - w` (saturating), `since` at
    /// a fixed time; the window starts at `from` = the later of the two. With `before`
    /// the latest entry time before `from` and `after` the earliest at or after it, a
    /// window starting anywhere in `(before, after]` holds the same events. At `at'` the
    /// window starts at `max(at' - w, since)`: in that interval when `at' - w <= after`
    /// (`since <= from <= after`) and `at' - w > before` — unless `since` alone sets
    /// the start (`since >= at - w`), which it then does for every earlier `at'` too.
    fn window_validity(&self, key: &EventKey, start: Millis, since: Option<Millis>, from: Millis) {
        if start == Millis::MIN {
            // `at - w` saturated: keep this very evaluation time only.
            self.narrow(self.at, self.at.saturating_add(1));
            return;
        }
        let w = self.at - start;
        let (before, after) = match self.ix.events().series.get(key) {
            Some(series) => series.neighbours(from),
            None => (None, None),
        };
        let lo = match before {
            _ if since.is_some_and(|s| s >= start) => Millis::MIN,
            Some(b) => b.saturating_add(w).saturating_add(1),
            None => Millis::MIN,
        };
        let hi = after.map_or(Millis::MAX, |a| a.saturating_add(w).saturating_add(1));
        self.narrow(lo, hi);
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
