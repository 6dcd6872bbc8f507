//! Models from segment expressions (models.md): the query layer evaluates the seed and the
//! population on one snapshot, names what the seed tests (so the model cannot learn the
//! seed's own definition), and hands the bitmaps to the engine, which trains from them.

use crate::audience::segment_or_expr;
use crate::error::Error;
use crate::parser::{parse, Expr, ExprKind, Predicate};
use crate::saved;
use crate::segments::Segments;
use engine::{ModelReport, TrainOptions};

/// How to train, as the CLI and the API take it.
#[derive(Debug, Clone, Default)]
pub struct TrainRequest {
    /// Seed: a saved segment name or an expression.
    pub seed: String,
    /// Population expression (`None`: `ALL`).
    pub population: Option<String>,
    /// Names whose features are left out (attributes, `consent`, `event`, `event:TYPE`, ...).
    pub exclude: Vec<String>,
    /// Share of the seed held out (`None`: 0.2).
    pub holdout: Option<f64>,
    /// Most features (`None`: 40).
    pub max_features: Option<usize>,
}

impl Segments<'_> {
    /// Trains (or retrains) model `name` from a seed and a population expression.
    pub fn train_model(&self, name: &str, request: &TrainRequest) -> Result<ModelReport, Error> {
        let seed = segment_or_expr(self, &request.seed)?;
        let population = request.population.clone().unwrap_or_else(|| "ALL".into());
        let sets = self.evaluate_all(&[&seed, &population])?;
        let mut seed_fields = Vec::new();
        self.tested_fields(&self.parse(&seed)?, &mut seed_fields, 0)?;
        let defaults = TrainOptions::default();
        let options = TrainOptions {
            exclude: request.exclude.clone(),
            seed_fields,
            holdout: request.holdout.unwrap_or(defaults.holdout),
            max_features: request.max_features.unwrap_or(defaults.max_features),
            as_of: self.time(),
            seed_expr: request.seed.clone(),
            population_expr: population.clone(),
        };
        Ok(self
            .engine()
            .train_model(name, &sets[0], &sets[1], &options)?)
    }

    /// Deletes model `name`; refused while a saved segment uses `score("name")`.
    pub fn delete_model(&self, name: &str) -> Result<bool, Error> {
        let used_by: Vec<String> = saved::list(self.engine())?
            .into_iter()
            .filter(|s| {
                self.parse(&s.expr).is_ok_and(|e| {
                    let mut uses = false;
                    e.visit(&mut |n| {
                        if let ExprKind::Predicate(Predicate::Score { model, .. }) = &n.kind {
                            uses |= model.text == name;
                        }
                    });
                    uses
                })
            })
            .map(|s| s.name)
            .collect();
        if !used_by.is_empty() {
            return Err(Error::ModelInUse {
                name: name.to_string(),
                used_by,
            });
        }
        Ok(self.engine().delete_model(name)?)
    }

    /// What `expr` tests, as exclusion names (see `engine::TrainOptions::seed_fields`),
    /// following saved segments.
    fn tested_fields(&self, expr: &Expr, out: &mut Vec<String>, depth: usize) -> Result<(), Error> {
        let mut nested = Vec::new();
        expr.visit(&mut |e| {
            let ExprKind::Predicate(p) = &e.kind else {
                return;
            };
            match p {
                Predicate::Compare { field, .. }
                | Predicate::In { field, .. }
                | Predicate::Between { field, .. }
                | Predicate::Has { field, .. }
                | Predicate::Exists { field } => {
                    out.push(field.text.clone());
                    if field.text == "age" {
                        out.push("birth_date".into());
                    }
                }
                Predicate::Consent(n) => out.push(format!("consent:{}", n.text)),
                Predicate::Identifier(n) => out.push(format!("identifier:{}", n.text)),
                Predicate::Source(n) => out.push(format!("source:{}", n.text)),
                Predicate::Event { kind, .. } => out.push(format!("event:{}", kind.text)),
                Predicate::Segment(n) => nested.push(n.text.clone()),
                Predicate::Suppressed(_) | Predicate::Score { .. } => {}
            }
        });
        if depth < crate::limits::MAX_SEGMENT_NESTING {
            for name in nested {
                if let Some(s) = saved::get(self.engine(), &name)? {
                    let inner = parse(&s.expr, &self.limits())?;
                    self.tested_fields(&inner, out, depth + 1)?;
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(())
    }
}
