//! What an analyst key may see and do beyond an admin's rules (README, "Analysts"):
//! an analyst never sees a raw personal value.
//!
//! - Breakdowns by a personal field are refused ([`personal_field`]); groups of a
//!   breakdown smaller than the minimum group size are suppressed, only their number and
//!   total are reported ([`suppress_small_groups`]).
//! - A model feature that tests a personal field's value (a custom attribute such as
//!   `work_email`, which the engine's own list of personal fields does not name) is shown
//!   to an analyst without its value ([`withhold_personal_value`]).
//! - An analyst's export policy can only narrow the default: the effective policy is
//!   `(consent("custom_audiences")) AND (their policy)` ([`effective_policy`]).

use crate::api::segments::Suppressed;
use crate::keys::Role;
use query::Breakdown;

/// Attributes whose values identify or locate a person (records.md's names, contact
/// details, addresses, exact birth dates, pictures and profile links).
const PERSONAL_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "middle_name",
    "full_name",
    "given_name",
    "family_name",
    "maiden_name",
    "display_name",
    "user_name",
    "username",
    "nickname",
    "name",
    "birth_date",
    "birthday",
    "date_of_birth",
    "picture",
    "profile_url",
    "firstname",
    "lastname",
    "fullname",
    "surname",
    "dob",
];

/// Words that make a (custom) attribute personal wherever they appear in its
/// `_`-separated name: `work_email`, `mobile_phone`, `street_address`, `billing_address`.
const PERSONAL_WORDS: &[&str] = &[
    "email",
    "mail",
    "phone",
    "telephone",
    "tel",
    "mobile",
    "address",
    "street",
    "birth",
    "ssn",
    "passport",
    "iban",
    "surname",
];

/// Whether `field`'s values are personal data an analyst may not break down by (a word
/// counts in the plural too: `emails`, `phones`; `e_mail` is `e` + `mail`).
pub(crate) fn personal_field(field: &str) -> bool {
    PERSONAL_FIELDS.contains(&field)
        || field.split('_').any(|word| {
            PERSONAL_WORDS.contains(&word)
                || word
                    .strip_suffix('s')
                    .is_some_and(|w| PERSONAL_WORDS.contains(&w))
        })
}

/// A model feature's label (a segment expression such as `interests HAS "yoga"`) as an
/// analyst sees it: the value of a personal field is withheld (`work_email = …`), so
/// reports and score reasons never show one. Other labels are returned as they are.
pub(crate) fn withhold_personal_value(label: &str) -> String {
    let field_end = label
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(label.len());
    let (field, rest) = label.split_at(field_end);
    // Functions (`consent("…")`, `event("…")`) name a purpose or an event type, not a
    // person's value; `FIELD EXISTS` names no value at all.
    if field.is_empty() || rest.starts_with('(') || rest == " EXISTS" || !personal_field(field) {
        return label.to_string();
    }
    let op = rest.split_whitespace().next().unwrap_or_default();
    format!("{field} {op} (personal value withheld)")
}

/// Removes the groups smaller than `min_group_size` from an analyst's breakdown; the
/// answer reports how many groups and members were suppressed.
pub(crate) fn suppress_small_groups(b: &mut Breakdown, min_group_size: u64) -> Suppressed {
    let (mut groups, mut members) = (0u64, 0u64);
    b.values.retain(|v| {
        let small = v.count < min_group_size;
        if small {
            groups += 1;
            members += v.count;
        }
        !small
    });
    Suppressed {
        count: members,
        groups,
        min_group_size,
    }
}

/// The policy an export or sync applies. An admin's `policy` replaces the default; an
/// analyst's can only add conditions to it. The requested text must be a valid
/// expression on its own (checked first), so the parentheses hold it whole.
pub(crate) fn effective_policy(role: Role, requested: Option<&str>) -> String {
    match (role, requested) {
        (_, None) => query::DEFAULT_POLICY.to_string(),
        (Role::Admin, Some(p)) => p.to_string(),
        (_, Some(p)) => format!("({}) AND ({p})", query::DEFAULT_POLICY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_fields() {
        for f in [
            "first_name",
            "last_name",
            "birth_date",
            "work_email",
            "mobile_phone",
            "street_address",
            "address_line1",
            "profile_url",
            "emails",
            "surname",
            "firstname",
            "dob",
            "telephone",
            "home_tel",
            "e_mail",
            "mail",
        ] {
            assert!(personal_field(f), "{f}");
        }
        for f in [
            "country",
            "city",
            "zip",
            "gender",
            "interests",
            "loyalty_tier",
            "newsletter",
            "campaign_name",
            "emailable",
        ] {
            assert!(!personal_field(f), "{f}");
        }
    }

    #[test]
    fn personal_values_in_model_features_are_withheld() {
        assert_eq!(
            withhold_personal_value("work_email = \"info@example.com\""),
            "work_email = (personal value withheld)"
        );
        assert_eq!(
            withhold_personal_value("street_address HAS \"Main St 1\""),
            "street_address HAS (personal value withheld)"
        );
        for kept in [
            "interests HAS \"yoga\"",
            "country = \"NL\"",
            "age BETWEEN 25 AND 34",
            "work_email EXISTS",
            "identifier(\"email\")",
            "consent(\"marketing\")",
            "event(\"purchase\", since \"2026-01-01\")",
            "lifetime_value >= 120.5",
        ] {
            assert_eq!(withhold_personal_value(kept), kept);
        }
    }

    #[test]
    fn analysts_only_narrow_the_policy() {
        assert_eq!(
            effective_policy(Role::Analyst, Some("NOT consent(\"custom_audiences\")")),
            "(consent(\"custom_audiences\")) AND (NOT consent(\"custom_audiences\"))"
        );
        assert_eq!(effective_policy(Role::Admin, Some("ALL")), "ALL");
        assert_eq!(effective_policy(Role::Analyst, None), query::DEFAULT_POLICY);
    }
}
