//! The real `cidb` binary against a real database in a temp dir: the JSON contracts of
//! import, stats, query, segment and bench, and exit codes.

use serde_json::Value;

mod common;

use common::{cidb, json_ok};

const RECORDS: &str = r#"{"source":"crm","identifiers":{"email":"a@example.com"},"attributes":{"country":"NL","birth_date":"1990-04-12","interests":["running"]},"consent":{"marketing":true}}
{"source":"shop","identifiers":{"email":"b@example.com"},"attributes":{"country":"DE","birth_date":"2001-01-01"},"events":[{"type":"purchase","at":"2026-10-01T10:00:00Z","category":"jeans","value":80}]}
{"source":"shop","identifiers":{"email":"c@example.com"},"attributes":{"country":"NL"}}
"#;

fn database() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.jsonl");
    std::fs::write(&file, RECORDS).unwrap();
    let data = dir.path().join("data");
    let report = json_ok(&data, &["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(report["new_profiles"], 3);
    dir
}

#[test]
fn query_counts_samples_breaks_down_and_explains() {
    let dir = database();
    let data = dir.path().join("data");
    let at = ["--at", "2026-11-01T00:00:00Z", "--json"];
    let q = |extra: &[&str]| {
        let mut args = vec!["query"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&at);
        json_ok(&data, &args)
    };
    assert_eq!(q(&["country = \"NL\"", "--count"])["count"], 2);
    assert_eq!(q(&["country = \"NL\""])["count"], 2);
    assert_eq!(q(&["age >= 30"])["count"], 1);
    let sample = q(&["ALL", "--sample", "2", "--seed", "5"]);
    assert_eq!(sample["sample"].as_array().unwrap().len(), 2);
    assert_eq!(sample, q(&["ALL", "--sample", "2", "--seed", "5"]));
    let b = q(&["ALL", "--breakdown", "country"]);
    assert_eq!(b["values"][0]["value"], "nl");
    assert_eq!(b["values"][0]["count"], 2);
    let e = q(&[
        "country = \"NL\" AND NOT consent(\"marketing\")",
        "--explain",
    ]);
    assert_eq!(e["count"], 1);
    assert!(e["plan"]["children"].as_array().unwrap().len() >= 2);
    let page = q(&["ALL", "--ids", "--limit", "2"]);
    assert_eq!(page["ids"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_u64().unwrap().to_string();
    let rest = q(&["ALL", "--ids", "--limit", "2", "--after", &after]);
    assert_eq!(rest["ids"].as_array().unwrap().len(), 1);
    assert_eq!(
        json_ok(&data, &["stats", "--json"])["profiles"],
        3,
        "stats reports live profiles"
    );
}

#[test]
fn a_bad_expression_exits_non_zero_with_its_position() {
    let dir = database();
    let data = dir.path().join("data");
    let out = cidb(&data, &["query", "country = \"NL\" AND cuntry = 1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown field `cuntry` at line 1, column 20"),
        "{stderr}"
    );
    assert!(stderr.contains("^^^^^^"), "{stderr}");
    let out = cidb(&data, &["query", "country = (", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "invalid_expression");
    assert_eq!(err["error"]["position"]["column"], 11);
    assert!(out.stdout.is_empty());
}

#[test]
fn saved_segments_from_the_command_line() {
    let dir = database();
    let data = dir.path().join("data");
    json_ok(
        &data,
        &["segment", "save", "nl", "country = \"NL\"", "--json"],
    );
    json_ok(
        &data,
        &[
            "segment",
            "save",
            "nl_buyers",
            "segment(\"nl\") OR event(\"purchase\")",
            "--json",
        ],
    );
    let list = json_ok(&data, &["segment", "list", "--json"]);
    assert_eq!(list["segments"].as_array().unwrap().len(), 2);
    let shown = json_ok(&data, &["segment", "show", "nl_buyers", "--json"]);
    assert_eq!(shown["count"], 3);
    assert_eq!(shown["expr"], "segment(\"nl\") OR event(\"purchase\")");
    let refused = cidb(&data, &["segment", "delete", "nl"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("used by nl_buyers"));
    let cycle = cidb(&data, &["segment", "save", "nl", "segment(\"nl_buyers\")"]);
    assert_eq!(cycle.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cycle.stderr).contains("cycle"));
    json_ok(&data, &["segment", "delete", "nl_buyers", "--json"]);
    json_ok(&data, &["segment", "delete", "nl", "--json"]);
    assert_eq!(
        json_ok(&data, &["segment", "list", "--json"])["segments"],
        serde_json::json!([])
    );
}

#[test]
fn bench_reports_percentiles_per_query() {
    let dir = database();
    let data = dir.path().join("data");
    let queries = dir.path().join("queries.json");
    std::fs::write(
        &queries,
        r#"{"queries": [{"name": "nl", "expr": "country = \"NL\""}, {"name": "buyers", "expr": "segment(\"b\")"}],
            "segments": {"b": "event(\"purchase\", within 365d)"}}"#,
    )
    .unwrap();
    let out = json_ok(
        &data,
        &[
            "bench",
            "--queries",
            queries.to_str().unwrap(),
            "--runs",
            "5",
            "--at",
            "2026-11-01T00:00:00Z",
            "--json",
        ],
    );
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["name"], "nl");
    assert_eq!(results[0]["count"], 2);
    assert_eq!(results[1]["count"], 1);
    for r in results {
        let (min, p50, p99) = (
            r["min_us"].as_f64().unwrap(),
            r["p50_us"].as_f64().unwrap(),
            r["p99_us"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= p50 && p50 <= p99, "{r}");
    }
    // An array of queries works too; a bad one names the query and exits 2.
    std::fs::write(&queries, r#"[{"name": "bad", "expr": "country >"}]"#).unwrap();
    let out = cidb(&data, &["bench", "--queries", queries.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn forget_erases_and_reports() {
    let dir = database();
    let data = dir.path().join("data");
    let r = json_ok(&data, &["forget", "--email", "A@Example.com", "--json"]);
    assert_eq!(r["found"], true);
    assert_eq!(r["suppression_list"], "erased");
    assert!(!cidb(&data, &["lookup", "--email", "a@example.com"])
        .status
        .success());
    assert_eq!(json_ok(&data, &["stats", "--json"])["profiles"], 2);
    let again = cidb(&data, &["forget", "--email", "a@example.com"]);
    assert!(!again.status.success(), "nobody left to forget");
    assert!(String::from_utf8_lossy(&again.stderr).contains("no profile found"));
}

#[test]
fn object_access_and_audit_commands() {
    let dir = database();
    let data = dir.path().join("data");
    let o = json_ok(
        &data,
        &[
            "object",
            "--email",
            "b@example.com",
            "--channel",
            "email",
            "--json",
        ],
    );
    assert_eq!(o["channel"], "email");
    let listed = json_ok(&data, &["object", "--list", "--json"]);
    assert_eq!(listed["objections"].as_array().unwrap().len(), 1);
    let access = json_ok(
        &data,
        &[
            "access",
            "--email",
            "a@example.com",
            "--consent-at",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert_eq!(
        access["profile"]["consent"]["marketing"][0]["granted"],
        true
    );
    assert!(access["consent_at"]["purposes"].is_object());
    let id = o["id"].as_u64().unwrap().to_string();
    json_ok(&data, &["object", "--withdraw", &id, "--json"]);
    let audit = json_ok(&data, &["audit", "--json"]);
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["actor"], "cli");
    assert_eq!(entries[1]["action"], "withdraw_objection");
}

/// `cidb compact` (and `import --compact`): the JSON report's fields, the same answers
/// afterwards, and a clear error while the database is open elsewhere.
#[test]
fn compact_keeps_every_answer_and_reports_sizes() {
    let dir = database();
    let data = dir.path().join("data");
    let file = dir.path().join("again.jsonl");
    std::fs::write(&file, RECORDS.replace("\"crm\"", "\"web\"")).unwrap();
    json_ok(
        &data,
        &["import", file.to_str().unwrap(), "--compact", "--json"],
    );
    let count = |expr: &str| json_ok(&data, &["query", expr, "--json"])["count"].clone();
    let before = (count("country = \"NL\""), count("source(\"web\")"));
    assert_eq!(before.1, 1);
    let report = json_ok(&data, &["compact", "--json"]);
    for field in ["keys", "live_bytes", "bytes_before", "bytes_after"] {
        assert!(report[field].as_u64().unwrap() > 0, "{field}: {report}");
    }
    assert!(report["live_bytes"].as_u64() < report["bytes_after"].as_u64());
    assert_eq!(
        (count("country = \"NL\""), count("source(\"web\")")),
        before
    );
    assert!(cidb(&data, &["check"]).status.success());
    assert!(!data.join("sled.compact").exists() && !data.join("sled.old").exists());

    let nowhere = dir.path().join("typo");
    let out = cidb(&nowhere, &["compact"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no database here"), "{stderr}");
    assert!(!nowhere.exists(), "compact creates no database");

    let _open = engine::Engine::open(&data).unwrap();
    let out = cidb(&data, &["compact"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("locked"), "{stderr}");
}
