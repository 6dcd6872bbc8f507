//! Hashed export throughput (profiles/s): every live profile of the database as one
//! segment, policy `ALL` (nobody removed), written to a sink. Measures the export stage
//! itself: reading and decrypting profiles, normalizing, SHA-256, formatting, in parallel
//! on all cores.
//!
//! - `export_cold`: `meta-api` and `hashes` with the export row cache off, as a one-shot
//!   `cidb export` runs: every profile read, decrypted and decoded each time.
//! - `export`: `meta-api` and `google-csv` in the steady state of a server, rows from the
//!   row cache (filled by the warm-up).
//!
//! Database: `CIDB_BENCH_DB` names an existing data directory (the README figure uses a
//! 1,000,000-person database imported with `cidb import`); otherwise
//! `CIDB_BENCH_EXPORT_PERSONS` persons (default 20,000) are generated into a temp dir.

use cidb::export::{ExportOptions, Format};
use cidb::EngineExt;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn export_cold(c: &mut Criterion) {
    let (_dir, db) = cidb_benches::database_with(
        "CIDB_BENCH_EXPORT_PERSONS",
        4,
        engine::Config::default().with_export_cache(false),
    );
    let all = db.segment("ALL").expect("ALL").into_bitmap();
    let mut group = c.benchmark_group("export_cold");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .throughput(Throughput::Elements(all.len()));
    for format in [Format::MetaApi, Format::Hashes] {
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

fn export(c: &mut Criterion) {
    let (_dir, db) = cidb_benches::database("CIDB_BENCH_EXPORT_PERSONS", 4);
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

criterion_group!(benches, export_cold, export);
criterion_main!(benches);
