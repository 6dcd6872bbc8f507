//! Saved segments in the engine's catalog.
//!
//! Catalog key `segment/NAME`; value layout (version 1, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version = 1 |
//! | 1 | 8 | created, ms since the epoch (i64 LE) |
//! | 9 | 8 | updated, ms since the epoch (i64 LE) |
//! | 17 | n | expression text, UTF-8 |

use crate::error::Error;
use crate::plan::SegmentSource;
use engine::{Engine, Millis, StorageError};

const PREFIX: &str = "segment/";
const VERSION: u8 = 1;
const HEADER: usize = 17;

/// A saved segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSegment {
    /// Its name.
    pub name: String,
    /// Its expression, as saved.
    pub expr: String,
    /// When it was first saved (ms since the epoch).
    pub created_at: Millis,
    /// When it was last replaced (ms since the epoch).
    pub updated_at: Millis,
}

/// Whether `name` is a valid segment name: 1-64 of `[A-Za-z0-9_.-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub(crate) fn encode(s: &SavedSegment) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + s.expr.len());
    out.push(VERSION);
    out.extend_from_slice(&s.created_at.to_le_bytes());
    out.extend_from_slice(&s.updated_at.to_le_bytes());
    out.extend_from_slice(s.expr.as_bytes());
    out
}

pub(crate) fn decode(name: &str, bytes: &[u8]) -> Result<SavedSegment, StorageError> {
    let corrupt = |detail: &str| StorageError::Corrupted {
        what: "saved segment",
        key: format!("{PREFIX}{name}").into_bytes(),
        detail: detail.to_string(),
    };
    if bytes.len() < HEADER {
        return Err(corrupt("too short"));
    }
    if bytes[0] != VERSION {
        return Err(corrupt(&format!("unknown version {}", bytes[0])));
    }
    let i64_at = |o: usize| i64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let expr = std::str::from_utf8(&bytes[HEADER..]).map_err(|_| corrupt("not UTF-8"))?;
    Ok(SavedSegment {
        name: name.to_string(),
        expr: expr.to_string(),
        created_at: i64_at(1),
        updated_at: i64_at(9),
    })
}

/// Reads one saved segment.
pub(crate) fn get(engine: &Engine, name: &str) -> Result<Option<SavedSegment>, StorageError> {
    engine
        .catalog_get(&format!("{PREFIX}{name}"))?
        .map(|b| decode(name, &b))
        .transpose()
}

/// Writes one saved segment.
pub(crate) fn put(engine: &Engine, s: &SavedSegment) -> Result<(), StorageError> {
    engine.catalog_put(&format!("{PREFIX}{}", s.name), Some(&encode(s)))
}

/// Removes one saved segment.
pub(crate) fn remove(engine: &Engine, name: &str) -> Result<(), StorageError> {
    engine.catalog_put(&format!("{PREFIX}{name}"), None)
}

/// Every saved segment, by name.
pub(crate) fn list(engine: &Engine) -> Result<Vec<SavedSegment>, Error> {
    let mut out = Vec::new();
    for (key, bytes) in engine.catalog_list()? {
        if let Some(name) = key.strip_prefix(PREFIX) {
            out.push(decode(name, &bytes)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Saved segments as the planner reads them, optionally with one definition replaced
/// (the one being saved, so that cycles through it are found before it is written).
pub(crate) struct CatalogSource<'e> {
    pub engine: &'e Engine,
    pub overlay: Option<(&'e str, &'e str)>,
}

impl SegmentSource for CatalogSource<'_> {
    fn definition(&self, name: &str) -> Result<Option<String>, StorageError> {
        if let Some((n, expr)) = self.overlay {
            if n == name {
                return Ok(Some(expr.to_string()));
            }
        }
        Ok(get(self.engine, name)?.map(|s| s.expr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_other_versions() {
        let s = SavedSegment {
            name: "nl".into(),
            expr: "country = \"NL\"".into(),
            created_at: 1,
            updated_at: -2,
        };
        let bytes = encode(&s);
        assert_eq!(decode("nl", &bytes).unwrap(), s);
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(decode("nl", &other)
            .unwrap_err()
            .to_string()
            .contains("unknown version 9"));
        assert!(decode("nl", &bytes[..5]).is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name("nl_runners-2026.v1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
