//! Commands on models (models.md): model train/list/show/delete/explain.

use super::segments::{lift, segments};
use super::{output, Global};
use crate::api::models::{failing_expression, ModelList, ModelReport, ScoreExplanation};
use crate::api::Deleted;
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use engine::Lookup;
use query::{Segments, TrainRequest};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Train (or retrain) a model that learns what sets a seed segment apart from a
    /// population, and score every live profile (percentile 0-100, used as
    /// score("NAME") in expressions). Prints the report.
    Train(TrainArgs),
    /// List models.
    List,
    /// Show a model's training report.
    Show {
        /// The model's name.
        name: String,
    },
    /// Delete a model and its scores (refused while a saved segment uses score("NAME")).
    Delete {
        /// The model's name.
        name: String,
    },
    /// Show a profile's score, percentile and its strongest reasons in a model.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Name: 1-64 of a-z, 0-9, `_` and `-`.
    pub name: String,
    /// The seed: a saved segment name or an expression (e.g. 'event("purchase")').
    #[arg(long, value_name = "SEGMENT_OR_EXPR")]
    pub seed: String,
    /// The population the seed is compared with (default: ALL).
    #[arg(long, value_name = "EXPR")]
    pub population: Option<String>,
    /// Leave these fields' features out (comma-separated; also `consent`, `event`,
    /// `event:TYPE`, `source`, `identifier`, ...). What the seed tests is always left out.
    #[arg(long, value_name = "FIELD,...", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Share of the seed held out for validation (default 0.2).
    #[arg(long, value_name = "F")]
    pub holdout: Option<f64>,
    /// Most features the model uses (default 40).
    #[arg(long, value_name = "K")]
    pub max_features: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The model's name.
    pub name: String,
    /// The profile id (merged ids redirect).
    #[arg(long, required_unless_present_any = ["email", "phone"], conflicts_with_all = ["email", "phone"])]
    pub id: Option<u32>,
    /// Find the person by email.
    #[arg(long, conflicts_with = "phone")]
    pub email: Option<String>,
    /// Find the person by phone (national formats use --default-region).
    #[arg(long)]
    pub phone: Option<String>,
}

pub fn model(global: &Global, cmd: ModelCommand) -> anyhow::Result<()> {
    let db = global.open()?;
    match cmd {
        ModelCommand::Train(args) => {
            let TrainArgs {
                name,
                seed,
                population,
                exclude,
                holdout,
                max_features,
            } = args;
            let request = TrainRequest {
                seed,
                population,
                exclude: exclude
                    .into_iter()
                    .map(|f| f.trim().to_string())
                    .filter(|f| !f.is_empty())
                    .collect(),
                holdout,
                max_features,
            };
            let s = segments(&db, None);
            let report = s.train_model(&name, &request).map_err(|e| {
                // Underline the text the error is in: the seed's or the population's.
                let src = match (&e, failing_expression(&s, &request)) {
                    (query::Error::Query(_), "population") => {
                        request.population.clone().unwrap_or_default()
                    }
                    _ => request.seed.clone(),
                };
                lift(&db, &src, e)
            })?;
            let report = ModelReport::from(&report);
            if global.json {
                return output::json(&report);
            }
            print_report(&report);
        }
        ModelCommand::List => {
            let list = ModelList::new(&db.models());
            if global.json {
                return output::json(&list);
            }
            if list.models.is_empty() {
                println!("no models");
                return Ok(());
            }
            println!(
                "{:<24} {:<9} {:>6} {:>8} {:>9}  trained at",
                "name", "quality", "auc", "seed", "features"
            );
            for m in &list.models {
                println!(
                    "{:<24} {:<9} {:>6.3} {:>8} {:>9}  {}",
                    m.name, m.quality, m.auc, m.seed, m.features, m.trained_at
                );
            }
        }
        ModelCommand::Show { name } => {
            let model = db
                .model(&name)
                .ok_or_else(|| anyhow!("model `{name}` not found"))?;
            let report = ModelReport::from(&model.report);
            if global.json {
                return output::json(&report);
            }
            print_report(&report);
        }
        ModelCommand::Delete { name } => {
            if !Segments::new(&db).delete_model(&name)? {
                bail!("model `{name}` not found");
            }
            if global.json {
                return output::json(&Deleted { deleted: name });
            }
            println!("deleted model {name}");
        }
        ModelCommand::Explain(args) => {
            let ExplainArgs {
                name,
                id,
                email,
                phone,
            } = args;
            if db.model(&name).is_none() {
                bail!("model `{name}` not found");
            }
            let how = match (id, email, phone) {
                (Some(id), None, None) => Lookup::Id(id),
                (None, Some(e), None) => Lookup::Email(e),
                (None, None, Some(p)) => Lookup::Phone(p),
                _ => bail!("give exactly one of --id, --email or --phone"),
            };
            let pid = db
                .lookup(&how)?
                .map(|v| v.profile.id)
                .ok_or_else(|| anyhow!("no such profile"))?;
            let e = ScoreExplanation::from(&db.explain_score(&name, pid)?);
            if global.json {
                return output::json(&e);
            }
            println!(
                "profile {}: percentile {} in model {} (score {:+.3})",
                e.profile, e.percentile, e.model, e.score
            );
            if e.reasons.is_empty() {
                println!("it has none of the model's features");
            } else {
                println!("{:>8}  reason", "effect");
                for r in &e.reasons {
                    println!("{:>+8.3}  {}", r.contribution, r.feature);
                }
            }
        }
    }
    Ok(())
}

/// The report, readable: a summary and a short table of the top features.
fn print_report(r: &ModelReport) {
    println!(
        "model {}: {} (AUC {:.3}, lift at 10 % {:.2}x){}",
        r.name,
        r.quality,
        r.auc,
        r.lift_at_10,
        if r.predictive { "" } else { ", not predictive" }
    );
    println!(
        "seed:        {} ({} training, {} held out)",
        r.seed_expr, r.seed, r.holdout
    );
    println!("population:  {} ({})", r.population_expr, r.population);
    println!(
        "features:    {} used of {} candidates ({})",
        r.features, r.candidates, r.method
    );
    println!("trained at:  {} in {} ms", r.trained_at, r.train_ms);
    for w in &r.warnings {
        println!("warning:     {w}");
    }
    if r.top_features.is_empty() {
        return;
    }
    println!();
    println!("{:>8} {:>7} {:>7}  feature", "weight", "seed", "pop");
    for f in r.top_features.iter().take(TOP_SHOWN) {
        println!(
            "{:>+8.3} {:>6.1}% {:>6.1}%  {}",
            f.weight,
            f.seed_share * 100.0,
            f.population_share * 100.0,
            f.feature
        );
    }
    if r.top_features.len() > TOP_SHOWN {
        println!("({} more with --json)", r.top_features.len() - TOP_SHOWN);
    }
}

/// Top features the readable report shows.
const TOP_SHOWN: usize = 10;
