//! Answers kept while the database does not change, for servers that answer the same
//! questions repeatedly (dashboards, load balancers' probes of a segment): `Segments::with_cache`.
//!
//! Two levels, both belonging to one snapshot generation ([`engine::Engine::generation`],
//! moved on by every change a reader can see: ingest, erasure, suppression lists, models,
//! saved segments) and emptied when the generation moves on:
//!
//! - **Leaves**: results of the expensive leaves of plans (bit-sliced ranges, event
//!   queries), keyed by the resolved operation, so two plans share a result only when they
//!   ask exactly the same thing. An event window's start is keyed by the earliest event of
//!   its series at or after it (a window starting anywhere between two events holds the
//!   same events), so `within 365d` evaluated now, whose start moves every millisecond,
//!   finds its result until an event leaves the window.
//! - **Counts**: a whole count, keyed by the expression text and the expression limits,
//!   holding the evaluation times it is exact for (`Plan::valid`: the same day for `age`,
//!   no event crossing a `within` window's start). A repeated count is one hash lookup,
//!   without parsing, planning or taking the state lock ([`LeafCache::count`]).

use crate::ir::Op;
use crate::limits::Limits;
use engine::Millis;
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Leaf results kept before the leaves start over.
const MAX_ENTRIES: usize = 4096;
/// Counts kept before the counts start over.
const MAX_COUNTS: usize = 4096;
/// Counts kept per expression (for as many evaluation-time intervals; the oldest goes).
const COUNTS_PER_EXPR: usize = 4;

/// A result cache for one engine. Share it (it is `Sync`) between the `Segments` of one
/// database; never between databases.
#[derive(Debug, Default)]
pub struct LeafCache {
    inner: Mutex<Inner>,
}

/// A count and where it holds.
#[derive(Debug, Clone)]
struct Count {
    limits: Limits,
    valid: Range<Millis>,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    map: HashMap<String, Arc<RoaringBitmap>>,
    /// Counts by expression text.
    counts: HashMap<String, Vec<Count>>,
    n_counts: usize,
    hits: u64,
    misses: u64,
    count_hits: u64,
    count_misses: u64,
}

impl Inner {
    /// Whether entries of `generation` may be read or kept: moves the cache on to a newer
    /// generation (emptying it); an older one (a reader that started before a change) is
    /// neither served nor kept.
    fn at(&mut self, generation: u64) -> bool {
        if generation > self.generation {
            self.map.clear();
            self.counts.clear();
            self.n_counts = 0;
            self.generation = generation;
        }
        generation == self.generation
    }
}

impl LeafCache {
    /// An empty cache.
    pub fn new() -> Self {
        LeafCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (hits, misses) of leaf results so far.
    pub fn stats(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.hits, inner.misses)
    }

    /// (hits, misses) of whole counts so far.
    pub fn count_stats(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.count_hits, inner.count_misses)
    }

    /// The count of `expr` under `limits` evaluated at `at` on the state of generation
    /// `generation` (pass [`engine::Engine::generation`] read now), if it is kept. Never
    /// waits for the engine; holds the cache's lock for one hash lookup.
    pub fn count(&self, generation: u64, limits: &Limits, expr: &str, at: Millis) -> Option<u64> {
        let mut inner = self.lock();
        let found = if inner.at(generation) {
            inner.counts.get(expr).and_then(|v| {
                v.iter()
                    .find(|c| c.limits == *limits && c.valid.contains(&at))
                    .map(|c| c.count)
            })
        } else {
            None
        };
        if found.is_some() {
            inner.count_hits += 1;
        } else {
            inner.count_misses += 1;
        }
        found
    }

    /// Keeps the count of `expr` under `limits`, exact at every evaluation time in `valid`
    /// on the state of generation `generation` (the snapshot's it was counted on).
    pub(crate) fn put_count(
        &self,
        generation: u64,
        limits: Limits,
        expr: &str,
        valid: Range<Millis>,
        count: u64,
    ) {
        let mut inner = self.lock();
        if !inner.at(generation) {
            return;
        }
        if inner.n_counts >= MAX_COUNTS {
            inner.counts.clear();
            inner.n_counts = 0;
        }
        let entry = Count {
            limits,
            valid,
            count,
        };
        let added = match inner.counts.get_mut(expr) {
            Some(v) => {
                if v.len() >= COUNTS_PER_EXPR {
                    v.remove(0);
                    v.push(entry);
                    false
                } else {
                    v.push(entry);
                    true
                }
            }
            None => {
                inner.counts.insert(expr.to_string(), vec![entry]);
                true
            }
        };
        if added {
            inner.n_counts += 1;
        }
    }

    fn get(&self, generation: u64, key: &str) -> Option<Arc<RoaringBitmap>> {
        let mut inner = self.lock();
        let found = if inner.at(generation) {
            inner.map.get(key).cloned()
        } else {
            None
        };
        if found.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        found
    }

    fn put(&self, generation: u64, key: String, bits: Arc<RoaringBitmap>) {
        let mut inner = self.lock();
        if !inner.at(generation) {
            return;
        }
        if inner.map.len() >= MAX_ENTRIES {
            inner.map.clear();
        }
        inner.map.insert(key, bits);
    }

    /// The result of the resolved leaf `op` in snapshot generation `generation`: cached,
    /// or computed by `compute` and kept. `key` is `op` in canonical form (see
    /// `segments.rs`: an event window's start moved to the first event it holds).
    pub(crate) fn leaf(
        &self,
        generation: u64,
        key: &Op,
        compute: impl FnOnce() -> RoaringBitmap,
    ) -> Arc<RoaringBitmap> {
        let key = format!("{key:?}");
        match self.get(generation, &key) {
            Some(bits) => bits,
            None => {
                let bits = Arc::new(compute());
                self.put(generation, key, bits.clone());
                bits
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hold_for_their_generation_and_times_only() {
        let cache = LeafCache::new();
        let limits = Limits::default();
        cache.put_count(2, limits, "ALL", 10..20, 7);
        assert_eq!(cache.count(2, &limits, "ALL", 10), Some(7));
        assert_eq!(cache.count(2, &limits, "ALL", 19), Some(7));
        assert_eq!(cache.count(2, &limits, "ALL", 20), None);
        assert_eq!(cache.count(2, &limits, "ALL", 9), None);
        assert_eq!(cache.count(2, &limits, "all", 10), None);
        let other = Limits {
            max_bytes: 10,
            ..limits
        };
        assert_eq!(cache.count(2, &other, "ALL", 10), None);
        // A reader that read an older generation is not served, and does not empty it.
        assert_eq!(cache.count(1, &limits, "ALL", 10), None);
        cache.put_count(1, limits, "ALL", 0..100, 1);
        assert_eq!(cache.count(2, &limits, "ALL", 10), Some(7));
        assert_eq!(cache.count(2, &limits, "ALL", 50), None);
        // A newer generation empties it.
        assert_eq!(cache.count(3, &limits, "ALL", 10), None);
        assert_eq!(cache.count(2, &limits, "ALL", 10), None);
        assert_eq!(cache.count_stats(), (3, 8));
    }
}
