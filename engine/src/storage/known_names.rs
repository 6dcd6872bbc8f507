//! Names that nearly every profile repeats (identifier types, well-known attributes,
//! consent purposes, sources and event types, as `records.md` names them, plus common
//! event names), stored as a one-byte code instead of their text. Names are schema, never
//! personal data, so the table lives in the code, not in the data directory.
//!
//! The table is part of the on-disk format (`docs/format.md`): codes are positions in
//! [`KNOWN_NAMES`], so entries are only ever appended.

use crate::input::record::ShortText;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The known names; a name's code is its position. Append only.
pub(crate) const KNOWN_NAMES: &[&str] = &[
    // Identifier types (records.md).
    "email",
    "phone",
    "facebook_id",
    "google_id",
    "linkedin_id",
    "twitter_id",
    "crm_id",
    "device_id",
    // Sources named in records.md.
    "facebook",
    "google",
    "linkedin",
    "twitter",
    "crm",
    "web_form",
    "pos",
    "wifi",
    "beacon",
    "app",
    // Well-known attributes (records.md).
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "country",
    "city",
    "zip",
    "language",
    "education",
    "work",
    "interests",
    "likes",
    "loyalty_tier",
    "lifetime_value",
    "newsletter",
    // Consent purposes the export stage reads by default.
    "marketing",
    "custom_audiences",
    // Common event types.
    "purchase",
    "page_view",
    "add_to_cart",
    "remove_from_cart",
    "view_item",
    "begin_checkout",
    "refund",
    "sign_up",
    "login",
    "search",
    "visit",
    "store_visit",
    "app_open",
    "email_open",
    "email_click",
    "click",
    "open",
];

/// The code of each known name.
static CODES: LazyLock<HashMap<&'static str, u8, foldhash::fast::FixedState>> =
    LazyLock::new(|| {
        KNOWN_NAMES
            .iter()
            .enumerate()
            .map(|(code, name)| (*name, u8::try_from(code).expect("at most 256 known names")))
            .collect()
    });

/// A name as stored: a known name's code, or the text of any other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum StoredName<S> {
    /// A name that is not in the table.
    Other(S),
    /// Position in [`KNOWN_NAMES`].
    Known(u8),
}

impl<'a> StoredName<&'a str> {
    /// The stored form of `name`.
    pub(crate) fn of(name: &'a str) -> Self {
        match CODES.get(name) {
            Some(&code) => StoredName::Known(code),
            None => StoredName::Other(name),
        }
    }
}

impl<'a> StoredName<&'a str> {
    /// The name, borrowed; an unknown code is an error (as [`StoredName::into_name`]).
    pub(crate) fn as_name(&self) -> Result<&'a str, String> {
        match *self {
            StoredName::Other(name) => Ok(name),
            StoredName::Known(code) => KNOWN_NAMES
                .get(usize::from(code))
                .copied()
                .ok_or_else(|| format!("unknown name code {code}")),
        }
    }
}

impl StoredName<ShortText> {
    /// The name; an unknown code is an error (bytes from a newer table or damaged ones).
    pub(crate) fn into_name(self) -> Result<ShortText, String> {
        match self {
            StoredName::Other(name) => Ok(name),
            StoredName::Known(code) => KNOWN_NAMES
                .get(usize::from(code))
                .map(|name| ShortText::const_new(name))
                .ok_or_else(|| format!("unknown name code {code}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_the_table_fits_a_byte() {
        assert!(KNOWN_NAMES.len() <= 256);
        let distinct: std::collections::HashSet<_> = KNOWN_NAMES.iter().collect();
        assert_eq!(distinct.len(), KNOWN_NAMES.len(), "a name is listed twice");
        for name in KNOWN_NAMES.iter().copied().chain(["custom_x", "", "émail"]) {
            let stored = StoredName::of(name);
            assert_eq!(
                matches!(stored, StoredName::Known(_)),
                KNOWN_NAMES.contains(&name)
            );
            let owned = match stored {
                StoredName::Other(s) => StoredName::Other(ShortText::from(s)),
                StoredName::Known(c) => StoredName::Known(c),
            };
            assert_eq!(owned.into_name().unwrap(), name);
        }
        let err = StoredName::<ShortText>::Known(255).into_name().unwrap_err();
        assert_eq!(err, "unknown name code 255");
    }
}
