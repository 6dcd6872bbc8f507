//! Answers of the routes the console needs (`GET /v1/whoami`, `GET /v1/fields`,
//! `GET /v1/segments/{name}/history`, `GET /v1/models/{name}/curve`). They were designed
//! as JSON objects, so their fields are declared in alphabetical order.

use engine::{format_date, DayNumber, SegmentHistoryRecord, ValueKind};
use serde::Serialize;

/// `GET /v1/whoami`: the presented key's id and role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhoAmI {
    /// The key's public id.
    pub id: String,
    /// `admin`, `analyst` or `ingest`.
    pub role: String,
}

/// `GET /v1/fields`: the field catalog, for completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fields {
    /// Every attribute live profiles hold (and `age`), by name.
    pub fields: Vec<FieldInfo>,
    /// Identifier types present (`identifier("…")`).
    pub identifier_types: Vec<String>,
    /// Consent purposes present (`consent("…")`).
    pub purposes: Vec<String>,
    /// Record sources present (`source("…")`).
    pub sources: Vec<String>,
}

/// One attribute of the field catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldInfo {
    /// The kinds of value it holds: `text`, `number`, `bool`, `date`, `list`.
    pub kinds: Vec<&'static str>,
    /// Its name.
    pub name: String,
    /// Whether its values are personal data: then `values` is empty for an analyst key,
    /// which may not break down by it either.
    pub personal: bool,
    /// Profiles holding a value.
    pub profiles: u64,
    /// Its most frequent values (text, boolean and list elements), most frequent first;
    /// for an analyst, only those held by at least the minimum group size.
    pub values: Vec<FieldValue>,
}

/// A value and the live profiles holding it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldValue {
    /// Profiles.
    pub count: u64,
    /// The normalized value.
    pub value: String,
}

/// The name of a value kind in answers.
pub fn kind_name(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Text => "text",
        ValueKind::Number => "number",
        ValueKind::Bool => "bool",
        ValueKind::Date => "date",
        ValueKind::List => "list",
    }
}

/// `GET /v1/segments/{name}/history`: a saved segment's daily member counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// The saved segment.
    pub name: String,
    /// One point a day, oldest first.
    pub points: Vec<HistoryPoint>,
}

/// A day's count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Members when it was taken.
    pub count: u64,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
}

impl History {
    /// The history of `name` (empty when none was recorded).
    pub fn new(name: &str, record: Option<&SegmentHistoryRecord>) -> Self {
        let points = record.map_or_else(Vec::new, |r| {
            let SegmentHistoryRecord { name: _, points } = r;
            points
                .iter()
                .map(|&(day, count): &(DayNumber, u64)| HistoryPoint {
                    count,
                    day: format_date(day),
                })
                .collect()
        });
        History {
            name: name.to_string(),
            points,
        }
    }
}

/// `GET /v1/models/{name}/curve`: the cumulative gain and lift of a model over its
/// seed, by score threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// The model.
    pub model: String,
    /// One point per threshold, from the top 10 % of scores to all of them.
    pub points: Vec<CurvePoint>,
    /// Population members.
    pub population: u64,
    /// Seed members within the population (training and held-out alike).
    pub seed: u64,
}

/// Members at or above one score threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Share of the seed among them (cumulative gain), 0–1.
    pub gain: f64,
    /// `gain / population_share` (1 = no better than random).
    pub lift: f64,
    /// Population members at or above the threshold.
    pub population: u64,
    /// Their share of the population, 0–1.
    pub population_share: f64,
    /// Seed members at or above the threshold.
    pub seed: u64,
    /// The percentile threshold: `score("model") >= threshold`.
    pub threshold: u8,
}

crate::api::answers!(WhoAmI, Fields, History, Curve);
