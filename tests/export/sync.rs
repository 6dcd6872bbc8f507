//! Incremental sync: adds and removes after joins, leaves, consent withdrawal,
//! suppression and merges; an unacknowledged sync reruns identically; additive-only
//! emits no removes.

use super::{identifier_hashes, person, person_hashes, set};
use cidb::export::{hash::sha256_hex, Format, SyncReport};
use cidb::query::{DestinationSpec, Segments};
use cidb::Engine;
use std::collections::BTreeSet;
use std::path::Path;

fn create(db: &Engine, name: &str, format: Format, additive_only: bool) {
    Segments::new(db)
        .create_destination(&DestinationSpec {
            name: name.into(),
            format,
            platform: None,
            segment: r#"country = "NL""#.into(),
            policy: None,
            additive_only,
            push: None,
        })
        .unwrap();
}

/// Syncs into a fresh directory; returns the report and the adds/removes hashes.
fn sync(db: &Engine, name: &str, out: &Path) -> (SyncReport, BTreeSet<String>, BTreeSet<String>) {
    let report = Segments::new(db).sync(name, out).unwrap();
    let format = db.destination(name).unwrap().unwrap().format;
    let read = |p: &Path| {
        set(identifier_hashes(
            format,
            &std::fs::read_to_string(p).unwrap(),
        ))
    };
    let adds = read(&report.adds_file);
    let removes = read(&report.removes_file);
    (report, adds, removes)
}

#[test]
fn adds_and_removes_follow_every_kind_of_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(
        &(0..5)
            .map(|i| person(i, "NL", Some(true), true))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    create(&db, "meta", Format::MetaApi, false);
    let (first, adds, removes) = sync(&db, "meta", &out.path().join("1"));
    assert_eq!(first.adds, 5);
    let audited = db.audit_log(None, 100).unwrap();
    let entry = audited.iter().rfind(|e| e.action == "sync").unwrap();
    assert_eq!(
        (&entry.details["policy"], &entry.details["segment"]),
        (
            &serde_json::json!(cidb::query::DEFAULT_POLICY),
            &serde_json::json!(r#"country = "NL""#)
        ),
        "the audit trail records what a sync sent by"
    );
    assert_eq!(
        adds,
        set((0..5).flat_map(|i| person_hashes(i, true, false)))
    );
    assert!(removes.is_empty());
    db.sync_ack("meta").unwrap();
    assert_eq!(db.destination_sent("meta").unwrap().len(), 5);

    // 0 moves away (leaves the segment), 1 withdraws consent, 2 objects (suppressed),
    // 5 joins; 3 merges with a new record that brings a second email.
    db.ingest_json(&[
        r#"{"source":"crm","identifiers":{"email":"person.0@example.com"},"attributes":{"country":"BE"}}"#,
        r#"{"source":"crm","identifiers":{"email":"person.1@example.com"},"consent":{"custom_audiences":false}}"#,
        &person(5, "NL", Some(true), false),
        r#"{"source":"app","identifiers":{"email":"person.3@example.com","device_id":"d3"}}"#,
        r#"{"source":"app","identifiers":{"device_id":"d3","email":"second.3@example.com"},"consent":{"custom_audiences":true}}"#,
    ])
    .unwrap();
    db.suppress_import("optout", &b"person.2@example.com\n"[..], None)
        .unwrap();

    // A preview counts the same and writes nothing: no files, no pending state, no audit.
    let audit_before = db.audit_log(None, 1000).unwrap().len();
    let preview = Segments::new(&db).sync_preview("meta").unwrap();
    assert_eq!((preview.adds, preview.removes), (2, 6));
    assert_eq!(db.audit_log(None, 1000).unwrap().len(), audit_before);
    assert!(
        db.sync_ack("meta").is_err(),
        "a preview leaves nothing pending"
    );

    let (second, adds, removes) = sync(&db, "meta", &out.path().join("2"));
    let gone: BTreeSet<String> = [0, 1, 2]
        .iter()
        .flat_map(|&i| person_hashes(i, true, false))
        .collect();
    assert_eq!(removes, gone);
    assert!(adds.contains(&sha256_hex("person.5@example.com")));
    assert!(
        adds.contains(&sha256_hex("second.3@example.com")),
        "a new email of a sent person is added"
    );
    assert!(
        !adds.contains(&sha256_hex("person.4@example.com")),
        "unchanged people are not re-sent"
    );
    assert_eq!(second.adds, 2);
    assert_eq!(second.removes, 6);

    // Not acknowledged: a rerun writes the same bytes.
    let (_, _, _) = sync(&db, "meta", &out.path().join("3"));
    for file in ["adds.jsonl", "removes.jsonl"] {
        assert_eq!(
            std::fs::read(out.path().join("2").join(file)).unwrap(),
            std::fs::read(out.path().join("3").join(file)).unwrap(),
            "{file}"
        );
    }
    db.sync_ack("meta").unwrap();
    let (third, adds, removes) = sync(&db, "meta", &out.path().join("4"));
    assert!(adds.is_empty() && removes.is_empty(), "{third:?}");
    assert!(db.sync_ack("meta").is_ok());
    assert!(db.sync_ack("meta").is_err(), "nothing pending");
}

#[test]
fn a_merge_of_two_sent_people_removes_nothing_they_still_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        person(0, "NL", Some(true), false),
        person(1, "NL", Some(true), false),
    ])
    .unwrap();
    create(&db, "google", Format::GoogleApi, false);
    sync(&db, "google", &out.path().join("1"));
    db.sync_ack("google").unwrap();
    db.ingest_json(&[r#"{"source":"crm","identifiers":{"email":["person.0@example.com","person.1@example.com"]}}"#])
        .unwrap();
    let (_, _, removes) = sync(&db, "google", &out.path().join("2"));
    assert!(removes.is_empty(), "{removes:?}");
}

#[test]
fn additive_only_never_removes() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        person(0, "NL", Some(true), true),
        person(1, "NL", Some(true), true),
    ])
    .unwrap();
    create(&db, "adds", Format::MetaCsv, true);
    sync(&db, "adds", &out.path().join("1"));
    db.sync_ack("adds").unwrap();
    db.ingest_json(&[r#"{"source":"crm","identifiers":{"email":"person.0@example.com"},"consent":{"custom_audiences":false}}"#])
        .unwrap();
    let (report, adds, removes) = sync(&db, "adds", &out.path().join("2"));
    assert_eq!((report.removes, report.remove_rows), (0, 0));
    assert!(adds.is_empty() && removes.is_empty());
    db.sync_ack("adds").unwrap();
    assert_eq!(
        db.destination_sent("adds").unwrap().len(),
        2,
        "who was sent stays sent"
    );
    assert!(db.destination_delete("adds").unwrap());
    assert!(db.destination("adds").unwrap().is_none());
}

/// A push acknowledges exactly the sync it sent: a sync written since (or an erasure
/// that rewrote the pending state) keeps its diff pending, and only the current one is
/// acknowledged.
#[test]
fn an_exact_acknowledgement_refuses_a_pending_sync_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        person(0, "NL", Some(true), true),
        person(1, "NL", Some(true), true),
    ])
    .unwrap();
    create(&db, "exact", Format::MetaApi, false);
    let (sent, _, _) = sync(&db, "exact", &out.path().join("1"));
    assert_eq!(sent.pending_digest.len(), 64);
    // Another sync rewrites the pending state in the meantime (a newcomer joined).
    db.ingest_json(&[person(2, "NL", Some(true), true)])
        .unwrap();
    let (again, adds, _) = sync(&db, "exact", &out.path().join("2"));
    assert_ne!(again.pending_digest, sent.pending_digest);
    assert!(!adds.is_empty());
    let err = db
        .sync_ack_exactly("exact", &sent.pending_digest)
        .unwrap_err()
        .to_string();
    assert!(err.contains("changed after it was sent"), "{err}");
    assert!(
        db.destination_sent("exact").unwrap().is_empty(),
        "nothing acknowledged"
    );
    // An erasure rewrites the pending state too.
    db.forget(
        &cidb::Lookup::Email("person.2@example.com".into()),
        &cidb::ForgetOptions::default(),
    )
    .unwrap();
    assert!(db.sync_ack_exactly("exact", &again.pending_digest).is_err());
    let (current, _, _) = sync(&db, "exact", &out.path().join("3"));
    let ack = db
        .sync_ack_exactly("exact", &current.pending_digest)
        .unwrap();
    assert_eq!(ack.profiles, 2);
    assert_eq!(db.destination_sent("exact").unwrap().len(), 2);
}

/// Six threads sync, acknowledge and erase on one destination at once (the issue saw
/// checksum mismatches, missing files and a corrupt state that outlived a restart):
/// each operation either works or says the destination is busy, the state always
/// reads, and nobody erased stays in it.
#[test]
fn concurrent_syncs_acks_and_erasures_never_corrupt_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(
        &(0..60)
            .map(|i| person(i, "NL", Some(true), true))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    create(&db, "shared", Format::GoogleApi, false);
    let busy = std::sync::atomic::AtomicU64::new(0);
    let done = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let (db, busy, done) = (&db, &busy, &done);
            s.spawn(move || {
                let out = tempfile::tempdir().unwrap();
                for round in 0..15u64 {
                    let result = match (t + round) % 3 {
                        0 => Segments::new(db).sync("shared", out.path()).map(|_| ()),
                        1 => db.sync_ack("shared").map(|_| ()).map_err(Into::into),
                        _ => {
                            let id = t * 10 + round % 10;
                            db.forget(&cidb::Lookup::Id(id as u32), &Default::default())
                                .map(|_| ())
                                .map_err(Into::into)
                        }
                    };
                    match result {
                        Ok(()) => {
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(cidb::query::Error::Engine(cidb::Error::Busy { .. })) => {
                            busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        // Nothing pending to acknowledge is a fine answer here.
                        Err(cidb::query::Error::Engine(cidb::Error::Conflict(_))) => {}
                        Err(e) => panic!("thread {t} round {round}: {e}"),
                    }
                }
            });
        }
    });
    assert!(done.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let sent = db.destination_sent("shared").unwrap();
    let live = Segments::new(&db).evaluate("ALL").unwrap().into_bitmap();
    assert!(
        (&sent - &live).is_empty(),
        "no erased profile stays in the sent state"
    );
    let out = tempfile::tempdir().unwrap();
    Segments::new(&db).sync("shared", out.path()).unwrap();
    db.sync_ack("shared").unwrap();
    assert_eq!(
        db.destination_sent("shared").unwrap(),
        live,
        "after a clean sync"
    );
    drop(db);
    let db = Engine::open(dir.path()).unwrap();
    db.destination_sent("shared").unwrap();
    super::super::engine::assert_clean(&db);
}

/// A damaged sync state never blocks an erasure or another destination: the erasure
/// removes the unreadable file (it may hold the person's hashes), the error names the
/// file relative to the data directory, and the destination syncs again afterwards.
#[test]
fn a_corrupt_sync_state_blocks_neither_erasure_nor_other_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(
        &(0..4)
            .map(|i| person(i, "NL", Some(true), true))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    create(&db, "damaged", Format::MetaApi, false);
    create(&db, "healthy", Format::GoogleApi, false);
    for name in ["damaged", "healthy"] {
        sync(&db, name, &out.path().join(name));
        db.sync_ack(name).unwrap();
    }
    let state = dir.path().join("sync").join("damaged.sent");
    let mut bytes = std::fs::read(&state).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&state, bytes).unwrap();

    let err = Segments::new(&db)
        .sync("damaged", &out.path().join("again"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sync/damaged.sent"), "{err}");
    assert!(
        !err.contains(&dir.path().display().to_string()),
        "no absolute path: {err}"
    );

    let forgotten = db
        .forget(&cidb::Lookup::Id(1), &Default::default())
        .unwrap();
    assert!(forgotten.found);
    assert_eq!(forgotten.destinations, 2, "both states were rewritten");
    assert!(!state.exists(), "the unreadable state is gone");
    let (report, adds, _) = sync(&db, "damaged", &out.path().join("after"));
    assert_eq!(report.adds, 3, "the damaged destination starts over");
    assert_eq!(adds.len(), 3 * person_hashes(0, true, false).len());
    db.sync_ack("damaged").unwrap();
    let (report, _, removes) = sync(&db, "healthy", &out.path().join("healthy2"));
    let erased = set(person_hashes(1, true, true));
    assert_eq!((report.adds, report.removes), (0, erased.len() as u64));
    assert_eq!(
        removes, erased,
        "the healthy destination removes the erased person"
    );
}

/// A destination replaced between the evaluation of its audience and the sync is not
/// synced with the old audience under the new definition.
#[test]
fn a_sync_of_a_replaced_destination_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        person(0, "NL", Some(true), true),
        person(1, "DE", Some(true), true),
    ])
    .unwrap();
    create(&db, "moving", Format::MetaApi, false);
    let evaluated = db.destination("moving").unwrap().unwrap();
    let sets = Segments::new(&db)
        .evaluate_all(&[&evaluated.segment, &evaluated.policy])
        .unwrap();
    let mut replaced = evaluated.clone();
    replaced.segment = r#"country = "DE""#.into();
    db.destination_put(&replaced).unwrap();
    match db.sync_evaluated(&evaluated, &sets[0], &sets[1], out.path()) {
        Err(cidb::Error::Conflict(m)) => assert!(m.contains("replaced"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let (report, _, _) = sync(&db, "moving", out.path());
    assert_eq!(report.members, 1, "a fresh sync uses the new definition");
}
