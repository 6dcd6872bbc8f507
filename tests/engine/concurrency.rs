//! Readers run concurrently with the writer and never see half a batch: a merge is either
//! wholly visible or not at all.

use super::fresh;
use cidb::{Engine, Term};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn engine_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
}

#[test]
fn snapshots_never_show_half_a_merge() {
    let (_dir, db) = fresh();
    let db = Arc::new(db);
    let done = Arc::new(AtomicBool::new(false));
    const PAIRS: u32 = 40;
    let writer = {
        let db = Arc::clone(&db);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for k in 0..PAIRS {
                let a = format!(
                    r#"{{"source":"crm","identifiers":{{"email":"a{k}@x.com"}},"attributes":{{"pair":"p{k}"}}}}"#
                );
                let b = format!(
                    r#"{{"source":"app","identifiers":{{"email":"b{k}@x.com"}},"attributes":{{"pair":"p{k}"}}}}"#
                );
                db.ingest_json(&[a, b]).unwrap();
                let bridge = format!(
                    r#"{{"source":"bridge","identifiers":{{"email":["a{k}@x.com","b{k}@x.com"]}}}}"#
                );
                db.ingest_json(&[bridge]).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let db = Arc::clone(&db);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut snapshots = 0;
                while !done.load(Ordering::SeqCst) || snapshots == 0 {
                    let snap = db.snapshot();
                    let idx = snap.indexes();
                    let live = idx.live();
                    let bridged = idx.term(&Term::Source("bridge".into()));
                    let mut total = 0;
                    for k in 0..PAIRS {
                        let members =
                            idx.term(&Term::Eq("pair".into(), format!("p{k}").into())) & live;
                        let merged = !(&members & bridged).is_empty();
                        match (members.len(), merged) {
                            (0, false) | (2, false) | (1, true) => {}
                            other => panic!("pair {k}: inconsistent snapshot {other:?}"),
                        }
                        total += members.len();
                    }
                    assert_eq!(total, live.len(), "live set and attribute bitmaps disagree");
                    snapshots += 1;
                }
                snapshots
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(db.stats().profiles, u64::from(PAIRS));
}

/// Statistics never wait for the writer: an import holds the writer for all its batches,
/// and `stats` and `profile_count` keep answering meanwhile (`stats` once waited for the
/// writer while holding the state lock the writer needed: a deadlock under the server).
#[test]
fn statistics_answer_while_an_import_holds_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let config = cidb::Config::default().with_import_batch_records(200);
    let db = Arc::new(Engine::open_with(dir.path(), config).unwrap());
    let file: String = cidb::Generator::new(3_000, 11).records().join("\n");
    let importing = Arc::new(AtomicBool::new(true));
    let reader = {
        let (db, importing) = (Arc::clone(&db), Arc::clone(&importing));
        std::thread::spawn(move || {
            let mut during = 0u64;
            while importing.load(Ordering::Acquire) {
                let stats = db.stats();
                assert!(db.profile_count() <= stats.profile_ids);
                during += 1;
                std::thread::yield_now();
            }
            during
        })
    };
    let mut batches = 0;
    db.import_jsonl(
        file.as_bytes(),
        &cidb::ImportOptions::default(),
        &mut |_| batches += 1,
    )
    .unwrap();
    importing.store(false, Ordering::Release);
    let during = reader.join().unwrap();
    assert!(batches > 10, "the import ran in {batches} batches");
    assert!(
        during > batches,
        "stats answered {during} times during an import of {batches} batches"
    );
    assert_eq!(db.profile_count(), db.stats().profiles);
}

/// A lookup racing an erasure sees the person whole or not at all: never the profile
/// with its events already gone (the erasure once applied its batch outside the state
/// lock that lookups hold).
#[test]
fn a_lookup_racing_an_erasure_sees_the_person_whole_or_not_at_all() {
    use cidb::{ForgetOptions, Lookup};
    use std::sync::atomic::AtomicUsize;
    const PEOPLE: usize = 40;
    const RECORDS: usize = 4;
    let (_dir, db) = fresh();
    for p in 0..PEOPLE {
        let records: Vec<String> = (0..RECORDS)
            .map(|r| {
                format!(
                    r#"{{"source":"s{r}","identifiers":{{"email":"p{p}@x.com"}},"events":[{{"type":"view","at":"2026-01-0{}T10:00:00Z"}},{{"type":"open","at":"2026-02-0{}T10:00:00Z"}}]}}"#,
                    r + 1,
                    r + 1
                )
            })
            .collect();
        db.ingest_json(&records).unwrap();
    }
    let db = Arc::new(db);
    let current = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, current) = (Arc::clone(&db), Arc::clone(&current));
            std::thread::spawn(move || {
                let (mut whole, mut gone) = (0u32, 0u32);
                loop {
                    let p = current.load(Ordering::Acquire);
                    if p >= PEOPLE {
                        return (whole, gone);
                    }
                    match db.lookup(&Lookup::Email(format!("p{p}@x.com"))).unwrap() {
                        None => gone += 1,
                        Some(view) => {
                            let events: usize = view.events.iter().map(|c| c.events.len()).sum();
                            assert_eq!(
                                (events, view.profile.events),
                                (2 * RECORDS, (2 * RECORDS) as u64),
                                "person {p}: profile seen without all its events"
                            );
                            whole += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for p in 0..PEOPLE {
        // Give the readers a moment on this person before it goes.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let report = db
            .forget(
                &Lookup::Email(format!("p{p}@x.com")),
                &ForgetOptions::default(),
            )
            .unwrap();
        assert!(report.found, "person {p}");
        current.store(p + 1, Ordering::Release);
    }
    for r in readers {
        let (whole, gone) = r.join().unwrap();
        assert!(
            whole > 0 && gone > 0,
            "{whole} whole and {gone} erased lookups"
        );
    }
    assert_eq!(db.profile_count(), 0);
}
