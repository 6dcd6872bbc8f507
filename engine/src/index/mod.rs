//! In-memory roaring-bitmap indexes over live profiles: equality bitmaps per term,
//! bit-sliced indexes for numbers and dates, and the event index. Persisted as a
//! checkpoint file plus the set of profiles changed since (see `checkpoint`).

mod aggregates;
mod bsi;
mod checkpoint;
mod day_tree;
mod events;
mod latest_day;
mod packed_entries;
mod postings;
mod range;
pub(crate) mod suppression;

pub use aggregates::AggFilter;
pub use bsi::{set_range_slices_threshold, Bsi, Cmp};
pub(crate) use checkpoint::{read_checkpoint, write_checkpoint};
pub use events::{EventIndex, EventKey, Series, TimeRange, Totals};
pub use postings::{
    bool_text, scale_number, NumericKey, NumericKind, Postings, Term, ValueKind, NUMBER_SCALE,
};

use crate::input::record::Event;
use postings::sorted_minus;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Lowest base for a new bit-sliced index of numbers (scaled) and dates (day numbers);
/// keeps rebases rare for ordinary data.
const NUMBER_FLOOR: i64 = 0;
const DATE_FLOOR: i64 = -25_567; // 1900-01-01

/// The hasher of the term and number maps: foldhash, seeded per map (so keys taken from
/// data cannot be chosen to collide), instead of SipHash, whose hashing of every posting's
/// term was about 4% of a 1M-person import's CPU.
type FastHash = foldhash::fast::RandomState;

/// Every index of the database.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Indexes {
    terms: HashMap<Term, RoaringBitmap, FastHash>,
    numbers: HashMap<NumericKey, Bsi, FastHash>,
    events: EventIndex,
}

static EMPTY: std::sync::LazyLock<RoaringBitmap> = std::sync::LazyLock::new(RoaringBitmap::new);

impl Indexes {
    /// The bitmap of a term (empty when unknown).
    pub fn term(&self, term: &Term) -> &RoaringBitmap {
        self.terms.get(term).unwrap_or(&EMPTY)
    }

    /// The equality bitmaps of one attribute: (normalized value, profiles), in no order.
    pub fn values_of<'a>(
        &'a self,
        field: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a RoaringBitmap)> + 'a {
        self.terms.iter().filter_map(move |(t, b)| match t {
            Term::Eq(f, v) if f == field => Some((v.as_str(), b)),
            _ => None,
        })
    }

    /// The kinds of value an attribute holds in live profiles (empty for an unknown field).
    pub fn field_kinds(&self, field: &str) -> Vec<ValueKind> {
        [
            ValueKind::Text,
            ValueKind::Number,
            ValueKind::Bool,
            ValueKind::Date,
            ValueKind::List,
        ]
        .into_iter()
        .filter(|k| self.terms.contains_key(&Term::Kind(field.into(), *k)))
        .collect()
    }

    /// Every live profile.
    pub fn live(&self) -> &RoaringBitmap {
        self.term(&Term::Live)
    }

    /// All terms whose bitmap is not empty.
    pub fn terms(&self) -> impl Iterator<Item = (&Term, &RoaringBitmap)> {
        self.terms.iter()
    }

    /// The bit-sliced index of a numeric field.
    pub fn numeric(&self, key: &NumericKey) -> Option<&Bsi> {
        self.numbers.get(key)
    }

    /// All bit-sliced indexes.
    pub fn numerics(&self) -> impl Iterator<Item = (&NumericKey, &Bsi)> {
        self.numbers.iter()
    }

    /// The event index.
    pub fn events(&self) -> &EventIndex {
        &self.events
    }

    /// Adds `source` to the sources of live profile `pid` (a record from it that only
    /// added events; nothing else of its postings changes).
    pub fn add_source(&mut self, pid: u32, source: &str) {
        self.split_events().1.add_source(pid, source);
    }

    /// Moves `pid` from `old` postings to `new` postings, touching only what differs.
    pub fn update(&mut self, pid: u32, old: Option<&Postings>, new: Option<&Postings>) {
        self.split_events().1.update(pid, old, new);
    }

    /// The event index and the postings' indexes, borrowed apart: they share no data, so
    /// a large batch updates them on two threads.
    pub(crate) fn split_events(&mut self) -> (&mut EventIndex, PostingIndexes<'_>) {
        (
            &mut self.events,
            PostingIndexes {
                terms: &mut self.terms,
                numbers: &mut self.numbers,
            },
        )
    }

    /// Indexes events of `pid`.
    pub fn add_events(&mut self, pid: u32, events: &[Event]) {
        self.events.add(pid, events);
    }

    /// Unindexes events of `pid`.
    pub fn remove_events(&mut self, pid: u32, events: &[Event]) {
        self.events.remove(pid, events);
    }

    /// Removes the given profiles from every index (one pass over all bitmaps); used to
    /// replay changes after a crash.
    pub fn remove_profiles(&mut self, pids: &RoaringBitmap) {
        self.terms.retain(|_, b| {
            *b -= pids;
            !b.is_empty()
        });
        self.numbers.retain(|_, bsi| {
            bsi.remove_all(pids);
            !bsi.exists().is_empty()
        });
        self.events.remove_profiles(pids);
    }

    /// Describes every difference from `other` (empty when equal).
    pub fn differences(&self, other: &Indexes) -> Vec<String> {
        let mut out = Vec::new();
        for (term, b) in &self.terms {
            let o = other.term(term);
            if b != o {
                out.push(format!(
                    "term {term:?}: {} here, {} in rebuild",
                    b.len(),
                    o.len()
                ));
            }
        }
        for (term, b) in &other.terms {
            if !self.terms.contains_key(term) {
                out.push(format!(
                    "term {term:?}: missing here, {} in rebuild",
                    b.len()
                ));
            }
        }
        for (key, bsi) in &self.numbers {
            // Derive the value buckets where a range has not yet, so they are checked too.
            bsi.warm();
            match other.numbers.get(key) {
                Some(o) if bsi.same_values(o) => {}
                _ => out.push(format!("numeric index {key:?} differs")),
            }
        }
        for key in other.numbers.keys() {
            if !self.numbers.contains_key(key) {
                out.push(format!("numeric index {key:?} missing here"));
            }
        }
        for (key, s) in &self.events.series {
            out.extend(
                s.aggregate_problems()
                    .into_iter()
                    .map(|p| format!("event series {key:?}: {p}")),
            );
            match other.events.series.get(key) {
                Some(o) if s.same_as(o) => {}
                _ => out.push(format!("event series {key:?} differs")),
            }
            if !s.tree_is_exact() {
                out.push(format!(
                    "event series {key:?}: day tree differs from its days"
                ));
            }
        }
        for key in other.events.series.keys() {
            if !self.events.series.contains_key(key) {
                out.push(format!("event series {key:?} missing here"));
            }
        }
        out.sort();
        out
    }

    /// Sizes for `stats`.
    pub fn sizes(&self) -> IndexSizes {
        IndexSizes {
            term_bitmaps: self.terms.len(),
            term_bytes: self.terms.values().map(|b| b.serialized_size()).sum(),
            numeric_indexes: self.numbers.len(),
            numeric_slices: self.numbers.values().map(Bsi::depth).sum(),
            event_keys: self.events.series.len(),
            event_entries: self.events.entries(),
        }
    }
}

/// Index sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IndexSizes {
    /// Equality bitmaps.
    pub term_bitmaps: usize,
    /// Their serialized size in bytes.
    pub term_bytes: usize,
    /// Bit-sliced indexes.
    pub numeric_indexes: usize,
    /// Slices across them.
    pub numeric_slices: usize,
    /// Event keys.
    pub event_keys: usize,
    /// Indexed event entries.
    pub event_entries: usize,
}

/// The indexes a profile's postings feed (term bitmaps, bit-sliced numbers), borrowed
/// apart from the event index ([`Indexes::split_events`]).
pub(crate) struct PostingIndexes<'a> {
    terms: &'a mut HashMap<Term, RoaringBitmap, FastHash>,
    numbers: &'a mut HashMap<NumericKey, Bsi, FastHash>,
}

impl PostingIndexes<'_> {
    /// Adds `source` to the sources of live profile `pid` (a record from it that only
    /// added events; nothing else of its postings changes).
    pub(crate) fn add_source(&mut self, pid: u32, source: &str) {
        let term = postings::Term::Source(source.into());
        match self.terms.get_mut(&term) {
            Some(bitmap) => {
                bitmap.insert(pid);
            }
            None => {
                self.terms.insert(term, RoaringBitmap::from_iter([pid]));
            }
        }
    }

    /// Moves `pid` from `old` postings to `new` postings, touching only what differs.
    pub(crate) fn update(&mut self, pid: u32, old: Option<&Postings>, new: Option<&Postings>) {
        let empty = Postings::default();
        let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        for term in sorted_minus(&old.terms, &new.terms) {
            if let Some(b) = self.terms.get_mut(term) {
                b.remove(pid);
                if b.is_empty() {
                    self.terms.remove(term);
                }
            }
        }
        for term in sorted_minus(&new.terms, &old.terms) {
            // Look up before inserting: most terms exist, and cloning a key allocates.
            match self.terms.get_mut(term) {
                Some(bitmap) => {
                    bitmap.insert(pid);
                }
                None => {
                    self.terms
                        .insert(term.clone(), RoaringBitmap::from_iter([pid]));
                }
            }
        }
        for (key, _) in sorted_minus(&old.numbers, &new.numbers) {
            if !new.numbers.iter().any(|(k, _)| k == key) {
                if let Some(bsi) = self.numbers.get_mut(key) {
                    bsi.remove(pid);
                    if bsi.exists().is_empty() {
                        self.numbers.remove(key);
                    }
                }
            }
        }
        for (key, value) in sorted_minus(&new.numbers, &old.numbers) {
            let floor = match key.kind {
                NumericKind::Number => NUMBER_FLOOR.min(*value),
                NumericKind::Date => DATE_FLOOR.min(*value),
            };
            match self.numbers.get_mut(key) {
                Some(bsi) => bsi.insert(pid, *value),
                None => {
                    let mut bsi = Bsi::new(floor);
                    bsi.insert(pid, *value);
                    self.numbers.insert(key.clone(), bsi);
                }
            }
        }
    }
}
