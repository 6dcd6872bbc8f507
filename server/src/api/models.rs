//! Model answers and requests (models.md): `cidb model` `--json` and the `/v1/models`
//! routes.
//!
//! The training report is a report printed as-is by the CLI, so its fields keep the
//! declaration order (the contract's order first); the HTTP routes sort its keys like
//! every other answer. The list and the per-profile explanation were designed as JSON
//! objects and are declared in alphabetical order.

use engine::format_rfc3339;
use serde::{Deserialize, Serialize};

/// A model's training report (`cidb model train|show`, `POST /v1/models/{name}/train`,
/// `GET /v1/models/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// The model's name.
    pub name: String,
    /// Seed members used for training.
    pub seed: u64,
    /// Seed members held out for validation.
    pub holdout: u64,
    /// Population members.
    pub population: u64,
    /// Features used.
    pub features: u64,
    /// Held-out AUC (seed members against population members outside the seed).
    pub auc: f64,
    /// Share of held-out seed members in the top 10 % of scores, divided by 0.10.
    pub lift_at_10: f64,
    /// `poor`, `fair`, `good` or `excellent`.
    pub quality: String,
    /// Whether the AUC is clear of noise (a model that is not is `poor`).
    pub predictive: bool,
    /// The fit kept: `scorecard` or `logistic`.
    pub method: String,
    /// Candidate features considered.
    pub candidates: u64,
    /// The features by importance.
    pub top_features: Vec<TopFeature>,
    /// Warnings (small seed, not predictive, redundant features left out).
    pub warnings: Vec<String>,
    /// The seed as given (a saved segment name or an expression).
    pub seed_expr: String,
    /// The population expression.
    pub population_expr: String,
    /// When it was trained (RFC 3339).
    pub trained_at: String,
    /// What event windows and ages are relative to (RFC 3339).
    pub as_of: String,
    /// Training and scoring time (ms).
    pub train_ms: u64,
}

/// One feature of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopFeature {
    /// The feature in the segment language (`interests HAS "yoga"`).
    pub feature: String,
    /// Its weight: the change in log-odds of looking like the seed.
    pub weight: f64,
    /// Share of the training seed that has it.
    pub seed_share: f64,
    /// Share of the population that has it.
    pub population_share: f64,
}

impl From<&engine::ModelReport> for ModelReport {
    fn from(r: &engine::ModelReport) -> Self {
        let engine::ModelReport {
            name,
            seed_expr,
            population_expr,
            seed,
            holdout,
            population,
            candidates,
            features,
            auc,
            lift_at_10,
            quality,
            predictive,
            method,
            top_features,
            warnings,
            trained_at,
            as_of,
            train_ms,
        } = r;
        ModelReport {
            name: name.clone(),
            seed: *seed,
            holdout: *holdout,
            population: *population,
            features: *features,
            auc: *auc,
            lift_at_10: *lift_at_10,
            quality: quality.name().to_string(),
            predictive: *predictive,
            method: method.clone(),
            candidates: *candidates,
            top_features: top_features.iter().map(TopFeature::from).collect(),
            warnings: warnings.clone(),
            seed_expr: seed_expr.clone(),
            population_expr: population_expr.clone(),
            trained_at: format_rfc3339(*trained_at),
            as_of: format_rfc3339(*as_of),
            train_ms: *train_ms,
        }
    }
}

impl From<&engine::TopFeature> for TopFeature {
    fn from(f: &engine::TopFeature) -> Self {
        let engine::TopFeature {
            feature,
            weight,
            seed_share,
            population_share,
        } = f;
        TopFeature {
            feature: feature.clone(),
            weight: *weight,
            seed_share: *seed_share,
            population_share: *population_share,
        }
    }
}

/// Every model (`cidb model list`, `GET /v1/models`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelList {
    /// Each model, by name.
    pub models: Vec<ModelSummary>,
}

/// A model in the list. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Held-out AUC.
    pub auc: f64,
    /// Features used.
    pub features: u64,
    /// Its name.
    pub name: String,
    /// Population members at training.
    pub population: u64,
    /// The quality label.
    pub quality: String,
    /// Seed members used for training.
    pub seed: u64,
    /// The seed as given.
    pub seed_expr: String,
    /// When it was trained (RFC 3339).
    pub trained_at: String,
}

impl From<&engine::ModelReport> for ModelSummary {
    fn from(r: &engine::ModelReport) -> Self {
        let full = ModelReport::from(r);
        ModelSummary {
            auc: full.auc,
            features: full.features,
            name: full.name,
            population: full.population,
            quality: full.quality,
            seed: full.seed,
            seed_expr: full.seed_expr,
            trained_at: full.trained_at,
        }
    }
}

impl ModelList {
    /// The list of `models`, by name.
    pub fn new(models: &[std::sync::Arc<engine::Model>]) -> Self {
        let mut models: Vec<ModelSummary> = models
            .iter()
            .map(|m| ModelSummary::from(&m.report))
            .collect();
        models.sort_by(|a, b| a.name.cmp(&b.name));
        ModelList { models }
    }
}

/// Why one profile scores as it does (`cidb model explain`,
/// `GET /v1/models/{name}/profiles/{id}`): the profile id, its score and the features
/// behind it, never a personal value. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreExplanation {
    /// The model.
    pub model: String,
    /// Its percentile, 0-100 (100 = most like the seed).
    pub percentile: i64,
    /// The profile id.
    pub profile: u32,
    /// The features it has, largest contribution first.
    pub reasons: Vec<Reason>,
    /// Its raw score (log-odds of looking like the seed).
    pub score: f64,
}

/// One reason of a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// Its contribution to the score (log-odds).
    pub contribution: f64,
    /// The feature in the segment language.
    pub feature: String,
}

impl From<&engine::ScoreExplanation> for ScoreExplanation {
    fn from(e: &engine::ScoreExplanation) -> Self {
        let engine::ScoreExplanation {
            model,
            profile,
            percentile,
            score,
            reasons,
        } = e;
        ScoreExplanation {
            model: model.clone(),
            percentile: *percentile,
            profile: *profile,
            reasons: reasons
                .iter()
                .map(|(feature, contribution)| Reason {
                    contribution: *contribution,
                    feature: feature.clone(),
                })
                .collect(),
            score: *score,
        }
    }
}

/// `POST /v1/models/{name}/train`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainBody {
    /// A saved segment name or an expression.
    pub seed: String,
    /// The population expression (default `ALL`).
    pub population: Option<String>,
    /// Fields whose features are left out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Share of the seed held out (default 0.2).
    pub holdout: Option<f64>,
    /// Most features (default 40).
    pub max_features: Option<usize>,
}

impl From<TrainBody> for query::TrainRequest {
    fn from(b: TrainBody) -> Self {
        let TrainBody {
            seed,
            population,
            exclude,
            holdout,
            max_features,
        } = b;
        query::TrainRequest {
            seed,
            population,
            exclude,
            holdout,
            max_features,
        }
    }
}

/// Which expression of a training request a top-level expression error is in: `seed` or
/// `population` (both are evaluated together, so the error itself does not say). Runs
/// only on the error path: it plans the seed on its own.
pub fn failing_expression(s: &query::Segments<'_>, request: &query::TrainRequest) -> &'static str {
    let seed_fails = query::segment_or_expr(s, &request.seed)
        .and_then(|seed| s.count(&seed))
        .is_err();
    if seed_fails || request.population.is_none() {
        "seed"
    } else {
        "population"
    }
}

super::answers!(ModelReport, ModelList, ScoreExplanation);

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> engine::ModelReport {
        engine::ModelReport {
            name: "buyers".into(),
            seed_expr: "event(\"purchase\")".into(),
            population_expr: "ALL".into(),
            seed: 800,
            holdout: 200,
            population: 10_000,
            candidates: 120,
            features: 12,
            auc: 0.75,
            lift_at_10: 3.5,
            quality: engine::Quality::Good,
            predictive: true,
            method: "logistic".into(),
            top_features: vec![engine::TopFeature {
                feature: "interests HAS \"yoga\"".into(),
                weight: 1.25,
                seed_share: 0.5,
                population_share: 0.125,
            }],
            warnings: vec!["small".into()],
            trained_at: 1_000,
            as_of: 0,
            train_ms: 42,
        }
    }

    #[test]
    fn the_report_has_the_contract_fields_in_order() {
        // models.md "Report": name, seed, holdout, population, features, auc, lift_at_10,
        // quality, top_features (feature, weight, seed_share, population_share), warnings,
        // trained_at, train_ms; timestamps are RFC 3339 like every other.
        assert_eq!(
            serde_json::to_string(&ModelReport::from(&report())).unwrap(),
            concat!(
                r#"{"name":"buyers","seed":800,"holdout":200,"population":10000,"features":12,"#,
                r#""auc":0.75,"lift_at_10":3.5,"quality":"good","predictive":true,"#,
                r#""method":"logistic","candidates":120,"top_features":[{"feature":"interests HAS \"yoga\"","#,
                r#""weight":1.25,"seed_share":0.5,"population_share":0.125}],"warnings":["small"],"#,
                r#""seed_expr":"event(\"purchase\")","population_expr":"ALL","#,
                r#""trained_at":"1970-01-01T00:00:01Z","as_of":"1970-01-01T00:00:00Z","train_ms":42}"#
            )
        );
    }

    #[test]
    fn an_explanation_has_no_personal_fields() {
        let e = engine::ScoreExplanation {
            model: "buyers".into(),
            profile: 7,
            percentile: 96,
            score: 1.5,
            reasons: vec![("interests HAS \"yoga\"".into(), 1.25)],
        };
        assert_eq!(
            serde_json::to_string(&ScoreExplanation::from(&e)).unwrap(),
            r#"{"model":"buyers","percentile":96,"profile":7,"reasons":[{"contribution":1.25,"feature":"interests HAS \"yoga\""}],"score":1.5}"#
        );
    }

    #[test]
    fn a_train_body_takes_only_the_contract_fields() {
        let b: TrainBody = serde_json::from_str(r#"{"seed":"vip"}"#).unwrap();
        let r = query::TrainRequest::from(b);
        assert_eq!(r.seed, "vip");
        assert!(r.exclude.is_empty() && r.population.is_none());
        assert!(serde_json::from_str::<TrainBody>(r#"{"seed":"vip","seeds":1}"#).is_err());
    }
}
