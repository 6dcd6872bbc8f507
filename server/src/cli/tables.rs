//! `cidb dump-tables`: the resolved live profiles as flat CSV tables, so that another
//! database (DuckDB in `benches/peers/`) can answer the same segments over the same data.
//!
//! Values are written the way the indexes compare them, so that SQL equality and ranges
//! select what cidb's predicates select: text and list elements as their indexed form
//! (trimmed, NFC, lower case), numbers at the index's fixed precision (three decimals),
//! dates as `YYYY-MM-DD`, event types and categories normalized like a query's. Raw
//! identifier values are never written (they are personal data): only their types.
//! `suppressed` (live profiles on each suppression list) is read from the suppression
//! index itself: the identifiers' keyed hashes are not for export.

use super::{output, Global};
use crate::api;
use anyhow::Context;
use clap::Args;
use engine::{Attribute, Lookup, Term, Value, ValueKind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct DumpTablesArgs {
    /// Directory to write the tables into (created if missing; the tables in it are
    /// replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Leave out the attributes that hold personal data (names, email, phone, picture,
    /// profile URL, zip: the fields models never use).
    #[arg(long)]
    pub without_personal: bool,
}

/// One column of the `profiles` table.
struct Column {
    field: String,
    kind: ValueKind,
    name: String,
}

fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Text => "text",
        ValueKind::Number => "number",
        ValueKind::Bool => "bool",
        ValueKind::Date => "date",
        ValueKind::List => "list",
    }
}

/// The scalar columns: one per attribute, typed by the kind its values have; an
/// attribute that holds values of several scalar kinds gets one column per kind, named
/// `FIELD__KIND`.
fn columns(indexes: &engine::Indexes, without_personal: bool) -> Vec<Column> {
    let mut kinds: BTreeMap<String, BTreeSet<ValueKind>> = BTreeMap::new();
    for (term, bits) in indexes.terms() {
        if let Term::Kind(field, kind) = term {
            let personal = without_personal && engine::PERSONAL_FIELDS.contains(&field.as_str());
            if *kind != ValueKind::List && !bits.is_empty() && !personal {
                kinds.entry(field.to_string()).or_default().insert(*kind);
            }
        }
    }
    let mut out = Vec::new();
    for (field, ks) in kinds {
        let several = ks.len() > 1;
        for kind in ks {
            let name = if several {
                format!("{field}__{}", kind_name(kind))
            } else {
                field.clone()
            };
            out.push(Column {
                field: field.clone(),
                kind,
                name,
            });
        }
    }
    out
}

/// A number at the index's precision, as an exact decimal (`round(x * 1000) / 1000`).
fn number_text(x: f64) -> String {
    let scaled = engine::scale_number(x);
    let sign = if scaled < 0 { "-" } else { "" };
    let a = scaled.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

fn scalar_text(value: &Value) -> Option<(ValueKind, String)> {
    Some(match value {
        Value::Text(t) => (ValueKind::Text, engine::index_text(t).to_string()),
        Value::Number(x) => (ValueKind::Number, number_text(*x)),
        Value::Bool(b) => (ValueKind::Bool, engine::bool_text(*b).to_string()),
        Value::Date(d) => (ValueKind::Date, engine::format_date(*d)),
        Value::List(_) => return None,
    })
}

fn writer(dir: &Path, table: &str, header: &[&str]) -> anyhow::Result<csv::Writer<std::fs::File>> {
    let path = dir.join(format!("{table}.csv"));
    let mut w = csv::Writer::from_path(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    w.write_record(header)?;
    Ok(w)
}

pub fn dump_tables(global: &Global, args: DumpTablesArgs) -> anyhow::Result<()> {
    let db = global.open()?;
    let lists: Vec<String> = db.suppression_lists().into_iter().map(|l| l.name).collect();
    let models: Vec<String> = db.models().iter().map(|m| m.name.clone()).collect();
    let (live, columns, suppressed, scores) = {
        let snapshot = db.snapshot();
        let ix = snapshot.indexes();
        let live = ix.live().clone();
        let suppressed: Vec<(String, roaring::RoaringBitmap)> = lists
            .iter()
            .filter_map(|name| {
                let members = snapshot.suppressed(Some(name))?;
                Some((name.clone(), members & &live))
            })
            .collect();
        // Each model's percentile groups among the live profiles.
        let scores: Vec<(String, Vec<roaring::RoaringBitmap>)> = models
            .iter()
            .filter_map(|name| {
                let index = snapshot.model_scores(name)?;
                let groups = (0..=engine::MAX_PERCENTILE)
                    .map(|p| index.between(p, p) & &live)
                    .collect();
                Some((name.clone(), groups))
            })
            .collect();
        (live, columns(ix, args.without_personal), suppressed, scores)
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let dir = args.out.as_path();
    let mut header = vec!["pid"];
    header.extend(columns.iter().map(|c| c.name.as_str()));
    let mut profiles = writer(dir, "profiles", &header)?;
    let mut lists = writer(dir, "list_values", &["pid", "field", "value"])?;
    let mut identifiers = writer(dir, "identifier_types", &["pid", "type"])?;
    let mut consent = writer(dir, "consent", &["pid", "purpose", "granted", "at_ms"])?;
    let mut sources = writer(dir, "sources", &["pid", "source"])?;
    let mut events = writer(
        dir,
        "events",
        &["pid", "type", "category", "at_ms", "value"],
    )?;
    let mut rows = api::data::TablesDumped {
        out: args.out.clone(),
        ..Default::default()
    };
    let mut suppressed_rows = writer(dir, "suppressed", &["pid", "list"])?;
    for (name, members) in &suppressed {
        for pid in members {
            suppressed_rows.write_record([pid.to_string().as_str(), name.as_str()])?;
            rows.suppressed += 1;
        }
    }
    suppressed_rows.flush()?;
    let mut score_rows = writer(dir, "scores", &["pid", "model", "percentile"])?;
    for (name, groups) in &scores {
        for (percentile, members) in groups.iter().enumerate() {
            let percentile = percentile.to_string();
            for pid in members {
                score_rows.write_record([pid.to_string().as_str(), name, &percentile])?;
                rows.scores += 1;
            }
        }
    }
    score_rows.flush()?;
    let bar = output::progress_bar(Some(live.len()), global.json, "profiles");
    let mut row: Vec<String> = Vec::with_capacity(header.len());
    for pid in &live {
        let Some(view) = db.lookup(&Lookup::Id(pid))? else {
            continue;
        };
        let p = &view.profile;
        let id = pid.to_string();
        row.clear();
        row.push(id.clone());
        for c in &columns {
            let cell = match p.attributes.get(c.field.as_str()) {
                Some(Attribute::Scalar(s)) => match scalar_text(&s.value) {
                    Some((kind, text)) if kind == c.kind => text,
                    _ => String::new(),
                },
                _ => String::new(),
            };
            row.push(cell);
        }
        profiles.write_record(&row)?;
        rows.profiles += 1;
        for (field, attr) in &p.attributes {
            if args.without_personal && engine::PERSONAL_FIELDS.contains(&field.as_str()) {
                continue;
            }
            if let Attribute::List(items) = attr {
                let values: BTreeSet<_> =
                    items.iter().map(|i| engine::index_text(&i.value)).collect();
                for v in values {
                    lists.write_record([id.as_str(), field.as_str(), v.as_str()])?;
                    rows.list_values += 1;
                }
            }
        }
        let types: BTreeSet<&str> = p.identifiers.iter().map(|i| i.id.kind.as_str()).collect();
        for t in types {
            identifiers.write_record([id.as_str(), t])?;
            rows.identifier_types += 1;
        }
        for (purpose, history) in &p.consent {
            if let Some(latest) = history.last() {
                consent.write_record([
                    id.as_str(),
                    purpose.as_str(),
                    engine::bool_text(latest.granted),
                    &latest.provenance.observed_at.to_string(),
                ])?;
                rows.consent += 1;
            }
        }
        for source in p.sources.keys() {
            sources.write_record([id.as_str(), source.as_str()])?;
            rows.sources += 1;
        }
        for chunk in &view.events {
            for e in &chunk.events {
                let category = e
                    .category
                    .as_deref()
                    .map(engine::index_text)
                    .unwrap_or_default();
                let value = e.value.map(|v| v.to_string()).unwrap_or_default();
                events.write_record([
                    id.as_str(),
                    engine::index_text(&e.kind).as_str(),
                    category.as_str(),
                    &e.at.to_string(),
                    &value,
                ])?;
                rows.events += 1;
            }
        }
        if rows.profiles % 4096 == 0 {
            bar.set_position(rows.profiles);
        }
    }
    bar.finish_and_clear();
    for w in [
        &mut profiles,
        &mut lists,
        &mut identifiers,
        &mut consent,
        &mut sources,
        &mut events,
    ] {
        w.flush()?;
    }
    // The column types of `profiles`, for loaders (CSV carries none).
    let schema: BTreeMap<&str, &str> = columns
        .iter()
        .map(|c| (c.name.as_str(), kind_name(c.kind)))
        .collect();
    let schema_path = dir.join("profiles.schema.json");
    std::fs::write(&schema_path, serde_json::to_string_pretty(&schema)? + "\n")
        .with_context(|| format!("cannot write {}", schema_path.display()))?;
    if global.json {
        output::json(&rows)
    } else {
        eprintln!(
            "wrote {} profiles, {} list values, {} identifier types, {} consent rows, {} sources, {} events, {} suppressed, {} scores to {}",
            rows.profiles,
            rows.list_values,
            rows.identifier_types,
            rows.consent,
            rows.sources,
            rows.events,
            rows.suppressed,
            rows.scores,
            rows.out.display()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::number_text;

    #[test]
    fn numbers_are_exact_at_the_index_precision() {
        assert_eq!(number_text(1.0), "1.000");
        assert_eq!(number_text(199.9996), "200.000");
        assert_eq!(number_text(-0.5), "-0.500");
        assert_eq!(number_text(-0.0004), "0.000");
        assert_eq!(number_text(12.3456), "12.346");
    }
}
