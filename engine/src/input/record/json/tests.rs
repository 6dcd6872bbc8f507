//! Unit tests of the JSON record parser.

use super::*;

fn parse(line: &str) -> Result<ParsedRecord, RejectReason> {
    parse_json_record(line, &Config::default(), 0)
}

#[test]
fn spec_example_parses() {
    let line = r#"{"source":"facebook","observed_at":"2026-11-01T12:00:00Z","identifiers":{"email":["Jane.Doe@Example.com ","jane@work.example"],"phone":"+31 6 1234 5678","facebook_id":"10001234"},"scopes":["email","public_profile","user_likes"],"attributes":{"first_name":"Jane","birth_date":"1990-04-12","country":"Netherlands","likes":["Nike"]},"consent":{"marketing":true},"events":[{"type":"Purchase","at":"2026-10-01T10:00:00Z","category":"Jeans","value":79.95}]}"#;
    let p = parse(line).unwrap();
    let ids: Vec<_> = p
        .record
        .identifiers
        .iter()
        .map(|i| format!("{}={}", i.kind, i.value))
        .collect();
    assert!(ids.contains(&"email=jane.doe@example.com".to_string()));
    // facebook grants no phone scope: the phone is dropped, like birth_date and country.
    assert!(!ids.iter().any(|i| i.starts_with("phone=")));
    assert_eq!(
        p.dropped_by_scope,
        vec![
            "attributes.birth_date",
            "attributes.country",
            "identifiers.phone"
        ]
    );
    assert_eq!(
        p.record.attributes["likes"],
        Value::List(vec!["Nike".into()])
    );
    assert_eq!(p.record.events[0].category.as_deref(), Some("jeans"));
}

#[test]
fn bad_records_name_the_field() {
    let e = parse(r#"{"source":"crm","identifiers":{"email":"nope"}}"#).unwrap_err();
    assert_eq!(e.to_string(), "identifiers: no usable identifier");
    let e = parse(r#"{"source":"crm","identifiers":{"crm_id":"1"},"events":[{"type":"x"}]}"#)
        .unwrap_err();
    assert_eq!(e.to_string(), "events[0].at: required RFC 3339 time");
    let e = parse(r#"{"source":"CRM","identifiers":{"crm_id":"1"}}"#).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("source"));
    let e = parse(r#"{"source":"crm""#).unwrap_err();
    assert!(e.message.starts_with("invalid JSON at column"), "{e}");
    let e = parse(r#"{"source":"crm","identifiers":{"crm_id":"1"},"consent":{"marketing":"yes"}}"#)
        .unwrap_err();
    assert_eq!(e.to_string(), "consent.marketing: expected true or false");
}

#[test]
fn number_text_is_decimal_numbers_only() {
    for (text, n) in [("12", 12.0), (" -0.5 ", -0.5), ("+1e5", 1e5), ("007", 7.0)] {
        assert_eq!(parse_number_text(text), Some(n), "{text}");
    }
    for text in [
        "",
        "-",
        "NaN",
        "inf",
        "-Infinity",
        "1.",
        ".5",
        "1e",
        "1e+",
        "0x10",
        "1,000",
        "1 2",
        "12abc",
    ] {
        assert_eq!(parse_number_text(text), None, "{text}");
    }
    // Syntax is not range: 1e400 parses (to infinity) and check_number refuses it.
    assert_eq!(parse_number_text("1e400"), Some(f64::INFINITY));
}

#[test]
fn bad_identifier_is_a_warning_when_another_is_usable() {
    let p = parse(r#"{"source":"crm","identifiers":{"email":"x@y.com","phone":"12"}}"#).unwrap();
    assert_eq!(p.record.identifiers.len(), 1);
    assert_eq!(p.warnings[0].field, "identifiers.phone");
}

#[test]
fn candidates_of_a_national_phone_cover_the_records_country() {
    let config = Config::default();
    let line =
        r#"{"source":"crm","identifiers":{"phone":"0612345678"},"attributes":{"country":"NL"}}"#;
    let parsed = parse(line).unwrap();
    assert_eq!(parsed.record.identifiers[0].value, "+31612345678");
    let candidates = candidate_identifiers(line, &config);
    assert!(
        candidates.contains(&parsed.record.identifiers[0]),
        "{candidates:?}"
    );
}
