//! The spec's examples table (export.md), row by row for both platforms, and the cleaning
//! rules.

use super::*;
use crate::base::digest::sha256_hex;

const TODAY: i32 = 20_779; // 2026-11-22

fn norm(field: Field, platform: Platform, raw: &str, region: Option<&str>) -> Normalized {
    normalize(field, platform, raw, region, TODAY)
}

fn value(s: &str) -> Normalized {
    Normalized::Value(s.to_string())
}

/// (field, raw, region, Meta, Google); `None` = invalid, `Some("")` = not sent.
type Example = (
    Field,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const EXAMPLES: &[Example] = &[
    (
        Field::Email,
        "John.Smith@Example.COM",
        None,
        Some("john.smith@example.com"),
        Some("john.smith@example.com"),
    ),
    (
        Field::Email,
        "FIRST.LAST@GMAIL.COM",
        None,
        Some("first.last@gmail.com"),
        Some("firstlast@gmail.com"),
    ),
    (Field::Email, "@example.com", None, None, None),
    (
        Field::Phone,
        "(415) 555-2671",
        Some("US"),
        Some("14155552671"),
        Some("+14155552671"),
    ),
    (
        Field::Phone,
        "06 12345678",
        Some("NL"),
        Some("31612345678"),
        Some("+31612345678"),
    ),
    (
        Field::Phone,
        "020 7946 0958",
        Some("GB"),
        Some("442079460958"),
        Some("+442079460958"),
    ),
    (Field::Phone, "12345", Some("US"), None, None),
    (
        Field::FirstName,
        "François",
        None,
        Some("françois"),
        Some("françois"),
    ),
    (
        Field::LastName,
        "Al-Farsi",
        None,
        Some("alfarsi"),
        Some("alfarsi"),
    ),
    (Field::Gender, "Mrs.", None, Some("f"), Some("")),
    (
        Field::Zip,
        "EC1A 1BB",
        Some("GB"),
        Some("ec1a1"),
        Some("EC1A 1BB"),
    ),
    (Field::Country, "Denmark", None, Some("dk"), Some("DK")),
];

#[test]
fn examples_table() {
    for &(field, raw, region, meta, google) in EXAMPLES {
        for (platform, want) in [(Platform::Meta, meta), (Platform::Google, google)] {
            if want == Some("") {
                assert!(
                    !field.sent_to(platform),
                    "{field:?} is not sent to {platform:?}"
                );
                continue;
            }
            let got = norm(field, platform, raw, region);
            match want {
                Some(w) => assert_eq!(got, value(w), "{field:?} {raw:?} {platform:?}"),
                None => assert!(
                    matches!(got, Normalized::Invalid(_)),
                    "{field:?} {raw:?} {platform:?}: {got:?}"
                ),
            }
        }
    }
}

#[test]
fn birth_date_row_splits_for_meta_and_is_not_sent_to_google() {
    match norm(Field::BirthDate, Platform::Meta, "1985-03-07", None) {
        Normalized::Date(d) => assert_eq!(
            (d.doby(), d.dobm(), d.dobd()),
            ("1985".into(), Some("03".into()), Some("07".into()))
        ),
        other => panic!("{other:?}"),
    }
    assert!(!Field::BirthDate.sent_to(Platform::Google));
}

#[test]
fn spec_hash_vector() {
    assert_eq!(
        sha256_hex("john.smith@example.com"),
        "8e621e3d0368631d263d07a351fa8d34fba0d17c15fbcdec11a5f58008d022a0"
    );
}

#[test]
fn names_follow_each_platform() {
    assert_eq!(
        norm(Field::LastName, Platform::Meta, "Van Der Berg", None),
        value("vanderberg")
    );
    assert_eq!(
        norm(Field::LastName, Platform::Google, "  Van  Der Berg ", None),
        value("van der berg")
    );
    assert_eq!(
        norm(Field::FirstName, Platform::Meta, "ΝΙΚΟΣ", None),
        value("νικος")
    );
    assert_eq!(
        norm(Field::FirstName, Platform::Meta, "José", None),
        value("josé")
    );
    assert_eq!(
        norm(Field::FirstName, Platform::Meta, "O'Brien-Smith ★", None),
        value("obriensmith")
    );
    assert!(matches!(
        norm(Field::FirstName, Platform::Meta, "!!!", None),
        Normalized::Invalid(_)
    ));
}

#[test]
fn cleaning_rules() {
    // Zero-width characters and the soft hyphen anywhere, NBSP and other Unicode spaces at
    // the ends.
    let dirty =
        "\u{00A0}jo\u{200B}hn.sm\u{00AD}ith@exa\u{FEFF}mple.com\u{2060}\u{200C}\u{200D} \u{3000}";
    assert_eq!(
        norm(Field::Email, Platform::Meta, dirty, None),
        value("john.smith@example.com")
    );
    // NFC: a decomposed é equals the composed one.
    assert_eq!(
        norm(Field::FirstName, Platform::Meta, "Jose\u{301}", None),
        value("josé")
    );
    // Placeholders and empty values are missing, in any case, never a hash of "".
    for p in [
        "",
        "   ",
        "n/a",
        "N/A",
        "#N/A",
        "null",
        "NULL",
        "None",
        "nil",
        "undefined",
        "Unknown",
        "-",
        "--",
        "?",
        "\u{200B}",
    ] {
        for field in Field::ALL {
            for platform in [Platform::Meta, Platform::Google] {
                assert_eq!(
                    norm(field, platform, p, Some("NL")),
                    Normalized::Missing,
                    "{p:?} {field:?}"
                );
            }
        }
    }
}

#[test]
fn prehashed_values_pass_through_where_hashed() {
    let h = sha256_hex("jane@example.com");
    let upper = h.to_ascii_uppercase();
    for platform in [Platform::Meta, Platform::Google] {
        assert_eq!(
            norm(Field::Email, platform, &upper, None),
            Normalized::Prehashed(h.clone())
        );
        assert_eq!(
            norm(Field::Phone, platform, &h, None),
            Normalized::Prehashed(h.clone())
        );
    }
    // Plain-text fields are never treated as hashes.
    assert!(!matches!(
        norm(Field::Country, Platform::Google, &h, None),
        Normalized::Prehashed(_)
    ));
    assert!(!matches!(
        norm(Field::ExternalId, Platform::Meta, &h, None),
        Normalized::Prehashed(_)
    ));
}

#[test]
fn emails() {
    assert_eq!(
        norm(
            Field::Email,
            Platform::Meta,
            " .Jane Doe@Example.com. ",
            None
        ),
        value("janedoe@example.com")
    );
    assert_eq!(
        norm(
            Field::Email,
            Platform::Google,
            "j.a.n.e+promo@googlemail.com",
            None
        ),
        value("jane@googlemail.com")
    );
    assert_eq!(
        norm(
            Field::Email,
            Platform::Meta,
            "j.a.n.e+promo@googlemail.com",
            None
        ),
        value("j.a.n.e+promo@googlemail.com")
    );
    assert_eq!(
        norm(
            Field::Email,
            Platform::Google,
            "first.last+x@example.com",
            None
        ),
        value("first.last+x@example.com")
    );
    for bad in [
        "jane@localhost",
        "jané@example.com",
        "jane@@example.com",
        "jane@example..com",
        &format!("{}@example.com", "a".repeat(65)),
    ] {
        assert!(
            matches!(
                norm(Field::Email, Platform::Meta, bad, None),
                Normalized::Invalid(_)
            ),
            "{bad}"
        );
    }
}

#[test]
fn phones() {
    assert_eq!(
        norm(Field::Phone, Platform::Meta, "0031 6 12345678", None),
        value("31612345678")
    );
    assert_eq!(
        norm(Field::Phone, Platform::Google, "31612345678", None),
        value("+31612345678")
    );
    assert_eq!(
        norm(
            Field::Phone,
            Platform::Meta,
            "+1 415-555-2671 ext. 12",
            None
        ),
        value("14155552671")
    );
    assert!(matches!(
        norm(Field::Phone, Platform::Meta, "06 12345678", None),
        Normalized::Invalid(_)
    ));
}

#[test]
fn gender_city_state_zip_country_external_id() {
    assert_eq!(
        norm(Field::Gender, Platform::Meta, "Female", None),
        value("f")
    );
    assert_eq!(norm(Field::Gender, Platform::Meta, "MR", None), value("m"));
    assert!(matches!(
        norm(Field::Gender, Platform::Meta, "x", None),
        Normalized::Invalid(_)
    ));
    assert_eq!(
        norm(Field::City, Platform::Meta, "New York", None),
        value("newyork")
    );
    assert_eq!(
        norm(Field::City, Platform::Meta, "Zürich", None),
        value("zurich")
    );
    assert_eq!(
        norm(Field::State, Platform::Meta, "California", Some("US")),
        value("ca")
    );
    assert_eq!(
        norm(Field::State, Platform::Meta, "Noord-Holland", Some("NL")),
        value("noordholland")
    );
    assert_eq!(
        norm(Field::Zip, Platform::Meta, "94043-1351", Some("US")),
        value("94043")
    );
    assert_eq!(
        norm(Field::Zip, Platform::Meta, "2134", Some("US")),
        value("02134")
    );
    assert_eq!(
        norm(Field::Zip, Platform::Google, "94043", Some("US")),
        value("94043")
    );
    assert_eq!(
        norm(Field::Zip, Platform::Meta, "SW1A 1AA", Some("GB")),
        value("sw1a1")
    );
    assert_eq!(
        norm(Field::Zip, Platform::Google, "sw1a1aa", Some("GB")),
        value("SW1A 1AA")
    );
    assert_eq!(
        norm(Field::Zip, Platform::Meta, "1012 AB", Some("NL")),
        value("1012ab")
    );
    assert_eq!(
        norm(Field::Zip, Platform::Google, "1012 ab", Some("NL")),
        value("1012 AB")
    );
    for raw in ["Netherlands", "NLD", "528", "nl"] {
        assert_eq!(
            norm(Field::Country, Platform::Meta, raw, None),
            value("nl"),
            "{raw}"
        );
        assert_eq!(
            norm(Field::Country, Platform::Google, raw, None),
            value("NL"),
            "{raw}"
        );
    }
    assert_eq!(
        norm(Field::ExternalId, Platform::Meta, "CRM-00X1", None),
        value("crm-00x1")
    );
    assert_eq!(
        norm(Field::ExternalId, Platform::Google, "CRM-00X1", None),
        value("CRM-00X1")
    );
}

/// export.md "Validity in detail", phone: digits of any script read as ASCII digits; a
/// field holding two numbers is invalid, never the first of them.
#[test]
fn phones_in_other_scripts_and_fields_with_two_numbers() {
    for raw in [
        "(４１５) ５５５-２６７１", // fullwidth
        "(٤١٥) ٥٥٥-٢٦٧١",           // Arabic-Indic
        "(۴۱۵) ۵۵۵-۲۶۷۱",           // Extended Arabic-Indic
        "(४१५) ५५५-२६७१",           // Devanagari
    ] {
        assert_eq!(
            norm(Field::Phone, Platform::Meta, raw, Some("US")),
            value("14155552671"),
            "{raw}"
        );
    }
    for raw in [
        "+1 415 555 2671;+1-415-555-2672",
        "+14155552671, +14155552672",
        "0612345678 / 0687654321",
    ] {
        assert!(
            matches!(
                norm(Field::Phone, Platform::Google, raw, Some("NL")),
                Normalized::Invalid(_)
            ),
            "{raw}"
        );
    }
    // Slashes and extensions inside one number are not a second number.
    assert_eq!(
        norm(Field::Phone, Platform::Google, "030/12345678", Some("DE")),
        value("+493012345678")
    );
}

/// export.md "Validity in detail", names: nothing but digits or punctuation is invalid.
#[test]
fn names_without_letters_are_invalid() {
    for raw in ["123", "---", "#1", "42 42"] {
        for platform in [Platform::Meta, Platform::Google] {
            assert!(
                matches!(
                    norm(Field::FirstName, platform, raw, None),
                    Normalized::Invalid(_)
                ),
                "{raw} {platform:?}"
            );
        }
    }
    assert_eq!(
        norm(Field::LastName, Platform::Meta, "O'Neil 2nd", None),
        value("oneil2nd")
    );
}

/// export.md "Validity in detail", birth_date: date-times, CJK separators, a year alone.
#[test]
fn birth_dates_from_date_times_cjk_and_years() {
    let parts = |raw: &str| match norm(Field::BirthDate, Platform::Meta, raw, None) {
        Normalized::Date(d) => Some((d.doby(), d.dobm(), d.dobd())),
        _ => None,
    };
    let full = Some((
        "1985".to_string(),
        Some("03".to_string()),
        Some("07".to_string()),
    ));
    assert_eq!(parts("1985-03-07T00:00:00Z"), full);
    assert_eq!(parts("1985-03-07 00:00:00"), full);
    assert_eq!(parts("1985年3月7日"), full);
    assert_eq!(parts("1985"), Some(("1985".to_string(), None, None)));
    assert_eq!(parts("85"), None);
}
