//! The forms of an identifier that other systems hash: a suppression list or an ad
//! platform may hold the SHA-256 of any of them, so each gets a link.

use super::platform::{normalize, Field, Normalized, Platform};
use crate::base::digest::sha256;
use crate::base::kind::IdentifierKind;
use crate::input::record::Identifier;

/// Tag of a phone's digits-only form (Meta hashes E.164 without `+`).
pub(crate) const PHONE_DIGITS: &str = "phone/digits";
/// Tag of an email's Google form (gmail dots and `+` suffix removed), when it differs.
pub(crate) const EMAIL_GOOGLE: &str = "email/google";

/// `(tag, SHA-256 of the form)`: the canonical form (tag = the identifier type, value as
/// stored) first, then the aliases.
pub(crate) fn forms(id: &Identifier) -> Vec<(&str, [u8; 32])> {
    let mut out = vec![(id.kind.as_str(), sha256(&id.value))];
    match id.known_kind() {
        Some(IdentifierKind::Phone) => {
            if let Some(digits) = id.value.strip_prefix('+') {
                out.push((PHONE_DIGITS, sha256(digits)));
            }
        }
        Some(IdentifierKind::Email)
            if id.value.ends_with("@gmail.com") || id.value.ends_with("@googlemail.com") =>
        {
            if let Normalized::Value(google) =
                normalize(Field::Email, Platform::Google, &id.value, None, 0)
            {
                if google != id.value {
                    out.push((EMAIL_GOOGLE, sha256(&google)));
                }
            }
        }
        _ => {}
    }
    out
}

/// The tags a suppression digest of an email or phone may match, canonical first.
pub(crate) const SUPPRESSIBLE_TAGS: [&str; 4] = [
    IdentifierKind::Email.name(),
    EMAIL_GOOGLE,
    IdentifierKind::Phone.name(),
    PHONE_DIGITS,
];
