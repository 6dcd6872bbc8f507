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
    export_formats(
        c,
        "export_cold",
        &db,
        60,
        &[Format::MetaApi, Format::Hashes],
    );
}

fn export(c: &mut Criterion) {
    let (_dir, db) = cidb_benches::database("CIDB_BENCH_EXPORT_PERSONS", 4);
    export_formats(c, "export", &db, 30, &[Format::MetaApi, Format::GoogleCsv]);
}

/// Times exporting every live profile of `db` to each format, in the group `name`.
fn export_formats(
    c: &mut Criterion,
    name: &str,
    db: &engine::Engine,
    secs: u64,
    formats: &[Format],
) {
    let all = db.segment("ALL").expect("ALL").into_bitmap();
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(secs))
        .throughput(Throughput::Elements(all.len()));
    for format in formats {
        group.bench_with_input(
            BenchmarkId::new(format.name(), all.len()),
            format,
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
