//! Bit-sliced index: integer value per profile as one bitmap per bit, so a range predicate
//! costs about three bitmap operations per slice (O'Neil & Quass).
//!
//! Values are stored as `value - base` (unsigned). `base` only moves down (a rebase, which
//! rewrites the index, happens when a value below it arrives; [`Bsi::new`] picks a base
//! that makes this rare).
//!
//! Ranges over many profiles use ordered value buckets derived from the slices on first
//! use ([`super::range`]): one bitmap difference plus at most two bucket scans, whatever
//! the depth. The slices still answer ranges within a small set of profiles.

use super::range::RangeBuckets;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Up to this many profiles in the index, ranges are evaluated on the slices; above it,
/// on the value buckets (restricted to `within` step by step when one is given).
static SLICES_WITHIN_MAX: AtomicU64 = AtomicU64::new(4096);

/// Sets the index size up to which ranges use the slices rather than the value buckets
/// (4096 by default). Both give the same answers; the differential tests set it to 0 so that
/// their small databases exercise the buckets too.
#[doc(hidden)]
pub fn set_range_slices_threshold(profiles: u64) {
    SLICES_WITHIN_MAX.store(profiles, Ordering::Relaxed);
}

fn slices_within_max() -> u64 {
    SLICES_WITHIN_MAX.load(Ordering::Relaxed)
}

/// A bit-sliced index over i64 values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bsi {
    base: i64,
    slices: Vec<RoaringBitmap>,
    exists: RoaringBitmap,
    /// Value buckets: derived on the first range over many profiles, then kept up to
    /// date by every change; never persisted.
    #[serde(skip)]
    buckets: OnceLock<RangeBuckets>,
}

/// Two indexes are equal when they hold the same slices (the buckets follow from them).
impl PartialEq for Bsi {
    fn eq(&self, other: &Bsi) -> bool {
        self.base == other.base && self.slices == other.slices && self.exists == other.exists
    }
}

/// A comparison against a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `!=` (among profiles that have a value)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    /// Whether `l` compares to `r` as this says.
    pub fn holds(self, l: i64, r: i64) -> bool {
        match self {
            Cmp::Eq => l == r,
            Cmp::Ne => l != r,
            Cmp::Lt => l < r,
            Cmp::Le => l <= r,
            Cmp::Gt => l > r,
            Cmp::Ge => l >= r,
        }
    }
}

impl Bsi {
    /// An empty index whose base starts at `floor` (values below it trigger a rebase).
    pub fn new(floor: i64) -> Self {
        Bsi {
            base: floor,
            slices: Vec::new(),
            exists: RoaringBitmap::new(),
            buckets: OnceLock::new(),
        }
    }

    /// The value buckets, derived from the slices on first use.
    fn buckets(&self) -> &RangeBuckets {
        self.buckets
            .get_or_init(|| RangeBuckets::build(self.pairs()))
    }

    /// Every (profile, value), ordered by profile: one pass over each slice.
    fn pairs(&self) -> Vec<(u32, i64)> {
        let mut offsets = vec![0u64; self.exists.len() as usize];
        for (bit, slice) in self.slices.iter().enumerate() {
            // `slice` is a subset of `exists`: walk both in order to find each rank.
            let mut ranks = self.exists.iter().enumerate();
            for pid in slice {
                for (rank, member) in ranks.by_ref() {
                    if member == pid {
                        offsets[rank] |= 1 << bit;
                        break;
                    }
                }
            }
        }
        self.exists
            .iter()
            .zip(offsets)
            .map(|(pid, offset)| (pid, self.base + offset as i64))
            .collect()
    }

    /// Profiles that have a value.
    pub fn exists(&self) -> &RoaringBitmap {
        &self.exists
    }

    /// Number of bit slices.
    pub fn depth(&self) -> usize {
        self.slices.len()
    }

    /// Sets the value of `pid` (replacing any earlier value).
    pub fn insert(&mut self, pid: u32, value: i64) {
        if self.exists.contains(pid) {
            self.remove(pid);
        }
        if value < self.base {
            self.rebase(value);
        }
        if let Some(buckets) = self.buckets.get_mut() {
            buckets.insert(pid, value);
        }
        let offset = (value - self.base) as u64;
        let bits = 64 - offset.leading_zeros() as usize;
        while self.slices.len() < bits {
            self.slices.push(RoaringBitmap::new());
        }
        for (i, slice) in self.slices.iter_mut().enumerate() {
            if offset >> i & 1 == 1 {
                slice.insert(pid);
            }
        }
        self.exists.insert(pid);
    }

    /// Clears the value of `pid`.
    pub fn remove(&mut self, pid: u32) {
        if self.buckets.get().is_some() {
            if let Some(value) = self.get(pid) {
                if let Some(buckets) = self.buckets.get_mut() {
                    buckets.remove(pid, value);
                }
            }
        }
        if self.exists.remove(pid) {
            for slice in &mut self.slices {
                slice.remove(pid);
            }
        }
    }

    /// Removes every profile in `pids`.
    pub fn remove_all(&mut self, pids: &RoaringBitmap) {
        if let Some(buckets) = self.buckets.get_mut() {
            buckets.remove_all(pids);
        }
        self.exists -= pids;
        for slice in &mut self.slices {
            *slice -= pids;
        }
    }

    /// The value of `pid`.
    pub fn get(&self, pid: u32) -> Option<i64> {
        if !self.exists.contains(pid) {
            return None;
        }
        let offset = self
            .slices
            .iter()
            .enumerate()
            .filter(|(_, s)| s.contains(pid))
            .fold(0u64, |acc, (i, _)| acc | 1 << i);
        Some(self.base + offset as i64)
    }

    fn rebase(&mut self, value: i64) {
        let old = std::mem::take(self);
        *self = Bsi::new(value);
        for pid in &old.exists {
            let v = old.get(pid).expect("member has a value");
            self.insert(pid, v);
        }
    }

    /// Profiles whose value compares to `c` as `op` says.
    pub fn compare(&self, op: Cmp, c: i64) -> RoaringBitmap {
        if self.exists.len() > slices_within_max() {
            let b = self.buckets();
            return match op {
                Cmp::Le => b.between(None, Some(c)),
                Cmp::Lt => c
                    .checked_sub(1)
                    .map(|c| b.between(None, Some(c)))
                    .unwrap_or_default(),
                Cmp::Gt => c
                    .checked_add(1)
                    .map(|c| b.between(Some(c), None))
                    .unwrap_or_default(),
                Cmp::Ge => b.between(Some(c), None),
                Cmp::Eq => b.between(Some(c), Some(c)),
                Cmp::Ne => &self.exists - &b.between(Some(c), Some(c)),
            };
        }
        match op {
            Cmp::Le => self.at_most(c),
            Cmp::Lt => c
                .checked_sub(1)
                .map(|c| self.at_most(c))
                .unwrap_or_default(),
            Cmp::Gt => &self.exists - &self.at_most(c),
            Cmp::Ge => c
                .checked_sub(1)
                .map(|c| &self.exists - &self.at_most(c))
                .unwrap_or_else(|| self.exists.clone()),
            Cmp::Eq => self.equal(c),
            Cmp::Ne => &self.exists - &self.equal(c),
        }
    }

    /// Profiles with `lo <= value <= hi`.
    pub fn between(&self, lo: i64, hi: i64) -> RoaringBitmap {
        if lo > hi {
            return RoaringBitmap::new();
        }
        if self.exists.len() > slices_within_max() {
            return self.buckets().between(Some(lo), Some(hi));
        }
        let mut upper = self.at_most(hi);
        if let Some(below) = lo.checked_sub(1) {
            upper -= &self.at_most(below);
        }
        upper
    }

    /// Profiles in `within` (all when `None`) whose value is in `[low, high]` (either
    /// bound open when `None`). Restricting to `within` first makes every slice operation
    /// work on the smaller set: an AND evaluates a range against what it has so far.
    pub fn range_within(
        &self,
        low: Option<i64>,
        high: Option<i64>,
        within: Option<&RoaringBitmap>,
    ) -> RoaringBitmap {
        if low.zip(high).is_some_and(|(l, h)| l > h) {
            return RoaringBitmap::new();
        }
        if self.exists.len() > slices_within_max() {
            let buckets = self.buckets();
            return match within {
                Some(f) => buckets.between_within(low, high, f),
                None => buckets.between(low, high),
            };
        }
        let start = match within {
            Some(f) => &self.exists & f,
            None => self.exists.clone(),
        };
        let mut out = match high {
            Some(h) => self.at_most_from(h, start),
            None => start,
        };
        if let Some(below) = low.and_then(|l| l.checked_sub(1)) {
            if !out.is_empty() {
                let under = self.at_most_from(below, out.clone());
                out -= &under;
            }
        }
        out
    }

    /// How many profiles of `within` (all when `None`) are in `[low, high]`; from the
    /// value buckets without building the set, unless `within` is small.
    pub fn count_within(
        &self,
        low: Option<i64>,
        high: Option<i64>,
        within: Option<&RoaringBitmap>,
    ) -> u64 {
        if self.exists.len() <= slices_within_max() {
            return self.range_within(low, high, within).len();
        }
        self.buckets().count(low, high, within)
    }

    /// Profiles with value <= c.
    fn at_most(&self, c: i64) -> RoaringBitmap {
        self.at_most_from(c, self.exists.clone())
    }

    /// Profiles of `start` (a subset of `exists`) with value <= c.
    fn at_most_from(&self, c: i64, start: RoaringBitmap) -> RoaringBitmap {
        if c < self.base {
            return RoaringBitmap::new();
        }
        let offset = (c as i128 - self.base as i128) as u128;
        if offset >> self.slices.len() != 0 {
            return start;
        }
        let mut lt = RoaringBitmap::new();
        let mut eq = start;
        for (i, slice) in self.slices.iter().enumerate().rev() {
            if offset >> i & 1 == 1 {
                lt |= &eq - slice;
                eq &= slice;
            } else {
                eq -= slice;
            }
            if eq.is_empty() {
                break;
            }
        }
        lt | eq
    }

    fn equal(&self, c: i64) -> RoaringBitmap {
        if c < self.base {
            return RoaringBitmap::new();
        }
        let offset = (c as i128 - self.base as i128) as u128;
        if offset >> self.slices.len() != 0 {
            return RoaringBitmap::new();
        }
        let mut eq = self.exists.clone();
        for (i, slice) in self.slices.iter().enumerate().rev() {
            if offset >> i & 1 == 1 {
                eq &= slice;
            } else {
                eq -= slice;
            }
            if eq.is_empty() {
                break;
            }
        }
        eq
    }

    /// Whether both hold the same values (bases and depths may differ), and the value
    /// buckets, where derived, hold exactly this index's values.
    pub fn same_values(&self, other: &Bsi) -> bool {
        self.exists == other.exists
            && self.exists.iter().all(|p| self.get(p) == other.get(p))
            && self
                .buckets
                .get()
                .is_none_or(|b| b.holds_exactly(&self.pairs()))
    }

    /// Derives the value buckets now (a server warms them so the first range does not).
    pub fn warm(&self) {
        self.buckets();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL_CMPS: [Cmp; 6] = [Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge];

    proptest! {
        #[test]
        fn matches_naive_comparison(values in proptest::collection::vec((0u32..200, -1000i64..1000), 0..80),
                                    c in -1100i64..1100, lo in -1100i64..1100, hi in -1100i64..1100) {
            let mut bsi = Bsi::new(0);
            let mut model = std::collections::BTreeMap::new();
            for (pid, v) in values {
                bsi.insert(pid, v);
                model.insert(pid, v);
            }
            let naive = |f: &dyn Fn(i64) -> bool| model.iter().filter(|(_, v)| f(**v)).map(|(p, _)| *p).collect::<RoaringBitmap>();
            for op in ALL_CMPS {
                prop_assert_eq!(bsi.compare(op, c), naive(&|v| op.holds(v, c)), "{:?} {}", op, c);
            }
            prop_assert_eq!(bsi.between(lo, hi), naive(&|v| lo <= v && v <= hi));
            let within: RoaringBitmap = (0..200).filter(|p| p % 3 != 0).collect();
            prop_assert_eq!(
                bsi.range_within(Some(lo), Some(hi), Some(&within)),
                naive(&|v| lo <= v && v <= hi) & &within
            );
            prop_assert_eq!(bsi.range_within(Some(lo), None, Some(&within)), naive(&|v| lo <= v) & &within);
            prop_assert_eq!(bsi.range_within(None, Some(hi), None), naive(&|v| v <= hi));
            prop_assert_eq!(bsi.range_within(None, None, None), naive(&|_| true));
            for (pid, v) in &model {
                prop_assert_eq!(bsi.get(*pid), Some(*v));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Past `slices_within_max()` profiles ranges use the value buckets: they must agree
        /// with a scan before and after later inserts, changes, removals and rebases.
        #[test]
        fn bucketed_ranges_match_a_scan_through_updates(
            seed in proptest::collection::vec((0u32..20_000, -3000i64..3000), 4500..6000),
            later in proptest::collection::vec((0u8..4, 0u32..20_000, -3500i64..3000), 0..300),
            c in -3600i64..3600, lo in -3600i64..3600, hi in -3600i64..3600,
        ) {
            let mut bsi = Bsi::new(-3000);
            let mut model = std::collections::BTreeMap::new();
            for (pid, v) in seed {
                bsi.insert(pid, v);
                model.insert(pid, v);
            }
            bsi.warm();
            for (op, pid, v) in later {
                match op {
                    0 | 1 => {
                        bsi.insert(pid, v);
                        model.insert(pid, v);
                    }
                    2 => {
                        bsi.remove(pid);
                        model.remove(&pid);
                    }
                    _ => {
                        let gone: RoaringBitmap = (pid..pid + 100).collect();
                        bsi.remove_all(&gone);
                        model.retain(|p, _| !gone.contains(*p));
                    }
                }
            }
            let naive = |f: &dyn Fn(i64) -> bool| model.iter().filter(|(_, v)| f(**v)).map(|(p, _)| *p).collect::<RoaringBitmap>();
            for op in ALL_CMPS {
                prop_assert_eq!(bsi.compare(op, c), naive(&|v| op.holds(v, c)), "{:?} {}", op, c);
            }
            prop_assert_eq!(bsi.between(lo, hi), naive(&|v| lo <= v && v <= hi));
            let wide: RoaringBitmap = (0..20_000).filter(|p| p % 3 != 0).collect();
            prop_assert_eq!(
                bsi.range_within(Some(lo), Some(hi), Some(&wide)),
                naive(&|v| lo <= v && v <= hi) & &wide
            );
            prop_assert_eq!(bsi.range_within(None, Some(hi), None), naive(&|v| v <= hi));
            prop_assert_eq!(
                bsi.count_within(Some(lo), Some(hi), Some(&wide)),
                (naive(&|v| lo <= v && v <= hi) & &wide).len()
            );
            prop_assert_eq!(bsi.count_within(Some(lo), None, None), naive(&|v| lo <= v).len());
            let rebuilt = {
                let mut b = Bsi::new(0);
                for (p, v) in &model {
                    b.insert(*p, *v);
                }
                b
            };
            prop_assert!(bsi.same_values(&rebuilt));
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut bsi = Bsi::new(0);
        bsi.insert(1, i64::MAX / 4);
        bsi.insert(2, -(i64::MAX / 4));
        assert_eq!(bsi.compare(Cmp::Le, i64::MAX).len(), 2);
        assert_eq!(bsi.compare(Cmp::Ge, i64::MIN).len(), 2);
        assert_eq!(bsi.compare(Cmp::Lt, i64::MIN).len(), 0);
        bsi.remove(1);
        assert_eq!(bsi.get(1), None);
    }
}
