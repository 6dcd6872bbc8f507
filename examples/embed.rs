//! A host application embedding cidb: open a database, ingest records from two sources,
//! and read the unified profile back.
//!
//! Run with `cargo run --example embed`.

use cidb::{Engine, EngineExt, Lookup};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("cidb-embed-example-{}", std::process::id()));
    let db = Engine::open(&dir)?;
    let report = db.ingest_json(&[
        r#"{"source":"crm","observed_at":"2026-01-01T00:00:00Z","identifiers":{"email":"Jane.Doe@Example.com","crm_id":"C-1"},"attributes":{"first_name":"Jane","country":"NL"},"consent":{"marketing":true,"custom_audiences":true}}"#,
        r#"{"source":"web_form","observed_at":"2026-02-01T00:00:00Z","identifiers":{"email":" jane.doe@example.com ","phone":"06 12345678"},"attributes":{"country":"NL","interests":["running"]}}"#,
    ])?;
    println!(
        "new profiles: {}, updated: {}",
        report.new_profiles, report.updated_profiles
    );
    let jane = db
        .lookup(&Lookup::Email("JANE.DOE@example.com".into()))?
        .expect("ingested above");
    println!(
        "profile {} holds {} identifiers from {} sources",
        jane.profile.id,
        jane.profile.identifiers.len(),
        jane.profile.sources.len()
    );
    println!("live profiles: {}", db.stats().profiles);

    // Segments: evaluate, save, explain.
    let runners =
        db.segment(r#"country = "NL" AND interests HAS "running" AND consent("marketing")"#)?;
    println!("opted-in NL runners: {}", runners.count());
    db.segments().save(
        "nl_runners",
        r#"country = "NL" AND interests HAS "running""#,
    )?;
    let plan = db
        .segments()
        .explain(r#"segment("nl_runners") AND NOT identifier("phone")"#)?;
    print!("{plan}");

    // A hashed audience for Meta: consent("custom_audiences") and suppression lists apply.
    db.suppress_import("objections", &b"someone@example.com\n"[..], Some("NL"))?;
    let mut audience = Vec::new();
    let report = db.segments().export(
        "nl_runners",
        None,
        &cidb::export::ExportOptions::new(cidb::export::Format::MetaApi).with_min_audience(1),
        &mut audience,
    )?;
    println!(
        "exported {} profiles ({} rows); {} removed by policy, {} suppressed",
        report.profiles, report.rows, report.removed_by_policy, report.removed_by_suppression
    );
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
