//! Results of the expensive leaves of plans (bit-sliced ranges, event queries), kept while
//! the database does not change, for servers that answer the same questions repeatedly
//! (dashboards): `Segments::with_cache`.
//!
//! A leaf's key is its resolved operation (field, bounds already computed from the
//! evaluation time, event filters), so two plans share a result only when they ask
//! exactly the same thing; every entry belongs to one snapshot generation and the cache
//! is emptied when the generation moves on.

use crate::eval::Evaluator;
use crate::plan::{Node, Op};
use engine::Indexes;
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

    /// Replaces every range and event leaf of `node` by its (cached or computed) result.
    pub(crate) fn materialize(&self, node: &mut Node, ix: &Indexes, generation: u64) {
        match &mut node.op {
            Op::Range { .. } | Op::Event(_) => {
                let key = format!("{:?}", node.op);
                let bits = match self.get(generation, &key) {
                    Some(bits) => bits,
                    None => {
                        let bits = Arc::new(Evaluator::new(ix).eval(node).into_owned());
                        self.put(generation, key, bits.clone());
                        bits
                    }
                };
                let what = crate::explain::label(&node.op);
                node.estimate = bits.len();
                node.op = Op::Bitmap { what, bits };
            }
            Op::And(children) | Op::Or(children) => {
                for c in children {
                    self.materialize(c, ix, generation);
                }
            }
            Op::AndNot { all, but_not } => {
                for c in all.iter_mut().chain(but_not.iter_mut()) {
                    self.materialize(c, ix, generation);
                }
            }
            Op::Not(inner) | Op::Segment { inner, .. } => self.materialize(inner, ix, generation),
            Op::Empty | Op::All | Op::Term(_) | Op::NumericExists(_) | Op::Bitmap { .. } => {}
        }
    }
}
