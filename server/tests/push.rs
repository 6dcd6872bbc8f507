//! `cidb sync DEST --push` against local stand-ins of Meta's and Google's APIs: real HTTP
//! servers on loopback that check every request's path, headers, body shape, batch limits
//! and hash format, keep the audience they were sent, and fail on cue.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

mod common;

use common::json_ok;

const META_TOKEN: &str = "meta-secret-token-4242";
const GOOGLE_TOKEN: &str = "google-secret-token-4343";
const DEV_TOKEN: &str = "dev-secret-token-4444";

/// What the stand-in does with the next request.
#[derive(Debug, Clone)]
enum Action {
    /// Answer with this status, `Retry-After` and body, and keep nothing.
    Fail(u16, Option<u64>, String),
    /// Read the request and close the connection without an answer.
    Drop,
    /// Google: keep the operations but report one refused in a partial failure.
    Partial,
    /// Serve it as usual.
    Pass,
    /// Wait this long (ms) before answering (as usual).
    Stall(u64),
}

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Default)]
struct State {
    google: bool,
    consent: String,
    requests: Vec<Request>,
    script: VecDeque<Action>,
    /// The platform's audience: hashes.
    audience: BTreeSet<String>,
    /// How often each hash was accepted as an add.
    added: BTreeMap<String, usize>,
    removed: BTreeMap<String, usize>,
    /// Google's jobs: operations added, not yet run.
    jobs: Vec<Vec<Value>>,
    problems: Vec<String>,
}

struct StandIn {
    base: String,
    state: Arc<Mutex<State>>,
}

fn is_hash(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl StandIn {
    fn start(google: bool) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            google,
            consent: "GRANTED".into(),
            ..State::default()
        }));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                std::thread::spawn(move || handle(stream, &st));
            }
        });
        StandIn { base, state }
    }

    fn fail_next(&self, actions: &[Action]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(actions.iter().cloned());
    }

    fn audience(&self) -> BTreeSet<String> {
        self.state.lock().unwrap().audience.clone()
    }

    fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    fn check(&self) {
        let s = self.state.lock().unwrap();
        assert!(s.problems.is_empty(), "stand-in found: {:?}", s.problems);
    }

    /// Every hash added exactly once, none removed.
    fn added_once(&self) -> bool {
        self.state.lock().unwrap().added.values().all(|n| *n == 1)
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let req = Request {
        method,
        path,
        headers,
        body,
    };
    let (status, retry_after, answer) = {
        let mut s = state.lock().unwrap();
        s.requests.push(req.clone());
        match s.script.pop_front() {
            Some(Action::Drop) => return, // closes the connection unanswered
            Some(Action::Fail(status, retry_after, body)) => (status, retry_after, body),
            Some(Action::Partial) => {
                let (st, mut v) = s.serve(&req);
                if st == 200 {
                    v["partialFailureError"] = json!({"code": 3, "message": "1 operation failed",
                        "details": [{"errors": [{"message": "bad identifier"}]}]});
                }
                (st, None, v.to_string())
            }
            Some(Action::Stall(ms)) => {
                drop(s);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                let (st, v) = state.lock().unwrap().serve(&req);
                (st, None, v.to_string())
            }
            None | Some(Action::Pass) => {
                let (st, v) = s.serve(&req);
                (st, None, v.to_string())
            }
        }
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.len()
    );
    if let Some(r) = retry_after {
        head.push_str(&format!("Retry-After: {r}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(answer.as_bytes());
}

impl State {
    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn serve(&mut self, req: &Request) -> (u16, Value) {
        if self.google {
            self.serve_google(req)
        } else {
            self.serve_meta(req)
        }
    }

    fn serve_meta(&mut self, req: &Request) -> (u16, Value) {
        if req.path != "/123456/users" || !["POST", "DELETE"].contains(&req.method.as_str()) {
            self.problem(format!("{} {}", req.method, req.path));
            return (404, json!({}));
        }
        if req.headers.get("authorization").map(String::as_str)
            != Some(&format!("Bearer {META_TOKEN}"))
        {
            return (
                400,
                json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                    "type": "OAuthException", "code": 190, "fbtrace_id": "x"}}),
            );
        }
        let b = &req.body;
        let schema = b["payload"]["schema"].as_array().map_or(0, Vec::len);
        let data = b["payload"]["data"].as_array().cloned().unwrap_or_default();
        let session = &b["session"];
        if schema != 13
            || data.is_empty()
            || data.len() > 10_000
            || !session["session_id"].is_u64()
            || !session["batch_seq"].is_u64()
            || !session["last_batch_flag"].is_boolean()
            || !session["estimated_num_total"].is_u64()
        {
            self.problem(format!(
                "body shape: schema {schema}, {} rows, session {session}",
                data.len()
            ));
        }
        for row in &data {
            let cells = row.as_array().cloned().unwrap_or_default();
            if cells.len() != 13 {
                self.problem(format!("row of {} cells", cells.len()));
                continue;
            }
            for c in &cells[..2] {
                if c != "" && !is_hash(c) {
                    self.problem(format!("not a hash: {c}"));
                }
            }
            if req.method == "DELETE" && cells[2..].iter().any(|c| c != "") {
                self.problem("a removal carries more than identifiers".into());
            }
            for c in cells[..2].iter().filter(|c| *c != "") {
                let h = c.as_str().unwrap().to_string();
                if req.method == "POST" {
                    *self.added.entry(h.clone()).or_default() += 1;
                    self.audience.insert(h);
                } else {
                    *self.removed.entry(h.clone()).or_default() += 1;
                    self.audience.remove(&h);
                }
            }
        }
        (
            200,
            json!({"audience_id": "123456", "session_id": session["session_id"],
                "num_received": data.len(), "num_invalid_entries": 0}),
        )
    }

    fn serve_google(&mut self, req: &Request) -> (u16, Value) {
        let unauthenticated = json!({"error": {"code": 401,
            "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}});
        if req.method != "POST" {
            self.problem(format!("{} {}", req.method, req.path));
        }
        if req.headers.get("authorization").map(String::as_str)
            != Some(&format!("Bearer {GOOGLE_TOKEN}"))
        {
            return (401, unauthenticated);
        }
        if req.headers.get("developer-token").map(String::as_str) != Some(DEV_TOKEN) {
            self.problem("developer-token".into());
        }
        if req.headers.get("login-customer-id").map(String::as_str) != Some("999") {
            self.problem("login-customer-id".into());
        }
        let b = &req.body;
        if req.path == "/customers/111/offlineUserDataJobs:create" {
            let meta = &b["job"]["customerMatchUserListMetadata"];
            let consent = self.consent.clone();
            if b["job"]["type"] != "CUSTOMER_MATCH_USER_LIST"
                || meta["userList"] != "customers/111/userLists/222"
                || meta["consent"]["adUserData"] != consent.as_str()
                || meta["consent"]["adPersonalization"] != consent.as_str()
            {
                self.problem(format!("job: {b}"));
            }
            self.jobs.push(Vec::new());
            let n = self.jobs.len() - 1;
            return (
                200,
                json!({"resourceName": format!("customers/111/offlineUserDataJobs/{n}")}),
            );
        }
        let job = req
            .path
            .strip_prefix("/customers/111/offlineUserDataJobs/")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(n, verb)| Some((n.parse::<usize>().ok()?, verb.to_string())));
        let Some((n, verb)) = job.filter(|(n, _)| *n < self.jobs.len()) else {
            self.problem(format!("path {}", req.path));
            return (404, json!({}));
        };
        match verb.as_str() {
            "addOperations" => {
                let ops = b["operations"].as_array().cloned().unwrap_or_default();
                if ops.is_empty() || ops.len() > 10_000 || b["enablePartialFailure"] != true {
                    self.problem(format!("addOperations: {} ops", ops.len()));
                }
                for op in &ops {
                    let (Some(o), 1) = (op.as_object(), op.as_object().map_or(0, |o| o.len()))
                    else {
                        self.problem(format!("op {op}"));
                        continue;
                    };
                    let (verb, inner) = o.iter().next().unwrap();
                    if verb != "create" && verb != "remove" {
                        self.problem(format!("op verb {verb}"));
                    }
                    for id in inner["userIdentifiers"].as_array().into_iter().flatten() {
                        let h = id
                            .get("hashedEmail")
                            .or_else(|| id.get("hashedPhoneNumber"));
                        if !h.is_some_and(is_hash) && id.get("addressInfo").is_none() {
                            self.problem(format!("identifier {id}"));
                        }
                    }
                }
                self.jobs[n].extend(ops);
                (200, json!({}))
            }
            "run" => {
                for op in std::mem::take(&mut self.jobs[n]) {
                    let (verb, inner) = op.as_object().unwrap().iter().next().unwrap();
                    for id in inner["userIdentifiers"].as_array().into_iter().flatten() {
                        let Some(h) = id
                            .get("hashedEmail")
                            .or_else(|| id.get("hashedPhoneNumber"))
                            .and_then(Value::as_str)
                        else {
                            continue;
                        };
                        if verb == "create" {
                            *self.added.entry(h.to_string()).or_default() += 1;
                            self.audience.insert(h.to_string());
                        } else {
                            *self.removed.entry(h.to_string()).or_default() += 1;
                            self.audience.remove(h);
                        }
                    }
                }
                (200, json!({"name": "operations/1"}))
            }
            _ => {
                self.problem(format!("verb {verb}"));
                (404, json!({}))
            }
        }
    }
}

fn sha(email: &str) -> String {
    Sha256::digest(email.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn email(i: usize) -> String {
    format!("person{i}@example.com")
}

/// Profiles `0..n` in NL with consent; returns the data directory's parent.
fn database(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    add_records(dir.path(), 0..n, true);
    dir
}

fn add_records(dir: &Path, range: std::ops::Range<usize>, consent: bool) {
    let file = dir.join(format!("records-{}-{consent}.jsonl", range.start));
    let mut text = String::new();
    for i in range {
        text.push_str(&format!(
            "{{\"source\":\"crm\",\"identifiers\":{{\"email\":\"{}\"}},\"attributes\":{{\"country\":\"NL\"}},\"consent\":{{\"custom_audiences\":{consent}}}}}\n",
            email(i)
        ));
    }
    std::fs::write(&file, text).unwrap();
    json_ok(
        &dir.join("data"),
        &["import", file.to_str().unwrap(), "--json"],
    );
}

fn expected(range: impl Iterator<Item = usize>) -> BTreeSet<String> {
    range.map(|i| sha(&email(i))).collect()
}

/// `cidb --data DATA ARGS` with the tokens in the environment (and a short back-off).
fn run(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("CIDB_PUSH_BACKOFF_MS", "5")
        .env("META_TOKEN", META_TOKEN)
        .env("GOOGLE_TOKEN", GOOGLE_TOKEN)
        .env("GOOGLE_DEV_TOKEN", DEV_TOKEN)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn push(data: &Path, name: &str, env: &[(&str, &str)]) -> Value {
    let out = run(data, &["sync", name, "--push", "--json"], env);
    assert!(
        out.status.success(),
        "push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn meta_destination(data: &Path, base: &str, extra: &[&str]) {
    let mut args = vec![
        "destination",
        "create",
        "fb",
        "--format",
        "meta-api",
        "--segment",
        "country = \"NL\"",
        "--push",
        "meta",
        "--audience-id",
        "123456",
        "--token-env",
        "META_TOKEN",
        "--api-base",
        base,
        "--json",
    ];
    args.extend_from_slice(extra);
    let d = json_ok(data, &args);
    assert_eq!(d["push"]["platform"], "meta");
    assert_eq!(d["push"]["token_env"], "META_TOKEN");
}

fn google_destination(data: &Path, base: &str, extra: &[&str]) {
    let mut args = vec![
        "destination",
        "create",
        "gads",
        "--format",
        "google-api",
        "--segment",
        "country = \"NL\"",
        "--push",
        "google",
        "--customer-id",
        "111",
        "--user-list-id",
        "222",
        "--login-customer-id",
        "999",
        "--token-env",
        "GOOGLE_TOKEN",
        "--developer-token-env",
        "GOOGLE_DEV_TOKEN",
        "--api-base",
        base,
        "--json",
    ];
    args.extend_from_slice(extra);
    let d = json_ok(data, &args);
    assert_eq!(d["push"]["platform"], "google");
}

/// No file under `dir` holds a secret.
fn no_secret_in(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            no_secret_in(&path);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            for secret in [META_TOKEN, GOOGLE_TOKEN, DEV_TOKEN] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn push_configuration_is_checked_and_keeps_only_variable_names() {
    let dir = database(1);
    let data = dir.path().join("data");
    meta_destination(&data, "http://127.0.0.1:9", &[]);
    let list = json_ok(&data, &["destination", "list", "--json"]);
    let d = &list["destinations"][0]["destination"];
    assert_eq!(d["push"]["audience_id"], "123456");
    assert_eq!(d["push"]["api_base"], "http://127.0.0.1:9");
    assert!(!list.to_string().contains(META_TOKEN));
    // A mismatched format, a missing id or a secret in place of a variable name.
    for bad in [
        &[
            "--format",
            "meta-csv",
            "--push",
            "meta",
            "--audience-id",
            "1",
            "--token-env",
            "T",
        ][..],
        &["--format", "meta-api", "--push", "meta", "--token-env", "T"][..],
        &[
            "--format",
            "meta-api",
            "--push",
            "meta",
            "--audience-id",
            "1",
            "--token-env",
            "EAAB-x.y",
        ][..],
        &[
            "--format",
            "google-api",
            "--push",
            "google",
            "--customer-id",
            "1",
            "--token-env",
            "T",
        ][..],
    ] {
        let mut args = vec![
            "destination",
            "create",
            "bad",
            "--segment",
            "country = \"NL\"",
        ];
        args.extend_from_slice(bad);
        let out = run(&data, &args, &[]);
        assert!(!out.status.success(), "{bad:?} accepted");
    }
    // A file destination does not push.
    json_ok(
        &data,
        &[
            "destination",
            "create",
            "files",
            "--format",
            "meta-api",
            "--segment",
            "country = \"NL\"",
            "--json",
        ],
    );
    let out = run(&data, &["sync", "files", "--push"], &[]);
    assert!(!out.status.success());
    // A missing variable is named, nothing is computed.
    let out = run(&data, &["sync", "fb", "--push"], &[("META_TOKEN", "")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("META_TOKEN"));
    no_secret_in(&data);
}

#[test]
fn meta_push_batches_sends_each_identifier_once_and_then_nothing() {
    let n = 10_050;
    let dir = database(n);
    let data = dir.path().join("data");
    add_records(dir.path(), n..n + 5, false); // outside the policy
    let meta = StandIn::start(false);
    meta_destination(&data, &meta.base, &[]);
    let r = push(&data, "fb", &[]);
    assert_eq!(r["destination"], "fb");
    assert_eq!(r["adds"], n);
    assert_eq!(r["removes"], 0);
    assert_eq!(r["requests"], 2);
    assert_eq!(r["retries"], 0);
    assert_eq!(r["acknowledged"], true);
    assert_eq!(r["num_received"], n);
    assert_eq!(r["num_invalid_entries"], 0);
    meta.check();
    assert_eq!(meta.audience(), expected(0..n));
    assert!(meta.added_once());
    let reqs = meta.requests();
    assert_eq!(reqs[0].body["session"]["batch_seq"], 1);
    assert_eq!(reqs[0].body["session"]["last_batch_flag"], false);
    assert_eq!(reqs[1].body["session"]["batch_seq"], 2);
    assert_eq!(reqs[1].body["session"]["last_batch_flag"], true);
    assert_eq!(
        reqs[0].body["payload"]["data"].as_array().unwrap().len(),
        10_000
    );

    // Acknowledged: the next push sends nothing.
    let again = push(&data, "fb", &[]);
    assert_eq!(
        (again["adds"].clone(), again["requests"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(meta.requests().len(), 2);

    // A withdrawal is removed with DELETE, and only it.
    add_records(dir.path(), 0..1, false);
    let r = push(&data, "fb", &[]);
    assert_eq!(
        (r["adds"].clone(), r["removes"].clone()),
        (json!(0), json!(1))
    );
    let delete = meta.requests().last().unwrap().clone();
    assert_eq!(delete.method, "DELETE");
    // One session per push and direction.
    assert_eq!(
        reqs[0].body["session"]["session_id"],
        reqs[1].body["session"]["session_id"]
    );
    assert_ne!(
        reqs[0].body["session"]["session_id"],
        delete.body["session"]["session_id"]
    );
    meta.check();
    assert_eq!(meta.audience(), expected(1..n));

    // The audit trail has every push, without a token; no file holds one.
    let audit = run(&data, &["audit", "--json"], &[]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.contains("sync_push"), "{audit}");
    no_secret_in(&data);
}

#[test]
fn meta_transient_failures_are_retried() {
    let dir = database(3);
    let data = dir.path().join("data");
    let meta = StandIn::start(false);
    meta_destination(&data, &meta.base, &[]);
    // A message that echoes the token is never logged as it is.
    let transient = json!({"error": {"message": format!("Please retry {META_TOKEN}"), "code": 2, "is_transient": true}});
    meta.fail_next(&[
        Action::Fail(429, Some(1), "{}".into()),
        Action::Fail(500, None, "oops".into()),
        Action::Drop,
        Action::Fail(400, None, transient.to_string()),
    ]);
    let started = std::time::Instant::now();
    let out = run(
        &data,
        &["sync", "fb", "--push", "--json"],
        &[("RUST_LOG", "warn")],
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains(META_TOKEN));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[redacted]"),
        "the retries are logged"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(r["retries"], 4);
    assert_eq!(r["requests"], 1);
    assert_eq!(r["acknowledged"], true);
    meta.check();
    assert_eq!(meta.requests().len(), 5);
    assert_eq!(meta.audience(), expected(0..3));
    assert!(meta.added_once());
}

#[test]
fn meta_invalid_token_acknowledges_nothing_and_the_next_push_resends() {
    let dir = database(3);
    let data = dir.path().join("data");
    let meta = StandIn::start(false);
    meta_destination(&data, &meta.base, &[]);
    let out = run(
        &data,
        &["sync", "fb", "--push"],
        &[("META_TOKEN", "wrong-token-77")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Invalid OAuth access token") && err.contains("190"),
        "{err}"
    );
    assert!(!err.contains("wrong-token-77"));
    assert_eq!(meta.requests().len(), 1, "a permanent error is not retried");
    assert!(meta.audience().is_empty());
    let r = push(&data, "fb", &[]);
    assert_eq!(r["adds"], 3, "the diff stayed pending");
    assert_eq!(meta.audience(), expected(0..3));
    // A platform message that echoes the token is redacted; 403 is permanent.
    add_records(dir.path(), 3..4, true);
    let echo = json!({"error": {"message": format!("token {META_TOKEN} lacks ads_management"), "code": 200}});
    meta.fail_next(&[Action::Fail(403, None, echo.to_string())]);
    let out = run(&data, &["sync", "fb", "--push"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[redacted] lacks ads_management"), "{err}");
    assert!(!err.contains(META_TOKEN));
    no_secret_in(&data);
}

#[test]
fn interrupted_pushes_are_repeated_until_the_platform_equals_the_segment() {
    let dir = database(4);
    let data = dir.path().join("data");
    let meta = StandIn::start(false);
    meta_destination(&data, &meta.base, &[]);
    push(&data, "fb", &[]);
    // One leaves, one joins: an add request, then a removal that fails for good.
    add_records(dir.path(), 0..1, false);
    add_records(dir.path(), 4..5, true);
    let revoked = json!({"error": {"message": "Error validating access token", "code": 190}});
    // The add goes through, the removal is refused.
    meta.fail_next(&[Action::Pass, Action::Fail(400, None, revoked.to_string())]);
    let out = run(&data, &["sync", "fb", "--push"], &[]);
    assert!(!out.status.success());
    assert!(meta.audience().contains(&sha(&email(4))));
    assert!(
        meta.audience().contains(&sha(&email(0))),
        "the removal was refused"
    );
    // A crash after sending and before acknowledging.
    let out = run(
        &data,
        &["sync", "fb", "--push"],
        &[("CIDB_CRASH_AT", "push.before_ack")],
    );
    assert!(!out.status.success());
    // `kill -9` while a request waits for its answer.
    meta.fail_next(&[Action::Stall(5_000)]);
    let before = meta.requests().len();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("--data")
        .arg(&data)
        .args(["sync", "fb", "--push"])
        .env("META_TOKEN", META_TOKEN)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while meta.requests().len() == before {
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The clean push repeats what is pending.
    let r = push(&data, "fb", &[]);
    assert_eq!(
        (r["adds"].clone(), r["removes"].clone()),
        (json!(1), json!(1))
    );
    meta.check();
    assert_eq!(meta.audience(), expected(1..5));
}

#[test]
fn additive_only_never_sends_a_removal() {
    let dir = database(3);
    let data = dir.path().join("data");
    let meta = StandIn::start(false);
    meta_destination(&data, &meta.base, &["--additive-only"]);
    push(&data, "fb", &[]);
    add_records(dir.path(), 0..1, false);
    let r = push(&data, "fb", &[]);
    assert_eq!(r["removes"], 0);
    assert!(meta.requests().iter().all(|r| r.method == "POST"));
    assert_eq!(meta.audience(), expected(0..3));
}

#[test]
fn google_push_runs_jobs_with_partial_failure_and_retries() {
    let n = 10_010;
    let dir = database(n);
    let data = dir.path().join("data");
    let google = StandIn::start(true);
    google_destination(&data, &google.base, &[]);
    let exhausted = json!({"error": {"code": 429, "message": "Too many requests", "status": "RESOURCE_EXHAUSTED"}});
    let unavailable =
        json!({"error": {"code": 503, "message": "try later", "status": "UNAVAILABLE"}});
    google.fail_next(&[
        Action::Fail(429, Some(0), exhausted.to_string()),
        Action::Drop,
        Action::Pass,    // the job is created
        Action::Partial, // the first addOperations
        Action::Fail(503, None, unavailable.to_string()),
    ]);
    let r = push(&data, "gads", &[]);
    assert_eq!(r["adds"], n);
    assert_eq!(r["retries"], 3);
    // create, 2 × addOperations, run
    assert_eq!(r["requests"], 4);
    assert_eq!(r["partial_failures"], 1);
    assert_eq!(r["partial_failure_requests"], 1);
    assert_eq!(r["acknowledged"], true);
    assert_eq!(r["jobs"].as_array().unwrap().len(), 1);
    google.check();
    assert_eq!(google.audience(), expected(0..n));
    assert!(google.added_once());

    // A removal is its own job of `remove` operations.
    add_records(dir.path(), 0..1, false);
    let r = push(&data, "gads", &[]);
    assert_eq!(
        (r["adds"].clone(), r["removes"].clone()),
        (json!(0), json!(1))
    );
    google.check();
    assert_eq!(google.audience(), expected(1..n));
    let last_ops = google
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with(":addOperations"))
        .unwrap();
    assert!(last_ops.body["operations"][0]["remove"].is_object());
    no_secret_in(&data);
}

#[test]
fn google_invalid_token_and_consent_unspecified() {
    let dir = database(2);
    let data = dir.path().join("data");
    let google = StandIn::start(true);
    // A policy that does not test consent sends UNSPECIFIED.
    google_destination(&data, &google.base, &["--policy", "country = \"NL\""]);
    google.state.lock().unwrap().consent = "UNSPECIFIED".into();
    let out = run(
        &data,
        &["sync", "gads", "--push"],
        &[("GOOGLE_TOKEN", "nope-55")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid authentication credentials"), "{err}");
    assert!(!err.contains("nope-55"));
    assert!(google.audience().is_empty());
    let r = push(&data, "gads", &[]);
    assert_eq!(r["adds"], 2, "the diff stayed pending");
    google.check();
    assert_eq!(google.audience(), expected(0..2));
}

#[test]
fn serve_pushes_on_a_schedule_and_on_request() {
    use std::io::BufRead;
    let dir = database(3);
    let data = dir.path().join("data");
    let meta = StandIn::start(false);
    meta_destination(&data, &meta.base, &[]);
    let admin = common::create_key(&data, "admin");
    let analyst = common::create_key(&data, "analyst");
    // The first scheduled push waits on the platform for 3 s: queries go on meanwhile.
    meta.fail_next(&[Action::Stall(3_000)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--addr", "127.0.0.1:0", "--sync-every", "1s"])
        .env("CIDB_PUSH_BACKOFF_MS", "5")
        .env("META_TOKEN", META_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let started = std::time::Instant::now();
    while meta.requests().is_empty() {
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let asked = std::time::Instant::now();
    let (status, _) = {
        let r = ureq::get(&format!("{base}/v1/destinations"))
            .set("Authorization", &format!("Bearer {analyst}"))
            .call()
            .unwrap();
        (r.status(), ())
    };
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() < std::time::Duration::from_millis(2_500),
        "a query waited for the push"
    );
    assert!(meta.audience().is_empty(), "the push was still waiting");
    while meta.audience() != expected(0..3) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no scheduled push"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    meta.check();
    let call = |method: &str, path: &str, key: &str| -> (u16, Value) {
        let r = ureq::request(method, &format!("{base}{path}"))
            .set("Authorization", &format!("Bearer {key}"))
            .call();
        let (status, resp) = match r {
            Ok(resp) => (resp.status(), resp),
            Err(ureq::Error::Status(s, resp)) => (s, resp),
            Err(e) => panic!("{e}"),
        };
        let text = resp.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    };
    // The list shows the last push (the scheduler's, acknowledged).
    loop {
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        let (status, v) = call("GET", "/v1/destinations", &analyst);
        assert_eq!(status, 200, "{v}");
        if v["destinations"][0]["last_push"].is_object() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Later rounds find nothing pending and push nothing.
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let (_, audit) = call("GET", "/v1/audit?limit=1000", &admin);
    let pushes = audit["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .filter(|e| e["action"] == "sync_push")
        .count();
    assert_eq!(pushes, 1, "{audit}");
    assert_eq!(meta.requests().len(), 1);
    let (_, listed) = call("GET", "/v1/destinations", &analyst);
    let last = &listed["destinations"][0]["last_push"];
    assert_eq!(last["adds"], 3, "{listed}");
    assert_eq!(last["outcome"], "ok", "{listed}");
    assert_eq!(last["acknowledged"], true);
    assert_eq!(last["actor"], "scheduler");
    assert_eq!(
        listed["destinations"][0]["destination"]["push"]["platform"],
        "meta"
    );
    assert_eq!(listed["destinations"][0]["sent_profiles"], 3);
    // Admin only, and a destination that exists.
    assert_eq!(call("POST", "/v1/destinations/fb/push", &analyst).0, 403);
    assert_eq!(call("POST", "/v1/destinations/nope/push", &admin).0, 404);
    let (status, r) = call("POST", "/v1/destinations/fb/push", &admin);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["acknowledged"], true);
    assert_eq!(r["adds"], 0);
    let (_, _) = call("GET", "/healthz", &admin);
    let metrics = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("cidb_pushed_identifiers_total{destination=\"fb\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cidb_push_failures_total") || !metrics.contains("push_failures_total{")
    );
    assert_eq!(meta.audience(), expected(0..3));
    assert!(meta.added_once());
    common::terminate(&mut child, std::time::Duration::from_secs(10)).expect("stops");
    no_secret_in(&data);
}
