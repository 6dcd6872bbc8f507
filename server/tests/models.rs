//! Lookalike and propensity models (models.md) through the real binary and the real
//! server, on a generated database: `cidb model train|list|show|explain|delete`, the
//! `/v1/models` routes, their roles and errors, and `score("NAME")` in segments.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::{cidb, create_key, json_ok};

/// The seed: people who bought (the generator writes `purchase` events).
const SEED: &str = r#"event("purchase")"#;

/// A generated database of 3,000 persons in a temp dir.
fn generated() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.jsonl");
    let data = dir.path().join("data");
    let gen = cidb(
        &data,
        &[
            "generate",
            "--persons",
            "3000",
            "--seed",
            "1",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let report = json_ok(&data, &["import", file.to_str().unwrap(), "--json"]);
    assert!(report["new_profiles"].as_u64().unwrap() >= 3000);
    (dir, data)
}

fn count(data: &Path, expr: &str) -> u64 {
    json_ok(data, &["query", expr, "--json"])["count"]
        .as_u64()
        .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Checks a report against the contract and the database it was trained on:
/// `seed_members` and `population` are counted independently with the query language.
fn check_report(r: &Value, name: &str, seed_members: u64, population: u64, max_features: u64) {
    for field in [
        "name",
        "seed",
        "holdout",
        "population",
        "features",
        "auc",
        "lift_at_10",
        "quality",
        "top_features",
        "warnings",
        "trained_at",
        "train_ms",
    ] {
        assert!(r.get(field).is_some(), "report without `{field}`: {r}");
    }
    assert_eq!(r["name"], name);
    let (seed, holdout) = (r["seed"].as_u64().unwrap(), r["holdout"].as_u64().unwrap());
    assert_eq!(
        seed + holdout,
        seed_members,
        "training + held out = the seed: {r}"
    );
    assert!(holdout > 0 && holdout < seed, "{r}");
    assert_eq!(r["population"].as_u64().unwrap(), population);
    let features = r["features"].as_u64().unwrap();
    assert!(features >= 1 && features <= max_features, "{r}");
    let auc = r["auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc), "{r}");
    assert!(r["lift_at_10"].as_f64().unwrap() >= 0.0, "{r}");
    // models.md: quality thresholds on the held-out AUC; not predictive is poor.
    let expected = match auc {
        _ if r["predictive"] == false => "poor",
        a if a >= 0.8 => "excellent",
        a if a >= 0.7 => "good",
        a if a >= 0.6 => "fair",
        _ => "poor",
    };
    assert_eq!(r["quality"], expected, "{r}");
    let top = r["top_features"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() as u64 <= features, "{r}");
    for f in top {
        assert_eq!(
            keys(f),
            set(&["feature", "weight", "seed_share", "population_share"])
        );
        let label = f["feature"].as_str().unwrap();
        // The seed's own definition is never learned.
        assert!(!label.starts_with("event(\"purchase\""), "{label}");
        for share in ["seed_share", "population_share"] {
            assert!((0.0..=1.0).contains(&f[share].as_f64().unwrap()), "{f}");
        }
        assert!(f["weight"].as_f64().unwrap().is_finite());
    }
    // Under 1,000 training members: accepted with a warning.
    assert_eq!(
        seed < 1000,
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("training members")),
        "{r}"
    );
    // RFC 3339, like every other timestamp of the API.
    let at = r["trained_at"].as_str().unwrap();
    assert!(
        at.len() >= 20 && at.as_bytes()[10] == b'T' && at.ends_with('Z'),
        "{at}"
    );
    assert!(r["train_ms"].is_u64());
}

#[test]
fn cli_trains_lists_shows_explains_and_deletes() {
    let (_dir, data) = generated();
    let seed_members = count(&data, SEED);
    let everyone = count(&data, "ALL");
    assert!(seed_members > 125, "the generator writes purchases");

    let report = json_ok(
        &data,
        &["model", "train", "buyers", "--seed", SEED, "--json"],
    );
    check_report(&report, "buyers", seed_members, everyone, 40);
    assert_eq!(report["seed_expr"], SEED);
    assert_eq!(report["population_expr"], "ALL");
    assert!(
        report["predictive"] == true,
        "purchases are predictable: {report}"
    );
    assert_eq!(
        json_ok(&data, &["model", "show", "buyers", "--json"]),
        report
    );
    let list = json_ok(&data, &["model", "list", "--json"]);
    let models = list["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], "buyers");
    assert_eq!(models[0]["auc"], report["auc"]);

    // Readable output: the summary and the top features.
    let out = cidb(&data, &["model", "show", "buyers"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("model buyers:"), "{text}");
    let first = report["top_features"][0]["feature"].as_str().unwrap();
    assert!(text.contains(first), "{text}");

    // Scores in the segment language: every live profile has one, and the top decile
    // holds more buyers than the population does.
    assert_eq!(
        count(&data, r#"score("buyers") BETWEEN 0 AND 100"#),
        everyone
    );
    let top = count(&data, r#"score("buyers") >= 90"#);
    assert!(
        top > everyone / 20 && top < everyone / 5,
        "top decile: {top}"
    );
    let top_buyers = count(&data, r#"score("buyers") >= 90 AND event("purchase")"#);
    assert!(
        top_buyers as f64 / top as f64 > seed_members as f64 / everyone as f64,
        "{top_buyers} buyers among {top} top-scored"
    );

    // explain: a top-scored and a low-scored member, by id; the same person by email.
    let sample = |expr: &str| {
        json_ok(&data, &["query", expr, "--sample", "1", "--json"])["sample"][0]
            .as_u64()
            .unwrap()
    };
    let high = sample(r#"score("buyers") >= 95"#);
    let e = json_ok(
        &data,
        &[
            "model",
            "explain",
            "buyers",
            "--id",
            &high.to_string(),
            "--json",
        ],
    );
    assert_eq!(
        keys(&e),
        set(&["model", "percentile", "profile", "reasons", "score"])
    );
    assert_eq!(e["profile"], high);
    assert!(e["percentile"].as_i64().unwrap() >= 95, "{e}");
    let reasons = e["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty(), "{e}");
    let effects: Vec<f64> = reasons
        .iter()
        .map(|r| r["contribution"].as_f64().unwrap().abs())
        .collect();
    assert!(
        effects.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {e}"
    );
    // The lowest percentile anyone holds (profiles tied at the lowest raw score share the
    // percentile of the population at or below it, so it need not be 0).
    let lowest = (0..=100)
        .find(|p| count(&data, &format!(r#"score("buyers") <= {p}"#)) > 0)
        .expect("someone is scored");
    assert!(lowest < 95);
    let low = sample(&format!(r#"score("buyers") <= {lowest}"#));
    let e_low = json_ok(
        &data,
        &[
            "model",
            "explain",
            "buyers",
            "--id",
            &low.to_string(),
            "--json",
        ],
    );
    assert_eq!(e_low["percentile"].as_i64().unwrap(), lowest, "{e_low}");
    let view = json_ok(&data, &["lookup", "--id", &high.to_string(), "--json"]);
    if let Some(email) = view["profile"]["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"]["kind"] == "email")
    {
        let email = email["id"]["value"].as_str().unwrap();
        let by_email = json_ok(
            &data,
            &["model", "explain", "buyers", "--email", email, "--json"],
        );
        assert_eq!(by_email, e);
    }
    // Exactly one of --id, --email, --phone: a usage error.
    assert_eq!(
        cidb(&data, &["model", "explain", "buyers"]).status.code(),
        Some(2)
    );
    let out = cidb(&data, &["model", "explain", "buyers", "--id", "999999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such profile"), "{}", stderr(&out));

    // Options: exclusions, holdout share, feature budget.
    let r2 = json_ok(
        &data,
        &[
            "model",
            "train",
            "buyers2",
            "--seed",
            SEED,
            "--exclude",
            "loyalty_tier,source",
            "--holdout",
            "0.3",
            "--max-features",
            "5",
            "--json",
        ],
    );
    check_report(&r2, "buyers2", seed_members, everyone, 5);
    let share = r2["holdout"].as_f64().unwrap() / seed_members as f64;
    assert!((0.22..0.38).contains(&share), "holdout share {share}");
    for f in r2["top_features"].as_array().unwrap() {
        let label = f["feature"].as_str().unwrap();
        assert!(
            !label.starts_with("loyalty_tier") && !label.starts_with("source("),
            "{label}"
        );
    }

    // Errors: a seed under 100 (exit 1, clear message), a bad expression (exit 2, its
    // position), an unknown model (exit 1).
    let gold = count(&data, r#"loyalty_tier = "gold""#);
    assert!(gold < 125, "a small seed: {gold}");
    let out = cidb(
        &data,
        &[
            "model",
            "train",
            "small",
            "--seed",
            r#"loyalty_tier = "gold""#,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("at least 100"), "{}", stderr(&out));
    let out = cidb(
        &data,
        &[
            "model",
            "train",
            "x",
            "--seed",
            SEED,
            "--population",
            "cuntry = 1",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "invalid_expression");
    assert_eq!(err["error"]["position"]["column"], 1);
    let out = cidb(&data, &["model", "show", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("model `nope` not found"));
    assert_eq!(
        cidb(&data, &["model", "list", "--json"]).status.code(),
        Some(0)
    );

    // Delete: refused while a saved segment scores with the model.
    json_ok(
        &data,
        &[
            "segment",
            "save",
            "lookalikes",
            r#"score("buyers") >= 95"#,
            "--json",
        ],
    );
    let out = cidb(&data, &["model", "delete", "buyers"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("lookalikes"), "{}", stderr(&out));
    assert!(cidb(&data, &["segment", "delete", "lookalikes"])
        .status
        .success());
    assert_eq!(
        json_ok(&data, &["model", "delete", "buyers", "--json"]),
        json!({"deleted": "buyers"})
    );
    assert_eq!(
        cidb(&data, &["model", "delete", "buyers"]).status.code(),
        Some(1)
    );
    assert_eq!(
        cidb(&data, &["model", "show", "buyers"]).status.code(),
        Some(1)
    );
    // An unknown model in an expression is a positioned error (exit 2).
    assert_eq!(
        cidb(&data, &["query", r#"score("buyers") >= 90"#])
            .status
            .code(),
        Some(2)
    );
    let names: Vec<Value> = json_ok(&data, &["model", "list", "--json"])["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("buyers2")]);

    // Training and deleting are audited as done by the CLI.
    let audit = json_ok(&data, &["audit", "--json"]);
    let actions: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("train_model".into(), "cli".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("delete_model".into(), "cli".into())),
        "{actions:?}"
    );
}

struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut req = client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {key}"));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, v)
    }

    async fn ok(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, key, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {v}");
        v
    }

    async fn count(&self, key: &str, expr: &str) -> u64 {
        self.ok(
            "POST",
            "/v1/segments/count",
            key,
            Some(json!({ "expr": expr })),
        )
        .await["count"]
            .as_u64()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_models_roles_errors_and_scores() {
    let (_dir, data) = generated();
    let seed_members = count(&data, SEED);
    let everyone = count(&data, "ALL");
    let (admin, analyst, ingest) = (
        create_key(&data, "admin"),
        create_key(&data, "analyst"),
        create_key(&data, "ingest"),
    );
    let (child, base) = common::serve(&data, &[], &[]);
    let s = Server { child, base };
    let train = |seed: &str| json!({ "seed": seed });

    // Roles: an ingest key may not train or read models.
    for (method, path, body) in [
        ("POST", "/v1/models/m/train", Some(train(SEED))),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/m", None),
        ("DELETE", "/v1/models/m", None),
        ("GET", "/v1/models/m/profiles/1", None),
    ] {
        let (status, v) = s.call(method, path, &ingest, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "forbidden");
    }
    let (status, _) = s.call("GET", "/v1/models", "not-a-key", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An analyst trains: the report as the contract names it.
    let body = json!({
        "seed": SEED,
        "population": "ALL",
        "exclude": ["loyalty_tier"],
        "holdout": 0.25,
        "max_features": 30,
    });
    let report = s
        .ok("POST", "/v1/models/m/train", &analyst, Some(body))
        .await;
    check_report(&report, "m", seed_members, everyone, 30);
    for f in report["top_features"].as_array().unwrap() {
        assert!(!f["feature"].as_str().unwrap().starts_with("loyalty_tier"));
    }
    assert_eq!(s.ok("GET", "/v1/models/m", &analyst, None).await, report);
    assert_eq!(s.ok("GET", "/v1/models/m", &admin, None).await, report);
    let list = s.ok("GET", "/v1/models", &analyst, None).await;
    assert_eq!(list["models"][0]["name"], "m");
    assert_eq!(list["models"][0]["auc"], report["auc"]);

    // Scores through /v1/segments/count.
    assert_eq!(
        s.count(&analyst, r#"score("m") BETWEEN 0 AND 100"#).await,
        everyone
    );
    let top = s.count(&analyst, r#"score("m") >= 90"#).await;
    assert!(
        top > everyone / 20 && top < everyone / 5,
        "top decile: {top}"
    );
    let top_buyers = s
        .count(&analyst, r#"score("m") >= 90 AND event("purchase")"#)
        .await;
    assert!(top_buyers as f64 / top as f64 > seed_members as f64 / everyone as f64);

    // One profile's score: id, percentile, score and reasons only.
    let high = s
        .ok(
            "POST",
            "/v1/segments/sample",
            &analyst,
            Some(json!({"expr": r#"score("m") >= 95"#, "size": 1})),
        )
        .await["sample"][0]
        .as_u64()
        .unwrap();
    let e = s
        .ok(
            "GET",
            &format!("/v1/models/m/profiles/{high}"),
            &analyst,
            None,
        )
        .await;
    assert_eq!(
        keys(&e),
        set(&["model", "percentile", "profile", "reasons", "score"])
    );
    assert_eq!(e["profile"], high);
    assert_eq!(e["model"], "m");
    assert!(e["percentile"].as_i64().unwrap() >= 95, "{e}");
    let reasons = e["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    for r in reasons {
        assert_eq!(keys(r), set(&["contribution", "feature"]));
    }
    assert!(!e.to_string().contains('@'), "no contact detail: {e}");
    let mut lowest = 0;
    while s
        .ok(
            "POST",
            "/v1/segments/count",
            &analyst,
            Some(json!({"expr": format!(r#"score("m") <= {lowest}"#)})),
        )
        .await["count"]
        == 0
    {
        lowest += 1;
        assert!(lowest <= 100, "nobody is scored");
    }
    let low = s
        .ok(
            "POST",
            "/v1/segments/sample",
            &analyst,
            Some(json!({"expr": format!(r#"score("m") <= {lowest}"#), "size": 1})),
        )
        .await["sample"][0]
        .as_u64()
        .unwrap();
    let e_low = s
        .ok("GET", &format!("/v1/models/m/profiles/{low}"), &admin, None)
        .await;
    assert_eq!(e_low["percentile"].as_i64().unwrap(), lowest, "{e_low}");
    assert!(lowest < 95);

    // Unknown model or profile: 404.
    for (method, path) in [
        ("GET", "/v1/models/nope"),
        ("DELETE", "/v1/models/nope"),
        ("GET", "/v1/models/nope/profiles/1"),
        ("GET", "/v1/models/m/profiles/999999"),
    ] {
        let (status, v) = s.call(method, path, &analyst, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "not_found");
    }

    // 400s: a seed under 100, a bad expression (with its position), a bad name, an
    // unknown body field, a holdout out of range.
    let (status, v) = s
        .call(
            "POST",
            "/v1/models/small/train",
            &analyst,
            Some(train(r#"loyalty_tier = "gold""#)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("training members") && message.contains("at least 100"),
        "{message}"
    );
    let (status, v) = s
        .call(
            "POST",
            "/v1/models/x/train",
            &analyst,
            Some(json!({"seed": SEED, "population": "country = \"NL\" AND cuntry = 1"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_expression");
    assert_eq!(v["error"]["position"]["column"], 20);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("`population`: unknown field `cuntry`"));
    let (status, v) = s
        .call("POST", "/v1/models/x/train", &analyst, Some(train("age >")))
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_expression"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("`seed`:"),
        "{v}"
    );
    for (path, body) in [
        ("/v1/models/Bad.Name/train", train(SEED)),
        ("/v1/models/x/train", json!({"seed": SEED, "sed": 1})),
        ("/v1/models/x/train", json!({"seed": SEED, "holdout": 1.5})),
    ] {
        let (status, v) = s.call("POST", path, &analyst, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
    assert_eq!(
        s.ok("GET", "/v1/models", &admin, None).await["models"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "failed trainings store nothing"
    );

    // Retraining replaces the model under the same name.
    let again = s
        .ok(
            "POST",
            "/v1/models/m/train",
            &admin,
            Some(json!({"seed": SEED, "max_features": 3})),
        )
        .await;
    assert!(again["features"].as_u64().unwrap() <= 3);
    assert_eq!(s.ok("GET", "/v1/models/m", &analyst, None).await, again);

    // Delete: 409 while a saved segment uses the model, then 200, then 404.
    s.ok(
        "PUT",
        "/v1/segments/top",
        &analyst,
        Some(json!({"expr": r#"score("m") >= 95"#})),
    )
    .await;
    let (status, v) = s.call("DELETE", "/v1/models/m", &analyst, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "conflict");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("top"),
        "{v}"
    );
    s.ok("DELETE", "/v1/segments/top", &analyst, None).await;
    assert_eq!(
        s.ok("DELETE", "/v1/models/m", &analyst, None).await,
        json!({"deleted": "m"})
    );
    let (status, _) = s.call("GET", "/v1/models/m", &analyst, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = s
        .call(
            "POST",
            "/v1/segments/count",
            &analyst,
            Some(json!({"expr": r#"score("m") >= 90"#})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_expression");

    // Audited under the key that trained.
    let audit = s.ok("GET", "/v1/audit", &admin, None).await;
    let trained: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "train_model")
        .collect();
    assert_eq!(trained.len(), 2, "{audit}");
    assert!(trained[0]["actor"].as_str().unwrap().starts_with("key:"));
}
