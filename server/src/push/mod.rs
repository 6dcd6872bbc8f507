//! Pushing a destination's sync to the platform's API (platforms.md): the server's HTTP
//! client, since the engine knows no HTTP.
//!
//! A push computes the pending adds and removes exactly as `cidb sync DEST --out DIR`
//! does (into a private temporary directory, never the data directory), sends every
//! request body, and acknowledges the sync (engine `sync_ack`) only when every request
//! was accepted. A push that fails or is interrupted (even by `kill -9`) acknowledges
//! nothing, so the next push computes the same diff and sends it again: adding or
//! removing a hash twice is harmless on both platforms. Secrets come from the
//! environment variables the destination names, when the push runs, and appear in no
//! log, error, audit entry or file.

pub mod google;
pub mod meta;
pub mod retry;

use crate::api::export::PushReport;
use engine::export::{PushAudit, PushTarget};
use retry::Sender;
use std::path::Path;

/// A push that stopped: what it did until then, and why.
#[derive(Debug)]
pub struct PushFailure {
    /// What was sent before it stopped (`acknowledged` false).
    pub report: Box<PushReport>,
    /// Why, with the platform's message.
    pub message: String,
}

impl std::fmt::Display for PushFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "push to {} failed, nothing acknowledged: {}",
            self.report.destination, self.message
        )
    }
}

impl std::error::Error for PushFailure {}

fn secret(var: &str, flag: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(format!(
            "the environment variable {var} ({flag}) is not set or empty"
        )),
    }
}

fn lines(path: &Path) -> Result<Vec<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read the sync's requests: {e}")),
    }
}

/// Pushes the pending sync of `name`; audits it, successful or not.
pub fn push(
    db: &engine::Engine,
    s: &query::Segments<'_>,
    name: &str,
) -> Result<PushReport, PushFailure> {
    let mut report = PushReport {
        destination: name.to_string(),
        ..Default::default()
    };
    let result = push_inner(db, s, name, &mut report);
    let audit = PushAudit {
        destination: name.to_string(),
        platform: report.platform.clone(),
        adds: report.adds,
        removes: report.removes,
        requests: report.requests,
        retries: report.retries,
        acknowledged: report.acknowledged,
        outcome: if result.is_ok() { "ok" } else { "failed" }.to_string(),
        error: result.as_ref().err().cloned(),
    };
    let audited = db.audit_push(&audit);
    match result {
        Ok(()) => {
            tracing::info!(
                destination = name,
                adds = report.adds,
                removes = report.removes,
                requests = report.requests,
                retries = report.retries,
                "pushed and acknowledged"
            );
            if let Err(e) = audited {
                return Err(PushFailure {
                    report: Box::new(report),
                    message: format!("pushed and acknowledged, but not audited: {e}"),
                });
            }
            Ok(report)
        }
        Err(message) => {
            tracing::warn!(
                destination = name,
                message = message.as_str(),
                "push failed"
            );
            Err(PushFailure {
                report: Box::new(report),
                message,
            })
        }
    }
}

fn push_inner(
    db: &engine::Engine,
    s: &query::Segments<'_>,
    name: &str,
    report: &mut PushReport,
) -> Result<(), String> {
    let dest = db
        .destination(name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no destination named {name:?}"))?;
    let Some(target) = dest.push.clone() else {
        return Err(format!(
            "destination {name:?} does not push (create it with --push meta|google); use `cidb sync {name} --out DIR`"
        ));
    };
    report.platform = target.platform().name().to_string();
    // Secrets first: a push that cannot authenticate computes nothing.
    let (token, developer_token) = match &target {
        PushTarget::Meta { token_env, .. } => (secret(token_env.as_str(), "--token-env")?, None),
        PushTarget::Google {
            token_env,
            developer_token_env,
            ..
        } => (
            secret(token_env.as_str(), "--token-env")?,
            Some(secret(
                developer_token_env.as_str(),
                "--developer-token-env",
            )?),
        ),
    };
    let dir = tempfile::Builder::new()
        .prefix("cidb-push-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let sync = s.sync(name, dir.path()).map_err(|e| e.to_string())?;
    report.adds = sync.adds;
    report.removes = sync.removes;
    let adds = lines(&sync.adds_file)?;
    let removes = if dest.additive_only {
        Vec::new()
    } else {
        lines(&sync.removes_file)?
    };
    drop(dir);
    let mut sender = Sender::new(
        std::iter::once(token.clone())
            .chain(developer_token.clone())
            .collect(),
    );
    let sent = match &target {
        PushTarget::Meta {
            audience_id,
            api_base,
            ..
        } => {
            let base = api_base.as_deref().unwrap_or(meta::DEFAULT_API_BASE);
            let url = format!("{}/{audience_id}/users", base.trim_end_matches('/'));
            let mut answers = meta::Answers::default();
            let (add_session, remove_session) = (meta::new_session_id(), meta::new_session_id());
            let r = meta::send_bodies(
                &mut sender,
                "POST",
                &url,
                &token,
                &adds,
                add_session,
                &mut answers,
            )
            .and_then(|()| {
                meta::send_bodies(
                    &mut sender,
                    "DELETE",
                    &url,
                    &token,
                    &removes,
                    remove_session,
                    &mut answers,
                )
            });
            report.requests = answers.requests;
            report.num_received = Some(answers.num_received);
            report.num_invalid_entries = Some(answers.num_invalid_entries);
            r
        }
        PushTarget::Google {
            customer_id,
            user_list_id,
            login_customer_id,
            api_base,
            ..
        } => {
            let base = api_base.as_deref().unwrap_or(google::DEFAULT_API_BASE);
            let consent = if dest.policy.contains("consent(") {
                "GRANTED"
            } else {
                "UNSPECIFIED"
            };
            let account = google::Account {
                api_base: base.trim_end_matches('/'),
                customer_id: customer_id.as_str(),
                user_list_id: user_list_id.as_str(),
                login_customer_id: login_customer_id.as_deref(),
                token: &token,
                developer_token: developer_token.as_deref().unwrap_or_default(),
                consent,
            };
            let mut answers = google::Answers::default();
            let mut r = Ok(());
            for bodies in [&adds, &removes] {
                if !bodies.is_empty() {
                    r = google::run_job(&mut sender, &account, bodies, &mut answers);
                    if r.is_err() {
                        break;
                    }
                }
            }
            report.requests = answers.requests;
            report.partial_failures = Some(answers.partial_failures);
            report.partial_failure_requests = Some(answers.partial_failure_requests);
            report.jobs = answers.jobs;
            r
        }
    };
    report.retries = sender.retries;
    // A platform's message should never echo a secret; make sure.
    let redact = |m: String| {
        let mut m = m.replace(&token, "[redacted]");
        if let Some(d) = &developer_token {
            m = m.replace(d.as_str(), "[redacted]");
        }
        m
    };
    sent.map_err(|e| redact(e.message))?;
    crate_crash_point();
    // Exactly what was sent: a sync written (or an erasure applied) meanwhile stays pending.
    db.sync_ack_exactly(name, &sync.pending_digest)
        .map_err(|e| e.to_string())?;
    report.acknowledged = true;
    Ok(())
}

/// A crash test may stop the process after sending and before acknowledging.
fn crate_crash_point() {
    if std::env::var("CIDB_CRASH_AT").as_deref() == Ok("push.before_ack") {
        std::process::abort();
    }
}
