//! The day of each profile's latest event in one series, as ordered value buckets: "any
//! event at or after `from`" (a `within` or `since` window, open at the end) is one range
//! over it, `latest day > day(from)`, plus an exact look at the day of `from` itself.
//!
//! Derived from the day buckets on the first such query and kept up to date from then
//! on; not persisted.

use super::events::DayBucket;
use super::range::RangeBuckets;
use crate::base::time::DayNumber;
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, HashMap};

type FastHash = foldhash::fast::RandomState;

/// Latest event day per profile (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatestDays {
    by_profile: HashMap<u32, DayNumber, FastHash>,
    buckets: RangeBuckets,
}

impl LatestDays {
    /// Latest days over `days`.
    pub(crate) fn build(days: &BTreeMap<DayNumber, DayBucket>) -> Self {
        let mut by_profile: HashMap<u32, DayNumber, FastHash> = HashMap::default();
        for (day, bucket) in days {
            for pid in &bucket.members {
                by_profile.insert(pid, *day);
            }
        }
        let pairs = by_profile
            .iter()
            .map(|(p, d)| (*p, i64::from(*d)))
            .collect();
        LatestDays {
            by_profile,
            buckets: RangeBuckets::build(pairs),
        }
    }

    /// Profiles (of `within`, when given) whose latest event is on a day after `day`.
    pub(crate) fn after(&self, day: DayNumber, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        let from = Some(i64::from(day) + 1);
        match within {
            Some(w) => self.buckets.between_within(from, None, w),
            None => self.buckets.between(from, None),
        }
    }

    /// Notes an event of `pid` on `day`.
    pub(crate) fn add(&mut self, pid: u32, day: DayNumber) {
        match self.by_profile.get(&pid) {
            Some(&latest) if latest >= day => {}
            Some(&latest) => {
                self.buckets.remove(pid, i64::from(latest));
                self.buckets.insert(pid, i64::from(day));
                self.by_profile.insert(pid, day);
            }
            None => {
                self.buckets.insert(pid, i64::from(day));
                self.by_profile.insert(pid, day);
            }
        }
    }

    /// Notes that `pid` has no event left on `day` (`days` already updated).
    pub(crate) fn left_day(
        &mut self,
        pid: u32,
        day: DayNumber,
        days: &BTreeMap<DayNumber, DayBucket>,
    ) {
        if self.by_profile.get(&pid) != Some(&day) {
            return; // a later day still holds its latest event
        }
        self.buckets.remove(pid, i64::from(day));
        let earlier = days
            .range(..day)
            .rev()
            .find(|(_, b)| b.members.contains(pid))
            .map(|(d, _)| *d);
        match earlier {
            Some(d) => {
                self.buckets.insert(pid, i64::from(d));
                self.by_profile.insert(pid, d);
            }
            None => {
                self.by_profile.remove(&pid);
            }
        }
    }

    /// Removes every profile of `pids`.
    pub(crate) fn remove_all(&mut self, pids: &RoaringBitmap) {
        self.by_profile.retain(|p, _| !pids.contains(*p));
        self.buckets.remove_all(pids);
    }

    /// Whether this equals what [`LatestDays::build`] makes of `days` (for `check`).
    pub(crate) fn is_exact(&self, days: &BTreeMap<DayNumber, DayBucket>) -> bool {
        let rebuilt = LatestDays::build(days);
        let pairs: Vec<(u32, i64)> = rebuilt
            .by_profile
            .iter()
            .map(|(p, d)| (*p, i64::from(*d)))
            .collect();
        self.by_profile == rebuilt.by_profile && self.buckets.holds_exactly(&pairs)
    }
}
