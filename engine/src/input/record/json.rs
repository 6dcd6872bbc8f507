//! JSON record parsing with per-field errors.

use super::lite::{IdentityPart, Lite, Object};
use super::{
    is_name, Event, FieldWarning, Identifier, ParsedRecord, Record, ShortText, Value,
    NUMBER_ATTRIBUTES,
};
use crate::base::kind::IdentifierKind;
use crate::base::limits::{
    MAX_ABS_NUMBER, MAX_EVENTS_PER_RECORD, MAX_FIELDS, MAX_LIST_ITEMS, MAX_RECORD_BYTES,
    MAX_VALUE_BYTES,
};
use crate::base::time::{parse_date, parse_rfc3339, Millis};
use crate::input::config::Config;
use crate::input::normalize;
use serde_json::Value as Json;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Why a record was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectReason {
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl RejectReason {
    fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        RejectReason {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Parses one JSON Lines line (or one record of `Engine::ingest_json`) into a normalized
/// record. `now` is the default `observed_at`. A record longer than [`MAX_RECORD_BYTES`]
/// is rejected without being parsed; the other limits (`MAX_VALUE_BYTES`, ...) are checked
/// per field.
pub fn parse_json_record(
    line: &str,
    config: &Config,
    now: Millis,
) -> Result<ParsedRecord, RejectReason> {
    if line.len() > MAX_RECORD_BYTES {
        return Err(RejectReason {
            field: None,
            message: record_too_long(line.len() as u64),
        });
    }
    // JSON never holds a raw NUL (not even inside a string), and the message serde_json
    // would give (a control character, or "expected value") hides where it is.
    if let Some(offset) = line.bytes().position(|b| b == 0) {
        return Err(RejectReason {
            field: None,
            message: format!("NUL byte at byte offset {offset}"),
        });
    }
    let json = Lite::parse(line).map_err(|e| RejectReason {
        field: None,
        message: format!(
            "invalid JSON at column {}: {}",
            e.column(),
            strip_position(&e.to_string())
        ),
    })?;
    parse_lite(json, config, now)
}

/// Every identifier that [`parse_json_record`] could give `line`, or more: the grouping
/// pass of a file import (`write::import::grouping`) links records through these before
/// the real parse. A superset is what it needs: a record's identifiers are normalized
/// under both regions it may get (its own `country`, whether or not its scope keeps it,
/// and the default region), scopes are not applied, and a record the parse would reject
/// still names its identifiers. Blocked values are left out, as the parse leaves them out.
pub(crate) fn candidate_identifiers(line: &str, config: &Config) -> Vec<Identifier> {
    let Some(part) = IdentityPart::parse(line) else {
        return Vec::new();
    };
    let country = match &part.country {
        Some(Lite::String(c)) => normalize::country(c),
        _ => None,
    };
    let mut regions = vec![config.default_region.as_deref()];
    if country.is_some() && country != config.default_region.as_deref() {
        regions.push(country);
    }
    let Some(Lite::Object(map)) = part.identifiers else {
        return Vec::new();
    };
    let mut out: Vec<Identifier> = Vec::new();
    for (kind, value) in map.into_sorted() {
        let raws: Vec<Cow<'_, str>> = match value {
            Lite::String(s) => vec![s],
            Lite::Number(n) => vec![Cow::Owned(n.to_string())],
            Lite::Array(items) => items
                .into_iter()
                .filter_map(|v| match v {
                    Lite::String(s) => Some(s),
                    Lite::Number(n) => Some(Cow::Owned(n.to_string())),
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        for raw in raws {
            if config.identity.is_blocked(&kind, &raw) {
                continue;
            }
            let regions = match IdentifierKind::of(&kind) {
                Some(IdentifierKind::Phone) => &regions[..],
                _ => &regions[..1],
            };
            for region in regions {
                if let Ok(value) = normalize::identifier(&kind, &raw, *region) {
                    let id = Identifier {
                        kind: kind.as_ref().into(),
                        value,
                    };
                    if !out.contains(&id) {
                        out.push(id);
                    }
                }
            }
        }
    }
    out
}

fn strip_position(msg: &str) -> &str {
    msg.split(" at line ").next().unwrap_or(msg)
}

/// The message for a record over [`MAX_RECORD_BYTES`] (shared with the importers).
pub(crate) fn record_too_long(len: u64) -> String {
    format!("record of {len} bytes is longer than the limit of {MAX_RECORD_BYTES} bytes")
}

/// Rejects a text value over [`MAX_VALUE_BYTES`].
fn check_text(text: &str, path: impl FnOnce() -> String) -> Result<(), RejectReason> {
    if text.len() > MAX_VALUE_BYTES {
        return Err(RejectReason::at(
            path(),
            format!(
                "value of {} bytes exceeds the limit of {MAX_VALUE_BYTES}",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Rejects a list or object with more than `limit` entries.
fn check_count(
    len: usize,
    limit: usize,
    what: &str,
    path: impl FnOnce() -> String,
) -> Result<(), RejectReason> {
    if len > limit {
        return Err(RejectReason::at(
            path(),
            format!("{len} {what} exceed the limit of {limit}"),
        ));
    }
    Ok(())
}

/// A number attribute or event value: finite and within [`MAX_ABS_NUMBER`].
fn check_number(value: Option<f64>, path: impl FnOnce() -> String) -> Result<f64, RejectReason> {
    match value {
        Some(v) if v.is_finite() && v.abs() <= MAX_ABS_NUMBER => Ok(v),
        _ => Err(RejectReason::at(
            path(),
            format!("number out of range (|x| <= {MAX_ABS_NUMBER:e})"),
        )),
    }
}

/// A number written as text (a CSV cell, or a JSON string for a number attribute): an
/// optional sign, digits, an optional fraction and exponent (`12`, `-0.5`, `1e5`); never
/// `NaN`, `inf`, hex or thousands separators. `None` when it is not such a number.
fn parse_number_text(text: &str) -> Option<f64> {
    let t = text.trim();
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    t.parse().ok()
}

/// Parses an already-decoded JSON object (the CSV reader's rows).
pub(crate) fn parse_json_value(
    json: Json,
    config: &Config,
    now: Millis,
) -> Result<ParsedRecord, RejectReason> {
    parse_lite(Lite::from(json), config, now)
}

/// Validates and normalizes one record.
fn parse_lite(json: Lite<'_>, config: &Config, now: Millis) -> Result<ParsedRecord, RejectReason> {
    let Lite::Object(mut obj) = json else {
        return Err(RejectReason::at("record", "expected a JSON object"));
    };
    let source = match obj.take("source") {
        Some(Lite::String(s)) if is_name(&s, 32) => s,
        Some(Lite::String(_)) => {
            return Err(RejectReason::at("source", "must match [a-z0-9_]{1,32}"))
        }
        Some(_) => return Err(RejectReason::at("source", "expected a string")),
        None => return Err(RejectReason::at("source", "missing")),
    };
    let observed_at = match obj.take("observed_at") {
        None | Some(Lite::Null) => now,
        Some(Lite::String(s)) => parse_rfc3339(&s)
            .ok_or_else(|| RejectReason::at("observed_at", "not an RFC 3339 time"))?,
        Some(_) => return Err(RejectReason::at("observed_at", "expected a string")),
    };
    let scopes = match obj.take("scopes") {
        None | Some(Lite::Null) => None,
        Some(Lite::Array(items)) => {
            check_count(items.len(), MAX_LIST_ITEMS, "items", || "scopes".into())?;
            Some(
                items
                    .into_iter()
                    .map(|v| match v {
                        Lite::String(s) => {
                            check_text(&s, || "scopes".into())?;
                            Ok(s.into_owned())
                        }
                        _ => Err(RejectReason::at("scopes", "expected a list of strings")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
        Some(_) => return Err(RejectReason::at("scopes", "expected a list of strings")),
    };
    let covered = scopes
        .as_ref()
        .and_then(|s| config.scopes.covered(&source, s));
    let mut builder = RecordBuilder {
        config,
        covered,
        warnings: Vec::new(),
        dropped: Vec::new(),
    };
    let attributes = match obj.take("attributes") {
        None | Some(Lite::Null) => BTreeMap::new(),
        Some(Lite::Object(map)) => builder.attributes(map)?,
        Some(_) => return Err(RejectReason::at("attributes", "expected an object")),
    };
    let region = match attributes.get("country") {
        Some(Value::Text(c)) => Some(c.as_str()),
        _ => config.default_region.as_deref(),
    };
    let identifiers = match obj.take("identifiers") {
        Some(Lite::Object(map)) => builder.identifiers(map, region)?,
        Some(_) => return Err(RejectReason::at("identifiers", "expected an object")),
        None => return Err(RejectReason::at("identifiers", "missing")),
    };
    let consent = match obj.take("consent") {
        None | Some(Lite::Null) => BTreeMap::new(),
        Some(Lite::Object(map)) => parse_consent(map)?,
        Some(_) => return Err(RejectReason::at("consent", "expected an object")),
    };
    let events = match obj.take("events") {
        None | Some(Lite::Null) => Vec::new(),
        Some(Lite::Array(items)) => {
            check_count(items.len(), MAX_EVENTS_PER_RECORD, "events", || {
                "events".into()
            })?;
            items
                .into_iter()
                .enumerate()
                .map(|(i, e)| parse_event(i, e))
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(RejectReason::at("events", "expected a list")),
    };
    if let Some(key) = obj.first_key() {
        builder.warnings.push(FieldWarning {
            field: key.to_string(),
            reason: "unknown top-level field ignored".into(),
        });
    }
    Ok(ParsedRecord {
        record: Record {
            source: source.into(),
            observed_at,
            identifiers,
            attributes,
            consent,
            events,
        },
        warnings: builder.warnings,
        dropped_by_scope: builder.dropped,
        link_keys: Vec::new(),
    })
}

struct RecordBuilder<'a> {
    config: &'a Config,
    covered: Option<std::collections::BTreeSet<&'a str>>,
    warnings: Vec<FieldWarning>,
    dropped: Vec<String>,
}

impl RecordBuilder<'_> {
    fn allowed(&mut self, field: &str, path: impl FnOnce() -> String) -> bool {
        match &self.covered {
            Some(set) if !set.contains(field) => {
                self.dropped.push(path());
                false
            }
            _ => true,
        }
    }

    fn warn(&mut self, field: String, reason: impl Into<String>) {
        self.warnings.push(FieldWarning {
            field,
            reason: reason.into(),
        });
    }

    fn identifiers(
        &mut self,
        map: Object<'_>,
        region: Option<&str>,
    ) -> Result<Vec<Identifier>, RejectReason> {
        let mut out: Vec<Identifier> = Vec::new();
        let map = map.into_sorted();
        check_count(map.len(), MAX_FIELDS, "identifier types", || {
            "identifiers".into()
        })?;
        for (kind, value) in map {
            let path = || format!("identifiers.{kind}");
            if !is_name(&kind, 32) {
                return Err(RejectReason::at(
                    path(),
                    "identifier type must match [a-z0-9_]{1,32}",
                ));
            }
            let raws: Vec<Cow<'_, str>> = match value {
                Lite::String(s) => vec![s],
                Lite::Number(n) => vec![Cow::Owned(n.to_string())],
                Lite::Null => continue,
                Lite::Array(items) => {
                    check_count(items.len(), MAX_LIST_ITEMS, "values", path)?;
                    items
                        .into_iter()
                        .map(|v| match v {
                            Lite::String(s) => Ok(s),
                            Lite::Number(n) => Ok(Cow::Owned(n.to_string())),
                            _ => Err(RejectReason::at(
                                path(),
                                "expected a string or a list of strings",
                            )),
                        })
                        .collect::<Result<_, _>>()?
                }
                _ => {
                    return Err(RejectReason::at(
                        path(),
                        "expected a string or a list of strings",
                    ))
                }
            };
            for raw in &raws {
                check_text(raw, path)?;
            }
            if !self.allowed(&kind, path) {
                continue;
            }
            for raw in raws {
                if self.config.identity.is_blocked(&kind, &raw) {
                    self.warn(path(), "blocked value ignored");
                    continue;
                }
                let normalized = normalize::identifier(&kind, &raw, region);
                match normalized {
                    Ok(value) => {
                        let id = Identifier {
                            kind: kind.as_ref().into(),
                            value,
                        };
                        if !out.contains(&id) {
                            out.push(id);
                        }
                    }
                    Err(problem) => self.warn(path(), problem.to_string()),
                }
            }
        }
        if out.is_empty() {
            return Err(RejectReason::at("identifiers", "no usable identifier"));
        }
        Ok(out)
    }

    fn attributes(&mut self, map: Object<'_>) -> Result<BTreeMap<ShortText, Value>, RejectReason> {
        let mut out = BTreeMap::new();
        let map = map.into_sorted();
        check_count(map.len(), MAX_FIELDS, "attributes", || "attributes".into())?;
        for (name, value) in map {
            let path = || format!("attributes.{name}");
            if !is_name(&name, 64) {
                return Err(RejectReason::at(
                    path(),
                    "attribute name must match [a-z0-9_]{1,64}",
                ));
            }
            let value = match value {
                Lite::Null => continue,
                Lite::Number(n) => Value::Number(check_number(n.as_f64(), path)?),
                // A well-known number attribute takes numbers only; text that is a number
                // (a CSV cell) is read as one, anything else is refused.
                Lite::String(s) if NUMBER_ATTRIBUTES.contains(&name.as_ref()) => {
                    match parse_number_text(&s) {
                        Some(v) => Value::Number(check_number(Some(v), path)?),
                        None => {
                            check_text(&s, path)?;
                            return Err(RejectReason::at(path(), "expected a number"));
                        }
                    }
                }
                _ if NUMBER_ATTRIBUTES.contains(&name.as_ref()) => {
                    return Err(RejectReason::at(path(), "expected a number"))
                }
                Lite::Bool(b) => Value::Bool(b),
                Lite::String(s) => {
                    check_text(&s, path)?;
                    match parse_date(s.trim()) {
                        Some(day) => Value::Date(day),
                        None if name == "birth_date" => {
                            return Err(RejectReason::at(path(), "expected a YYYY-MM-DD date"));
                        }
                        None => Value::Text(s.as_ref().into()),
                    }
                }
                Lite::Array(items) => {
                    check_count(items.len(), MAX_LIST_ITEMS, "items", path)?;
                    Value::List(
                        items
                            .into_iter()
                            .map(|v| match v {
                                Lite::String(s) => {
                                    check_text(&s, path)?;
                                    Ok(s.as_ref().into())
                                }
                                _ => Err(RejectReason::at(path(), "expected a list of strings")),
                            })
                            .collect::<Result<_, _>>()?,
                    )
                }
                Lite::Object(_) => {
                    return Err(RejectReason::at(path(), "objects are not attribute values"))
                }
            };
            if !self.allowed(&name, path) {
                continue;
            }
            let value = match (name.as_ref(), value) {
                ("country", Value::Text(c)) => match normalize::country(&c) {
                    Some(code) => Value::Text(code.into()),
                    None => {
                        self.warn(path(), "unknown country ignored");
                        continue;
                    }
                },
                (_, v) => v,
            };
            out.insert(name.as_ref().into(), value);
        }
        Ok(out)
    }
}

fn parse_consent(map: Object<'_>) -> Result<BTreeMap<ShortText, bool>, RejectReason> {
    let map = map.into_sorted();
    check_count(map.len(), MAX_FIELDS, "purposes", || "consent".into())?;
    map.into_iter()
        .map(|(purpose, v)| {
            let path = || format!("consent.{purpose}");
            if !is_name(&purpose, 32) {
                return Err(RejectReason::at(
                    path(),
                    "purpose must match [a-z0-9_]{1,32}",
                ));
            }
            match v {
                Lite::Bool(b) => Ok((purpose.as_ref().into(), b)),
                _ => Err(RejectReason::at(path(), "expected true or false")),
            }
        })
        .collect()
}

fn parse_event(index: usize, json: Lite<'_>) -> Result<Event, RejectReason> {
    let path = |f: &str| format!("events[{index}].{f}");
    let Lite::Object(mut obj) = json else {
        return Err(RejectReason::at(
            format!("events[{index}]"),
            "expected an object",
        ));
    };
    let kind = match obj.take("type") {
        Some(Lite::String(s)) if !s.trim().is_empty() => {
            check_text(&s, || path("type"))?;
            normalize::index_text(&s)
        }
        _ => return Err(RejectReason::at(path("type"), "required string")),
    };
    let at = match obj.take("at") {
        Some(Lite::String(s)) => {
            parse_rfc3339(&s).ok_or_else(|| RejectReason::at(path("at"), "not an RFC 3339 time"))?
        }
        _ => return Err(RejectReason::at(path("at"), "required RFC 3339 time")),
    };
    let category = match obj.take("category") {
        None | Some(Lite::Null) => None,
        Some(Lite::String(s)) => {
            check_text(&s, || path("category"))?;
            Some(normalize::index_text(&s))
        }
        Some(_) => return Err(RejectReason::at(path("category"), "expected a string")),
    };
    let value = match obj.take("value") {
        None | Some(Lite::Null) => None,
        Some(Lite::Number(n)) => Some(check_number(n.as_f64(), || path("value"))?),
        Some(_) => return Err(RejectReason::at(path("value"), "expected a number")),
    };
    if let Some(key) = obj.first_key() {
        return Err(RejectReason::at(path(key), "unknown event field"));
    }
    Ok(Event {
        kind,
        at,
        category,
        value,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod differential;
