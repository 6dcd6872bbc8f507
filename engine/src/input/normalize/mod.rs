//! Normalization of identifiers and indexed values (records.md "Identity resolution" and
//! "Indexed values").

pub(crate) mod dates;
pub(crate) mod email;
pub(crate) mod forms;
mod geo;
mod phone;
pub(crate) mod platform;

use crate::base::kind::IdentifierKind;
use crate::input::record::ShortText;
use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;

/// Why an identifier could not be normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentifierProblem {
    /// Not an address of the form `local@domain.tld`.
    NotAnEmail,
    /// Not a valid phone number (with the record's country or the default region).
    NotAPhone,
    /// Empty after trimming.
    Empty,
}

impl std::fmt::Display for IdentifierProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdentifierProblem::NotAnEmail => "not an email address",
            IdentifierProblem::NotAPhone => "not a valid phone number",
            IdentifierProblem::Empty => "empty",
        })
    }
}

/// Email: trimmed and lower-cased; must look like `local@domain.tld` (the identity form
/// of `email::identity_form`).
pub fn email(raw: &str) -> Result<String, IdentifierProblem> {
    email::identity_form(raw)
}

/// Phone: E.164 (`+31612345678`) by libphonenumber rules, with `region` (ISO alpha-2) as
/// the default region for national formats. Must be a valid number.
pub fn phone(raw: &str, region: Option<&str>) -> Result<String, IdentifierProblem> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    phone::to_e164(s, region).ok_or(IdentifierProblem::NotAPhone)
}

/// An identifier of type `type_name` in its stored form: emails and phones by their
/// rules, every other type (named or custom) as an opaque id.
pub fn identifier(
    type_name: &str,
    raw: &str,
    region: Option<&str>,
) -> Result<String, IdentifierProblem> {
    match IdentifierKind::of(type_name) {
        Some(IdentifierKind::Email) => email(raw),
        Some(IdentifierKind::Phone) => phone(raw, region),
        _ => opaque(raw),
    }
}

/// Opaque ids (crm_id, device_id, social ids, custom types): trimmed.
pub fn opaque(raw: &str) -> Result<String, IdentifierProblem> {
    let s = raw.trim();
    if s.is_empty() {
        Err(IdentifierProblem::Empty)
    } else {
        Ok(s.to_string())
    }
}

/// The indexed form of a string value: trimmed, Unicode NFC, lower-cased. Short ASCII
/// values (nearly all) are built inline, without a heap allocation.
pub fn index_text(raw: &str) -> ShortText {
    let trimmed = raw.trim();
    if trimmed.is_ascii() {
        // ASCII is already in NFC, and its lower case is ASCII's.
        let mut text = ShortText::from(trimmed);
        text.make_ascii_lowercase();
        return text;
    }
    trimmed.nfc().collect::<String>().to_lowercase().into()
}

/// Whether two strings have the same [`index_text`], without building either for ASCII.
pub fn same_index_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    index_text(a) == index_text(b)
}

/// ISO 3166-1 alpha-2 (upper-case) for a code, alpha-3, numeric code or English name.
pub fn country(raw: &str) -> Option<&'static str> {
    let key: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_' && *c != '.')
        .collect();
    if key.is_empty() {
        return None;
    }
    let key = if key.len() < 3 && key.bytes().all(|b| b.is_ascii_digit()) {
        format!("{key:0>3}")
    } else {
        key
    };
    celes::Country::from_str(&key)
        .or_else(|_| celes::Country::from_alias(key.to_lowercase()))
        .ok()
        .map(|c| c.alpha2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email(" Jane.Doe@Example.com ").unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(email("@example.com"), Err(IdentifierProblem::NotAnEmail));
        assert_eq!(email("jane@localhost"), Err(IdentifierProblem::NotAnEmail));
        assert_eq!(email("  "), Err(IdentifierProblem::Empty));
    }

    #[test]
    fn phones() {
        assert_eq!(phone("+31 6 1234 5678", None).unwrap(), "+31612345678");
        assert_eq!(phone("06 12345678", Some("NL")).unwrap(), "+31612345678");
        assert_eq!(phone("(415) 555-2671", Some("us")).unwrap(), "+14155552671");
        assert_eq!(phone("020 7946 0958", Some("GB")).unwrap(), "+442079460958");
        assert_eq!(
            phone("12345", Some("US")),
            Err(IdentifierProblem::NotAPhone)
        );
        assert_eq!(
            phone("06 12345678", None),
            Err(IdentifierProblem::NotAPhone)
        );
    }

    #[test]
    fn countries() {
        assert_eq!(country("NL"), Some("NL"));
        assert_eq!(country("nld"), Some("NL"));
        assert_eq!(country("528"), Some("NL"));
        assert_eq!(country("Netherlands"), Some("NL"));
        assert_eq!(country("Denmark"), Some("DK"));
        assert_eq!(country("United States"), Some("US"));
        assert_eq!(country("Atlantis"), None);
    }

    proptest::proptest! {
        /// The ASCII fast path gives what the general path gives.
        #[test]
        fn index_text_matches_the_general_rule(raw in "[ -~\u{e9}\u{301}\u{130}\u{3a3}\t]{0,24}") {
            let general = raw.trim().nfc().collect::<String>().to_lowercase();
            proptest::prop_assert_eq!(index_text(&raw), general);
        }

        /// Comparing without building the texts agrees with comparing the texts, for
        /// variants of one string (case, padding) and for unrelated strings.
        #[test]
        fn same_index_text_compares_the_indexed_texts(
            a in "[ -~\u{e9}\u{301}\u{130}\u{212a}\t]{0,12}",
            other in "[ -~\u{e9}\u{212a}]{0,12}",
            flips in proptest::collection::vec(proptest::bool::ANY, 12),
            variant in proptest::bool::ANY,
        ) {
            let b: String = if variant {
                let flipped: String = a
                    .chars()
                    .zip(flips.iter().cycle())
                    .map(|(c, f)| if *f { c.to_ascii_uppercase() } else { c })
                    .collect();
                format!(" {flipped}\t")
            } else {
                other
            };
            proptest::prop_assert_eq!(same_index_text(&a, &b), index_text(&a) == index_text(&b));
        }
    }

    #[test]
    fn index_text_folds_case_and_composition() {
        assert_eq!(index_text(" Cafe\u{301} "), "café");
        assert_eq!(index_text("RUNNING"), "running");
    }
}
