//! Persistence: reopen keeps everything, indexes load from the checkpoint, a missing
//! checkpoint is rebuilt, unknown formats are refused.

use super::{assert_clean, by_email, ingest};
use cidb::{Engine, Generator, OpenError, Term};

#[test]
fn reopen_keeps_profiles_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let records = Generator::new(500, 3).records();
    let (live, terms) = {
        let db = Engine::open(dir.path()).unwrap();
        for chunk in records.chunks(300) {
            db.ingest_json(chunk).unwrap();
        }
        let snap = db.snapshot();
        let nl = snap
            .indexes()
            .term(&Term::Eq("country".into(), "nl".into()))
            .clone();
        (snap.indexes().live().clone(), nl)
    };
    assert!(
        dir.path().join("index.ckpt").exists(),
        "closing writes a checkpoint"
    );
    let db = Engine::open(dir.path()).unwrap();
    assert_eq!(db.snapshot().indexes().live(), &live);
    assert_eq!(
        db.snapshot()
            .indexes()
            .term(&Term::Eq("country".into(), "nl".into())),
        &terms
    );
    assert_eq!(db.stats().records, records.len() as u64);
    assert_clean(&db);
}

/// sled writes its page-table snapshot only while it opens, so a database closed after
/// writes has none until the next open replays the log; `close_for_fast_open` leaves one
/// (what makes the first open after a 1M import 0.8 s instead of 1.8 s).
#[test]
fn close_for_fast_open_leaves_a_storage_snapshot_and_loses_nothing() {
    let snapshots = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("sled"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("snap.")
            })
            .count()
    };
    let records = Generator::new(300, 5).records();
    let plain = tempfile::tempdir().unwrap();
    let db = Engine::open(plain.path()).unwrap();
    db.ingest_json(&records).unwrap();
    db.close().unwrap();
    assert_eq!(
        snapshots(plain.path()),
        0,
        "sled snapshots only when opening"
    );

    let fast = tempfile::tempdir().unwrap();
    let db = Engine::open(fast.path()).unwrap();
    db.ingest_json(&records).unwrap();
    let live = db.snapshot().indexes().live().clone();
    db.close_for_fast_open().unwrap();
    assert_eq!(snapshots(fast.path()), 1);
    let db = Engine::open(fast.path()).unwrap();
    assert_eq!(db.snapshot().indexes().live(), &live);
    assert_eq!(db.stats().records, records.len() as u64);
    assert_clean(&db);
}

#[test]
fn missing_checkpoint_is_rebuilt_from_profiles() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Engine::open(dir.path()).unwrap();
        ingest(
            &db,
            &[r#"{"source":"crm","identifiers":{"email":"r@x.com"},"attributes":{"city":"Gent"}}"#],
        );
    }
    std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    let db = Engine::open(dir.path()).unwrap();
    let pid = by_email(&db, "r@x.com").profile.id;
    assert!(db
        .snapshot()
        .indexes()
        .term(&Term::Eq("city".into(), "gent".into()))
        .contains(pid));
    assert_clean(&db);
}

/// A data directory holding one profile and its index checkpoint, and that
/// checkpoint's bytes.
fn a_directory_with_a_checkpoint() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Engine::open(dir.path()).unwrap();
        ingest(
            &db,
            &[r#"{"source":"crm","identifiers":{"email":"r@x.com"}}"#],
        );
    }
    let path = dir.path().join("index.ckpt");
    let bytes = std::fs::read(&path).unwrap();
    (dir, path, bytes)
}

/// Opening `dir` is refused with an error that names the checkpoint file and `detail`.
fn assert_refused(dir: &std::path::Path, detail: &str) {
    let err = Engine::open(dir).err().expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("corrupted index checkpoint in index.ckpt") && msg.contains(detail),
        "{msg}"
    );
}

#[test]
fn corrupt_checkpoint_is_an_error_naming_the_file() {
    let (dir, path, mut bytes) = a_directory_with_a_checkpoint();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    assert_refused(dir.path(), "checksum");
}

#[test]
fn a_truncated_or_empty_checkpoint_is_an_error_saying_so() {
    let (dir, path, bytes) = a_directory_with_a_checkpoint();
    // Inside the header, after it, and nothing at all.
    for (keep, detail) in [
        (10, "shorter than its header"),
        (40, "length or checksum mismatch"),
        (0, "shorter than its header"),
    ] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        assert_refused(dir.path(), detail);
    }
}

use crate::support::raw_sled;

#[test]
fn format_1_directory_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Engine::open(dir.path()).unwrap();
        ingest(
            &db,
            &[
                r#"{"source":"crm","identifiers":{"email":"m@x.com","phone":"+31612345678"}}"#,
                r#"{"source":"web","identifiers":{"email":"n@x.com"}}"#,
            ],
        );
    }
    {
        // Format 1: identifier links were sled keys `I` + 32-byte hash, and the index
        // checkpoint had index format 2.
        let db = raw_sled(dir.path());
        db.insert([&b"I"[..], &[7u8; 32]].concat(), &0u32.to_le_bytes())
            .unwrap();
        db.insert(b"Mformat", &1u32.to_le_bytes()).unwrap();
        db.flush().unwrap();
    }
    let ckpt = dir.path().join("index.ckpt");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&ckpt, bytes).unwrap();

    {
        let db = Engine::open(dir.path()).unwrap();
        let pid = by_email(&db, "m@x.com").profile.id;
        let by_phone = db
            .lookup(&cidb::Lookup::Phone("+31 6 12345678".into()))
            .unwrap()
            .expect("found by phone after the migration");
        assert_eq!(by_phone.profile.id, pid);
        // Two emails, and the phone in its E.164 and digits-only forms.
        assert_eq!(db.stats().identifier_links, 4);
        assert_clean(&db);
    }
    let db = raw_sled(dir.path());
    assert_eq!(db.scan_prefix(b"I").count(), 0, "old link keys are removed");
    assert_eq!(
        db.get(b"Mformat").unwrap().unwrap().as_ref(),
        &cidb::FORMAT_VERSION.to_le_bytes()
    );
}

/// A data directory written by the release before format 4 (`tests/fixtures/format3.tgz`,
/// see its README) opens: its JSON records become stored records in one atomic upgrade,
/// everything in it reads back, and `check` is clean, before and after a second open.
#[test]
fn format_3_directory_of_the_previous_release_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format3.tgz");
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar runs");
    assert!(status.success());
    let data = dir.path().join("db");
    let before = {
        let db = raw_sled(&data);
        assert_eq!(
            db.get(b"Mformat").unwrap().unwrap().as_ref(),
            &3u32.to_le_bytes()
        );
        let json_values = ["A", "O", "Capikey/"]
            .iter()
            .flat_map(|p| db.scan_prefix(p.as_bytes()))
            .filter(|kv| kv.as_ref().unwrap().1.first() == Some(&b'{'))
            .count();
        assert!(
            json_values >= 5,
            "the fixture holds JSON records: {json_values}"
        );
        db.scan_prefix(b"A").count()
    };
    for round in 0..2 {
        let db = Engine::open(&data).unwrap();
        assert_clean(&db);
        let audit = db.audit_log(None, 100).unwrap();
        assert_eq!(audit.len(), before, "round {round}");
        let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
        for action in ["sync", "sync_ack", "object", "forget"] {
            assert!(actions.contains(&action), "{action} in {actions:?}");
        }
        let sync = audit.iter().find(|e| e.action == "sync").unwrap();
        assert_eq!(sync.details["destination"], "nl-meta");
        let objections = db.objections().unwrap();
        assert_eq!(objections.len(), 1);
        assert!(objections[0].digests.iter().all(|d| d.len() == 64));
        assert!(!objections[0].digests.is_empty());
        let destinations = db.destinations().unwrap();
        assert_eq!(destinations.len(), 1);
        assert_eq!(destinations[0].name, "nl-meta");
        assert_eq!(destinations[0].format.name(), "meta-api");
        assert!(!db.destination_sent("nl-meta").unwrap().is_empty());
        let segments = db.saved_segments().unwrap();
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].expr, r#"country = "NL""#);
        assert!(segments[0].created_at > 0);
        let keys = db.api_keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].role, "analyst");
        assert_eq!(db.stats().profiles, 199);
    }
    let db = raw_sled(&data);
    assert_eq!(
        db.get(b"Mformat").unwrap().unwrap().as_ref(),
        &cidb::FORMAT_VERSION.to_le_bytes()
    );
    for prefix in ["A", "O", "Cdestination/", "Capikey/", "Csegment/"] {
        for kv in db.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv.unwrap();
            assert_eq!(&v[..2], &[2, 1], "{k:?} is a stored record of layout 1");
        }
    }
}

#[test]
fn unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Engine::open(dir.path()).unwrap());
    {
        let db = raw_sled(dir.path());
        db.insert(b"Mformat", &99u32.to_le_bytes()).unwrap();
        db.flush().unwrap();
    }
    match Engine::open(dir.path()) {
        Err(e @ OpenError::UnknownFormat { found: 99, .. }) => {
            assert!(
                e.to_string().contains("has on-disk format version 99"),
                "{e}"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened an unknown format"),
    }
}

#[test]
fn personal_data_is_not_stored_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Engine::open(dir.path()).unwrap();
        db.ingest_json(&[r#"{"source":"crm","identifiers":{"email":"zyxwvut@uniq.example","phone":"+31687654321"},"attributes":{"first_name":"Quintessa"}}"#]).unwrap();
        db.checkpoint().unwrap();
    }
    // sled's files must never hold identifiers or values in plain text (the index
    // checkpoint holds indexed values by design; erasure rewrites it).
    for entry in crate::files_under(&dir.path().join("sled")) {
        let bytes = std::fs::read(&entry).unwrap();
        for needle in [
            "zyxwvut@uniq.example",
            "+31687654321",
            "31687654321",
            "Quintessa",
            "quintessa",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in {}",
                entry.display()
            );
        }
    }
}

#[test]
fn a_database_held_open_is_reported_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Engine::open(dir.path()).unwrap();
    match Engine::open(dir.path()) {
        Err(e @ OpenError::Locked { .. }) => assert!(
            e.to_string()
                .contains("is locked: another process or handle has it open"),
            "{e}"
        ),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened twice"),
    }
}

/// A retried ingest with the same idempotency key and request answers the first report
/// and stores nothing twice; the same key with another request is refused; the answer
/// survives a reopen.
#[test]
fn idempotent_ingest_applies_once() {
    use cidb::{IdempotencyKey, IdempotentIngest};
    let dir = tempfile::tempdir().unwrap();
    let records = [
        r#"{"source":"crm","identifiers":{"email":"once@example.com"},"events":[{"type":"purchase","at":"2026-01-01T00:00:00Z","value":5}]}"#,
    ];
    let key = IdempotencyKey {
        key: [7; 32],
        request: [1; 32],
    };
    let first = {
        let db = Engine::open(dir.path()).unwrap();
        let IdempotentIngest::Applied(first) = db.ingest_json_idempotent(&records, &key).unwrap()
        else {
            panic!("the first request is applied");
        };
        match db.ingest_json_idempotent(&records, &key).unwrap() {
            IdempotentIngest::Replayed { report, .. } => assert_eq!(report, first),
            other => panic!("a retry is replayed, got {other:?}"),
        }
        first
    };
    let db = Engine::open(dir.path()).unwrap();
    match db.ingest_json_idempotent(&records, &key).unwrap() {
        IdempotentIngest::Replayed { report, .. } => assert_eq!(report, first),
        other => panic!("a retry after a reopen is replayed, got {other:?}"),
    }
    let other = IdempotencyKey {
        request: [2; 32],
        ..key
    };
    assert!(matches!(
        db.ingest_json_idempotent(&records, &other).unwrap(),
        IdempotentIngest::KeyReused { .. }
    ));
    assert_eq!(db.stats().events, 1, "the events were stored once");
    assert_eq!(db.stats().records, 1);
}

/// The engine denies `unsafe_code` with one exception, the checkpoint's read-only map
/// (`index/checkpoint.rs`, whose comment gives the reason). A new `unsafe` block or
/// `allow(unsafe_code)` anywhere else must be argued for here first.
#[test]
fn unsafe_code_stays_in_the_checkpoint_map() {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("engine/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "engine sources found under {}",
        src.display()
    );
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("unsafe {") || code.contains("allow(unsafe_code)") {
                let name = file.strip_prefix(&src).unwrap().display().to_string();
                found.push((name, code.trim().to_string()));
            }
        }
    }
    let expected = vec![
        (
            "index/checkpoint.rs".to_string(),
            "#[allow(unsafe_code)]".to_string(),
        ),
        (
            "index/checkpoint.rs".to_string(),
            "unsafe { memmap2::Mmap::map(file) }".to_string(),
        ),
    ];
    assert_eq!(found, expected);
}
