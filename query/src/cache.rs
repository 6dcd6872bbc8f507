//! Results of the expensive leaves of plans (bit-sliced ranges, event queries), kept while
//! the database does not change, for servers that answer the same questions repeatedly
//! (dashboards): `Segments::with_cache`. The cache only maps resolved leaves to bitmaps;
//! `segments.rs` replaces a plan's leaves by their cached results.
//!
//! A leaf's key is its resolved operation (field, bounds already computed from the
//! evaluation time, event filters), so two plans share a result only when they ask
//! exactly the same thing; every entry belongs to one snapshot generation and the cache
//! is emptied when the generation moves on.

use crate::ir::Op;
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 4096;

/// A leaf-result cache for one engine. Share it (it is `Sync`) between the `Segments` of
/// one database; never between databases.
#[derive(Debug, Default)]
pub struct LeafCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    map: HashMap<String, Arc<RoaringBitmap>>,
    hits: u64,
    misses: u64,
}

impl LeafCache {
    /// An empty cache.
    pub fn new() -> Self {
        LeafCache::default()
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.hits, inner.misses)
    }

    fn get(&self, generation: u64, key: &str) -> Option<Arc<RoaringBitmap>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            inner.map.clear();
            inner.generation = generation;
        }
        let found = inner.map.get(key).cloned();
        if found.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        found
    }

    fn put(&self, generation: u64, key: String, bits: Arc<RoaringBitmap>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.map.len() >= MAX_ENTRIES {
            inner.map.clear();
        }
        inner.map.insert(key, bits);
    }

    /// The result of the resolved leaf `op` in snapshot generation `generation`: cached,
    /// or computed by `compute` and kept.
    pub(crate) fn leaf(
        &self,
        generation: u64,
        op: &Op,
        compute: impl FnOnce() -> RoaringBitmap,
    ) -> Arc<RoaringBitmap> {
        let key = format!("{op:?}");
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
