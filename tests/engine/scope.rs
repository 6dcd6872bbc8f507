//! Scope policy: fields a source's granted scopes do not cover are dropped and reported.

use super::{by_email, fresh, ingest};
use cidb::{Config, Engine, ScopePolicies, Term};

#[test]
fn facebook_without_user_likes_drops_likes_and_reports_it() {
    let (_d, db) = fresh();
    let r = ingest(
        &db,
        &[
            r#"{"source":"facebook","scopes":["public_profile","email"],"identifiers":{"email":"f@x.com","facebook_id":"100"},"attributes":{"first_name":"Fay","likes":["Nike"],"birth_date":"1990-04-12"}}"#,
            r#"{"source":"facebook","scopes":["public_profile","email","user_likes"],"identifiers":{"email":"g@x.com"},"attributes":{"likes":["Puma"]}}"#,
            r#"{"source":"crm","scopes":["anything"],"identifiers":{"email":"h@x.com"},"attributes":{"likes":["Vans"]}}"#,
        ],
    );
    let dropped = &r.dropped_by_scope["facebook"];
    assert_eq!(dropped.get("attributes.likes"), Some(&1));
    assert_eq!(dropped.get("attributes.birth_date"), Some(&1));
    assert!(
        !r.dropped_by_scope.contains_key("crm"),
        "no policy for crm: nothing dropped"
    );
    let f = by_email(&db, "f@x.com").profile;
    assert!(f.attributes.contains_key("first_name"));
    assert!(!f.attributes.contains_key("likes"));
    assert!(!f.attributes.contains_key("birth_date"));
    let snap = db.snapshot();
    assert!(snap
        .indexes()
        .term(&Term::Eq("likes".into(), "nike".into()))
        .is_empty());
    assert_eq!(
        snap.indexes()
            .term(&Term::Eq("likes".into(), "puma".into()))
            .len(),
        1
    );
    assert_eq!(
        snap.indexes()
            .term(&Term::Eq("likes".into(), "vans".into()))
            .len(),
        1
    );
}

#[test]
fn policies_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let mut policies = ScopePolicies::none();
    policies.set_source("crm", &[("basic", &["email"])]);
    let db =
        Engine::open_with(dir.path(), Config::default().with_scope_policies(policies)).unwrap();
    let r = ingest(
        &db,
        &[
            r#"{"source":"crm","scopes":["basic"],"identifiers":{"email":"p@x.com","crm_id":"C1"},"attributes":{"city":"Gent"}}"#,
        ],
    );
    assert_eq!(r.dropped_by_scope["crm"].len(), 2);
    let p = by_email(&db, "p@x.com").profile;
    assert_eq!(p.identifiers.len(), 1);
    assert!(p.attributes.is_empty());
}
