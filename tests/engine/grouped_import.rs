//! A grouped file import (`Engine::import_jsonl_file`) against the same file imported in
//! file order: the same profiles, events, merges, reports and problems, but for profile
//! ids and ingest sequence numbers. Random files of the model test's records, with
//! `observed_at` ties, shared identifiers far apart, stored profiles they reach, junk
//! lines, and batches of three records so that groups straddle batches.
//!
//! Cases: `CIDB_MODEL_CASES` (default 24).

use super::model::{rec, to_json, Rec};
use cidb::{Config, Engine, ImportOptions, IngestReport, Lookup};
use proptest::prelude::*;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};

/// A line of the file: a record, or something the import refuses or skips.
#[derive(Debug, Clone)]
enum Line {
    Record(Rec),
    Blank,
    NotJson,
    NoIdentifier,
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        12 => rec().prop_map(|mut r| {
            // Few distinct times: ties, which the later ingest wins.
            r.observed_at %= 3;
            Line::Record(r)
        }),
        1 => Just(Line::Blank),
        1 => Just(Line::NotJson),
        1 => Just(Line::NoIdentifier),
    ]
}

fn text(line: &Line) -> String {
    match line {
        Line::Record(r) => to_json(r),
        Line::Blank => "   ".into(),
        Line::NotJson => "{\"source\": \"crm\", ".into(),
        Line::NoIdentifier => r#"{"source":"crm","identifiers":{}}"#.into(),
    }
}

fn config() -> Config {
    Config::default().with_import_batch_records(3)
}

/// `view` as JSON with its profile ids and sequence numbers replaced by their rank
/// among those in the view: a grouped import keeps both in the same relative order.
fn canonical(view: &cidb::ProfileView) -> Json {
    fn collect(json: &Json, ids: &mut BTreeSet<u64>, seqs: &mut BTreeSet<u64>) {
        match json {
            Json::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v.as_u64()) {
                        ("id" | "survivor" | "absorbed", Some(n)) => {
                            ids.insert(n);
                        }
                        ("merged_from", _) => {
                            ids.extend(v.as_array().into_iter().flatten().filter_map(Json::as_u64))
                        }
                        ("seq", Some(n)) => {
                            seqs.insert(n);
                        }
                        _ => collect(v, ids, seqs),
                    }
                }
            }
            Json::Array(items) => items.iter().for_each(|v| collect(v, ids, seqs)),
            _ => {}
        }
    }
    fn rank(json: &mut Json, ids: &BTreeMap<u64, usize>, seqs: &BTreeMap<u64, usize>) {
        match json {
            Json::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match (k.as_str(), v.as_u64()) {
                        ("id" | "survivor" | "absorbed", Some(n)) => *v = ids[&n].into(),
                        ("merged_from", _) => {
                            for pid in v.as_array_mut().into_iter().flatten() {
                                *pid = ids[&pid.as_u64().expect("a profile id")].into();
                            }
                        }
                        ("seq", Some(n)) => *v = seqs[&n].into(),
                        _ => rank(v, ids, seqs),
                    }
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|v| rank(v, ids, seqs)),
            _ => {}
        }
    }
    let mut json = serde_json::to_value(view).unwrap();
    let (mut ids, mut seqs) = (BTreeSet::new(), BTreeSet::new());
    collect(&json, &mut ids, &mut seqs);
    let ranks = |set: BTreeSet<u64>| -> BTreeMap<u64, usize> {
        set.into_iter().enumerate().map(|(i, n)| (n, i)).collect()
    };
    rank(&mut json, &ranks(ids), &ranks(seqs));
    json
}

/// A database holding `stored`, then `lines` imported grouped or in file order.
fn imported(
    stored: &[Rec],
    path: &std::path::Path,
    grouped: bool,
) -> (tempfile::TempDir, Engine, IngestReport) {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open_with(dir.path(), config()).unwrap();
    if !stored.is_empty() {
        let texts: Vec<String> = stored.iter().map(to_json).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        db.ingest_json(&refs).unwrap();
    }
    let file = std::fs::File::open(path).unwrap();
    let report = if grouped {
        db.import_jsonl_file(&file, &ImportOptions::default(), &mut |_| {})
    } else {
        db.import_jsonl(
            std::io::BufReader::new(file),
            &ImportOptions::default(),
            &mut |_| {},
        )
    }
    .unwrap();
    (dir, db, report)
}

fn run(stored: Vec<Rec>, lines: Vec<Line>) -> Result<(), TestCaseError> {
    let file = tempfile::NamedTempFile::new().unwrap();
    let texts: Vec<String> = lines.iter().map(text).collect();
    std::fs::write(file.path(), texts.join("\n")).unwrap();
    let (_a, in_order, report_a) = imported(&stored, file.path(), false);
    let (_b, grouped, report_b) = imported(&stored, file.path(), true);
    // Batch artefacts: how many batches, how many profiles a batch found stored and
    // updated, and how many it created that outlived it (grouped, a profile's records
    // mostly land in the batch creating it, which may also merge it away).
    let strip = |r: &IngestReport| IngestReport {
        batches: 0,
        updated_profiles: 0,
        new_profiles: 0,
        ..r.clone()
    };
    prop_assert_eq!(strip(&report_a), strip(&report_b));
    let (a, b) = (in_order.stats(), grouped.stats());
    prop_assert_eq!(
        (a.profiles, a.profile_ids, a.records, a.merges, a.events),
        (b.profiles, b.profile_ids, b.records, b.merges, b.events)
    );
    prop_assert_eq!(a.identifier_links, b.identifier_links);
    prop_assert_eq!(a.indexes.event_entries, b.indexes.event_entries);
    let ids: BTreeSet<(&str, &str)> = stored
        .iter()
        .chain(lines.iter().filter_map(|l| match l {
            Line::Record(r) => Some(r),
            _ => None,
        }))
        .flat_map(|r| r.ids.iter().map(|(k, v)| (*k, v.as_str())))
        .collect();
    for (kind, value) in ids {
        let how = Lookup::Identifier(kind.into(), value.into());
        let (x, y) = (
            in_order.lookup(&how).unwrap(),
            grouped.lookup(&how).unwrap(),
        );
        prop_assert_eq!(
            x.as_ref().map(canonical),
            y.as_ref().map(canonical),
            "{}={}",
            kind,
            value
        );
    }
    prop_assert!(grouped.check().unwrap().problems.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: super::model::cases(), ..ProptestConfig::default() })]
    #[test]
    fn a_grouped_import_lands_as_one_in_file_order(
        stored in proptest::collection::vec(rec(), 0..5),
        lines in proptest::collection::vec(line(), 1..40),
    ) {
        run(stored, lines)?;
    }
}

/// Lines applied out of file order still list their problems by line, the earliest
/// ones when there are more than the report lists.
#[test]
fn a_grouped_import_lists_its_earliest_problems_by_line() {
    let limit = cidb::MAX_LISTED_PROBLEMS as u64;
    // Person k's two records are far apart; every record has one bad phone.
    let people = limit;
    let lines: Vec<String> = (0..2 * people)
        .map(|k| {
            serde_json::json!({
                "source": "crm",
                "identifiers": { "email": format!("g{}@x.com", (k * 7919) % people), "phone": "not a phone" },
            })
            .to_string()
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let (_d, _db, report) = imported(&[], file.path(), true);
    assert_eq!(report.warning_count, 2 * people);
    let listed: Vec<u64> = report.warnings.iter().map(|w| w.line).collect();
    assert_eq!(listed, (1..=limit).collect::<Vec<_>>());
}

/// A file handed over past its first line is imported from there, as `import_jsonl`
/// would read it: lines are read back at the file's own offsets.
#[test]
fn a_grouped_import_starts_at_the_files_cursor() {
    use std::io::{Read, Seek};
    let file = tempfile::NamedTempFile::new().unwrap();
    let lines = [
        "not a record at all",
        r#"{"source":"crm","identifiers":{"email":"a@x.com"},"attributes":{"city":"Delft"}}"#,
        r#"{"source":"crm","identifiers":{"email":"b@x.com"}}"#,
        r#"{"source":"web","identifiers":{"email":"a@x.com"},"events":[{"type":"view","at":"2026-01-01T00:00:00Z"}]}"#,
    ];
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let mut handle = std::fs::File::open(file.path()).unwrap();
    let mut first = [0u8; 20];
    handle.read_exact(&mut first).unwrap();
    assert_eq!(handle.stream_position().unwrap(), 20);
    let (_dir, db) = super::fresh();
    let report = db
        .import_jsonl_file(&handle, &ImportOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!((report.records, report.rejected_count), (3, 0));
    let a = db
        .lookup(&Lookup::Email("a@x.com".into()))
        .unwrap()
        .unwrap();
    assert_eq!(a.profile.records, 2);
    assert_eq!(a.events.len(), 1);
}
