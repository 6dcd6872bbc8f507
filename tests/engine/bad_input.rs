//! Bad input: reported with line numbers and reasons; good lines still land.

use super::{assert_clean, by_email, fresh};
use cidb::{ImportOptions, Lookup};

#[test]
fn bad_json_lines_are_reported_while_good_lines_land() {
    let (_d, db) = fresh();
    let file = [
        r#"{"source":"crm","identifiers":{"email":"ok1@x.com"}}"#,
        r#"{"source":"crm","identifiers":{"email":"#,
        r#"{"source":"crm","identifiers":{"email":"not-an-email"}}"#,
        "",
        r#"{"source":"crm","identifiers":{"email":"ok2@x.com"},"events":[{"type":"buy"}]}"#,
        r#"{"source":"crm","identifiers":{"email":"ok3@x.com"},"attributes":{"age":"x","score":{"a":1}}}"#,
        r#"[1,2,3]"#,
        r#"{"source":"crm","identifiers":{"email":"ok4@x.com","phone":"12"},"attributes":{"country":"NL"}}"#,
    ]
    .join("\n");
    let report = db
        .import_jsonl(file.as_bytes(), &ImportOptions::default(), &mut |_| {})
        .unwrap();
    let lines: Vec<(u64, Option<&str>)> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.field.as_deref()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (2, None),
            (3, Some("identifiers")),
            (5, Some("events[0].at")),
            (6, Some("attributes.score")),
            (7, Some("record")),
        ]
    );
    assert!(
        report.rejected[0]
            .reason
            .starts_with("invalid JSON at column"),
        "{:?}",
        report.rejected[0]
    );
    assert_eq!(report.accepted, 2);
    assert_eq!(report.warnings[0].line, 8);
    assert_eq!(report.warnings[0].field, "identifiers.phone");
    by_email(&db, "ok1@x.com");
    by_email(&db, "ok4@x.com");
    assert!(db
        .lookup(&Lookup::Email("ok2@x.com".into()))
        .unwrap()
        .is_none());
    assert_clean(&db);
}

#[test]
fn invalid_utf8_and_overlong_lines_are_rejected_by_line() {
    let (_d, db) = fresh();
    let mut file = b"{\"source\":\"crm\",\"identifiers\":{\"email\":\"a@x.com\"}}\n".to_vec();
    file.extend_from_slice(b"{\"source\":\"crm\xff\"}\n");
    file.extend(std::iter::repeat_n(b' ', cidb::MAX_LINE_BYTES + 10));
    file.extend_from_slice(b"\n{\"source\":\"crm\",\"identifiers\":{\"email\":\"b@x.com\"}}\n");
    let report = db
        .import_jsonl(&file[..], &ImportOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(
        report.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(report.rejected[0].reason.contains("UTF-8"));
    assert!(report.rejected[1].reason.contains("longer than"));
}

#[test]
fn csv_import_maps_columns_and_reports_bad_rows() {
    let (_d, db) = fresh();
    let csv = "E-mail,phone,country,interests,consent.marketing,lifetime_value\n\
               Ann@X.com,06 12345678,NL,running|travel,yes,10.5\n\
               nobody,,NL,,,\n\
               bob@x.com,,DE,,no,\n";
    let options = ImportOptions::default()
        .with_source("crm")
        .with_csv_rename("E-mail", "email");
    let report = db
        .import_csv(csv.as_bytes(), &options, &mut |_| {})
        .unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 3);
    let ann = by_email(&db, "ann@x.com").profile;
    assert_eq!(ann.identifiers.len(), 2);
    assert_eq!(ann.consent_granted("marketing"), Some(true));
    assert!(
        matches!(&ann.attributes["lifetime_value"], cidb::Attribute::Scalar(s) if s.value == cidb::Value::Number(10.5))
    );
    let err = db
        .import_csv("zip\n1\n".as_bytes(), &options, &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("no identifier column"), "{err}");
}

#[test]
fn oversized_batches_are_refused_whole() {
    let (_d, db) = fresh();
    let records =
        vec![r#"{"source":"crm","identifiers":{"email":"a@x.com"}}"#; cidb::MAX_BATCH_RECORDS + 1];
    let err = db.ingest_json(&records).unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"));
    assert_eq!(db.stats().profiles, 0);
}

/// An import whose batches are cut small, with a batch of rejected lines only between
/// batches that merge across it: the overlapped import reports every batch in order,
/// and a later batch still resolves against the earlier ones.
#[test]
fn a_batch_of_rejected_lines_between_merging_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = cidb::Engine::open_with(
        dir.path(),
        cidb::Config::default().with_import_batch_records(2),
    )
    .unwrap();
    let file = [
        r#"{"source":"crm","identifiers":{"email":"a@x.com","crm_id":"A"},"events":[{"type":"buy","at":"2026-01-01T00:00:00Z"}]}"#,
        r#"{"source":"crm","identifiers":{"email":"b@x.com"},"events":[{"type":"buy","at":"2026-01-02T00:00:00Z"}]}"#,
        r#"{"source":"crm""#,
        r#"[]"#,
        r#"{"source":"app","identifiers":{"email":"b@x.com","device_id":"D"}}"#,
        r#"{"source":"app","identifiers":{"device_id":"D","crm_id":"A"}}"#,
    ]
    .join("\n");
    let mut committed = Vec::new();
    let report = db
        .import_jsonl(file.as_bytes(), &ImportOptions::default(), &mut |p| {
            committed.push(p.records)
        })
        .unwrap();
    assert_eq!(
        committed,
        vec![2, 4, 6],
        "one progress call per batch, in order"
    );
    assert_eq!(report.records, 6);
    assert_eq!(report.accepted, 4);
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 4]);
    assert_eq!(report.merged_profiles, 1);
    let a = by_email(&db, "a@x.com");
    assert_eq!(a.profile.id, by_email(&db, "b@x.com").profile.id);
    let events: usize = a.events.iter().map(|c| c.events.len()).sum();
    assert_eq!(events, 2, "both people's events follow the merge");
    assert_eq!(a.merges.len(), 1);
    assert_eq!(db.stats().profiles, 1);
    assert_clean(&db);
}
