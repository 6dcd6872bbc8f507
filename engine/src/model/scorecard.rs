//! A trained model: its features with their weights, and the percentile cut-offs of the
//! population at training time. Scoring is a pure function of the indexes and the model,
//! done two ways that give identical numbers: for every profile at once (feature bitmaps,
//! features added in order) and for one profile (the same sum, in the same order).

use super::features::Feature;
use super::report::ModelReport;
use super::scores::ScoreIndex;
use crate::base::time::Millis;
use crate::index::Indexes;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

/// Percentiles run from 0 to this (100 = most like the seed).
pub const MAX_PERCENTILE: i64 = 100;

/// A trained, explainable model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Its name.
    pub name: String,
    /// The features used, with their readable labels.
    pub features: Vec<(Feature, String)>,
    /// One weight per feature: how much having it adds to the log-odds of looking like
    /// the seed.
    pub weights: Vec<f64>,
    /// The log-odds of a profile with none of the features.
    pub intercept: f64,
    /// `cutoffs[k - 1]`: the smallest raw score at least `k` % of the population scored
    /// at most, for `k` in 1..=100. A profile's percentile is how many it reaches.
    pub cutoffs: Vec<f64>,
    /// What event windows and ages are relative to (ms).
    pub as_of: Millis,
    /// The training report.
    pub report: ModelReport,
}

impl Model {
    /// The raw score (log-odds) of one profile.
    pub fn raw_score(&self, ix: &Indexes, pid: u32) -> f64 {
        let one: RoaringBitmap = std::iter::once(pid).collect();
        self.raw_scores_among(ix, &one)
            .first()
            .map_or(self.intercept, |(_, s)| *s)
    }

    /// Raw scores of the profiles of `among`, in id order: each feature is evaluated as a
    /// bitmap restricted to them (rescoring what a batch changed).
    pub fn raw_scores_among(&self, ix: &Indexes, among: &RoaringBitmap) -> Vec<(u32, f64)> {
        let mut scores: Vec<(u32, f64)> = among.iter().map(|p| (p, self.intercept)).collect();
        for ((feature, _), weight) in self.features.iter().zip(&self.weights) {
            for pid in feature.members_among(ix, among) {
                let at = (among.rank(pid) - 1) as usize;
                scores[at].1 += weight;
            }
        }
        scores
    }

    /// Raw scores of every profile in `among`, indexed by profile id (others hold the
    /// intercept).
    pub fn raw_scores(&self, ix: &Indexes, among: &RoaringBitmap) -> Vec<f64> {
        let members: Vec<RoaringBitmap> =
            self.features.iter().map(|(f, _)| f.members(ix)).collect();
        self.raw_scores_from(&members, among)
    }

    /// [`Model::raw_scores`] from the features' members, computed already (in feature
    /// order).
    pub(crate) fn raw_scores_from(
        &self,
        members: &[RoaringBitmap],
        among: &RoaringBitmap,
    ) -> Vec<f64> {
        let len = among.max().map_or(0, |m| m as usize + 1);
        let mut scores = vec![self.intercept; len];
        for (bits, weight) in members.iter().zip(&self.weights) {
            for pid in bits & among {
                scores[pid as usize] += weight;
            }
        }
        scores
    }

    /// The percentile (0-100) of a raw score.
    pub fn percentile(&self, raw: f64) -> i64 {
        self.cutoffs.partition_point(|c| *c <= raw) as i64
    }

    /// Each feature's contribution to one profile's score, largest effect first.
    pub fn contributions(&self, ix: &Indexes, pid: u32) -> Vec<(usize, f64)> {
        let mut out: Vec<(usize, f64)> = self
            .features
            .iter()
            .zip(&self.weights)
            .enumerate()
            .filter(|(_, ((f, _), _))| f.holds(ix, pid))
            .map(|(i, (_, w))| (i, *w))
            .collect();
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        out
    }

    /// The percentile of every live profile, as a bit-sliced index.
    pub fn score_index(&self, ix: &Indexes) -> ScoreIndex {
        let live = ix.live();
        self.percentiles(&self.raw_scores(ix, live), live)
    }

    /// The percentiles of `live` from their raw scores.
    pub(crate) fn percentiles(&self, raw: &[f64], live: &RoaringBitmap) -> ScoreIndex {
        let mut groups: Vec<RoaringBitmap> =
            vec![RoaringBitmap::new(); MAX_PERCENTILE as usize + 1];
        for pid in live {
            groups[self.percentile(raw[pid as usize]) as usize].insert(pid);
        }
        ScoreIndex::from_groups(groups)
    }
}

/// The cut-offs of [`Model::cutoffs`] from the population's raw scores.
pub fn cutoffs(mut population_scores: Vec<f64>) -> Vec<f64> {
    population_scores.sort_by(f64::total_cmp);
    let n = population_scores.len();
    if n == 0 {
        return vec![f64::INFINITY; MAX_PERCENTILE as usize];
    }
    (1..=MAX_PERCENTILE as usize)
        .map(|k| population_scores[(k * n).div_ceil(100) - 1])
        .collect()
}
