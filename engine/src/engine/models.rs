//! Models on an open engine (models.md): training from the seed and population bitmaps
//! that the query layer evaluated, listing, deleting, and explaining one profile's score.

use crate::base::error::Error;
use crate::base::names::valid_name;
use crate::engine::Engine;
use crate::model::{encode_model, train, Model, ModelReport, TrainOptions, MODEL_PREFIX};
use crate::storage::profile::ProfileId;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::sync::Arc;

/// Why one profile scores as it does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreExplanation {
    /// The model.
    pub model: String,
    /// The profile.
    pub profile: ProfileId,
    /// Its percentile (0-100; 100 = most like the seed).
    pub percentile: i64,
    /// Its raw score (log-odds of looking like the seed).
    pub score: f64,
    /// The features it has, largest effect first: (feature, weight).
    pub reasons: Vec<(String, f64)>,
}

impl Engine {
    /// Trains model `name` to tell `seed` from the rest of `population` (bitmaps of profile
    /// ids, e.g. evaluated segments), scores every live profile and stores the model,
    /// replacing one of that name atomically. Audited as `train_model`.
    pub fn train_model(
        &self,
        name: &str,
        seed: &RoaringBitmap,
        population: &RoaringBitmap,
        options: &TrainOptions,
    ) -> Result<ModelReport, Error> {
        if !valid_name(name) {
            return Err(Error::InvalidArgument(format!(
                "invalid model name {name:?}: use 1-64 of a-z, 0-9, _ and -"
            )));
        }
        // The writer lock keeps the data still while the model learns from it and its
        // scores are computed.
        let _w = self.writer.lock().expect("writer lock");
        let (model, scores) = {
            let state = self.state.read().expect("state lock");
            let trained = train(name, &state.indexes, seed, population, options)
                .map_err(|e| Error::InvalidArgument(e.0))?;
            (Arc::new(trained.model), trained.scores)
        };
        self.store.catalog_put(
            &format!("{MODEL_PREFIX}{name}"),
            Some(&encode_model(&model)),
        )?;
        crate::base::crash_point::crash_point("model.after_store");
        {
            let mut state = self.state.write().expect("state lock");
            state.models.install_scored(crate::model::ScoredModel {
                model: model.clone(),
                scores: Arc::new(scores),
            });
            self.bump_generation(&mut state);
        }
        let r = &model.report;
        self.audit(
            "train_model",
            serde_json::json!({
                "model": name, "seed": r.seed, "holdout": r.holdout,
                "population": r.population, "features": r.features,
                "auc": r.auc, "quality": r.quality.name(),
            }),
            None,
        )?;
        Ok(model.report.clone())
    }

    /// Every model, by name.
    pub fn models(&self) -> Vec<Arc<Model>> {
        let state = self.state.read().expect("state lock");
        state.models.iter().map(|(_, m)| m.model.clone()).collect()
    }

    /// The model `name`.
    pub fn model(&self, name: &str) -> Option<Arc<Model>> {
        let state = self.state.read().expect("state lock");
        state.models.get(name).map(|m| m.model.clone())
    }

    /// Deletes model `name` and its scores; `false` when there was none. (Whether a
    /// saved segment still uses it is the query layer's check.) Audited as
    /// `delete_model`.
    pub fn delete_model(&self, name: &str) -> Result<bool, Error> {
        let _w = self.writer.lock().expect("writer lock");
        if self
            .store
            .catalog_get(&format!("{MODEL_PREFIX}{name}"))?
            .is_none()
        {
            return Ok(false);
        }
        self.store
            .catalog_put(&format!("{MODEL_PREFIX}{name}"), None)?;
        {
            let mut state = self.state.write().expect("state lock");
            state.models.remove(name);
            self.bump_generation(&mut state);
        }
        self.audit("delete_model", serde_json::json!({ "model": name }), None)?;
        Ok(true)
    }

    /// Profile `pid`'s score in model `name` and the features behind it.
    pub fn explain_score(&self, name: &str, pid: ProfileId) -> Result<ScoreExplanation, Error> {
        let state = self.state.read().expect("state lock");
        let scored = state.models.get(name).ok_or_else(|| Error::NotFound {
            what: "model",
            name: name.to_string(),
        })?;
        let Some(percentile) = scored.scores.get(pid) else {
            return Err(Error::NotFound {
                what: "live profile",
                name: pid.to_string(),
            });
        };
        let model = &scored.model;
        Ok(ScoreExplanation {
            model: name.to_string(),
            profile: pid,
            percentile,
            score: model.raw_score(&state.indexes, pid),
            reasons: model
                .contributions(&state.indexes, pid)
                .into_iter()
                .map(|(i, w)| (model.features[i].1.clone(), w))
                .collect(),
        })
    }
}
