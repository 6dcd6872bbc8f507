//! Layer 5, models: lookalike and propensity models trained in-house on the brand's own
//! profiles (models.md). Features are facts the indexes already hold (`features`);
//! training works from bitmap intersection counts (`train`, `fit`); a model's scores are a
//! percentile per live profile, kept as a bit-sliced index beside the indexes, rescored
//! for every profile a batch changes and recomputed by `check` (`Models`).

mod features;
mod fit;
mod report;
mod scorecard;
mod scores;
mod stored;
mod train;

pub use features::Feature;
pub use report::{ModelReport, Quality, TopFeature};
pub use scorecard::{Model, MAX_PERCENTILE};
pub use scores::ScoreIndex;
pub(crate) use stored::{decode_model, encode_model, MODEL_PREFIX};
pub use train::{
    auc_of, holdout_split, train, TrainOptions, MIN_SEED, MIN_SUPPORT, PERSONAL_FIELDS,
    REDUNDANT_PHI, WARN_SEED,
};

use crate::index::Indexes;
use roaring::RoaringBitmap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A model with the percentiles of the live profiles.
#[derive(Debug, Clone)]
pub(crate) struct ScoredModel {
    pub(crate) model: Arc<Model>,
    pub(crate) scores: Arc<ScoreIndex>,
}

/// Every model of the database, by name (part of the state readers see).
#[derive(Debug, Clone, Default)]
pub(crate) struct Models {
    by_name: BTreeMap<String, ScoredModel>,
}

impl Models {
    /// The model `name` with its scores.
    pub(crate) fn get(&self, name: &str) -> Option<&ScoredModel> {
        self.by_name.get(name)
    }

    /// Every model, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &ScoredModel)> {
        self.by_name.iter()
    }

    /// Whether there are none (then commits skip rescoring).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Adds or replaces a model, scoring every live profile.
    pub(crate) fn install(&mut self, model: Arc<Model>, ix: &Indexes) {
        let scores = Arc::new(model.score_index(ix));
        self.by_name
            .insert(model.name.clone(), ScoredModel { model, scores });
    }

    /// Adds or replaces a model whose scores were computed already.
    pub(crate) fn install_scored(&mut self, scored: ScoredModel) {
        self.by_name.insert(scored.model.name.clone(), scored);
    }

    /// Removes a model; `false` when there was none.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        self.by_name.remove(name).is_some()
    }

    /// Rescores `pids` (profiles a batch or an erasure changed) in every model: a live
    /// profile gets the percentile of its raw score, any other loses its score.
    pub(crate) fn rescore(&mut self, ix: &Indexes, pids: &RoaringBitmap) {
        let live = ix.live();
        for scored in self.by_name.values_mut() {
            // Plans share the index only while a snapshot is held, never across a commit,
            // so this does not copy.
            let scores = Arc::make_mut(&mut scored.scores);
            for pid in pids - live {
                scores.remove(pid);
            }
            for (pid, raw) in scored.model.raw_scores_among(ix, &(pids & live)) {
                scores.set(pid, scored.model.percentile(raw));
            }
        }
    }

    /// Differences between the held scores and a fresh scoring over `ix` (`check`).
    pub(crate) fn differences(&self, ix: &Indexes) -> Vec<String> {
        let mut out = Vec::new();
        for (name, scored) in &self.by_name {
            let fresh = scored.model.score_index(ix);
            if fresh != *scored.scores {
                let mismatched = ix
                    .live()
                    .iter()
                    .filter(|p| fresh.get(*p) != scored.scores.get(*p))
                    .count();
                let stray = (scored.scores.scored() - fresh.scored()).len();
                out.push(format!(
                    "model {name:?}: {mismatched} live profile(s) hold a score that differs \
                     from a fresh scoring, {stray} non-live profile(s) hold one"
                ));
            }
        }
        out
    }
}
