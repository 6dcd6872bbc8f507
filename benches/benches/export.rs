//! Hashed export throughput (profiles/s): every live profile of the database as one
//! segment, policy `ALL` (nobody removed), to `meta-api` and `google-csv`, written to a
//! sink. Measures the export stage itself: reading and decrypting profiles, normalizing,
//! SHA-256, formatting, in parallel on all cores.
//!
//! Database: `CIDB_BENCH_DB` names an existing data directory (the README figure uses a
//! 1,000,000-person database imported with `cidb import`); otherwise
//! `CIDB_BENCH_EXPORT_PERSONS` persons (default 20,000) are generated into a temp dir.

use cidb::export::{ExportOptions, Format};
use cidb::{Engine, EngineExt};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn database() -> (Option<tempfile::TempDir>, Engine) {
    if let Ok(dir) = std::env::var("CIDB_BENCH_DB") {
        return (None, Engine::open(&dir).expect("open CIDB_BENCH_DB"));
    }
    let persons = std::env::var("CIDB_BENCH_EXPORT_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Engine::open(dir.path()).expect("open");
    for chunk in cidb_benches::records(persons, 4).chunks(50_000) {
        db.ingest_json(chunk).expect("ingest");
    }
    (Some(dir), db)
}

fn export(c: &mut Criterion) {
    let (_dir, db) = database();
    let all = db.segment("ALL").expect("ALL").into_bitmap();
    let mut group = c.benchmark_group("export");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(all.len()));
    for format in [Format::MetaApi, Format::GoogleCsv] {
        group.bench_with_input(
            BenchmarkId::new(format.name(), all.len()),
            &format,
            |b, format| {
                b.iter(|| {
                    db.export(
                        &all,
                        &all,
                        &ExportOptions::new(*format),
                        &mut std::io::sink(),
                    )
                    .expect("export")
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);
