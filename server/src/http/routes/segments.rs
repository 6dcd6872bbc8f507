//! `/v1/segments`: counts, samples, breakdowns, explain and overlap of expressions, and
//! saved segments.

use super::super::{analyst, ApiError, AppState};
use super::body::authorized_body;
use super::{answer, parse_at, ANALYST};
use crate::api::console::History;
use crate::api::segments::{
    Breakdown, Count, Explain, ExprBody, Overlap, OverlapBody, Sample, SaveBody, SavedSegment,
    SegmentList, MAX_SAMPLE,
};
use crate::api::Deleted;
use crate::keys::Role;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;

/// The shape of every expression route: authorize an analyst, read `{"expr", "at"?, ..}`,
/// and run `work` on the server's segments at that time in an evaluation slot.
async fn on_expression<T, F>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    work: F,
) -> Result<(T, i64), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&query::Segments<'_>, ExprBody, Role) -> Result<T, ApiError> + Send + 'static,
{
    let (who, b): (_, ExprBody) = authorized_body(state, headers, ANALYST, body).await?;
    let at = parse_at(b.at.as_deref())?;
    let limits = state.options.expr_limits;
    let role = who.role;
    let result = state
        .run(&who, move |db, cache| {
            work(&AppState::segments(db, cache, &limits, at), b, role)
        })
        .await?;
    Ok((result, at))
}

/// `POST /v1/segments/count`. A count made before on the same data generation, exact at
/// this evaluation time, is answered from the cache right here (one hash lookup under the
/// cache's lock: no evaluation slot, no blocking pool, no engine lock); anything else is
/// evaluated in a slot like every expression route.
pub(super) async fn count(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, ExprBody) = authorized_body(&state, &headers, ANALYST, body).await?;
    let at = parse_at(b.at.as_deref())?;
    let limits = state.options.expr_limits;
    if let Some(n) = state
        .cache
        .count(state.engine.generation(), &limits, &b.expr, at)
    {
        state.metrics.count_cache_hits.inc();
        return answer(&Count::new(n, at));
    }
    state.metrics.count_cache_misses.inc();
    let n = state
        .run(&who, move |db, cache| {
            Ok(AppState::segments(db, cache, &limits, at).count(&b.expr)?)
        })
        .await?;
    answer(&Count::new(n, at))
}

pub(super) async fn sample(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let ((count, ids), at) = on_expression(&state, &headers, body, |s, b, _| {
        let size = b.size.unwrap_or(100);
        if size > MAX_SAMPLE {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "limit",
                format!("`size`: at most {MAX_SAMPLE}"),
            ));
        }
        let seg = s.evaluate(&b.expr)?;
        Ok((seg.count(), seg.sample(size, b.seed.unwrap_or(0))))
    })
    .await?;
    answer(&Sample::new(count, ids, at))
}

pub(super) async fn breakdown(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let min_group_size = state.options.min_group_size;
    let ((result, suppressed), at) = on_expression(&state, &headers, body, move |s, b, role| {
        let field = b
            .field
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("`field` is required"))?;
        let analyst = role != Role::Admin;
        if analyst && analyst::personal_field(field) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "an analyst key may not break down by `{field}`: its values are personal \
                     data (names, contact details, addresses, exact birth dates); count with \
                     it, or break down by a field such as country, city or interests"
                ),
            ));
        }
        let mut result = s.breakdown(&b.expr, field, b.top.unwrap_or(10))?;
        let suppressed =
            analyst.then(|| analyst::suppress_small_groups(&mut result, min_group_size));
        Ok((result, suppressed))
    })
    .await?;
    let mut breakdown = Breakdown::new(&result, at);
    breakdown.suppressed = suppressed;
    answer(&breakdown)
}

pub(super) async fn explain(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (e, _) = on_expression(&state, &headers, body, |s, b, _| Ok(s.explain(&b.expr)?)).await?;
    answer(&Explain::from(&e))
}

pub(super) async fn overlap(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, OverlapBody) = authorized_body(&state, &headers, ANALYST, body).await?;
    let at = parse_at(b.at.as_deref())?;
    let limits = state.options.expr_limits;
    let o = state
        .run(&who, move |db, cache| {
            let srcs: Vec<&str> = b.exprs.iter().map(String::as_str).collect();
            Ok(AppState::segments(db, cache, &limits, at).overlap(&srcs)?)
        })
        .await?;
    answer(&Overlap::new(&o, at))
}

pub(super) async fn list_segments(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let all = state
        .run(&who, |db, _| Ok(query::Segments::new(db).list()?))
        .await?;
    answer(&SegmentList::new(&all))
}

pub(super) async fn get_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let limits = state.options.expr_limits;
    let (saved, count) = state
        .run(&who, move |db, cache| {
            let s = AppState::segments(db, cache, &limits, engine::now_millis());
            let saved = s.get(&name)?;
            let count = s.count(&saved.expr)?;
            Ok((saved, count))
        })
        .await?;
    answer(&SavedSegment::from(&saved).with_count(count))
}

pub(super) async fn put_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, SaveBody) = authorized_body(&state, &headers, ANALYST, body).await?;
    let limits = state.options.expr_limits;
    let saved = state
        .run_write(&who, move |db, cache| {
            let saved = query::Segments::new(db)
                .with_limits(limits)
                .save(&name, &b.expr)?;
            // The first point of its size over time (or today's, replaced). The segment
            // is saved whatever happens here: a missing point is only logged.
            let now = engine::now_millis();
            let recorded = AppState::segments(db, cache, &limits, now)
                .count(&saved.expr)
                .map_err(|e| e.to_string())
                .and_then(|n| {
                    crate::history::record(db, &saved.name, n, now).map_err(|e| e.to_string())
                });
            if let Err(e) = recorded {
                tracing::warn!(segment = saved.name.as_str(), error = %e, "segment history: no point on save");
            }
            Ok(saved)
        })
        .await?;
    answer(&SavedSegment::from(&saved))
}

pub(super) async fn delete_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let deleted = name.clone();
    state
        .run_write(&who, move |db, _| {
            Ok(query::Segments::new(db).delete(&name)?)
        })
        .await?;
    answer(&Deleted { deleted })
}

/// `GET /v1/segments/{name}/history`: the saved segment's daily member counts.
pub(super) async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let (name, record) = state
        .run(&who, move |db, _| {
            query::Segments::new(db).get(&name)?;
            let record = db.segment_history(&name).map_err(engine::Error::from)?;
            Ok((name, record))
        })
        .await?;
    answer(&History::new(&name, record.as_ref()))
}
