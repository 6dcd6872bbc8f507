//! Differential property test: random expressions over random profile sets give the same
//! members from the bitmap evaluator (and the same count from the count path) as from the
//! naive reference that scans stored profiles. The data is built around the evaluation
//! time so that birthdays, leap days and `within` windows fall on their edges.
//!
//! Cases: `CIDB_QUERY_CASES` (default 24), each with `CIDB_QUERY_EXPRS` expressions
//! (default 40).

use super::reference::{live_profiles, Reference};
use cidb::{civil_from_day, day_of, format_rfc3339, parse_rfc3339, Engine, EngineExt, Millis};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Evaluation times that put edges in play (a non-leap 28 February and 1 March, a leap
/// day, the generator's reference time).
const TIMES: [&str; 4] = [
    "2026-11-01T00:00:00Z",
    "2027-02-28T12:00:00Z",
    "2027-03-01T00:00:00Z",
    "2028-02-29T23:59:59.999Z",
];

const COUNTRIES: [&str; 6] = ["NL", "nl", "DE", "BE", "Netherlands", "FR"];
const INTERESTS: [&str; 4] = ["running", "Travel", "cooking", "chess"];
const CITIES: [&str; 3] = ["Amsterdam", "amsterdam ", "Berlin"];
const EVENT_TYPES: [&str; 2] = ["purchase", "visit"];
const CATEGORIES: [&str; 3] = ["jeans", "shoes", "Jeans"];
const VALUES: [f64; 6] = [0.0, 10.5, 99.99, 100.0, -5.25, 1234.5];
const WINDOWS_DAYS: [i64; 3] = [7, 30, 365];

/// A birth date close to a birthday at `at`: `years` back, shifted by `shift` days, or a
/// leap day.
fn birth_date(rng: &mut StdRng, at: Millis) -> String {
    let today = day_of(at);
    if rng.gen_bool(0.2) {
        let leap_years = [1988, 1992, 1996, 2000, 2004];
        return format!("{}-02-29", leap_years.choose(rng).unwrap());
    }
    let years: i32 = rng.gen_range(18..45);
    let shift = rng.gen_range(-2..=2);
    let (y, m, d) = civil_from_day(today + shift);
    let (m, d) = if (m, d) == (2, 29) { (3, 1) } else { (m, d) };
    format!("{:04}-{m:02}-{d:02}", y - years)
}

/// An event time on the edge of a window, or anywhere in the last two years.
fn event_time(rng: &mut StdRng, at: Millis) -> Millis {
    let day = 86_400_000;
    match rng.gen_range(0..4) {
        0 => at - WINDOWS_DAYS.choose(rng).unwrap() * day,
        1 => at - WINDOWS_DAYS.choose(rng).unwrap() * day - 1,
        2 => at - rng.gen_range(0..730) * day - rng.gen_range(0..day),
        _ => at + rng.gen_range(0..10) * day,
    }
}

fn record(rng: &mut StdRng, at: Millis, emails: usize) -> String {
    let mut attrs = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        attrs.insert(k.into(), v);
    };
    if rng.gen_bool(0.7) {
        put("country", COUNTRIES.choose(rng).unwrap().to_string().into());
    }
    if rng.gen_bool(0.5) {
        put("city", CITIES.choose(rng).unwrap().to_string().into());
    }
    if rng.gen_bool(0.6) {
        let n = rng.gen_range(0..3);
        let items: Vec<_> = INTERESTS.choose_multiple(rng, n).cloned().collect();
        put("interests", items.into());
    }
    if rng.gen_bool(0.6) {
        put("birth_date", birth_date(rng, at).into());
    }
    if rng.gen_bool(0.6) {
        put("lifetime_value", (*VALUES.choose(rng).unwrap()).into());
    }
    if rng.gen_bool(0.5) {
        put("newsletter", rng.gen_bool(0.5).into());
    }
    let mut consent = serde_json::Map::new();
    for purpose in ["marketing", "custom_audiences"] {
        if rng.gen_bool(0.5) {
            consent.insert(purpose.into(), rng.gen_bool(0.6).into());
        }
    }
    let events: Vec<serde_json::Value> = (0..rng.gen_range(0..4))
        .map(|_| {
            let mut e = serde_json::json!({
                "type": EVENT_TYPES.choose(rng).unwrap(),
                "at": format_rfc3339(event_time(rng, at)),
            });
            if rng.gen_bool(0.7) {
                e["category"] = CATEGORIES.choose(rng).unwrap().to_string().into();
            }
            if rng.gen_bool(0.8) {
                e["value"] = (*VALUES.choose(rng).unwrap()).into();
            }
            e
        })
        .collect();
    let mut identifiers = serde_json::json!({
        "email": format!("p{}@example.com", rng.gen_range(0..emails)),
    });
    if rng.gen_bool(0.3) {
        identifiers["phone"] = format!("+3161234{:04}", rng.gen_range(0..emails)).into();
    }
    let observed = at - rng.gen_range(0..1000) * 86_400_000;
    let source = *["crm", "shop", "web_form"].choose(rng).unwrap();
    serde_json::json!({
        "source": source,
        "observed_at": format_rfc3339(observed),
        "identifiers": identifiers,
        "attributes": attrs,
        "consent": consent,
        "events": events,
    })
    .to_string()
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn cmp(rng: &mut StdRng) -> &'static str {
    ["=", "!=", "<", "<=", ">", ">="].choose(rng).unwrap()
}

fn date_literal(rng: &mut StdRng, at: Millis) -> String {
    let s = birth_date(rng, at);
    quoted(&s)
}

fn leaf(rng: &mut StdRng, at: Millis, saved: &[String]) -> String {
    let pick = |rng: &mut StdRng, xs: &[&str]| quoted(xs.choose(rng).unwrap());
    match rng.gen_range(0..24) {
        0 => format!("country = {}", pick(rng, &COUNTRIES)),
        1 => format!("country != {}", pick(rng, &COUNTRIES)),
        2 => format!(
            "country IN ({}, {})",
            pick(rng, &COUNTRIES),
            pick(rng, &COUNTRIES)
        ),
        3 => format!("city = {}", pick(rng, &CITIES)),
        4 => [
            "city EXISTS",
            "interests EXISTS",
            "newsletter EXISTS",
            "age EXISTS",
        ]
        .choose(rng)
        .unwrap()
        .to_string(),
        5 => format!("interests HAS {}", pick(rng, &INTERESTS)),
        6 => format!(
            "interests HAS ANY ({}, {})",
            pick(rng, &INTERESTS),
            pick(rng, &INTERESTS)
        ),
        7 => format!(
            "interests HAS ALL ({}, {})",
            pick(rng, &INTERESTS),
            pick(rng, &INTERESTS)
        ),
        8 => format!(
            "interests {} {}",
            ["=", "!="].choose(rng).unwrap(),
            pick(rng, &INTERESTS)
        ),
        9 | 10 => {
            let n = rng.gen_range(17..46) as f64 + if rng.gen_bool(0.1) { 0.5 } else { 0.0 };
            format!("age {} {n}", cmp(rng))
        }
        11 => {
            let a = rng.gen_range(17..40);
            format!("age BETWEEN {a} AND {}", a + rng.gen_range(0..8))
        }
        12 => format!("birth_date {} {}", cmp(rng), date_literal(rng, at)),
        13 => format!(
            "birth_date BETWEEN {} AND {}",
            date_literal(rng, at),
            date_literal(rng, at)
        ),
        14 => format!(
            "lifetime_value {} {}",
            cmp(rng),
            VALUES.choose(rng).unwrap()
        ),
        15 => format!(
            "lifetime_value BETWEEN {} AND {}",
            VALUES.choose(rng).unwrap(),
            VALUES.choose(rng).unwrap()
        ),
        16 => format!(
            "newsletter {} {}",
            ["=", "!="].choose(rng).unwrap(),
            rng.gen_bool(0.5)
        ),
        17 => format!("consent({})", pick(rng, &["marketing", "custom_audiences"])),
        18 => format!("identifier({})", pick(rng, &["email", "phone", "crm_id"])),
        19 => format!("source({})", pick(rng, &["crm", "shop", "web_form", "pos"])),
        20 if !saved.is_empty() => format!("segment({})", quoted(saved.choose(rng).unwrap())),
        21 => ["ALL", "suppressed()"].choose(rng).unwrap().to_string(),
        _ => event(rng, at),
    }
}

fn event(rng: &mut StdRng, at: Millis) -> String {
    let mut s = format!("event({}", quoted(EVENT_TYPES.choose(rng).unwrap()));
    if rng.gen_bool(0.4) {
        s += &format!(", category = {}", quoted(CATEGORIES.choose(rng).unwrap()));
    }
    if rng.gen_bool(0.4) {
        s += &format!(", within {}d", WINDOWS_DAYS.choose(rng).unwrap());
    }
    if rng.gen_bool(0.2) {
        s += &format!(
            ", since {}",
            quoted(&cidb::format_date(day_of(at) - rng.gen_range(0..400)))
        );
    }
    if rng.gen_bool(0.2) {
        s += &format!(
            ", before {}",
            quoted(&cidb::format_date(day_of(at) - rng.gen_range(0..400)))
        );
    }
    if rng.gen_bool(0.3) {
        s += &format!(", count {} {}", cmp(rng), rng.gen_range(0..4));
    }
    if rng.gen_bool(0.3) {
        s += &format!(", sum {} {}", cmp(rng), VALUES.choose(rng).unwrap());
    }
    s + ")"
}

fn expression(rng: &mut StdRng, at: Millis, saved: &[String], depth: u32) -> String {
    if depth == 0 || rng.gen_bool(0.35) {
        return leaf(rng, at, saved);
    }
    match rng.gen_range(0..5) {
        0 => format!("NOT {}", wrap(expression(rng, at, saved, depth - 1))),
        1 | 2 => format!(
            "{} AND {}",
            wrap(expression(rng, at, saved, depth - 1)),
            wrap(expression(rng, at, saved, depth - 1))
        ),
        _ => format!(
            "{} OR {}",
            wrap(expression(rng, at, saved, depth - 1)),
            wrap(expression(rng, at, saved, depth - 1))
        ),
    }
}

fn wrap(s: String) -> String {
    format!("({s})")
}

fn run_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Half the cases evaluate every range on the value buckets (which otherwise only
    // databases with more than 4096 values use), so both paths meet the reference.
    let buckets = rng.gen_bool(0.5);
    cidb::set_range_slices_threshold(if buckets { 0 } else { 4096 });
    let at = parse_rfc3339(TIMES.choose(&mut rng).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let emails = rng.gen_range(5..40);
    for _ in 0..rng.gen_range(1..4) {
        let records: Vec<String> = (0..rng.gen_range(1..40))
            .map(|_| record(&mut rng, at, emails))
            .collect();
        let report = engine.ingest_json(&records).unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }
    // Saved segments (the second may refer to the first).
    let segments = engine.segments().at(at);
    let mut saved_names = Vec::new();
    let mut saved = BTreeMap::new();
    for name in ["s1", "s2"] {
        let expr = expression(&mut rng, at, &saved_names, 2);
        segments.save(name, &expr).unwrap();
        saved.insert(name.to_string(), expr);
        saved_names.push(name.to_string());
    }
    let profiles = live_profiles(&engine);
    let reference = Reference {
        profiles: &profiles,
        at,
        saved,
    };
    let cache = cidb::query::LeafCache::new();
    let cached = engine.segments().at(at).with_cache(&cache);
    let members = |s: &cidb::query::Segments<'_>, expr: &str| -> BTreeSet<u32> {
        s.evaluate(expr)
            .unwrap_or_else(|e| panic!("seed {seed}: {expr}: {e}"))
            .bitmap()
            .iter()
            .collect()
    };
    let mut exprs = Vec::new();
    for _ in 0..env_usize("CIDB_QUERY_EXPRS", 40) {
        let expr = expression(&mut rng, at, &saved_names, 4);
        exprs.push(expr.clone());
        let want = reference.members(&expr);
        for round in ["computed", "from the cache"] {
            assert_eq!(
                members(&cached, &expr),
                want,
                "cached plan ({round}), seed {seed}: {expr}"
            );
        }
        let got: BTreeSet<u32> = segments
            .evaluate(&expr)
            .unwrap_or_else(|e| panic!("seed {seed}: {expr}: {e}"))
            .bitmap()
            .iter()
            .collect();
        if got != want {
            let explained = segments.explain(&expr).map(|e| e.to_string());
            panic!(
                "seed {seed}, at {}: {expr}\n  bitmap:    {got:?}\n  reference: {want:?}\n  saved: {:?}\n{explained:?}",
                format_rfc3339(at),
                reference.saved,
            );
        }
        let count = segments.count(&expr).unwrap();
        assert_eq!(count, want.len() as u64, "count path, seed {seed}: {expr}");
        let explained = segments.explain(&expr).unwrap();
        assert_eq!(explained.count, count, "explain, seed {seed}: {expr}");
    }
    // A change moves the snapshot generation on: cached leaves must not outlive it.
    let more: Vec<String> = (0..rng.gen_range(5..30))
        .map(|_| record(&mut rng, at, emails))
        .collect();
    engine.ingest_json(&more).unwrap();
    // Members and counts, plain and through the leaf cache, against the reference over
    // the profiles live now.
    let recheck = |when: &str, cached: &cidb::query::Segments<'_>| {
        let profiles = live_profiles(&engine);
        let reference = Reference {
            profiles: &profiles,
            at,
            saved: reference.saved.clone(),
        };
        for expr in &exprs {
            let want = reference.members(expr);
            assert_eq!(
                members(cached, expr),
                want,
                "cached plan {when}, seed {seed}: {expr}"
            );
            assert_eq!(
                members(&segments, expr),
                want,
                "{when} (buckets {buckets}), seed {seed}: {expr}"
            );
            assert_eq!(
                segments.count(expr).unwrap(),
                want.len() as u64,
                "count {when}, seed {seed}: {expr}"
            );
        }
    };
    recheck("after an ingest", &cached);
    // An erasure between evaluations: the derived structures drop the person too.
    let victim = format!("p{}@example.com", rng.gen_range(0..emails));
    let mut keep_lists = cidb::ForgetOptions::default();
    keep_lists.suppress_into = None;
    if engine
        .forget(&cidb::Lookup::Email(victim), &keep_lists)
        .is_ok()
    {
        recheck("after an erasure", &cached);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: env_usize("CIDB_QUERY_CASES", 24) as u32,
        ..ProptestConfig::default()
    })]

    #[test]
    fn bitmap_evaluation_matches_a_profile_scan(seed in any::<u64>()) {
        run_case(seed);
    }
}

/// An `event(...)` with a `count` or `sum` filter (or both), with thresholds that sums of
/// [`VALUES`] reach exactly.
fn aggregate_event(rng: &mut StdRng, at: Millis) -> String {
    const SUMS: [f64; 9] = [0.0, 10.5, 99.99, 100.0, 110.5, 200.0, -5.25, 1234.5, 21.0];
    let mut s = format!("event({}", quoted(EVENT_TYPES.choose(rng).unwrap()));
    if rng.gen_bool(0.3) {
        s += &format!(", category = {}", quoted(CATEGORIES.choose(rng).unwrap()));
    }
    match rng.gen_range(0..5) {
        0 | 1 => s += &format!(", within {}d", WINDOWS_DAYS.choose(rng).unwrap()),
        2 => {
            s += &format!(
                ", since {}",
                quoted(&cidb::format_date(day_of(at) - rng.gen_range(0..400)))
            )
        }
        3 => {
            s += &format!(
                ", before {}",
                quoted(&cidb::format_date(day_of(at) - rng.gen_range(-5..400)))
            )
        }
        _ => {}
    }
    let (count, sum) = match rng.gen_range(0..3) {
        0 => (true, false),
        1 => (false, true),
        _ => (true, true),
    };
    if count {
        s += &format!(", count {} {}", cmp(rng), rng.gen_range(0..4));
    }
    if sum {
        s += &format!(", sum {} {}", cmp(rng), SUMS.choose(rng).unwrap());
    }
    s + ")"
}

/// Event aggregates (the cached, slid per-window aggregates of the engine) agree with the
/// profile scan while the evaluation time moves across midnights (to the millisecond),
/// before and after the last events, and while merges and erasures happen between
/// evaluations; `check` then verifies the cached aggregates against a rebuild.
fn run_aggregate_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let at0 = parse_rfc3339(TIMES.choose(&mut rng).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let emails = rng.gen_range(5..30);
    let records: Vec<String> = (0..rng.gen_range(10..60))
        .map(|_| record(&mut rng, at0, emails))
        .collect();
    engine.ingest_json(&records).unwrap();
    let exprs: Vec<String> = (0..12).map(|_| aggregate_event(&mut rng, at0)).collect();
    let day = 86_400_000;
    let midnight = at0 - at0.rem_euclid(day);
    for round in 0..8 {
        let at = match rng.gen_range(0..8) {
            0 => at0,
            1 => midnight,
            2 => midnight - 1,
            3 => midnight + day * rng.gen_range(-3..4),
            4 => midnight + day * rng.gen_range(-3..4) + [1, -1][rng.gen_range(0..2)],
            5 => at0 + 30 * day,
            6 => at0 - 800 * day,
            _ => at0 + rng.gen_range(-2 * day..2 * day),
        };
        let profiles = live_profiles(&engine);
        let reference = Reference {
            profiles: &profiles,
            at,
            saved: BTreeMap::new(),
        };
        let segments = engine.segments().at(at);
        for expr in &exprs {
            let got: BTreeSet<u32> = segments
                .evaluate(expr)
                .unwrap_or_else(|e| panic!("seed {seed}: {expr}: {e}"))
                .bitmap()
                .iter()
                .collect();
            assert_eq!(
                got,
                reference.members(expr),
                "seed {seed}, round {round}, at {}: {expr}",
                format_rfc3339(at)
            );
        }
        // Between evaluations: new events (merging profiles that share an email) or an
        // erasure.
        if rng.gen_bool(0.6) {
            let more: Vec<String> = (0..rng.gen_range(1..10))
                .map(|_| record(&mut rng, at0, emails))
                .collect();
            engine.ingest_json(&more).unwrap();
        } else {
            let email = format!("p{}@example.com", rng.gen_range(0..emails));
            let options = cidb::ForgetOptions::default().without_suppression();
            engine
                .forget(&cidb::Lookup::Email(email), &options)
                .unwrap();
        }
    }
    let report = engine.check().unwrap();
    assert!(
        report.problems.is_empty(),
        "seed {seed}: {:?}",
        report.problems
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: env_usize("CIDB_QUERY_CASES", 24) as u32,
        ..ProptestConfig::default()
    })]

    #[test]
    fn event_aggregates_match_a_profile_scan_as_time_and_data_move(seed in any::<u64>()) {
        run_aggregate_case(seed);
    }
}
