//! Shared helpers for cidb's criterion benchmarks.

/// The database a benchmark runs on: `CIDB_BENCH_DB` names an existing data directory;
/// otherwise `persons_var` persons (default 20,000) generated with `seed` into a temp dir
/// (kept alive by the returned guard).
pub fn database(persons_var: &str, seed: u64) -> (Option<tempfile::TempDir>, engine::Engine) {
    database_with(persons_var, seed, engine::Config::default())
}

/// [`database`], opened with `config`.
pub fn database_with(
    persons_var: &str,
    seed: u64,
    config: engine::Config,
) -> (Option<tempfile::TempDir>, engine::Engine) {
    if let Ok(dir) = std::env::var("CIDB_BENCH_DB") {
        return (
            None,
            engine::Engine::open_with(&dir, config).expect("open CIDB_BENCH_DB"),
        );
    }
    let persons = std::env::var(persons_var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = engine::Engine::open_with(dir.path(), config).expect("open");
    for chunk in records(persons, seed).chunks(50_000) {
        db.ingest_json(chunk).expect("ingest");
    }
    (Some(dir), db)
}

/// Generated records for `persons` people (seeded, so every run measures the same data).
pub fn records(persons: u64, seed: u64) -> Vec<String> {
    engine::Generator::new(persons, seed).records()
}

/// The allocator the `cidb` binary uses, so benchmarks measure what users run (sled and
/// the export pipeline allocate heavily; glibc's allocator is markedly slower here).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
