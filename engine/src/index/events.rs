//! Event index: per event key (type, and type + category), day buckets holding a bitmap of
//! the profiles with an event that day plus the exact (time, profile, value) entries, and
//! per-profile totals. An existence query over a time range is a union of day bitmaps with
//! exact filtering of the two boundary days; `count`/`sum` over a window read only the
//! entries inside the window; `count`/`sum` without a window read the totals.

use super::aggregates::{AggFilter, Windows};
use super::day_tree::DayTree;
use super::latest_day::LatestDays;
use super::packed_entries::Entries;
use crate::base::time::{day_of, DayNumber, Millis, MS_PER_DAY};
use crate::input::record::Event;
use roaring::{MultiOps, RoaringBitmap};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// Hasher of the series and per-profile totals (foldhash: these maps are hit for every
/// indexed event; SipHash's DoS resistance buys nothing for keys the engine makes).
type FastHash = foldhash::fast::RandomState;

/// An event key: type, optionally narrowed to one category.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    /// Event type (normalized).
    pub kind: crate::input::record::ShortText,
    /// Category (normalized), or `None` for all categories of the type.
    pub category: Option<crate::input::record::ShortText>,
}

/// One event as indexed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds into the day.
    pub ms_of_day: u32,
    /// The profile.
    pub pid: u32,
    /// The event value (0 when absent).
    pub value: f64,
}

/// One day of one key. In the checkpoint its entries are packed ([`super::packed_entries`]):
/// about 7 bytes an entry instead of 16; an open keeps them packed until first used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayBucket {
    /// Profiles with an event that day.
    pub members: RoaringBitmap,
    /// The events.
    entries: Entries,
}

impl DayBucket {
    /// The day's events.
    pub fn entries(&self) -> &[Entry] {
        self.entries.get()
    }

    /// How many events the day holds (without unpacking them).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The day's events, to change.
    pub(crate) fn entries_mut(&mut self) -> &mut Vec<Entry> {
        self.entries.get_mut()
    }
}

/// Per-profile totals over all time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Number of events.
    pub count: u32,
    /// Sum of values.
    pub sum: f64,
}

/// Totals of every profile of a series.
pub type TotalsByProfile = HashMap<u32, Totals, FastHash>;

/// Everything indexed for one event key.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Series {
    /// Profiles with at least one event.
    pub any: RoaringBitmap,
    /// Day buckets.
    pub days: BTreeMap<DayNumber, DayBucket>,
    /// Totals per profile: derived from `days` on first use ([`Series::totals`]) and kept
    /// up to date from then on; not in the checkpoint, so an import does not build them
    /// and an open does not read them (a series of millions of events takes tens of
    /// milliseconds to total on first use).
    #[serde(skip)]
    totals: std::sync::OnceLock<TotalsByProfile>,
    /// Unions of the day bitmaps over aligned spans of days: derived on the first
    /// windowed existence query ([`Series::members`]) and kept up to date from then on;
    /// not in the checkpoint.
    #[serde(skip)]
    tree: std::sync::OnceLock<DayTree>,
    /// Each profile's latest event day: derived on the first window open at the end
    /// (`within`, `since`), kept up to date from then on; not in the checkpoint.
    #[serde(skip)]
    latest: std::sync::OnceLock<LatestDays>,
    /// Count and sum aggregates with threshold ladders, per shape of time range
    /// (`aggregates.rs`): derived on first use of a `count`/`sum` filter, kept up to date
    /// from then on, never stored. The mutex is a leaf of the lock order.
    #[serde(skip)]
    windows: Mutex<Windows>,
}

impl Clone for Series {
    /// A clone starts without cached aggregates (they are derived again on use).
    fn clone(&self) -> Series {
        Series {
            any: self.any.clone(),
            days: self.days.clone(),
            totals: self.totals.clone(),
            tree: self.tree.clone(),
            latest: self.latest.clone(),
            windows: Mutex::default(),
        }
    }
}

/// Two series are equal when they hold the same events (their totals follow from them).
impl PartialEq for Series {
    fn eq(&self, other: &Series) -> bool {
        self.any == other.any && self.days == other.days
    }
}

/// A half-open time range `[from, until)`; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub from: Option<Millis>,
    /// Exclusive upper bound.
    pub until: Option<Millis>,
}

impl TimeRange {
    /// Whether the range has no bounds.
    pub fn is_unbounded(&self) -> bool {
        self.from.is_none() && self.until.is_none()
    }

    pub(crate) fn contains(&self, at: Millis) -> bool {
        self.from.is_none_or(|f| at >= f) && self.until.is_none_or(|u| at < u)
    }
}

impl Series {
    fn add(&mut self, pid: u32, at: Millis, value: f64) {
        let day = day_of(at);
        let bucket = self.days.entry(day).or_default();
        bucket.members.insert(pid);
        if let Some(tree) = self.tree.get_mut() {
            tree.add(pid, day);
        }
        if let Some(latest) = self.latest.get_mut() {
            latest.add(pid, day);
        }
        bucket.entries_mut().push(Entry {
            ms_of_day: (at - i64::from(day) * MS_PER_DAY) as u32,
            pid,
            value,
        });
        self.any.insert(pid);
        self.windows_mut().add(pid, day, value);
        if let Some(totals) = self.totals.get_mut() {
            let t = totals.entry(pid).or_default();
            t.count += 1;
            t.sum += value;
        }
    }

    /// The cached aggregates, for a writer (a poisoned cache is dropped: it may be
    /// half-updated).
    fn windows_mut(&mut self) -> &mut Windows {
        if self.windows.is_poisoned() {
            self.windows = Mutex::default();
        }
        self.windows.get_mut().expect("not poisoned")
    }

    fn windows(&self) -> MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|poisoned| {
            let mut w = poisoned.into_inner();
            *w = Windows::default();
            w
        })
    }

    /// Profiles with at least one event in `range` whose count and sum of events there
    /// pass every filter, from the indexed aggregates (derived on first use for the shape
    /// of `range`, slid when its days move). `None` when a sum filter cannot be answered
    /// exactly from them (a value not on the grid of `NUMBER_SCALE`): the caller then
    /// aggregates the entries.
    pub fn select(&self, range: TimeRange, filters: &[AggFilter]) -> Option<RoaringBitmap> {
        self.windows()
            .select(&self.days, range, filters, self.any.len() as usize)
    }

    /// Number of cached aggregates (for tests and `check`).
    pub fn cached_aggregates(&self) -> usize {
        self.windows().len()
    }

    /// Differences between the cached aggregates and aggregates rebuilt from the days.
    pub fn aggregate_problems(&self) -> Vec<String> {
        self.windows().problems(&self.days)
    }

    /// Count and sum of every profile's events, over all time.
    pub fn totals(&self) -> &TotalsByProfile {
        self.totals.get_or_init(|| {
            let mut out = TotalsByProfile::default();
            for bucket in self.days.values() {
                bucket.entries.for_each(|e| {
                    let t = out.entry(e.pid).or_default();
                    t.count += 1;
                    t.sum += e.value;
                });
            }
            out
        })
    }

    fn remove(&mut self, pid: u32, at: Millis, value: f64) {
        // Total before the entry leaves its day (the totals follow from the days).
        self.totals();
        let day = day_of(at);
        let ms = (at - i64::from(day) * MS_PER_DAY) as u32;
        let Some(bucket) = self.days.get_mut(&day) else {
            return;
        };
        let Some(pos) = bucket.entries().iter().position(|e| {
            e.pid == pid && e.ms_of_day == ms && e.value.to_bits() == value.to_bits()
        }) else {
            return;
        };
        bucket.entries_mut().swap_remove(pos);
        let left_the_day = !bucket.entries().iter().any(|e| e.pid == pid);
        if left_the_day {
            bucket.members.remove(pid);
        }
        if bucket.entries().is_empty() {
            self.days.remove(&day);
        }
        if let (true, Some(tree)) = (left_the_day, self.tree.get_mut()) {
            let days = &self.days;
            tree.remove(pid, day, |d| {
                days.get(&d).is_some_and(|b| b.members.contains(pid))
            });
        }
        if let (true, Some(latest)) = (left_the_day, self.latest.get_mut()) {
            latest.left_day(pid, day, &self.days);
        }
        self.windows_mut().remove(pid, day, value);
        let totals = self.totals.get_mut().expect("totalled above");
        if let Some(t) = totals.get_mut(&pid) {
            t.count -= 1;
            t.sum -= value;
            if t.count == 0 {
                totals.remove(&pid);
                self.any.remove(pid);
            }
        }
    }

    fn remove_profiles(&mut self, pids: &RoaringBitmap) {
        self.any -= pids;
        if let Some(tree) = self.tree.get_mut() {
            tree.remove_all(pids);
        }
        if let Some(latest) = self.latest.get_mut() {
            latest.remove_all(pids);
        }
        self.windows_mut().remove_profiles(pids);
        if let Some(totals) = self.totals.get_mut() {
            totals.retain(|p, _| !pids.contains(*p));
        }
        self.days.retain(|_, b| {
            if b.members.is_disjoint(pids) {
                // None of them had an event that day: the entries stay packed.
                return true;
            }
            b.members -= pids;
            b.entries_mut().retain(|e| !pids.contains(e.pid));
            !b.entries().is_empty()
        });
    }

    /// Profiles with at least one event in `range`.
    pub fn members(&self, range: TimeRange) -> RoaringBitmap {
        if range.is_unbounded() {
            return self.any.clone();
        }
        self.members_in(range, None)
    }

    /// Profiles of `within` with at least one event in `range`: every step works on the
    /// intersection, so a small `within` makes it cheap.
    pub fn members_within(&self, range: TimeRange, within: &RoaringBitmap) -> RoaringBitmap {
        if range.is_unbounded() {
            return &self.any & within;
        }
        self.members_in(range, Some(within))
    }

    /// The whole days inside `range` from the day tree, the two boundary days exactly.
    fn members_in(&self, range: TimeRange, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        let (Some((&first, _)), Some((&last, _))) =
            (self.days.first_key_value(), self.days.last_key_value())
        else {
            return RoaringBitmap::new();
        };
        let lo = range.from.map_or(first, |f| day_of(f).max(first));
        let hi = range.until.map_or(last, |u| day_of(u - 1).min(last));
        if lo > hi {
            return RoaringBitmap::new();
        }
        let start = |d: DayNumber| i64::from(d) * MS_PER_DAY;
        let lo_partial = range.from.is_some_and(|f| f > start(lo));
        let hi_partial = range.until.is_some_and(|u| u < start(hi) + MS_PER_DAY);
        let mut exact = RoaringBitmap::new();
        let mut exactly = |day: DayNumber| {
            if let Some(bucket) = self.days.get(&day) {
                exact.extend(
                    bucket
                        .entries()
                        .iter()
                        .filter(|e| range.contains(start(day) + i64::from(e.ms_of_day)))
                        .filter(|e| within.is_none_or(|w| w.contains(e.pid)))
                        .map(|e| e.pid),
                );
            }
        };
        if lo_partial {
            exactly(lo);
        }
        if hi_partial && !(lo == hi && lo_partial) {
            exactly(hi);
        }
        if range.until.is_none() {
            // Open at the end: a latest day after `lo`, or an event on `lo` itself when the
            // window starts inside it (else every event of `lo` is in the window).
            let latest = self.latest.get_or_init(|| LatestDays::build(&self.days));
            let after = if lo_partial { lo } else { lo - 1 };
            let mut out = latest.after(after, within);
            out |= exact;
            return out;
        }
        let (whole_lo, whole_hi) = (
            lo + DayNumber::from(lo_partial),
            hi - DayNumber::from(hi_partial),
        );
        if whole_lo > whole_hi {
            return exact;
        }
        let tree = self
            .tree
            .get_or_init(|| DayTree::build(self.days.iter().map(|(d, b)| (*d, &b.members))));
        let cover = tree.cover(&self.days, whole_lo, whole_hi);
        let mut out = match within {
            None => cover.into_iter().union(),
            Some(w) => {
                let mut out = RoaringBitmap::new();
                for node in cover {
                    out |= node & w;
                }
                out
            }
        };
        out |= exact;
        out
    }

    /// Whether the day tree, where derived, holds exactly the unions of the day buckets
    /// (for `check`).
    pub(crate) fn tree_is_exact(&self) -> bool {
        if !self.latest.get().is_none_or(|l| l.is_exact(&self.days)) {
            return false;
        }
        self.tree
            .get()
            .is_none_or(|t| *t == DayTree::build(self.days.iter().map(|(d, b)| (*d, &b.members))))
    }

    /// The time of the latest entry before `t` and of the earliest at or after `t`
    /// (`None`: there is none). Reads only the entries of the days that hold them.
    /// Every window `[from', ..)` with `from'` in `(before, at_or_after]` holds exactly
    /// the entries `[t, ..)` holds (caches use this to keep a window's result while the
    /// evaluation time moves).
    pub fn neighbours(&self, t: Millis) -> (Option<Millis>, Option<Millis>) {
        let day = day_of(t);
        let time = |d: DayNumber, e: &Entry| i64::from(d) * MS_PER_DAY + i64::from(e.ms_of_day);
        let before = self.days.range(..=day).rev().find_map(|(d, b)| {
            b.entries()
                .iter()
                .map(|e| time(*d, e))
                .filter(|x| *x < t)
                .max()
        });
        let after = self.days.range(day..).find_map(|(d, b)| {
            b.entries()
                .iter()
                .map(|e| time(*d, e))
                .filter(|x| *x >= t)
                .min()
        });
        (before, after)
    }

    /// Whether any entry has a time in `[from, until)`.
    pub fn has_entries_between(&self, from: Millis, until: Millis) -> bool {
        from < until && self.neighbours(from).1.is_some_and(|x| x < until)
    }

    /// Count and sum per profile of the events in `range`.
    pub fn aggregate(&self, range: TimeRange) -> TotalsByProfile {
        if range.is_unbounded() {
            return self.totals().clone();
        }
        let lo = range.from.map(day_of).unwrap_or(DayNumber::MIN);
        let hi = range.until.map(|u| day_of(u - 1)).unwrap_or(DayNumber::MAX);
        let mut out: HashMap<u32, Totals, FastHash> = HashMap::default();
        if lo > hi {
            return out;
        }
        for (day, bucket) in self.days.range(lo..=hi) {
            let day_start = i64::from(*day) * MS_PER_DAY;
            for e in bucket.entries() {
                if range.contains(day_start + i64::from(e.ms_of_day)) {
                    let t = out.entry(e.pid).or_default();
                    t.count += 1;
                    t.sum += e.value;
                }
            }
        }
        out
    }

    /// Whether two series hold the same events (entry order within a day may differ).
    pub fn same_as(&self, other: &Series) -> bool {
        let sorted = |b: &DayBucket| {
            let mut v: Vec<_> = b
                .entries()
                .iter()
                .map(|e| (e.pid, e.ms_of_day, e.value.to_bits()))
                .collect();
            v.sort_unstable();
            v
        };
        self.any == other.any
            && self.days.len() == other.days.len()
            && self
                .days
                .iter()
                .zip(&other.days)
                .all(|((d1, b1), (d2, b2))| {
                    d1 == d2 && b1.members == b2.members && sorted(b1) == sorted(b2)
                })
            && self.totals().len() == other.totals().len()
            && self.totals().iter().all(|(p, t)| {
                other.totals().get(p).is_some_and(|o| {
                    o.count == t.count && (o.sum - t.sum).abs() <= 1e-6 * (1.0 + t.sum.abs())
                })
            })
    }
}

/// All event series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventIndex {
    /// Series by key.
    pub series: HashMap<EventKey, Series, FastHash>,
}

impl EventIndex {
    fn keys(event: &Event) -> impl Iterator<Item = EventKey> + '_ {
        let all = EventKey {
            kind: event.kind.clone(),
            category: None,
        };
        let narrowed = event.category.as_ref().map(|c| EventKey {
            kind: event.kind.clone(),
            category: Some(c.clone()),
        });
        std::iter::once(all).chain(narrowed)
    }

    /// Indexes events of `pid`.
    pub fn add(&mut self, pid: u32, events: &[Event]) {
        for e in events {
            for key in Self::keys(e) {
                self.series
                    .entry(key)
                    .or_default()
                    .add(pid, e.at, e.value.unwrap_or(0.0));
            }
        }
    }

    /// Removes events of `pid`.
    pub fn remove(&mut self, pid: u32, events: &[Event]) {
        for e in events {
            for key in Self::keys(e) {
                if let Some(s) = self.series.get_mut(&key) {
                    s.remove(pid, e.at, e.value.unwrap_or(0.0));
                    if s.any.is_empty() {
                        self.series.remove(&key);
                    }
                }
            }
        }
    }

    /// Removes every event of the given profiles.
    pub fn remove_profiles(&mut self, pids: &RoaringBitmap) {
        for s in self.series.values_mut() {
            s.remove_profiles(pids);
        }
        self.series.retain(|_, s| !s.any.is_empty());
    }

    /// Total indexed entries (each event counts once per key it is under).
    pub fn entries(&self) -> usize {
        self.series
            .values()
            .flat_map(|s| s.days.values())
            .map(DayBucket::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Cmp;
    use proptest::prelude::*;

    /// An index as an open reads it from a checkpoint (its days still packed).
    fn reopened(index: &EventIndex) -> EventIndex {
        let bytes = crate::storage::codec::encode(index);
        crate::storage::codec::decode("event index", &bytes).expect("decodes")
    }

    fn event(kind: &str, at: Millis, value: u8) -> Event {
        Event {
            kind: kind.into(),
            at,
            category: None,
            value: Some(f64::from(value)),
        }
    }

    proptest! {
        /// A reopened index (days still packed) lives on exactly as one built from the
        /// same events: through additions, removals and erasures, its entries, counts,
        /// totals and next checkpoint are those of an index built from the model.
        #[test]
        fn a_reopened_index_lives_on_as_one_built_from_its_events(
            initial in proptest::collection::vec((0u32..15, 0i64..(8 * MS_PER_DAY), 0u8..3, any::<bool>()), 0..80),
            ops in proptest::collection::vec((0u8..3, 0u32..15, 0i64..(8 * MS_PER_DAY), 0u8..3), 0..30),
        ) {
            let kind = |b: bool| if b { "buy" } else { "view" };
            let mut model: Vec<(u32, Event)> =
                initial.iter().map(|(p, at, v, b)| (*p, event(kind(*b), *at, *v))).collect();
            let mut built = EventIndex::default();
            for (pid, e) in &model {
                built.add(*pid, std::slice::from_ref(e));
            }
            let mut live = reopened(&built);
            for (op, pid, at, v) in ops {
                match op {
                    0 => {
                        let e = event(kind(at % 2 == 0), at, v);
                        live.add(pid, std::slice::from_ref(&e));
                        model.push((pid, e));
                    }
                    1 => {
                        if let Some(i) = model.iter().position(|(p, _)| *p == pid) {
                            let (p, e) = model.swap_remove(i);
                            live.remove(p, std::slice::from_ref(&e));
                        }
                    }
                    _ => {
                        live.remove_profiles(&std::iter::once(pid).collect());
                        model.retain(|(p, _)| *p != pid);
                    }
                }
            }
            let mut expected = EventIndex::default();
            for (pid, e) in &model {
                expected.add(*pid, std::slice::from_ref(e));
            }
            // As `check` compares (entry order within a day is not kept by removals).
            let same = |a: &EventIndex, b: &EventIndex| {
                a.series.len() == b.series.len()
                    && a.series.iter().all(|(k, s)| b.series.get(k).is_some_and(|o| s.same_as(o)))
            };
            prop_assert_eq!(live.entries(), expected.entries());
            prop_assert!(same(&live, &expected), "{:?}\n{:?}", live, expected);
            let again = reopened(&live);
            prop_assert_eq!(again.entries(), expected.entries());
            prop_assert!(same(&again, &expected));
        }
    }

    proptest! {
        #[test]
        fn range_queries_match_a_scan(events in proptest::collection::vec((0u32..20, 0i64..(10 * MS_PER_DAY), 0u8..3), 0..60),
                                      from in proptest::option::of(-MS_PER_DAY..(11 * MS_PER_DAY)),
                                      until in proptest::option::of(-MS_PER_DAY..(11 * MS_PER_DAY))) {
            let mut index = EventIndex::default();
            for (pid, at, v) in &events {
                index.add(*pid, &[Event { kind: "buy".into(), at: *at, category: None, value: Some(f64::from(*v)) }]);
            }
            let range = TimeRange { from, until };
            let inside: Vec<_> = events.iter().filter(|(_, at, _)| range.contains(*at)).collect();
            let expect: RoaringBitmap = inside.iter().map(|(p, _, _)| *p).collect();
            let key = EventKey { kind: "buy".into(), category: None };
            let members = index.series.get(&key).map(|s| s.members(range)).unwrap_or_default();
            prop_assert_eq!(members, expect);
            if let Some(s) = index.series.get(&key) {
                let agg = s.aggregate(range);
                for pid in 0..20u32 {
                    let n = inside.iter().filter(|(p, _, _)| *p == pid).count() as u32;
                    prop_assert_eq!(agg.get(&pid).map(|t| t.count).unwrap_or(0), n);
                }
            }
            if let Some(s) = index.series.get(&key) {
                for t in [from, until].into_iter().flatten() {
                    let (before, after) = s.neighbours(t);
                    let times = events.iter().map(|(_, at, _)| *at);
                    prop_assert_eq!(before, times.clone().filter(|x| *x < t).max());
                    prop_assert_eq!(after, times.clone().filter(|x| *x >= t).min());
                    if let (Some(f), Some(u)) = (from, until) {
                        prop_assert_eq!(s.has_entries_between(f, u), times.clone().any(|x| x >= f && x < u));
                    }
                }
            }
            // removing everything leaves nothing behind
            for (pid, at, v) in &events {
                index.remove(*pid, &[Event { kind: "buy".into(), at: *at, category: None, value: Some(f64::from(*v)) }]);
            }
            prop_assert!(index.series.is_empty());
        }

        /// The indexed aggregates (`select`) agree with a scan of the events under any mix
        /// of evaluations (windows to the millisecond, moving across day boundaries, open
        /// sides), additions, removals and erasures between them.
        #[test]
        fn aggregates_match_a_scan(
            initial in proptest::collection::vec((0u32..12, 0i64..(12 * MS_PER_DAY), 0usize..7), 0..80),
            steps in proptest::collection::vec((0u8..10, any::<u64>()), 1..40),
        ) {
            const VALUES: [f64; 7] = [0.0, 1.5, 2.0, -1.0, 10.0, 0.25, 100.0];
            const SUMS: [f64; 8] = [0.0, 1.5, 2.0, 3.5, 10.0, 11.5, -1.0, 100.0];
            let kind: crate::input::record::ShortText = "buy".into();
            let key = EventKey { kind: kind.clone(), category: None };
            let ev = |at: i64, v: f64| Event { kind: kind.clone(), at, category: None, value: Some(v) };
            let mut index = EventIndex::default();
            let mut live: Vec<(u32, i64, f64)> = Vec::new();
            for (pid, at, v) in &initial {
                // Some events exactly on midnight or one millisecond off it.
                let at = match at % 5 { 0 => at / MS_PER_DAY * MS_PER_DAY, 1 => at / MS_PER_DAY * MS_PER_DAY - 1, _ => *at };
                index.add(*pid, &[ev(at, VALUES[*v])]);
                live.push((*pid, at, VALUES[*v]));
            }
            let mut now = 6 * MS_PER_DAY;
            for (what, r) in steps {
                let pick = |n: u64, shift: u32| ((r >> shift) % n) as i64;
                match what {
                    0 => {
                        let (pid, at, v) = (pick(12, 0) as u32, pick(12 * MS_PER_DAY as u64, 8), VALUES[pick(7, 50) as usize]);
                        index.add(pid, &[ev(at, v)]);
                        live.push((pid, at, v));
                    }
                    1 if !live.is_empty() => {
                        let (pid, at, v) = live.swap_remove(pick(live.len() as u64, 0) as usize);
                        index.remove(pid, &[ev(at, v)]);
                    }
                    2 => {
                        let gone: RoaringBitmap = [pick(12, 0) as u32, pick(12, 8) as u32].into_iter().collect();
                        index.remove_profiles(&gone);
                        live.retain(|(p, _, _)| !gone.contains(*p));
                    }
                    3 => now += pick(3 * MS_PER_DAY as u64, 0) - MS_PER_DAY,
                    4 => now = now / MS_PER_DAY * MS_PER_DAY + [0, 1, -1][pick(3, 0) as usize],
                    _ => {
                        let days = [1, 3, 7][pick(3, 0) as usize];
                        let range = match pick(5, 4) {
                            0 => TimeRange::default(),
                            1 => TimeRange { from: Some(now - days * MS_PER_DAY), until: None },
                            2 => TimeRange { from: None, until: Some(now) },
                            3 => TimeRange { from: Some(now - pick(MS_PER_DAY as u64 * 2, 12)), until: Some(now) },
                            _ => TimeRange { from: Some(now - days * MS_PER_DAY), until: Some(now) },
                        };
                        let op = |s: u32| [Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge][pick(6, s) as usize];
                        let mut filters = Vec::new();
                        if pick(3, 20) > 0 {
                            filters.push(AggFilter::Count(op(24), pick(5, 28) as u64));
                        }
                        if pick(3, 32) > 0 {
                            filters.push(AggFilter::Sum(op(36), crate::index::scale_number(SUMS[pick(8, 40) as usize])));
                        }
                        let mut by_pid: BTreeMap<u32, (i64, f64)> = BTreeMap::new();
                        for (p, at, v) in &live {
                            if range.contains(*at) {
                                let t = by_pid.entry(*p).or_default();
                                t.0 += 1;
                                t.1 += v;
                            }
                        }
                        let want: RoaringBitmap = by_pid
                            .iter()
                            .filter(|(_, (c, s))| filters.iter().all(|f| match *f {
                                AggFilter::Count(op, n) => op.holds(*c, n as i64),
                                AggFilter::Sum(op, x) => op.holds(crate::index::scale_number(*s), x),
                            }))
                            .map(|(p, _)| *p)
                            .collect();
                        let got = index.series.get(&key).map(|s| s.select(range, &filters).expect("values on the grid")).unwrap_or_default();
                        prop_assert_eq!(got, want, "{:?} {:?}", range, filters);
                    }
                }
                if let Some(s) = index.series.get(&key) {
                    let problems = s.aggregate_problems();
                    prop_assert!(problems.is_empty(), "{:?}", problems);
                }
            }
        }
    }

    #[test]
    fn a_sum_over_values_off_the_grid_falls_back() {
        let mut index = EventIndex::default();
        let ev = |v: f64| Event {
            kind: "buy".into(),
            at: 5,
            category: None,
            value: Some(v),
        };
        index.add(1, &[ev(0.0004), ev(0.0004)]);
        let s = index.series.values().next().unwrap();
        let sum = [AggFilter::Sum(Cmp::Ge, 1)];
        assert_eq!(s.select(TimeRange::default(), &sum), None);
        let count = [AggFilter::Count(Cmp::Ge, 2)];
        assert_eq!(s.select(TimeRange::default(), &count).unwrap().len(), 1);
    }
    proptest! {
        /// Windowed existence through the day tree equals a scan, before and after events
        /// are added and removed and profiles erased once the tree is derived; windows
        /// start and end anywhere (to the millisecond) across spans wider than its top.
        #[test]
        fn existence_windows_match_a_scan_through_updates(
            seed in proptest::collection::vec((0u32..40, -300i64..3000, 0i64..MS_PER_DAY), 0..200),
            later in proptest::collection::vec((0u8..3, 0u32..40, -300i64..3000, 0i64..MS_PER_DAY), 0..80),
            windows in proptest::collection::vec((proptest::option::of(-400i64..3100), proptest::option::of(-400i64..3100), prop_oneof![Just(0i64), Just(MS_PER_DAY - 1), 0i64..MS_PER_DAY]), 1..12),
        ) {
            let event = |day: i64, ms: i64| Event { kind: "visit".into(), at: day * MS_PER_DAY + ms, category: None, value: None };
            let mut index = EventIndex::default();
            let mut model: Vec<(u32, Millis)> = Vec::new();
            for (pid, day, ms) in seed {
                index.add(pid, &[event(day, ms)]);
                model.push((pid, day * MS_PER_DAY + ms));
            }
            let key = EventKey { kind: "visit".into(), category: None };
            let within: RoaringBitmap = (0..40).filter(|p| p % 3 != 1).collect();
            let check = |index: &EventIndex, model: &[(u32, Millis)]| -> Result<(), TestCaseError> {
                for (from, until, ms) in &windows {
                    let range = TimeRange {
                        from: from.map(|d| d * MS_PER_DAY + ms),
                        until: until.map(|d| d * MS_PER_DAY + (MS_PER_DAY - ms)),
                    };
                    let expect: RoaringBitmap = model.iter().filter(|(_, at)| range.contains(*at)).map(|(p, _)| *p).collect();
                    let series = index.series.get(&key);
                    prop_assert_eq!(series.map(|s| s.members(range)).unwrap_or_default(), expect.clone());
                    prop_assert_eq!(series.map(|s| s.members_within(range, &within)).unwrap_or_default(), expect & &within);
                    prop_assert!(series.is_none_or(|s| s.tree_is_exact()));
                }
                Ok(())
            };
            check(&index, &model)?;
            for (op, pid, day, ms) in later {
                match op {
                    0 => {
                        index.add(pid, &[event(day, ms)]);
                        model.push((pid, day * MS_PER_DAY + ms));
                    }
                    1 => {
                        if let Some(pos) = model.iter().position(|(p, _)| *p == pid) {
                            let (p, at) = model.swap_remove(pos);
                            index.remove(p, &[Event { kind: "visit".into(), at, category: None, value: None }]);
                        }
                    }
                    _ => {
                        let gone: RoaringBitmap = (pid..pid + 3).collect();
                        index.remove_profiles(&gone);
                        model.retain(|(p, _)| !gone.contains(*p));
                    }
                }
            }
            check(&index, &model)?;
        }
    }
}
