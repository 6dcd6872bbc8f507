//! API errors: `{"error": {"code", "message", "position"?}}` (`api::errors`) with a
//! fitting status code.

use crate::api::errors::{Error, ErrorBody};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The error object the body carries (boxed: a `Result` with an `ApiError` stays
    /// small).
    pub error: Box<Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error: Box::new(Error::new(code, message)),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer <key>)",
        )
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key's role may not use this route",
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A 500 answer: the client gets a generic message and an error id; the error, which
    /// may name files of the data directory, goes only to the server log, under that id.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        let id = error_id();
        tracing::error!(error_id = %id, error = %e, "request failed");
        let mut err = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error {id}; the server log has the details"),
        );
        err.error.error_id = Some(id);
        err
    }

    /// 504: the request timed out. For a write, the engine work runs on and may still
    /// commit: the answer says so, and how to retry safely.
    pub fn timeout(writes: bool) -> Self {
        let mut err = ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            if writes {
                "the request took longer than the server's request timeout; the write is still \
                 running and may commit: retry with the same Idempotency-Key (POST \
                 /v1/records) to get its answer without applying it twice, or check its effect \
                 before retrying"
            } else {
                "the request took longer than the server's request timeout; nothing was written"
            },
        );
        err.error.may_still_commit = Some(writes);
        err
    }

    pub fn overloaded() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many evaluations are running; retry shortly",
        )
    }
}

/// A random id that ties a 500 answer to its log line.
fn error_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<query::Error> for ApiError {
    fn from(e: query::Error) -> Self {
        use query::Error as E;
        match e {
            E::Query(q) => ApiError {
                status: StatusCode::BAD_REQUEST,
                error: Box::new(Error::expression(&q)),
            },
            E::SegmentNotFound(n) => ApiError::not_found(format!("saved segment `{n}` not found")),
            E::SegmentInUse { .. } | E::ModelInUse { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            E::InvalidSegmentName(_) | E::InvalidField(_) => ApiError::bad_request(e.to_string()),
            E::Limit(m) => ApiError::new(StatusCode::BAD_REQUEST, "limit", m),
            E::Engine(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> Self {
        match e {
            engine::Error::InvalidArgument(m) => ApiError::bad_request(m),
            e @ engine::Error::NotFound { .. } => ApiError::not_found(e.to_string()),
            e @ (engine::Error::Conflict(_) | engine::Error::Busy { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            engine::Error::ErasureIncomplete { profile, source } => {
                // The person is erased; say so, without the storage detail (which may
                // name files), and log the detail under the error id.
                let mut err = ApiError::internal(&source);
                err.error.code = "erasure_incomplete".into();
                err.error.message = format!(
                    "profile {profile} is erased; finishing the erasure failed and is retried on the next open ({})",
                    err.error.message
                );
                err
            }
            engine::Error::Ingest(engine::IngestError::BatchTooLarge { got, limit }) => {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "limit",
                    format!("{got} records in one request; at most {limit}"),
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: *self.error };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on its way: do not read it, close.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_name_no_files() {
        let io = engine::StorageError::Io {
            path: "/srv/cidb-data/sync/nl-hashes.pending".into(),
            source: std::io::Error::other("disk full"),
        };
        for err in [
            ApiError::internal(&io),
            ApiError::from(engine::Error::Storage(io)),
        ] {
            assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
            let message = &err.error.message;
            assert!(!message.contains("/srv"), "{message}");
            assert!(!message.contains("disk full"), "{message}");
            let id = err.error.error_id.as_deref().unwrap();
            assert_eq!(id.len(), 16);
            assert!(message.contains(id));
        }
    }
}
