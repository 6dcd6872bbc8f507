//! Phone numbers to E.164 with libphonenumber's rules and metadata (the `phonenumber`
//! crate), validity checked over regexes compiled once per thread.
//!
//! `phonenumber` keeps its compiled patterns in one mutex-guarded LRU cache of 100
//! entries, keyed by the pattern text. Validating numbers of a handful of countries needs
//! more than 100 patterns, so the cache thrashed and recompiled on nearly every call
//! (44 µs per phone, 14% of an import's CPU); even without thrashing, every match hashes
//! a long pattern under a lock shared by all parser threads. Parsing still goes through
//! the crate (with a cache that holds every pattern); the validity check, a handful of
//! pattern matches per number, is done here the way `phonenumber::is_valid` does it, and
//! a test checks both agree.

use phonenumber::metadata::{Database, Descriptor, Metadata, DATABASE};
use regex::{Regex, RegexBuilder};
use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;

/// Patterns phonenumber's shared cache may hold (the whole metadata has a few thousand).
const SHARED_REGEX_CACHE: usize = 8192;

/// The E.164 form of `raw` (already trimmed), or `None` when it is not a valid number.
/// `region` (ISO alpha-2) is the default region for national formats.
pub(super) fn to_e164(raw: &str, region: Option<&str>) -> Option<String> {
    enlarge_shared_regex_cache();
    let region =
        region.and_then(|r| phonenumber::country::Id::from_str(&r.to_ascii_uppercase()).ok());
    let number = phonenumber::parse(region, raw).ok()?;
    let code = number.code().value();
    // The national significant number, leading zeros (Italy) included.
    let national = number.national().to_string();
    is_valid(&DATABASE, code, &national).then(|| format!("+{code}{national}"))
}

/// Gives phonenumber's shared regex cache room for every pattern, once.
fn enlarge_shared_regex_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cache = DATABASE.cache();
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        *cache = regex_cache::RegexCache::new(SHARED_REGEX_CACHE);
    });
}

/// `phonenumber::validator::is_valid_with`: the number's region metadata knows a type
/// (fixed line, mobile, toll free, ...) that the national number matches.
fn is_valid(db: &Database, code: u16, national: &str) -> bool {
    metadata_for(db, code, national).is_some_and(|meta| has_known_type(meta, national))
}

/// `phonenumber::validator::source_for`: the metadata of the region a number belongs to.
fn metadata_for<'a>(db: &'a Database, code: u16, national: &str) -> Option<&'a Metadata> {
    let regions = db.region(&code)?;
    if let [only] = regions.as_slice() {
        return if *only == "001" {
            db.by_code(&code)?.into_iter().next()
        } else {
            phonenumber::country::Id::from_str(only).ok()?;
            db.by_id(*only)
        };
    }
    for region in regions {
        let meta = db.by_id(region)?;
        let belongs = match meta.leading_digits() {
            Some(pattern) => matches_at_start(pattern.as_str(), national),
            None => has_known_type(meta, national),
        };
        if belongs {
            phonenumber::country::Id::from_str(region).ok()?;
            return Some(meta);
        }
    }
    None
}

/// `phonenumber::validator::number_type(..) != Type::Unknown`.
fn has_known_type(meta: &Metadata, national: &str) -> bool {
    let d = meta.descriptors();
    if !matches(d.general(), national) {
        return false;
    }
    [
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
        d.fixed_line(),
        d.mobile(),
    ]
    .into_iter()
    .flatten()
    .any(|desc| matches(desc, national))
}

/// `Descriptor::is_match`: a possible length, and the pattern matches from the start.
fn matches(desc: &Descriptor, national: &str) -> bool {
    let lengths = desc.possible_length();
    if !lengths.is_empty() && !lengths.contains(&(national.len() as u16)) {
        return false;
    }
    matches_at_start(desc.national_number().as_str(), national)
}

thread_local! {
    /// Compiled metadata patterns, keyed by the address and length of the pattern text
    /// inside the static metadata (which never moves or changes), so a lookup hashes two
    /// words instead of the pattern.
    static COMPILED: RefCell<HashMap<(usize, usize), Regex>> = RefCell::new(HashMap::new());
}

/// Whether `pattern` (metadata syntax: whitespace ignored) matches `text` from its start,
/// as the crate's `find(..).start() == 0` (a match at the start is the leftmost one):
/// compiled anchored, so the answer needs no reverse search for where a match begins.
fn matches_at_start(pattern: &str, text: &str) -> bool {
    COMPILED.with(|compiled| {
        let mut compiled = compiled.borrow_mut();
        let key = (pattern.as_ptr() as usize, pattern.len());
        let regex = compiled.entry(key).or_insert_with(|| {
            RegexBuilder::new(&format!("^(?:{pattern})"))
                .ignore_whitespace(true)
                .build()
                .unwrap_or_else(|_| Regex::new("$^").expect("a never-matching pattern"))
        });
        regex.is_match(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The crate's own path: parse, `is_valid`, format as E.164.
    fn reference(raw: &str, region: Option<&str>) -> Option<String> {
        let region = region.and_then(|r| phonenumber::country::Id::from_str(r).ok());
        let number = phonenumber::parse(region, raw).ok()?;
        number
            .is_valid()
            .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
    }

    #[test]
    fn agrees_with_the_crate_on_random_numbers() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let regions = [
            None,
            Some("NL"),
            Some("DE"),
            Some("US"),
            Some("GB"),
            Some("FR"),
            Some("BE"),
            Some("ES"),
            Some("IT"),
            Some("CA"),
            Some("AU"),
            Some("IN"),
            Some("BR"),
            Some("JP"),
            Some("CH"),
        ];
        let prefixes = [
            "", "0", "06", "07", "+", "+1", "+31", "+316", "+44", "+447", "+49", "+33", "+39",
            "+390", "+32", "+34", "+61", "+91", "+800", "+979", "00", "0031", "+1 6", "+7",
        ];
        let cases: usize = std::env::var("CIDB_PHONE_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let (mut valid, mut compared) = (0, 0);
        for _ in 0..cases {
            let prefix = prefixes[rng.gen_range(0..prefixes.len())];
            let digits: String = (0..rng.gen_range(3..13))
                .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
                .collect();
            let raw = format!("{prefix}{digits}");
            let region = regions[rng.gen_range(0..regions.len())];
            let expected = reference(&raw, region);
            assert_eq!(to_e164(&raw, region), expected, "{raw:?} in {region:?}");
            valid += usize::from(expected.is_some());
            compared += 1;
        }
        // Both outcomes must be well represented for the comparison to mean something.
        assert!(valid > compared / 20, "only {valid} of {compared} valid");
        assert!(
            valid < compared - compared / 20,
            "{valid} of {compared} valid"
        );
    }

    #[test]
    fn keeps_italian_leading_zeros_and_formats_shared_codes() {
        assert_eq!(
            to_e164("+39 02 3661 8300", None).as_deref(),
            Some("+390236618300")
        );
        assert_eq!(
            to_e164("(650) 253-0000", Some("US")).as_deref(),
            Some("+16502530000")
        );
        assert_eq!(
            to_e164("06 12345678", Some("NL")).as_deref(),
            Some("+31612345678")
        );
        assert_eq!(to_e164("+1 2530000", None), None);
    }
}
