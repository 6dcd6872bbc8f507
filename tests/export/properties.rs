//! Property test against a reference: for random persons, consent and suppression lists
//! (raw or hashed, some for people not in the database, some ingested after the list),
//! every format exports exactly the identifier hashes of `segment AND consent AND NOT
//! suppressed`, every hash is 64 lower-case hex characters, and the bytes are the same
//! for every thread count.

use super::{export, identifier_hashes, is_hash, person, person_hashes, set};
use cidb::export::{
    hash::sha256_hex, ExportOptions, Format, Platform, GOOGLE_MAX_IDENTIFIERS,
    GOOGLE_MAX_OPERATIONS, META_MAX_ROWS,
};
use cidb::Engine;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
struct Person {
    nl: bool,
    consent: Option<bool>,
    phone: bool,
    /// Ingested after the suppression list was imported.
    late: bool,
}

#[derive(Debug, Clone, Copy)]
enum Listed {
    /// Not on the list.
    No,
    /// The raw email.
    RawEmail,
    /// The phone as written in a CRM, without its country code (read with region NL).
    RawPhone,
    /// The Meta form (digits) hashed.
    HashedPhoneDigits,
    /// The email hashed.
    HashedEmail,
}

fn person_strategy() -> impl Strategy<Value = (Person, Listed)> {
    (
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop_oneof![
            6 => Just(Listed::No),
            1 => Just(Listed::RawEmail),
            1 => Just(Listed::RawPhone),
            1 => Just(Listed::HashedPhoneDigits),
            1 => Just(Listed::HashedEmail),
        ],
    )
        .prop_map(|(nl, consent, phone, late, listed)| {
            (
                Person {
                    nl,
                    consent,
                    phone,
                    late,
                },
                listed,
            )
        })
}

fn cases() -> u32 {
    crate::support::env_number("CIDB_EXPORT_CASES", 12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn exports_exactly_the_allowed_hashes(people in prop::collection::vec(person_strategy(), 1..40), outsiders in 0usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let db = Engine::open(dir.path()).unwrap();
        let record = |i: usize, p: &Person| person(i, if p.nl { "NL" } else { "BE" }, p.consent, p.phone);
        let early: Vec<String> = people.iter().enumerate().filter(|(_, (p, _))| !p.late).map(|(i, (p, _))| record(i, p)).collect();
        if !early.is_empty() {
            db.ingest_json(&early).unwrap();
        }
        let mut list = String::new();
        let mut suppressed = BTreeSet::new();
        for (i, (p, listed)) in people.iter().enumerate() {
            let entry = match listed {
                Listed::No => continue,
                Listed::RawEmail => format!(" PERSON.{i}@example.COM "),
                Listed::RawPhone if p.phone => format!("06-{:08}", 10_000_000 + i),
                Listed::HashedPhoneDigits if p.phone => sha256_hex(&format!("316{:08}", 10_000_000 + i)),
                _ => sha256_hex(&format!("person.{i}@example.com")),
            };
            list.push_str(&entry);
            list.push('\n');
            suppressed.insert(i);
        }
        for k in 0..outsiders {
            list.push_str(&format!("nobody{k}@example.org\n"));
        }
        db.suppress_import("optout", list.as_bytes(), Some("NL")).unwrap();
        let late: Vec<String> = people.iter().enumerate().filter(|(_, (p, _))| p.late).map(|(i, (p, _))| record(i, p)).collect();
        if !late.is_empty() {
            db.ingest_json(&late).unwrap();
        }

        let allowed: Vec<usize> = people.iter().enumerate()
            .filter(|(i, (p, _))| p.nl && p.consent == Some(true) && !suppressed.contains(i))
            .map(|(i, _)| i)
            .collect();
        for format in Format::ALL {
            let google = format.platform() == Platform::Google;
            let expected = set(allowed.iter().flat_map(|&i| person_hashes(i, people[i].0.phone, google)));
            let (report, one) = export(&db, r#"country = "NL""#, &ExportOptions::new(format).with_threads(1));
            let got = identifier_hashes(format, &one);
            prop_assert_eq!(got.len(), set(got.clone()).len(), "{} repeats a hash", format.name());
            prop_assert_eq!(set(got), expected, "{}", format.name());
            prop_assert_eq!(report.profiles, allowed.len() as u64);
            let nl = people.iter().filter(|(p, _)| p.nl).count() as u64;
            prop_assert_eq!(report.members, nl);
            prop_assert_eq!(report.members - report.removed_by_policy - report.removed_by_suppression, report.profiles);
            for (kind, size) in body_sizes(format, &one) {
                let limit = match kind {
                    "rows" => META_MAX_ROWS,
                    "operations" => GOOGLE_MAX_OPERATIONS,
                    _ => GOOGLE_MAX_IDENTIFIERS,
                };
                prop_assert!(size <= limit, "{}: {size} {kind} over {limit}", format.name());
            }
            for hash in hashed_cells(format, &one) {
                prop_assert!(is_hash(&hash), "{} wrote {hash:?}", format.name());
            }
            for threads in [2, 5] {
                let (_, other) = export(&db, r#"country = "NL""#, &ExportOptions::new(format).with_threads(threads));
                prop_assert_eq!(&one, &other, "{} differs with {} threads", format.name(), threads);
            }
        }
    }
}

/// Every cell that must be a hash: identifiers everywhere, plus names in the row formats.
fn hashed_cells(format: Format, output: &str) -> Vec<String> {
    let mut cells = identifier_hashes(format, output);
    if format == Format::MetaApi {
        for line in output.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            for row in v["payload"]["data"].as_array().unwrap() {
                // FN, LN, COUNTRY are hashed for Meta; EXTERN_ID is not.
                for i in [2, 3, 11] {
                    let c = row[i].as_str().unwrap();
                    if !c.is_empty() {
                        cells.push(c.to_string());
                    }
                }
            }
        }
    }
    cells
}

/// The size of every API body (Meta rows, Google operations) and of every Google
/// operation (identifiers), labelled.
fn body_sizes(format: Format, output: &str) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    for line in output.lines() {
        match format {
            Format::MetaApi => {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                out.push(("rows", v["payload"]["data"].as_array().unwrap().len()));
            }
            Format::GoogleApi => {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let ops = v["operations"].as_array().unwrap();
                out.push(("operations", ops.len()));
                for op in ops {
                    out.push((
                        "identifiers",
                        op["create"]["userIdentifiers"].as_array().unwrap().len(),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}
