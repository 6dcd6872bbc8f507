//! Indexed event aggregates: per profile, the count and the sum (at the engine's number
//! precision, as an exact integer) of one series' events over a run of whole days, with
//! two "ladders" that answer a threshold on either with a few bitmap operations.
//!
//! A ladder keeps, for fixed bounds `b_0 < b_1 < …`, the bitmap of profiles whose value is
//! at least `b_i`, and the profiles between two bounds sorted by value. `value >= x` is
//! the bitmap of the first bound above `x` plus the exact part of the one bucket that `x`
//! falls into. Counts use the bounds `1..=32` (a count threshold up to 32 is one bitmap);
//! sums use quantiles of the values at build time (the exact part is about 1/64 of the
//! profiles).
//!
//! [`Windows`] caches such aggregates per series and shape of time range (all time, a
//! `since`, a `within N days`), derived from the day buckets on first use and slid day by
//! day when the evaluation time moves; a window's two partial boundary days are corrected
//! exactly from their entries at every evaluation. Writers keep the cached aggregates up
//! to date (`apply`, `remove_profiles`). Nothing here is stored.

use super::bsi::Cmp;
use super::events::{DayBucket, TimeRange};
use super::postings::{scale_number, NUMBER_SCALE};
use crate::base::time::{day_of, DayNumber, Millis, MS_PER_DAY};
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, BTreeSet, HashMap};

type FastHash = foldhash::fast::RandomState;

/// A filter on the count or the sum of a profile's events in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFilter {
    /// Number of events.
    Count(Cmp, u64),
    /// Sum of their values, at [`NUMBER_SCALE`].
    Sum(Cmp, i64),
}

/// Count bounds of the count ladder.
const COUNT_LEVELS: i64 = 32;
/// Buckets of the sum ladder.
const SUM_BUCKETS: usize = 64;
/// A sum bucket may grow to this size (or 4 times its share) before a rebalance (small in
/// tests, so that they rebalance).
const MIN_SHARE: usize = if cfg!(test) { 4 } else { 4096 };
/// Aggregates kept per series.
const WINDOWS_PER_SERIES: usize = 8;
/// Aggregates of one shape kept per series (`within 90d`, `within 730d` and a `since`
/// all have the shape of a range open above).
const SAME_SHAPE: usize = 4;

/// A value that is an exact multiple of `1 / NUMBER_SCALE` (within float noise) and small
/// enough for sums of it to stay exact: its scaled sum is then what `scale_number` of the
/// float sum gives.
fn on_grid(v: f64) -> bool {
    let x = v * NUMBER_SCALE;
    x.is_finite() && x.abs() < 1e15 && (x - x.round()).abs() <= 1e-6 * x.abs().max(1.0)
}

/// Profiles by value with threshold bitmaps (see the module documentation).
#[derive(Debug, Clone, Default)]
struct Ladder {
    bounds: Vec<i64>,
    /// `ge[i]`: profiles with value >= `bounds[i]`.
    ge: Vec<RoaringBitmap>,
    /// `buckets[0]`: values below `bounds[0]`; `buckets[i + 1]`: values in
    /// `[bounds[i], bounds[i + 1])`; `None` for a bucket of one value (a threshold never
    /// needs its exact part).
    buckets: Vec<Option<BTreeSet<(i64, u32)>>>,
    members: RoaringBitmap,
}

impl Ladder {
    fn build(bounds: Vec<i64>, values: &[(i64, u32)]) -> Ladder {
        let mut lists = vec![Vec::new(); bounds.len() + 1];
        for &(v, p) in values {
            lists[bounds.partition_point(|b| *b <= v)].push((v, p));
        }
        let mut ge = vec![RoaringBitmap::new(); bounds.len()];
        let mut acc = RoaringBitmap::new();
        for (i, list) in lists.iter().enumerate().rev() {
            let mut pids: Vec<u32> = list.iter().map(|(_, p)| *p).collect();
            pids.sort_unstable();
            acc |= RoaringBitmap::from_sorted_iter(pids).expect("sorted");
            if i > 0 {
                ge[i - 1] = acc.clone();
            }
        }
        let single =
            |k: usize| k > 0 && k < bounds.len() && bounds[k - 1].checked_add(1) == Some(bounds[k]);
        let buckets = lists
            .into_iter()
            .enumerate()
            .map(|(k, list)| (!single(k)).then(|| list.into_iter().collect()))
            .collect();
        Ladder {
            bounds,
            ge,
            buckets,
            members: acc,
        }
    }

    fn bucket_of(&self, v: i64) -> usize {
        self.bounds.partition_point(|b| *b <= v)
    }

    fn set(&mut self, pid: u32, old: Option<i64>, new: Option<i64>) {
        if old == new {
            return;
        }
        if let Some(v) = old {
            let k = self.bucket_of(v);
            if let Some(b) = &mut self.buckets[k] {
                b.remove(&(v, pid));
            }
            // ge[i] holds values >= bounds[i], i.e. buckets i+1..: bucket k is in ge[..k].
            for g in &mut self.ge[..k] {
                g.remove(pid);
            }
            self.members.remove(pid);
        }
        if let Some(v) = new {
            let k = self.bucket_of(v);
            if let Some(b) = &mut self.buckets[k] {
                b.insert((v, pid));
            }
            for g in &mut self.ge[..k] {
                g.insert(pid);
            }
            self.members.insert(pid);
        }
    }

    fn remove_all(&mut self, pids: &RoaringBitmap) {
        self.members -= pids;
        for g in &mut self.ge {
            *g -= pids;
        }
        for b in self.buckets.iter_mut().flatten() {
            b.retain(|(_, p)| !pids.contains(*p));
        }
    }

    /// Profiles with value >= `x`.
    fn at_least(&self, x: i64) -> RoaringBitmap {
        let k = self.bucket_of(x);
        if k > 0 && self.bounds[k - 1] == x {
            return self.ge[k - 1].clone();
        }
        let bucket = self.buckets[k]
            .as_ref()
            .expect("a bucket of one value starts at its bound");
        let mut pids: Vec<u32> = bucket.range((x, 0)..).map(|(_, p)| *p).collect();
        pids.sort_unstable();
        let exact = RoaringBitmap::from_sorted_iter(pids).expect("sorted");
        match self.ge.get(k) {
            Some(above) => above | exact,
            None => exact,
        }
    }

    fn compare(&self, op: Cmp, x: i64) -> RoaringBitmap {
        let gt = |x: i64| match x.checked_add(1) {
            Some(x) => self.at_least(x),
            None => RoaringBitmap::new(),
        };
        match op {
            Cmp::Ge => self.at_least(x),
            Cmp::Gt => gt(x),
            Cmp::Lt => &self.members - &self.at_least(x),
            Cmp::Le => &self.members - &gt(x),
            Cmp::Eq => self.at_least(x) - gt(x),
            Cmp::Ne => &self.members - &(self.at_least(x) - gt(x)),
        }
    }

    /// Inconsistencies between the ladder and `values`: a ladder is a function of its
    /// bounds and the values, so it must equal the one built from them.
    fn problems(&self, values: &HashMap<u32, i64, FastHash>) -> Vec<String> {
        let pairs: Vec<(i64, u32)> = values.iter().map(|(p, v)| (*v, *p)).collect();
        let fresh = Ladder::build(self.bounds.clone(), &pairs);
        let mut out = Vec::new();
        if fresh.members != self.members {
            out.push("members differ".into());
        }
        for (i, (a, b)) in self.ge.iter().zip(&fresh.ge).enumerate() {
            if a != b {
                out.push(format!("threshold {} differs", self.bounds[i]));
            }
        }
        for (k, (a, b)) in self.buckets.iter().zip(&fresh.buckets).enumerate() {
            if a != b {
                out.push(format!("bucket {k} differs"));
            }
        }
        out
    }
}

/// Count and scaled sum per profile over whole days `[lo, hi]`, with their ladders.
#[derive(Debug, Clone)]
struct Agg {
    lo: DayNumber,
    hi: DayNumber,
    totals: HashMap<u32, (u32, i64), FastHash>,
    counts: Ladder,
    /// Built on the first sum filter (a count needs only the count ladder).
    sums: Option<Ladder>,
    /// An off-grid value was added: sums may be inexact, a sum filter falls back.
    off_grid: bool,
    used: u64,
}

impl Agg {
    /// `profiles`: about how many profiles to expect (sizes the map once).
    fn build(
        days: &BTreeMap<DayNumber, DayBucket>,
        lo: DayNumber,
        hi: DayNumber,
        profiles: usize,
    ) -> Agg {
        let mut totals: HashMap<u32, (u32, i64), FastHash> =
            HashMap::with_capacity_and_hasher(profiles, FastHash::default());
        let mut off_grid = false;
        if lo <= hi {
            for bucket in days.range(lo..=hi).map(|(_, b)| b) {
                for e in bucket.entries() {
                    off_grid |= !on_grid(e.value);
                    let t = totals.entry(e.pid).or_default();
                    t.0 += 1;
                    t.1 += scale_number(e.value);
                }
            }
        }
        let counts: Vec<(i64, u32)> = totals.iter().map(|(p, t)| (i64::from(t.0), *p)).collect();
        Agg {
            lo,
            hi,
            counts: Ladder::build((1..=COUNT_LEVELS).collect(), &counts),
            sums: None,
            totals,
            off_grid,
            used: 0,
        }
    }

    /// Rebuilds the sum ladder when one of its buckets has grown far beyond its share
    /// (the values drifted away from the quantiles it was built on, e.g. after a slide to
    /// a much longer window), so that the exact part of a threshold stays small.
    fn rebalance(&mut self) {
        let share = (4 * self.totals.len() / SUM_BUCKETS).max(MIN_SHARE);
        let stale = self
            .sums
            .as_ref()
            .is_none_or(|s| s.buckets.iter().flatten().any(|b| b.len() > share));
        if stale {
            self.sums = Some(sum_ladder(&self.totals));
        }
    }

    fn covers(&self, day: DayNumber) -> bool {
        self.lo <= day && day <= self.hi
    }

    fn apply(&mut self, pid: u32, dcount: i64, value: f64) {
        self.off_grid |= !on_grid(value);
        let dsum = scale_number(value) * dcount.signum();
        let old = self.totals.get(&pid).copied();
        let (c0, s0) = old.map_or((0, 0), |(c, s)| (i64::from(c), s));
        let (c1, s1) = (c0 + dcount, s0 + dsum);
        if c1 <= 0 {
            self.totals.remove(&pid);
            self.counts.set(pid, old.map(|_| c0), None);
            if let Some(sums) = &mut self.sums {
                sums.set(pid, old.map(|_| s0), None);
            }
        } else {
            self.totals.insert(pid, (c1 as u32, s1));
            self.counts.set(pid, old.map(|_| c0), Some(c1));
            if let Some(sums) = &mut self.sums {
                sums.set(pid, old.map(|_| s0), Some(s1));
            }
        }
    }

    fn remove_profiles(&mut self, pids: &RoaringBitmap) {
        if self.counts.members.is_disjoint(pids) {
            return;
        }
        self.totals.retain(|p, _| !pids.contains(*p));
        self.counts.remove_all(pids);
        if let Some(sums) = &mut self.sums {
            sums.remove_all(pids);
        }
    }

    /// Moves the aggregate to whole days `[lo, hi]` by the days that leave and enter it.
    fn slide(&mut self, days: &BTreeMap<DayNumber, DayBucket>, lo: DayNumber, hi: DayNumber) {
        let (old_lo, old_hi) = (self.lo, self.hi);
        for (from, to, sign) in diff(old_lo, old_hi, lo, hi) {
            for bucket in days.range(from..=to).map(|(_, b)| b) {
                for e in bucket.entries() {
                    self.apply(e.pid, sign, e.value);
                }
            }
        }
        self.lo = lo;
        self.hi = hi;
    }

    /// Profiles with a count above 0 in the aggregate passing every filter, or `None` when
    /// a sum filter cannot be answered exactly.
    fn select(&mut self, filters: &[AggFilter]) -> Option<RoaringBitmap> {
        if filters.iter().any(|f| matches!(f, AggFilter::Sum(..))) {
            self.rebalance();
        }
        let mut out: Option<RoaringBitmap> = None;
        for f in filters {
            let bits = match *f {
                AggFilter::Count(op, n) => self
                    .counts
                    .compare(op, i64::try_from(n).unwrap_or(i64::MAX)),
                AggFilter::Sum(_, _) if self.off_grid => return None,
                AggFilter::Sum(op, x) => self.sums.as_ref().expect("rebalanced").compare(op, x),
            };
            out = Some(match out {
                None => bits,
                Some(acc) => acc & bits,
            });
            if out.as_ref().is_some_and(|o| o.is_empty()) {
                break;
            }
        }
        Some(out.unwrap_or_else(|| self.counts.members.clone()))
    }

    fn problems(&self, days: &BTreeMap<DayNumber, DayBucket>) -> Vec<String> {
        let fresh = Agg::build(days, self.lo, self.hi, self.totals.len());
        let mut out = Vec::new();
        if fresh.totals != self.totals {
            out.push("totals differ from a rebuild".into());
        }
        let counts = self
            .totals
            .iter()
            .map(|(p, t)| (*p, i64::from(t.0)))
            .collect();
        let sums = self.totals.iter().map(|(p, t)| (*p, t.1)).collect();
        out.extend(
            self.counts
                .problems(&counts)
                .into_iter()
                .map(|p| format!("count {p}")),
        );
        out.extend(
            self.sums
                .iter()
                .flat_map(|s| s.problems(&sums))
                .map(|p| format!("sum {p}")),
        );
        out
    }
}

/// A sum ladder with bounds at the quantiles of the sums; a value held by many profiles
/// gets a bucket of its own (`[v, v + 1)`: never read for its exact part), so no bucket
/// starts with more than about 1/[`SUM_BUCKETS`] of the profiles.
fn sum_ladder(totals: &HashMap<u32, (u32, i64), FastHash>) -> Ladder {
    let mut sums: Vec<(i64, u32)> = totals.iter().map(|(p, t)| (t.1, *p)).collect();
    sums.sort_unstable();
    let heavy = sums.len() / (2 * SUM_BUCKETS);
    let mut bounds = Vec::new();
    for i in 1..SUM_BUCKETS {
        let Some(&(q, _)) = sums.get(i * sums.len() / SUM_BUCKETS) else {
            break;
        };
        bounds.push(q);
        let ties = sums.partition_point(|(v, _)| *v <= q) - sums.partition_point(|(v, _)| *v < q);
        if ties > heavy {
            if let Some(next) = q.checked_add(1) {
                bounds.push(next);
            }
        }
    }
    bounds.sort_unstable();
    bounds.dedup();
    Ladder::build(bounds, &sums)
}

/// Day ranges in `[a_lo, a_hi]` but not `[b_lo, b_hi]` (sign -1) and the other way
/// round (sign +1).
fn diff(
    a_lo: DayNumber,
    a_hi: DayNumber,
    b_lo: DayNumber,
    b_hi: DayNumber,
) -> Vec<(DayNumber, DayNumber, i64)> {
    let mut out = Vec::new();
    let minus = |x_lo: DayNumber, x_hi: DayNumber, y_lo: DayNumber, y_hi: DayNumber| {
        // x minus y, as up to two ranges.
        if x_lo > x_hi {
            return vec![];
        }
        if y_lo > y_hi || y_hi < x_lo || y_lo > x_hi {
            return vec![(x_lo, x_hi)];
        }
        let mut v = Vec::new();
        if x_lo < y_lo {
            v.push((x_lo, y_lo - 1));
        }
        if y_hi < x_hi {
            v.push((y_hi + 1, x_hi));
        }
        v
    };
    for (f, t) in minus(a_lo, a_hi, b_lo, b_hi) {
        out.push((f, t, -1));
    }
    for (f, t) in minus(b_lo, b_hi, a_lo, a_hi) {
        out.push((f, t, 1));
    }
    out
}

/// The shape of a range's whole days: which sides are open and, when both are bounded,
/// the length. Aggregates of one shape slide into each other.
fn shape(lo: DayNumber, hi: DayNumber) -> (bool, bool, i64) {
    let (open_lo, open_hi) = (lo == DayNumber::MIN, hi == DayNumber::MAX);
    let len = if open_lo || open_hi {
        0
    } else {
        i64::from(hi) - i64::from(lo)
    };
    (open_lo, open_hi, len)
}

/// The cached aggregates of one series.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    aggs: Vec<Agg>,
    clock: u64,
}

impl Windows {
    /// Indexes a new entry of `pid` on `day`.
    pub(crate) fn add(&mut self, pid: u32, day: DayNumber, value: f64) {
        for a in self.aggs.iter_mut().filter(|a| a.covers(day)) {
            a.apply(pid, 1, value);
        }
    }

    /// Unindexes an entry of `pid` on `day`.
    pub(crate) fn remove(&mut self, pid: u32, day: DayNumber, value: f64) {
        for a in self.aggs.iter_mut().filter(|a| a.covers(day)) {
            a.apply(pid, -1, value);
        }
    }

    /// Forgets every profile of `pids`.
    pub(crate) fn remove_profiles(&mut self, pids: &RoaringBitmap) {
        for a in &mut self.aggs {
            a.remove_profiles(pids);
        }
    }

    /// Differences between each cached aggregate and one rebuilt from `days`.
    pub(crate) fn problems(&self, days: &BTreeMap<DayNumber, DayBucket>) -> Vec<String> {
        self.aggs
            .iter()
            .flat_map(|a| {
                a.problems(days)
                    .into_iter()
                    .map(move |p| format!("aggregate of days {}..={}: {p}", a.lo, a.hi))
            })
            .collect()
    }

    /// Number of cached aggregates.
    pub(crate) fn len(&self) -> usize {
        self.aggs.len()
    }

    /// Profiles with at least one event in `range` whose count and sum there pass every
    /// filter; `None` when a sum filter cannot be answered exactly here (off-grid values).
    pub(crate) fn select(
        &mut self,
        days: &BTreeMap<DayNumber, DayBucket>,
        range: TimeRange,
        filters: &[AggFilter],
        profiles: usize,
    ) -> Option<RoaringBitmap> {
        let midnight = |t: Millis| t.rem_euclid(MS_PER_DAY) == 0;
        // Whole days of the range, and the (at most two) partial days at its edges.
        let lo = match range.from {
            None => DayNumber::MIN,
            Some(f) if midnight(f) => day_of(f),
            Some(f) => day_of(f).saturating_add(1),
        };
        let hi = match range.until {
            None => DayNumber::MAX,
            Some(u) => day_of(u).saturating_sub(1),
        };
        let mut partial: Vec<DayNumber> = Vec::new();
        if let Some(f) = range.from.filter(|f| !midnight(*f)) {
            partial.push(day_of(f));
        }
        if let Some(u) = range.until.filter(|u| !midnight(*u)) {
            if partial.last() != Some(&day_of(u)) {
                partial.push(day_of(u));
            }
        }
        let agg = if lo <= hi {
            Some(self.agg(days, lo, hi, profiles))
        } else {
            None
        };
        // Exact counts and sums of the profiles with events on the partial days.
        let mut touched: HashMap<u32, (i64, i64), FastHash> = HashMap::default();
        for day in partial {
            let Some(bucket) = days.get(&day) else {
                continue;
            };
            let start = i64::from(day) * MS_PER_DAY;
            for e in bucket.entries() {
                if range.contains(start + i64::from(e.ms_of_day)) {
                    if !on_grid(e.value) && filters.iter().any(|f| matches!(f, AggFilter::Sum(..)))
                    {
                        return None;
                    }
                    let t = touched.entry(e.pid).or_default();
                    t.0 += 1;
                    t.1 += scale_number(e.value);
                }
            }
        }
        let (mut out, agg) = match agg {
            Some(i) => {
                let out = self.aggs[i].select(filters)?;
                (out, Some(&self.aggs[i]))
            }
            None => (RoaringBitmap::new(), None),
        };
        let mut keep = Vec::new();
        let mut drop = Vec::new();
        for (pid, (c, s)) in touched {
            let (c0, s0) = agg
                .and_then(|a| a.totals.get(&pid))
                .map_or((0, 0), |t| (i64::from(t.0), t.1));
            let (c, s) = (c + c0, s + s0);
            let pass = c > 0
                && filters.iter().all(|f| match *f {
                    AggFilter::Count(op, n) => op.holds(c, i64::try_from(n).unwrap_or(i64::MAX)),
                    AggFilter::Sum(op, x) => op.holds(s, x),
                });
            if pass {
                keep.push(pid);
            } else {
                drop.push(pid);
            }
        }
        keep.sort_unstable();
        drop.sort_unstable();
        out -= RoaringBitmap::from_sorted_iter(drop).expect("sorted");
        out |= RoaringBitmap::from_sorted_iter(keep).expect("sorted");
        Some(out)
    }

    /// The index of the aggregate over whole days `[lo, hi]`: cached, slid from one of the
    /// same shape when that reads fewer entries than a build, or built.
    fn agg(
        &mut self,
        days: &BTreeMap<DayNumber, DayBucket>,
        lo: DayNumber,
        hi: DayNumber,
        profiles: usize,
    ) -> usize {
        self.clock += 1;
        let entries = |from: DayNumber, to: DayNumber| -> usize {
            if from > to {
                return 0;
            }
            days.range(from..=to).map(|(_, b)| b.len()).sum()
        };
        let want = shape(lo, hi);
        let build = entries(lo, hi);
        // The cheapest aggregate of the same shape to slide (a `within 90d` and a
        // `within 730d` have the same shape; neither should be slid into the other).
        let best = self
            .aggs
            .iter()
            .enumerate()
            .filter(|(_, a)| shape(a.lo, a.hi) == want)
            .map(|(i, a)| {
                let cost: usize = if (a.lo, a.hi) == (lo, hi) {
                    0
                } else {
                    diff(a.lo, a.hi, lo, hi)
                        .into_iter()
                        .map(|(f, t, _)| entries(f, t))
                        .sum()
                };
                (cost, i)
            })
            .min();
        let i = match best {
            Some((0, i)) if (self.aggs[i].lo, self.aggs[i].hi) == (lo, hi) => i,
            Some((cost, i)) if cost.saturating_mul(4) <= build => {
                self.aggs[i].slide(days, lo, hi);
                i
            }
            _ => {
                // Replace the least recently used of this shape when it has its share of
                // the cache, else the least recently used of all when the cache is full.
                let lru = |same: bool| {
                    (0..self.aggs.len())
                        .filter(|i| !same || shape(self.aggs[*i].lo, self.aggs[*i].hi) == want)
                        .min_by_key(|i| self.aggs[*i].used)
                };
                let same = self
                    .aggs
                    .iter()
                    .filter(|a| shape(a.lo, a.hi) == want)
                    .count();
                let replace = if same >= SAME_SHAPE {
                    lru(true)
                } else if self.aggs.len() >= WINDOWS_PER_SERIES {
                    lru(false)
                } else {
                    None
                };
                let agg = Agg::build(days, lo, hi, build.min(profiles));
                match replace {
                    Some(i) => {
                        self.aggs[i] = agg;
                        i
                    }
                    None => {
                        self.aggs.push(agg);
                        self.aggs.len() - 1
                    }
                }
            }
        };
        self.aggs[i].used = self.clock;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPS: [Cmp; 6] = [Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge];

    proptest! {
        /// Ladders (quantile bounds with heavy ties, counts with fixed bounds) answer
        /// every comparison like a scan, before and after updates and erasures.
        #[test]
        fn ladders_compare_like_a_scan(
            values in proptest::collection::vec((0u32..300, prop_oneof![Just(0i64), Just(5), -3i64..40]), 0..300),
            updates in proptest::collection::vec((0u32..300, proptest::option::of(-5i64..60)), 0..60),
            gone in proptest::collection::vec(0u32..300, 0..20),
        ) {
            let mut totals: HashMap<u32, (u32, i64), FastHash> = HashMap::default();
            for (p, v) in values {
                totals.insert(p, (1, v));
            }
            let mut ladder = sum_ladder(&totals);
            let check = |ladder: &Ladder, totals: &HashMap<u32, (u32, i64), FastHash>| -> Result<(), TestCaseError> {
                let values: HashMap<u32, i64, FastHash> = totals.iter().map(|(p, t)| (*p, t.1)).collect();
                prop_assert!(ladder.problems(&values).is_empty(), "{:?}", ladder.problems(&values));
                for x in -7..64 {
                    for op in OPS {
                        let want: RoaringBitmap = values.iter().filter(|(_, v)| op.holds(**v, x)).map(|(p, _)| *p).collect();
                        prop_assert_eq!(ladder.compare(op, x), want, "{:?} {}", op, x);
                    }
                }
                Ok(())
            };
            check(&ladder, &totals)?;
            for (p, v) in updates {
                let old = totals.get(&p).map(|t| t.1);
                match v {
                    Some(v) => totals.insert(p, (1, v)),
                    None => totals.remove(&p),
                };
                ladder.set(p, old, v);
            }
            check(&ladder, &totals)?;
            let gone: RoaringBitmap = gone.into_iter().collect();
            ladder.remove_all(&gone);
            totals.retain(|p, _| !gone.contains(*p));
            check(&ladder, &totals)?;
        }
    }

    #[test]
    fn a_value_held_by_many_gets_a_bucket_of_its_own() {
        let mut totals: HashMap<u32, (u32, i64), FastHash> = HashMap::default();
        for p in 0..10_000u32 {
            totals.insert(p, (1, if p % 10 < 8 { 0 } else { i64::from(p) }));
        }
        let ladder = sum_ladder(&totals);
        let biggest = ladder
            .buckets
            .iter()
            .flatten()
            .map(|b| b.len())
            .max()
            .unwrap();
        assert!(biggest <= 10_000 / SUM_BUCKETS + 1, "{biggest}");
        assert_eq!(ladder.compare(Cmp::Eq, 0).len(), 8_000);
    }
}
