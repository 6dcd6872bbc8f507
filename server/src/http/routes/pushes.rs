//! `GET /v1/destinations` (analyst, admin): every destination with its last push;
//! `POST /v1/destinations/{name}/push` (admin): push one now (platforms.md).

use super::super::{ApiError, AppState};
use super::{answer, ADMIN, ANALYST};
use crate::api::export::{Destination, DestinationStatus, DestinationStatusList, LastPush};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;
use std::collections::HashMap;

/// The last `sync_push` audit entry of each of `names`, read from the newest entry back
/// and stopping once every one of them is found.
fn last_pushes(db: &engine::Engine, names: &[&str]) -> Result<HashMap<String, LastPush>, ApiError> {
    let mut last = HashMap::new();
    let mut before = None;
    while last.len() < names.len() {
        let page = db
            .audit_log_newest_first(before, 1000)
            .map_err(ApiError::internal)?;
        let Some(oldest) = page.last() else { break };
        before = Some(oldest.seq);
        for e in page.iter().filter(|e| e.action == "sync_push") {
            if let Some(name) = e.details.get("destination").and_then(Value::as_str) {
                if names.contains(&name) && !last.contains_key(name) {
                    last.insert(name.to_string(), LastPush::from_audit(e));
                }
            }
        }
    }
    Ok(last)
}

pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let list = state
        .run(&who, move |db, _| {
            let all = db.destinations()?;
            let pushing: Vec<&str> = all
                .iter()
                .filter(|d| d.push.is_some())
                .map(|d| d.name.as_str())
                .collect();
            let mut last = last_pushes(db, &pushing)?;
            let mut destinations = Vec::new();
            for d in all {
                destinations.push(DestinationStatus {
                    sent_profiles: db.destination_sent(&d.name)?.len(),
                    last_push: last.remove(&d.name),
                    destination: Destination::from(&d),
                });
            }
            Ok(DestinationStatusList { destinations })
        })
        .await?;
    answer(&list)
}

pub(super) async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let actor = format!("key:{}", who.id);
    let st = state.clone();
    // Not in an evaluation slot with the request timeout: a push waits for the
    // platform (and for a push already running).
    let result = tokio::task::spawn_blocking(move || {
        match st.engine.destination(&name) {
            Ok(Some(d)) if d.push.is_some() => {}
            Ok(Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "destination {name:?} does not push (created without --push)"
                )))
            }
            Ok(None) => {
                return Err(ApiError::not_found(format!(
                    "no destination named {name:?}"
                )))
            }
            Err(e) => return Err(ApiError::internal(e)),
        }
        st.push_now(&actor, &name)
            .map_err(|f| ApiError::new(StatusCode::BAD_GATEWAY, "push_failed", f.to_string()))
    })
    .await
    .map_err(ApiError::internal)??;
    answer(&result)
}
