//! `POST /v1/records`: a JSON array of records (`application/json`) or JSON Lines
//! (`application/x-ndjson`), as one atomic batch. With an `Idempotency-Key`, a retry of
//! the same body within 24 hours gets the first answer without ingesting again.

use super::super::{idempotency, ApiError, AppState};
use super::body::{content_type, parse_json, read_body, JSON, NDJSON};
use super::{answer, INGEST};
use crate::api::ingest::IngestReport;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub(super) async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = state.authorize(&headers, INGEST).await?;
    let kind = content_type(&headers, &[JSON, NDJSON])?;
    let bytes = read_body(&state, body).await?;
    let idempotency = idempotency::key(&headers, &who, &bytes)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "request body is not UTF-8 (byte offset {})",
            e.valid_up_to()
        ))
    })?;
    let lines: Vec<String> = if kind == JSON {
        // The records stay JSON: the engine parses each one itself.
        let items: Vec<Value> = parse_json(text.as_bytes()).map_err(|mut e| {
            if text.trim_start().starts_with('{') {
                e.error.message = format!(
                    "{}: {JSON} takes a JSON array of records; send JSON Lines as {NDJSON}",
                    e.error.message
                );
            }
            e
        })?;
        items.iter().map(Value::to_string).collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    };
    // Held until the engine work is done, even if this request times out first.
    let claim = idempotency
        .as_ref()
        .map(|key| state.in_flight.claim(key))
        .transpose()?;
    let metrics = state.metrics.clone();
    let (report, replayed) = state
        .run_write(&who, move |db, _| {
            let _claim = claim;
            let ingested = match &idempotency {
                None => db.ingest_json(&lines).map(|r| (r, false)),
                Some(key) => match db.ingest_json_idempotent(&lines, key) {
                    Ok(engine::IdempotentIngest::Applied(r)) => Ok((r, false)),
                    Ok(engine::IdempotentIngest::Replayed { report, .. }) => Ok((report, true)),
                    Ok(engine::IdempotentIngest::KeyReused { .. }) => {
                        return Err(idempotency::reused())
                    }
                    Ok(other) => {
                        return Err(ApiError::internal(format!(
                            "unexpected idempotent ingest outcome {other:?}"
                        )))
                    }
                    Err(e) => Err(e),
                },
            };
            let (report, replayed) =
                ingested.map_err(|e| ApiError::from(engine::Error::from(e)))?;
            if !replayed {
                metrics.ingested_records.inc_by(report.accepted);
                metrics
                    .rejected_records
                    .inc_by(report.records - report.accepted);
            }
            Ok((report, replayed))
        })
        .await?;
    let mut response = answer(&IngestReport::from(&report))?.into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotency-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}
