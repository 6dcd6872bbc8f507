//! Lookalike model training plus scoring of every live profile (models.md): the issue's
//! target is at most 2 s for 1M profiles with at least 300 candidate features, on 2 cores.
//!
//! Database: `CIDB_BENCH_DB` names an existing data directory (the README figure uses a
//! 1,000,000-person database imported with `cidb import`); otherwise
//! `CIDB_BENCH_MODEL_PERSONS` persons (default 20,000) are generated into a temp dir. The
//! seed is `CIDB_BENCH_MODEL_SEED` (default: repeat buyers, `event("purchase", count >= 2)`).
//! Each run prints the report's candidate count, AUC and time once.

use cidb::{EngineExt, TrainRequest, REFERENCE_TIME};
use criterion::{criterion_group, criterion_main, Criterion};

fn models(c: &mut Criterion) {
    let (_dir, db) = cidb_benches::database("CIDB_BENCH_MODEL_PERSONS", 5);
    let seed = std::env::var("CIDB_BENCH_MODEL_SEED")
        .unwrap_or_else(|_| r#"event("purchase", count >= 2)"#.to_string());
    let s = db.segments().at(REFERENCE_TIME);
    let request = TrainRequest {
        seed: seed.clone(),
        ..TrainRequest::default()
    };
    let report = s.train_model("bench", &request).expect("train");
    eprintln!(
        "model on {} profiles, seed {seed}: {} candidates, {} features, AUC {:.3}, lift@10 \
         {:.2}, {} ms",
        report.population,
        report.candidates,
        report.features,
        report.auc,
        report.lift_at_10,
        report.train_ms
    );
    let mut group = c.benchmark_group("model");
    group.sample_size(10);
    group.bench_function("train_and_score", |b| {
        b.iter(|| s.train_model("bench", &request).expect("train"))
    });
    group.finish();
    let live = s.count("ALL").expect("count");
    // The README's 8-predicate marketing segment with a score instead of one predicate.
    s.save("existing_customers", r#"event("purchase", within 30d)"#)
        .expect("save");
    for expr in [
        r#"score("bench") >= 95"#,
        r#"score("bench") >= 90 AND country = "NL" AND interests HAS "running""#,
    ] {
        let e = s.explain(expr).expect("explain");
        eprintln!(
            "{expr}: {} members, plan {:.0} us, eval {:.0} us",
            e.count, e.plan_micros, e.eval_micros
        );
    }
    c.bench_function("count/score_in_8_predicates", |b| {
        b.iter(|| {
            s.count(
                r#"score("bench") >= 90 AND country = "NL" AND interests HAS "running"
                   AND age BETWEEN 25 AND 40 AND consent("marketing") AND identifier("email")
                   AND source("crm") AND NOT segment("existing_customers")"#,
            )
            .expect("count")
        })
    });
    c.bench_function("index/score_between_95_100", |b| {
        let snap = db.snapshot();
        let scores = snap.model_scores("bench").expect("model");
        b.iter(|| scores.between(95, 100).len())
    });
    c.bench_function("count/score_alone", |b| {
        b.iter(|| s.count(r#"score("bench") >= 95"#).expect("count"))
    });
    assert!(live > 0);
}

criterion_group!(benches, models);
criterion_main!(benches);
