//! Saved segments, kept in the engine's catalog as stored records
//! (`engine::SavedSegmentRecord`: the engine's codec with a layout byte, docs/format.md).

use crate::error::Error;
use crate::plan::SegmentSource;
use engine::{Engine, Millis, SavedSegmentRecord, StorageError};

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

impl SavedSegment {
    fn from_record(r: SavedSegmentRecord) -> SavedSegment {
        SavedSegment {
            name: r.name,
            expr: r.expr,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }

    fn to_record(&self) -> SavedSegmentRecord {
        SavedSegmentRecord {
            name: self.name.clone(),
            expr: self.expr.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Reads one saved segment.
pub(crate) fn get(engine: &Engine, name: &str) -> Result<Option<SavedSegment>, StorageError> {
    Ok(engine.saved_segment(name)?.map(SavedSegment::from_record))
}

/// Writes one saved segment.
pub(crate) fn put(engine: &Engine, s: &SavedSegment) -> Result<(), StorageError> {
    engine.put_saved_segment(&s.to_record())
}

/// Removes one saved segment and its daily counts.
pub(crate) fn remove(engine: &Engine, name: &str) -> Result<(), StorageError> {
    engine.delete_saved_segment(name)?;
    // Its daily counts go with it (a segment saved again under the name starts afresh).
    engine.delete_segment_history(name).map(|_| ())
}

/// Every saved segment, by name.
pub(crate) fn list(engine: &Engine) -> Result<Vec<SavedSegment>, Error> {
    let mut out: Vec<SavedSegment> = engine
        .saved_segments()?
        .into_iter()
        .map(SavedSegment::from_record)
        .collect();
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
    fn names() {
        assert!(valid_name("nl_runners-2026.v1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
