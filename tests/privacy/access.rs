//! Access requests are complete, and the audit trail records who did what.

use cidb::audit::with_actor;
use cidb::export::{ExportOptions, Format};
use cidb::query::Segments;
use cidb::{Engine, ForgetOptions, Lookup};

const RECORDS: [&str; 3] = [
    r#"{"source":"crm","observed_at":"2026-01-01T00:00:00Z","identifiers":{"email":"ada@example.com","crm_id":"C-9"},"attributes":{"first_name":"Ada","country":"NL","interests":["chess"]},"consent":{"custom_audiences":true,"marketing":true}}"#,
    r#"{"source":"shop","observed_at":"2026-03-01T00:00:00Z","identifiers":{"crm_id":"C-9","phone":"+31612340000"},"attributes":{"city":"Utrecht","interests":["cycling"]},"consent":{"marketing":false},"events":[{"type":"purchase","at":"2026-02-20T10:00:00Z","category":"books","value":30}]}"#,
    r#"{"source":"crm","identifiers":{"email":"other@example.com"},"attributes":{"country":"BE"},"consent":{"custom_audiences":true}}"#,
];

#[test]
fn an_access_request_holds_everything_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&RECORDS).unwrap();
    let s = Segments::new(&db);
    s.save("dutch", r#"country = "NL""#).unwrap();
    s.save("belgian", r#"country = "BE""#).unwrap();
    let mut out = Vec::new();
    s.export("dutch", None, &ExportOptions::new(Format::Hashes), &mut out)
        .unwrap();

    let report = s
        .access(&Lookup::Phone("+31612340000".into()))
        .unwrap()
        .expect("found by the phone from the second record");
    let v = serde_json::to_value(&report).unwrap();
    let p = &v["profile"];
    let ids: Vec<(&str, &str, &str)> = p["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"]["kind"].as_str().unwrap(),
                i["id"]["value"].as_str().unwrap(),
                i["provenance"]["source"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [
        ("email", "ada@example.com", "crm"),
        ("crm_id", "C-9", "crm"),
        ("phone", "+31612340000", "shop"),
    ] {
        assert!(ids.contains(&want), "{want:?} in {ids:?}");
    }
    assert_eq!(
        p["attributes"]["first_name"]["Scalar"]["provenance"]["source"],
        "crm"
    );
    assert_eq!(
        p["attributes"]["city"]["Scalar"]["provenance"]["source"],
        "shop"
    );
    let interests: Vec<&str> = p["attributes"]["interests"]["List"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(interests.len(), 2, "{interests:?}");
    // Consent history: every change, with its source and time, in order.
    let marketing = p["consent"]["marketing"].as_array().unwrap();
    assert_eq!(marketing.len(), 2);
    assert_eq!(
        (
            marketing[0]["granted"].as_bool(),
            marketing[1]["granted"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(marketing[1]["provenance"]["source"], "shop");
    assert_eq!(v["events"][0]["events"][0]["category"], "books");
    assert_eq!(report.segments, vec!["dutch".to_string()]);
    assert_eq!(report.exports.len(), 1);
    assert_eq!(report.exports[0].action, "export");
    assert_eq!(report.exports[0].details["format"], "hashes");
    assert!(s
        .access(&Lookup::Email("nobody@example.com".into()))
        .unwrap()
        .is_none());
}

#[test]
fn the_audit_trail_records_who_did_what() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&RECORDS).unwrap();
    with_actor("key:abc123", || {
        db.suppress_import("optout", &b"other@example.com\n"[..], None)
            .unwrap();
        let mut out = Vec::new();
        Segments::new(&db)
            .export("ALL", None, &ExportOptions::new(Format::MetaCsv), &mut out)
            .unwrap();
    });
    let pid = db
        .lookup(&Lookup::Email("ada@example.com".into()))
        .unwrap()
        .unwrap()
        .profile
        .id;
    assert_eq!(db.exports_including(pid).unwrap().len(), 1);
    db.forget(&Lookup::Id(pid), &ForgetOptions::default())
        .unwrap();
    db.suppress_delete("optout").unwrap();

    let log = db.audit_log(None, 100).unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("key:abc123", "suppress_import"),
            ("key:abc123", "export"),
            ("embedded", "forget"),
            ("embedded", "suppress_delete"),
        ]
    );
    // The erasure's own suppression-list change is in its entry.
    assert_eq!(log[2].details["suppression_list"], "erased");
    assert_eq!(
        log[2].details["suppressed"], 3,
        "her email, and her phone in both forms"
    );
    assert_eq!(
        log[1].details["profiles"], 1,
        "only Ada had consent and no objection"
    );
    assert!(log
        .windows(2)
        .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at));
    assert!(
        db.exports_including(pid).unwrap().is_empty(),
        "erasure removes the export bit"
    );
    assert_eq!(db.audit_log(Some(log[1].seq), 10).unwrap().len(), 2);
    // Newest first: the same entries reversed, pageable backwards.
    let newest: Vec<u64> = db
        .audit_log_newest_first(None, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    let oldest: Vec<u64> = log.iter().rev().map(|e| e.seq).collect();
    assert_eq!(newest, oldest);
    let before_last = db.audit_log_newest_first(Some(newest[0]), 1).unwrap();
    assert_eq!(before_last.len(), 1);
    assert_eq!(before_last[0].seq, newest[1]);
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("ada@example.com") && !text.contains("other@example.com"));
}
