//! The query API over an [`Engine`]: evaluate, count, explain, break down, overlap, and
//! manage saved segments. Every evaluation plans and runs on one consistent snapshot.

use crate::cache::LeafCache;
use crate::error::{Error, QueryError};
use crate::eval::Evaluator;
use crate::explain::{self, Explain};
use crate::ir::{self, Node, Op, Plan};
use crate::limits::Limits;
use crate::parser::{parse, Expr};
use crate::plan::plan;
use crate::results::{self, Breakdown, Overlap, Segment};
use crate::saved::{self, valid_name, CatalogSource, SavedSegment};
use engine::{now_millis, Engine, Indexes, Millis, Snapshot, ValueKind};
use roaring::RoaringBitmap;
use std::sync::Mutex;
use std::time::Instant;

/// Most segments one overlap matrix may compare.
pub const MAX_OVERLAP_SEGMENTS: usize = 32;
/// Most values a breakdown returns.
pub const MAX_BREAKDOWN_VALUES: usize = 10_000;

/// Serializes saved-segment changes so that two concurrent saves cannot form a cycle.
static CATALOG_WRITES: Mutex<()> = Mutex::new(());

/// Segment queries against one engine.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let engine = engine::Engine::open(dir.path()).unwrap();
/// engine.ingest_json(&[r#"{"source":"crm","identifiers":{"email":"a@example.com"},"attributes":{"country":"NL"}}"#]).unwrap();
/// let segments = query::Segments::new(&engine);
/// assert_eq!(segments.count(r#"country = "nl""#).unwrap(), 1);
/// ```
pub struct Segments<'e> {
    engine: &'e Engine,
    limits: Limits,
    at: Option<Millis>,
    cache: Option<&'e LeafCache>,
}

impl<'e> Segments<'e> {
    /// Queries with the default limits, evaluated at the current time.
    pub fn new(engine: &'e Engine) -> Self {
        Segments {
            engine,
            limits: Limits::default(),
            at: None,
            cache: None,
        }
    }

    /// Pins the evaluation time (`age`, `within`), in ms since the epoch (UTC).
    pub fn at(mut self, at: Millis) -> Self {
        self.at = Some(at);
        self
    }

    /// Reuses the results of range and event leaves across calls while the database is
    /// unchanged (see [`LeafCache`]; one cache per engine).
    pub fn with_cache(mut self, cache: &'e LeafCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Uses other expression limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn now(&self) -> Millis {
        self.at.unwrap_or_else(now_millis)
    }

    /// The evaluation time: the pinned `at`, else now.
    pub(crate) fn time(&self) -> Millis {
        self.now()
    }

    /// The limits expressions are parsed under.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Plans `src` on `snap`, locating errors in `src`. `saving`: the segment being saved
    /// and its text (validation only, so no cache).
    fn plan_on(
        &self,
        snap: &Snapshot<'_>,
        at: Millis,
        src: &str,
        expr: &Expr,
        saving: Option<(&str, &str)>,
    ) -> Result<Plan, Error> {
        let source = CatalogSource {
            engine: self.engine,
            overlay: saving,
        };
        let mut plan = plan(
            snap,
            &source,
            &self.limits,
            at,
            expr,
            saving.map(|(n, _)| n),
        )
        .map_err(|e| match e {
            Error::Query(q) => Error::Query(q.locate(src)),
            other => other,
        })?;
        if let (Some(cache), None) = (self.cache, saving) {
            cached_leaves(&mut plan.root, cache, snap.indexes(), snap.generation());
        }
        Ok(plan)
    }

    /// Parses an expression (syntax only).
    pub fn parse(&self, src: &str) -> Result<Expr, QueryError> {
        parse(src, &self.limits)
    }

    /// Parses and plans `src` on one snapshot and runs `f` on that same snapshot (with the
    /// parsed expression, for callers that show it).
    fn on_plan<T>(
        &self,
        src: &str,
        f: impl FnOnce(&Expr, &Indexes, &Plan) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let expr = self.parse(src)?;
        let snap = self.engine.snapshot();
        let ix = snap.indexes();
        let plan = self.plan_on(&snap, self.now(), src, &expr, None)?;
        f(&expr, ix, &plan)
    }

    /// Evaluates an expression to its members.
    pub fn evaluate(&self, src: &str) -> Result<Segment, Error> {
        self.on_plan(src, |_, ix, plan| {
            Ok(Segment {
                members: Evaluator::new(ix).eval(&plan.root).into_owned(),
                at: plan.at,
            })
        })
    }

    /// Counts an expression's members without materializing the final bitmap. With a
    /// cache, a count made before on the same state, exact at this evaluation time, is
    /// answered from it (see [`LeafCache`]).
    pub fn count(&self, src: &str) -> Result<u64, Error> {
        let at = self.now();
        if let Some(cache) = self.cache {
            if let Some(n) = cache.count(self.engine.generation(), &self.limits, src, at) {
                return Ok(n);
            }
        }
        let expr = self.parse(src)?;
        let snap = self.engine.snapshot();
        let plan = self.plan_on(&snap, at, src, &expr, None)?;
        let n = Evaluator::new(snap.indexes()).count(&plan.root);
        if let Some(cache) = self.cache {
            cache.put_count(snap.generation(), self.limits, src, plan.valid.clone(), n);
        }
        Ok(n)
    }

    /// The plan with estimated and actual cardinalities and times.
    pub fn explain(&self, src: &str) -> Result<Explain, Error> {
        let started = Instant::now();
        self.on_plan(src, |expr, ix, plan| {
            let plan_micros = started.elapsed().as_secs_f64() * 1e6;
            let started = Instant::now();
            let mut ev = Evaluator::tracing(ix, plan);
            let count = ev.eval(&plan.root).len();
            let eval_micros = started.elapsed().as_secs_f64() * 1e6;
            Ok(Explain {
                expr: expr.to_string(),
                at: plan.at,
                count,
                plan_micros,
                eval_micros,
                root: explain::build(&plan.root, &ev.into_trace()),
            })
        })
    }

    /// The `top` most frequent values of a text, list or boolean `field` among the members
    /// of `src`.
    pub fn breakdown(&self, src: &str, field: &str, top: usize) -> Result<Breakdown, Error> {
        if top > MAX_BREAKDOWN_VALUES {
            return Err(Error::Limit(format!(
                "a breakdown returns at most {MAX_BREAKDOWN_VALUES} values"
            )));
        }
        self.on_plan(src, |_, ix, plan| {
            check_breakdown_field(ix, field)?;
            let members = Evaluator::new(ix).eval(&plan.root);
            Ok(results::breakdown(ix, &members, field, top))
        })
    }

    /// Pairwise overlaps of several expressions, evaluated on one snapshot.
    pub fn overlap(&self, srcs: &[&str]) -> Result<Overlap, Error> {
        if srcs.is_empty() || srcs.len() > MAX_OVERLAP_SEGMENTS {
            return Err(Error::Limit(format!(
                "an overlap compares 1 to {MAX_OVERLAP_SEGMENTS} segments, not {}",
                srcs.len()
            )));
        }
        let sets = self.evaluate_all(srcs)?;
        Ok(results::overlap(&sets))
    }

    /// Evaluates several expressions on one snapshot, at one evaluation time.
    pub fn evaluate_all(&self, srcs: &[&str]) -> Result<Vec<RoaringBitmap>, Error> {
        let exprs = srcs
            .iter()
            .map(|s| self.parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let at = self.now();
        let snap = self.engine.snapshot();
        let ix = snap.indexes();
        let mut sets = Vec::with_capacity(srcs.len());
        for (src, expr) in srcs.iter().zip(&exprs) {
            let plan = self.plan_on(&snap, at, src, expr, None)?;
            sets.push(Evaluator::new(ix).eval(&plan.root).into_owned());
        }
        Ok(sets)
    }

    /// The engine these segments evaluate on.
    pub(crate) fn engine(&self) -> &'e Engine {
        self.engine
    }

    /// Creates or replaces a saved segment. The expression must be valid now (fields,
    /// types, referenced segments), and must not make saved segments refer to themselves.
    pub fn save(&self, name: &str, src: &str) -> Result<SavedSegment, Error> {
        if !valid_name(name) {
            return Err(Error::InvalidSegmentName(name.to_string()));
        }
        let expr = self.parse(src)?;
        let _guard = CATALOG_WRITES.lock().unwrap_or_else(|e| e.into_inner());
        {
            let snap = self.engine.snapshot();
            self.plan_on(&snap, self.now(), src, &expr, Some((name, src)))?;
        }
        let now = now_millis();
        let created_at = saved::get(self.engine, name)?.map_or(now, |s| s.created_at);
        let segment = SavedSegment {
            name: name.to_string(),
            expr: src.to_string(),
            created_at,
            updated_at: now,
        };
        saved::put(self.engine, &segment)?;
        Ok(segment)
    }

    /// One saved segment.
    pub fn get(&self, name: &str) -> Result<SavedSegment, Error> {
        saved::get(self.engine, name)?.ok_or_else(|| Error::SegmentNotFound(name.to_string()))
    }

    /// Every saved segment, by name.
    pub fn list(&self) -> Result<Vec<SavedSegment>, Error> {
        saved::list(self.engine)
    }

    /// Deletes a saved segment; refused while other saved segments refer to it.
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        let _guard = CATALOG_WRITES.lock().unwrap_or_else(|e| e.into_inner());
        if saved::get(self.engine, name)?.is_none() {
            return Err(Error::SegmentNotFound(name.to_string()));
        }
        let used_by: Vec<String> = saved::list(self.engine)?
            .into_iter()
            .filter(|s| s.name != name)
            .filter(|s| {
                parse(&s.expr, &self.limits)
                    .map(|e| e.segment_refs().iter().any(|r| r.text == name))
                    .unwrap_or(false)
            })
            .map(|s| s.name)
            .collect();
        if !used_by.is_empty() {
            return Err(Error::SegmentInUse {
                name: name.to_string(),
                used_by,
            });
        }
        saved::remove(self.engine, name)?;
        Ok(())
    }
}

/// A breakdown needs a field with equality bitmaps: text, list or boolean.
fn check_breakdown_field(ix: &Indexes, field: &str) -> Result<(), Error> {
    let name = crate::parser::Name {
        text: field.to_string(),
        span: Default::default(),
    };
    match crate::schema::resolve(ix, &name) {
        Ok(crate::schema::Field::Attribute(kinds))
            if kinds
                .iter()
                .any(|k| matches!(k, ValueKind::Text | ValueKind::List | ValueKind::Bool)) =>
        {
            Ok(())
        }
        Ok(_) => Err(Error::InvalidField(format!(
            "breakdown needs a text, list or boolean field; `{field}` is not one"
        ))),
        Err(_) => Err(Error::InvalidField(format!("unknown field `{field}`"))),
    }
}

/// Segment queries as methods on [`Engine`] (sealed: implemented for `Engine` only).
pub trait EngineExt: sealed::Sealed {
    /// Evaluates an expression now: `engine.segment("country = \"NL\"")?.count()`.
    fn segment(&self, expr: &str) -> Result<Segment, Error>;
    /// The query API for this engine.
    fn segments(&self) -> Segments<'_>;
}

impl EngineExt for Engine {
    fn segment(&self, expr: &str) -> Result<Segment, Error> {
        Segments::new(self).evaluate(expr)
    }

    fn segments(&self) -> Segments<'_> {
        Segments::new(self)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for engine::Engine {}
}

/// An event leaf whose window has a start, with that start moved to the earliest event of
/// its series at or after it (`i64::MAX` when there is none): a window starting anywhere
/// from just after the previous event up to that one holds the same events, so it has the
/// same members, counts and sums. `None`: the leaf is its own key.
fn canonical(op: &Op, ix: &Indexes) -> Option<Op> {
    let Op::Event(q) = op else { return None };
    let from = q.range.from?;
    let first = ix
        .events()
        .series
        .get(&q.key)
        .and_then(|s| s.neighbours(from).1)
        .unwrap_or(Millis::MAX);
    let mut q = q.clone();
    q.range.from = Some(first);
    Some(Op::Event(q))
}

/// Replaces every range and event leaf of `node` by its result from `cache` (computed and
/// kept there on a miss). Node ids stay as planned: only leaves change.
fn cached_leaves(node: &mut Node, cache: &LeafCache, ix: &Indexes, generation: u64) {
    match &mut node.op {
        Op::Range { .. } | Op::Event(_) => {
            let key = canonical(&node.op, ix);
            let bits = cache.leaf(generation, key.as_ref().unwrap_or(&node.op), || {
                Evaluator::new(ix).eval(node).into_owned()
            });
            node.estimate = bits.len();
            node.op = Op::Bitmap {
                what: ir::label(&node.op),
                bits,
            };
        }
        Op::And(children) | Op::Or(children) => {
            for c in children {
                cached_leaves(c, cache, ix, generation);
            }
        }
        Op::AndNot { all, but_not } => {
            for c in all.iter_mut().chain(but_not.iter_mut()) {
                cached_leaves(c, cache, ix, generation);
            }
        }
        Op::Not(inner) | Op::Segment { inner, .. } => cached_leaves(inner, cache, ix, generation),
        Op::Empty
        | Op::All
        | Op::Term(_)
        | Op::NumericExists(_)
        | Op::Bitmap { .. }
        | Op::Score { .. } => {}
    }
}
