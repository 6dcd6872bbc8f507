//! `/v1/privacy` (admin): erasure, access requests and objections.

use super::super::{ApiError, AppState};
use super::body::authorized_body;
use super::{answer, one_person, ADMIN};
use crate::api::privacy::{
    AccessReport, ForgetBody, ForgetReport, ObjectBody, Objection, Objections, Withdrawn,
};
use crate::api::profiles::LookupQuery;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

/// `POST /v1/privacy/forget`: erases a person.
pub(super) async fn forget(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, ForgetBody) = authorized_body(&state, &headers, ADMIN, body).await?;
    let how = one_person(b.email, b.phone, b.id)?;
    let mut options = engine::ForgetOptions::default();
    if b.suppress == Some(false) {
        options = options.without_suppression();
    }
    let report = state
        .run_write(&who, move |db, _| Ok(db.forget(&how, &options)?))
        .await?;
    if !report.found {
        return Err(ApiError::not_found("no such profile"));
    }
    answer(&ForgetReport::from(&report))
}

/// `GET /v1/privacy/access?email=…|phone=…|id=…`: everything held about a person.
pub(super) async fn access(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LookupQuery>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let how = one_person(q.email, q.phone, q.id)?;
    let report = state
        .run(
            &who,
            move |db, _| Ok(query::Segments::new(db).access(&how)?),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("no such profile"))?;
    answer(&AccessReport::from(&report))
}

/// `POST /v1/privacy/objections`: records an objection.
pub(super) async fn object(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, ObjectBody) = authorized_body(&state, &headers, ADMIN, body).await?;
    let how = one_person(b.email, b.phone, b.id)?;
    let channel = b.channel;
    let objection = state
        .run_write(&who, move |db, _| Ok(db.object(&how, &channel)?))
        .await?;
    answer(&Objection::from(&objection))
}

/// `GET /v1/privacy/objections`.
pub(super) async fn list_objections(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let all = state
        .run(&who, |db, _| db.objections().map_err(ApiError::internal))
        .await?;
    answer(&Objections::new(&all))
}

/// `DELETE /v1/privacy/objections/{id}`: withdraws an objection.
pub(super) async fn withdraw_objection(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let done = state
        .run_write(&who, move |db, _| Ok(db.withdraw_objection(id)?))
        .await?;
    if done {
        answer(&Withdrawn { withdrawn: id })
    } else {
        Err(ApiError::not_found("no such objection"))
    }
}
