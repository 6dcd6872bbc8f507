//! `Idempotency-Key` on `POST /v1/records`: a retried write is answered from the first
//! attempt instead of being applied again.
//!
//! An entry lives in the engine catalog under `idempotency/<hex SHA-256 of key id, LF,
//! Idempotency-Key>` (so two API keys never share one) and holds the SHA-256 of the body,
//! the time and the JSON answer (the ingest report: counts, line numbers, field names and
//! reasons, never values). Within [`TTL_MS`] the same key with the same body gets that
//! answer back; with another body, 409. Requests with one key run one at a time: a
//! duplicate that arrives while the first is running gets 409 `in_progress`.
//!
//! The entry is written after the ingest has committed, so a crash between the two leaves
//! a committed batch without its entry, and a retry applies it again; that window is
//! documented in the README.

use super::ApiError;
use crate::keys::StoredKey;
use axum::http::{HeaderMap, StatusCode};
use engine::{Engine, StorageError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// How long an answer is kept: 24 hours.
pub(crate) const TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest `Idempotency-Key` accepted.
const MAX_KEY_BYTES: usize = 255;
const PREFIX: &str = "idempotency/";
/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request's idempotency key, as it is stored.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// The catalog entry's name.
    name: String,
    /// Hex SHA-256 of the request body.
    body: String,
}

/// What the catalog holds for a key.
#[derive(Serialize, Deserialize)]
struct Entry {
    body_sha256: String,
    at: i64,
    answer: Value,
}

/// What an earlier request with the same key left.
pub(crate) enum Prior {
    /// Nothing (or an expired entry).
    None,
    /// The same body: its answer.
    Same(Value),
    /// Another body.
    Different,
}

impl Key {
    /// The request's key, if it has an `Idempotency-Key` header (1-255 visible ASCII
    /// characters; anything else is 400).
    pub(crate) fn from_request(
        headers: &HeaderMap,
        who: &StoredKey,
        body: &[u8],
    ) -> Result<Option<Key>, ApiError> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(None);
        };
        let key = value.as_bytes();
        if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.iter().all(u8::is_ascii_graphic) {
            return Err(ApiError::bad_request(format!(
                "Idempotency-Key: 1 to {MAX_KEY_BYTES} visible ASCII characters"
            )));
        }
        let mut id = Sha256::new();
        id.update(who.id.as_bytes());
        id.update(b"\n");
        id.update(key);
        Ok(Some(Key {
            name: format!("{PREFIX}{}", hex(&id.finalize())),
            body: hex(&Sha256::digest(body)),
        }))
    }

    /// What an earlier request with this key left, as of `now` (ms).
    pub(crate) fn prior(&self, engine: &Engine, now: i64) -> Result<Prior, StorageError> {
        let Some(bytes) = engine.catalog_get(&self.name)? else {
            return Ok(Prior::None);
        };
        let Ok(entry) = serde_json::from_slice::<Entry>(&bytes) else {
            tracing::warn!(entry = %self.name, "unreadable idempotency entry ignored");
            return Ok(Prior::None);
        };
        Ok(if now.saturating_sub(entry.at) >= TTL_MS {
            Prior::None
        } else if entry.body_sha256 == self.body {
            Prior::Same(entry.answer)
        } else {
            Prior::Different
        })
    }

    /// Records the answer to this key's request (durably: the catalog flushes).
    pub(crate) fn record(
        &self,
        engine: &Engine,
        answer: &Value,
        now: i64,
    ) -> Result<(), StorageError> {
        let entry = Entry {
            body_sha256: self.body.clone(),
            at: now,
            answer: answer.clone(),
        };
        let bytes = serde_json::to_vec(&entry).expect("JSON values serialize");
        engine.catalog_put(&self.name, Some(&bytes))
    }

    /// The error for another body under this key.
    pub(crate) fn reused() -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was used in the last 24 hours for a request with another \
             body; use a new key for a new request",
        )
    }
}

/// Removes the entries older than [`TTL_MS`]; how many.
pub(crate) fn sweep(engine: &Engine, now: i64) -> Result<usize, StorageError> {
    let mut removed = 0;
    for (name, bytes) in engine.catalog_list()? {
        if !name.starts_with(PREFIX) {
            continue;
        }
        let expired = serde_json::from_slice::<Entry>(&bytes)
            .map_or(true, |e| now.saturating_sub(e.at) >= TTL_MS);
        if expired {
            engine.catalog_put(&name, None)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The keys whose requests are running.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<HashSet<String>>);

/// A running request's hold on its key; released when dropped (when the engine work is
/// done, also if the client timed out long before).
pub(crate) struct Claim {
    set: Arc<InFlight>,
    name: String,
}

impl InFlight {
    /// Claims `key` for a request, or 409 `in_progress` if another one holds it.
    pub(crate) fn claim(self: &Arc<Self>, key: &Key) -> Result<Claim, ApiError> {
        let mut running = self.0.lock().expect("idempotency lock");
        if !running.insert(key.name.clone()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_progress",
                "a request with this Idempotency-Key is still running; retry it with the \
                 same key shortly to get its answer",
            ));
        }
        Ok(Claim {
            set: self.clone(),
            name: key.name.clone(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .expect("idempotency lock")
            .remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn key(who: &str, value: &str, body: &str) -> Key {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        let who = StoredKey {
            id: who.into(),
            role: crate::keys::Role::Ingest,
            sha256: String::new(),
            created_at: 0,
        };
        Key::from_request(&headers, &who, body.as_bytes())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn answers_expire_after_a_day_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let k = key("a1", "retry-1", "[1]");
        let t0 = 1_000_000;
        assert!(matches!(k.prior(&engine, t0).unwrap(), Prior::None));
        k.record(&engine, &json!({"accepted": 1}), t0).unwrap();
        assert!(matches!(k.prior(&engine, t0 + 1).unwrap(), Prior::Same(v) if v["accepted"] == 1));
        let other_body = key("a1", "retry-1", "[2]");
        assert!(matches!(
            other_body.prior(&engine, t0 + 1).unwrap(),
            Prior::Different
        ));
        let other_api_key = key("b2", "retry-1", "[2]");
        assert!(matches!(
            other_api_key.prior(&engine, t0 + 1).unwrap(),
            Prior::None
        ));
        assert!(matches!(
            k.prior(&engine, t0 + TTL_MS).unwrap(),
            Prior::None
        ));
        assert_eq!(sweep(&engine, t0 + TTL_MS - 1).unwrap(), 0);
        assert_eq!(sweep(&engine, t0 + TTL_MS).unwrap(), 1);
        assert!(engine.catalog_get(&k.name).unwrap().is_none());
    }

    #[test]
    fn bad_keys_are_refused() {
        let who = StoredKey {
            id: "a1".into(),
            role: crate::keys::Role::Ingest,
            sha256: String::new(),
            created_at: 0,
        };
        for bad in ["", "with space", &"x".repeat(256)] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            assert!(Key::from_request(&headers, &who, b"").is_err(), "{bad:?}");
        }
        assert!(Key::from_request(&HeaderMap::new(), &who, b"")
            .unwrap()
            .is_none());
    }
}
