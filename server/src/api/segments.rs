//! Segment answers and requests: `cidb query` / `cidb segment` / `cidb bench` `--json`
//! and the `/v1/segments` routes. Every answer here was a JSON object before it was a
//! type, so the fields are declared in alphabetical order (the order serde_json's sorted
//! map gave them).

use engine::{format_rfc3339, Millis};
use serde::{Deserialize, Serialize};

/// Largest sample a caller may ask for (`--sample`, `"size"`).
pub const MAX_SAMPLE: usize = 100_000;

/// A member count (`cidb query --json`, `POST /v1/segments/count`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    /// Evaluation time (RFC 3339).
    pub at: String,
    /// Members.
    pub count: u64,
}

impl Count {
    /// `count` members at `at`.
    pub fn new(count: u64, at: Millis) -> Self {
        Count {
            at: format_rfc3339(at),
            count,
        }
    }
}

/// A deterministic sample of member ids (`--sample`, `POST /v1/segments/sample`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Evaluation time (RFC 3339).
    pub at: String,
    /// Members.
    pub count: u64,
    /// The sampled profile ids.
    pub sample: Vec<u32>,
}

impl Sample {
    /// A sample of `count` members at `at`.
    pub fn new(count: u64, sample: Vec<u32>, at: Millis) -> Self {
        Sample {
            at: format_rfc3339(at),
            count,
            sample,
        }
    }
}

/// A page of member ids (`cidb query --ids --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ids {
    /// Evaluation time (RFC 3339).
    pub at: String,
    /// Members.
    pub count: u64,
    /// The page, ascending.
    pub ids: Vec<u32>,
    /// The `--after` of the next page (`null` on the last page).
    pub next_after: Option<u32>,
}

/// A breakdown (`--breakdown`, `POST /v1/segments/breakdown`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    /// Evaluation time (RFC 3339).
    pub at: String,
    /// Members.
    pub count: u64,
    /// Distinct values among the members.
    pub distinct: usize,
    /// The field.
    pub field: String,
    /// Members without a value.
    pub missing: u64,
    /// An analyst's answer: the groups left out (absent for an admin and in the CLI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
    /// The most frequent values.
    pub values: Vec<ValueCount>,
}

/// A value of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueCount {
    /// Members with it.
    pub count: u64,
    /// The value.
    pub value: String,
}

/// Groups of an analyst's breakdown below the minimum group size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    /// Their members.
    pub count: u64,
    /// How many groups.
    pub groups: u64,
    /// The minimum group size.
    pub min_group_size: u64,
}

impl Breakdown {
    /// A breakdown evaluated at `at`.
    pub fn new(b: &query::Breakdown, at: Millis) -> Self {
        let query::Breakdown {
            field,
            members,
            missing,
            distinct,
            values,
        } = b;
        Breakdown {
            at: format_rfc3339(at),
            count: *members,
            distinct: *distinct,
            field: field.clone(),
            missing: *missing,
            suppressed: None,
            values: values
                .iter()
                .map(|v| {
                    let query::ValueCount { value, count } = v;
                    ValueCount {
                        count: *count,
                        value: value.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// An explained plan (`--explain`, `POST /v1/segments/explain`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explain {
    /// Evaluation time (RFC 3339).
    pub at: String,
    /// Members.
    pub count: u64,
    /// Evaluation time in µs.
    pub eval_us: f64,
    /// The expression.
    pub expr: String,
    /// The plan's root.
    pub plan: PlanNode,
    /// Planning time in µs.
    pub plan_us: f64,
}

/// A node of an explained plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanNode {
    /// Actual cardinality (`null` when not evaluated).
    pub actual: Option<u64>,
    /// Its inputs.
    pub children: Vec<PlanNode>,
    /// Estimated cardinality.
    pub estimate: u64,
    /// What it does.
    pub label: String,
    /// Time in µs (`null` when not evaluated).
    pub micros: Option<f64>,
}

impl From<&query::Explain> for Explain {
    fn from(e: &query::Explain) -> Self {
        let query::Explain {
            expr,
            at,
            count,
            plan_micros,
            eval_micros,
            root,
        } = e;
        Explain {
            at: format_rfc3339(*at),
            count: *count,
            eval_us: *eval_micros,
            expr: expr.clone(),
            plan: PlanNode::from(root),
            plan_us: *plan_micros,
        }
    }
}

impl From<&query::ExplainNode> for PlanNode {
    fn from(n: &query::ExplainNode) -> Self {
        let query::ExplainNode {
            label,
            estimate,
            actual,
            micros,
            children,
        } = n;
        PlanNode {
            actual: *actual,
            children: children.iter().map(PlanNode::from).collect(),
            estimate: *estimate,
            label: label.clone(),
            micros: *micros,
        }
    }
}

/// An overlap matrix (`POST /v1/segments/overlap`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlap {
    /// Evaluation time (RFC 3339).
    pub at: String,
    /// Members of each expression.
    pub counts: Vec<u64>,
    /// Members of each pair.
    pub matrix: Vec<Vec<u64>>,
}

impl Overlap {
    /// An overlap evaluated at `at`.
    pub fn new(o: &query::Overlap, at: Millis) -> Self {
        let query::Overlap { counts, matrix } = o;
        Overlap {
            at: format_rfc3339(at),
            counts: counts.clone(),
            matrix: matrix.clone(),
        }
    }
}

/// A saved segment (`cidb segment save|show`, `GET`/`PUT /v1/segments/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedSegment {
    /// Its current member count (`segment show` and `GET` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// The expression.
    pub expr: String,
    /// Its name.
    pub name: String,
    /// Last saved (RFC 3339).
    pub updated_at: String,
}

impl From<&query::SavedSegment> for SavedSegment {
    fn from(s: &query::SavedSegment) -> Self {
        let query::SavedSegment {
            name,
            expr,
            created_at,
            updated_at,
        } = s;
        SavedSegment {
            count: None,
            created_at: format_rfc3339(*created_at),
            expr: expr.clone(),
            name: name.clone(),
            updated_at: format_rfc3339(*updated_at),
        }
    }
}

impl SavedSegment {
    /// With its current member count.
    pub fn with_count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }
}

/// Saved segments (`cidb segment list`, `GET /v1/segments`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentList {
    /// Each saved segment, by name.
    pub segments: Vec<SavedSegment>,
}

impl SegmentList {
    /// The list of `all`.
    pub fn new(all: &[query::SavedSegment]) -> Self {
        SegmentList {
            segments: all.iter().map(SavedSegment::from).collect(),
        }
    }
}

/// `cidb bench --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Evaluation time (RFC 3339).
    pub at: String,
    /// Each query's timings.
    pub results: Vec<BenchResult>,
    /// Timed runs per query.
    pub runs: usize,
}

/// One query's timings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchResult {
    /// Members.
    pub count: u64,
    /// Fastest run in µs.
    pub min_us: f64,
    /// The query's name.
    pub name: String,
    /// Median in µs.
    pub p50_us: f64,
    /// 99th percentile in µs.
    pub p99_us: f64,
}

/// The query file of `cidb bench --queries`: `[{"name", "expr"}, ...]` or
/// `{"queries": [...], "segments"?: {"name": "expr"}, "models"?: {"name": "seed"}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BenchFile {
    /// A list of queries.
    List(Vec<BenchQuery>),
    /// Queries and the saved segments they refer to.
    Object {
        /// The queries.
        queries: Vec<BenchQuery>,
        /// Saved segments the queries refer to: saved (created or replaced) first.
        #[serde(default)]
        segments: std::collections::BTreeMap<String, String>,
        /// Models the queries score with (`score("name")`), by seed (a saved segment or an
        /// expression): trained first when the database has no model of that name.
        #[serde(default)]
        models: std::collections::BTreeMap<String, String>,
    },
}

/// One query of a bench file.
#[derive(Debug, Clone, Deserialize)]
pub struct BenchQuery {
    /// Its name in the results.
    pub name: String,
    /// The expression.
    pub expr: String,
    /// The same segment in SQL over the tables of `cidb dump-tables`, for the side-by-side
    /// harness (`benches/peers/`); `cidb bench` ignores it.
    #[serde(default)]
    #[allow(dead_code)]
    pub sql: Option<String>,
}

/// The body of the expression routes (`count`, `sample`, `breakdown`, `explain`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprBody {
    /// The expression.
    pub expr: String,
    /// Evaluation time (RFC 3339; default now).
    pub at: Option<String>,
    /// Sample size.
    pub size: Option<usize>,
    /// Sample seed.
    pub seed: Option<u64>,
    /// Breakdown field.
    pub field: Option<String>,
    /// Breakdown: values to return.
    pub top: Option<usize>,
}

/// `POST /v1/segments/overlap`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlapBody {
    /// The expressions.
    pub exprs: Vec<String>,
    /// Evaluation time (RFC 3339; default now).
    pub at: Option<String>,
}

/// `PUT /v1/segments/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveBody {
    /// The expression.
    pub expr: String,
}

super::answers!(
    Count,
    Sample,
    Ids,
    Breakdown,
    Explain,
    Overlap,
    SavedSegment,
    SegmentList,
    BenchReport
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(v: &impl Serialize) -> BTreeSet<String> {
        serde_json::to_value(v)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_have_the_readme_fields() {
        // README, "The HTTP API": count → {"count", "at"}; sample → {"count", "sample",
        // "at"}; breakdown → {"count", "field", "missing", "distinct", "values": [{"value",
        // "count"}]} (plus `at`, as every evaluation); overlap → {"counts", "matrix"}.
        assert_eq!(keys(&Count::new(3, 0)), set(&["count", "at"]));
        assert_eq!(
            keys(&Sample::new(3, vec![1], 0)),
            set(&["count", "sample", "at"])
        );
        let b = query::Breakdown {
            field: "country".into(),
            members: 3,
            missing: 1,
            distinct: 1,
            values: vec![query::ValueCount {
                value: "nl".into(),
                count: 2,
            }],
        };
        let answer = Breakdown::new(&b, 0);
        assert_eq!(
            keys(&answer),
            set(&["count", "field", "missing", "distinct", "values", "at"])
        );
        assert_eq!(keys(&answer.values[0]), set(&["value", "count"]));
        let o = query::Overlap {
            counts: vec![1],
            matrix: vec![vec![1]],
        };
        assert_eq!(keys(&Overlap::new(&o, 0)), set(&["counts", "matrix", "at"]));
    }

    #[test]
    fn an_analysts_breakdown_says_what_was_suppressed() {
        let b = query::Breakdown {
            field: "country".into(),
            members: 12,
            missing: 0,
            distinct: 2,
            values: vec![query::ValueCount {
                value: "nl".into(),
                count: 10,
            }],
        };
        let mut answer = Breakdown::new(&b, 0);
        answer.suppressed = Some(Suppressed {
            count: 2,
            groups: 1,
            min_group_size: 10,
        });
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"at":"1970-01-01T00:00:00Z","count":12,"distinct":2,"field":"country","missing":0,"suppressed":{"count":2,"groups":1,"min_group_size":10},"values":[{"count":10,"value":"nl"}]}"#
        );
    }

    #[test]
    fn plans_keep_every_field() {
        let e = query::Explain {
            expr: "ALL".into(),
            at: 0,
            count: 5,
            plan_micros: 1.5,
            eval_micros: 2.0,
            root: query::ExplainNode {
                label: "and".into(),
                estimate: 9,
                actual: Some(5),
                micros: Some(0.5),
                children: vec![query::ExplainNode {
                    label: "all".into(),
                    estimate: 9,
                    actual: None,
                    micros: None,
                    children: vec![],
                }],
            },
        };
        assert_eq!(
            serde_json::to_string(&Explain::from(&e)).unwrap(),
            r#"{"at":"1970-01-01T00:00:00Z","count":5,"eval_us":2.0,"expr":"ALL","plan":{"actual":5,"children":[{"actual":null,"children":[],"estimate":9,"label":"all","micros":null}],"estimate":9,"label":"and","micros":0.5},"plan_us":1.5}"#
        );
    }
}
