//! Ordered value buckets over one numeric or date field, for ranges that do not depend on
//! the number of bit slices: a range `[lo, hi]` is one difference of two cumulative
//! bitmaps (the whole buckets strictly inside it) plus an exact scan of at most the two
//! buckets holding `lo` and `hi`.
//!
//! Buckets split the ordered values into runs of about [`RangeBuckets::target`] profiles.
//! Bucket `j` holds the values in `[lows[j], lows[j + 1])`; a value held by more profiles
//! than the target gets a bucket of its own, so a bucket with more than one distinct value
//! never has to be scanned whole. `below[j]` holds the profiles whose value is below
//! `lows[j]` (`below[0]` is empty, `below[K]` is every profile with a value).
//!
//! The structure is derived from the bit-sliced index on first use and kept up to date by
//! it from then on (`Bsi::insert`, `remove`, `remove_all`); it is not persisted.

use roaring::RoaringBitmap;
use std::borrow::Cow;

/// Buckets aimed at for a field (the target size is `len / TARGET_BUCKETS`).
const TARGET_BUCKETS: usize = 128;
/// Smallest target bucket size: below this, scanning a bucket costs less than the
/// bitmaps of more buckets.
const MIN_BUCKET: usize = 1024;

/// The profiles of one bucket with their values, ordered by profile. A bucket whose
/// members all hold one value keeps only the bitmap and that value (`uniform`): the
/// bucket of a value many profiles share (today's latest event day, a default score) can
/// hold most of a field, and a sorted column of it would make every insert a large move.
#[derive(Debug, Clone, Default)]
struct Bucket {
    members: RoaringBitmap,
    /// Every member's value when they share one; `pids` and `values` are then empty.
    uniform: Option<i64>,
    pids: Vec<u32>,
    values: Vec<i64>,
}

impl PartialEq for Bucket {
    /// The same profiles with the same values, whichever the representation.
    fn eq(&self, other: &Bucket) -> bool {
        self.members == other.members && self.pairs().eq(other.pairs())
    }
}

impl Bucket {
    fn from_pairs(mut pairs: Vec<(u32, i64)>) -> Bucket {
        pairs.sort_unstable_by_key(|&(pid, _)| pid);
        let members =
            RoaringBitmap::from_sorted_iter(pairs.iter().map(|&(p, _)| p)).expect("sorted");
        let mut bucket = Bucket {
            members,
            uniform: None,
            pids: pairs.iter().map(|&(p, _)| p).collect(),
            values: pairs.iter().map(|&(_, v)| v).collect(),
        };
        bucket.compact_if_uniform();
        bucket
    }

    /// Drops the columns when every member holds one value.
    fn compact_if_uniform(&mut self) {
        if let Some(&first) = self.values.first() {
            if self.values.iter().all(|&v| v == first) {
                self.uniform = Some(first);
                self.pids = Vec::new();
                self.values = Vec::new();
            }
        }
    }

    /// The members with their values, ordered by profile.
    fn pairs(&self) -> Box<dyn Iterator<Item = (u32, i64)> + '_> {
        match self.uniform {
            Some(v) => Box::new(self.members.iter().map(move |p| (p, v))),
            None => Box::new(self.pids.iter().copied().zip(self.values.iter().copied())),
        }
    }

    fn insert(&mut self, pid: u32, value: i64) {
        match self.uniform {
            Some(v) if v == value => {
                self.members.insert(pid);
                return;
            }
            Some(v) => {
                // A second value: back to columns.
                self.pids = self.members.iter().collect();
                self.values = vec![v; self.pids.len()];
                self.uniform = None;
            }
            None => {}
        }
        let at = self.pids.partition_point(|&p| p < pid);
        self.pids.insert(at, pid);
        self.values.insert(at, value);
        self.members.insert(pid);
    }

    fn remove(&mut self, pid: u32) {
        if self.uniform.is_some() {
            self.members.remove(pid);
        } else if let Ok(at) = self.pids.binary_search(&pid) {
            self.pids.remove(at);
            self.values.remove(at);
            self.members.remove(pid);
        }
        if self.members.is_empty() {
            self.uniform = None;
        }
    }

    fn remove_all(&mut self, gone: &RoaringBitmap) {
        if self.members.is_disjoint(gone) {
            return;
        }
        self.members -= gone;
        if self.uniform.is_some() {
            if self.members.is_empty() {
                self.uniform = None;
            }
            return;
        }
        let mut keep = 0;
        for i in 0..self.pids.len() {
            if !gone.contains(self.pids[i]) {
                self.pids[keep] = self.pids[i];
                self.values[keep] = self.values[i];
                keep += 1;
            }
        }
        self.pids.truncate(keep);
        self.values.truncate(keep);
    }

    /// Profiles of the bucket with `lo <= value <= hi`, in one pass over its columns.
    fn scan(&self, lo: i64, hi: i64) -> RoaringBitmap {
        if let Some(v) = self.uniform {
            return if lo <= v && v <= hi {
                self.members.clone()
            } else {
                RoaringBitmap::new()
            };
        }
        let hits = self
            .pids
            .iter()
            .zip(&self.values)
            .filter(|&(_, &v)| lo <= v && v <= hi)
            .map(|(&p, _)| p);
        RoaringBitmap::from_sorted_iter(hits).expect("pids are sorted")
    }

    fn len(&self) -> usize {
        self.members.len() as usize
    }
}

/// A range as stored bitmaps: all of one bucket's part, or everything up to `hi` (`upto`
/// plus the `upper` part of `hi`'s bucket) minus everything below `lo` (`below` plus the
/// `lower` part of `lo`'s bucket). Each later piece is a subset of `upto ∪ upper`.
enum Pieces<'a> {
    Empty,
    One(Cow<'a, RoaringBitmap>),
    Span {
        upto: &'a RoaringBitmap,
        upper: Option<RoaringBitmap>,
        below: &'a RoaringBitmap,
        lower: Option<RoaringBitmap>,
    },
}

impl Pieces<'_> {
    /// The range's profiles (those of `within`, when given). In place, so a dense
    /// cumulative bitmap is copied (or intersected) once and stays dense until the last step.
    fn assemble(self, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        let restrict = |b: &RoaringBitmap| within.map_or_else(|| b.clone(), |w| w & b);
        match self {
            Pieces::Empty => RoaringBitmap::new(),
            Pieces::One(part) => match within {
                Some(w) => w & part.as_ref(),
                None => part.into_owned(),
            },
            Pieces::Span {
                upto,
                upper,
                below,
                lower,
            } => {
                let mut out = restrict(upto);
                if let Some(upper) = upper {
                    match within {
                        Some(w) => out |= upper & w,
                        None => out |= upper,
                    }
                }
                out -= below;
                if let Some(lower) = lower {
                    out -= lower;
                }
                out
            }
        }
    }
}

/// Ordered value buckets of one field (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RangeBuckets {
    /// Lowest value of each bucket; `lows[0]` is `i64::MIN`.
    lows: Vec<i64>,
    buckets: Vec<Bucket>,
    /// `below[j]`: profiles whose value is below `lows[j]`; one more entry than buckets.
    below: Vec<RoaringBitmap>,
    /// Bucket size aimed at; a bucket of several values splits at twice this.
    target: usize,
}

impl RangeBuckets {
    /// Buckets over `(profile, value)` pairs, each profile at most once.
    pub(crate) fn build(pairs: Vec<(u32, i64)>) -> RangeBuckets {
        let target = (pairs.len() / TARGET_BUCKETS).max(MIN_BUCKET);
        RangeBuckets::with_target(pairs, target)
    }

    /// Buckets of about `target` profiles each.
    fn with_target(mut pairs: Vec<(u32, i64)>, target: usize) -> RangeBuckets {
        pairs.sort_unstable_by_key(|&(pid, v)| (v, pid));
        let mut lows = vec![i64::MIN];
        let mut buckets = Vec::new();
        let mut current: Vec<(u32, i64)> = Vec::new();
        let mut run_start = 0;
        while run_start < pairs.len() {
            let value = pairs[run_start].1;
            let run_end = run_start + pairs[run_start..].partition_point(|&(_, v)| v == value);
            if !current.is_empty() && current.len() + (run_end - run_start) > target {
                buckets.push(Bucket::from_pairs(std::mem::take(&mut current)));
                lows.push(value);
            }
            current.extend_from_slice(&pairs[run_start..run_end]);
            run_start = run_end;
        }
        buckets.push(Bucket::from_pairs(current));
        let mut below = Vec::with_capacity(buckets.len() + 1);
        below.push(RoaringBitmap::new());
        for bucket in &buckets {
            let next = below.last().expect("one pushed") | &bucket.members;
            below.push(next);
        }
        RangeBuckets {
            lows,
            buckets,
            below,
            target,
        }
    }

    /// The bucket holding `value`.
    fn bucket_of(&self, value: i64) -> usize {
        self.lows.partition_point(|&low| low <= value) - 1
    }

    /// Highest value bucket `j` can hold.
    fn high_of(&self, j: usize) -> i64 {
        self.lows.get(j + 1).map_or(i64::MAX, |next| next - 1)
    }

    /// `[lo, hi]` (`None`: unbounded) in terms of stored bitmaps and at most two scans.
    fn pieces(&self, lo: Option<i64>, hi: Option<i64>) -> Pieces<'_> {
        let (lo, hi) = (lo.unwrap_or(i64::MIN), hi.unwrap_or(i64::MAX));
        if lo > hi {
            return Pieces::Empty;
        }
        let (jl, jh) = (self.bucket_of(lo), self.bucket_of(hi));
        if jl == jh {
            return Pieces::One(self.part(jl, lo, hi));
        }
        let (upto, upper) = if self.high_of(jh) <= hi {
            (&self.below[jh + 1], None)
        } else {
            let upper = self.buckets[jh].scan(self.lows[jh], hi);
            (&self.below[jh], Some(upper))
        };
        let lower = (self.lows[jl] < lo).then(|| self.buckets[jl].scan(self.lows[jl], lo - 1));
        Pieces::Span {
            upto,
            upper,
            below: &self.below[jl],
            lower,
        }
    }

    /// Profiles with `lo <= value <= hi` (`None`: unbounded).
    pub(crate) fn between(&self, lo: Option<i64>, hi: Option<i64>) -> RoaringBitmap {
        self.pieces(lo, hi).assemble(None)
    }

    /// Profiles of `within` with `lo <= value <= hi`: every step restricted to `within`,
    /// so each is as small as it is.
    pub(crate) fn between_within(
        &self,
        lo: Option<i64>,
        hi: Option<i64>,
        within: &RoaringBitmap,
    ) -> RoaringBitmap {
        self.pieces(lo, hi).assemble(Some(within))
    }

    /// How many profiles of `within` (all when `None`) have `lo <= value <= hi`, counted
    /// without building the set.
    pub(crate) fn count(
        &self,
        lo: Option<i64>,
        hi: Option<i64>,
        within: Option<&RoaringBitmap>,
    ) -> u64 {
        let len = |b: &RoaringBitmap| within.map_or_else(|| b.len(), |w| w.intersection_len(b));
        match self.pieces(lo, hi) {
            Pieces::Empty => 0,
            Pieces::One(part) => len(&part),
            Pieces::Span {
                upto,
                upper,
                below,
                lower,
            } => {
                len(upto) + upper.as_ref().map_or(0, len)
                    - len(below)
                    - lower.as_ref().map_or(0, len)
            }
        }
    }

    /// Profiles of bucket `j` with `lo <= value <= hi`: the whole bucket when the range
    /// covers every value it can hold, else a scan.
    fn part(&self, j: usize, lo: i64, hi: i64) -> Cow<'_, RoaringBitmap> {
        let bucket = &self.buckets[j];
        if lo <= self.lows[j] && self.high_of(j) <= hi {
            Cow::Borrowed(&bucket.members)
        } else {
            Cow::Owned(bucket.scan(lo, hi))
        }
    }

    /// Adds `pid` (not yet present) with `value`.
    pub(crate) fn insert(&mut self, pid: u32, value: i64) {
        let j = self.bucket_of(value);
        self.buckets[j].insert(pid, value);
        for below in &mut self.below[j + 1..] {
            below.insert(pid);
        }
        if self.buckets[j].len() > 2 * self.target {
            self.split(j);
        }
    }

    /// Removes `pid`, whose value is `value`.
    pub(crate) fn remove(&mut self, pid: u32, value: i64) {
        let j = self.bucket_of(value);
        self.buckets[j].remove(pid);
        for below in &mut self.below[j + 1..] {
            below.remove(pid);
        }
    }

    /// Removes every profile of `gone`.
    pub(crate) fn remove_all(&mut self, gone: &RoaringBitmap) {
        for bucket in &mut self.buckets {
            bucket.remove_all(gone);
        }
        for below in &mut self.below {
            *below -= gone;
        }
    }

    /// Splits bucket `j` at its median value, when it holds more than one value (a bucket
    /// found to hold one value becomes uniform, so it is not sorted again at each insert).
    fn split(&mut self, j: usize) {
        let bucket = &mut self.buckets[j];
        if bucket.uniform.is_some() {
            return;
        }
        let mut sorted = bucket.values.clone();
        sorted.sort_unstable();
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        if min == max {
            bucket.compact_if_uniform();
            return;
        }
        let median = sorted[sorted.len() / 2];
        // The lowest value of the upper half: the median, unless it is the minimum (then
        // the next value up, so the lower half is the minimum's run alone).
        let cut = if median > min {
            median
        } else {
            sorted[sorted.partition_point(|&v| v <= min)]
        };
        let (lower, upper): (Vec<_>, Vec<_>) = bucket.pairs().partition(|&(_, value)| value < cut);
        let lower = Bucket::from_pairs(lower);
        let below_cut = &self.below[j] | &lower.members;
        self.buckets[j] = lower;
        self.buckets.insert(j + 1, Bucket::from_pairs(upper));
        self.lows.insert(j + 1, cut);
        self.below.insert(j + 1, below_cut);
    }

    /// Whether every bucket and cumulative bitmap agrees with `pairs` (for `check`).
    pub(crate) fn holds_exactly(&self, pairs: &[(u32, i64)]) -> bool {
        let mut expected: Vec<Vec<(u32, i64)>> = vec![Vec::new(); self.buckets.len()];
        for &(pid, value) in pairs {
            expected[self.bucket_of(value)].push((pid, value));
        }
        let mut below = RoaringBitmap::new();
        for (j, pairs) in expected.into_iter().enumerate() {
            if self.below[j] != below || self.buckets[j] != Bucket::from_pairs(pairs) {
                return false;
            }
            below |= &self.buckets[j].members;
        }
        self.below[self.buckets.len()] == below
    }

    /// Number of buckets.
    #[cfg(test)]
    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(model: &std::collections::BTreeMap<u32, i64>, lo: i64, hi: i64) -> RoaringBitmap {
        model
            .iter()
            .filter(|(_, v)| lo <= **v && **v <= hi)
            .map(|(p, _)| *p)
            .collect()
    }

    proptest! {
        /// Ranges after a build and any sequence of inserts, removals and bulk removals
        /// equal a scan; small targets force splits and single-value buckets.
        #[test]
        fn ranges_match_a_scan_through_updates(
            initial in proptest::collection::vec((0u32..3000, -50i64..50), 0..3000),
            target in 1usize..200,
            ops in proptest::collection::vec((0u8..3, 0u32..3000, -60i64..60), 0..400),
            queries in proptest::collection::vec((-70i64..70, -70i64..70), 1..20),
        ) {
            let mut model = std::collections::BTreeMap::new();
            for (pid, v) in initial {
                model.insert(pid, v);
            }
            let mut buckets =
                RangeBuckets::with_target(model.iter().map(|(p, v)| (*p, *v)).collect(), target);
            for (op, pid, v) in ops {
                match op {
                    0 => {
                        if let Some(old) = model.insert(pid, v) {
                            buckets.remove(pid, old);
                        }
                        buckets.insert(pid, v);
                    }
                    1 => {
                        if let Some(old) = model.remove(&pid) {
                            buckets.remove(pid, old);
                        }
                    }
                    _ => {
                        let gone: RoaringBitmap = (pid..pid + 40).collect();
                        model.retain(|p, _| !gone.contains(*p));
                        buckets.remove_all(&gone);
                    }
                }
            }
            let pairs: Vec<(u32, i64)> = model.iter().map(|(p, v)| (*p, *v)).collect();
            prop_assert!(buckets.holds_exactly(&pairs));
            for (lo, hi) in queries {
                prop_assert_eq!(buckets.between(Some(lo), Some(hi)), naive(&model, lo, hi));
                prop_assert_eq!(buckets.between(Some(lo), None), naive(&model, lo, i64::MAX));
                prop_assert_eq!(buckets.between(None, Some(hi)), naive(&model, i64::MIN, hi));
            }
            prop_assert_eq!(buckets.between(None, None), naive(&model, i64::MIN, i64::MAX));
            let within: RoaringBitmap = (0..3000).filter(|p| p % 7 != 3).collect();
            for (lo, hi) in [(-10, 10), (-70, 0), (5, 5), (20, -20)] {
                let expected = naive(&model, lo, hi);
                prop_assert_eq!(buckets.count(Some(lo), Some(hi), None), expected.len());
                prop_assert_eq!(
                    buckets.count(Some(lo), Some(hi), Some(&within)),
                    expected.intersection_len(&within)
                );
                prop_assert_eq!(
                    buckets.between_within(Some(lo), Some(hi), &within),
                    &expected & &within
                );
            }
        }
    }

    #[test]
    fn holds_exactly_notices_a_stale_entry() {
        let pairs: Vec<(u32, i64)> = (0..3000).map(|p| (p, i64::from(p % 50))).collect();
        let mut b = RangeBuckets::with_target(pairs.clone(), 100);
        assert!(b.holds_exactly(&pairs));
        b.insert(5000, 7);
        assert!(!b.holds_exactly(&pairs), "an extra profile");
        b.remove(5000, 7);
        assert!(b.holds_exactly(&pairs));
        b.remove(10, 10);
        assert!(!b.holds_exactly(&pairs), "a missing profile");
    }

    #[test]
    fn a_bucket_of_one_value_keeps_no_columns_until_a_second_value_arrives() {
        let pairs: Vec<(u32, i64)> = (0..4000).map(|p| (p, i64::from(p % 40))).collect();
        let mut b = RangeBuckets::with_target(pairs.clone(), 100);
        let mut model: std::collections::BTreeMap<u32, i64> = pairs.into_iter().collect();
        // Everyone new lands on one value above all others, as today's latest event day does.
        for p in 4000..9000 {
            b.insert(p, 1000);
            model.insert(p, 1000);
        }
        let last = b.buckets.last().expect("a bucket");
        assert_eq!(last.uniform, Some(1000), "the grown bucket holds one value");
        assert!(last.pids.is_empty() && last.values.is_empty());
        b.insert(9000, 1001);
        model.insert(9000, 1001);
        b.remove(4500, 1000);
        model.remove(&4500);
        let pairs: Vec<(u32, i64)> = model.iter().map(|(p, v)| (*p, *v)).collect();
        assert!(b.holds_exactly(&pairs));
        assert_eq!(b.between(Some(1000), Some(1000)).len(), 4999);
        assert_eq!(b.between(Some(1001), None).len(), 1);
        assert_eq!(b.between(Some(39), Some(1000)).len(), 100 + 4999);
    }

    #[test]
    fn a_heavy_value_gets_its_own_bucket_and_buckets_split_as_they_grow() {
        let mut pairs: Vec<(u32, i64)> = (0..5000).map(|p| (p, 0)).collect();
        pairs.extend((5000..6000).map(|p| (p, i64::from(p))));
        let mut b = RangeBuckets::build(pairs);
        assert_eq!(b.between(Some(0), Some(0)).len(), 5000);
        assert_eq!(b.between(Some(1), Some(5999)).len(), 1000);
        let before = b.bucket_count();
        for p in 6000..9000 {
            b.insert(p, 7000 + i64::from(p % 97));
        }
        assert!(b.bucket_count() > before, "the grown bucket split");
        assert_eq!(
            b.between(Some(7000), Some(7010)).len(),
            (6000..9000u32).filter(|p| p % 97 <= 10).count() as u64
        );
        assert_eq!(b.between(Some(i64::MIN), Some(i64::MAX)).len(), 9000);
    }
}
