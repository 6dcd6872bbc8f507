//! Address parts: US state codes and postal codes per region (export.md, state and zip
//! rows).

use super::platform::{Normalized, Platform};

/// US states, DC and territories: name folded to `a-z` → two-letter code.
const US_STATES: [(&str, &str); 56] = [
    ("alabama", "al"),
    ("alaska", "ak"),
    ("arizona", "az"),
    ("arkansas", "ar"),
    ("california", "ca"),
    ("colorado", "co"),
    ("connecticut", "ct"),
    ("delaware", "de"),
    ("districtofcolumbia", "dc"),
    ("florida", "fl"),
    ("georgia", "ga"),
    ("hawaii", "hi"),
    ("idaho", "id"),
    ("illinois", "il"),
    ("indiana", "in"),
    ("iowa", "ia"),
    ("kansas", "ks"),
    ("kentucky", "ky"),
    ("louisiana", "la"),
    ("maine", "me"),
    ("maryland", "md"),
    ("massachusetts", "ma"),
    ("michigan", "mi"),
    ("minnesota", "mn"),
    ("mississippi", "ms"),
    ("missouri", "mo"),
    ("montana", "mt"),
    ("nebraska", "ne"),
    ("nevada", "nv"),
    ("newhampshire", "nh"),
    ("newjersey", "nj"),
    ("newmexico", "nm"),
    ("newyork", "ny"),
    ("northcarolina", "nc"),
    ("northdakota", "nd"),
    ("ohio", "oh"),
    ("oklahoma", "ok"),
    ("oregon", "or"),
    ("pennsylvania", "pa"),
    ("rhodeisland", "ri"),
    ("southcarolina", "sc"),
    ("southdakota", "sd"),
    ("tennessee", "tn"),
    ("texas", "tx"),
    ("utah", "ut"),
    ("vermont", "vt"),
    ("virginia", "va"),
    ("washington", "wa"),
    ("westvirginia", "wv"),
    ("wisconsin", "wi"),
    ("wyoming", "wy"),
    ("puertorico", "pr"),
    ("guam", "gu"),
    ("americansamoa", "as"),
    ("usvirginislands", "vi"),
    ("northernmarianaislands", "mp"),
];

/// The two-letter code of a US state name already folded to `a-z` (a code maps to
/// itself).
pub(crate) fn us_state_code(folded: &str) -> Option<&'static str> {
    US_STATES
        .iter()
        .find(|(name, code)| *name == folded || *code == folded)
        .map(|(_, code)| *code)
}

/// Postal code for `platform` in `region` (alpha-2, upper-case).
pub(crate) fn zip(s: &str, platform: Platform, region: Option<&str>) -> Normalized {
    match region {
        Some("US") => {
            let digits: String = s
                .chars()
                .take_while(|c| *c != '-')
                .filter(char::is_ascii_digit)
                .collect();
            match digits.len() {
                0..=2 => Normalized::Invalid("a US ZIP code has 5 digits"),
                3 | 4 => Normalized::Value(format!("{digits:0>5}")),
                _ => Normalized::Value(digits[..5].to_string()),
            }
        }
        Some("GB") => {
            let compact: String = s
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase();
            if !(5..=7).contains(&compact.len())
                || !compact.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Normalized::Invalid("not a UK postcode");
            }
            let (outward, inward) = compact.split_at(compact.len() - 3);
            Normalized::Value(match platform {
                Platform::Meta => format!("{}{}", outward.to_ascii_lowercase(), &inward[..1]),
                Platform::Google => format!("{outward} {inward}"),
            })
        }
        _ => {
            let words: Vec<&str> = s.split_whitespace().collect();
            if words.is_empty() {
                return Normalized::Missing;
            }
            Normalized::Value(match platform {
                Platform::Meta => words
                    .concat()
                    .chars()
                    .filter(|c| *c != '-')
                    .collect::<String>()
                    .to_lowercase(),
                Platform::Google => words.join(" ").to_uppercase(),
            })
        }
    }
}
