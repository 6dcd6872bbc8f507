//! `POST /v1/segments/{name}/export` (the hashed audience, or a diff sync's adds or
//! removes, streamed) and `POST /v1/segments/{name}/export/ack`.

use super::super::{analyst, stream, ApiError, AppState};
use super::body::authorized_body;
use super::destinations::destination_name;
use super::{answer, ANALYST};
use crate::api::export::{AckBody, AckReport, ExportBody};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::export::{ExportOptions, Format, Platform};
use serde_json::Value;

/// `POST /v1/segments/{name}/export`: the hashed audience, streamed (`full`), or the adds
/// or removes of a diff sync, computed before the answer starts (so a busy destination
/// or a failure is a proper error status, never a cut stream) and then streamed.
pub(super) async fn export(
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
                    push: None,
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

/// `POST /v1/segments/{name}/export/ack`: records the pending diff sync as sent.
pub(super) async fn export_ack(
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
    answer(&AckReport::from(&report))
}
