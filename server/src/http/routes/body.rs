//! Reading request bodies: authorization first, then the media type, the size limit and
//! the body timeout; JSON syntax errors are answered with their line and column.

use super::super::{ApiError, AppState};
use crate::api::errors::Position;
use crate::keys::{Role, StoredKey};
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// The JSON media type every route with a body takes.
pub(super) const JSON: &str = "application/json";
/// JSON Lines, which `POST /v1/records` also takes.
pub(super) const NDJSON: &str = "application/x-ndjson";

/// Reads the body within the size limit and the body timeout (a body sent too slowly, or
/// shorter than its `Content-Length`, gets 408 and the connection is closed).
pub(super) async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.options.max_body_bytes;
    let timeout = state.options.body_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body over the limit of {limit} bytes"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

/// The request's media type (lower-cased, parameters such as `charset` dropped) if it is
/// one of `accepted`; otherwise 415. A request without `Content-Type` is refused too:
/// the server never guesses what a body is.
pub(super) fn content_type(
    headers: &HeaderMap,
    accepted: &[&'static str],
) -> Result<&'static str, ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = given.as_deref().map(|t| {
        t.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if let Some(found) = accepted.iter().find(|a| essence.as_deref() == Some(**a)) {
        return Ok(found);
    }
    let wanted = match accepted {
        [one] => format!("Content-Type: {one}"),
        _ => format!(
            "Content-Type: {} (a JSON array of records) or {} (JSON Lines)",
            accepted[0], accepted[1]
        ),
    };
    let message = match given {
        Some(t) => format!("this route takes {wanted}, not {t:?}"),
        None => format!("this route takes {wanted}; the request has no Content-Type"),
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        message,
    ))
}

/// Authorizes the request (before reading anything), checks that it is JSON, then reads
/// and parses its body (an `api` request type).
pub(super) async fn authorized_body<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
    body: Body,
) -> Result<(StoredKey, T), ApiError> {
    let who = state.authorize(headers, roles).await?;
    content_type(headers, &[JSON])?;
    let bytes = read_body(state, body).await?;
    Ok((who, parse_json(&bytes)?))
}

/// Parses a JSON body, locating syntax errors.
pub(super) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("invalid request body: {e}"),
        );
        err.error.position = Some(Position {
            column: e.column(),
            line: e.line(),
            offset: None,
        });
        err
    })
}
