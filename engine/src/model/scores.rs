//! A model's scores as an index: one bitmap per percentile (0-100). `score("m") >= 95` is
//! the union of a few small bitmaps (or the live profiles minus the union of the rest,
//! whichever side is smaller), so it costs about as much as a term lookup.

use crate::model::scorecard::MAX_PERCENTILE;
use roaring::{MultiOps, RoaringBitmap};

/// The profiles at each percentile.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreIndex {
    groups: Vec<RoaringBitmap>,
    scored: RoaringBitmap,
}

impl Default for ScoreIndex {
    fn default() -> Self {
        ScoreIndex {
            groups: vec![RoaringBitmap::new(); MAX_PERCENTILE as usize + 1],
            scored: RoaringBitmap::new(),
        }
    }
}

impl ScoreIndex {
    /// An index from the profiles at each percentile (`groups[p]`, disjoint).
    pub(crate) fn from_groups(groups: Vec<RoaringBitmap>) -> ScoreIndex {
        debug_assert_eq!(groups.len(), MAX_PERCENTILE as usize + 1);
        let scored = groups.iter().union();
        ScoreIndex { groups, scored }
    }

    /// Every profile with a score.
    pub fn scored(&self) -> &RoaringBitmap {
        &self.scored
    }

    /// The percentile of `pid`, if it has one.
    pub fn get(&self, pid: u32) -> Option<i64> {
        if !self.scored.contains(pid) {
            return None;
        }
        self.groups
            .iter()
            .position(|g| g.contains(pid))
            .map(|p| p as i64)
    }

    /// Sets the percentile of `pid` (0-100).
    pub(crate) fn set(&mut self, pid: u32, percentile: i64) {
        self.remove(pid);
        let p = percentile.clamp(0, MAX_PERCENTILE) as usize;
        self.groups[p].insert(pid);
        self.scored.insert(pid);
    }

    /// Clears the score of `pid`.
    pub(crate) fn remove(&mut self, pid: u32) {
        if self.scored.remove(pid) {
            for g in &mut self.groups {
                if g.remove(pid) {
                    break;
                }
            }
        }
    }

    /// How many profiles have a percentile in `[low, high]`.
    pub fn count_between(&self, low: i64, high: i64) -> u64 {
        let (low, high) = (low.max(0), high.min(MAX_PERCENTILE));
        if low > high {
            return 0;
        }
        self.groups[low as usize..=high as usize]
            .iter()
            .map(|g| g.len())
            .sum()
    }

    /// The members of `within` whose percentile is in `[low, high]`: one small
    /// intersection per percentile, for an AND whose intermediate result is small.
    pub fn between_within(&self, low: i64, high: i64, within: &RoaringBitmap) -> RoaringBitmap {
        let (low, high) = (low.max(0), high.min(MAX_PERCENTILE));
        if low > high {
            return RoaringBitmap::new();
        }
        self.groups[low as usize..=high as usize]
            .iter()
            .map(|g| g & within)
            .union()
    }

    /// Profiles whose percentile is in `[low, high]` (clamped to 0-100).
    pub fn between(&self, low: i64, high: i64) -> RoaringBitmap {
        let (low, high) = (low.max(0), high.min(MAX_PERCENTILE));
        if low > high {
            return RoaringBitmap::new();
        }
        let (low, high) = (low as usize, high as usize);
        let inside: u64 = self.groups[low..=high].iter().map(|g| g.len()).sum();
        if inside * 2 <= self.scored.len() {
            self.groups[low..=high].iter().union()
        } else {
            let outside = self.groups[..low]
                .iter()
                .chain(&self.groups[high + 1..])
                .union();
            &self.scored - outside
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_a_scan_from_either_side() {
        let mut ix = ScoreIndex::default();
        let value = |pid: u32| i64::from(pid.wrapping_mul(2_654_435_761) % 101);
        for pid in 0..10_000u32 {
            ix.set(pid, value(pid));
        }
        ix.set(3, 100);
        ix.remove(4);
        for (lo, hi) in [
            (95, 100),
            (0, 100),
            (10, 100),
            (0, 5),
            (50, 50),
            (60, 40),
            (-5, 200),
        ] {
            let expected: RoaringBitmap = (0..10_000u32)
                .filter(|p| *p != 4)
                .filter(|p| {
                    let v = if *p == 3 { 100 } else { value(*p) };
                    v >= lo && v <= hi
                })
                .collect();
            assert_eq!(ix.between(lo, hi), expected, "{lo}..={hi}");
        }
        let within: RoaringBitmap = (0..10_000u32).step_by(7).collect();
        assert_eq!(
            ix.between_within(90, 100, &within),
            ix.between(90, 100) & &within
        );
        assert_eq!(ix.count_between(90, 100), ix.between(90, 100).len());
        assert_eq!(ix.get(3), Some(100));
        assert_eq!(ix.get(4), None);
    }
}
