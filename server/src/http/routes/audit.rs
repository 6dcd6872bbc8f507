//! `GET /v1/audit?after=&limit=` (admin): the audit trail, oldest first.

use super::super::{ApiError, AppState};
use super::{answer, ADMIN};
use crate::api::privacy::{AuditLog, AuditQuery};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

pub(super) async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let limit = q.limit.unwrap_or(100).min(10_000);
    let entries = state
        .run(&who, move |db, _| {
            db.audit_log(q.after, limit).map_err(ApiError::internal)
        })
        .await?;
    answer(&AuditLog::new(&entries))
}
