//! The real server (`cidb serve` on an ephemeral loopback port) driven by a real HTTP
//! client: every route, every role boundary, malformed input, limits, concurrent ingest
//! while queries run, and graceful shutdown.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    base: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
    admin: String,
    analyst: String,
    ingest: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod common;

use common::{cidb, create_key as key};

const RECORDS: &str = r#"{"source":"crm","identifiers":{"email":"a@example.com","phone":"+31612345678"},"attributes":{"country":"NL","first_name":"Anna","interests":["running"]},"consent":{"custom_audiences":true,"marketing":true}}
{"source":"crm","identifiers":{"email":"b@example.com"},"attributes":{"country":"NL"},"consent":{"custom_audiences":true}}
{"source":"shop","identifiers":{"email":"c@example.com"},"attributes":{"country":"DE"}}
"#;

/// Starts a server on a fresh database holding `RECORDS`, with keys of every role.
fn start(extra: &[&str]) -> Server {
    start_with_env(extra, &[])
}

/// Like [`start`], with environment variables for the server.
fn start_with_env(extra: &[&str], env: &[(&str, &Path)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("records.jsonl");
    std::fs::write(&file, RECORDS).unwrap();
    assert!(cidb(&data, &["import", file.to_str().unwrap(), "--json"])
        .status
        .success());
    let (admin, analyst, ingest) = (
        key(&data, "admin"),
        key(&data, "analyst"),
        key(&data, "ingest"),
    );
    let (child, base) = common::serve(&data, extra, env);
    Server {
        child,
        base,
        data,
        _dir: dir,
        admin,
        analyst,
        ingest,
    }
}

impl Server {
    /// A request with a JSON body (`Content-Type: application/json`) if `body` is given.
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let content_type = body.map(|_| "application/json");
        self.call_as(method, path, key, content_type, body).await
    }

    /// A request with the given `Content-Type` (none if `None`); every request has a
    /// deadline, so a hung server fails the test instead of hanging it.
    async fn call_as(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let (status, _, text) = self
            .call_full(method, path, &headers(key, content_type), body)
            .await;
        (status, text)
    }

    /// A request with arbitrary headers; the answer's status, headers and body.
    async fn call_full(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = client().request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(name.as_str(), value.as_str());
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.text().await.unwrap())
    }

    async fn json_get(&self, path: &str, key: &str) -> Value {
        let (status, text) = self.call("GET", path, Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn json(&self, method: &str, path: &str, key: &str, body: Value) -> Value {
        let (status, text) = self
            .call(method, path, Some(key), Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// A client whose requests fail after 30 s instead of waiting forever.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `Authorization` and `Content-Type` headers.
fn headers(key: Option<&str>, content_type: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(k) = key {
        out.push(("Authorization".to_string(), format!("Bearer {k}")));
    }
    if let Some(t) = content_type {
        out.push(("Content-Type".to_string(), t.to_string()));
    }
    out
}

fn error_code(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    v["error"]["code"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers() {
    let s = start(&[]);
    let (status, text) = s.call("GET", "/healthz", None, None).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, r#"{"status":"ok"}"#)
    );

    let ing = s
        .json("POST", "/v1/records", &s.ingest, json!([
            {"source": "web", "identifiers": {"email": "d@example.com"}, "attributes": {"country": "NL"}, "consent": {"custom_audiences": true}}
        ]))
        .await;
    assert_eq!(ing["new_profiles"], 1);
    let (status, text) = s
        .call_as("POST", "/v1/records", Some(&s.admin), Some("application/x-ndjson"), Some("{\"source\":\"web\",\"identifiers\":{\"email\":\"e@example.com\"}}\n{\"source\":\"web\"}\n"))
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["accepted"].as_u64(), v["rejected_count"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        v["rejected"][0]["line"], 2,
        "JSON Lines rejections name their line"
    );

    let a = &s.analyst;
    assert_eq!(
        s.json(
            "POST",
            "/v1/segments/count",
            a,
            json!({"expr": "country = \"NL\""})
        )
        .await["count"],
        3
    );
    let at = s
        .json(
            "POST",
            "/v1/segments/count",
            a,
            json!({"expr": "ALL", "at": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(at["at"], "2026-01-01T00:00:00Z");
    let sample = s
        .json(
            "POST",
            "/v1/segments/sample",
            a,
            json!({"expr": "ALL", "size": 2, "seed": 7}),
        )
        .await;
    assert_eq!(sample["sample"].as_array().unwrap().len(), 2);
    assert_eq!(sample["count"], 5);
    let b = s
        .json(
            "POST",
            "/v1/segments/breakdown",
            a,
            json!({"expr": "ALL", "field": "country"}),
        )
        .await;
    assert_eq!(
        (&b["values"], &b["suppressed"]["groups"]),
        (&json!([]), &json!(2)),
        "an analyst sees no group under 10 members: {b}"
    );
    let b = s
        .json(
            "POST",
            "/v1/segments/breakdown",
            &s.admin,
            json!({"expr": "ALL", "field": "country"}),
        )
        .await;
    assert_eq!(b["values"][0], json!({"value": "nl", "count": 3}));
    let o = s
        .json(
            "POST",
            "/v1/segments/overlap",
            a,
            json!({"exprs": ["country = \"NL\"", "consent(\"marketing\")"]}),
        )
        .await;
    assert_eq!(o["matrix"][0][1], 1);
    let e = s
        .json(
            "POST",
            "/v1/segments/explain",
            a,
            json!({"expr": "country = \"NL\" AND NOT source(\"shop\")"}),
        )
        .await;
    assert_eq!(e["count"], 3);
    assert!(e["plan"]["label"].is_string());

    let saved = s
        .json(
            "PUT",
            "/v1/segments/nl",
            a,
            json!({"expr": "country = \"NL\""}),
        )
        .await;
    assert_eq!(saved["name"], "nl");
    assert_eq!(
        s.json("GET", "/v1/segments/nl", a, json!({})).await["count"],
        3
    );
    assert_eq!(
        s.json("GET", "/v1/segments", a, json!({})).await["segments"][0]["name"],
        "nl"
    );

    // Hashed export, streamed; then a diff sync and its acknowledgement.
    let (status, text) = s
        .call(
            "POST",
            "/v1/segments/nl/export",
            Some(a),
            Some(r#"{"format": "hashes"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        text.lines().count(),
        4,
        "3 consented NL emails and one phone: {text}"
    );
    assert!(!text.contains("example.com"));
    let (status, adds) = s
        .call(
            "POST",
            "/v1/segments/nl/export",
            Some(a),
            Some(r#"{"format": "google-api", "mode": "adds"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(adds.lines().count(), 1);
    let ack = s
        .json(
            "POST",
            "/v1/segments/nl/export/ack",
            a,
            json!({"format": "google-api"}),
        )
        .await;
    assert_eq!(ack["profiles"], 3);
    let (_, adds) = s
        .call(
            "POST",
            "/v1/segments/nl/export",
            Some(a),
            Some(r#"{"format": "google-api", "mode": "adds"}"#),
        )
        .await;
    assert_eq!(adds, "", "nothing new since the acknowledged sync");

    let found = s
        .json(
            "GET",
            "/v1/profiles/lookup?email=A@Example.com",
            &s.admin,
            json!({}),
        )
        .await;
    let id = found["profile"]["id"].as_u64().unwrap();
    let by_id = s
        .json("GET", &format!("/v1/profiles/{id}"), &s.admin, json!({}))
        .await;
    assert_eq!(
        by_id["profile"]["identifiers"][0]["provenance"]["source"],
        "crm"
    );
    let (status, text) = s
        .call("GET", "/v1/profiles/999999", Some(&s.admin), None)
        .await;
    assert_eq!(
        (status, error_code(&text).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    let access = s
        .json(
            "GET",
            "/v1/privacy/access?email=a@example.com",
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(access["segments"], json!(["nl"]));
    assert_eq!(access["exports"][0]["action"], "export");
    assert!(access["exports"][0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("key:"));
    for path in ["/v1/privacy/access?email=a@example.com", "/v1/audit"] {
        let (status, _) = s.call("GET", path, Some(a), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} is admin only");
    }
    let (status, _) = s
        .call(
            "POST",
            "/v1/privacy/forget",
            Some(a),
            Some(r#"{"email": "b@example.com"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "erasure is admin only");
    let erased = s
        .json(
            "POST",
            "/v1/privacy/forget",
            &s.admin,
            json!({"email": "b@example.com"}),
        )
        .await;
    assert_eq!(
        (
            erased["found"].as_bool(),
            erased["suppression_list"].as_str()
        ),
        (Some(true), Some("erased"))
    );
    let (status, _) = s
        .call(
            "GET",
            "/v1/profiles/lookup?email=b@example.com",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let o = s
        .json(
            "POST",
            "/v1/privacy/objections",
            &s.admin,
            json!({"email": "d@example.com", "channel": "web_form"}),
        )
        .await;
    assert_eq!(o["channel"], "web_form");
    let listed = s
        .json("GET", "/v1/privacy/objections", &s.admin, json!({}))
        .await;
    assert_eq!(listed["objections"].as_array().unwrap().len(), 1);
    let id = o["id"].as_u64().unwrap();
    let w = s
        .json(
            "DELETE",
            &format!("/v1/privacy/objections/{id}"),
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(w["withdrawn"], id);
    let (status, _) = s.call("GET", "/v1/privacy/objections", Some(a), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let audit = s.json("GET", "/v1/audit", &s.admin, json!({})).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "export",
            "sync",
            "sync_ack",
            "sync",
            "forget",
            "object",
            "withdraw_objection"
        ]
    );

    let deleted = s.json("DELETE", "/v1/segments/nl", a, json!({})).await;
    assert_eq!(deleted["deleted"], "nl");
    let (status, _) = s.call("GET", "/v1/segments/nl", Some(a), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, metrics) = s.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains(
            r#"cidb_http_requests_total{method="POST",route="/v1/segments/count",status="200"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("cidb_ingested_records_total 2"));
    assert!(
        metrics.contains("cidb_profiles 4"),
        "five ingested, one erased"
    );
    assert!(metrics.contains("cidb_segment_evaluation_seconds_count"));
    assert!(!metrics.contains("example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_files_and_routes() {
    let s = start(&[]);
    // The console: embedded files with a strict Content-Security-Policy, no key needed.
    for (path, kind) in [
        ("/", "text/html"),
        ("/console/js/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
    ] {
        let (status, headers, body) = s.call_full("GET", path, &[], None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} names another host"
        );
    }
    let (status, text) = s.call("GET", "/console/../Cargo.toml", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");

    // whoami: any valid key, its role.
    for (key, role) in [
        (&s.admin, "admin"),
        (&s.analyst, "analyst"),
        (&s.ingest, "ingest"),
    ] {
        let (status, text) = s.call("GET", "/v1/whoami", Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["role"], role);
        assert!(v["id"].is_string() && !key.ends_with(v["id"].as_str().unwrap()));
    }
    let (status, _) = s.call("GET", "/v1/whoami", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The field catalog: kinds for everyone, no personal values for an analyst.
    let fields = |v: &Value, name: &str| {
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no field {name} in {v}"))
            .clone()
    };
    let analyst = s.json_get("/v1/fields", &s.analyst).await;
    let first_name = fields(&analyst, "first_name");
    assert_eq!(first_name["kinds"], json!(["text"]));
    assert_eq!(first_name["personal"], true);
    assert_eq!(first_name["values"], json!([]));
    assert!(!analyst.to_string().to_lowercase().contains("anna"));
    // Values of fewer profiles than the minimum group size (10) are left out for an
    // analyst, as in a breakdown.
    let country = fields(&analyst, "country");
    assert_eq!(country["values"], json!([]));
    assert_eq!(country["profiles"], 3);
    assert_eq!(fields(&analyst, "interests")["kinds"], json!(["list"]));
    assert_eq!(
        analyst["purposes"],
        json!(["custom_audiences", "marketing"])
    );
    assert_eq!(analyst["sources"], json!(["crm", "shop"]));
    assert_eq!(analyst["identifier_types"], json!(["email", "phone"]));
    let admin = s.json_get("/v1/fields", &s.admin).await;
    assert_eq!(
        fields(&admin, "country")["values"],
        json!([{"count": 2, "value": "nl"}, {"count": 1, "value": "de"}])
    );
    assert_eq!(
        fields(&admin, "first_name")["values"],
        json!([{"count": 1, "value": "anna"}])
    );
    let (status, _) = s.call("GET", "/v1/fields", Some(&s.ingest), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // History: saving takes today's point; deleting the segment deletes its history.
    let (status, text) = s
        .call("GET", "/v1/segments/nl/history", Some(&s.analyst), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let body = json!({"expr": "country = \"NL\""});
    s.json("PUT", "/v1/segments/nl", &s.analyst, body.clone())
        .await;
    let today = s
        .json(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            json!({"expr": "ALL"}),
        )
        .await["at"]
        .as_str()
        .unwrap()[..10]
        .to_string();
    let history = s.json_get("/v1/segments/nl/history", &s.analyst).await;
    assert_eq!(
        history,
        json!({"name": "nl", "points": [{"day": today, "count": 2}]})
    );
    // Saved again the same day: still one point, replaced.
    s.json(
        "PUT",
        "/v1/segments/nl",
        &s.admin,
        json!({"expr": "country = \"DE\""}),
    )
    .await;
    let history = s.json_get("/v1/segments/nl/history", &s.admin).await;
    assert_eq!(history["points"], json!([{"day": today, "count": 1}]));
    let (status, _) = s
        .call("GET", "/v1/segments/nl/history", Some(&s.ingest), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call("DELETE", "/v1/segments/nl", Some(&s.analyst), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    s.json("PUT", "/v1/segments/nl", &s.analyst, body).await;
    let history = s.json_get("/v1/segments/nl/history", &s.analyst).await;
    assert_eq!(history["points"], json!([{"day": today, "count": 2}]));

    // A model's curve: 404 for an unknown model (the browser test trains one).
    let (status, text) = s
        .call("GET", "/v1/models/nope/curve", Some(&s.analyst), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_without_leaking_data() {
    let s = start(&[]);
    let count = r#"{"expr": "ALL"}"#;
    let record = r#"[{"source":"web","identifiers":{"email":"x@example.com"}}]"#;
    // (method, path, key, body, expected status)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        StatusCode,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/segments/count",
            None,
            Some(count),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "POST",
            "/v1/segments/count",
            Some("cidb_000000000000_bad"),
            Some(count),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "POST",
            "/v1/segments/count",
            Some("not-a-key"),
            Some(count),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "POST",
            "/v1/segments/count",
            Some(&s.ingest),
            Some(count),
            StatusCode::FORBIDDEN,
        ),
        (
            "POST",
            "/v1/records",
            Some(&s.analyst),
            Some(record),
            StatusCode::FORBIDDEN,
        ),
        (
            "POST",
            "/v1/records",
            None,
            Some(record),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            "/v1/profiles/lookup?email=a@example.com",
            Some(&s.analyst),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            "/v1/profiles/0",
            Some(&s.analyst),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            "/v1/profiles/0",
            Some(&s.ingest),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "PUT",
            "/v1/segments/x",
            Some(&s.ingest),
            Some(count),
            StatusCode::FORBIDDEN,
        ),
        (
            "POST",
            "/v1/segments/x/export",
            Some(&s.ingest),
            Some(r#"{"format":"hashes"}"#),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (method, path, key, body, want) in cases {
        let (status, text) = s.call(method, path, key, body).await;
        assert_eq!(status, want, "{method} {path} with {key:?}: {text}");
        assert!(
            !text.contains("example.com") && !text.contains("count\""),
            "{text}"
        );
        assert!(["unauthorized", "forbidden"].contains(&error_code(&text).as_str()));
    }
    // The refused write left nothing behind.
    let n = s
        .json(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            json!({"expr": "ALL"}),
        )
        .await;
    assert_eq!(n["count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_and_limits_are_clear_errors() {
    let s = start(&["--max-body-bytes", "2048", "--max-expr-bytes", "100"]);
    let a = Some(s.analyst.as_str());
    let (status, text) = s
        .call(
            "POST",
            "/v1/segments/count",
            a,
            Some("{\"expr\": \n  nope}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "malformed_json");
    assert_eq!(v["error"]["position"]["line"], 2);

    let expr = r#"country = "NL" AND (age >"#;
    let (status, text) = s
        .call(
            "POST",
            "/v1/segments/count",
            a,
            Some(&json!({"expr": expr}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "invalid_expression");
    assert_eq!(v["error"]["position"]["line"], 1);
    assert_eq!(
        v["error"]["position"]["column"],
        expr.len() + 1,
        "at the end, where a value is missing"
    );

    let long = format!(r#"{{"expr": "{}ALL"}}"#, "NOT ".repeat(30));
    let big = format!(
        "[{}]",
        vec![r#"{"source":"web","identifiers":{"email":"x@example.com"}}"#; 100].join(",")
    );
    // (method, path, key, body, status, error code, what it shows)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        StatusCode,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/segments/count",
            a,
            Some(r#"{"expr": "ALL", "colour": 1}"#),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "unknown fields are refused",
        ),
        (
            "POST",
            "/v1/segments/count",
            a,
            Some(&long),
            StatusCode::BAD_REQUEST,
            "invalid_expression",
            "an expression over --max-expr-bytes",
        ),
        (
            "POST",
            "/v1/records",
            Some(&s.ingest),
            Some(&big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "a body over --max-body-bytes",
        ),
        (
            "POST",
            "/v1/segments/count",
            a,
            Some(r#"{"expr": "ALL", "at": "yesterday"}"#),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "a bad `at`",
        ),
        (
            "POST",
            "/v1/segments/sample",
            a,
            Some(r#"{"expr": "ALL", "size": 1000001}"#),
            StatusCode::BAD_REQUEST,
            "limit",
            "a sample over the limit",
        ),
        (
            "POST",
            "/v1/segments/breakdown",
            a,
            Some(r#"{"expr": "ALL"}"#),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "a breakdown without a field",
        ),
        (
            "POST",
            "/v1/segments/nope/export",
            a,
            Some(r#"{"format": "hashes"}"#),
            StatusCode::NOT_FOUND,
            "not_found",
            "an unknown segment",
        ),
        (
            "POST",
            "/v1/segments/count/export",
            a,
            Some(r#"{"format": "tiktok"}"#),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "an unknown format",
        ),
        (
            "GET",
            "/v2/anything",
            a,
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            "an unknown route",
        ),
    ];
    for (method, path, key, body, status, code, what) in cases {
        let (got, text) = s.call(method, path, key, body).await;
        assert_eq!(
            (got, error_code(&text).as_str()),
            (status, code),
            "{what}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ingest_and_queries_stay_consistent() {
    let s = std::sync::Arc::new(start(&[]));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for batch in 0..10 {
                    let records: Vec<Value> = (0..20)
                        .map(|i| json!({"source": "web", "identifiers": {"email": format!("w{w}b{batch}i{i}@example.com")}, "attributes": {"country": "NL"}}))
                        .collect();
                    let r = s.json("POST", "/v1/records", &s.ingest, Value::Array(records)).await;
                    assert_eq!(r["new_profiles"], 20);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for _ in 0..40 {
                    let n = s
                        .json(
                            "POST",
                            "/v1/segments/count",
                            &s.analyst,
                            json!({"expr": "country = \"NL\""}),
                        )
                        .await["count"]
                        .as_u64()
                        .unwrap();
                    assert!(n >= last, "counts never go back: {n} after {last}");
                    assert_eq!((n - 2) % 20, 0, "a count sees whole batches only: {n}");
                    last = n;
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.await.unwrap();
    }
    let n = s
        .json(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            json!({"expr": "country = \"NL\""}),
        )
        .await;
    assert_eq!(n["count"], 2 + 4 * 10 * 20);
}

#[test]
fn sigterm_shuts_down_gracefully_and_keeps_the_data() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut s = start(&[]);
    rt.block_on(async {
        let r = s
            .json(
                "POST",
                "/v1/records",
                &s.ingest,
                json!([{"source": "web", "identifiers": {"email": "late@example.com"}}]),
            )
            .await;
        assert_eq!(r["new_profiles"], 1);
    });
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let out = cidb(&s.data, &["stats", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profiles"], 4);
    assert_eq!(
        v["dirty_profiles"], 0,
        "the shutdown checkpointed the indexes"
    );
}

/// The README's first command: `cidb demo` generates, imports, prints an admin key and
/// serves (here with fewer persons and any free port).
#[test]
fn demo_imports_prints_a_key_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cidb-data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("--data")
        .arg(&data)
        .args(["demo", "--persons", "300", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut key, mut base) = (None, None);
    let mut examples = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.strip_prefix("admin key: ") {
            key = Some(k.to_string());
        }
        if line.trim_start().starts_with("curl ") {
            examples.push(line.clone());
        }
        if let Some(b) = line.strip_prefix("listening on ") {
            base = Some(b.to_string());
            break;
        }
    }
    let (key, base) = (key.expect("an admin key"), base.expect("the address"));
    assert_eq!(examples.len(), 4, "{examples:?}");
    for example in &examples {
        assert!(
            example.contains(&format!("{base}/v1/")),
            "an example request names the bound address {base}: {example}"
        );
        assert!(
            example.contains("-H 'Content-Type: application/json'"),
            "an example request says it sends JSON: {example}"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/v1/segments/count"))
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", "application/json")
            .body(r#"{"expr": "ALL"}"#)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["count"]
            .as_u64()
            .unwrap()
    });
    assert!(count > 250, "about 300 persons imported, got {count}");
    let (status, _) =
        common::terminate(&mut child, Duration::from_secs(10)).expect("stopped within 10 s");
    assert!(status.success());
}

/// `n` web records with fresh emails (`tag` keeps batches apart), each with one event.
fn batch(tag: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "source": "web",
                    "identifiers": {"email": format!("{tag}-{i}@example.com")},
                    "attributes": {"country": "NL"},
                    "events": [{"type": "visit", "at": "2026-01-01T00:00:00Z"}],
                })
            })
            .collect(),
    )
}

/// Polls `/healthz` until `until`; the slowest answer.
async fn slowest_health(s: Arc<Server>, until: Instant) -> Duration {
    let mut slowest = Duration::ZERO;
    while Instant::now() < until {
        let started = Instant::now();
        let (status, _) = s.call("GET", "/healthz", None, None).await;
        assert_eq!(status, StatusCode::OK);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    slowest
}

/// Issue 13 (1): one client posting batches of 500 records while others scraped
/// `/metrics` deadlocked the server within seconds (`/healthz` included). Every request
/// must be answered, `/healthz` quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_while_scraping_metrics_never_hangs() {
    let s = Arc::new(start(&[]));
    let until = Instant::now() + Duration::from_secs(3);
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut ingested = 0;
            while Instant::now() < until {
                let body = batch(&format!("w{ingested}"), 500).to_string();
                let (status, text) = s
                    .call("POST", "/v1/records", Some(&s.ingest), Some(&body))
                    .await;
                assert_eq!(status, StatusCode::OK, "{text}");
                ingested += 500;
            }
            ingested
        })
    };
    let scrapers: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut scrapes = 0;
                while Instant::now() < until {
                    let (status, text) = s.call("GET", "/metrics", None, None).await;
                    assert_eq!(status, StatusCode::OK, "{text}");
                    scrapes += 1;
                }
                scrapes
            })
        })
        .collect();
    let health = tokio::spawn(slowest_health(s.clone(), until));
    let ingested = writer.await.unwrap();
    for scraper in scrapers {
        assert!(scraper.await.unwrap() > 0);
    }
    let slowest = health.await.unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz took {slowest:?}"
    );
    assert!(ingested >= 500);
    let (_, metrics) = s.call("GET", "/metrics", None, None).await;
    assert!(
        metrics.contains(&format!("cidb_profiles {}\n", 3 + ingested)),
        "{ingested} ingested: {metrics}"
    );
}

/// `/healthz` and `/metrics` answer at once while a large ingest holds the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_during_a_big_ingest() {
    let s = Arc::new(start(&[]));
    let body = batch("big", 10_000).to_string();
    let ingest = {
        let s = s.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (status, text) = s
                .call("POST", "/v1/records", Some(&s.ingest), Some(&body))
                .await;
            assert_eq!(status, StatusCode::OK, "{text}");
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut slowest = Duration::ZERO;
    let mut polls = 0;
    while !ingest.is_finished() {
        for path in ["/healthz", "/metrics"] {
            let started = Instant::now();
            let (status, _) = s.call("GET", path, None, None).await;
            assert_eq!(status, StatusCode::OK);
            slowest = slowest.max(started.elapsed());
            polls += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = ingest.await.unwrap();
    assert!(
        slowest < Duration::from_millis(500),
        "slowest /healthz or /metrics {slowest:?} during an ingest of {took:?} ({polls} polls)"
    );
}

/// The server's `host:port`.
fn host(s: &Server) -> String {
    s.base.strip_prefix("http://").unwrap().to_string()
}

/// Reads until the server closes the connection or `limit` passes: what arrived, how
/// long it took, and whether the server closed it.
fn read_until_closed(
    stream: &mut std::net::TcpStream,
    limit: Duration,
) -> (String, Duration, bool) {
    use std::io::Read;
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (
                String::from_utf8_lossy(&got).into(),
                started.elapsed(),
                false,
            );
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (
                    String::from_utf8_lossy(&got).into(),
                    started.elapsed(),
                    false,
                )
            }
            Err(_) => break, // reset: closed too
        }
    }
    (
        String::from_utf8_lossy(&got).into(),
        started.elapsed(),
        true,
    )
}

/// Connects and sends `bytes` (a request, or the start of one).
fn raw(s: &Server, bytes: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(host(s)).unwrap();
    stream.write_all(bytes.as_bytes()).unwrap();
    stream
}

/// Issue 13 (7): slow clients were never timed out. Headers that never finish, a body
/// sent at a byte a second, a `Content-Length` the body never reaches, and idle
/// keep-alive connections are cut off; the server keeps serving others.
#[test]
fn slow_clients_are_timed_out() {
    let s = start(&[
        "--header-timeout-ms",
        "500",
        "--body-timeout-ms",
        "1000",
        "--idle-timeout-ms",
        "700",
    ]);
    let limit = Duration::from_secs(5);

    // Connects and sends nothing.
    let mut silent = std::net::TcpStream::connect(host(&s)).unwrap();
    // A request head that never ends.
    let mut unfinished = raw(
        &s,
        "POST /v1/segments/count HTTP/1.1\r\nHost: x\r\nAuthorization: ",
    );
    for (what, stream) in [
        ("silent", &mut silent),
        ("unfinished head", &mut unfinished),
    ] {
        let (got, took, closed) = read_until_closed(stream, limit);
        assert!(closed, "{what}: still open after {took:?}");
        assert!(
            took < Duration::from_secs(3),
            "{what}: closed after {took:?}"
        );
        assert!(!got.contains("200 OK"), "{what}: {got}");
    }

    let head = |length: usize| {
        format!(
            "POST /v1/segments/count HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
            s.analyst
        )
    };
    // A body that is far shorter than its Content-Length.
    let mut short = raw(&s, &(head(1_000_000) + "{}"));
    // A body at a byte every 200 ms (the whole of it would take 4 s).
    let body = r#"{"expr": "ALL"}    "#;
    let mut trickle = raw(&s, &head(body.len()));
    let writer = {
        let mut w = trickle.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            for b in body.bytes() {
                if w.write_all(&[b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    for (what, stream) in [("short body", &mut short), ("trickled body", &mut trickle)] {
        let (got, took, closed) = read_until_closed(stream, limit);
        assert!(
            got.starts_with("HTTP/1.1 408"),
            "{what}: {got:?} after {took:?}"
        );
        assert!(got.contains(r#""code":"body_timeout""#), "{what}: {got}");
        assert!(closed, "{what}: the connection is closed after a 408");
        assert!(
            took < Duration::from_secs(3),
            "{what}: answered after {took:?}"
        );
    }
    writer.join().unwrap();

    // A keep-alive connection: served, then closed once idle.
    let mut idle = raw(&s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, took, closed) = read_until_closed(&mut idle, limit);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with(r#"{"status":"ok"}"#), "{got}");
    assert!(closed, "an idle keep-alive connection is closed ({took:?})");
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(3),
        "closed after {took:?} (idle timeout 700 ms)"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let n = s
            .json(
                "POST",
                "/v1/segments/count",
                &s.analyst,
                json!({"expr": "ALL"}),
            )
            .await;
        assert_eq!(n["count"], 3, "the server still serves");
    });
}

/// Issue 13 (1): SIGTERM must stop the server within 10 s even with requests in flight,
/// including clients that hold their connections open.
#[test]
fn sigterm_stops_within_ten_seconds_with_requests_in_flight() {
    let mut s = start(&[]);
    let _silent = std::net::TcpStream::connect(host(&s)).unwrap();
    let _unfinished = raw(&s, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    let _slow_body = raw(
        &s,
        &format!(
            "POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[",
            s.ingest
        ),
    );
    let mut kept_alive = raw(&s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, _, _) = read_until_closed(&mut kept_alive, Duration::from_millis(300));
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // An ingest in flight when the signal arrives.
    let (base, key) = (s.base.clone(), s.ingest.clone());
    let ingest = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            client()
                .post(format!("{base}/v1/records"))
                .header("Authorization", format!("Bearer {key}"))
                .header("Content-Type", "application/json")
                .body(batch("late", 5_000).to_string())
                .send()
                .await
                .map(|r| r.status())
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = common::terminate(&mut s.child, Duration::from_secs(15))
        .expect("still running 15 s after SIGTERM");
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    assert!(status.success(), "exit status {status:?}");
    let _ = ingest.join().unwrap();
    // Whatever committed is whole: the database checks clean.
    let out = cidb(&s.data, &["check"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v = common::json_ok(&s.data, &["stats", "--json"]);
    let profiles = v["profiles"].as_u64().unwrap();
    assert!(profiles == 3 || profiles == 5_003, "{profiles} profiles");
}

/// Issue 13 (7): Content-Type was ignored. JSON routes take `application/json`;
/// `POST /v1/records` also takes `application/x-ndjson`; anything else, or none, is 415
/// with a message naming what is accepted (after authorization, before the body is read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_is_enforced() {
    let s = start(&[]);
    let (a, i) = (Some(s.analyst.as_str()), Some(s.ingest.as_str()));
    let count = Some(r#"{"expr": "ALL"}"#);
    let array = r#"[{"source":"web","identifiers":{"email":"ct1@example.com"}}]"#;
    let lines = "{\"source\":\"web\",\"identifiers\":{\"email\":\"ct2@example.com\"}}\n";
    // (path, key, content type, body, status, code)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        StatusCode,
        Option<&'a str>,
    );
    let unsupported = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    let cases: Vec<Case> = vec![
        (
            "/v1/segments/count",
            a,
            None,
            count,
            unsupported,
            Some("unsupported_media_type"),
        ),
        (
            "/v1/segments/count",
            a,
            Some("text/plain"),
            count,
            unsupported,
            Some("unsupported_media_type"),
        ),
        (
            "/v1/segments/count",
            a,
            Some("application/x-www-form-urlencoded"),
            count,
            unsupported,
            Some("unsupported_media_type"),
        ),
        (
            "/v1/segments/count",
            a,
            Some("application/x-ndjson"),
            count,
            unsupported,
            Some("unsupported_media_type"),
        ),
        (
            "/v1/segments/count",
            a,
            Some("application/json; charset=utf-8"),
            count,
            StatusCode::OK,
            None,
        ),
        (
            "/v1/segments/count",
            a,
            Some("Application/JSON"),
            count,
            StatusCode::OK,
            None,
        ),
        (
            "/v1/segments/count",
            None,
            Some("text/plain"),
            count,
            StatusCode::UNAUTHORIZED,
            Some("unauthorized"),
        ),
        (
            "/v1/records",
            i,
            None,
            Some(array),
            unsupported,
            Some("unsupported_media_type"),
        ),
        (
            "/v1/records",
            i,
            Some("text/csv"),
            Some(array),
            unsupported,
            Some("unsupported_media_type"),
        ),
        (
            "/v1/records",
            i,
            Some("application/json"),
            Some(lines),
            StatusCode::BAD_REQUEST,
            Some("malformed_json"),
        ),
        (
            "/v1/records",
            i,
            Some("application/json"),
            Some(array),
            StatusCode::OK,
            None,
        ),
        (
            "/v1/records",
            i,
            Some("application/x-ndjson"),
            Some(lines),
            StatusCode::OK,
            None,
        ),
    ];
    for (path, key, content_type, body, want, code) in cases {
        let (status, text) = s.call_as("POST", path, key, content_type, body).await;
        assert_eq!(status, want, "{path} as {content_type:?}: {text}");
        if let Some(code) = code {
            assert_eq!(error_code(&text), code, "{text}");
        }
        if status == unsupported {
            let v: Value = serde_json::from_str(&text).unwrap();
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.contains("application/json"), "{message}");
            if path == "/v1/records" {
                assert!(message.contains("application/x-ndjson"), "{message}");
            }
        }
    }
    let n = s
        .json(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            json!({"expr": "ALL"}),
        )
        .await;
    assert_eq!(n["count"], 5, "only the two accepted posts ingested");
}

/// The lines of an answer, sorted.
fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Issue 13 (4): segments `Yq` and `yq` shared one sync destination (the name was
/// lower-cased), so `yq`'s adds were `Yq`'s members: a sync to the wrong audience. Each
/// now gets its own destination and only its own members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_differing_in_case_sync_separately() {
    let s = start(&[]);
    let de = json!([{"source": "crm", "identifiers": {"email": "de@example.com"},
        "attributes": {"country": "DE"}, "consent": {"custom_audiences": true}}]);
    s.json("POST", "/v1/records", &s.ingest, de).await;
    let a = &s.analyst;
    s.json(
        "PUT",
        "/v1/segments/Yq",
        a,
        json!({"expr": "country = \"NL\""}),
    )
    .await;
    s.json(
        "PUT",
        "/v1/segments/yq",
        a,
        json!({"expr": "country = \"DE\""}),
    )
    .await;
    let mut full = Vec::new();
    for name in ["Yq", "yq"] {
        let (status, text) = s
            .call(
                "POST",
                &format!("/v1/segments/{name}/export"),
                Some(a),
                Some(r#"{"format": "hashes"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        full.push(sorted_lines(&text));
    }
    assert_eq!(full[0].len(), 3, "two NL emails and a phone");
    assert_eq!(full[1].len(), 1, "one consented DE email");
    for (i, name) in ["Yq", "yq"].into_iter().enumerate() {
        let (status, adds) = s
            .call(
                "POST",
                &format!("/v1/segments/{name}/export"),
                Some(a),
                Some(r#"{"format": "hashes", "mode": "adds"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{adds}");
        assert_eq!(
            sorted_lines(&adds),
            full[i],
            "{name}'s first adds are its members"
        );
    }
    // Acknowledging one leaves the other pending.
    s.json(
        "POST",
        "/v1/segments/Yq/export/ack",
        a,
        json!({"format": "hashes"}),
    )
    .await;
    let (_, adds) = s
        .call(
            "POST",
            "/v1/segments/Yq/export",
            Some(a),
            Some(r#"{"format": "hashes", "mode": "adds"}"#),
        )
        .await;
    assert_eq!(adds, "", "Yq was acknowledged");
    let ack = s
        .json(
            "POST",
            "/v1/segments/yq/export/ack",
            a,
            json!({"format": "hashes"}),
        )
        .await;
    assert_eq!(ack["profiles"], 1, "{ack}");
}

/// Issue 13 (5): a breakdown by `first_name` of a one-person segment showed an analyst
/// the name. Personal fields are refused for analysts; groups under the minimum group
/// size are suppressed for them (number and total only). Admins see everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyst_breakdowns_show_no_personal_values() {
    let s = start(&["--min-group-size", "2"]);
    for field in [
        "first_name",
        "last_name",
        "birth_date",
        "work_email",
        "street_address",
    ] {
        let body = json!({"expr": "country = \"NL\"", "field": field}).to_string();
        let (status, text) = s
            .call(
                "POST",
                "/v1/segments/breakdown",
                Some(&s.analyst),
                Some(&body),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{field}: {text}");
        assert_eq!(error_code(&text), "forbidden");
        assert!(text.contains("personal"), "{text}");
        assert!(!text.to_lowercase().contains("anna"), "{text}");
    }
    let by_name = s
        .json(
            "POST",
            "/v1/segments/breakdown",
            &s.admin,
            json!({"expr": "country = \"NL\"", "field": "first_name"}),
        )
        .await;
    assert_eq!(by_name["values"], json!([{"value": "anna", "count": 1}]));
    assert!(by_name.get("suppressed").is_none(), "{by_name}");

    // NL has 2 members, DE 1: with a minimum group of 2 the analyst sees NL only.
    let analyst = s
        .json(
            "POST",
            "/v1/segments/breakdown",
            &s.analyst,
            json!({"expr": "ALL", "field": "country"}),
        )
        .await;
    assert_eq!(
        analyst["values"],
        json!([{"value": "nl", "count": 2}]),
        "{analyst}"
    );
    assert_eq!(
        analyst["suppressed"],
        json!({"groups": 1, "count": 1, "min_group_size": 2})
    );
    assert_eq!(analyst["count"], 3);
    let admin = s
        .json(
            "POST",
            "/v1/segments/breakdown",
            &s.admin,
            json!({"expr": "ALL", "field": "country"}),
        )
        .await;
    assert_eq!(
        admin["values"],
        json!([{"value": "nl", "count": 2}, {"value": "de", "count": 1}])
    );
}

/// Issue 13 (5): an analyst exported with `"policy": "NOT consent(\"custom_audiences\")"`
/// and got the people who declined, and the audit entry did not record the policy. An
/// analyst's policy now only adds conditions to the default; the audit records the
/// policy applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyst_export_policies_only_narrow() {
    let s = start(&[]);
    let declined = json!([{"source": "crm", "identifiers": {"email": "declined@example.com"},
        "attributes": {"country": "NL"}, "consent": {"custom_audiences": false}}]);
    s.json("POST", "/v1/records", &s.ingest, declined).await;
    s.json(
        "PUT",
        "/v1/segments/nl",
        &s.analyst,
        json!({"expr": "country = \"NL\""}),
    )
    .await;
    let export = |key: &str, body: Value| {
        let key = key.to_string();
        let s = &s;
        async move {
            let (status, text) = s
                .call(
                    "POST",
                    "/v1/segments/nl/export",
                    Some(&key),
                    Some(&body.to_string()),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}: {text}");
            text.lines().count()
        }
    };
    let declined_policy = r#"NOT consent("custom_audiences")"#;
    assert_eq!(
        export(
            &s.analyst,
            json!({"format": "hashes", "policy": declined_policy})
        )
        .await,
        0,
        "an analyst's policy cannot reach the people who declined"
    );
    assert_eq!(
        export(
            &s.analyst,
            json!({"format": "hashes", "policy": "interests HAS \"running\""})
        )
        .await,
        2,
        "it can narrow the audience (Anna's email and phone)"
    );
    assert_eq!(
        export(
            &s.admin,
            json!({"format": "hashes", "policy": declined_policy})
        )
        .await,
        1,
        "an admin's policy replaces the default"
    );
    // A policy that tries to break out of its parentheses is not an expression.
    let (status, text) = s
        .call(
            "POST",
            "/v1/segments/nl/export",
            Some(&s.analyst),
            Some(&json!({"format": "hashes", "policy": "ALL) OR (ALL"}).to_string()),
        )
        .await;
    assert_eq!(
        (status, error_code(&text).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_expression"),
        "{text}"
    );

    // Diff syncs: the destination is created with the effective policy, and keeps it.
    let adds = |policy: Option<&str>| {
        let mut body = json!({"format": "hashes", "mode": "adds"});
        if let Some(p) = policy {
            body["policy"] = json!(p);
        }
        let s = &s;
        async move {
            s.call(
                "POST",
                "/v1/segments/nl/export",
                Some(&s.analyst),
                Some(&body.to_string()),
            )
            .await
        }
    };
    let (status, text) = adds(Some(declined_policy)).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, ""),
        "nobody who declined"
    );
    let (status, text) = adds(Some("ALL")).await;
    assert_eq!(
        (status, error_code(&text).as_str()),
        (StatusCode::CONFLICT, "conflict"),
        "a destination's policy does not change between syncs: {text}"
    );
    let (status, _) = adds(None).await;
    assert_eq!(status, StatusCode::OK);

    let audit = s.json("GET", "/v1/audit", &s.admin, json!({})).await;
    let policies: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "export")
        .map(|e| &e["details"]["policy"])
        .collect();
    assert_eq!(
        policies,
        [
            &json!(format!(
                "(consent(\"custom_audiences\")) AND ({declined_policy})"
            )),
            &json!("(consent(\"custom_audiences\")) AND (interests HAS \"running\")"),
            &json!(declined_policy),
        ]
    );
}

impl Server {
    /// `POST /v1/records` (a JSON array) with an optional `Idempotency-Key`.
    async fn post_records(
        &self,
        key: &str,
        idempotency_key: Option<&str>,
        body: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut h = headers(Some(key), Some("application/json"));
        if let Some(k) = idempotency_key {
            h.push(("Idempotency-Key".to_string(), k.to_string()));
        }
        self.call_full("POST", "/v1/records", &h, Some(body)).await
    }

    /// Event chunks stored for the person with `email` (one per record that had events).
    async fn event_chunks(&self, email: &str) -> usize {
        let view = self
            .json(
                "GET",
                &format!("/v1/profiles/lookup?email={email}"),
                &self.admin,
                json!({}),
            )
            .await;
        view["events"].as_array().unwrap().len()
    }
}

/// Issue 13 (6): retries applied writes twice. With an `Idempotency-Key`, the same key and
/// body return the first answer without ingesting again; another body under the same key
/// is 409; keys of different API keys never meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_make_retries_safe() {
    let s = start(&[]);
    let body = batch("idem", 3).to_string();
    let (status, h, first) = s.post_records(&s.ingest, Some("order-42"), &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(h.get("idempotency-replayed").is_none());
    let (status, h, again) = s.post_records(&s.ingest, Some("order-42"), &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(h["idempotency-replayed"], "true");
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap(),
        serde_json::from_str::<Value>(&first).unwrap(),
        "the first answer, replayed"
    );
    assert_eq!(
        s.event_chunks("idem-0@example.com").await,
        1,
        "not ingested twice"
    );
    let (_, metrics) = s.call("GET", "/metrics", None, None).await;
    assert!(
        metrics.contains("cidb_ingested_records_total 3\n"),
        "{metrics}"
    );

    let other = batch("other", 1).to_string();
    let (status, _, text) = s.post_records(&s.ingest, Some("order-42"), &other).await;
    assert_eq!(
        (status, error_code(&text).as_str()),
        (StatusCode::CONFLICT, "idempotency_key_reused"),
        "{text}"
    );
    let (status, _, text) = s.post_records(&s.admin, Some("order-42"), &other).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another API key's key space: {text}"
    );
    let (status, _, text) = s.post_records(&s.ingest, Some("bad key"), &other).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");

    // Without a key a retry is a second write.
    let plain = batch("plain", 1).to_string();
    for _ in 0..2 {
        assert_eq!(
            s.post_records(&s.ingest, None, &plain).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(s.event_chunks("plain-0@example.com").await, 2);
}

/// Issue 13 (6): a 504 left the ingest running, and the client's retry stored the events
/// twice. The 504 now says the write may still commit; a retry with the same key while it
/// runs is 409 `in_progress`, and once it has committed gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_writes_may_commit_and_retry_safely() {
    // Ingesting 10,000 records takes seconds in a debug build; answering a retry from the
    // recorded answer (the body is parsed again) well under 1.5 s.
    let s = start(&["--request-timeout-ms", "1500"]);
    let body = batch("slow", 10_000).to_string();
    let (status, _, text) = s.post_records(&s.ingest, Some("slow-1"), &body).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "timeout");
    assert_eq!(v["error"]["may_still_commit"], true, "{text}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{text}"
    );
    let (status, _, text) = s.post_records(&s.ingest, Some("slow-1"), &body).await;
    assert_eq!(
        (status, error_code(&text).as_str()),
        (StatusCode::CONFLICT, "in_progress"),
        "{text}"
    );
    let started = Instant::now();
    let answer = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (status, h, text) = s.post_records(&s.ingest, Some("slow-1"), &body).await;
        match status {
            StatusCode::OK => {
                assert_eq!(h["idempotency-replayed"], "true");
                break serde_json::from_str::<Value>(&text).unwrap();
            }
            StatusCode::CONFLICT => assert_eq!(error_code(&text), "in_progress"),
            other => panic!("{other}: {text}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never committed"
        );
    };
    assert_eq!(answer["accepted"], 10_000, "{answer}");
    assert_eq!(s.event_chunks("slow-0@example.com").await, 1);
    assert_eq!(s.event_chunks("slow-9999@example.com").await, 1);
}

/// Issue 13 (3): an error answer showed an analyst the absolute data path. A 500 carries
/// a generic message and an error id; the error (with its path) goes to the server log.
/// Here a sync's scratch directory cannot be created (`TMPDIR` is a file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_show_no_paths() {
    let scratch = tempfile::tempdir().unwrap();
    let not_a_dir = scratch.path().join("a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let s = start_with_env(&[], &[("TMPDIR", &not_a_dir)]);
    s.json(
        "PUT",
        "/v1/segments/nl",
        &s.analyst,
        json!({"expr": "country = \"NL\""}),
    )
    .await;
    let (status, text) = s
        .call(
            "POST",
            "/v1/segments/nl/export",
            Some(&s.analyst),
            Some(r#"{"format": "hashes", "mode": "adds"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "internal");
    let id = v["error"]["error_id"].as_str().unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains(id),
        "{text}"
    );
    let root = scratch.path().to_str().unwrap();
    assert!(!text.contains(root) && !text.contains("/tmp"), "{text}");
    assert!(!text.contains(s.data.to_str().unwrap()), "{text}");
}

/// Issue 13 (9): errors were strings: "No such destination" answered 400. Acknowledging a
/// sync that never ran is 404; acknowledging with nothing pending is 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_acknowledgements_have_typed_errors() {
    let s = start(&[]);
    let a = &s.analyst;
    s.json(
        "PUT",
        "/v1/segments/nl",
        a,
        json!({"expr": "country = \"NL\""}),
    )
    .await;
    let ack = |format: &'static str| {
        let s = &s;
        async move {
            let body = json!({ "format": format }).to_string();
            s.call(
                "POST",
                "/v1/segments/nl/export/ack",
                Some(&s.analyst),
                Some(&body),
            )
            .await
        }
    };
    let (status, text) = ack("meta-api").await;
    assert_eq!(
        (status, error_code(&text).as_str()),
        (StatusCode::NOT_FOUND, "not_found"),
        "no destination yet: {text}"
    );
    let (status, _) = s
        .call(
            "POST",
            "/v1/segments/nl/export",
            Some(a),
            Some(r#"{"format": "meta-api", "mode": "adds"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack("meta-api").await.0, StatusCode::OK);
    let (status, text) = ack("meta-api").await;
    assert_eq!(
        (status, error_code(&text).as_str()),
        (StatusCode::CONFLICT, "conflict"),
        "nothing pending: {text}"
    );
    assert!(text.contains("no sync waiting"), "{text}");
}

/// A 20 MB `first_name` was accepted over HTTP: the record is rejected by the record
/// layer's value limit, naming the field, and nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_values_are_rejected_over_http() {
    let s = start(&[]);
    let huge = "x".repeat(20 << 20);
    let report = s
        .json(
            "POST",
            "/v1/records",
            &s.ingest,
            json!([
                {"source": "web", "identifiers": {"email": "big@example.com"}, "attributes": {"first_name": huge}},
                {"source": "web", "identifiers": {"email": "small@example.com"}},
            ]),
        )
        .await;
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["rejected"][0]["line"], 1);
    let reason = report["rejected"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("limit of 1048576"), "{report}");
    // Under the record limit, a value over the value limit names its field.
    let report = s
        .json(
            "POST",
            "/v1/records",
            &s.ingest,
            json!([{"source": "web", "identifiers": {"email": "big@example.com"},
                    "attributes": {"first_name": "y".repeat(5000)}}]),
        )
        .await;
    assert_eq!(report["accepted"], 0, "{report}");
    assert_eq!(
        report["rejected"][0]["field"], "attributes.first_name",
        "{report}"
    );
    let (status, _) = s
        .call(
            "GET",
            "/v1/profiles/lookup?email=big@example.com",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the rejected record stored nothing"
    );
}

/// A full export streams while it holds an evaluation slot: a client that stops reading
/// is cut off at the export timeout, and the slot is free again (before, it was held for
/// as long as the client kept the connection open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_an_export_is_cut_off_and_frees_its_slot() {
    use std::io::Write;
    let s = start(&[
        "--max-evaluations",
        "1",
        "--export-timeout-ms",
        "1500",
        "--queue-wait-ms",
        "500",
    ]);
    // Enough rows that the response cannot fit in the channel and socket buffers.
    for part in 0..8 {
        let records: Vec<Value> = (0..5_000)
            .map(|i| {
                json!({"source": "crm",
                    "identifiers": {"email": format!("slow{part}x{i}@example.com"), "phone": format!("+3162{part}{i:06}")},
                    "attributes": {"country": "NL", "first_name": format!("N{i}"), "last_name": "Reader", "city": "Utrecht"},
                    "consent": {"custom_audiences": true}})
            })
            .collect();
        s.json("POST", "/v1/records", &s.ingest, Value::Array(records))
            .await;
    }
    s.json(
        "PUT",
        "/v1/segments/everyone",
        &s.analyst,
        json!({"expr": "ALL"}),
    )
    .await;
    let body = r#"{"format": "meta-api"}"#;
    let mut stalled = std::net::TcpStream::connect(host(&s)).unwrap();
    write!(
        stalled,
        "POST /v1/segments/everyone/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        s.analyst,
        body.len()
    )
    .unwrap();
    // Read the status line only: the export is streaming.
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut stalled, &mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    // Then never read again. Past the export timeout the one slot is free again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let waited = Instant::now();
    loop {
        let (status, text) = s
            .call(
                "POST",
                "/v1/segments/count",
                Some(&s.analyst),
                Some(r#"{"expr": "ALL"}"#),
            )
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the stalled export still holds the only slot"
        );
    }
    // And its response was cut off: the connection closes without the last chunk.
    let (got, _, closed) = read_until_closed(&mut stalled, Duration::from_secs(20));
    assert!(closed, "the server closed the stalled export's connection");
    assert!(
        !got.ends_with("0\r\n\r\n"),
        "the export was cut off, not completed ({} bytes)",
        got.len()
    );
    drop(stalled);
}

/// SIGTERM right after `listening on` stops the server cleanly (exit 0, database closed),
/// not by the signal's default action: the handlers exist before the address is printed.
#[test]
fn sigterm_right_after_start_stops_cleanly() {
    for _ in 0..3 {
        let mut s = start(&[]);
        let (status, _) =
            common::terminate(&mut s.child, Duration::from_secs(10)).expect("stopped within 10 s");
        assert!(status.success(), "exit status {status:?}");
        let check = cidb(&s.data, &["check"]);
        assert!(check.status.success());
    }
}

/// Repeated counts are answered from the cache (visible in `/metrics`), and every change
/// over HTTP — an ingest, a consent change, a saved segment's redefinition, an erasure —
/// is seen by the next count at once.
#[tokio::test(flavor = "multi_thread")]
async fn cached_counts_are_never_stale() {
    let s = start(&[]);
    let a = &s.analyst;
    let count = |expr: &'static str| {
        let s = &s;
        async move {
            s.json("POST", "/v1/segments/count", a, json!({ "expr": expr }))
                .await["count"]
                .as_u64()
                .unwrap()
        }
    };
    let hits = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with("cidb_segment_count_cache_hits_total "))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let expr = r#"country = "NL" AND consent("marketing")"#;
    assert_eq!(count(expr).await, 1);
    let (_, before) = s.call("GET", "/metrics", None, None).await;
    assert_eq!(count(expr).await, 1);
    let (_, after) = s.call("GET", "/metrics", None, None).await;
    assert_eq!(hits(&after), hits(&before) + 1, "{after}");

    // Consent given by b.
    s.json(
        "POST",
        "/v1/records",
        &s.ingest,
        json!([{"source": "crm", "identifiers": {"email": "b@example.com"}, "consent": {"marketing": true}}]),
    )
    .await;
    assert_eq!(count(expr).await, 2);
    // A new person.
    s.json(
        "POST",
        "/v1/records",
        &s.ingest,
        json!([{"source": "crm", "identifiers": {"email": "n@example.com"}, "attributes": {"country": "NL"}, "consent": {"marketing": true}}]),
    )
    .await;
    assert_eq!(count(expr).await, 3);
    // A saved segment redefined.
    let seg = r#"segment("cached") AND consent("marketing")"#;
    s.json(
        "PUT",
        "/v1/segments/cached",
        a,
        json!({"expr": r#"country = "NL""#}),
    )
    .await;
    assert_eq!(count(seg).await, 3);
    s.json(
        "PUT",
        "/v1/segments/cached",
        a,
        json!({"expr": r#"country = "DE""#}),
    )
    .await;
    assert_eq!(count(seg).await, 0);
    // An erasure.
    s.json(
        "POST",
        "/v1/privacy/forget",
        &s.admin,
        json!({"email": "b@example.com"}),
    )
    .await;
    assert_eq!(count(expr).await, 2);
}
