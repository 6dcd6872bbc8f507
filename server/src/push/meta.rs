//! Meta Custom Audiences (platforms.md "Meta"): every `meta-api` body as one request,
//! adds with `POST {api_base}/{audience_id}/users`, removes with `DELETE` on the same path.

use super::retry::{by_status, Failure, SendError, Sender};
use serde_json::Value;

/// Graph API with a pinned version.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com/v23.0";

/// Meta error codes that are worth retrying (besides `is_transient`): unknown, service,
/// app and user rate limits, too many calls, ad-account rate limits.
const TRANSIENT_CODES: [i64; 7] = [1, 2, 4, 17, 32, 613, 80003];

/// Reads a Meta error answer.
pub fn classify(status: u16, body: &str) -> Failure {
    let error = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned());
    let Some(error) = error else {
        return by_status(status, format!("Meta answered HTTP {status}"));
    };
    let code = error.get("code").and_then(Value::as_i64);
    let text = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let message = match code {
        Some(c) => format!("Meta: {text} (code {c}, HTTP {status})"),
        None => format!("Meta: {text} (HTTP {status})"),
    };
    let transient_flag = error.get("is_transient").and_then(Value::as_bool) == Some(true);
    if code == Some(190) {
        Failure::Permanent(message)
    } else if transient_flag || code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
        Failure::Transient(message)
    } else {
        by_status(status, message)
    }
}

/// What Meta answered over a push.
#[derive(Debug, Default)]
pub struct Answers {
    pub requests: u64,
    pub num_received: u64,
    pub num_invalid_entries: u64,
}

/// A fresh session id (below 2^53, exact in any JSON reader).
pub fn new_session_id() -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(1..1u64 << 53)
}

/// Sends each body (one `meta-api` line) to `url` with `method`, as one upload session
/// `session_id`: every push and every direction has its own, so Meta never takes a
/// repeated push's batch for one it has seen (the files number sessions by generation,
/// which a push that failed shares with the next one).
pub fn send_bodies(
    sender: &mut Sender,
    method: &str,
    url: &str,
    token: &str,
    bodies: &[String],
    session_id: u64,
    answers: &mut Answers,
) -> Result<(), SendError> {
    let auth = format!("Bearer {token}");
    for body in bodies {
        let mut b: Value = serde_json::from_str(body).map_err(|e| SendError {
            message: format!("a meta-api body does not parse: {e}"),
        })?;
        b["session"]["session_id"] = Value::from(session_id);
        let body = b.to_string();
        let v = sender.send(method, url, &[("Authorization", &auth)], &body, &classify)?;
        answers.requests += 1;
        answers.num_received += v.get("num_received").and_then(Value::as_u64).unwrap_or(0);
        answers.num_invalid_entries += v
            .get("num_invalid_entries")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_as_the_spec_says() {
        let e = |code: i64, transient: bool| {
            format!(r#"{{"error":{{"message":"m","code":{code},"is_transient":{transient}}}}}"#)
        };
        assert!(
            matches!(classify(400, &e(190, false)), Failure::Permanent(m) if m.contains("code 190"))
        );
        assert!(matches!(
            classify(400, &e(100, true)),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify(400, &e(613, false)),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify(400, &e(100, false)),
            Failure::Permanent(_)
        ));
        assert!(matches!(classify(500, "oops"), Failure::Transient(_)));
        assert!(matches!(classify(403, ""), Failure::Permanent(_)));
    }
}
