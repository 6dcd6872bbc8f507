//! Limits on records (README "Behaviour and limits"): record size, value size, list and
//! event counts, numeric attributes. The same for JSON Lines, CSV and `ingest_json` (the
//! HTTP API), because the record layer checks them; rejections name the line and field.

use super::{assert_clean, by_email, fresh};
use cidb::{
    Attribute, Engine, ImportOptions, IngestReport, Lookup, Value, MAX_EVENTS_PER_RECORD,
    MAX_FIELDS, MAX_LIST_ITEMS, MAX_RECORD_BYTES, MAX_VALUE_BYTES,
};

/// `(line, field, reason)` of every rejection.
fn rejections(report: &IngestReport) -> Vec<(u64, Option<String>, String)> {
    report
        .rejected
        .iter()
        .map(|r| (r.line, r.field.clone(), r.reason.clone()))
        .collect()
}

fn jsonl(db: &Engine, lines: &[String]) -> IngestReport {
    db.import_jsonl(
        lines.join("\n").as_bytes(),
        &ImportOptions::default(),
        &mut |_| {},
    )
    .unwrap()
}

fn csv(db: &Engine, text: &str) -> IngestReport {
    db.import_csv(
        text.as_bytes(),
        &ImportOptions::default().with_source("crm"),
        &mut |_| {},
    )
    .unwrap()
}

fn record(email: &str, attributes: &str) -> String {
    format!(r#"{{"source":"crm","identifiers":{{"email":"{email}"}},"attributes":{attributes}}}"#)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    crate::files_under(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

fn value_too_long(len: usize) -> String {
    format!("value of {len} bytes exceeds the limit of {MAX_VALUE_BYTES}")
}

/// A 20 MB `first_name` was accepted over HTTP (`ingest_json` had no record limit).
#[test]
fn ingest_json_refuses_a_record_over_the_record_limit() {
    let (dir, db) = fresh();
    let huge = record(
        "huge@x.com",
        &format!(r#"{{"first_name":"{}"}}"#, "a".repeat(20 << 20)),
    );
    let report = db
        .ingest_json(&[record("ok@x.com", "{}"), huge.clone()])
        .unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(
        rejections(&report),
        vec![(
            2,
            None,
            format!(
                "record of {} bytes is longer than the limit of {MAX_RECORD_BYTES} bytes",
                huge.len()
            )
        )]
    );
    assert!(db
        .lookup(&Lookup::Email("huge@x.com".into()))
        .unwrap()
        .is_none());
    assert!(dir_bytes(dir.path()) < 8 << 20, "{}", dir_bytes(dir.path()));
    assert_clean(&db);
}

/// Text values, identifiers, list items, event types and categories, and scopes are each
/// limited to `MAX_VALUE_BYTES`, in every path; at the limit is fine.
#[test]
fn values_over_the_value_limit_are_rejected_naming_the_field() {
    let (_d, db) = fresh();
    let long = "a".repeat(MAX_VALUE_BYTES + 1);
    let at_limit = "b".repeat(MAX_VALUE_BYTES);
    let lines = vec![
        record("v1@x.com", &format!(r#"{{"first_name":"{long}"}}"#)),
        record("v2@x.com", &format!(r#"{{"first_name":"{at_limit}"}}"#)),
        record("v3@x.com", &format!(r#"{{"interests":["ok","{long}"]}}"#)),
        format!(r#"{{"source":"crm","identifiers":{{"email":"v4@x.com","crm_id":"{long}"}}}}"#),
        format!(
            r#"{{"source":"crm","identifiers":{{"email":"v5@x.com"}},"events":[{{"type":"buy","at":"2026-01-01T00:00:00Z","category":"{long}"}}]}}"#
        ),
        format!(
            r#"{{"source":"crm","identifiers":{{"email":"v6@x.com"}},"events":[{{"type":"{long}","at":"2026-01-01T00:00:00Z"}}]}}"#
        ),
        format!(r#"{{"source":"crm","identifiers":{{"email":"v7@x.com"}},"scopes":["{long}"]}}"#),
        record("v8@x.com", &format!(r#"{{"my_note":"{long}"}}"#)),
    ];
    let expected = vec![
        (
            1,
            Some("attributes.first_name".into()),
            value_too_long(long.len()),
        ),
        (
            3,
            Some("attributes.interests".into()),
            value_too_long(long.len()),
        ),
        (
            4,
            Some("identifiers.crm_id".into()),
            value_too_long(long.len()),
        ),
        (
            5,
            Some("events[0].category".into()),
            value_too_long(long.len()),
        ),
        (6, Some("events[0].type".into()), value_too_long(long.len())),
        (7, Some("scopes".into()), value_too_long(long.len())),
        (
            8,
            Some("attributes.my_note".into()),
            value_too_long(long.len()),
        ),
    ];
    let report = jsonl(&db, &lines);
    assert_eq!(rejections(&report), expected);
    assert_eq!(report.accepted, 1);
    let report = db.ingest_json(&lines).unwrap();
    assert_eq!(rejections(&report), expected, "ingest_json (HTTP) alike");
    let v2 = by_email(&db, "v2@x.com").profile;
    assert!(
        matches!(&v2.attributes["first_name"], Attribute::Scalar(s) if s.value == Value::Text(at_limit.as_str().into()))
    );
    assert_clean(&db);
}

#[test]
fn lists_events_and_fields_over_their_counts_are_rejected() {
    let (_d, db) = fresh();
    let items = |n: usize| {
        (0..n)
            .map(|i| format!("\"i{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let event = r#"{"type":"buy","at":"2026-01-01T00:00:00Z","value":1}"#;
    let events = |n: usize| vec![event; n].join(",");
    let attributes = |n: usize| {
        (0..n)
            .map(|i| format!("\"a{i}\":1"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let emails = |n: usize| {
        (0..n)
            .map(|i| format!("\"e{i}@x.com\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let lines = vec![
        record(
            "l1@x.com",
            &format!(r#"{{"interests":[{}]}}"#, items(MAX_LIST_ITEMS + 1)),
        ),
        record(
            "l2@x.com",
            &format!(r#"{{"interests":[{}]}}"#, items(MAX_LIST_ITEMS)),
        ),
        format!(
            r#"{{"source":"crm","identifiers":{{"email":"l3@x.com"}},"events":[{}]}}"#,
            events(MAX_EVENTS_PER_RECORD + 1)
        ),
        format!(
            r#"{{"source":"crm","identifiers":{{"email":"l4@x.com"}},"events":[{}]}}"#,
            events(MAX_EVENTS_PER_RECORD)
        ),
        record("l5@x.com", &format!("{{{}}}", attributes(MAX_FIELDS + 1))),
        format!(
            r#"{{"source":"crm","identifiers":{{"email":[{}]}}}}"#,
            emails(MAX_LIST_ITEMS + 1)
        ),
    ];
    let report = jsonl(&db, &lines);
    assert_eq!(
        rejections(&report),
        vec![
            (
                1,
                Some("attributes.interests".into()),
                format!("1001 items exceed the limit of {MAX_LIST_ITEMS}")
            ),
            (
                3,
                Some("events".into()),
                format!("1001 events exceed the limit of {MAX_EVENTS_PER_RECORD}")
            ),
            (
                5,
                Some("attributes".into()),
                format!("1001 attributes exceed the limit of {MAX_FIELDS}")
            ),
            (
                6,
                Some("identifiers.email".into()),
                format!("1001 values exceed the limit of {MAX_LIST_ITEMS}")
            ),
        ]
    );
    assert_eq!(report.accepted, 2);
    assert_clean(&db);
}

/// The CSV path fills the same record shape, so the same value limits apply, by field.
#[test]
fn csv_cells_get_the_same_value_limits() {
    let (_d, db) = fresh();
    let long = "c".repeat(MAX_VALUE_BYTES + 1);
    let text = format!(
        "email,first_name,interests\n\
         a@x.com,Ann,\n\
         b@x.com,{long},\n\
         c@x.com,Cy,x|{long}\n\
         {long}@x.com,Di,\n\
         e@x.com,Ed,{}\n",
        vec!["i"; MAX_LIST_ITEMS + 1].join("|")
    );
    let report = csv(&db, &text);
    assert_eq!(
        rejections(&report),
        vec![
            (
                3,
                Some("attributes.first_name".into()),
                value_too_long(long.len())
            ),
            (
                4,
                Some("attributes.interests".into()),
                value_too_long(long.len())
            ),
            (
                5,
                Some("identifiers.email".into()),
                value_too_long(long.len() + 6)
            ),
            (
                6,
                Some("attributes.interests".into()),
                format!("1001 items exceed the limit of {MAX_LIST_ITEMS}")
            ),
        ]
    );
    assert_eq!(report.accepted, 1);
    assert_clean(&db);
}

/// A 200 MB CSV field was imported whole (the data directory grew from 1.9 MB to 384 MB).
/// A CSV record over `MAX_RECORD_BYTES` is now rejected with its line and not kept, and
/// the lines after it keep their numbers.
#[test]
fn a_csv_record_over_the_record_limit_is_rejected_by_line() {
    let (dir, db) = fresh();
    let field = "x\n".repeat(10 << 20); // 20 MiB, over 10 Mi lines, in one quoted cell
    let text = format!(
        "email,first_name\n\
         a@x.com,Ann\n\
         b@x.com,\"{field}\"\n\
         c@x.com,Cy\n"
    );
    let report = csv(&db, &text);
    let size = "b@x.com,\"\"".len() + field.len();
    assert_eq!(
        rejections(&report),
        vec![(
            3,
            None,
            format!("record of {size} bytes is longer than the limit of {MAX_RECORD_BYTES} bytes")
        )]
    );
    assert_eq!(report.accepted, 2);
    by_email(&db, "c@x.com");
    assert!(db
        .lookup(&Lookup::Email("b@x.com".into()))
        .unwrap()
        .is_none());
    assert!(dir_bytes(dir.path()) < 8 << 20, "{}", dir_bytes(dir.path()));
    // A header row over the limit is an error of the whole import.
    let header = format!("email,{}\n", "h".repeat(MAX_RECORD_BYTES));
    let err = db
        .import_csv(header.as_bytes(), &ImportOptions::default(), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("longer than the limit"), "{err}");
    assert_clean(&db);
}

/// `lifetime_value` accepted `"NaN"`, `"inf"`, `"-1e13"` and `"abc"` as text, skipping the
/// range check. A well-known number attribute takes numbers (text only when it is a
/// number), finite and within `MAX_ABS_NUMBER`.
#[test]
fn number_attributes_must_be_numbers_in_range() {
    let (_d, db) = fresh();
    let bad = [
        r#""NaN""#,
        r#""inf""#,
        r#""-inf""#,
        r#""-1e13""#,
        r#""abc""#,
        r#""""#,
        r#""0x10""#,
        "1e13",
        "true",
        r#"["1"]"#,
        r#""2020-01-01""#,
    ];
    let lines: Vec<String> = bad
        .iter()
        .enumerate()
        .map(|(i, v)| {
            record(
                &format!("n{i}@x.com"),
                &format!(r#"{{"lifetime_value":{v}}}"#),
            )
        })
        .chain([
            record("ok1@x.com", r#"{"lifetime_value":12.5}"#),
            record("ok2@x.com", r#"{"lifetime_value":" 1e5 "}"#),
        ])
        .collect();
    for report in [jsonl(&db, &lines), db.ingest_json(&lines).unwrap()] {
        let fields: Vec<_> = rejections(&report)
            .into_iter()
            .map(|(line, field, reason)| {
                assert!(
                    reason == "expected a number" || reason.starts_with("number out of range"),
                    "{reason}"
                );
                (line, field.unwrap())
            })
            .collect();
        let expected: Vec<_> = (1..=bad.len() as u64)
            .map(|l| (l, "attributes.lifetime_value".to_string()))
            .collect();
        assert_eq!(fields, expected);
        assert_eq!(report.accepted, 2);
    }
    let number = |email: &str| match &by_email(&db, email).profile.attributes["lifetime_value"] {
        Attribute::Scalar(s) => s.value.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(number("ok1@x.com"), Value::Number(12.5));
    assert_eq!(number("ok2@x.com"), Value::Number(100_000.0));

    // CSV: every cell is text, so it is parsed the same way.
    let report = csv(
        &db,
        "email,lifetime_value,score\n\
         c1@x.com,NaN,1\n\
         c2@x.com,inf,1\n\
         c3@x.com,-1e13,1\n\
         c4@x.com,abc,1\n\
         c5@x.com,1e5,NaN\n\
         c6@x.com,-10.25,abc\n",
    );
    let lines: Vec<_> = rejections(&report)
        .into_iter()
        .map(|(l, f, _)| (l, f.unwrap()))
        .collect();
    assert_eq!(
        lines,
        (2..=5)
            .map(|l| (l, "attributes.lifetime_value".to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(number("c5@x.com"), Value::Number(100_000.0));
    assert_eq!(number("c6@x.com"), Value::Number(-10.25));
    // A custom attribute stays what it was given as.
    let c5 = by_email(&db, "c5@x.com").profile;
    assert!(
        matches!(&c5.attributes["score"], Attribute::Scalar(s) if s.value == Value::Text("NaN".into()))
    );
    assert_clean(&db);
}

/// A line starting with a NUL byte was reported as "line longer than 1048576 bytes": the
/// JSON Lines reader marked refused lines with a leading NUL, so such a line looked like
/// one of its markers.
#[test]
fn a_nul_byte_is_reported_with_its_line_and_offset() {
    let (_d, db) = fresh();
    let lines = vec![
        record("ok1@x.com", "{}"),
        format!("\0{}", record("nul1@x.com", "{}")),
        "{\"source\":\"crm\",\"identifiers\":{\"email\":\"nul2@x.com\"},\"x\":\"a\0b\"}"
            .to_string(),
        "\0".to_string(),
        record("ok2@x.com", "{}"),
    ];
    let expected = vec![
        (2, None, "NUL byte at byte offset 0".to_string()),
        (3, None, "NUL byte at byte offset 59".to_string()),
        (4, None, "NUL byte at byte offset 0".to_string()),
    ];
    let report = jsonl(&db, &lines);
    assert_eq!(rejections(&report), expected);
    assert_eq!(report.accepted, 2);
    let report = db.ingest_json(&lines).unwrap();
    assert_eq!(rejections(&report), expected);
    // With a default source, lines go through another parse first: the same answer.
    let report = db
        .import_jsonl(
            lines.join("\n").as_bytes(),
            &ImportOptions::default().with_source("web"),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(rejections(&report), expected);
    // An over-long line says how long it was.
    let long = format!(
        "{}\n{}\n",
        " ".repeat(MAX_RECORD_BYTES + 7),
        record("ok3@x.com", "{}")
    );
    let report = db
        .import_jsonl(long.as_bytes(), &ImportOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(
        rejections(&report),
        vec![(
            1,
            None,
            format!(
                "line of {} bytes is longer than the limit of {MAX_RECORD_BYTES} bytes",
                MAX_RECORD_BYTES + 7
            )
        )]
    );
    assert_eq!(report.accepted, 1);
    assert_clean(&db);
}

/// `event("x", within 5900000y)` counted nobody and `within 2147500000d` everybody (the
/// milliseconds overflowed); durations are limited to 200 years where they are written,
/// and the planner's time arithmetic saturates even at the ends of time.
#[test]
fn durations_are_range_checked_where_written() {
    use cidb::query::{ErrorKind, Segments};
    let (_d, db) = fresh();
    super::ingest(
        &db,
        &[
            r#"{"source":"crm","identifiers":{"email":"a@x.com"},"events":[{"type":"x","at":"2001-01-01T00:00:00Z"}]}"#,
        ],
    );
    let at = cidb::REFERENCE_TIME;
    let segments = Segments::new(&db).at(at);
    assert_eq!(segments.count(r#"event("x", within 200y)"#).unwrap(), 1);
    assert_eq!(segments.count(r#"event("x", within 10y)"#).unwrap(), 0);
    for (src, column) in [
        (r#"event("x", within 5900000y)"#, 19),
        (r#"event("x", within 2147500000d)"#, 19),
        (r#"ALL AND event("x",within 201y)"#, 26),
    ] {
        let Err(cidb::query::Error::Query(e)) = segments.count(src) else {
            panic!("{src}: expected an expression error")
        };
        assert!(matches!(e.kind, ErrorKind::DurationTooLong(_)), "{e}");
        assert_eq!((e.position.line, e.position.column), (1, column), "{src}");
    }
    for at in [i64::MIN, i64::MIN + 1, 0, i64::MAX] {
        let _ = Segments::new(&db)
            .at(at)
            .count(r#"event("x", within 200y)"#);
    }
}
