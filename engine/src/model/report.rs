//! What training reports (models.md "Report"): sizes, held-out quality, the features that
//! matter most, warnings.

use crate::base::time::Millis;
use serde::{Deserialize, Serialize};

/// How well a model separates held-out seed members from the rest of the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// AUC below 0.6, or within noise of 0.5: not predictive.
    Poor,
    /// AUC 0.6 to 0.7.
    Fair,
    /// AUC 0.7 to 0.8.
    Good,
    /// AUC 0.8 or more.
    Excellent,
}

impl Quality {
    /// The label for a held-out AUC that is (`significant`) or is not clear of noise.
    pub fn of(auc: f64, significant: bool) -> Quality {
        match auc {
            _ if !significant => Quality::Poor,
            a if a >= 0.8 => Quality::Excellent,
            a if a >= 0.7 => Quality::Good,
            a if a >= 0.6 => Quality::Fair,
            _ => Quality::Poor,
        }
    }

    /// Its name (`poor`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Quality::Poor => "poor",
            Quality::Fair => "fair",
            Quality::Good => "good",
            Quality::Excellent => "excellent",
        }
    }
}

/// One feature of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopFeature {
    /// The feature in the segment language (`interests HAS "yoga"`).
    pub feature: String,
    /// Its weight: the change in log-odds of looking like the seed when a profile has it.
    pub weight: f64,
    /// Share of the training seed that has it.
    pub seed_share: f64,
    /// Share of the population that has it.
    pub population_share: f64,
}

/// The training report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// The model's name.
    pub name: String,
    /// The seed expression, as given.
    pub seed_expr: String,
    /// The population expression, as given.
    pub population_expr: String,
    /// Seed members used for training.
    pub seed: u64,
    /// Seed members held out for validation.
    pub holdout: u64,
    /// Population members (live profiles matching the population expression).
    pub population: u64,
    /// Candidate features considered.
    pub candidates: u64,
    /// Features used.
    pub features: u64,
    /// Held-out AUC: held-out seed members against held-out population members outside
    /// the seed.
    pub auc: f64,
    /// Share of held-out seed members in the top 10 % of scores, divided by 0.10.
    pub lift_at_10: f64,
    /// The quality label.
    pub quality: Quality,
    /// Whether the AUC is clear of noise (more than three standard errors above 0.5).
    pub predictive: bool,
    /// Which fit was kept: `scorecard` (smoothed log-odds per feature) or `logistic`
    /// (L2-regularised logistic regression warm-started from it, kept only when it
    /// improves the held-out AUC).
    pub method: String,
    /// The features by importance (|weight| × the feature's spread in the population).
    pub top_features: Vec<TopFeature>,
    /// Warnings: small seed, not predictive, redundant features left out.
    pub warnings: Vec<String>,
    /// When it was trained (ms since the epoch).
    pub trained_at: Millis,
    /// What event windows and ages are relative to (ms since the epoch).
    pub as_of: Millis,
    /// Training and scoring time (ms).
    pub train_ms: u64,
}
