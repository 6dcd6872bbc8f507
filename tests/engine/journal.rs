//! Events-only records (one known identifier and events, as a live stream sends them)
//! store their chunks in the event journal rather than under a key each. Their events must
//! read, merge, erase and survive a reopen exactly like any other record's.

use super::{assert_clean, by_email, ingest};
use cidb::{Config, Engine, ForgetOptions, Lookup};

fn events_only(email: &str, day: u32, kinds: &[&str]) -> String {
    let events: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            format!(r#"{{"type":"{kind}","at":"2026-10-{day:02}T10:0{i}:00Z","value":{i}}}"#)
        })
        .collect();
    format!(
        r#"{{"source":"web","observed_at":"2026-10-{day:02}T11:00:00Z","identifiers":{{"email":"{email}"}},"events":[{}]}}"#,
        events.join(",")
    )
}

/// (records, events, event types in order) of the profile holding `email`.
fn held(db: &Engine, email: &str) -> (u64, u64, Vec<String>) {
    let view = by_email(db, email);
    let kinds = view
        .events
        .iter()
        .flat_map(|c| c.events.iter().map(|e| e.kind.to_string()))
        .collect();
    let stored: u64 = view.events.iter().map(|c| c.events.len() as u64).sum();
    assert_eq!(
        stored, view.profile.events,
        "{email}: stored vs counted events"
    );
    (view.profile.records, view.profile.events, kinds)
}

/// Batches of two or more events-only records write to the journal.
fn open(dir: &std::path::Path) -> Engine {
    Engine::open_with(dir, Config::default().with_journal_min_chunks(2)).unwrap()
}

#[test]
fn journaled_events_read_merge_erase_and_reopen_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    ingest(
        &db,
        &[
            r#"{"source":"crm","identifiers":{"email":"a@x.com","crm_id":"C1"},"attributes":{"country":"NL"}}"#,
            r#"{"source":"web_form","identifiers":{"email":"b@x.com","phone":"+14155552671"}}"#,
            r#"{"source":"crm","identifiers":{"email":"c@x.com"},"attributes":{"country":"DE"}}"#,
        ],
    );
    // Three batches of events-only records, each touching every person.
    for day in 1..=3 {
        let batch: Vec<String> = ["a@x.com", "b@x.com", "c@x.com"]
            .iter()
            .map(|e| events_only(e, day, &["page_view", "email_open"][..day as usize % 2 + 1]))
            .collect();
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        let report = ingest(&db, &refs);
        assert_eq!((report.new_profiles, report.updated_profiles), (0, 3));
    }
    let a = held(&db, "a@x.com");
    assert_eq!((a.0, a.1), (4, 5));
    assert_eq!(
        a.2,
        [
            "page_view",
            "email_open",
            "page_view",
            "page_view",
            "email_open"
        ]
    );
    let b = held(&db, "b@x.com");
    assert_clean(&db);
    db.close().unwrap();

    let db = open(dir.path());
    assert_eq!(held(&db, "a@x.com"), a, "after a reopen");
    assert_clean(&db);
    // A bridging record merges a and b: the survivor holds both journals' events.
    let r = ingest(
        &db,
        &[r#"{"source":"shop","identifiers":{"crm_id":"C1","phone":"+1 415 555 2671"}}"#],
    );
    assert_eq!(r.merged_profiles, 1, "{r:?}");
    let merged = held(&db, "b@x.com");
    assert_eq!(merged, held(&db, "a@x.com"));
    assert_eq!(merged.0, a.0 + b.0 + 1);
    assert_eq!(merged.1, a.1 + b.1);
    assert_clean(&db);
    // More events after the merge go to the survivor, then c is erased.
    ingest(&db, &[&events_only("a@x.com", 9, &["purchase"])]);
    assert_eq!(held(&db, "b@x.com").1, merged.1 + 1);
    db.forget(&Lookup::Email("c@x.com".into()), &ForgetOptions::default())
        .unwrap();
    assert!(db
        .lookup(&Lookup::Email("c@x.com".into()))
        .unwrap()
        .is_none());
    assert_clean(&db);
    let survivor = held(&db, "a@x.com");
    db.close().unwrap();

    let db = open(dir.path());
    assert_eq!(held(&db, "a@x.com"), survivor, "after a second reopen");
    assert!(db
        .lookup(&Lookup::Email("c@x.com".into()))
        .unwrap()
        .is_none());
    assert_clean(&db);
    // A compaction moves the journal's chunks under their own keys.
    db.close().unwrap();
    Engine::compact(dir.path()).unwrap();
    let db = open(dir.path());
    assert_eq!(held(&db, "a@x.com"), survivor, "after a compaction");
    assert_clean(&db);
}
