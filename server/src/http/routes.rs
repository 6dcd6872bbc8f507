//! Route handlers. Every body is read with the server's size limit and parsed here, so
//! malformed JSON gets a JSON error with its line and column.

use super::{analyst, idempotency, stream, ApiError, AppState};
use crate::keys::Role;
use crate::render;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::export::{ExportOptions, Format, Platform};
use engine::{format_rfc3339, parse_rfc3339, Lookup};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::render::MAX_SAMPLE;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/records", post(records))
        .route("/v1/segments", get(list_segments))
        .route("/v1/segments/count", post(count))
        .route("/v1/segments/sample", post(sample))
        .route("/v1/segments/breakdown", post(breakdown))
        .route("/v1/segments/overlap", post(overlap))
        .route("/v1/segments/explain", post(explain))
        .route(
            "/v1/segments/{name}",
            get(get_segment).put(put_segment).delete(delete_segment),
        )
        .route("/v1/segments/{name}/export", post(export))
        .route("/v1/segments/{name}/export/ack", post(export_ack))
        .route("/v1/profiles/lookup", get(lookup))
        .route("/v1/profiles/{id}", get(profile))
        .route("/v1/privacy/forget", post(forget))
        .route("/v1/privacy/access", get(access))
        .route("/v1/privacy/objections", get(list_objections).post(object))
        .route(
            "/v1/privacy/objections/{id}",
            axum::routing::delete(withdraw_objection),
        )
        .route("/v1/audit", get(audit))
}

const ANALYST: &[Role] = &[Role::Analyst];
const INGEST: &[Role] = &[Role::Ingest];
const ADMIN: &[Role] = &[];

/// Reads the body within the size limit and the body timeout (a body sent too slowly, or
/// shorter than its `Content-Length`, gets 408 and the connection is closed).
async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
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

/// The JSON media type every route with a body takes.
const JSON: &str = "application/json";
/// JSON Lines, which `POST /v1/records` also takes.
const NDJSON: &str = "application/x-ndjson";

/// The request's media type (lower-cased, parameters such as `charset` dropped) if it is
/// one of `accepted`; otherwise 415. A request without `Content-Type` is refused too:
/// the server never guesses what a body is.
fn content_type(headers: &HeaderMap, accepted: &[&'static str]) -> Result<&'static str, ApiError> {
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
/// and parses its body.
async fn authorized_body<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
    body: Body,
) -> Result<(crate::keys::StoredKey, T), ApiError> {
    let who = state.authorize(headers, roles).await?;
    content_type(headers, &[JSON])?;
    let bytes = read_body(state, body).await?;
    Ok((who, parse_json(&bytes)?))
}

/// Parses a JSON body, locating syntax errors.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("invalid request body: {e}"),
        );
        err.extra = Some(json!({"position": {"line": e.line(), "column": e.column()}}));
        err
    })
}

fn parse_at(at: Option<&str>) -> Result<i64, ApiError> {
    match at {
        Some(t) => parse_rfc3339(t)
            .ok_or_else(|| ApiError::bad_request(format!("`at`: not an RFC 3339 time: {t}"))),
        None => Ok(engine::now_millis()),
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(state): State<AppState>) -> Response {
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

/// `POST /v1/records`: a JSON array of records (`application/json`) or JSON Lines
/// (`application/x-ndjson`), as one atomic batch. With an `Idempotency-Key`, a retry of
/// the same body within 24 hours gets the first answer without ingesting again.
async fn records(
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
        let items: Vec<Value> = parse_json(text.as_bytes()).map_err(|mut e| {
            if text.trim_start().starts_with('{') {
                e.message = format!(
                    "{}: {JSON} takes a JSON array of records; send JSON Lines as {NDJSON}",
                    e.message
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
    let answer = serde_json::to_value(report).map_err(ApiError::internal)?;
    let mut response = Json(answer).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotency-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprBody {
    expr: String,
    at: Option<String>,
    /// Sample size.
    size: Option<usize>,
    /// Sample seed.
    seed: Option<u64>,
    /// Breakdown field.
    field: Option<String>,
    /// Breakdown: values to return.
    top: Option<usize>,
}

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

async fn count(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (n, at) = on_expression(&state, &headers, body, |s, b, _| Ok(s.count(&b.expr)?)).await?;
    Ok(Json(json!({"count": n, "at": format_rfc3339(at)})))
}

async fn sample(
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
    Ok(Json(
        json!({"count": count, "sample": ids, "at": format_rfc3339(at)}),
    ))
}

async fn breakdown(
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
    let mut answer = render::breakdown(&result, at);
    if let Some(suppressed) = suppressed {
        answer["suppressed"] = suppressed;
    }
    Ok(Json(answer))
}

async fn explain(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (e, _) = on_expression(&state, &headers, body, |s, b, _| Ok(s.explain(&b.expr)?)).await?;
    Ok(Json(render::explain(&e)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlapBody {
    exprs: Vec<String>,
    at: Option<String>,
}

async fn overlap(
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
    Ok(Json(render::overlap(&o, at)))
}

async fn list_segments(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ANALYST).await?;
    let all = state
        .run(&who, |db, _| Ok(query::Segments::new(db).list()?))
        .await?;
    Ok(Json(
        json!({"segments": all.iter().map(render::saved).collect::<Vec<_>>()}),
    ))
}

async fn get_segment(
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
    let mut v = render::saved(&saved);
    v["count"] = json!(count);
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    expr: String,
}

async fn put_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, SaveBody) = authorized_body(&state, &headers, ANALYST, body).await?;
    let limits = state.options.expr_limits;
    let saved = state
        .run_write(&who, move |db, _| {
            Ok(query::Segments::new(db)
                .with_limits(limits)
                .save(&name, &b.expr)?)
        })
        .await?;
    Ok(Json(render::saved(&saved)))
}

async fn delete_segment(
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
    Ok(Json(json!({ "deleted": deleted })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    format: String,
    platform: Option<String>,
    policy: Option<String>,
    /// `full` (default): the whole audience; `adds` / `removes`: a diff sync against
    /// what was acknowledged for this segment and format.
    mode: Option<String>,
}

/// The destination a segment's diff sync in `format` uses: exact and collision-free.
///
/// Segment names are 1-64 of `[A-Za-z0-9_.-]` (case-sensitive); destination names 1-64 of
/// `[a-z0-9_-]`. A segment name already made of `[a-z0-9_-]` keeps the name it always had,
/// `{segment}-{format}`, so existing sync state stays in use. Any other name is escaped
/// (`_` → `__`, `.` → `_-`, a capital → `_` and its lower case) and marked:
/// `{escaped}-{format}-x`. Why no two segments (or formats) share a destination:
/// - a plain name's last `-` component is the format's (`api`, `csv` or `hashes`), a
///   marked name's is `x`, so the two kinds never meet;
/// - the format is read back from the end (no format name ends in `-` + another one);
/// - the escape is a prefix code (`_` always takes the next character with it), so the
///   segment name is read back exactly.
///
/// A name whose destination would be longer than 64 is refused (400), never shortened.
fn destination_name(segment: &str, format: Format) -> Result<String, ApiError> {
    let plain = segment
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    let name = if plain {
        format!("{segment}-{}", format.name())
    } else {
        let mut escaped = String::with_capacity(segment.len() * 2);
        for c in segment.chars() {
            match c {
                '_' => escaped.push_str("__"),
                '.' => escaped.push_str("_-"),
                c if c.is_ascii_uppercase() => {
                    escaped.push('_');
                    escaped.push(c.to_ascii_lowercase());
                }
                c => escaped.push(c),
            }
        }
        format!("{escaped}-{}-x", format.name())
    };
    if engine::export::valid_destination_name(&name) {
        Ok(name)
    } else {
        Err(ApiError::bad_request(format!(
            "segment name {segment:?} cannot name a sync destination (the name would be \
             {name:?}, over 64 characters or outside [a-z0-9_-]); save the segment under a \
             shorter name"
        )))
    }
}

/// `POST /v1/segments/{name}/export`: the hashed audience, streamed (`full`), or the adds
/// or removes of a diff sync, computed before the answer starts (so a busy destination
/// or a failure is a proper error status, never a cut stream) and then streamed.
async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let (who, b): (_, ExportBody) = authorized_body(&state, &headers, ANALYST, body).await?;
    let format: Format = b.format.parse().map_err(ApiError::bad_request)?;
    let platform: Option<Platform> = b
        .platform
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let mode = b.mode.clone().unwrap_or_else(|| "full".into());
    if !matches!(mode.as_str(), "full" | "adds" | "removes") {
        return Err(ApiError::bad_request("`mode`: full, adds or removes"));
    }
    let requested = b.policy.clone();
    let policy = analyst::effective_policy(who.role, requested.as_deref());
    let limits = state.options.expr_limits;
    let content_type = match format {
        Format::MetaApi | Format::GoogleApi => "application/x-ndjson",
        Format::MetaCsv | Format::GoogleCsv => "text/csv; charset=utf-8",
        Format::Hashes => "text/plain; charset=utf-8",
    };
    // Check everything before the response starts.
    let check = {
        let (name, policy, requested) = (name.clone(), policy.clone(), requested.clone());
        move |s: &query::Segments<'_>| -> Result<(), ApiError> {
            s.get(&name)?;
            if let Some(p) = &requested {
                s.count(p)?;
            }
            s.count(&policy)?;
            Ok(())
        }
    };
    if mode != "full" {
        let dest = destination_name(&name, format)?;
        let file = state
            .run_write(&who, move |db, cache| {
                let s = AppState::segments(db, cache, &limits, engine::now_millis());
                check(&s)?;
                let spec = query::DestinationSpec {
                    name: dest.clone(),
                    format,
                    platform,
                    segment: name.clone(),
                    policy: Some(policy.clone()),
                    additive_only: false,
                };
                prepare_destination(db, &s, &spec, requested.is_some())?;
                // A private directory (random name, mode 0700), removed when dropped
                // (also when the request timed out and nobody streams it).
                let dir = tempfile::Builder::new()
                    .prefix("cidb-sync-")
                    .tempdir()
                    .map_err(ApiError::internal)?;
                let report = s.sync(&dest, dir.path())?;
                let file = if mode == "adds" {
                    report.adds_file
                } else {
                    report.removes_file
                };
                Ok((dir, file))
            })
            .await?;
        let (writer, response_body) = stream::channel(state.options.export_timeout);
        tokio::task::spawn_blocking(move || stream_file(file, writer));
        return Ok(([(header::CONTENT_TYPE, content_type)], response_body).into_response());
    }
    state
        .run(&who, move |db, cache| {
            check(&AppState::segments(
                db,
                cache,
                &limits,
                engine::now_millis(),
            ))
        })
        .await?;
    let (writer, response_body) = stream::channel(state.options.export_timeout);
    let permit = state
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::overloaded())?;
    let engine = state.engine.clone();
    let cache = state.cache.clone();
    let actor = format!("key:{}", who.id);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        engine::audit::with_actor(&actor, || {
            let s = AppState::segments(&engine, &cache, &limits, engine::now_millis());
            stream_export(&s, &name, &policy, format, platform, writer)
        })
    });
    Ok(([(header::CONTENT_TYPE, content_type)], response_body).into_response())
}

/// Creates a segment's sync destination on first use; an existing one must belong to the
/// same segment and format, and a policy given must be the one it was created with (a
/// sync always applies its destination's policy).
fn prepare_destination(
    db: &engine::Engine,
    s: &query::Segments<'_>,
    spec: &query::DestinationSpec,
    policy_given: bool,
) -> Result<(), ApiError> {
    let Some(existing) = db.destination(&spec.name)? else {
        s.create_destination(spec)?;
        return Ok(());
    };
    let conflict = |what: String| {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("destination {:?} {what}", spec.name),
        ))
    };
    if existing.segment != spec.segment || existing.format != spec.format {
        return conflict(format!(
            "exists for segment {:?} in {}; it was not created by this route",
            existing.segment,
            existing.format.name()
        ));
    }
    let wanted = spec.policy.as_deref().unwrap_or(query::DEFAULT_POLICY);
    if policy_given && existing.policy != wanted {
        return conflict(format!(
            "syncs with the policy {:?}, not {wanted:?}; a destination's policy does not \
             change between syncs",
            existing.policy
        ));
    }
    Ok(())
}

/// Writes a full export into a streamed body.
fn stream_export(
    s: &query::Segments<'_>,
    name: &str,
    policy: &str,
    format: Format,
    platform: Option<Platform>,
    mut writer: stream::BodyWriter,
) {
    let segment = format!("segment(\"{name}\")");
    let mut options = ExportOptions::new(format);
    if let Some(p) = platform {
        options = options.with_platform(p);
    }
    let result = s
        .export(&segment, Some(policy), &options, &mut writer)
        .map_err(|e| e.to_string())
        .and_then(|report| {
            tracing::info!(
                profiles = report.profiles,
                rows = report.rows,
                "export streamed"
            );
            std::io::Write::flush(&mut writer).map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        tracing::error!(error = %e, "export failed while streaming");
        writer.fail("the export failed; see the server log".into());
    }
}

/// Streams a sync's file, then removes its scratch directory.
fn stream_file(
    (dir, file): (tempfile::TempDir, std::path::PathBuf),
    mut writer: stream::BodyWriter,
) {
    let result = std::fs::File::open(&file)
        .and_then(|mut f| std::io::copy(&mut f, &mut writer))
        .and_then(|_| std::io::Write::flush(&mut writer));
    drop(dir);
    if let Err(e) = result {
        tracing::error!(error = %e, "sync file failed while streaming");
        writer.fail("the sync file could not be streamed; see the server log".into());
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    format: String,
}

/// `POST /v1/segments/{name}/export/ack`: records the pending diff sync as sent.
async fn export_ack(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (who, b): (_, AckBody) = authorized_body(&state, &headers, ANALYST, body).await?;
    let format: Format = b.format.parse().map_err(ApiError::bad_request)?;
    let dest = destination_name(&name, format)?;
    let report = state
        .run_write(&who, move |db, _| Ok(db.sync_ack(&dest)?))
        .await?;
    Ok(Json(
        serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    email: Option<String>,
    phone: Option<String>,
    id: Option<u32>,
}

/// Profiles hold raw personal data: admin keys only.
async fn lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LookupQuery>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let how = one_person(q.email, q.phone, q.id)?;
    found(state.run(&who, move |db, _| Ok(db.lookup(&how)?)).await?)
}

async fn profile(
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
        Some(v) => Ok(Json(serde_json::to_value(v).map_err(ApiError::internal)?)),
        None => Err(ApiError::not_found("no such profile")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgetBody {
    email: Option<String>,
    phone: Option<String>,
    id: Option<u32>,
    /// Default true: add the hashed emails and phones to the `erased` suppression list.
    suppress: Option<bool>,
}

/// `POST /v1/privacy/forget` (admin): erases a person.
async fn forget(
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
    Ok(Json(
        serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}

/// `GET /v1/privacy/access?email=…|phone=…|id=…` (admin): everything held about a person.
async fn access(
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
    Ok(Json(
        serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/audit?after=&limit=` (admin): the audit trail, oldest first.
async fn audit(
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
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectBody {
    email: Option<String>,
    phone: Option<String>,
    id: Option<u32>,
    channel: String,
}

/// `POST /v1/privacy/objections` (admin): records an objection.
async fn object(
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
    Ok(Json(
        serde_json::to_value(objection).map_err(ApiError::internal)?,
    ))
}

/// `GET /v1/privacy/objections` (admin).
async fn list_objections(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let all = state
        .run(&who, |db, _| db.objections().map_err(ApiError::internal))
        .await?;
    Ok(Json(json!({ "objections": all })))
}

/// `DELETE /v1/privacy/objections/{id}` (admin): withdraws an objection.
async fn withdraw_objection(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, ADMIN).await?;
    let done = state
        .run_write(&who, move |db, _| Ok(db.withdraw_objection(id)?))
        .await?;
    if done {
        Ok(Json(json!({ "withdrawn": id })))
    } else {
        Err(ApiError::not_found("no such objection"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FORMATS: [Format; 5] = [
        Format::MetaApi,
        Format::MetaCsv,
        Format::GoogleApi,
        Format::GoogleCsv,
        Format::Hashes,
    ];

    #[test]
    fn plain_segment_names_keep_their_destination() {
        for (segment, format, want) in [
            ("nl", Format::GoogleApi, "nl-google-api"),
            ("nl_runners-2", Format::Hashes, "nl_runners-2-hashes"),
        ] {
            assert_eq!(destination_name(segment, format).unwrap(), want);
        }
        assert_eq!(
            destination_name("Yq", Format::Hashes).unwrap(),
            "_yq-hashes-x"
        );
        assert_eq!(
            destination_name("a.b_C", Format::MetaApi).unwrap(),
            "a_-b___c-meta-api-x"
        );
    }

    #[test]
    fn destination_names_never_collide() {
        // Every segment name up to 3 characters over an alphabet with each kind of
        // character, plus names built to look like other names' destinations.
        let alphabet = ['a', 'y', 'Y', 'q', 'Q', '0', '_', '-', '.', 'x'];
        let mut names: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
        for _ in 0..2 {
            let longer: Vec<String> = names
                .iter()
                .flat_map(|n| alphabet.iter().map(move |c| format!("{n}{c}")))
                .collect();
            names.extend(longer);
        }
        names.sort();
        names.dedup();
        for tricky in [
            "_yq-hashes-x",
            "yq-hashes",
            "_yq-hashes",
            "x-meta",
            "x-meta-api-x",
            "a-google",
            "A-google",
            "a.b",
            "a_-b",
            "a__b",
            "A_b",
            "_a_b",
        ] {
            names.push(tricky.to_string());
        }
        let mut seen: HashMap<String, (String, &str)> = HashMap::new();
        for name in &names {
            for format in FORMATS {
                let dest = destination_name(name, format).unwrap();
                assert!(engine::export::valid_destination_name(&dest), "{dest}");
                if let Some(other) = seen.insert(dest.clone(), (name.clone(), format.name())) {
                    panic!("{name:?}/{} and {other:?} share {dest}", format.name());
                }
            }
        }
    }

    #[test]
    fn names_too_long_for_a_destination_are_refused() {
        let long = "A".repeat(40);
        assert!(destination_name(&long, Format::Hashes).is_err());
        assert!(destination_name(&"a".repeat(64), Format::Hashes).is_err());
    }
}
