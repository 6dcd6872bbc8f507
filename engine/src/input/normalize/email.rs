//! The one email canonicalizer. Identity resolution and the ad platforms agree on what an
//! address is (`local@domain.tld`, lower case); they differ only in what they tolerate
//! around it and what they do with it afterwards, and each difference is an explicit
//! function here:
//!
//! - [`identity_form`] (records.md): trimmed and lower-cased; no whitespace inside;
//! - [`platform_form`] (export.md): every whitespace removed, lower-cased, dots trimmed;
//!   ASCII only, no empty domain label, local part ≤ 64 and address ≤ 254 bytes; for
//!   Google, gmail addresses also lose the dots of the local part and a `+` suffix
//!   ([`google_form`]).

use super::platform::Platform;
use super::IdentifierProblem;

/// Splits a lower-cased address into its local part and domain: one `@`, a non-empty
/// local part, a domain with a dot that neither starts nor ends with one.
fn split(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    ok.then_some((local, domain))
}

/// The form identity resolution links on.
pub fn identity_form(raw: &str) -> Result<String, IdentifierProblem> {
    let s = raw.trim().to_lowercase();
    if s.is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    match split(&s) {
        Some(_) if !s.chars().any(char::is_whitespace) => Ok(s),
        _ => Err(IdentifierProblem::NotAnEmail),
    }
}

/// The form `platform` hashes, or why the address is not valid for it.
pub fn platform_form(raw: &str, platform: Platform) -> Result<String, &'static str> {
    let cleaned;
    // A stored address is already lower case without whitespace: no copy to make.
    let s = if raw
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase() && !char::from(b).is_whitespace())
    {
        raw
    } else {
        cleaned = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        &cleaned
    };
    let s = s.trim_matches('.');
    if !s.is_ascii() {
        return Err("not an ASCII email address");
    }
    if !s.contains('@') {
        return Err("no @");
    }
    let Some((local, domain)) = split(s).filter(|(_, d)| d.split('.').all(|l| !l.is_empty()))
    else {
        return Err("not of the form local@domain.tld");
    };
    if local.len() > 64 || s.len() > 254 {
        return Err("too long (local part over 64 or address over 254)");
    }
    if !dot_atom(local) {
        return Err("local part is not a dot-atom (letters, digits, !#$%&'*+/=?^_`{|}~- joined by single dots)");
    }
    if !ldh_domain(domain) {
        return Err(
            "domain is not letter-digit-hyphen labels with a top-level label of 2+ letters",
        );
    }
    match platform {
        Platform::Google => google_form(local, domain),
        Platform::Meta => Ok(s.to_string()),
    }
}

/// Atoms of letters, digits and ``!#$%&'*+/=?^_`{|}~-`` joined by single dots (so no
/// quoted local part, display name, `mailto:` or separator survives).
fn dot_atom(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
    })
}

/// Labels of letters, digits and inner hyphens joined by dots, the last of 2+ letters (so
/// no IP literal, bracket or trailing separator).
fn ldh_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let ldh = labels.iter().all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let top = labels.last().copied().unwrap_or("");
    ldh && labels.len() >= 2 && top.len() >= 2 && top.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Google's form: for `gmail.com` and `googlemail.com`, the local part without dots and
/// without a `+` suffix; other domains unchanged.
pub fn google_form(local: &str, domain: &str) -> Result<String, &'static str> {
    if domain != "gmail.com" && domain != "googlemail.com" {
        return Ok(format!("{local}@{domain}"));
    }
    let local = local.split('+').next().unwrap_or("").replace('.', "");
    if local.is_empty() {
        return Err("empty local part");
    }
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_platform_forms_differ_only_as_documented() {
        assert_eq!(
            identity_form(" Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(
            identity_form("a b@x.com"),
            Err(IdentifierProblem::NotAnEmail)
        );
        assert_eq!(
            platform_form("a b@x.com", Platform::Meta).unwrap(),
            "ab@x.com"
        );
        assert_eq!(identity_form("a@b..com").unwrap(), "a@b..com");
        assert!(platform_form("a@b..com", Platform::Meta).is_err());
        assert_eq!(identity_form("josé@x.com").unwrap(), "josé@x.com");
        assert!(platform_form("josé@x.com", Platform::Meta).is_err());
        assert_eq!(
            platform_form("First.Last+ads@GMAIL.com", Platform::Google).unwrap(),
            "firstlast@gmail.com"
        );
        assert_eq!(
            platform_form("First.Last+ads@GMAIL.com", Platform::Meta).unwrap(),
            "first.last+ads@gmail.com"
        );
        assert_eq!(
            platform_form("a.b@example.com", Platform::Google).unwrap(),
            "a.b@example.com"
        );
        assert_eq!(
            platform_form("+x@gmail.com", Platform::Google),
            Err("empty local part")
        );
        assert_eq!(platform_form("nobody", Platform::Meta), Err("no @"));
        assert_eq!(identity_form("  "), Err(IdentifierProblem::Empty));
    }

    /// export.md "Validity in detail": the dot-atom rule and what it refuses.
    #[test]
    fn platform_addresses_are_dot_atoms() {
        let ok = |s: &str| platform_form(s, Platform::Meta).is_ok();
        for valid in [
            "john.smith@example.com",
            "o'brien+tag@example.co.uk",
            "x!#$%&'*/=?^_`{|}~-y@mail-server.example.org",
            ".john@example.com", // leading and trailing dots are stripped first
            "a@b.io",
        ] {
            assert!(ok(valid), "{valid}");
        }
        for invalid in [
            "\"john smith\"@example.com",
            "user@[192.168.0.1]",
            "John <john@example.com>",
            "mailto:john@example.com",
            "a@example.com,b@example.com",
            "a@example.com;",
            "john..smith@example.com",
            "john.@example.com",
            "user@-example.com",
            "user@example-.com",
            "user@example.c",
            "user@example.123",
            "user@exa_mple.com",
            "josé@example.com",
            "user@localhost",
        ] {
            assert!(!ok(invalid), "{invalid}");
        }
    }

    proptest::proptest! {
        /// Skipping the copy of an already clean address changes nothing: the result is
        /// that of cleaning every input first.
        #[test]
        fn the_uncopied_path_agrees_with_cleaning_first(
            raw in "[a-zA-Z0-9.@+ \t\x0b\x0c\r\n_-]{0,24}|[a-z0-9.@]{1,12}(\u{a0}|\u{2003}|é|É)?[a-z.@]{0,12}",
        ) {
            for platform in [Platform::Meta, Platform::Google] {
                let cleaned: String = raw
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_lowercase();
                proptest::prop_assert_eq!(
                    platform_form(&raw, platform),
                    platform_form(&cleaned, platform),
                    "{:?}", raw
                );
            }
        }
    }
}
