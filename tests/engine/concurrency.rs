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
