//! Route handlers, one area a file. Every body is read with the server's size limit and
//! parsed into an `api` request type (`body`), so malformed JSON gets a JSON error with
//! its line and column; every answer is an `api` type ([`answer`]).
//!
//! - `health`: `/healthz`, `/metrics`;
//! - `records`: `POST /v1/records`;
//! - `segments`: counts, samples, breakdowns, explain, overlap, saved segments;
//! - `export`: `POST /v1/segments/{name}/export` and `/export/ack`
//!   (`destinations`: the diff sync's destination name);
//! - `profiles`: `/v1/profiles/...`;
//! - `privacy`: `/v1/privacy/...`;
//! - `models`: `/v1/models/...`;
//! - `audit`: `/v1/audit`;
//! - `pushes`: `/v1/destinations`, `/v1/destinations/{name}/push`;
//! - `console`: the console's files (`/`, `/console/...`), `/v1/whoami`, `/v1/fields`.

mod audit;
mod body;
mod console;
mod destinations;
mod export;
mod health;
mod models;
mod privacy;
mod profiles;
mod pushes;
mod records;
mod segments;

use super::{ApiError, AppState};
use crate::api::Answer;
use crate::keys::Role;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use engine::{parse_rfc3339, Lookup};
use serde_json::Value;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(console::index))
        .route("/console/{*file}", get(console::file))
        .route("/v1/whoami", get(console::whoami))
        .route("/v1/fields", get(console::fields))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/v1/records", post(records::records))
        .route("/v1/segments", get(segments::list_segments))
        .route("/v1/segments/count", post(segments::count))
        .route("/v1/segments/sample", post(segments::sample))
        .route("/v1/segments/breakdown", post(segments::breakdown))
        .route("/v1/segments/overlap", post(segments::overlap))
        .route("/v1/segments/explain", post(segments::explain))
        .route(
            "/v1/segments/{name}",
            get(segments::get_segment)
                .put(segments::put_segment)
                .delete(segments::delete_segment),
        )
        .route("/v1/segments/{name}/history", get(segments::history))
        .route("/v1/segments/{name}/export", post(export::export))
        .route("/v1/segments/{name}/export/ack", post(export::export_ack))
        .route("/v1/profiles/lookup", get(profiles::lookup))
        .route("/v1/profiles/{id}", get(profiles::profile))
        .route("/v1/privacy/forget", post(privacy::forget))
        .route("/v1/privacy/access", get(privacy::access))
        .route(
            "/v1/privacy/objections",
            get(privacy::list_objections).post(privacy::object),
        )
        .route(
            "/v1/privacy/objections/{id}",
            delete(privacy::withdraw_objection),
        )
        .route("/v1/models", get(models::list_models))
        .route(
            "/v1/models/{name}",
            get(models::get_model).delete(models::delete_model),
        )
        .route("/v1/models/{name}/train", post(models::train))
        .route("/v1/models/{name}/curve", get(models::curve))
        .route(
            "/v1/models/{name}/profiles/{id}",
            get(models::profile_score),
        )
        .route("/v1/audit", get(audit::audit))
        .route("/v1/destinations", get(pushes::list))
        .route("/v1/destinations/{name}/push", post(pushes::push))
}

const ANALYST: &[Role] = &[Role::Analyst];
const INGEST: &[Role] = &[Role::Ingest];
const ADMIN: &[Role] = &[];

/// The JSON body of an answer. Every HTTP answer is an object with its keys sorted at
/// every level (it goes through `serde_json::Value`, whose map is sorted), as it always
/// was.
fn answer<T: Answer>(answer: &T) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        crate::api::sorted(answer).map_err(ApiError::internal)?.0,
    ))
}

fn parse_at(at: Option<&str>) -> Result<i64, ApiError> {
    match at {
        Some(t) => parse_rfc3339(t)
            .ok_or_else(|| ApiError::bad_request(format!("`at`: not an RFC 3339 time: {t}"))),
        None => Ok(engine::now_millis()),
    }
}

/// The person named by exactly one of an email, a phone or a profile id.
fn one_person(
    email: Option<String>,
    phone: Option<String>,
    id: Option<u32>,
) -> Result<Lookup, ApiError> {
    match (email, phone, id) {
        (Some(e), None, None) => Ok(Lookup::Email(e)),
        (None, Some(p), None) => Ok(Lookup::Phone(p)),
        (None, None, Some(id)) => Ok(Lookup::Id(id)),
        _ => Err(ApiError::bad_request(
            "give exactly one of email, phone or id",
        )),
    }
}
