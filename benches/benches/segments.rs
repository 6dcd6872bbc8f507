//! Segment evaluation latency: the queries of `benches/queries.json` (the same file
//! `cidb bench --queries` reads) as counts, plus a full evaluation and a breakdown.
//!
//! Database: `CIDB_BENCH_DB` names an existing data directory (the README figures use a
//! 1,000,000-person database imported with `cidb import`); otherwise
//! `CIDB_BENCH_QUERY_PERSONS` persons (default 20,000) are generated into a temp dir.
//! Evaluation time is pinned to the generator's reference time.

use cidb::{EngineExt, REFERENCE_TIME};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn segments(c: &mut Criterion) {
    let (_dir, db) = cidb_benches::database("CIDB_BENCH_QUERY_PERSONS", 3);
    let file: serde_json::Value = serde_json::from_str(include_str!("../queries.json")).unwrap();
    let s = db.segments().at(REFERENCE_TIME);
    for (name, expr) in file["segments"].as_object().unwrap() {
        s.save(name, expr.as_str().unwrap()).expect("save");
    }
    for (name, seed) in file["models"].as_object().into_iter().flatten() {
        let request = cidb::query::TrainRequest {
            seed: seed.as_str().unwrap().to_string(),
            ..Default::default()
        };
        s.train_model(name, &request).expect("train");
    }
    let mut group = c.benchmark_group("count");
    for q in file["queries"].as_array().unwrap() {
        let (name, expr) = (q["name"].as_str().unwrap(), q["expr"].as_str().unwrap());
        group.bench_with_input(BenchmarkId::from_parameter(name), expr, |b, expr| {
            b.iter(|| s.count(expr).expect("count"))
        });
    }
    group.finish();
    // The server's result cache (`query::LeafCache`) on the marketing segment: a repeated
    // count (one lookup), and an evaluation whose leaves all come from the cache (the
    // AND of eight bitmaps that a count-cache miss still pays), both evaluated now.
    let marketing = file["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "marketing_8")
        .and_then(|q| q["expr"].as_str())
        .unwrap();
    let cache = cidb::query::LeafCache::new();
    c.bench_function("cached/count_marketing_8_now", |b| {
        b.iter(|| {
            db.segments()
                .with_cache(&cache)
                .count(marketing)
                .expect("count")
        })
    });
    c.bench_function("cached/leaves_evaluate_marketing_8_now", |b| {
        b.iter(|| {
            db.segments()
                .with_cache(&cache)
                .evaluate(marketing)
                .expect("evaluate")
        })
    });
    let example = file["queries"][1]["expr"].as_str().unwrap();
    c.bench_function("evaluate/spec_example", |b| {
        b.iter(|| s.evaluate(example).expect("evaluate"))
    });
    c.bench_function("breakdown/country_of_opted_in", |b| {
        b.iter(|| {
            s.breakdown("consent(\"marketing\")", "country", 10)
                .expect("breakdown")
        })
    });
}

criterion_group!(benches, segments);
criterion_main!(benches);
