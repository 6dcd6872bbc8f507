//! Identity resolution (records.md "Identity resolution" and "Identity rules").

use super::{assert_clean, by_email, fresh, ingest};
use cidb::{Attribute, EventKey, Lookup, Term, TimeRange, Value};

#[test]
fn case_and_format_differences_resolve_to_one_profile() {
    let (_d, db) = fresh();
    ingest(
        &db,
        &[
            r#"{"source":"crm","identifiers":{"email":"Jane.Doe@Example.COM"},"attributes":{"country":"NL"}}"#,
            r#"{"source":"web_form","identifiers":{"email":"  jane.doe@example.com "}}"#,
            r#"{"source":"pos","identifiers":{"phone":"06 12345678","email":"JANE.DOE@EXAMPLE.COM"},"attributes":{"country":"NL"}}"#,
            r#"{"source":"app","identifiers":{"phone":"+31 6 1234 5678"}}"#,
            r#"{"source":"wifi","identifiers":{"phone":"0031612345678"},"attributes":{"country":"NL"}}"#,
        ],
    );
    assert_eq!(db.stats().profiles, 1);
    let p = by_email(&db, "jane.doe@example.com").profile;
    assert_eq!(p.sources.len(), 5);
    assert_eq!(p.identifiers.len(), 2);
    let via_phone = db
        .lookup(&Lookup::Phone("+31612345678".into()))
        .unwrap()
        .unwrap();
    assert_eq!(via_phone.profile.id, p.id);
    assert_clean(&db);
}

#[test]
fn chain_links_a_and_b_only_through_c() {
    let (_d, db) = fresh();
    let r = ingest(
        &db,
        &[r#"{"source":"crm","identifiers":{"email":"a@x.com","crm_id":"C1"}}"#],
    );
    assert_eq!(r.new_profiles, 1);
    ingest(
        &db,
        &[r#"{"source":"web_form","identifiers":{"email":"b@x.com","phone":"+14155552671"}}"#],
    );
    assert_eq!(db.stats().profiles, 2);
    let a_before = by_email(&db, "a@x.com").profile.id;
    let b_before = by_email(&db, "b@x.com").profile.id;
    let r = ingest(
        &db,
        &[
            r#"{"source":"shop","identifiers":{"crm_id":"C1","phone":"(415) 555-2671"},"attributes":{"country":"US"}}"#,
        ],
    );
    assert_eq!(r.merged_profiles, 1);
    assert_eq!(db.stats().profiles, 1);
    let merged = by_email(&db, "a@x.com");
    assert_eq!(by_email(&db, "b@x.com").profile.id, merged.profile.id);
    // The absorbed id redirects to the survivor.
    let other = if merged.profile.id == a_before {
        b_before
    } else {
        a_before
    };
    assert_eq!(
        db.lookup(&Lookup::Id(other)).unwrap().unwrap().profile.id,
        merged.profile.id
    );
    // The merge log explains the merge.
    assert_eq!(merged.merges.len(), 1);
    let entry = &merged.merges[0];
    assert_eq!(entry.absorbed, other);
    assert_eq!(entry.source, "shop");
    assert!(["crm_id", "phone"].contains(&entry.linked_by.kind.as_str()));
    assert_clean(&db);
}

#[test]
fn two_emails_per_person_and_record_bridging_two_profiles_in_one_batch() {
    let (_d, db) = fresh();
    let r = ingest(
        &db,
        &[
            r#"{"source":"crm","identifiers":{"email":"home@x.com"}}"#,
            r#"{"source":"linkedin","identifiers":{"email":"work@corp.com"}}"#,
            r#"{"source":"app","identifiers":{"email":["home@x.com","work@corp.com"]}}"#,
        ],
    );
    assert_eq!(r.merged_profiles, 1);
    assert_eq!(
        r.new_profiles, 1,
        "the absorbed profile never became visible"
    );
    let p = by_email(&db, "work@corp.com").profile;
    assert_eq!(
        p.identifiers
            .iter()
            .filter(|i| i.id.kind == "email")
            .count(),
        2
    );
    assert_eq!(db.snapshot().indexes().live().len(), 1);
    assert_clean(&db);
}

#[test]
fn merge_after_events_and_consent_moves_everything_to_the_survivor() {
    let (_d, db) = fresh();
    ingest(
        &db,
        &[
            r#"{"source":"pos","observed_at":"2026-01-01T00:00:00Z","identifiers":{"crm_id":"C7"},"consent":{"marketing":true},"events":[{"type":"purchase","at":"2026-01-01T10:00:00Z","category":"jeans","value":80}]}"#,
            r#"{"source":"web_form","observed_at":"2026-02-01T00:00:00Z","identifiers":{"email":"m@x.com"},"consent":{"marketing":false,"custom_audiences":true},"events":[{"type":"purchase","at":"2026-02-01T10:00:00Z","category":"shoes","value":20}]}"#,
        ],
    );
    assert_eq!(db.stats().profiles, 2);
    ingest(
        &db,
        &[
            r#"{"source":"crm","observed_at":"2026-03-01T00:00:00Z","identifiers":{"crm_id":"C7","email":"m@x.com"}}"#,
        ],
    );
    let view = by_email(&db, "m@x.com");
    let pid = view.profile.id;
    assert_eq!(view.events.iter().map(|c| c.events.len()).sum::<usize>(), 2);
    // Consent: latest per purpose wins across the merged profiles; history kept.
    assert_eq!(view.profile.consent_granted("marketing"), Some(false));
    assert_eq!(view.profile.consent["marketing"].len(), 2);
    let snap = db.snapshot();
    let idx = snap.indexes();
    assert!(!idx.term(&Term::Consent("marketing".into())).contains(pid));
    assert!(idx
        .term(&Term::Consent("custom_audiences".into()))
        .contains(pid));
    let key = EventKey {
        kind: "purchase".into(),
        category: Some("jeans".into()),
    };
    let jeans = idx.events().series.get(&key).expect("jeans series");
    assert_eq!(
        jeans
            .members(TimeRange::default())
            .iter()
            .collect::<Vec<_>>(),
        vec![pid]
    );
    let all = idx
        .events()
        .series
        .get(&EventKey {
            kind: "purchase".into(),
            category: None,
        })
        .unwrap();
    assert_eq!(all.aggregate(TimeRange::default())[&pid].count, 2);
    assert_eq!(idx.live().len(), 1);
    drop(snap);
    assert_clean(&db);
}

#[test]
fn latest_observation_wins_and_lists_union() {
    let (_d, db) = fresh();
    ingest(
        &db,
        &[
            r#"{"source":"crm","observed_at":"2026-05-01T00:00:00Z","identifiers":{"email":"k@x.com"},"attributes":{"city":"Utrecht","interests":["running"]}}"#,
            r#"{"source":"facebook","observed_at":"2026-01-01T00:00:00Z","identifiers":{"email":"k@x.com"},"attributes":{"city":"Delft","interests":["Travel","RUNNING"]}}"#,
        ],
    );
    let p = by_email(&db, "k@x.com").profile;
    match &p.attributes["city"] {
        Attribute::Scalar(s) => {
            assert_eq!(s.value, Value::Text("Utrecht".into()));
            assert_eq!(s.provenance.source, "crm");
        }
        other => panic!("{other:?}"),
    }
    let Attribute::List(items) = &p.attributes["interests"] else {
        panic!()
    };
    assert_eq!(items.len(), 2);
    let snap = db.snapshot();
    assert!(snap
        .indexes()
        .term(&Term::Eq("city".into(), "utrecht".into()))
        .contains(p.id));
    assert!(snap
        .indexes()
        .term(&Term::Eq("city".into(), "delft".into()))
        .is_empty());
    assert!(snap
        .indexes()
        .term(&Term::Eq("interests".into(), "travel".into()))
        .contains(p.id));
}

#[test]
fn conflicting_crm_ids_do_not_merge_and_are_reported() {
    let (_d, db) = fresh();
    ingest(
        &db,
        &[
            r#"{"source":"crm","identifiers":{"crm_id":"C1","email":"one@x.com"}}"#,
            r#"{"source":"crm","identifiers":{"crm_id":"C2","email":"two@x.com"}}"#,
        ],
    );
    // A shared-device style record carrying both emails: the crm_id limit forbids the merge.
    let r = db
        .ingest_json(&[
            r#"{"source":"web_form","identifiers":{"email":["one@x.com","two@x.com"]}}"#,
        ])
        .unwrap();
    assert_eq!(r.merged_profiles, 0);
    assert_eq!(db.stats().profiles, 2);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].field, "identifiers.email");
    assert!(r.warnings[0].reason.contains("limit"), "{:?}", r.warnings);
    // The record joined the profile of its highest-priority identifier (first email).
    assert_eq!(by_email(&db, "one@x.com").profile.sources.len(), 2);
    assert_eq!(by_email(&db, "two@x.com").profile.sources.len(), 1);
    // A second crm_id is never attached to a profile that has one.
    let r = db
        .ingest_json(&[r#"{"source":"pos","identifiers":{"email":"one@x.com","crm_id":"C9"}}"#])
        .unwrap();
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(db
        .lookup(&Lookup::Identifier("crm_id".into(), "C9".into()))
        .unwrap()
        .is_none());
    // Higher priority decides: crm_id outranks email.
    let r = db
        .ingest_json(&[r#"{"source":"pos","identifiers":{"email":"one@x.com","crm_id":"C2"}}"#])
        .unwrap();
    assert_eq!(r.merged_profiles, 0);
    let c2 = db
        .lookup(&Lookup::Identifier("crm_id".into(), "C2".into()))
        .unwrap()
        .unwrap();
    assert_eq!(c2.profile.sources.get("pos").map(|s| s.records), Some(1));
    assert_clean(&db);
}

#[test]
fn blocked_values_never_link() {
    let (_d, db) = fresh();
    let r = db
        .ingest_json(&[
            r#"{"source":"wifi","identifiers":{"email":"a@x.com","phone":"0000000000","device_id":"n/a"}}"#,
            r#"{"source":"wifi","identifiers":{"email":"b@x.com","phone":"0000000000","device_id":"N/A"}}"#,
            r#"{"source":"wifi","identifiers":{"device_id":"unknown"}}"#,
        ])
        .unwrap();
    assert_eq!(db.stats().profiles, 2);
    assert_eq!(r.rejected_count, 1);
    assert_eq!(r.rejected[0].line, 3);
    assert_eq!(r.rejected[0].field.as_deref(), Some("identifiers"));
    assert_eq!(r.warning_count, 4);
}
