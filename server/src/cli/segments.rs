//! Commands on segments: query, segment save/list/show/delete, bench.

use super::{output, Global};
use crate::api::errors::{self, ErrorBody};
use crate::api::segments::{
    BenchFile, BenchReport, BenchResult, Breakdown, Count, Explain, Ids, Sample, SavedSegment,
    SegmentList, MAX_SAMPLE,
};
use crate::api::Deleted;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use engine::{format_rfc3339, parse_rfc3339, Engine, Millis};
use query::{Error, QueryError, Segments};
use std::path::PathBuf;
use std::time::Instant;

/// Largest `--limit` for `--ids`.
const MAX_IDS: usize = 1_000_000;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The segment expression (see segments.md), e.g. 'country = "NL" AND age >= 30'.
    pub expr: String,
    /// Print the number of members (the default).
    #[arg(long, group = "mode")]
    pub count: bool,
    /// Print a deterministic sample of N member ids.
    #[arg(long, value_name = "N", group = "mode")]
    pub sample: Option<usize>,
    /// Print the most frequent values of a text, list or boolean field among the members.
    #[arg(long, value_name = "FIELD", group = "mode")]
    pub breakdown: Option<String>,
    /// Print the plan with estimated and actual cardinalities and times.
    #[arg(long, group = "mode")]
    pub explain: bool,
    /// Print member ids in ascending order, a page at a time (see --after, --limit).
    #[arg(long, group = "mode")]
    pub ids: bool,
    /// Evaluation time for `age` and `within` (RFC 3339; default: now).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// With --breakdown: how many values to show.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// With --sample: the seed (same seed and members give the same sample).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// With --ids: start after this profile id (the last id of the previous page).
    #[arg(long)]
    pub after: Option<u32>,
    /// With --ids: page size.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum SegmentCommand {
    /// Create or replace a saved segment (the expression must be valid now).
    Save {
        /// Name: 1-64 letters, digits, `_`, `-` or `.`.
        name: String,
        /// The expression.
        expr: String,
    },
    /// List saved segments.
    List,
    /// Show a saved segment and its current member count.
    Show {
        /// The segment's name.
        name: String,
        /// Evaluation time for the count (RFC 3339; default: now).
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
    },
    /// Delete a saved segment (refused while other saved segments refer to it).
    Delete {
        /// The segment's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// JSON file of queries: an array of {"name", "expr"}, or an object with a `queries`
    /// array (and optionally `segments`: {"name": "expr"} saved first, for `segment(...)`).
    #[arg(long)]
    pub queries: PathBuf,
    /// Evaluation time (RFC 3339; default: now, fixed for the whole run).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Timed runs per query (after one warm-up run).
    #[arg(long, default_value_t = 100)]
    pub runs: usize,
}

/// A bad expression, with the text it refers to, so it can be shown with a caret.
#[derive(Debug)]
pub struct ExprError {
    pub error: QueryError,
    /// The text the error's span refers to (a saved segment's when it is in one).
    pub source: String,
}

impl std::fmt::Display for ExprError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid expression: {}", self.error)
    }
}

impl std::error::Error for ExprError {}

impl ExprError {
    /// The error as the `--json` error object.
    pub fn to_json(&self) -> ErrorBody {
        ErrorBody {
            error: errors::Error::expression(&self.error),
        }
    }

    /// The message with the offending line underlined.
    pub fn render(&self) -> String {
        format!("invalid expression: {}", self.error.render(&self.source))
    }
}

/// Turns a query error into an anyhow error, keeping expression errors typed.
pub(super) fn lift(engine: &Engine, src: &str, e: Error) -> anyhow::Error {
    match e {
        Error::Query(error) => {
            let source = match &error.segment {
                Some(name) => Segments::new(engine)
                    .get(name)
                    .map(|s| s.expr)
                    .unwrap_or_default(),
                None => src.to_string(),
            };
            ExprError { error, source }.into()
        }
        other => other.into(),
    }
}

fn parse_at(at: Option<&str>) -> anyhow::Result<Option<Millis>> {
    at.map(|s| parse_rfc3339(s).with_context(|| format!("--at: not an RFC 3339 time: {s}")))
        .transpose()
}

pub(super) fn segments<'e>(engine: &'e Engine, at: Option<Millis>) -> Segments<'e> {
    let s = Segments::new(engine);
    match at {
        Some(t) => s.at(t),
        None => s.at(engine::now_millis()),
    }
}

pub fn query(global: &Global, args: QueryArgs) -> anyhow::Result<()> {
    let db = global.open()?;
    let at = parse_at(args.at.as_deref())?.unwrap_or_else(engine::now_millis);
    let s = segments(&db, Some(at));
    let src = args.expr.as_str();
    let lift = |e| lift(&db, src, e);
    if args.explain {
        let e = s.explain(src).map_err(lift)?;
        if global.json {
            return output::json(&Explain::from(&e));
        }
        print!("{e}");
        return Ok(());
    }
    if let Some(field) = &args.breakdown {
        let b = s.breakdown(src, field, args.top).map_err(lift)?;
        if global.json {
            return output::json(&Breakdown::new(&b, at));
        }
        println!(
            "{} members, {} without {}, {} distinct values",
            b.members, b.missing, b.field, b.distinct
        );
        for v in &b.values {
            println!("{:>10}  {}", v.count, v.value);
        }
        return Ok(());
    }
    if let Some(k) = args.sample {
        if k > MAX_SAMPLE {
            bail!("--sample: at most {MAX_SAMPLE}");
        }
        let seg = s.evaluate(src).map_err(lift)?;
        let sample = seg.sample(k, args.seed);
        if global.json {
            return output::json(&Sample::new(seg.count(), sample, at));
        }
        println!("{} members; sample of {}:", seg.count(), sample.len());
        for id in sample {
            println!("{id}");
        }
        return Ok(());
    }
    if args.ids {
        if args.limit > MAX_IDS {
            bail!("--limit: at most {MAX_IDS}");
        }
        let seg = s.evaluate(src).map_err(lift)?;
        let ids = seg.ids(args.after, args.limit);
        let next = (ids.len() == args.limit)
            .then(|| ids.last().copied())
            .flatten();
        if global.json {
            return output::json(&Ids {
                at: format_rfc3339(at),
                count: seg.count(),
                ids,
                next_after: next,
            });
        }
        for id in ids {
            println!("{id}");
        }
        return Ok(());
    }
    let count = s.count(src).map_err(lift)?;
    if global.json {
        return output::json(&Count::new(count, at));
    }
    println!("{count}");
    Ok(())
}

pub fn segment(global: &Global, cmd: SegmentCommand) -> anyhow::Result<()> {
    let db = global.open()?;
    let s = Segments::new(&db);
    match cmd {
        SegmentCommand::Save { name, expr } => {
            let saved = s.save(&name, &expr).map_err(|e| lift(&db, &expr, e))?;
            // Today's point of its size over time, as the server takes on a save.
            let now = engine::now_millis();
            let recorded = s
                .count(&saved.expr)
                .map_err(anyhow::Error::from)
                .and_then(|n| Ok(crate::history::record(&db, &name, n, now)?));
            if let Err(e) = recorded {
                tracing::warn!(segment = name.as_str(), error = %e, "segment history: no point on save");
            }
            if global.json {
                return output::json(&SavedSegment::from(&saved));
            }
            println!("saved segment {name}");
        }
        SegmentCommand::List => {
            let all = s.list()?;
            if global.json {
                return output::json(&SegmentList::new(&all));
            }
            for seg in all {
                println!("{}\t{}", seg.name, seg.expr);
            }
        }
        SegmentCommand::Show { name, at } => {
            let seg = s.get(&name)?;
            let at = parse_at(at.as_deref())?;
            let count = segments(&db, at)
                .count(&seg.expr)
                .map_err(|e| lift(&db, &seg.expr, e))?;
            if global.json {
                return output::json(&SavedSegment::from(&seg).with_count(count));
            }
            println!("name:    {}", seg.name);
            println!("expr:    {}", seg.expr);
            println!("created: {}", format_rfc3339(seg.created_at));
            println!("updated: {}", format_rfc3339(seg.updated_at));
            println!("count:   {count}");
        }
        SegmentCommand::Delete { name } => {
            s.delete(&name)?;
            if global.json {
                return output::json(&Deleted { deleted: name });
            }
            println!("deleted segment {name}");
        }
    }
    Ok(())
}

/// The `q` quantile (nearest rank) of sorted samples.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn bench(global: &Global, args: BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let text = std::fs::read_to_string(&args.queries)
        .with_context(|| format!("cannot read {}", args.queries.display()))?;
    let (queries, saved, models) =
        match serde_json::from_str::<BenchFile>(&text).with_context(|| {
            format!(
                "{}: expected [{{\"name\", \"expr\"}}, ...] or {{\"queries\": [...]}}",
                args.queries.display()
            )
        })? {
            BenchFile::List(q) => (q, Default::default(), Default::default()),
            BenchFile::Object {
                queries,
                segments,
                models,
            } => (queries, segments, models),
        };
    let db = global.open()?;
    for (name, expr) in &saved {
        Segments::new(&db)
            .save(name, expr)
            .map_err(|e| lift(&db, expr, e))
            .with_context(|| format!("saved segment {name}"))?;
    }
    for (name, seed) in &models {
        if db.model(name).is_none() {
            let request = query::TrainRequest {
                seed: seed.clone(),
                ..Default::default()
            };
            Segments::new(&db)
                .train_model(name, &request)
                .map_err(|e| lift(&db, seed, e))
                .with_context(|| format!("model {name}"))?;
        }
    }
    let at = parse_at(args.at.as_deref())?.unwrap_or_else(engine::now_millis);
    let s = segments(&db, Some(at));
    let mut results = Vec::new();
    for q in &queries {
        let lift = |e| lift(&db, &q.expr, e).context(format!("query {}", q.name));
        let count = s.count(&q.expr).map_err(lift)?; // warm-up
        let mut times = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let started = Instant::now();
            let c = s.count(&q.expr).map_err(lift)?;
            times.push(started.elapsed().as_secs_f64() * 1e6);
            debug_assert_eq!(c, count);
        }
        times.sort_by(f64::total_cmp);
        results.push(BenchResult {
            name: q.name.clone(),
            count,
            p50_us: quantile(&times, 0.5),
            p99_us: quantile(&times, 0.99),
            min_us: times[0],
        });
    }
    if global.json {
        return output::json(&BenchReport {
            at: format_rfc3339(at),
            results,
            runs: args.runs,
        });
    }
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>10}",
        "segment", "count", "p50 us", "p99 us", "min us"
    );
    for r in results {
        println!(
            "{:<32} {:>10} {:>10.1} {:>10.1} {:>10.1}",
            r.name, r.count, r.p50_us, r.p99_us, r.min_us
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }
}
