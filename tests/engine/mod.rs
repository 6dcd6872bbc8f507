//! Tests of the storage engine through the embedding API.

mod aliases;
mod bad_input;
mod concurrency;
mod durability;
mod grouped_import;
mod identity;
mod import;
mod journal;
mod limits;
mod lookalike;
mod model;
mod scope;

use cidb::{Engine, Lookup, ProfileView};

/// A fresh database in a temp dir (kept alive by the returned guard).
pub fn fresh() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(dir.path()).expect("open");
    (dir, engine)
}

/// Ingests records, asserting that none was rejected.
pub fn ingest(engine: &Engine, records: &[&str]) -> cidb::IngestReport {
    let report = engine.ingest_json(records).expect("ingest");
    assert_eq!(report.rejected, vec![], "unexpected rejections");
    report
}

/// The profile found by an email.
pub fn by_email(engine: &Engine, email: &str) -> ProfileView {
    engine
        .lookup(&Lookup::Email(email.into()))
        .expect("lookup")
        .unwrap_or_else(|| panic!("no profile for {email}"))
}

/// Asserts that `check` finds nothing wrong.
pub fn assert_clean(engine: &Engine) {
    let report = engine.check().expect("check");
    assert!(
        report.is_clean(),
        "check found problems: {:#?}",
        report.problems
    );
}
