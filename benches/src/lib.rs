//! Shared helpers for cidb's criterion benchmarks.

/// Generated records for `persons` people (seeded, so every run measures the same data).
pub fn records(persons: u64, seed: u64) -> Vec<String> {
    engine::Generator::new(persons, seed).records()
}
