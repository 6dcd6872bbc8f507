//! `Idempotency-Key` on `POST /v1/records`: a retried write is answered from the first
//! attempt instead of being applied again.
//!
//! The engine does the work (`Engine::ingest_json_idempotent`): the key's digest, the
//! request body's SHA-256 and the answer are written in the ingest batch itself, so a
//! retry within [`engine::IDEMPOTENCY_TTL_MS`] (24 h) gets the first answer and ingests
//! nothing, even after a crash right behind the commit; the same key with another body is
//! refused. Here: the key's digest covers the API key's id too (two API keys never share
//! a key), and requests with one key run one at a time: a duplicate that arrives while
//! the first is running gets 409 `in_progress` at once instead of waiting in a slot.

use super::ApiError;
use crate::keys::StoredKey;
use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Longest `Idempotency-Key` accepted.
const MAX_KEY_BYTES: usize = 255;
/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";

/// The request's idempotency key (`None` without the header; 400 if it is not 1-255
/// visible ASCII characters): SHA-256 of the API key's id, a line feed and the key, and
/// SHA-256 of the body.
pub(crate) fn key(
    headers: &HeaderMap,
    who: &StoredKey,
    body: &[u8],
) -> Result<Option<engine::IdempotencyKey>, ApiError> {
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
    Ok(Some(engine::IdempotencyKey {
        key: id.finalize().into(),
        request: Sha256::digest(body).into(),
    }))
}

/// The error for another body under a key used in the last 24 hours.
pub(crate) fn reused() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        "this Idempotency-Key was used in the last 24 hours for a request with another body; \
         use a new key for a new request",
    )
}

/// The keys whose requests are running.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<HashSet<[u8; 32]>>);

/// A running request's hold on its key; released when dropped (when the engine work is
/// done, also if the client timed out long before).
pub(crate) struct Claim {
    set: Arc<InFlight>,
    key: [u8; 32],
}

impl InFlight {
    /// Claims `key` for a request, or 409 `in_progress` if another one holds it.
    pub(crate) fn claim(self: &Arc<Self>, key: &engine::IdempotencyKey) -> Result<Claim, ApiError> {
        let mut running = self.0.lock().expect("idempotency lock");
        if !running.insert(key.key) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_progress",
                "a request with this Idempotency-Key is still running; retry it with the \
                 same key shortly to get its answer",
            ));
        }
        Ok(Claim {
            set: self.clone(),
            key: key.key,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .expect("idempotency lock")
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn who(id: &str) -> StoredKey {
        StoredKey {
            id: id.into(),
            role: crate::keys::Role::Ingest,
            sha256: String::new(),
            created_at: 0,
        }
    }

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn keys_are_per_api_key_and_bodies_by_digest() {
        let k = |api: &str, value: &str, body: &str| {
            key(&with(value), &who(api), body.as_bytes())
                .unwrap()
                .unwrap()
        };
        let first = k("a1", "retry-1", "[1]");
        assert_eq!(first, k("a1", "retry-1", "[1]"));
        assert_eq!(first.key, k("a1", "retry-1", "[2]").key);
        assert_ne!(first.request, k("a1", "retry-1", "[2]").request);
        assert_ne!(first.key, k("b2", "retry-1", "[1]").key);
        assert_ne!(first.key, k("a1", "retry-2", "[1]").key);
    }

    #[test]
    fn bad_keys_are_refused() {
        for bad in ["", "with space", &"x".repeat(256)] {
            assert!(key(&with(bad), &who("a1"), b"").is_err(), "{bad:?}");
        }
        assert!(key(&HeaderMap::new(), &who("a1"), b"").unwrap().is_none());
    }

    #[test]
    fn one_request_per_key_at_a_time() {
        let set = Arc::new(InFlight::default());
        let k = key(&with("k"), &who("a1"), b"").unwrap().unwrap();
        let claim = set.claim(&k).unwrap();
        assert_eq!(set.claim(&k).err().unwrap().error.code, "in_progress");
        drop(claim);
        assert!(set.claim(&k).is_ok());
    }
}
