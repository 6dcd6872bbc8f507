//! The stored form of a model (catalog `model/NAME`, layout 1): its own struct, apart
//! from the API's report type, encoded by the engine's codec with a layout byte.

use super::features::Feature;
use super::report::{ModelReport, Quality, TopFeature};
use super::scorecard::Model;
use crate::base::error::StorageError;
use crate::base::time::Millis;
use crate::storage::codec;
use serde::{Deserialize, Serialize};

/// Catalog prefix of models.
pub(crate) const MODEL_PREFIX: &str = "model/";
/// Layout of [`StoredModel`].
const LAYOUT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct StoredFeature {
    feature: Feature,
    label: String,
    weight: f64,
}

#[derive(Serialize, Deserialize)]
struct StoredTop {
    feature: String,
    weight: f64,
    seed_share: f64,
    population_share: f64,
}

#[derive(Serialize, Deserialize)]
struct StoredModel {
    name: String,
    features: Vec<StoredFeature>,
    intercept: f64,
    cutoffs: Vec<f64>,
    as_of: Millis,
    seed_expr: String,
    population_expr: String,
    seed: u64,
    holdout: u64,
    population: u64,
    candidates: u64,
    auc: f64,
    lift_at_10: f64,
    quality: String,
    predictive: bool,
    method: String,
    top_features: Vec<StoredTop>,
    warnings: Vec<String>,
    trained_at: Millis,
    train_ms: u64,
}

/// Encodes a model for the catalog.
pub(crate) fn encode_model(model: &Model) -> Vec<u8> {
    let r = &model.report;
    let stored = StoredModel {
        name: model.name.clone(),
        features: model
            .features
            .iter()
            .zip(&model.weights)
            .map(|((feature, label), weight)| StoredFeature {
                feature: feature.clone(),
                label: label.clone(),
                weight: *weight,
            })
            .collect(),
        intercept: model.intercept,
        cutoffs: model.cutoffs.clone(),
        as_of: model.as_of,
        seed_expr: r.seed_expr.clone(),
        population_expr: r.population_expr.clone(),
        seed: r.seed,
        holdout: r.holdout,
        population: r.population,
        candidates: r.candidates,
        auc: r.auc,
        lift_at_10: r.lift_at_10,
        quality: r.quality.name().into(),
        predictive: r.predictive,
        method: r.method.clone(),
        top_features: r
            .top_features
            .iter()
            .map(|t| StoredTop {
                feature: t.feature.clone(),
                weight: t.weight,
                seed_share: t.seed_share,
                population_share: t.population_share,
            })
            .collect(),
        warnings: r.warnings.clone(),
        trained_at: r.trained_at,
        train_ms: r.train_ms,
    };
    codec::encode_record(LAYOUT, &stored)
}

/// Decodes a model from the catalog entry `key`.
pub(crate) fn decode_model(key: &[u8], bytes: &[u8]) -> Result<Model, StorageError> {
    let s: StoredModel = codec::decode_record("model", LAYOUT, bytes).map_err(|e| e.at_key(key))?;
    let quality = match s.quality.as_str() {
        "fair" => Quality::Fair,
        "good" => Quality::Good,
        "excellent" => Quality::Excellent,
        _ => Quality::Poor,
    };
    let feature_count = s.features.len() as u64;
    let (features, weights) = s
        .features
        .into_iter()
        .map(|f| ((f.feature, f.label), f.weight))
        .unzip();
    Ok(Model {
        report: ModelReport {
            name: s.name.clone(),
            seed_expr: s.seed_expr,
            population_expr: s.population_expr,
            seed: s.seed,
            holdout: s.holdout,
            population: s.population,
            candidates: s.candidates,
            features: feature_count,
            auc: s.auc,
            lift_at_10: s.lift_at_10,
            quality,
            predictive: s.predictive,
            method: s.method,
            top_features: s
                .top_features
                .into_iter()
                .map(|t| TopFeature {
                    feature: t.feature,
                    weight: t.weight,
                    seed_share: t.seed_share,
                    population_share: t.population_share,
                })
                .collect(),
            warnings: s.warnings,
            trained_at: s.trained_at,
            as_of: s.as_of,
            train_ms: s.train_ms,
        },
        name: s.name,
        features,
        weights,
        intercept: s.intercept,
        cutoffs: s.cutoffs,
        as_of: s.as_of,
    })
}
