//! Ingest throughput and reopen time.
//!
//! - `ingest/batch`: records per second of `Engine::ingest_json` on generated data
//!   (`Generator`, seed 1), one atomic, durable batch per 20,000 records, into a fresh
//!   database in a temp dir. Dataset size: `CIDB_BENCH_PERSONS` (default 20,000 persons).
//! - `ingest/import`: the same records as JSON Lines through `Engine::import_jsonl`, the
//!   importers' path: parsing on parser threads, each batch resolved while the one
//!   before commits (`cidb import --in-file-order`, minus reading the file).
//! - `ingest/import_file`: the same lines from a temp file through
//!   `Engine::import_jsonl_file` (what `cidb import FILE` does): the grouping pass, then
//!   the lines group by group.
//! - `ingest/events_only`: events per second of the live stream (`cidb generate
//!   --events-only`: small records of one identifier and one to three events, for persons
//!   of the same seed) imported onto a database of `CIDB_BENCH_PERSONS` persons (built once
//!   and copied for each run, outside the timing). `CIDB_BENCH_EVENTS` events (default
//!   the number of persons).
//! - `reopen`: time to open a database of `CIDB_BENCH_REOPEN_PERSONS` persons (default
//!   20,000), built once before measuring, or the existing database `CIDB_BENCH_DB`.
//!   Reopening loads the index checkpoint; it does not rebuild.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::Engine;
use std::time::Duration;

fn persons(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn ingest(c: &mut Criterion) {
    let n = persons("CIDB_BENCH_PERSONS");
    let records = cidb_benches::records(n, 1);
    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_with_input(BenchmarkId::new("batch", n), &records, |b, records| {
        b.iter_with_setup(
            || tempfile::tempdir().expect("temp dir"),
            |dir| {
                let db = Engine::open(dir.path()).expect("open");
                for chunk in records.chunks(20_000) {
                    db.ingest_json(chunk).expect("ingest");
                }
                drop(db);
                dir
            },
        )
    });
    let lines = records.join("\n");
    group.bench_with_input(BenchmarkId::new("import", n), &lines, |b, lines| {
        b.iter_with_setup(
            || tempfile::tempdir().expect("temp dir"),
            |dir| {
                let db = Engine::open(dir.path()).expect("open");
                db.import_jsonl(lines.as_bytes(), &Default::default(), &mut |_| {})
                    .expect("import");
                drop(db);
                dir
            },
        )
    });
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &lines).expect("write the lines");
    group.bench_with_input(
        BenchmarkId::new("import_file", n),
        file.path(),
        |b, path| {
            b.iter_with_setup(
                || tempfile::tempdir().expect("temp dir"),
                |dir| {
                    let db = Engine::open(dir.path()).expect("open");
                    let input = std::fs::File::open(path).expect("open the lines");
                    db.import_jsonl_file(&input, &Default::default(), &mut |_| {})
                        .expect("import");
                    drop(db);
                    dir
                },
            )
        },
    );
    group.finish();
}

fn events_only(c: &mut Criterion) {
    let n = persons("CIDB_BENCH_PERSONS");
    let events = std::env::var("CIDB_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    let base = tempfile::tempdir().expect("temp dir");
    {
        let db = Engine::open(base.path()).expect("open");
        let lines = cidb_benches::records(n, 1).join("\n");
        db.import_jsonl(lines.as_bytes(), &Default::default(), &mut |_| {})
            .expect("import");
    }
    let mut live = Vec::new();
    engine::Generator::new(n, 1)
        .write_events_only(events, &mut live, &mut |_| {})
        .expect("generate the live stream");
    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(events));
    group.bench_with_input(BenchmarkId::new("events_only", n), &live, |b, live| {
        b.iter_with_setup(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                copy_dir(base.path(), dir.path());
                dir
            },
            |dir| {
                let db = Engine::open(dir.path()).expect("open");
                db.import_jsonl(live.as_slice(), &Default::default(), &mut |_| {})
                    .expect("import");
                drop(db);
                dir
            },
        )
    });
    group.finish();
}

/// Copies a closed data directory (files and subdirectories).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn reopen(c: &mut Criterion) {
    let n = persons("CIDB_BENCH_REOPEN_PERSONS");
    let built = tempfile::tempdir().expect("temp dir");
    // An existing database (`CIDB_BENCH_DB`, e.g. one `cidb import` wrote), or one built
    // here from `n` generated persons.
    let (dir, name) = match std::env::var("CIDB_BENCH_DB") {
        Ok(dir) => (std::path::PathBuf::from(dir), "existing".to_string()),
        Err(_) => {
            let db = Engine::open(built.path()).expect("open");
            let records = cidb_benches::records(n, 2);
            for chunk in records.chunks(50_000) {
                db.ingest_json(chunk).expect("ingest");
            }
            (built.path().to_path_buf(), n.to_string())
        }
    };
    let mut group = c.benchmark_group("reopen");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter(|| Engine::open(&dir).expect("reopen"))
    });
    group.finish();
}

criterion_group!(benches, ingest, events_only, reopen);
criterion_main!(benches);
