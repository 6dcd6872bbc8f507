//! Alias forms are not identities: two people may share one (`a.b@gmail.com` and
//! `ab+x@gmail.com` are distinct emails under records.md, yet one mailbox to Google), and
//! one person may hold two emails with one alias. `check` must accept both, and a
//! suppression digest of an alias must match every live profile that has the alias,
//! after merges, erasures and reopens (checked against a scan of the stored profiles).

use super::assert_clean;
use cidb::export::hash::sha256_hex;
use cidb::export::{normalize, Field, Normalized, Platform};
use cidb::query::Segments;
use cidb::{Engine, ForgetOptions, Lookup};
use proptest::prelude::*;
use roaring::RoaringBitmap;
use std::collections::BTreeSet;

/// Gmail spellings of few mailboxes: many share Google's form.
const LOCALS: [&str; 6] = ["ab", "a.b", "a.b+x", "ab+y", "c.d", "cd"];

fn email(i: usize) -> String {
    format!("{}@gmail.com", LOCALS[i % LOCALS.len()])
}

fn google_form(email: &str) -> String {
    match normalize(Field::Email, Platform::Google, email, None, 0) {
        Normalized::Value(v) => v,
        other => panic!("{email}: {other:?}"),
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A record with an email and a phone from a small pool (shared phones merge).
    Ingest {
        email: usize,
        phone: Option<u8>,
    },
    /// Erases the person holding this email (if anyone).
    Forget(usize),
    /// Adds the SHA-256 of this email's Google form to the list `aliases`.
    Suppress(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..LOCALS.len(), proptest::option::of(0u8..3))
            .prop_map(|(email, phone)| Op::Ingest { email, phone }),
        1 => (0..LOCALS.len()).prop_map(Op::Forget),
        2 => (0..LOCALS.len()).prop_map(Op::Suppress),
        1 => Just(Op::Reopen),
    ]
}

/// Live profiles whose emails have a Google form among `forms`, by a scan of every
/// profile id.
fn expected_members(db: &Engine, forms: &BTreeSet<String>) -> RoaringBitmap {
    let live = Segments::new(db).evaluate("ALL").unwrap().into_bitmap();
    let mut out = RoaringBitmap::new();
    for pid in &live {
        let view = db.lookup(&Lookup::Id(pid)).unwrap().expect("live profile");
        let has = view
            .profile
            .identifiers
            .iter()
            .any(|i| &*i.id.kind == "email" && forms.contains(&google_form(&i.id.value)));
        if has {
            out.insert(pid);
        }
    }
    out
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Engine::open(dir.path()).unwrap();
    let mut forms = BTreeSet::new();
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Ingest { email: e, phone } => {
                let phone =
                    phone.map_or(String::new(), |p| format!(r#","phone":"+3161000000{p}""#));
                let record = format!(
                    r#"{{"source":"crm","observed_at":"2026-01-01T00:00:{:02}Z","identifiers":{{"email":"{}"{phone}}}}}"#,
                    n % 60,
                    email(*e)
                );
                let report = db.ingest_json(&[record]).unwrap();
                assert!(report.rejected.is_empty(), "{report:?}");
            }
            Op::Forget(e) => {
                let options = ForgetOptions::default().without_suppression();
                db.forget(&Lookup::Email(email(*e)), &options).unwrap();
            }
            Op::Suppress(e) => {
                let form = google_form(&email(*e));
                let line = format!("{}\n", sha256_hex(&form));
                db.suppress_import("aliases", line.as_bytes(), None)
                    .unwrap();
                forms.insert(form);
            }
            Op::Reopen => {
                drop(db);
                db = Engine::open(dir.path()).unwrap();
            }
        }
        let got = db
            .snapshot()
            .suppressed(Some("aliases"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            got,
            expected_members(&db, &forms),
            "after op {n} ({op:?}): the list matches every profile with the alias"
        );
    }
    assert_clean(&db);
    drop(db);
    let db = Engine::open(dir.path()).unwrap();
    assert_clean(&db);
}

/// The case from the issue: one person holds two Gmail addresses that differ only by
/// dots (merged through a shared phone); `check` reported the profile against itself.
#[test]
fn one_profile_with_two_dot_variants_is_clean() {
    run(&[
        Op::Ingest {
            email: 0,
            phone: Some(1),
        },
        Op::Ingest {
            email: 1,
            phone: Some(1),
        },
        Op::Reopen,
    ]);
}

/// Two people share one Google form; suppressing it covers both, and erasing one keeps
/// the other suppressed.
#[test]
fn two_people_share_an_alias() {
    run(&[
        Op::Ingest {
            email: 1,
            phone: None,
        },
        Op::Ingest {
            email: 2,
            phone: None,
        },
        Op::Suppress(0),
        Op::Forget(1),
        Op::Reopen,
        Op::Ingest {
            email: 3,
            phone: None,
        },
    ]);
}

fn cases() -> u32 {
    crate::support::env_number("CIDB_ALIAS_CASES", 24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn alias_suppression_matches_a_scan(ops in proptest::collection::vec(op(), 1..14)) {
        run(&ops);
    }
}
