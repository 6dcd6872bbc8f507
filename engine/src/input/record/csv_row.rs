//! CSV rows mapped onto the JSON record shape (records.md "CSV").

use crate::base::kind::IdentifierKind;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Attributes that stay text even when a cell looks like a number.
const TEXT_ATTRIBUTES: &[&str] = &[
    "zip",
    "first_name",
    "last_name",
    "name",
    "city",
    "state",
    "language",
    "gender",
];
/// Attributes that are always lists.
const LIST_ATTRIBUTES: &[&str] = &["interests", "likes", "education", "work"];

/// How CSV columns map to record fields.
#[derive(Debug, Clone, Default)]
pub struct CsvMapping {
    /// column name → field name (`email`, `consent.marketing`, `id.loyalty_card`,
    /// an attribute name, ...).
    pub renames: BTreeMap<String, String>,
    /// Source for rows without a `source` column.
    pub source: Option<String>,
}

/// Where one column goes.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Source,
    ObservedAt,
    Identifier(String),
    Consent(String),
    Attribute(String),
}

/// A header resolved against a mapping.
#[derive(Debug, Clone)]
pub(crate) struct CsvLayout {
    targets: Vec<Target>,
    default_source: Option<String>,
}

impl CsvMapping {
    /// Resolves a header row.
    pub(crate) fn layout(&self, header: &[&str]) -> Result<CsvLayout, String> {
        let targets = header
            .iter()
            .map(|&col| {
                let name = self
                    .renames
                    .get(col)
                    .map(String::as_str)
                    .unwrap_or(col)
                    .trim();
                target_of(name).ok_or_else(|| format!("column {col:?} maps to no field"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !targets.iter().any(|t| matches!(t, Target::Identifier(_))) {
            return Err("no identifier column (email, phone, crm_id, id.TYPE, ...)".into());
        }
        if self.source.is_none() && !targets.contains(&Target::Source) {
            return Err("no source column and no source option".into());
        }
        Ok(CsvLayout {
            targets,
            default_source: self.source.clone(),
        })
    }
}

fn target_of(name: &str) -> Option<Target> {
    let valid = |s: &str, max| crate::input::record::is_name(s, max);
    Some(match name {
        "source" => Target::Source,
        "observed_at" => Target::ObservedAt,
        n if IdentifierKind::of(n).is_some() => Target::Identifier(n.to_string()),
        n => {
            if let Some(p) = n.strip_prefix("consent.") {
                valid(p, 32).then(|| Target::Consent(p.to_string()))?
            } else if let Some(t) = n.strip_prefix("id.") {
                valid(t, 32).then(|| Target::Identifier(t.to_string()))?
            } else {
                valid(n, 64).then(|| Target::Attribute(n.to_string()))?
            }
        }
    })
}

impl CsvLayout {
    /// The field that column `i` (from 0) fills, as a path (`attributes.city`); `None`
    /// for cells past the header.
    pub(crate) fn field_path(&self, i: usize) -> Option<String> {
        Some(match self.targets.get(i)? {
            Target::Source => "source".into(),
            Target::ObservedAt => "observed_at".into(),
            Target::Identifier(kind) => format!("identifiers.{kind}"),
            Target::Consent(p) => format!("consent.{p}"),
            Target::Attribute(a) => format!("attributes.{a}"),
        })
    }

    /// Builds the JSON record object for one row (cells past the header are ignored).
    pub(crate) fn to_json(&self, row: &[&str]) -> Json {
        let mut ids = Map::new();
        let mut attrs = Map::new();
        let mut consent = Map::new();
        let mut top = Map::new();
        if let Some(s) = &self.default_source {
            top.insert("source".into(), Json::String(s.clone()));
        }
        for (target, &cell) in self.targets.iter().zip(row) {
            if cell.trim().is_empty() {
                continue;
            }
            match target {
                Target::Source => {
                    top.insert("source".into(), Json::String(cell.trim().to_string()));
                }
                Target::ObservedAt => {
                    top.insert("observed_at".into(), Json::String(cell.to_string()));
                }
                Target::Identifier(kind) => {
                    let values: Vec<Json> = cell
                        .split('|')
                        .map(|v| Json::String(v.to_string()))
                        .collect();
                    ids.insert(kind.clone(), Json::Array(values));
                }
                Target::Consent(p) => {
                    consent.insert(
                        p.clone(),
                        parse_bool(cell)
                            .map(Json::Bool)
                            .unwrap_or(Json::String(cell.into())),
                    );
                }
                Target::Attribute(a) => {
                    attrs.insert(a.clone(), cell_value(a, cell));
                }
            }
        }
        top.insert("identifiers".into(), Json::Object(ids));
        top.insert("attributes".into(), Json::Object(attrs));
        top.insert("consent".into(), Json::Object(consent));
        Json::Object(top)
    }
}

fn parse_bool(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

fn cell_value(attr: &str, cell: &str) -> Json {
    if LIST_ATTRIBUTES.contains(&attr) || cell.contains('|') {
        return Json::Array(
            cell.split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Json::String(s.to_string()))
                .collect(),
        );
    }
    if TEXT_ATTRIBUTES.contains(&attr) {
        return Json::String(cell.to_string());
    }
    let t = cell.trim();
    match t.to_ascii_lowercase().as_str() {
        "true" => return Json::Bool(true),
        "false" => return Json::Bool(false),
        _ => {}
    }
    if looks_numeric(t) {
        if let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Json::Number(n);
        }
    }
    Json::String(cell.to_string())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: numbers without leading zeros (so codes like `0123`
/// stay text).
fn looks_numeric(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let int_ok = int == "0"
        || (!int.is_empty() && !int.starts_with('0') && int.bytes().all(|b| b.is_ascii_digit()));
    int_ok && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_to_json() {
        let mapping = CsvMapping {
            renames: [("E-mail".to_string(), "email".to_string())].into(),
            source: Some("crm".into()),
        };
        let header = [
            "E-mail",
            "zip",
            "interests",
            "lifetime_value",
            "consent.marketing",
            "id.loyalty",
        ];
        let layout = mapping.layout(&header).unwrap();
        let row = ["a@b.co", "0123", "running|travel", "12.5", "yes", "L1"];
        let json = layout.to_json(&row);
        assert_eq!(
            json,
            serde_json::json!({"source":"crm","identifiers":{"email":["a@b.co"],"loyalty":["L1"]},
                "attributes":{"zip":"0123","interests":["running","travel"],"lifetime_value":12.5},
                "consent":{"marketing":true}})
        );
    }

    #[test]
    fn header_errors() {
        let m = CsvMapping::default();
        assert!(m.layout(&["email"]).unwrap_err().contains("source"));
        assert!(m
            .layout(&["source", "zip"])
            .unwrap_err()
            .contains("identifier"));
        assert!(m.layout(&["source", "email", "Bad Col"]).is_err());
        assert!(looks_numeric("10.5") && !looks_numeric("0123") && !looks_numeric("1e5"));
    }
}
