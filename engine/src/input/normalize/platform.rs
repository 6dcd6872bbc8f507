//! Per-platform normalization of personal values (export.md "Cleaning" and "Per field"):
//! the exact forms Meta Custom Audiences and Google Customer Match hash, so that the same
//! person matches on both sides.

use super::dates::{self, BirthDate};
use super::geo;
use std::borrow::Cow;
use std::str::FromStr;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The ad platform whose rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Meta Custom Audiences.
    Meta,
    /// Google Customer Match.
    Google,
}

impl Platform {
    /// Lower-case name (`meta`, `google`).
    pub fn name(self) -> &'static str {
        match self {
            Platform::Meta => "meta",
            Platform::Google => "google",
        }
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "meta" => Ok(Platform::Meta),
            "google" => Ok(Platform::Google),
            other => Err(format!(
                "unknown platform {other:?} (expected meta or google)"
            )),
        }
    }
}

/// A field the export stage normalizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Email address.
    Email,
    /// Phone number.
    Phone,
    /// Given name.
    FirstName,
    /// Family name.
    LastName,
    /// Gender (Meta only).
    Gender,
    /// Date of birth (Meta only, split into year, month, day).
    BirthDate,
    /// City (Meta only).
    City,
    /// State or province (Meta only).
    State,
    /// Postal code.
    Zip,
    /// Country.
    Country,
    /// External id (`crm_id`), never hashed.
    ExternalId,
}

impl Field {
    /// Every field, in export order.
    pub const ALL: [Field; 11] = [
        Field::Email,
        Field::Phone,
        Field::FirstName,
        Field::LastName,
        Field::Gender,
        Field::BirthDate,
        Field::City,
        Field::State,
        Field::Zip,
        Field::Country,
        Field::ExternalId,
    ];

    /// The name used in records and in `cidb normalize` (`email`, `first_name`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Phone => "phone",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Gender => "gender",
            Field::BirthDate => "birth_date",
            Field::City => "city",
            Field::State => "state",
            Field::Zip => "zip",
            Field::Country => "country",
            Field::ExternalId => "external_id",
        }
    }

    /// The field of a name (`crm_id` is accepted for the external id).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .or((name == "crm_id").then_some(Field::ExternalId))
    }

    /// Whether the platform receives this field hashed (else plain text or not at all).
    pub fn hashed_for(self, platform: Platform) -> bool {
        !matches!(
            (platform, self),
            (_, Field::ExternalId) | (Platform::Google, Field::Zip | Field::Country)
        )
    }

    /// Whether the platform receives this field at all.
    pub fn sent_to(self, platform: Platform) -> bool {
        !matches!(
            (platform, self),
            (
                Platform::Google,
                Field::Gender | Field::BirthDate | Field::City | Field::State
            )
        )
    }
}

/// The outcome of normalizing one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalized {
    /// Empty or a placeholder after cleaning: never hashed, never sent.
    Missing,
    /// Present but not acceptable (a reason for the report and `cidb normalize`).
    Invalid(&'static str),
    /// Already a SHA-256 digest (64 hex characters, lower-cased): passed through.
    Prehashed(String),
    /// The normalized text.
    Value(String),
    /// A birth date split for Meta.
    Date(BirthDate),
}

impl Normalized {
    /// Whether the value can be sent.
    pub fn is_valid(&self) -> bool {
        matches!(
            self,
            Normalized::Prehashed(_) | Normalized::Value(_) | Normalized::Date(_)
        )
    }
}

/// Values that mean "no value" after cleaning (compared case-insensitively).
const PLACEHOLDERS: [&str; 10] = [
    "n/a",
    "#n/a",
    "null",
    "none",
    "nil",
    "undefined",
    "unknown",
    "-",
    "--",
    "?",
];

/// Invisible characters deleted anywhere in a value.
const INVISIBLE: [char; 6] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
];

/// The cleaning every field gets first: NFC, invisible characters deleted, Unicode
/// whitespace trimmed. `None` when nothing (or a placeholder) is left.
pub fn clean(raw: &str) -> Option<String> {
    cleaned(raw).map(Cow::into_owned)
}

/// [`clean`], borrowing `raw` where it needs no change (ASCII: already NFC and without
/// invisible characters), as stored values nearly always do.
fn cleaned(raw: &str) -> Option<Cow<'_, str>> {
    let s = if raw.is_ascii() {
        Cow::Borrowed(raw.trim())
    } else {
        let composed: String = raw.nfc().filter(|c| !INVISIBLE.contains(c)).collect();
        match composed.trim() {
            t if t.len() == composed.len() => Cow::Owned(composed),
            t => Cow::Owned(t.to_string()),
        }
    };
    if s.is_empty() || is_placeholder(&s) {
        None
    } else {
        Some(s)
    }
}

fn is_placeholder(s: &str) -> bool {
    PLACEHOLDERS.iter().any(|p| s.eq_ignore_ascii_case(p))
}

/// Whether `s` is a 64-character hex SHA-256 digest.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Normalizes one raw value of `field` for `platform`. `region` is the ISO alpha-2 region
/// of the person (their country, else the database default), used by phone, birth date,
/// state and zip rules. `today` (day number) bounds birth dates.
pub fn normalize(
    field: Field,
    platform: Platform,
    raw: &str,
    region: Option<&str>,
    today: i32,
) -> Normalized {
    let Some(s) = cleaned(raw) else {
        return Normalized::Missing;
    };
    let s = s.as_ref();
    if field.hashed_for(platform) && field != Field::BirthDate && is_sha256_hex(s) {
        return Normalized::Prehashed(s.to_ascii_lowercase());
    }
    let region = region.map(|r| match r.bytes().any(|b| b.is_ascii_lowercase()) {
        true => Cow::Owned(r.to_ascii_uppercase()),
        false => Cow::Borrowed(r),
    });
    let region = region.as_deref();
    match field {
        Field::Email => email(s, platform),
        Field::Phone => phone(s, platform, region),
        Field::FirstName | Field::LastName => name(s, platform),
        Field::Gender => gender(s),
        Field::BirthDate => match dates::parse_birth_date(s, region, today) {
            Ok(d) => Normalized::Date(d),
            Err(why) => Normalized::Invalid(why),
        },
        Field::City => letters_only(s),
        Field::State => state(s, region),
        Field::Zip => geo::zip(s, platform, region),
        Field::Country => match crate::input::normalize::country(s) {
            Some(code) => Normalized::Value(match platform {
                Platform::Meta => code.to_ascii_lowercase(),
                Platform::Google => code.to_string(),
            }),
            None => Normalized::Invalid("not a country name or ISO 3166-1 code"),
        },
        Field::ExternalId => Normalized::Value(match platform {
            Platform::Meta => s.to_lowercase(),
            Platform::Google => s.to_string(),
        }),
    }
}

fn email(s: &str, platform: Platform) -> Normalized {
    match super::email::platform_form(s, platform) {
        Ok(value) => Normalized::Value(value),
        Err(why) => Normalized::Invalid(why),
    }
}

fn phone(s: &str, platform: Platform, region: Option<&str>) -> Normalized {
    let s = &ascii_digits(s);
    if holds_two_numbers(s) {
        return Normalized::Invalid("holds more than one phone number");
    }
    let e164 = match e164(s, region) {
        Some(p) => p,
        None => return Normalized::Invalid("not a valid phone number for its region"),
    };
    Normalized::Value(match platform {
        Platform::Meta => e164.trim_start_matches('+').to_string(),
        Platform::Google => e164,
    })
}

/// Digits of every script (fullwidth `４`, Arabic-Indic `٤`, Devanagari `४`, ...) as their
/// ASCII digits, as libphonenumber reads them. Unicode encodes decimal digits only in runs
/// of ten, `0` to `9` in order, so a digit's value is its distance from the start of its
/// run, modulo ten.
fn ascii_digits(s: &str) -> String {
    let is_decimal =
        |c: char| c.general_category() == unicode_properties::GeneralCategory::DecimalNumber;
    s.chars()
        .map(|c| {
            if c.is_ascii() || !is_decimal(c) {
                return c;
            }
            let mut start = c as u32;
            while start > 0
                && char::from_u32(start - 1).is_some_and(is_decimal)
                && (c as u32 - start) < 90
            {
                start -= 1;
            }
            char::from_digit((c as u32 - start) % 10, 10).unwrap_or(c)
        })
        .collect()
}

/// Whether a phone field holds two numbers (`…2671;+1-415-…`): two parts, between
/// separators, with at least six digits each. Such a field is invalid, never its first
/// number.
fn holds_two_numbers(s: &str) -> bool {
    s.split([';', ',', '|', '/', '\n', '&'])
        .filter(|part| part.bytes().filter(u8::is_ascii_digit).count() >= 6)
        .count()
        >= 2
}

/// E.164 with `+` by libphonenumber rules: `00` is read as `+`; without a region the
/// number must carry its country code (a leading `+`, `00`, or digits that start with
/// it); extensions are dropped; the number must be valid.
pub fn e164(s: &str, region: Option<&str>) -> Option<String> {
    let trimmed = s.trim();
    let international = trimmed
        .strip_prefix("00")
        .map(|rest| format!("+{rest}"))
        .unwrap_or_else(|| trimmed.to_string());
    if let Ok(p) = crate::input::normalize::phone(&international, region) {
        return Some(p);
    }
    if region.is_none() && !international.starts_with('+') {
        return crate::input::normalize::phone(&format!("+{international}"), None).ok();
    }
    None
}

fn name(s: &str, platform: Platform) -> Normalized {
    let lower = s.to_lowercase();
    let kept: String = match platform {
        Platform::Meta => lower
            .chars()
            .filter(|c| !c.is_whitespace() && !is_punctuation_or_symbol(*c))
            .collect(),
        Platform::Google => lower
            .chars()
            .filter(|c| !is_punctuation_or_symbol(*c))
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    };
    if !kept.chars().any(char::is_alphabetic) {
        Normalized::Invalid("no letters")
    } else {
        Normalized::Value(kept)
    }
}

fn is_punctuation_or_symbol(c: char) -> bool {
    if c.is_ascii() {
        // ASCII punctuation and symbols are exactly `is_ascii_punctuation`.
        return c.is_ascii_punctuation();
    }
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Punctuation | GeneralCategoryGroup::Symbol
    )
}

fn gender(s: &str) -> Normalized {
    let g = s.trim_end_matches('.').to_lowercase();
    match g.as_str() {
        "f" | "female" | "woman" | "w" | "mrs" | "ms" | "miss" => Normalized::Value("f".into()),
        "m" | "male" | "man" | "mr" => Normalized::Value("m".into()),
        _ => Normalized::Invalid("not a recognised gender"),
    }
}

/// Lower-case, diacritics decomposed and dropped, `a-z` only.
fn ascii_letters(s: &str) -> String {
    s.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .filter(char::is_ascii_lowercase)
        .collect()
}

fn letters_only(s: &str) -> Normalized {
    let kept = ascii_letters(s);
    if kept.is_empty() {
        Normalized::Invalid("no letters a-z")
    } else {
        Normalized::Value(kept)
    }
}

fn state(s: &str, region: Option<&str>) -> Normalized {
    let kept = ascii_letters(s);
    if kept.is_empty() {
        return Normalized::Invalid("no letters a-z");
    }
    if matches!(region, None | Some("US")) {
        if let Some(code) = geo::us_state_code(&kept) {
            return Normalized::Value(code.to_string());
        }
    }
    Normalized::Value(kept)
}

#[cfg(test)]
mod tests;
