//! Erasure: after `forget` returns and the database is closed, no file under the data
//! directory holds the person's identifiers or values unique to them, in plain text or in
//! any form the engine stores them (normalized, index form, SHA-256, keyed link hash);
//! everyone else is intact; a stale re-import stays out of exports.

use cidb::export::hash::{sha256, sha256_hex};
use cidb::export::{ExportOptions, Format};
use cidb::query::{DestinationSpec, Segments};
use cidb::{Engine, ForgetOptions, Generator, Lookup};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

const EMAIL: &str = "Zebulon.Quixote.7731@UniqueMail.example";
const PHONE: &str = "06 4477 1193";
const FIRST: &str = "Zebulonius";
const LAST: &str = "Quaxterfield";
const INTEREST: &str = "Xylophone-Restoration";
const CATEGORY: &str = "harpsichord-rental";

fn person() -> String {
    format!(
        r#"{{"source":"crm","identifiers":{{"email":"{EMAIL}","phone":"{PHONE}","crm_id":"CRM-ZQ-7731"}},"attributes":{{"first_name":"{FIRST}","last_name":"{LAST}","country":"NL","interests":["{INTEREST}","running"]}},"consent":{{"custom_audiences":true}},"events":[{{"type":"purchase","at":"2026-10-01T10:00:00Z","category":"{CATEGORY}","value":12.5}}]}}"#
    )
}

/// Every byte string the person's data could appear as.
fn needles(data: &Path) -> Vec<(String, Vec<u8>)> {
    let email = EMAIL.to_lowercase();
    let e164 = "+31644771193";
    let digits = "31644771193";
    let mut texts = vec![
        EMAIL.to_string(),
        email.clone(),
        PHONE.to_string(),
        e164.to_string(),
        digits.to_string(),
        "CRM-ZQ-7731".to_string(),
        FIRST.to_string(),
        FIRST.to_lowercase(),
        LAST.to_string(),
        LAST.to_lowercase(),
        INTEREST.to_string(),
        INTEREST.to_lowercase(),
        CATEGORY.to_string(),
    ];
    for form in [email.as_str(), e164, digits, "zebulonius", "quaxterfield"] {
        texts.push(sha256_hex(form));
    }
    let mut out: Vec<(String, Vec<u8>)> = texts
        .into_iter()
        .map(|t| (t.clone(), t.into_bytes()))
        .collect();
    for form in [email.as_str(), e164, digits] {
        out.push((format!("sha256 bytes of {form}"), sha256(form).to_vec()));
    }
    // The keyed link hashes, with the secret of this database's key file.
    let keys = std::fs::read(data.join("keys.bin")).unwrap();
    let secret = &keys[12..44];
    for (tag, form) in [
        ("email", email.as_str()),
        ("phone", e164),
        ("phone/digits", digits),
        ("crm_id", "CRM-ZQ-7731"),
    ] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
        mac.update(tag.as_bytes());
        mac.update(&[0]);
        mac.update(&sha256(form));
        let hash = mac.finalize().into_bytes();
        out.push((format!("link key of {tag}"), hash[..16].to_vec()));
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Builds a database with the person among others, synced once to a destination.
fn populated(dir: &Path) -> Engine {
    let db = Engine::open(dir).unwrap();
    let others = Generator::new(200, 9).records();
    db.ingest_json(&others).unwrap();
    db.ingest_json(&[person()]).unwrap();
    synced_destination(&db, "meta");
    db
}

/// Creates a Meta destination of the NL members and acknowledges its first sync.
fn synced_destination(db: &Engine, name: &str) {
    let s = Segments::new(db);
    s.create_destination(&DestinationSpec {
        name: name.into(),
        format: Format::MetaApi,
        platform: None,
        segment: r#"country = "NL""#.into(),
        policy: None,
        additive_only: false,
        push: None,
    })
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    s.sync(name, out.path()).unwrap();
    db.sync_ack(name).unwrap();
}

#[test]
fn erased_values_are_in_no_file_of_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (others_before, needles) = {
        let db = populated(&data);
        let needles = needles(&data);
        // The needles are really there before (the test can find them).
        db.checkpoint().unwrap();
        let before: Vec<u8> = crate::files_under(&data)
            .iter()
            .flat_map(|f| std::fs::read(f).unwrap())
            .collect();
        for (what, needle) in &needles {
            // Forms the engine is known to store somewhere: link keys (index.ckpt), index
            // terms (index.ckpt), Meta digests of the sent email and phone (sync state).
            let stored_form = what.starts_with("link key of")
                || *what == format!("sha256 bytes of {}", EMAIL.to_lowercase())
                || what == "sha256 bytes of 31644771193"
                || *what == FIRST.to_lowercase()
                || *what == INTEREST.to_lowercase();
            if stored_form {
                assert!(
                    find(&before, needle),
                    "the test must see {what} before the erasure"
                );
            }
        }
        let others = db.stats().profiles - 1;
        let report = db
            .forget(
                &Lookup::Email(EMAIL.into()),
                &ForgetOptions::default().without_suppression(),
            )
            .unwrap();
        assert!(report.found);
        assert_eq!((report.events, report.destinations), (1, 1));
        assert!(db
            .lookup(&Lookup::Phone("+31644771193".into()))
            .unwrap()
            .is_none());
        assert_eq!(db.stats().profiles, others);
        let check = db.check().unwrap();
        assert!(check.is_clean(), "{:?}", check.problems);
        (others, needles)
    };
    // Closed: search every byte of every file.
    for file in crate::files_under(&data) {
        let bytes = std::fs::read(&file).unwrap();
        for (what, needle) in &needles {
            assert!(!find(&bytes, needle), "{what} found in {}", file.display());
        }
    }
    let db = Engine::open(&data).unwrap();
    assert_eq!(
        db.stats().profiles,
        others_before,
        "everyone else is intact"
    );
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn an_erased_person_reimported_from_an_old_file_stays_out_of_exports() {
    let dir = tempfile::tempdir().unwrap();
    let db = populated(dir.path());
    let report = db
        .forget(
            &Lookup::Phone("+31 6 44771193".into()),
            &ForgetOptions::default(),
        )
        .unwrap();
    assert_eq!(report.suppression_list.as_deref(), Some("erased"));
    assert!(report.suppressed >= 2);
    // A stale CRM file brings the person back.
    db.ingest_json(&[person()]).unwrap();
    let mut out = Vec::new();
    let export = Segments::new(&db)
        .export(
            r#"country = "NL""#,
            None,
            &ExportOptions::new(Format::Hashes),
            &mut out,
        )
        .unwrap();
    assert_eq!(export.removed_by_suppression, 1);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(&sha256_hex(&EMAIL.to_lowercase())));
    assert!(!text.contains(&sha256_hex("31644771193")));
    // The next sync of the earlier destination removes the erased hashes from the platform.
    let sync_dir = tempfile::tempdir().unwrap();
    let sync = Segments::new(&db).sync("meta", sync_dir.path()).unwrap();
    assert!(sync.removes >= 2, "{sync:?}");
    let removes = std::fs::read_to_string(&sync.removes_file).unwrap();
    assert!(removes.contains(&sha256_hex(&EMAIL.to_lowercase())));
}

#[test]
fn forgetting_nobody_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = populated(dir.path());
    let before = db.stats();
    let r = db
        .forget(
            &Lookup::Email("nobody@example.org".into()),
            &ForgetOptions::default(),
        )
        .unwrap();
    assert!(!r.found);
    assert_eq!(db.stats().profiles, before.profiles);
}

/// An erasure whose file clean-up fails still erased the person, says so in a typed
/// error, shows in `check`, and is finished on the next open once the cause is gone.
#[test]
fn an_erasure_that_cannot_finish_says_so_and_finishes_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        r#"{"source":"crm","identifiers":{"email":"gone@example.com"},"attributes":{"country":"NL"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"crm","identifiers":{"email":"stays@example.com"},"attributes":{"country":"NL"},"consent":{"custom_audiences":true}}"#,
    ])
    .unwrap();
    synced_destination(&db, "blocked");
    // The sync state cannot be read back: a directory stands where the file was.
    let state = dir.path().join("sync").join("blocked.sent");
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();

    let gone = Lookup::Email("gone@example.com".into());
    match db.forget(&gone, &ForgetOptions::default()) {
        Err(cidb::Error::ErasureIncomplete { profile, .. }) => assert_eq!(profile, 0),
        other => panic!("expected ErasureIncomplete, got {other:?}"),
    }
    assert!(db.lookup(&gone).unwrap().is_none(), "the person is erased");
    let problems = db.check().unwrap().problems;
    assert!(
        problems.iter().any(|p| p.contains("not finished")),
        "{problems:?}"
    );
    drop(db);
    // Still blocked: the database opens all the same.
    let db = Engine::open(dir.path()).unwrap();
    assert!(!db.check().unwrap().is_clean());
    drop(db);
    std::fs::remove_dir(&state).unwrap();
    let db = Engine::open(dir.path()).unwrap();
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}
