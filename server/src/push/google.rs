//! Google Ads Customer Match (platforms.md "Google"): one offline user data job per
//! direction, the `google-api` bodies as `:addOperations` with partial failure, then `:run`.

use super::retry::{by_status, Failure, SendError, Sender};
use serde_json::{json, Value};

/// Google Ads API with a pinned version.
pub const DEFAULT_API_BASE: &str = "https://googleads.googleapis.com/v21";

/// Reads a Google error answer (`{"error": {"code", "message", "status"}}`).
pub fn classify(status: u16, body: &str) -> Failure {
    let error = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned());
    let Some(error) = error else {
        return by_status(status, format!("Google answered HTTP {status}"));
    };
    let state = error.get("status").and_then(Value::as_str).unwrap_or("");
    let text = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let message = format!("Google: {text} ({state}, HTTP {status})");
    if matches!(state, "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL") {
        Failure::Transient(message)
    } else {
        by_status(status, message)
    }
}

/// Where and how to send.
pub struct Account<'a> {
    pub api_base: &'a str,
    pub customer_id: &'a str,
    pub user_list_id: &'a str,
    pub login_customer_id: Option<&'a str>,
    pub token: &'a str,
    pub developer_token: &'a str,
    /// `GRANTED` when the destination's policy tests consent, else `UNSPECIFIED`.
    pub consent: &'a str,
}

/// What Google answered over a push.
#[derive(Debug, Default)]
pub struct Answers {
    pub requests: u64,
    /// Operations refused in partial failures.
    pub partial_failures: u64,
    /// Requests with a partial failure.
    pub partial_failure_requests: u64,
    /// The jobs run (resource names).
    pub jobs: Vec<String>,
}

/// The errors of a partial failure: one per refused operation in the details.
fn partial_failure_count(v: &Value) -> u64 {
    let Some(p) = v.get("partialFailureError") else {
        return 0;
    };
    if p.get("code").and_then(Value::as_i64).unwrap_or(0) == 0 {
        return 0;
    }
    let n: usize = p
        .get("details")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|x| x.get("errors").and_then(Value::as_array))
                .map(Vec::len)
                .sum()
        })
        .unwrap_or(0);
    (n as u64).max(1)
}

/// Runs one job with `bodies` (`google-api` lines: `{"operations": [...]}`).
pub fn run_job(
    sender: &mut Sender,
    account: &Account<'_>,
    bodies: &[String],
    answers: &mut Answers,
) -> Result<(), SendError> {
    let auth = format!("Bearer {}", account.token);
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("developer-token", account.developer_token),
    ];
    if let Some(l) = account.login_customer_id {
        headers.push(("login-customer-id", l));
    }
    let cid = account.customer_id;
    let create = json!({"job": {
        "type": "CUSTOMER_MATCH_USER_LIST",
        "customerMatchUserListMetadata": {
            "userList": format!("customers/{cid}/userLists/{}", account.user_list_id),
            "consent": {"adUserData": account.consent, "adPersonalization": account.consent},
        },
    }});
    let v = sender.send(
        "POST",
        &format!(
            "{}/customers/{cid}/offlineUserDataJobs:create",
            account.api_base
        ),
        &headers,
        &create.to_string(),
        &classify,
    )?;
    answers.requests += 1;
    let Some(job) = v.get("resourceName").and_then(Value::as_str) else {
        return Err(SendError {
            message: "Google: the job was created without a resourceName".into(),
        });
    };
    let job = job.to_string();
    for body in bodies {
        let mut b: Value = serde_json::from_str(body).map_err(|e| SendError {
            message: format!("a google-api body does not parse: {e}"),
        })?;
        b["enablePartialFailure"] = Value::Bool(true);
        let v = sender.send(
            "POST",
            &format!("{}/{job}:addOperations", account.api_base),
            &headers,
            &b.to_string(),
            &classify,
        )?;
        answers.requests += 1;
        let failed = partial_failure_count(&v);
        if failed > 0 {
            answers.partial_failures += failed;
            answers.partial_failure_requests += 1;
        }
    }
    sender.send(
        "POST",
        &format!("{}/{job}:run", account.api_base),
        &headers,
        "{}",
        &classify,
    )?;
    answers.requests += 1;
    answers.jobs.push(job);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_partial_failures() {
        let e = |s: &str| format!(r#"{{"error":{{"code":1,"message":"m","status":"{s}"}}}}"#);
        assert!(matches!(
            classify(429, &e("RESOURCE_EXHAUSTED")),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify(500, &e("INTERNAL")),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify(401, &e("UNAUTHENTICATED")),
            Failure::Permanent(_)
        ));
        let pf = json!({"partialFailureError": {"code": 3, "message": "x", "details": [
            {"errors": [{"message": "a"}, {"message": "b"}]}]}});
        assert_eq!(partial_failure_count(&pf), 2);
        assert_eq!(partial_failure_count(&json!({})), 0);
    }
}
