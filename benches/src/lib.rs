//! Shared helpers for cidb's criterion benchmarks.

/// Generated records for `persons` people (seeded, so every run measures the same data).
pub fn records(persons: u64, seed: u64) -> Vec<String> {
    engine::Generator::new(persons, seed).records()
}

/// The allocator the `cidb` binary uses, so benchmarks measure what users run (sled and
/// the export pipeline allocate heavily; glibc's allocator is markedly slower here).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
