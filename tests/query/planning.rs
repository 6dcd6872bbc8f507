//! Planner errors (unknown fields, type mismatches, saved-segment problems) with their
//! positions, saved segment management, and the query helpers (breakdown, overlap,
//! sample, explain).

use crate::engine::{fresh, ingest};
use cidb::query::{Error, ErrorKind};
use cidb::{Engine, EngineExt};

fn seed(engine: &Engine) {
    ingest(
        engine,
        &[
            r#"{"source":"crm","identifiers":{"email":"a@example.com"},"attributes":{"country":"NL","interests":["running","travel"],"birth_date":"1990-04-12","lifetime_value":120.5,"newsletter":true,"tier":"gold"},"consent":{"marketing":true},"events":[{"type":"purchase","at":"2026-10-01T10:00:00Z","category":"jeans","value":79.95}]}"#,
            r#"{"source":"shop","identifiers":{"email":"b@example.com"},"attributes":{"country":"Netherlands","interests":["running"],"birth_date":"2001-01-01"},"consent":{"marketing":false}}"#,
            r#"{"source":"shop","identifiers":{"email":"c@example.com","phone":"+31612345678"},"attributes":{"country":"DE","lifetime_value":5}}"#,
        ],
    );
}

/// The query error of `expr`, with its line and column.
fn query_error(engine: &Engine, expr: &str) -> (ErrorKind, usize, usize, Option<String>) {
    match engine.segment(expr) {
        Err(Error::Query(q)) => (q.kind, q.position.line, q.position.column, q.segment),
        other => panic!("{expr}: expected a query error, got {other:?}"),
    }
}

#[test]
fn unknown_fields_are_errors_at_their_position() {
    let (_dir, engine) = fresh();
    seed(&engine);
    assert_eq!(
        query_error(&engine, "country = \"NL\"\n  AND cuntry = \"NL\""),
        (ErrorKind::UnknownField("cuntry".into()), 2, 7, None)
    );
    // Well-known fields are valid before any data has them; custom ones once seen.
    assert_eq!(
        engine.segment("loyalty_tier = \"gold\"").unwrap().count(),
        0
    );
    assert_eq!(engine.segment("tier = \"GOLD\"").unwrap().count(), 1);
}

#[test]
fn type_mismatches_are_errors() {
    let (_dir, engine) = fresh();
    seed(&engine);
    let mismatch = |expr: &str| match query_error(&engine, expr) {
        (ErrorKind::TypeMismatch(_), 1, col, None) => col,
        other => panic!("{expr}: {other:?}"),
    };
    assert_eq!(mismatch("country > 5"), 1);
    assert_eq!(mismatch("country = 5"), 11);
    assert_eq!(mismatch("lifetime_value = \"x\""), 18);
    assert_eq!(mismatch("newsletter = \"yes\""), 14);
    assert_eq!(mismatch("country HAS \"nl\""), 1);
    assert_eq!(mismatch("age = \"x\""), 7);
    assert_eq!(mismatch("interests HAS 5"), 15);
    assert_eq!(
        query_error(&engine, "birth_date < \"1990-13-01\""),
        (ErrorKind::InvalidDate("1990-13-01".into()), 1, 14, None)
    );
    assert_eq!(
        query_error(&engine, "event(\"purchase\", since \"yesterday\")"),
        (ErrorKind::InvalidDate("yesterday".into()), 1, 25, None)
    );
    assert_eq!(
        query_error(&engine, "event(\"purchase\", within 7d, within 30d)"),
        (ErrorKind::DuplicateOption("within"), 1, 30, None)
    );
    assert_eq!(
        query_error(&engine, "suppressed(\"optout\")"),
        (
            ErrorKind::UnknownSuppressionList("optout".into()),
            1,
            12,
            None
        )
    );
}

#[test]
fn saved_segments_resolve_at_evaluation_time() {
    let (_dir, engine) = fresh();
    seed(&engine);
    let segments = engine.segments();
    segments.save("nl", "country = \"NL\"").unwrap();
    segments
        .save(
            "nl_runners",
            "segment(\"nl\") AND interests HAS \"running\"",
        )
        .unwrap();
    assert_eq!(segments.count("segment(\"nl_runners\")").unwrap(), 2);
    // Replacing a segment changes every segment that refers to it.
    segments.save("nl", "country = \"DE\"").unwrap();
    assert_eq!(segments.count("segment(\"nl_runners\")").unwrap(), 0);
    let listed: Vec<String> = segments
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(listed, vec!["nl", "nl_runners"]);
    let nl = segments.get("nl").unwrap();
    assert_eq!(nl.expr, "country = \"DE\"");
    assert!(nl.updated_at >= nl.created_at);
    // Deleting a referenced segment is refused; deleting the referrer first works.
    match segments.delete("nl") {
        Err(Error::SegmentInUse { used_by, .. }) => assert_eq!(used_by, vec!["nl_runners"]),
        other => panic!("{other:?}"),
    }
    segments.delete("nl_runners").unwrap();
    segments.delete("nl").unwrap();
    assert!(matches!(segments.get("nl"), Err(Error::SegmentNotFound(_))));
    assert!(matches!(
        segments.delete("nl"),
        Err(Error::SegmentNotFound(_))
    ));
    assert!(matches!(
        segments.save("bad name", "ALL"),
        Err(Error::InvalidSegmentName(_))
    ));
}

#[test]
fn saved_segments_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path()).unwrap();
        seed(&engine);
        engine.segments().save("de", "country = \"DE\"").unwrap();
    }
    let engine = Engine::open(dir.path()).unwrap();
    assert_eq!(engine.segments().count("segment(\"de\")").unwrap(), 1);
}

#[test]
fn unknown_segments_and_cycles_are_refused() {
    let (_dir, engine) = fresh();
    seed(&engine);
    let segments = engine.segments();
    assert_eq!(
        query_error(&engine, "ALL AND segment(\"nope\")"),
        (ErrorKind::UnknownSegment("nope".into()), 1, 17, None)
    );
    match segments.save("a", "segment(\"missing\")") {
        Err(Error::Query(q)) => assert_eq!(q.kind, ErrorKind::UnknownSegment("missing".into())),
        other => panic!("{other:?}"),
    }
    segments.save("a", "country = \"NL\"").unwrap();
    segments.save("b", "segment(\"a\") OR ALL").unwrap();
    // a -> b -> a
    match segments.save("a", "NOT segment(\"b\")") {
        Err(Error::Query(q)) => {
            assert_eq!(
                q.kind,
                ErrorKind::SegmentCycle(vec!["a".into(), "b".into(), "a".into()])
            );
            // Found inside b's definition, at its reference to a.
            assert_eq!(q.segment.as_deref(), Some("b"));
            assert_eq!((q.position.line, q.position.column), (1, 9));
        }
        other => panic!("{other:?}"),
    }
    match segments.save("c", "segment(\"c\")") {
        Err(Error::Query(q)) => assert!(matches!(q.kind, ErrorKind::SegmentCycle(_))),
        other => panic!("{other:?}"),
    }
    // The refused save left the old definition in place.
    assert_eq!(segments.get("a").unwrap().expr, "country = \"NL\"");
}

#[test]
fn segment_chains_deeper_than_the_limit_are_refused() {
    let (_dir, engine) = fresh();
    seed(&engine);
    let segments = engine.segments();
    segments.save("s0", "ALL").unwrap();
    let max = cidb::query::MAX_SEGMENT_NESTING;
    for i in 1..=max {
        segments
            .save(&format!("s{i}"), &format!("segment(\"s{}\")", i - 1))
            .unwrap();
    }
    assert_eq!(segments.count(&format!("segment(\"s{max}\")")).unwrap(), 3);
    match segments.save("one_too_many", &format!("segment(\"s{max}\")")) {
        Err(Error::Query(q)) => assert!(matches!(q.kind, ErrorKind::SegmentsTooDeep(_))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn breakdown_overlap_sample_and_explain() {
    let (_dir, engine) = fresh();
    seed(&engine);
    let segments = engine.segments();
    let b = segments.breakdown("ALL", "interests", 10).unwrap();
    assert_eq!(b.members, 3);
    assert_eq!(b.missing, 1);
    assert_eq!(b.values[0].value, "running");
    assert_eq!(b.values[0].count, 2);
    assert_eq!(b.values[1].value, "travel");
    let by_country = segments
        .breakdown("source(\"shop\")", "country", 1)
        .unwrap();
    assert_eq!(by_country.distinct, 2);
    assert_eq!(by_country.values.len(), 1);
    assert!(segments.breakdown("ALL", "lifetime_value", 5).is_err());

    let o = segments
        .overlap(&["country = \"NL\"", "interests HAS \"running\"", "ALL"])
        .unwrap();
    assert_eq!(o.counts, vec![2, 2, 3]);
    assert_eq!(o.matrix[0][1], 2);
    assert_eq!(o.matrix[2][0], 2);

    let all = engine.segment("ALL").unwrap();
    assert_eq!(all.sample(2, 1), all.sample(2, 1));
    assert_eq!(all.sample(10, 1).len(), 3);

    let e = segments
        .explain("country = \"NL\" AND NOT consent(\"marketing\") AND lifetime_value > 100")
        .unwrap();
    assert_eq!(e.count, 0);
    let text = e.to_string();
    assert!(
        text.contains("EXCEPT bitmap consent(\"marketing\")"),
        "{text}"
    );
    assert!(
        text.contains("bit-sliced lifetime_value >= 100.001"),
        "{text}"
    );
}

#[test]
fn age_and_within_follow_the_pinned_time() {
    let (_dir, engine) = fresh();
    seed(&engine);
    let at = |t: &str| engine.segments().at(cidb::parse_rfc3339(t).unwrap());
    // Born 1990-04-12: 36 from 2026-04-12.
    assert_eq!(at("2026-04-11T23:59:59Z").count("age >= 36").unwrap(), 0);
    assert_eq!(at("2026-04-12T00:00:00Z").count("age >= 36").unwrap(), 1);
    // Purchase at 2026-10-01T10:00Z: within 30d includes exactly 30 days later.
    let purchase = "event(\"purchase\", within 30d)";
    assert_eq!(at("2026-10-31T10:00:00Z").count(purchase).unwrap(), 1);
    assert_eq!(at("2026-10-31T10:00:00.001Z").count(purchase).unwrap(), 0);
}

#[test]
fn queries_see_whole_batches_while_a_writer_merges() {
    let (_dir, engine) = fresh();
    let engine = std::sync::Arc::new(engine);
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for round in 0..30 {
                // Two profiles per pair, then a record that merges each pair.
                let mut batch = Vec::new();
                for i in 0..20 {
                    batch.push(format!(r#"{{"source":"a","identifiers":{{"email":"a{round}_{i}@x.com"}},"attributes":{{"country":"NL"}}}}"#));
                    batch.push(format!(r#"{{"source":"b","identifiers":{{"phone":"+3161{round:02}{i:05}"}},"attributes":{{"country":"DE"}}}}"#));
                }
                engine.ingest_json(&batch).unwrap();
                let merges: Vec<String> = (0..20)
                    .map(|i| format!(r#"{{"source":"c","identifiers":{{"email":"a{round}_{i}@x.com","phone":"+3161{round:02}{i:05}"}}}}"#))
                    .collect();
                engine.ingest_json(&merges).unwrap();
            }
        })
    };
    let segments = engine.segments();
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        // After every whole batch: each source-c profile is a merged pair holding both
        // countries' sources, and every live profile is in exactly one of the three sets.
        let parts = segments
            .overlap(&[
                "source(\"c\")",
                "source(\"a\") AND NOT source(\"c\")",
                "source(\"b\") AND NOT source(\"c\")",
                "ALL",
            ])
            .unwrap();
        assert_eq!(
            parts.counts[0] + parts.counts[1] + parts.counts[2],
            parts.counts[3]
        );
        assert_eq!(
            parts.counts[1], parts.counts[2],
            "unmerged pairs come in twos"
        );
        assert_eq!(
            segments
                .count("source(\"c\") AND NOT (source(\"a\") AND source(\"b\"))")
                .unwrap(),
            0,
            "never half a merge"
        );
        checks += 1;
    }
    writer.join().unwrap();
    assert_eq!(segments.count("ALL").unwrap(), 600);
    assert_eq!(segments.count("source(\"c\")").unwrap(), 600);
}
