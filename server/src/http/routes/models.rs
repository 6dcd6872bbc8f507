//! `/v1/models`: train, list, show and delete lookalike and propensity models, and one
//! profile's score with its reasons (models.md). Analyst and admin keys; an answer holds
//! profile ids, scores and feature labels, never a personal value (the engine never
//! makes a feature of a name or a contact detail, and an analyst's answers withhold the
//! value of any other personal field: `analyst::withhold_personal_value`).

use super::super::{analyst, ApiError, AppState};
use super::body::authorized_body;
use super::{answer, ANALYST};
use crate::api::console::{Curve, CurvePoint};
use crate::api::models::{failing_expression, ModelList, ModelReport, ScoreExplanation, TrainBody};
use crate::api::Deleted;
use crate::keys::Role;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use engine::Lookup;
use serde_json::Value;

/// A report as `role` may see it.
fn report_for(role: Role, report: &engine::ModelReport) -> ModelReport {
    let mut r = ModelReport::from(report);
    if role != Role::Admin {
        for f in &mut r.top_features {
            f.feature = analyst::withhold_personal_value(&f.feature);
        }
    }
    r
}

fn no_model(name: &str) -> ApiError {
    ApiError::not_found(format!("model `{name}` not found"))
}

pub(super) async fn train(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, TrainBody) = authorized_body(&state, &headers, ANALYST, body).await?;
    let limits = state.options.expr_limits;
    let role = who.role;
    // Training takes the engine's writer lock and scores every profile: a write.
    let report = state
        .run_write(&who, move |db, cache| {
            let request = query::TrainRequest::from(b);
            let s = AppState::segments(db, cache, &limits, engine::now_millis());
            s.train_model(&name, &request).map_err(|e| match e {
                query::Error::Query(q) if q.segment.is_none() => {
                    // The position is in the seed or the population: say which.
                    let which = failing_expression(&s, &request);
                    let mut err = ApiError::from(query::Error::Query(q));
                    err.error.message = format!("`{which}`: {}", err.error.message);
                    err
                }
                other => other.into(),
            })
        })
        .await?;
    answer(&report_for(role, &report))
}

pub(super) async fn list_models(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let models = state.run(&who, |db, _| Ok(db.models())).await?;
    answer(&ModelList::new(&models))
}

pub(super) async fn get_model(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let role = who.role;
    let model = state
        .run(&who, move |db, _| {
            db.model(&name).ok_or_else(|| no_model(&name))
        })
        .await?;
    answer(&report_for(role, &model.report))
}

pub(super) async fn delete_model(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let deleted = name.clone();
    state
        .run_write(&who, move |db, _| {
            if query::Segments::new(db).delete_model(&name)? {
                Ok(())
            } else {
                Err(no_model(&name))
            }
        })
        .await?;
    answer(&Deleted { deleted })
}

pub(super) async fn profile_score(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, u32)>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let role = who.role;
    let explanation = state
        .run(&who, move |db, _| {
            if db.model(&name).is_none() {
                return Err(no_model(&name));
            }
            // A merged id redirects to the profile it was merged into.
            let pid = db
                .lookup(&Lookup::Id(id))?
                .map(|v| v.profile.id)
                .ok_or_else(|| ApiError::not_found("no such profile"))?;
            Ok(db.explain_score(&name, pid)?)
        })
        .await?;
    let mut shown = ScoreExplanation::from(&explanation);
    if role != Role::Admin {
        for r in &mut shown.reasons {
            r.feature = analyst::withhold_personal_value(&r.feature);
        }
    }
    answer(&shown)
}

/// Score thresholds of a model's curve: the top 10 %, 20 %, ... of scores.
const CURVE_THRESHOLDS: [u8; 10] = [90, 80, 70, 60, 50, 40, 30, 20, 10, 0];

/// `GET /v1/models/{name}/curve`: the cumulative gain and lift of the model over its seed
/// within its population, at each decile of scores (seed members used in training
/// included, so it flatters the model a little; the held-out `auc` and `lift_at_10` of
/// the report do not).
pub(super) async fn curve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let limits = state.options.expr_limits;
    let curve = state
        .run(&who, move |db, cache| {
            let model = db.model(&name).ok_or_else(|| no_model(&name))?;
            let s = AppState::segments(db, cache, &limits, engine::now_millis());
            let seed = query::segment_or_expr(&s, &model.report.seed_expr)?;
            let quoted = serde_json::to_string(&name).map_err(ApiError::internal)?;
            let mut srcs = vec![seed, model.report.population_expr.clone()];
            srcs.extend(
                CURVE_THRESHOLDS
                    .iter()
                    .map(|t| format!("score({quoted}) >= {t}")),
            );
            let refs: Vec<&str> = srcs.iter().map(String::as_str).collect();
            let sets = s.evaluate_all(&refs)?;
            let population = &sets[1];
            let seed = &sets[0] & population;
            let (pop_n, seed_n) = (population.len(), seed.len());
            let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            let points = CURVE_THRESHOLDS
                .iter()
                .zip(&sets[2..])
                .map(|(&threshold, top)| {
                    let in_pop = top & population;
                    let (p, sd) = (in_pop.len(), in_pop.intersection_len(&seed));
                    let (gain, population_share) = (share(sd, seed_n), share(p, pop_n));
                    CurvePoint {
                        gain,
                        lift: if population_share > 0.0 {
                            gain / population_share
                        } else {
                            0.0
                        },
                        population: p,
                        population_share,
                        seed: sd,
                        threshold,
                    }
                })
                .collect();
            Ok(Curve {
                model: name,
                points,
                population: pop_n,
                seed: seed_n,
            })
        })
        .await?;
    answer(&curve)
}
