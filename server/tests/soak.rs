//! Soak test: the real server under a mix of every kind of request at once — ingest
//! batches (with idempotency keys, some retried), counts, breakdowns, samples, metrics
//! and health, full exports, diff syncs with acknowledgements, erasures and objections,
//! model retraining and `score()` counts.
//!
//! Asserts that every request is answered within its deadline (no hang), that every answer
//! is one the route documents (a 5xx other than 503 "overloaded" is unexpected), that the
//! count of a cohort nobody merges or erases never goes down, that SIGTERM stops the
//! server within 10 s, and that `cidb check` is clean afterwards.
//!
//! Duration: `CIDB_SOAK_SECS` (default 4; the README's 10-minute soak sets 600).

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{cidb, create_key as key};

/// Every request's deadline: longer than any answer may take, so a hang fails the test.
const DEADLINE: Duration = Duration::from_secs(40);

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// (route, status) → answers.
    answers: Mutex<BTreeMap<(String, u16), u64>>,
    /// Unexpected answers, described.
    unexpected: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, route: &str, status: StatusCode, ok: &[u16], body: &str) {
        *self
            .answers
            .lock()
            .unwrap()
            .entry((route.to_string(), status.as_u16()))
            .or_default() += 1;
        let fine = ok.contains(&status.as_u16()) || status == StatusCode::SERVICE_UNAVAILABLE;
        if !fine {
            let mut u = self.unexpected.lock().unwrap();
            if u.len() < 20 {
                u.push(format!(
                    "{route}: {status} {}",
                    &body[..body.len().min(300)]
                ));
            }
        }
    }

    fn failure(&self, what: String) {
        self.unexpected.lock().unwrap().push(what);
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    tally: Arc<Tally>,
}

impl Client {
    /// Sends a request; records the answer; `None` when it did not arrive in time.
    async fn send(
        &self,
        route: &str,
        request: reqwest::RequestBuilder,
        ok: &[u16],
    ) -> Option<(StatusCode, String)> {
        match tokio::time::timeout(DEADLINE, async {
            let response = request.send().await?;
            let status = response.status();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        })
        .await
        {
            Ok(Ok((status, body))) => {
                self.tally.record(route, status, ok, &body);
                Some((status, body))
            }
            Ok(Err(e)) => {
                self.tally.failure(format!("{route}: transport error {e}"));
                None
            }
            Err(_) => {
                self.tally
                    .failure(format!("{route}: no answer within {DEADLINE:?} (hang)"));
                None
            }
        }
    }

    fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Value,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("Content-Type", "application/json")
            .body(body.to_string())
    }
}

/// A batch of records: `stable` people (unique, never merged or erased) and `churn`
/// people whose phones repeat, so batches merge them.
fn batch(n: u64) -> String {
    let mut lines = Vec::new();
    for j in 0..200u64 {
        let id = n * 200 + j;
        let country = ["NL", "DE", "BE"][(id % 3) as usize];
        let record = if j % 2 == 0 {
            json!({
                "source": "crm",
                "identifiers": {"email": format!("s{id}@soak.example")},
                "attributes": {"cohort": "stable", "country": country},
                "consent": {"custom_audiences": true},
                "events": [{"type": "purchase", "at": "2026-01-01T00:00:00Z", "value": j}],
            })
        } else {
            json!({
                "source": "app",
                "identifiers": {"email": format!("c{id}@soak.example"), "phone": format!("+316{:08}", id % 97)},
                "attributes": {"cohort": "churn", "country": "NL"},
                "consent": {"custom_audiences": j % 3 != 0},
            })
        };
        lines.push(record.to_string());
    }
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_is_answered_under_a_mixed_load() {
    let secs: u64 = std::env::var("CIDB_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (admin, analyst, ingest) = (
        key(&data, "admin"),
        key(&data, "analyst"),
        key(&data, "ingest"),
    );
    let (mut child, base) = common::serve(&data, &[], &[]);
    let tally = Arc::new(Tally::default());
    let client = Arc::new(Client {
        http: reqwest::Client::new(),
        base,
        tally: tally.clone(),
    });
    // A saved segment to export and sync.
    let put = client.json(
        reqwest::Method::PUT,
        "/v1/segments/soak_nl",
        &analyst,
        json!({"expr": "country = \"NL\""}),
    );
    client.send("put segment", put, &[200]).await;

    // A first batch before the load, so that the fields the queries name exist.
    let first = client
        .http
        .post(format!("{}/v1/records", client.base))
        .bearer_auth(&ingest)
        .header("Content-Type", "application/x-ndjson")
        .body(batch(u64::MAX / 400));
    client.send("records", first, &[200]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();

    // Ingest: batches with idempotency keys; every fourth is sent twice (a retry).
    {
        let (c, stop, batches, key) = (
            client.clone(),
            stop.clone(),
            batches.clone(),
            ingest.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = batch(n);
                for _ in 0..(1 + u64::from(n % 4 == 0)) {
                    let request = c
                        .http
                        .post(format!("{}/v1/records", c.base))
                        .bearer_auth(&key)
                        .header("Content-Type", "application/x-ndjson")
                        .header("Idempotency-Key", format!("soak-{n}"))
                        .body(body.clone());
                    c.send("records", request, &[200]).await;
                }
                batches.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    // Queries: the stable cohort's count never goes down; breakdowns and samples.
    for q in 0..2 {
        let (c, stop, key) = (client.clone(), stop.clone(), analyst.clone());
        tasks.push(tokio::spawn(async move {
            let mut last = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = c.json(
                    reqwest::Method::POST,
                    "/v1/segments/count",
                    &key,
                    json!({"expr": "cohort = \"stable\""}),
                );
                if let Some((StatusCode::OK, body)) = c.send("count", r, &[200]).await {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    let n = v["count"].as_u64().unwrap();
                    if n < last {
                        c.tally
                            .failure(format!("client {q}: stable count fell from {last} to {n}"));
                    }
                    last = n;
                }
                let (path, body) = if i % 2 == 0 {
                    (
                        "/v1/segments/breakdown",
                        json!({"expr": "ALL", "field": "country", "top": 5}),
                    )
                } else {
                    (
                        "/v1/segments/sample",
                        json!({"expr": "consent(\"custom_audiences\")", "size": 10}),
                    )
                };
                let r = c.json(reqwest::Method::POST, path, &key, body);
                c.send(path, r, &[200]).await;
                i += 1;
            }
        }));
    }
    // Metrics and health.
    {
        let (c, stop) = (client.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = c.http.get(format!("{}/metrics", c.base));
                c.send("metrics", r, &[200]).await;
                let r = c.http.get(format!("{}/healthz", c.base));
                c.send("healthz", r, &[200]).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // Exports, diff syncs and acknowledgements (a busy destination answers 409; nothing
    // pending to acknowledge answers 409 too).
    for e in 0..2 {
        let (c, stop, key) = (client.clone(), stop.clone(), analyst.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (route, body, ok): (&str, Value, &[u16]) = match (i + e) % 4 {
                    0 => ("export full", json!({"format": "hashes"}), &[200]),
                    1 => (
                        "export adds",
                        json!({"format": "google-api", "mode": "adds"}),
                        &[200, 409],
                    ),
                    2 => (
                        "export removes",
                        json!({"format": "google-api", "mode": "removes"}),
                        &[200, 409],
                    ),
                    _ => ("ack", json!({"format": "google-api"}), &[200, 409]),
                };
                let path = if route == "ack" {
                    "/v1/segments/soak_nl/export/ack"
                } else {
                    "/v1/segments/soak_nl/export"
                };
                let r = c.json(reqwest::Method::POST, path, &key, body);
                c.send(route, r, ok).await;
                i += 1;
            }
        }));
    }
    // Models: retraining (the writer lock, a full scoring) while everything else runs,
    // and score() inside counts. Early on the seed is under 100 (400), and a count that
    // names the model before its first training is an unknown model (400).
    {
        let (c, stop, key) = (client.clone(), stop.clone(), analyst.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if i % 4 == 0 {
                    let r = c.json(
                        reqwest::Method::POST,
                        "/v1/models/soak_m/train",
                        &key,
                        json!({"seed": "cohort = \"stable\" AND country = \"NL\""}),
                    );
                    c.send("train model", r, &[200, 400]).await;
                } else {
                    let r = c.json(
                        reqwest::Method::POST,
                        "/v1/segments/count",
                        &key,
                        json!({"expr": "score(\"soak_m\") >= 50 AND consent(\"custom_audiences\")"}),
                    );
                    c.send("count score", r, &[200, 400]).await;
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    // Erasures and objections of churn people (404: not there, or already merged away
    // under another email that was erased).
    {
        let (c, stop, key, batches) =
            (client.clone(), stop.clone(), admin.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let done = batches.load(Ordering::Relaxed);
                if done == 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let id = ((i * 7919) % (done * 200)) | 1; // odd ids are churn people
                let email = format!("c{id}@soak.example");
                let r = if i % 3 == 0 {
                    c.json(
                        reqwest::Method::POST,
                        "/v1/privacy/objections",
                        &key,
                        json!({"email": email, "channel": "email"}),
                    )
                } else {
                    c.json(
                        reqwest::Method::POST,
                        "/v1/privacy/forget",
                        &key,
                        json!({"email": email}),
                    )
                };
                let route = if i % 3 == 0 { "object" } else { "forget" };
                c.send(route, r, &[200, 404]).await;
                i += 1;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // SIGTERM stops it within 10 s.
    let exited = common::terminate(&mut child, Duration::from_secs(10));
    let answers = tally.answers.lock().unwrap().clone();
    let total: u64 = answers.values().sum();
    println!(
        "soak: {secs} s, {total} answers, {} ingest batches",
        batches.load(Ordering::Relaxed)
    );
    for ((route, status), n) in &answers {
        println!("  {route:16} {status} × {n}");
    }
    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
    assert!(
        exited.is_some(),
        "SIGTERM did not stop the server within 10 s"
    );
    assert!(
        batches.load(Ordering::Relaxed) > 0,
        "no ingest batch went through"
    );
    // Retries with an idempotency key stored nothing twice: one event per stable person
    // (100 a batch, the first batch included); churn people have none.
    let stats = common::json_ok(&data, &["stats", "--json"]);
    assert_eq!(
        stats["events"].as_u64(),
        Some((batches.load(Ordering::Relaxed) + 1) * 100),
        "events stored once per batch: {stats}"
    );
    let check = cidb(&data, &["check", "--json"]);
    assert!(
        check.status.success(),
        "check after the soak: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
