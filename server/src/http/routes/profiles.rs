//! `GET /v1/profiles/lookup?email=…|phone=…|id=…` and `GET /v1/profiles/{id}`: profiles
//! hold raw personal data, so admin keys only.

use super::super::{ApiError, AppState};
use super::{answer, one_person, ADMIN};
use crate::api::profiles::{LookupQuery, ProfileView};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use engine::Lookup;
use serde_json::Value;

pub(super) async fn lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LookupQuery>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let how = one_person(q.email, q.phone, q.id)?;
    found(state.run(&who, move |db, _| Ok(db.lookup(&how)?)).await?)
}

pub(super) async fn profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<u32>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    found(
        state
            .run(&who, move |db, _| Ok(db.lookup(&Lookup::Id(id))?))
            .await?,
    )
}

fn found(view: Option<engine::ProfileView>) -> Result<Json<Value>, ApiError> {
    match view {
        Some(v) => answer(&ProfileView::from(&v)),
        None => Err(ApiError::not_found("no such profile")),
    }
}
