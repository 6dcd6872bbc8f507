//! The JSON Lines path (borrowing `Lite` straight from the text) against the CSV path
//! (`serde_json::Value` converted), on generated records full of wrong shapes, duplicate
//! keys, escapes and unknown fields: every result and every error must agree.

use super::*;
use proptest::prelude::*;

fn any_of(options: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(options).prop_map(str::to_string)
}

fn object(
    keys: &'static [&'static str],
    values: impl Strategy<Value = String>,
    max: usize,
) -> impl Strategy<Value = String> {
    proptest::collection::vec((proptest::sample::select(keys), values), 0..max).prop_map(|pairs| {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

const ANY: &[&str] = &[
    "null",
    "true",
    "1",
    "2.5",
    "-7",
    "\"x\"",
    "[]",
    "[\"a\",\"b\"]",
    "[1,\"a\"]",
    "{}",
];

fn event() -> impl Strategy<Value = String> {
    let values = prop_oneof![
        any_of(ANY),
        any_of(&[
            "\"Purchase\"",
            "\" \"",
            "\"2026-10-01T10:00:00Z\"",
            "\"yesterday\"",
            "\"Je\\u0061ns\"",
            "79.95",
            "1e13",
        ]),
    ];
    prop_oneof![
        object(&["type", "at", "category", "value", "extra"], values, 6),
        any_of(ANY),
    ]
}

fn record() -> impl Strategy<Value = String> {
    let identifiers = object(
        &["email", "phone", "crm_id", "Bad Key", "device_id"],
        prop_oneof![
            any_of(ANY),
            any_of(&[
                "\" Jane@Example.com \"",
                "\"j\\u0040x.com\"",
                "\"+31 6 1234 5678\"",
                "\"0612345678\"",
                "\"nope\"",
                "12345",
                "[\"a@b.com\",5]",
                "[true]",
            ]),
        ],
        4,
    );
    let attributes = object(
        &[
            "country",
            "city",
            "likes",
            "birth_date",
            "age",
            "Bad",
            "x_y",
            "lifetime_value",
        ],
        prop_oneof![
            any_of(ANY),
            any_of(&[
                "\"NL\"",
                "\"Netherlands\"",
                "\"Atlantis\"",
                "\"1990-01-02\"",
                "\"caf\\u00e9\"",
                "40",
                "1e13",
                "[\"Nike\",\"nike \"]",
                "\"NaN\"",
                "\" 12.5 \"",
                "\"-1e13\"",
            ]),
        ],
        5,
    );
    let consent = object(
        &["marketing", "Bad", "ads"],
        any_of(&["true", "false", "\"yes\"", "null"]),
        3,
    );
    let events =
        proptest::collection::vec(event(), 0..3).prop_map(|items| format!("[{}]", items.join(",")));
    let field = prop_oneof![
        (
            Just("source"),
            any_of(&["\"crm\"", "\"facebook\"", "\"CRM\"", "5", "null"])
        ),
        (
            Just("observed_at"),
            any_of(&["\"2026-11-01T12:00:00Z\"", "\"soon\"", "null", "3"])
        ),
        (
            Just("scopes"),
            any_of(&[
                "[\"email\"]",
                "[\"email\",\"user_likes\"]",
                "[1]",
                "\"x\"",
                "null"
            ])
        ),
        (Just("identifiers"), prop_oneof![identifiers, any_of(ANY)]),
        (Just("attributes"), prop_oneof![attributes, any_of(ANY)]),
        (Just("consent"), prop_oneof![consent, any_of(ANY)]),
        (Just("events"), prop_oneof![events, any_of(ANY)]),
        (Just("zzz"), any_of(ANY)),
        (Just("aaa"), any_of(ANY)),
    ];
    prop_oneof![
        8 => proptest::collection::vec(field, 0..10).prop_map(|fields| {
            let body: Vec<String> =
                fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        }),
        1 => any_of(ANY),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("CIDB_JSON_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]
    #[test]
    fn borrowed_parse_agrees_with_the_value_path(line in record()) {
        let config = Config::default();
        let direct = parse_json_record(&line, &config, 7);
        let json: Json = serde_json::from_str(&line).expect("generated lines are valid JSON");
        let via_value = parse_json_value(json, &config, 7);
        prop_assert_eq!(direct, via_value, "{}", line);
    }
}

/// A record whose identifiers depend on its region, scopes and duplicate keys: national
/// phones, countries in several forms (or dropped by a scope), identifiers given twice.
fn identity_record() -> impl Strategy<Value = String> {
    let ids = object(
        &["phone", "email", "crm_id"],
        any_of(&[
            "\"0612345678\"",
            "\"(415) 555-2671\"",
            "\"+31 6 1234 5678\"",
            "\" Jane@Example.com \"",
            "[\"020 123 4567\",\"x\"]",
            "12345",
        ]),
        3,
    );
    let attributes = object(
        &["country", "city"],
        any_of(&[
            "\"NL\"",
            "\"Netherlands\"",
            "\"US\"",
            "\"Atlantis\"",
            "\"1990-01-02\"",
            "40",
            "null",
        ]),
        3,
    );
    (
        any_of(&["\"crm\"", "\"facebook\"", "\"twitter\""]),
        any_of(&[
            "",
            ",\"scopes\":[\"email\"]",
            ",\"scopes\":[\"email\",\"user_location\"]",
        ]),
        proptest::collection::vec(ids, 1..3),
        proptest::collection::vec(attributes, 0..3),
    )
        .prop_map(|(source, scopes, ids, attributes)| {
            let mut fields = vec![format!("\"source\":{source}")];
            fields.extend(ids.iter().map(|i| format!("\"identifiers\":{i}")));
            fields.extend(attributes.iter().map(|a| format!("\"attributes\":{a}")));
            format!("{{{}{scopes}}}", fields.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("CIDB_JSON_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]
    /// The grouping pass of a file import may link more records than the parse would,
    /// never fewer: every identifier the parse gives is among the candidates, whatever
    /// the scopes drop, the country says or the default region is.
    #[test]
    fn candidate_identifiers_hold_every_parsed_identifier(
        line in prop_oneof![record(), identity_record()],
        region in proptest::option::of(any_of(&["NL", "US"])),
    ) {
        let config = Config {
            default_region: region,
            ..Config::default()
        };
        let candidates = candidate_identifiers(&line, &config);
        if let Ok(parsed) = parse_json_record(&line, &config, 7) {
            for id in &parsed.record.identifiers {
                prop_assert!(candidates.contains(id), "{:?} missing for {}", id, line);
            }
        }
    }
}
