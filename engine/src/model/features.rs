//! Model features: facts the indexes already hold, each a bitmap of profiles. A feature is
//! evaluated two ways that must agree: over the whole index (training, scoring everyone,
//! `check`) and for one profile (rescoring what a batch changed).
//!
//! Event windows and ages are anchored at the model's `as_of` time (training time unless
//! pinned), so a feature and a score are pure functions of the stored data and the model:
//! `event("purchase", since "2026-08-29")` keeps meaning that date after training.

use crate::base::time::{
    civil_from_day, day_from_civil_clamped, day_of, format_date, DayNumber, Millis,
};
use crate::index::{
    AggFilter, Cmp, EventKey, Indexes, NumericKey, NumericKind, Term, TimeRange, NUMBER_SCALE,
};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

/// One candidate or selected feature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Feature {
    /// An equality bitmap: a text, boolean or list value, consent, identifier type, source.
    Term(Term),
    /// A bit-sliced value in `[low, high]` (index units: numbers at 1/1000, dates as day
    /// numbers); `age` bands are bands of `birth_date`.
    Band {
        /// The index.
        key: NumericKey,
        /// Lowest value, inclusive.
        low: i64,
        /// Highest value, inclusive.
        high: i64,
        /// Shown as an age band (`birth_date` days, labelled in years at `as_of`).
        age: Option<(u32, u32)>,
    },
    /// At least `min_count` events of `key` at or after `since` (ms; `None`: ever).
    Event {
        /// Type, or type and category.
        key: EventKey,
        /// Start of the window (a day boundary), or all time.
        since: Option<Millis>,
        /// Fewest events.
        min_count: u32,
    },
}

impl Feature {
    /// The names that exclude the feature (`--exclude`, and what the seed expression
    /// tests): the attribute (`interests`; `age` and `birth_date` both for ages and birth
    /// dates), or the predicate family and its argument (`consent`, `consent:marketing`,
    /// `identifier`, `identifier:email`, `source`, `source:crm`, `event`,
    /// `event:purchase`).
    pub fn exclusion_keys(&self) -> Vec<String> {
        match self {
            Feature::Term(Term::Eq(f, _)) | Feature::Term(Term::Exists(f)) => vec![f.to_string()],
            Feature::Band { key, .. } if key.field == "birth_date" => {
                vec!["birth_date".into(), "age".into()]
            }
            Feature::Band { key, .. } => vec![key.field.to_string()],
            Feature::Event { key, .. } => vec!["event".into(), format!("event:{}", key.kind)],
            Feature::Term(Term::Consent(p)) | Feature::Term(Term::ConsentKnown(p)) => {
                vec!["consent".into(), format!("consent:{p}")]
            }
            Feature::Term(Term::IdentifierType(t)) => {
                vec!["identifier".into(), format!("identifier:{t}")]
            }
            Feature::Term(Term::Source(s)) => vec!["source".into(), format!("source:{s}")],
            Feature::Term(_) => Vec::new(),
        }
    }

    /// The band of ages `low..=high` (whole years completed at `today`) as a band of
    /// `birth_date`: 29 February birthdays complete on 1 March, as in the query language.
    pub fn age_band(today: DayNumber, low: u32, high: u32) -> Option<Feature> {
        let cutoff = |n: u32| {
            let (y, m, d) = civil_from_day(today);
            day_from_civil_clamped(y - n as i32, m, d)
        };
        let latest = cutoff(low)?;
        let earliest = cutoff(high + 1)? + 1;
        Some(Feature::Band {
            key: NumericKey {
                field: "birth_date".into(),
                kind: NumericKind::Date,
            },
            low: i64::from(earliest),
            high: i64::from(latest),
            age: Some((low, high)),
        })
    }

    /// The feature in the segment language (a valid expression with the same members).
    pub fn label(&self, list_fields: &[&str]) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
        match self {
            Feature::Term(Term::Eq(f, v)) if list_fields.contains(&f.as_str()) => {
                format!("{f} HAS {}", q(v))
            }
            Feature::Term(Term::Eq(f, v)) if v == "true" || v == "false" => format!("{f} = {v}"),
            Feature::Term(Term::Eq(f, v)) => format!("{f} = {}", q(v)),
            Feature::Term(Term::Exists(f)) => format!("{f} EXISTS"),
            Feature::Term(Term::Consent(p)) => format!("consent({})", q(p)),
            Feature::Term(Term::ConsentKnown(p)) => format!("consent_known({})", q(p)),
            Feature::Term(Term::IdentifierType(t)) => format!("identifier({})", q(t)),
            Feature::Term(Term::Source(s)) => format!("source({})", q(s)),
            Feature::Term(other) => format!("{other:?}"),
            Feature::Band {
                age: Some((lo, hi)),
                ..
            } => format!("age BETWEEN {lo} AND {hi}"),
            Feature::Band { key, low, high, .. } => {
                let value = |v: i64| match key.kind {
                    NumericKind::Date => q(&format_date(v as DayNumber)),
                    _ => (v as f64 / NUMBER_SCALE).to_string(),
                };
                match (*low, *high) {
                    (i64::MIN, i64::MAX) => format!("{} EXISTS", key.field),
                    (i64::MIN, h) => format!("{} <= {}", key.field, value(h)),
                    (l, i64::MAX) => format!("{} >= {}", key.field, value(l)),
                    (l, h) => format!("{} BETWEEN {} AND {}", key.field, value(l), value(h)),
                }
            }
            Feature::Event {
                key,
                since,
                min_count,
            } => {
                let mut out = format!("event({}", q(&key.kind));
                if let Some(c) = &key.category {
                    out.push_str(&format!(", category = {}", q(c)));
                }
                if let Some(s) = since {
                    out.push_str(&format!(", since {}", q(&format_date(day_of(*s)))));
                }
                if *min_count > 1 {
                    out.push_str(&format!(", count >= {min_count}"));
                }
                out.push(')');
                out
            }
        }
    }

    /// Its members among every profile of the index.
    pub fn members(&self, ix: &Indexes) -> RoaringBitmap {
        match self {
            Feature::Term(t) => ix.term(t).clone(),
            Feature::Band { key, low, high, .. } => ix
                .numeric(key)
                .map(|b| b.between(*low, *high))
                .unwrap_or_default(),
            Feature::Event {
                key,
                since,
                min_count,
            } => {
                let Some(series) = ix.events().series.get(key) else {
                    return RoaringBitmap::new();
                };
                let range = TimeRange {
                    from: *since,
                    until: None,
                };
                if *min_count <= 1 {
                    series.members(range)
                } else if since.is_none() {
                    series
                        .totals()
                        .iter()
                        .filter(|(_, t)| t.count >= *min_count)
                        .map(|(pid, _)| *pid)
                        .collect()
                } else {
                    series
                        .aggregate(range)
                        .into_iter()
                        .filter(|(_, t)| t.count >= *min_count)
                        .map(|(pid, _)| pid)
                        .collect()
                }
            }
        }
    }

    /// Its members among `among` (agrees with [`Feature::members`] restricted to it): every
    /// step works on `among`, so rescoring the few profiles a batch changed costs bitmap
    /// operations on them, not a walk over every day of an event window per profile.
    pub fn members_among(&self, ix: &Indexes, among: &RoaringBitmap) -> RoaringBitmap {
        match self {
            Feature::Term(t) => ix.term(t) & among,
            Feature::Band { key, low, high, .. } => ix
                .numeric(key)
                .map(|b| b.range_within(Some(*low), Some(*high), Some(among)))
                .unwrap_or_default(),
            Feature::Event {
                key,
                since,
                min_count,
            } => {
                let Some(series) = ix.events().series.get(key) else {
                    return RoaringBitmap::new();
                };
                let range = TimeRange {
                    from: *since,
                    until: None,
                };
                let present = series.members_within(range, among);
                if *min_count <= 1 || present.is_empty() {
                    return present;
                }
                if since.is_none() {
                    let totals = series.totals();
                    return present
                        .into_iter()
                        .filter(|pid| totals.get(pid).is_some_and(|t| t.count >= *min_count))
                        .collect();
                }
                let at_least = AggFilter::Count(Cmp::Ge, u64::from(*min_count));
                match series.select(range, &[at_least]) {
                    Some(passing) => passing & present,
                    None => series
                        .aggregate(range)
                        .into_iter()
                        .filter(|(pid, t)| t.count >= *min_count && present.contains(*pid))
                        .map(|(pid, _)| pid)
                        .collect(),
                }
            }
        }
    }

    /// Whether one profile has it (agrees with [`Feature::members`]).
    pub fn holds(&self, ix: &Indexes, pid: u32) -> bool {
        let one: RoaringBitmap = std::iter::once(pid).collect();
        !self.members_among(ix, &one).is_empty()
    }
}
