//! The result cache (`LeafCache`) never serves a stale answer: after every change a reader
//! can see (ingest, consent, erasure, suppression lists, saved segments) and at every
//! evaluation time (windows whose start crosses an event, `age` across midnight), a cached
//! count or evaluation equals an uncached one.

use engine::{format_rfc3339, parse_rfc3339, Engine, Lookup, Millis, MS_PER_DAY};
use proptest::prelude::*;
use query::{LeafCache, Segments};

/// 2026-01-10T00:00:00Z.
fn base() -> Millis {
    parse_rfc3339("2026-01-10T00:00:00Z").unwrap()
}

/// One person; `events`: (category, time, value) of purchases.
fn person(i: u32, country: &str, marketing: bool, events: &[(&str, Millis, u32)]) -> String {
    let events: Vec<_> = events
        .iter()
        .map(|(c, at, v)| {
            serde_json::json!({"type": "purchase", "category": c, "at": format_rfc3339(*at), "value": v})
        })
        .collect();
    serde_json::json!({
        "source": "crm",
        "identifiers": {"email": format!("p{i}@example.com")},
        "attributes": {"country": country, "birth_date": format!("{}-01-{:02}", 1986 + i % 5, 9 + i % 3)},
        "consent": {"marketing": marketing},
        "events": events,
    })
    .to_string()
}

fn open() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    (dir, engine)
}

/// Counts `expr` at `at` with the cache and without; they must agree. Returns the count.
fn agree(engine: &Engine, cache: &LeafCache, expr: &str, at: Millis) -> u64 {
    let cached = Segments::new(engine)
        .with_cache(cache)
        .at(at)
        .count(expr)
        .unwrap();
    let fresh = Segments::new(engine).at(at).count(expr).unwrap();
    assert_eq!(cached, fresh, "{expr} at {}", format_rfc3339(at));
    let members = Segments::new(engine)
        .with_cache(cache)
        .at(at)
        .evaluate(expr)
        .unwrap()
        .into_bitmap();
    let fresh_members = Segments::new(engine)
        .at(at)
        .evaluate(expr)
        .unwrap()
        .into_bitmap();
    assert_eq!(members, fresh_members, "{expr} at {}", format_rfc3339(at));
    cached
}

/// A database with two opted-in Dutch jeans buyers (a second ago), checked to be counted
/// in [`MARKETING`]: the database, its directory, a leaf cache and the evaluation time.
fn two_recent_buyers_in_nl() -> (tempfile::TempDir, Engine, LeafCache, Millis) {
    let (dir, engine) = open();
    let t = base();
    let cache = LeafCache::new();
    engine
        .ingest_json(&[
            person(1, "NL", true, &[("jeans", t - 1000, 5)]),
            person(2, "NL", true, &[("jeans", t - 1000, 5)]),
        ])
        .unwrap();
    assert_eq!(agree(&engine, &cache, MARKETING, t), 2);
    (dir, engine, cache, t)
}

const MARKETING: &str = r#"country = "NL" AND consent("marketing") AND event("purchase", within 2d) AND NOT suppressed()"#;

#[test]
fn a_repeated_count_is_answered_from_the_cache_until_an_event_leaves_the_window() {
    let (_dir, engine) = open();
    let t = base();
    engine
        .ingest_json(&[
            person(1, "NL", true, &[("jeans", t - MS_PER_DAY, 10)]),
            person(2, "NL", true, &[("jeans", t - 3 * MS_PER_DAY, 10)]),
        ])
        .unwrap();
    let cache = LeafCache::new();
    let expr = r#"event("purchase", within 2d)"#;
    let at = t + 1000;
    assert_eq!(agree(&engine, &cache, expr, at), 1);
    let (hits, _) = cache.count_stats();
    // A millisecond later the window holds the same events: a hit.
    assert_eq!(agree(&engine, &cache, expr, at + 1), 1);
    assert!(cache.count_stats().0 > hits);
    // Until the event at t - 1d leaves it: at t + 1d it is the window's first instant,
    // a millisecond later it is out.
    assert_eq!(agree(&engine, &cache, expr, t + MS_PER_DAY), 1);
    assert_eq!(agree(&engine, &cache, expr, t + MS_PER_DAY + 1), 0);
    // Back in time: the event at t - 3d enters at t - 1d.
    assert_eq!(agree(&engine, &cache, expr, t - MS_PER_DAY - 1), 2);
    assert_eq!(agree(&engine, &cache, expr, t - MS_PER_DAY), 2);
    assert_eq!(agree(&engine, &cache, expr, t - MS_PER_DAY + 1), 1);
}

#[test]
fn age_moves_on_at_midnight() {
    let (_dir, engine) = open();
    // Born 1986-01-09: 40 on 2026-01-09.
    engine.ingest_json(&[person(0, "NL", true, &[])]).unwrap();
    let cache = LeafCache::new();
    let expr = "age BETWEEN 25 AND 39";
    let midnight = parse_rfc3339("2026-01-09T00:00:00Z").unwrap();
    assert_eq!(agree(&engine, &cache, expr, midnight - 1), 1);
    assert_eq!(agree(&engine, &cache, expr, midnight - 2), 1);
    assert_eq!(agree(&engine, &cache, expr, midnight), 0);
    assert_eq!(agree(&engine, &cache, expr, midnight - 1), 1);
}

#[test]
fn ingest_and_consent_changes_are_seen() {
    let (_dir, engine) = open();
    let t = base();
    let cache = LeafCache::new();
    engine
        .ingest_json(&[person(1, "NL", true, &[("jeans", t - 1000, 5)])])
        .unwrap();
    assert_eq!(agree(&engine, &cache, MARKETING, t), 1);
    // A new matching person.
    engine
        .ingest_json(&[person(2, "NL", true, &[("shoes", t - 2000, 5)])])
        .unwrap();
    assert_eq!(agree(&engine, &cache, MARKETING, t), 2);
    // A new event of a known person, inside the window, for an event-only expression.
    let expr = r#"event("purchase", within 2d, count >= 2)"#;
    assert_eq!(agree(&engine, &cache, expr, t), 0);
    engine
        .ingest_json(&[person(2, "NL", true, &[("shoes", t - 3000, 5)])])
        .unwrap();
    assert_eq!(agree(&engine, &cache, expr, t), 1);
    // Consent withdrawn.
    engine.ingest_json(&[person(1, "NL", false, &[])]).unwrap();
    assert_eq!(agree(&engine, &cache, MARKETING, t), 1);
}

#[test]
fn erasure_is_seen() {
    let (_dir, engine, cache, t) = two_recent_buyers_in_nl();
    engine
        .forget(&Lookup::Email("p1@example.com".into()), &Default::default())
        .unwrap();
    assert_eq!(agree(&engine, &cache, MARKETING, t), 1);
}

#[test]
fn suppression_list_changes_are_seen() {
    let (_dir, engine, cache, t) = two_recent_buyers_in_nl();
    engine
        .suppress_import("bounces", "p1@example.com\n".as_bytes(), None)
        .unwrap();
    assert_eq!(agree(&engine, &cache, MARKETING, t), 1);
    assert_eq!(agree(&engine, &cache, r#"suppressed("bounces")"#, t), 1);
    assert!(engine.suppress_delete("bounces").unwrap());
    assert_eq!(agree(&engine, &cache, MARKETING, t), 2);
    // An objection is a suppression list too.
    engine
        .object(&Lookup::Email("p2@example.com".into()), "email")
        .unwrap();
    assert_eq!(agree(&engine, &cache, MARKETING, t), 1);
}

#[test]
fn saved_segment_redefinition_is_seen() {
    let (_dir, engine) = open();
    let t = base();
    let cache = LeafCache::new();
    engine
        .ingest_json(&[
            person(1, "NL", true, &[("jeans", t - 1000, 5)]),
            person(2, "DE", true, &[("jeans", t - 1000, 5)]),
        ])
        .unwrap();
    let s = Segments::new(&engine).with_cache(&cache).at(t);
    s.save("target", r#"country = "NL""#).unwrap();
    let expr = r#"segment("target") AND event("purchase", within 1d)"#;
    assert_eq!(agree(&engine, &cache, expr, t), 1);
    s.save("target", r#"country IN ("NL", "DE")"#).unwrap();
    assert_eq!(agree(&engine, &cache, expr, t), 2);
    // Nested: a segment that refers to the redefined one.
    s.save("outer", r#"segment("target") AND consent("marketing")"#)
        .unwrap();
    assert_eq!(agree(&engine, &cache, r#"segment("outer")"#, t), 2);
    s.save("target", r#"country = "DE""#).unwrap();
    assert_eq!(agree(&engine, &cache, r#"segment("outer")"#, t), 1);
    s.delete("outer").unwrap();
    s.delete("target").unwrap();
    assert!(Segments::new(&engine)
        .with_cache(&cache)
        .at(t)
        .count(r#"segment("outer")"#)
        .is_err());
}

/// Expressions whose answers depend on the evaluation time in every way the planner knows.
const EXPRS: &[&str] = &[
    r#"event("purchase", within 1d)"#,
    r#"event("purchase", category = "jeans", within 2d, count >= 2)"#,
    r#"event("purchase", within 1d, sum >= 15)"#,
    r#"event("purchase", within 3d, before "2026-01-11")"#,
    r#"event("purchase", since "2026-01-09", within 1d)"#,
    r#"age BETWEEN 36 AND 38"#,
    r#"country = "NL" AND consent("marketing") AND event("purchase", category = "jeans", within 2d) AND NOT event("purchase", within 1d, count >= 2)"#,
    r#"age >= 38 OR event("purchase", category = "shoes", within 1d)"#,
];

/// A person to ingest: (index, NL?, consent, purchases (jeans?, offset from base in ms,
/// value)).
type Person = (u32, bool, bool, Vec<(bool, i64, u32)>);

#[derive(Debug, Clone)]
enum Step {
    /// People to ingest.
    Ingest(Vec<Person>),
    /// Moves the evaluation time on (or back) by this many ms.
    Advance(i64),
    /// Moves the evaluation time to just around where an event leaves a window:
    /// (which event, which window length in days, -1/0/+1).
    Cross(usize, i64, i64),
    /// Erases a person.
    Forget(u32),
}

fn step() -> impl Strategy<Value = Step> {
    let event = (any::<bool>(), -4 * MS_PER_DAY..4 * MS_PER_DAY, 0u32..20);
    let people = proptest::collection::vec(
        (
            0u32..12,
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(event, 0..4),
        ),
        1..4,
    );
    prop_oneof![
        3 => people.prop_map(Step::Ingest),
        3 => prop_oneof![
            Just(1i64),
            Just(-1i64),
            -3_600_000i64..3_600_000,
            Just(MS_PER_DAY),
            -2 * MS_PER_DAY..2 * MS_PER_DAY,
        ]
        .prop_map(Step::Advance),
        3 => (0usize..64, 1i64..4, -1i64..=1).prop_map(|(e, d, x)| Step::Cross(e, d, x)),
        1 => (0u32..12).prop_map(Step::Forget),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Ingests, erasures and moving evaluation times in any order: cached and uncached
    /// answers agree at every step.
    #[test]
    fn cached_answers_equal_uncached(steps in proptest::collection::vec(step(), 1..16),
                                     start in -2 * MS_PER_DAY..2 * MS_PER_DAY) {
        let (_dir, engine) = open();
        let cache = LeafCache::new();
        let mut at = base() + start;
        let mut times: Vec<Millis> = Vec::new();
        for step in steps {
            match step {
                Step::Ingest(people) => {
                    let records: Vec<String> = people
                        .iter()
                        .map(|(i, nl, consent, events)| {
                            let events: Vec<_> = events
                                .iter()
                                .map(|(jeans, off, v)| {
                                    (if *jeans { "jeans" } else { "shoes" }, base() + off, *v)
                                })
                                .collect();
                            times.extend(events.iter().map(|e| e.1));
                            person(*i, if *nl { "NL" } else { "DE" }, *consent, &events)
                        })
                        .collect();
                    engine.ingest_json(&records).unwrap();
                }
                Step::Advance(ms) => at += ms,
                Step::Cross(e, days, x) => {
                    if !times.is_empty() {
                        // Sweep across the instant the event leaves the window (or, going
                        // back, enters it), a millisecond at a time.
                        let edge = times[e % times.len()] + days * MS_PER_DAY;
                        for d in -2..=2 {
                            let t = edge + d * x.signum() + i64::from(x == 0) * d;
                            for expr in EXPRS {
                                agree(&engine, &cache, expr, t);
                            }
                        }
                        at = edge + x;
                    }
                }
                Step::Forget(i) => {
                    engine
                        .forget(&Lookup::Email(format!("p{i}@example.com")), &Default::default())
                        .ok();
                }
            }
            for expr in EXPRS {
                agree(&engine, &cache, expr, at);
            }
        }
    }
}

#[test]
fn extreme_evaluation_times_agree() {
    let (_dir, engine) = open();
    engine
        .ingest_json(&[person(1, "NL", true, &[("jeans", base(), 5)])])
        .unwrap();
    let cache = LeafCache::new();
    for at in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        for expr in EXPRS.iter().chain(&[r#"event("purchase", within 200y)"#]) {
            for _ in 0..2 {
                let cached = Segments::new(&engine).with_cache(&cache).at(at).count(expr);
                let fresh = Segments::new(&engine).at(at).count(expr);
                assert_eq!(
                    format!("{cached:?}"),
                    format!("{fresh:?}"),
                    "{expr} at {at}"
                );
            }
        }
    }
}
