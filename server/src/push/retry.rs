//! Sending one request with retries (platforms.md "Failures").
//!
//! A transient failure (HTTP 429, 5xx, a timeout, a dropped connection, or what the
//! platform's classifier calls transient) is retried at most [`MAX_RETRIES`] times, after
//! `base × 2^n` (capped at [`MAX_DELAY`]) plus up to 50 % random jitter, or after the
//! server's `Retry-After` (seconds, at most [`MAX_RETRY_AFTER`]) when it gives one. The base
//! is [`DEFAULT_BASE`], or `CIDB_PUSH_BACKOFF_MS` milliseconds. A permanent failure stops at
//! once. Headers (the tokens) never appear in a message.

use rand::Rng;
use serde_json::Value;
use std::time::Duration;

/// Retries of one request after transient failures (so at most 7 attempts).
pub const MAX_RETRIES: u32 = 6;
/// The first back-off.
pub const DEFAULT_BASE: Duration = Duration::from_millis(500);
/// The longest back-off between two attempts (before jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// One request's timeout (connect, send and answer), unless `CIDB_PUSH_TIMEOUT_MS`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How a failed answer is to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another attempt; the message says what happened.
    Transient(String),
    /// The push must stop; the platform's message.
    Permanent(String),
}

/// A request that failed for good: permanently, or transiently too often.
#[derive(Debug, Clone)]
pub struct SendError {
    /// What the platform (or the network) said.
    pub message: String,
}

/// An HTTP client with the push's back-off.
pub struct Sender {
    agent: ureq::Agent,
    base: Duration,
    /// Values no message may show (the tokens): replaced by `[redacted]`.
    secrets: Vec<String>,
    /// Retries so far, over every request.
    pub retries: u64,
}

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

impl Sender {
    /// A client with the timeouts and back-off of the environment; `secrets` never
    /// appear in a message it logs or returns.
    pub fn new(secrets: Vec<String>) -> Sender {
        let timeout = env_ms("CIDB_PUSH_TIMEOUT_MS").unwrap_or(DEFAULT_TIMEOUT);
        Sender {
            agent: ureq::AgentBuilder::new()
                .timeout(timeout)
                .user_agent(concat!("cidb/", env!("CARGO_PKG_VERSION")))
                .build(),
            base: env_ms("CIDB_PUSH_BACKOFF_MS").unwrap_or(DEFAULT_BASE),
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
            retries: 0,
        }
    }

    fn redact(&self, mut message: String) -> String {
        for s in &self.secrets {
            message = message.replace(s.as_str(), "[redacted]");
        }
        message
    }

    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.min(20))
            .min(MAX_DELAY);
        let jitter = rand::thread_rng().gen_range(0.0..0.5);
        exp + exp.mul_f64(jitter)
    }

    /// Sends `body` (JSON) with `headers`; the answer's JSON (`null` when empty).
    /// `classify` reads a non-2xx answer: status and body.
    pub fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
        classify: &dyn Fn(u16, &str) -> Failure,
    ) -> Result<Value, SendError> {
        let mut retry = 0;
        loop {
            let mut req = self
                .agent
                .request(method, url)
                .set("Content-Type", "application/json");
            for (k, v) in headers {
                req = req.set(k, v);
            }
            let (failure, retry_after) = match req.send_string(body) {
                Ok(resp) => match resp.into_string() {
                    Ok(text) if text.trim().is_empty() => return Ok(Value::Null),
                    Ok(text) => match serde_json::from_str(&text) {
                        Ok(v) => return Ok(v),
                        Err(_) => (
                            Failure::Transient("the answer is not JSON".to_string()),
                            None,
                        ),
                    },
                    Err(e) => (
                        Failure::Transient(format!("the answer was cut off: {}", e.kind())),
                        None,
                    ),
                },
                Err(ureq::Error::Status(code, resp)) => {
                    let retry_after = resp
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                    let text = resp.into_string().unwrap_or_default();
                    (classify(code, &text), retry_after)
                }
                // The kind only: a transport error's text names the URL, never headers,
                // but the kind is all a user needs.
                Err(ureq::Error::Transport(t)) => (
                    Failure::Transient(format!("{} ({})", t.kind(), method)),
                    None,
                ),
            };
            let failure = match failure {
                Failure::Permanent(m) => Failure::Permanent(self.redact(m)),
                Failure::Transient(m) => Failure::Transient(self.redact(m)),
            };
            match failure {
                Failure::Permanent(message) => return Err(SendError { message }),
                Failure::Transient(message) if retry >= MAX_RETRIES => {
                    return Err(SendError {
                        message: format!("{message} (gave up after {MAX_RETRIES} retries)"),
                    })
                }
                Failure::Transient(message) => {
                    let delay = retry_after.unwrap_or_else(|| self.backoff(retry));
                    tracing::warn!(
                        method,
                        retry = retry + 1,
                        delay_ms = delay.as_millis() as u64,
                        message = message.as_str(),
                        "transient push failure; retrying"
                    );
                    std::thread::sleep(delay);
                    retry += 1;
                    self.retries += 1;
                }
            }
        }
    }
}

/// Classifies by HTTP status alone: 429 and 5xx are transient.
pub fn by_status(status: u16, message: String) -> Failure {
    if status == 429 || status >= 500 {
        Failure::Transient(message)
    } else {
        Failure::Permanent(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let s = Sender {
            agent: ureq::AgentBuilder::new().build(),
            base: Duration::from_millis(100),
            secrets: vec!["tok".into()],
            retries: 0,
        };
        for retry in 0..4 {
            let d = s.backoff(retry);
            let exp = Duration::from_millis(100 << retry);
            assert!(d >= exp && d <= exp.mul_f64(1.5), "{retry}: {d:?}");
        }
        assert!(s.backoff(30) <= MAX_DELAY.mul_f64(1.5));
        assert_eq!(s.redact("a tok b".into()), "a [redacted] b");
        assert_eq!(by_status(503, "x".into()), Failure::Transient("x".into()));
        assert_eq!(by_status(403, "x".into()), Failure::Permanent("x".into()));
    }
}
