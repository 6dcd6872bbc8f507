//! Unions of day bitmaps over aligned spans of 2, 4, …, 2^LEVELS days, so "any event in
//! these whole days" is a union of at most about 2·LEVELS bitmaps instead of one per day.
//!
//! Node `(k, i)` holds the profiles with an event on a day `d` with `d >> k == i`; level 0
//! is the series' own day buckets. Derived from the days on the first windowed existence
//! query of a series and kept up to date by it from then on; not persisted.

use crate::base::time::DayNumber;
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, HashMap};

/// Levels above the days: the widest node spans 2^11 = 2,048 days (5.6 years).
const LEVELS: u32 = 11;

/// Day-span unions of one event series (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DayTree {
    /// `levels[k - 1]`: node index → profiles, for level `k` in `1..=LEVELS`.
    levels: Vec<HashMap<DayNumber, RoaringBitmap>>,
}

impl DayTree {
    /// The tree over `days` (day → profiles with an event that day).
    pub(crate) fn build<'a>(days: impl Iterator<Item = (DayNumber, &'a RoaringBitmap)>) -> Self {
        let mut below: HashMap<DayNumber, RoaringBitmap> = HashMap::new();
        for (day, members) in days {
            *below.entry(day >> 1).or_default() |= members;
        }
        let mut levels = vec![below];
        for _ in 2..=LEVELS {
            let mut next: HashMap<DayNumber, RoaringBitmap> = HashMap::new();
            for (index, members) in levels.last().expect("one level") {
                *next.entry(index >> 1).or_default() |= members;
            }
            levels.push(next);
        }
        DayTree { levels }
    }

    /// Notes an event of `pid` on `day`.
    pub(crate) fn add(&mut self, pid: u32, day: DayNumber) {
        for (k, level) in self.levels.iter_mut().enumerate() {
            if !level.entry(day >> (k + 1)).or_default().insert(pid) {
                // Already there: so is every node above it.
                break;
            }
        }
    }

    /// Notes that `pid` has no event left on `day`; `day_has` tells whether it still has
    /// one on another day (level 0, the series' buckets).
    pub(crate) fn remove(&mut self, pid: u32, day: DayNumber, day_has: impl Fn(DayNumber) -> bool) {
        for k in 1..=LEVELS {
            let index = day >> k;
            let (left, right) = (index << 1, (index << 1) | 1);
            let child_has = |child: DayNumber| {
                if k == 1 {
                    day_has(child)
                } else {
                    self.levels[k as usize - 2]
                        .get(&child)
                        .is_some_and(|b| b.contains(pid))
                }
            };
            if child_has(left) || child_has(right) {
                return;
            }
            let level = &mut self.levels[k as usize - 1];
            if let Some(node) = level.get_mut(&index) {
                node.remove(pid);
                if node.is_empty() {
                    level.remove(&index);
                }
            }
        }
    }

    /// Removes every profile of `pids`.
    pub(crate) fn remove_all(&mut self, pids: &RoaringBitmap) {
        for level in &mut self.levels {
            level.retain(|_, b| {
                *b -= pids;
                !b.is_empty()
            });
        }
    }

    /// The bitmaps whose union is "an event on a day in `[first, last]`": aligned nodes
    /// from the tree, and single days from `days`.
    pub(crate) fn cover<'a>(
        &'a self,
        days: &'a BTreeMap<DayNumber, super::events::DayBucket>,
        first: DayNumber,
        last: DayNumber,
    ) -> Vec<&'a RoaringBitmap> {
        let mut out = Vec::new();
        let (mut lo, end) = (i64::from(first), i64::from(last) + 1);
        while lo < end {
            // The widest aligned node that starts at `lo` and ends by `end`.
            let mut k = 0;
            while k < LEVELS && lo & ((1 << (k + 1)) - 1) == 0 && lo + (1 << (k + 1)) <= end {
                k += 1;
            }
            let index = (lo >> k) as DayNumber;
            let node = if k == 0 {
                days.get(&index).map(|b| &b.members)
            } else {
                self.levels[k as usize - 1].get(&index)
            };
            out.extend(node);
            lo += 1 << k;
        }
        out
    }
}
