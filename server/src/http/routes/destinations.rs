//! The destination a segment's diff sync uses (`mode`: `adds` / `removes`).

use super::super::ApiError;
use engine::export::Format;

/// The destination a segment's diff sync in `format` uses: exact and collision-free.
///
/// Segment names are 1-64 of `[A-Za-z0-9_.-]` (case-sensitive); destination names 1-64 of
/// `[a-z0-9_-]`. A segment name already made of `[a-z0-9_-]` keeps the name it always had,
/// `{segment}-{format}`, so existing sync state stays in use. Any other name is escaped
/// (`_` → `__`, `.` → `_-`, a capital → `_` and its lower case) and marked:
/// `{escaped}-{format}-x`. Why no two segments (or formats) share a destination:
/// - a plain name's last `-` component is the format's (`api`, `csv` or `hashes`), a
///   marked name's is `x`, so the two kinds never meet;
/// - the format is read back from the end (no format name ends in `-` + another one);
/// - the escape is a prefix code (`_` always takes the next character with it), so the
///   segment name is read back exactly.
///
/// A name whose destination would be longer than 64 is refused (400), never shortened.
pub(super) fn destination_name(segment: &str, format: Format) -> Result<String, ApiError> {
    let plain = segment
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    let name = if plain {
        format!("{segment}-{}", format.name())
    } else {
        let mut escaped = String::with_capacity(segment.len() * 2);
        for c in segment.chars() {
            match c {
                '_' => escaped.push_str("__"),
                '.' => escaped.push_str("_-"),
                c if c.is_ascii_uppercase() => {
                    escaped.push('_');
                    escaped.push(c.to_ascii_lowercase());
                }
                c => escaped.push(c),
            }
        }
        format!("{escaped}-{}-x", format.name())
    };
    if engine::export::valid_destination_name(&name) {
        Ok(name)
    } else {
        Err(ApiError::bad_request(format!(
            "segment name {segment:?} cannot name a sync destination (the name would be \
             {name:?}, over 64 characters or outside [a-z0-9_-]); save the segment under a \
             shorter name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FORMATS: [Format; 5] = [
        Format::MetaApi,
        Format::MetaCsv,
        Format::GoogleApi,
        Format::GoogleCsv,
        Format::Hashes,
    ];

    #[test]
    fn plain_segment_names_keep_their_destination() {
        for (segment, format, want) in [
            ("nl", Format::GoogleApi, "nl-google-api"),
            ("nl_runners-2", Format::Hashes, "nl_runners-2-hashes"),
        ] {
            assert_eq!(destination_name(segment, format).unwrap(), want);
        }
        assert_eq!(
            destination_name("Yq", Format::Hashes).unwrap(),
            "_yq-hashes-x"
        );
        assert_eq!(
            destination_name("a.b_C", Format::MetaApi).unwrap(),
            "a_-b___c-meta-api-x"
        );
    }

    #[test]
    fn destination_names_never_collide() {
        // Every segment name up to 3 characters over an alphabet with each kind of
        // character, plus names built to look like other names' destinations.
        let alphabet = ['a', 'y', 'Y', 'q', 'Q', '0', '_', '-', '.', 'x'];
        let mut names: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
        for _ in 0..2 {
            let longer: Vec<String> = names
                .iter()
                .flat_map(|n| alphabet.iter().map(move |c| format!("{n}{c}")))
                .collect();
            names.extend(longer);
        }
        names.sort();
        names.dedup();
        for tricky in [
            "_yq-hashes-x",
            "yq-hashes",
            "_yq-hashes",
            "x-meta",
            "x-meta-api-x",
            "a-google",
            "A-google",
            "a.b",
            "a_-b",
            "a__b",
            "A_b",
            "_a_b",
        ] {
            names.push(tricky.to_string());
        }
        let mut seen: HashMap<String, (String, &str)> = HashMap::new();
        for name in &names {
            for format in FORMATS {
                let dest = destination_name(name, format).unwrap();
                assert!(engine::export::valid_destination_name(&dest), "{dest}");
                if let Some(other) = seen.insert(dest.clone(), (name.clone(), format.name())) {
                    panic!("{name:?}/{} and {other:?} share {dest}", format.name());
                }
            }
        }
    }

    #[test]
    fn names_too_long_for_a_destination_are_refused() {
        let long = "A".repeat(40);
        assert!(destination_name(&long, Format::Hashes).is_err());
        assert!(destination_name(&"a".repeat(64), Format::Hashes).is_err());
    }
}
