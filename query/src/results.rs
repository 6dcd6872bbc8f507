//! What an evaluated segment offers: count, paged ids, a deterministic sample, breakdowns
//! and overlaps, all computed from bitmaps.

use engine::{Indexes, Millis, Term};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use roaring::RoaringBitmap;
use std::collections::BTreeSet;

/// The members of an evaluated segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub(crate) members: RoaringBitmap,
    pub(crate) at: Millis,
}

impl Segment {
    /// Number of members.
    pub fn count(&self) -> u64 {
        self.members.len()
    }

    /// The members as a bitmap of profile ids.
    pub fn bitmap(&self) -> &RoaringBitmap {
        &self.members
    }

    /// The members, consuming the segment.
    pub fn into_bitmap(self) -> RoaringBitmap {
        self.members
    }

    /// The evaluation time it was computed at.
    pub fn at(&self) -> Millis {
        self.at
    }

    /// Up to `limit` member ids in ascending order, starting after `after` (a page cursor:
    /// pass the last id of the previous page).
    pub fn ids(&self, after: Option<u32>, limit: usize) -> Vec<u32> {
        let mut it = self.members.iter();
        match after {
            Some(u32::MAX) => return Vec::new(),
            Some(a) => it.advance_to(a + 1),
            None => {}
        }
        it.take(limit).collect()
    }

    /// A deterministic sample of `k` members (all when fewer), in ascending order: the same
    /// set and seed always give the same sample.
    pub fn sample(&self, k: usize, seed: u64) -> Vec<u32> {
        let n = self.members.len();
        let k = (k as u64).min(n);
        // Floyd's algorithm: k distinct ranks in [0, n) with k draws.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ranks = BTreeSet::new();
        for j in n - k..n {
            let t = rand::Rng::gen_range(&mut rng, 0..=j);
            if !ranks.insert(t) {
                ranks.insert(j);
            }
        }
        ranks
            .into_iter()
            .filter_map(|r| u32::try_from(r).ok().and_then(|r| self.members.select(r)))
            .collect()
    }
}

/// One value of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueCount {
    /// The value, as indexed (trimmed, NFC, lower-cased).
    pub value: String,
    /// Members with that value.
    pub count: u64,
}

/// The top values of a field within a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    /// The field.
    pub field: String,
    /// Members of the segment.
    pub members: u64,
    /// Members without a value for the field.
    pub missing: u64,
    /// Distinct values among the members.
    pub distinct: usize,
    /// The most frequent values, most frequent first (ties by value).
    pub values: Vec<ValueCount>,
}

/// Counts each value of `field` within `members` by bitmap intersection cardinalities.
pub(crate) fn breakdown(
    ix: &Indexes,
    members: &RoaringBitmap,
    field: &str,
    top: usize,
) -> Breakdown {
    let mut values: Vec<ValueCount> = ix
        .values_of(field)
        .map(|(v, b)| ValueCount {
            value: v.to_string(),
            count: members.intersection_len(b),
        })
        .filter(|v| v.count > 0)
        .collect();
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    let distinct = values.len();
    values.truncate(top);
    let with_value = members.intersection_len(ix.term(&Term::Exists(field.into())));
    Breakdown {
        field: field.to_string(),
        members: members.len(),
        missing: members.len() - with_value,
        distinct,
        values,
    }
}

/// Pairwise overlaps of several segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// Each segment's size.
    pub counts: Vec<u64>,
    /// `matrix[i][j]`: members in both segment i and segment j (the diagonal is `counts`).
    pub matrix: Vec<Vec<u64>>,
}

pub(crate) fn overlap(sets: &[RoaringBitmap]) -> Overlap {
    let n = sets.len();
    let mut matrix = vec![vec![0; n]; n];
    for i in 0..n {
        matrix[i][i] = sets[i].len();
        for j in i + 1..n {
            let both = sets[i].intersection_len(&sets[j]);
            matrix[i][j] = both;
            matrix[j][i] = both;
        }
    }
    Overlap {
        counts: sets.iter().map(|s| s.len()).collect(),
        matrix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(ids: impl IntoIterator<Item = u32>) -> Segment {
        Segment {
            members: ids.into_iter().collect(),
            at: 0,
        }
    }

    #[test]
    fn ids_page_with_a_cursor() {
        let s = seg([1, 5, 9, 12, 40]);
        assert_eq!(s.ids(None, 2), vec![1, 5]);
        assert_eq!(s.ids(Some(5), 2), vec![9, 12]);
        assert_eq!(s.ids(Some(12), 10), vec![40]);
        assert_eq!(s.ids(Some(40), 10), Vec::<u32>::new());
        assert_eq!(s.ids(Some(u32::MAX), 10), Vec::<u32>::new());
    }

    #[test]
    fn samples_are_deterministic_distinct_members() {
        let s = seg((0..10_000).map(|i| i * 3));
        let a = s.sample(50, 7);
        assert_eq!(a, s.sample(50, 7));
        assert_ne!(a, s.sample(50, 8));
        assert_eq!(a.len(), 50);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|p| s.members.contains(*p)));
        assert_eq!(seg([4, 2]).sample(10, 1), vec![2, 4]);
        assert!(seg([]).sample(3, 1).is_empty());
    }

    #[test]
    fn overlap_matrix_is_symmetric() {
        let sets = [
            (0..10).collect::<RoaringBitmap>(),
            (5..20).collect(),
            (100..101).collect(),
        ];
        let o = overlap(&sets);
        assert_eq!(o.counts, vec![10, 15, 1]);
        assert_eq!(o.matrix[0][1], 5);
        assert_eq!(o.matrix[1][0], 5);
        assert_eq!(o.matrix[0][2], 0);
        assert_eq!(o.matrix[2][2], 1);
    }
}
