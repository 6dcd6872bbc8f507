//! Suppression lists: import (raw and hashed), `suppressed()` in segments, people
//! ingested after the list, merges, persistence, deletion.

use super::{export, identifier_hashes, person};
use cidb::export::{hash::sha256_hex, ExportOptions, Format};
use cidb::query::Segments;
use cidb::Engine;

fn count(db: &Engine, expr: &str) -> u64 {
    Segments::new(db).count(expr).unwrap()
}

#[test]
fn lists_suppress_now_later_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Engine::open(dir.path()).unwrap();
        db.ingest_json(&[
            person(1, "NL", Some(true), true),
            person(2, "NL", Some(true), true),
        ])
        .unwrap();
        let list = format!(
            "person.1@EXAMPLE.com\n{}\nnot a value\n\nstranger@example.org\n",
            sha256_hex("31610000003") // person 3's phone in Meta's digits form
        );
        let report = db
            .suppress_import("optouts", list.as_bytes(), None)
            .unwrap();
        assert_eq!(
            (report.added, report.invalid_count, report.blank),
            (3, 1, 1)
        );
        assert_eq!(report.invalid[0].0, 3, "the invalid line is named");
        assert_eq!(report.profiles, 1);
        assert_eq!(count(&db, "suppressed()"), 1);
        assert_eq!(count(&db, r#"suppressed("optouts")"#), 1);
        // Person 3 arrives after the list: suppressed at once, through the phone hash.
        db.ingest_json(&[person(3, "NL", Some(true), true)])
            .unwrap();
        assert_eq!(count(&db, "suppressed()"), 2);
        let (report, out) = export(&db, "ALL", &ExportOptions::new(Format::Hashes));
        assert_eq!(report.removed_by_suppression, 2);
        let hashes = identifier_hashes(Format::Hashes, &out);
        assert!(!hashes.contains(&sha256_hex("person.1@example.com")));
        assert!(hashes.contains(&sha256_hex("person.2@example.com")));
        assert_eq!(hashes.len(), 2, "person 2's email and phone only");
    }
    let db = Engine::open(dir.path()).unwrap();
    assert_eq!(count(&db, "suppressed()"), 2, "lists survive a reopen");
    let lists = db.suppression_lists();
    assert_eq!(lists.len(), 1);
    assert_eq!(
        (lists[0].entries, lists[0].emails, lists[0].hashed),
        (3, 2, 1)
    );
    assert!(db.suppress_delete("optouts").unwrap());
    assert!(!db.suppress_delete("optouts").unwrap());
    assert_eq!(count(&db, "suppressed()"), 0);
    assert!(Segments::new(&db)
        .count(r#"suppressed("optouts")"#)
        .is_err());
}

#[test]
fn a_merge_into_a_suppressed_identity_suppresses_the_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.suppress_import("optout", &b"optout@example.com\n"[..], None)
        .unwrap();
    db.ingest_json(&[
        r#"{"source":"crm","identifiers":{"crm_id":"C1"},"consent":{"custom_audiences":true}}"#,
    ])
    .unwrap();
    assert_eq!(count(&db, "suppressed()"), 0);
    db.ingest_json(&[
        r#"{"source":"web","identifiers":{"crm_id":"C1","email":"OptOut@example.com"}}"#,
    ])
    .unwrap();
    assert_eq!(
        count(&db, "suppressed() AND consent(\"custom_audiences\")"),
        1
    );
    let (report, _) = export(&db, "ALL", &ExportOptions::new(Format::MetaApi));
    assert_eq!((report.removed_by_suppression, report.profiles), (1, 0));
}

#[test]
fn gmail_spellings_are_one_person_for_suppression() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[r#"{"source":"crm","identifiers":{"email":"jane.doe+shop@gmail.com"},"consent":{"custom_audiences":true}}"#])
        .unwrap();
    // A list hashed in Google's form (dots and +suffix removed) still matches.
    let list = format!("{}\n", sha256_hex("janedoe@gmail.com"));
    assert_eq!(
        db.suppress_import("g", list.as_bytes(), None)
            .unwrap()
            .profiles,
        1
    );
}

#[test]
fn bad_list_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    let err = db
        .suppress_import("Opt Out", &b"x@y.com\n"[..], None)
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid suppression list name"),
        "{err}"
    );
}

/// The lists erasures and objections fill cannot be deleted: that would bring erased and
/// objecting people back into audiences.
#[test]
fn reserved_lists_cannot_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[person(1, "NL", Some(true), true)])
        .unwrap();
    db.forget(&cidb::Lookup::Id(0), &Default::default())
        .unwrap();
    db.object(&cidb::Lookup::Email("x@example.com".into()), "email")
        .unwrap();
    for name in cidb::RESERVED_LISTS {
        match db.suppress_delete(name) {
            Err(cidb::Error::Conflict(message)) => assert!(message.contains(name), "{message}"),
            other => panic!("deleting {name}: {other:?}"),
        }
    }
    assert_eq!(
        db.suppression_lists().len(),
        2,
        "both lists are still there"
    );
}
