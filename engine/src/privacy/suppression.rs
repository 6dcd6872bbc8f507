//! Suppression (objection) lists: named sets of SHA-256 digests of normalized emails and
//! phones. A digest covers a person whether or not they are in the database yet; the
//! profiles a list currently matches are derived (through the identifier links, which are
//! keyed over the same digests) and kept current as profiles change.

use crate::base::digest::{parse_hex, sha256};
use crate::base::kind::IdentifierKind;
pub use crate::index::suppression::SuppressionListInfo;
use crate::input::normalize::platform::{clean, e164, normalize, Field, Normalized, Platform};
use serde::Serialize;

/// Longest list name.
pub const MAX_LIST_NAME: usize = crate::base::limits::MAX_NAME;

/// What one suppression entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A raw email, normalized on the way in.
    Email,
    /// A raw phone, normalized on the way in.
    Phone,
    /// A SHA-256 digest given as such.
    Hashed,
}

/// The list entries that suppress a person by `ids`: every form platforms hash (see
/// `input::normalize::forms`) of each email and phone, sorted by digest, each digest once.
pub(crate) fn person_digests<'a>(
    ids: impl IntoIterator<Item = &'a crate::input::record::Identifier>,
) -> Vec<([u8; 32], EntryKind)> {
    let mut digests: Vec<([u8; 32], EntryKind)> = ids
        .into_iter()
        .filter_map(|id| match id.known_kind()? {
            IdentifierKind::Email => Some((id, EntryKind::Email)),
            IdentifierKind::Phone => Some((id, EntryKind::Phone)),
            _ => None,
        })
        .flat_map(|(id, kind)| {
            crate::input::normalize::forms::forms(id)
                .into_iter()
                .map(move |(_, d)| (d, kind))
        })
        .collect();
    digests.sort_unstable_by_key(|(d, _)| *d);
    digests.dedup_by_key(|(d, _)| *d);
    digests
}

impl EntryKind {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            EntryKind::Email => 1,
            EntryKind::Phone => 2,
            EntryKind::Hashed => 3,
        }
    }
}

/// An entry's kind and the digests it adds.
pub type ParsedEntry = (EntryKind, Vec<[u8; 32]>);

/// Turns one line of a suppression file into digests: a 64-hex digest is taken as is; a
/// value with `@` is an email; anything else is a phone (read with `region`, or with its
/// country code). Returns the entry kind and its digests (a Gmail address also yields its
/// Google form, so both spellings are covered).
pub fn parse_entry(raw: &str, region: Option<&str>) -> Result<Option<ParsedEntry>, &'static str> {
    let Some(value) = clean(raw) else {
        return Ok(None);
    };
    if let Some(digest) = parse_hex(&value.to_ascii_lowercase()) {
        return Ok(Some((EntryKind::Hashed, vec![digest])));
    }
    if value.contains('@') {
        let meta = match normalize(Field::Email, Platform::Meta, &value, None, 0) {
            Normalized::Value(v) => v,
            _ => return Err("not a valid email address"),
        };
        let mut digests = vec![sha256(&meta)];
        if let Normalized::Value(google) =
            normalize(Field::Email, Platform::Google, &value, None, 0)
        {
            if google != meta {
                digests.push(sha256(&google));
            }
        }
        return Ok(Some((EntryKind::Email, digests)));
    }
    match e164(&value, region) {
        Some(p) => Ok(Some((EntryKind::Phone, vec![sha256(&p)]))),
        None => Err("not a SHA-256 digest, an email or a valid phone number"),
    }
}

/// The result of importing entries into a list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SuppressionReport {
    /// The list.
    pub list: String,
    /// Lines read.
    pub lines: u64,
    /// New digests added.
    pub added: u64,
    /// Digests the list already held.
    pub already_present: u64,
    /// Empty or placeholder lines.
    pub blank: u64,
    /// Lines that could not be read (count).
    pub invalid_count: u64,
    /// The first invalid lines: (1-based line, reason).
    pub invalid: Vec<(u64, String)>,
    /// Live profiles the list matches after the import.
    pub profiles: u64,
}

/// Checks a list name: `[a-z0-9_-]{1,64}`.
pub fn valid_list_name(name: &str) -> bool {
    crate::base::names::valid_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::digest::sha256_hex;

    #[test]
    fn entries_are_normalized_or_taken_as_digests() {
        let (kind, d) = parse_entry(" Jane.Doe@Example.com ", None)
            .unwrap()
            .unwrap();
        assert_eq!(kind, EntryKind::Email);
        assert_eq!(d, vec![sha256("jane.doe@example.com")]);
        let (_, d) = parse_entry("First.Last+x@gmail.com", None)
            .unwrap()
            .unwrap();
        assert_eq!(
            d,
            vec![
                sha256("first.last+x@gmail.com"),
                sha256("firstlast@gmail.com")
            ]
        );
        let (kind, d) = parse_entry("06 12345678", Some("NL")).unwrap().unwrap();
        assert_eq!((kind, d), (EntryKind::Phone, vec![sha256("+31612345678")]));
        let h = sha256_hex("x@y.com").to_ascii_uppercase();
        let (kind, d) = parse_entry(&h, None).unwrap().unwrap();
        assert_eq!((kind, d), (EntryKind::Hashed, vec![sha256("x@y.com")]));
        assert_eq!(parse_entry("n/a", None).unwrap(), None);
        assert!(parse_entry("hello", None).is_err());
        assert!(
            parse_entry("06 12345678", None).is_err(),
            "no region, no country code"
        );
    }

    #[test]
    fn names() {
        assert!(valid_list_name("optout-2026_q4"));
        assert!(!valid_list_name(""));
        assert!(!valid_list_name("Opt Out"));
        assert!(!valid_list_name(&"x".repeat(65)));
    }
}
