//! `GET /healthz` and `GET /metrics`: no key, never an evaluation slot.

use super::super::{ApiError, AppState};
use super::answer;
use crate::api::Health;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

pub(super) async fn healthz() -> Result<Json<Value>, ApiError> {
    answer(&Health { status: "ok" })
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    // An atomic read: never a lock, so a scrape cannot wait for the writer.
    state
        .metrics
        .profiles
        .set(i64::try_from(state.engine.profile_count()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}
