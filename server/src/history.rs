//! Saved segments' sizes over time: one member count a day per saved segment, the last
//! [`engine::SEGMENT_HISTORY_DAYS`] kept in the engine's catalog
//! (`engine::SegmentHistoryRecord`). The server takes a point when a segment is saved and
//! once a day for every saved segment; a point taken again the same day replaces that
//! day's. Only counts are kept, never members.

use engine::{day_of, Engine, Millis, SegmentHistoryRecord, StorageError, SEGMENT_HISTORY_DAYS};
use std::sync::Mutex;

/// Serializes the read-modify-write of history records (a save and the daily round may
/// record the same segment at once).
static WRITES: Mutex<()> = Mutex::new(());

/// Records `count` as the member count of `name` on the day of `now`.
pub(crate) fn record(
    engine: &Engine,
    name: &str,
    count: u64,
    now: Millis,
) -> Result<SegmentHistoryRecord, StorageError> {
    let _one = WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut history = engine
        .segment_history(name)?
        .unwrap_or_else(|| SegmentHistoryRecord {
            name: name.to_string(),
            points: Vec::new(),
        });
    add_point(&mut history.points, day_of(now), count);
    engine.put_segment_history(&history)?;
    Ok(history)
}

/// Adds (or replaces) the point of `day`, keeping the points in day order and at most
/// [`SEGMENT_HISTORY_DAYS`] of them.
fn add_point(points: &mut Vec<(i32, u64)>, day: i32, count: u64) {
    match points.binary_search_by_key(&day, |&(d, _)| d) {
        Ok(i) => points[i].1 = count,
        Err(i) => points.insert(i, (day, count)),
    }
    if points.len() > SEGMENT_HISTORY_DAYS {
        let extra = points.len() - SEGMENT_HISTORY_DAYS;
        points.drain(..extra);
    }
}

/// Whether `name` has no point for the day of `now` yet.
pub(crate) fn due(engine: &Engine, name: &str, now: Millis) -> Result<bool, StorageError> {
    let today = day_of(now);
    Ok(engine
        .segment_history(name)?
        .is_none_or(|h| h.points.last().is_none_or(|&(d, _)| d < today)))
}

/// Records today's count of every saved segment that has none yet; a segment that does
/// not evaluate (say a field it names is gone) is skipped with a warning.
pub(crate) fn record_due(segments: &query::Segments<'_>, engine: &Engine, now: Millis) {
    let saved = match segments.list() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "segment history: cannot list saved segments");
            return;
        }
    };
    for s in saved {
        match due(engine, &s.name, now) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(segment = s.name.as_str(), error = %e, "segment history: cannot read");
                continue;
            }
        }
        let recorded = segments
            .count(&format!("segment(\"{}\")", s.name))
            .map_err(|e| e.to_string())
            .and_then(|n| record(engine, &s.name, n, now).map_err(|e| e.to_string()));
        if let Err(e) = recorded {
            tracing::warn!(segment = s.name.as_str(), error = %e, "segment history: no point today");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_a_day_in_order_and_at_most_400() {
        let mut p = Vec::new();
        add_point(&mut p, 10, 5);
        add_point(&mut p, 8, 3);
        add_point(&mut p, 10, 7);
        assert_eq!(p, vec![(8, 3), (10, 7)]);
        for day in 100..600 {
            add_point(&mut p, day, day as u64);
        }
        assert_eq!(p.len(), SEGMENT_HISTORY_DAYS);
        assert_eq!(p.first(), Some(&(200, 200)));
        assert_eq!(p.last(), Some(&(599, 599)));
    }
}
