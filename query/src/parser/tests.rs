//! Parser tests: the grammar's forms, precedence, and every syntax error kind with the
//! position it reports.

use super::*;
use crate::error::{ErrorKind, Position};
use crate::limits::MAX_EXPR_DEPTH;

fn ok(src: &str) -> Expr {
    parse(src, &Limits::default()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// Parses `src`, expecting an error; returns its kind, line and column.
fn fails(src: &str) -> (ErrorKind, usize, usize) {
    let e = parse(src, &Limits::default()).expect_err(src);
    (e.kind, e.position.line, e.position.column)
}

#[test]
fn parses_the_spec_example() {
    let e = ok(
        r#"country = "NL" AND interests HAS "running" AND age BETWEEN 25 AND 40
  AND event("purchase", category = "jeans", within 365d)
  AND consent("marketing")
  AND NOT segment("existing_customers")"#,
    );
    let ExprKind::And(items) = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(items.len(), 6);
    assert!(matches!(
        &items[3].kind,
        ExprKind::Predicate(Predicate::Event { options, .. }) if options.len() == 2
    ));
    assert!(matches!(&items[5].kind, ExprKind::Not(_)));
}

#[test]
fn precedence_not_and_or() {
    let e = ok("a = 1 OR NOT b = 2 AND c = 3");
    let ExprKind::Or(v) = &e.kind else { panic!() };
    let ExprKind::And(w) = &v[1].kind else {
        panic!()
    };
    assert!(matches!(w[0].kind, ExprKind::Not(_)));
    assert_eq!(e.to_string(), "a = 1 OR NOT b = 2 AND c = 3");
    assert_eq!(
        ok("(a = 1 OR b = 2) AND c = 3").to_string(),
        "(a = 1 OR b = 2) AND c = 3"
    );
}

#[test]
fn keywords_are_case_insensitive() {
    let a = ok(r#"x in ("a") and not y exists or ALL"#);
    let b = ok(r#"x IN ("a") AND NOT y EXISTS OR all"#);
    assert_eq!(a.to_string(), b.to_string());
}

#[test]
fn every_form_round_trips_through_display() {
    for src in [
        r#"f = "a""#,
        "f != 1.5",
        "f < -2",
        "f <= 3",
        "f > 4",
        "f >= 5",
        r#"f IN ("a", "b\"c")"#,
        r#"d BETWEEN "2020-01-01" AND "2021-01-01""#,
        r#"l HAS "x""#,
        r#"l HAS ANY ("x", "y")"#,
        r#"l HAS ALL ("x", "y")"#,
        "f EXISTS",
        "b = true",
        "b = false",
        r#"consent("marketing")"#,
        r#"segment("s")"#,
        r#"identifier("email")"#,
        r#"source("crm")"#,
        "suppressed()",
        r#"suppressed("optout")"#,
        r#"event("purchase", category = "jeans", within 12w, since "2026-01-01", before "2026-06-01", count >= 2, sum > 9.5)"#,
        "ALL",
        "NOT NOT ALL",
        "(a = 1 AND b = 2) AND c = 3",
        "(a = 1 OR b = 2) OR c = 3",
    ] {
        let e = ok(src);
        assert_eq!(e.to_string(), src);
        let again = ok(&e.to_string());
        assert_eq!(again.to_string(), src);
    }
}

#[test]
fn durations_in_every_unit() {
    for (src, n, unit) in [
        ("30d", 30, DurationUnit::Days),
        ("12w", 12, DurationUnit::Weeks),
        ("6m", 6, DurationUnit::Months),
        ("1Y", 1, DurationUnit::Years),
    ] {
        let e = ok(&format!(r#"event("visit", within {src})"#));
        let ExprKind::Predicate(Predicate::Event { options, .. }) = e.kind else {
            panic!()
        };
        assert_eq!(options[0].kind, EventOptionKind::Within(n, unit));
    }
}

#[test]
fn functions_without_parentheses_are_fields() {
    let e = ok(r#"source = "x""#);
    assert!(matches!(
        e.kind,
        ExprKind::Predicate(Predicate::Compare { ref field, .. }) if field.text == "source"
    ));
}

#[test]
fn spans_cover_the_predicate() {
    let src = r#"a = 1 AND interests HAS "x""#;
    let e = ok(src);
    let ExprKind::And(v) = &e.kind else { panic!() };
    assert_eq!(&src[v[1].span.start..v[1].span.end], r#"interests HAS "x""#);
}

#[test]
fn error_unexpected_character() {
    assert_eq!(fails("a = 1 ; b"), (ErrorKind::UnexpectedChar(';'), 1, 7));
    assert_eq!(fails("a ! 1"), (ErrorKind::UnexpectedChar('!'), 1, 3));
}

#[test]
fn error_unterminated_string() {
    assert_eq!(
        fails("a = 1 AND\nb = \"x"),
        (ErrorKind::UnterminatedString, 2, 5)
    );
}

#[test]
fn error_invalid_escape() {
    assert_eq!(
        fails(r#"a = "x\qy""#),
        (ErrorKind::InvalidEscape("\\q".into()), 1, 7)
    );
    assert_eq!(
        fails(r#"a = "\u12G4""#),
        (ErrorKind::InvalidEscape("\\u12G4".into()), 1, 6)
    );
}

/// `within 5900000y` counted nobody and `within 2147500000d` everybody: the milliseconds
/// overflowed. Durations are limited to 200 years where they are written.
#[test]
fn durations_over_200_years_are_refused_at_their_position() {
    for src in ["200y", "73000d", "10428w", "2433m", "0d"] {
        ok(&format!(r#"event("visit", within {src})"#));
    }
    for src in [
        "5900000y",
        "2147500000d",
        "201y",
        "73001d",
        "10429w",
        "2434m",
        "4294967295y",
        "4294967296d",
        "99999999999999999999999999d",
    ] {
        let text = format!(r#"event("visit", within {src})"#);
        let e = parse(&text, &Limits::default()).expect_err(src);
        assert_eq!(e.kind, ErrorKind::DurationTooLong(src.into()), "{src}");
        assert_eq!(e.span, Span::new(22, 22 + src.len()), "{src}");
        assert_eq!((e.position.line, e.position.column), (1, 23), "{src}");
        assert!(e.to_string().contains("200 years"), "{e}");
    }
    // Saturating, for syntax trees built by hand.
    assert_eq!(DurationUnit::Years.millis(200), 200 * 365 * 86_400_000);
    assert_eq!(DurationUnit::Years.millis(u32::MAX), i64::MAX);
}

#[test]
fn error_invalid_number_or_duration() {
    assert_eq!(
        fails("a = 12abc"),
        (ErrorKind::InvalidNumber("12abc".into()), 1, 5)
    );
    assert_eq!(
        fails(r#"event("v", within 30x)"#),
        (ErrorKind::InvalidNumber("30x".into()), 1, 19)
    );
    assert_eq!(fails("a = -"), (ErrorKind::InvalidNumber("-".into()), 1, 5));
}

#[test]
fn error_expected_token() {
    let (kind, line, col) = fails("a = ");
    assert!(matches!(kind, ErrorKind::Expected { ref found, .. } if found == "end of expression"));
    assert_eq!((line, col), (1, 5));
    let (kind, _, col) = fails("a = 1 b = 2");
    assert!(matches!(kind, ErrorKind::Expected { ref found, .. } if found == "`b`"));
    assert_eq!(col, 7);
    let (kind, _, col) = fails("(a = 1");
    assert!(matches!(kind, ErrorKind::Expected { ref expected, .. } if expected == "`)`"));
    assert_eq!(col, 7);
    let (_, _, col) = fails("a BETWEEN 1 2");
    assert_eq!(col, 13);
    let (_, _, col) = fails("a IN ()");
    assert_eq!(col, 7);
    let (_, _, col) = fails("a LIKE 1");
    assert_eq!(col, 3);
    let (_, _, col) = fails("AND a = 1");
    assert_eq!(col, 1);
    let (_, _, col) = fails(r#"event("x", colour = "red")"#);
    assert_eq!(col, 12);
    let (_, _, col) = fails("consent(marketing)");
    assert_eq!(col, 9);
    let (_, _, col) = fails(r#"event("x", count >= "2")"#);
    assert_eq!(col, 21);
}

#[test]
fn error_field_case() {
    assert_eq!(
        fails(r#"a = 1 AND Country = "NL""#),
        (ErrorKind::FieldCase("Country".into()), 1, 11)
    );
}

#[test]
fn error_invalid_count() {
    let (kind, _, col) = fails(r#"event("x", count >= 1.5)"#);
    assert!(matches!(kind, ErrorKind::InvalidArgument(_)));
    assert_eq!(col, 21);
}

#[test]
fn error_too_long() {
    let src = format!("a = \"{}\"", "x".repeat(100));
    let e = parse(&src, &Limits::new(50, 10)).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::TooLong {
            len: 106,
            limit: 50
        }
    );
    assert_eq!(
        e.position,
        Position {
            line: 1,
            column: 51
        }
    );
}

#[test]
fn error_too_deep_without_overflowing_the_stack() {
    let limits = Limits::default();
    let n = MAX_EXPR_DEPTH + 1;
    let deep = format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));
    let e = parse(&deep, &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooDeep(MAX_EXPR_DEPTH));
    assert_eq!(
        e.position.column,
        n + 1,
        "at the first token past the limit"
    );
    let ok_depth = format!(
        "{}a = 1{}",
        "(".repeat(MAX_EXPR_DEPTH),
        ")".repeat(MAX_EXPR_DEPTH)
    );
    assert!(parse(&ok_depth, &limits).is_ok());
    // Far beyond the limit, within the byte limit: an error, not a crash.
    let nots = "NOT ".repeat(15_000) + "ALL";
    assert_eq!(
        parse(&nots, &limits).unwrap_err().kind,
        ErrorKind::TooDeep(MAX_EXPR_DEPTH)
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary input never panics: it parses or gives an error inside the text.
        #[test]
        fn never_panics(src in "[ -~\\n]{0,80}") {
            match parse(&src, &Limits::default()) {
                Ok(e) => { let _ = e.to_string(); }
                Err(e) => prop_assert!(e.span.start <= src.len() && e.position.line >= 1),
            }
        }

        /// Token soup from the grammar's own vocabulary never panics either.
        #[test]
        fn token_soup_never_panics(words in proptest::collection::vec(
            prop_oneof![
                Just("AND"), Just("OR"), Just("NOT"), Just("("), Just(")"), Just("a"),
                Just("="), Just("IN"), Just("HAS"), Just("ANY"), Just("ALL"), Just(","),
                Just("\"x\""), Just("1"), Just("BETWEEN"), Just("EXISTS"), Just("event"),
                Just("within"), Just("30d"), Just("count"), Just(">="),
            ], 0..30)) {
            let src = words.join(" ");
            if let Ok(e) = parse(&src, &Limits::default()) {
                let printed = e.to_string();
                let again = parse(&printed, &Limits::default()).unwrap();
                prop_assert_eq!(again.to_string(), printed);
            }
        }
    }
}
