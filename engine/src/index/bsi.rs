//! Bit-sliced index: integer value per profile as one bitmap per bit, so a range predicate
//! costs about three bitmap operations per slice (O'Neil & Quass).
//!
//! Values are stored as `value - base` (unsigned). `base` only moves down (a rebase, which
//! rewrites the index, happens when a value below it arrives; [`Bsi::new`] picks a base
//! that makes this rare).

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

/// A bit-sliced index over i64 values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bsi {
    base: i64,
    slices: Vec<RoaringBitmap>,
    exists: RoaringBitmap,
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

impl Bsi {
    /// An empty index whose base starts at `floor` (values below it trigger a rebase).
    pub fn new(floor: i64) -> Self {
        Bsi {
            base: floor,
            slices: Vec::new(),
            exists: RoaringBitmap::new(),
        }
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
        if self.exists.remove(pid) {
            for slice in &mut self.slices {
                slice.remove(pid);
            }
        }
    }

    /// Removes every profile in `pids`.
    pub fn remove_all(&mut self, pids: &RoaringBitmap) {
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

    /// Whether both hold the same values (bases and depths may differ).
    pub fn same_values(&self, other: &Bsi) -> bool {
        self.exists == other.exists && self.exists.iter().all(|p| self.get(p) == other.get(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            prop_assert_eq!(bsi.compare(Cmp::Le, c), naive(&|v| v <= c));
            prop_assert_eq!(bsi.compare(Cmp::Lt, c), naive(&|v| v < c));
            prop_assert_eq!(bsi.compare(Cmp::Gt, c), naive(&|v| v > c));
            prop_assert_eq!(bsi.compare(Cmp::Ge, c), naive(&|v| v >= c));
            prop_assert_eq!(bsi.compare(Cmp::Eq, c), naive(&|v| v == c));
            prop_assert_eq!(bsi.compare(Cmp::Ne, c), naive(&|v| v != c));
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
