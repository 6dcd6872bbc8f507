//! Objections: recorded as hashed suppression entries with time and channel, without
//! erasing; listed; withdrawn.

use cidb::query::Segments;
use cidb::{Engine, Lookup};

fn suppressed(db: &Engine) -> u64 {
    Segments::new(db)
        .count("suppressed(\"objections\")")
        .unwrap_or(0)
}

#[test]
fn objections_suppress_without_erasing_and_can_be_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        r#"{"source":"crm","identifiers":{"email":"ada@example.com","phone":"+31612340000"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"crm","identifiers":{"email":"bob@example.com"},"consent":{"custom_audiences":true}}"#,
    ])
    .unwrap();
    let before = cidb::now_millis();
    let o = db
        .object(&Lookup::Phone("+31 6 12340000".into()), "call_center")
        .unwrap();
    assert_eq!(o.channel, "call_center");
    assert!(o.at >= before);
    assert_eq!(
        o.digests.len(),
        3,
        "her email and her phone in both platform forms"
    );
    assert!(o.digests.iter().all(|d| d.len() == 64));
    assert_eq!(suppressed(&db), 1);
    assert!(
        db.lookup(&Lookup::Email("ada@example.com".into()))
            .unwrap()
            .is_some(),
        "not erased"
    );

    // Someone not in the database yet objects; they arrive later and are suppressed.
    let later = db
        .object(&Lookup::Email("Carol@Example.com".into()), "web_form")
        .unwrap();
    assert_eq!(later.profile, None);
    db.ingest_json(&[r#"{"source":"shop","identifiers":{"email":"carol@example.com"}}"#])
        .unwrap();
    assert_eq!(suppressed(&db), 2);

    // A second objection by the same person: withdrawing one keeps her suppressed.
    let again = db
        .object(&Lookup::Email("ada@example.com".into()), "email")
        .unwrap();
    assert_eq!(db.objections().unwrap().len(), 3);
    assert!(db.withdraw_objection(o.id).unwrap());
    assert_eq!(suppressed(&db), 2, "still covered by the other objection");
    assert!(db.withdraw_objection(again.id).unwrap());
    assert_eq!(suppressed(&db), 1, "only Carol now");
    let lists = db.suppression_lists();
    assert_eq!((lists[0].entries, lists[0].emails), (1, 1), "{lists:?}");
    assert!(!db.withdraw_objection(again.id).unwrap());
    let actions: Vec<String> = db
        .audit_log(None, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "object",
            "object",
            "object",
            "withdraw_objection",
            "withdraw_objection"
        ]
    );
    // Survives a reopen.
    drop(db);
    let db = Engine::open(dir.path()).unwrap();
    assert_eq!(db.objections().unwrap().len(), 1);
    assert_eq!(suppressed(&db), 1);
}
