//! The console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver` packages) driven over WebDriver by a small client here, against the
//! real `cidb serve` on a temporary database.
//!
//! Checked: sign-in (the key only in session storage, the role shown); a typed
//! expression's count equals the API's, also at a pinned `at`; a slow count is aborted by
//! a newer one while the page stays usable; a broken expression is underlined at the
//! API's column; completion by keyboard; a shared `#expr=` link; the breakdown's bars and
//! numbers equal `/v1/segments/breakdown`; the overlap heat map's counts equal
//! `/v1/segments/overlap`; the history, model and audience views draw (an export is
//! downloaded); an analyst has no profile lookup, an admin has and sees provenance;
//! nothing is loaded from another host; a phone-sized viewport does not scroll sideways.
//! Screenshots of each view go to `target/console-screenshots/`
//! (`CIDB_CONSOLE_SCREENSHOTS` to change).

mod common;

use common::{cidb, create_key};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "the console's browser tests need Debian's headless Chromium and its \
    WebDriver: `apt-get install -y chromium chromium-driver` (.ci/run installs them)";

/// A known person, for the admin's lookup.
const ADA: &str = r#"{"source":"crm","identifiers":{"email":"ada@example.com"},"attributes":{"country":"GB","interests":["running"]},"consent":{"custom_audiences":true}}"#;

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The W3C WebDriver protocol, just what these tests use.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Process,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(tool).exists(), "{tool} is missing: {INSTALL}");
        }
        let port = free_port();
        let driver = Process(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER} ({e}): {INSTALL}")),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready: {INSTALL}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--hide-scrollbars".to_string(),
            "--window-size=1280,800".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new WebDriver session")
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let v: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .unwrap();
        assert!(
            v["value"]["error"].is_null(),
            "WebDriver {method} {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Types `text` into the element (real key events: input events fire).
    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn clear(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/clear"), None)
            .await;
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/click"), None)
            .await;
    }

    /// Waits until `script` returns something other than null, false or ""; returns it.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.js(script, json!([])).await;
            if !(v.is_null() || v == false || v == "") {
                return v;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let page = self.js("return document.body.innerText", json!([])).await;
                panic!("timed out waiting for {what}; the page says:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the viewport as `dir/name.png`.
    async fn screenshot(&self, dir: &Path, name: &str) {
        let b64 = self.cmd("GET", "/screenshot", None).await;
        let png = base64_decode(b64.as_str().unwrap());
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn quit(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Standard base64 (the screenshots), without a dependency for it.
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(value(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// The real server on a generated database with a known person, saved segments and a
/// model.
struct Server {
    _process: Process,
    base: String,
    admin: String,
    analyst: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let file = dir.path().join("records.jsonl");
        let out = cidb(
            &data,
            &[
                "generate",
                "--persons",
                "2000",
                "--events-per-person",
                "1",
                "--out",
                file.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "generate failed");
        let mut records = std::fs::read_to_string(&file).unwrap();
        records.push_str(ADA);
        records.push('\n');
        std::fs::write(&file, records).unwrap();
        assert!(cidb(&data, &["import", file.to_str().unwrap(), "--json"])
            .status
            .success());
        let (admin, analyst) = (create_key(&data, "admin"), create_key(&data, "analyst"));
        let (child, base) = common::serve(&data, &[], &[]);
        Server {
            _process: Process(child),
            base,
            admin,
            analyst,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(&url),
            "PUT" => self.http.put(&url),
            _ => self.http.post(&url),
        }
        .header("Authorization", format!("Bearer {key}"));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        req.send().await.unwrap().json().await.unwrap()
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("CIDB_CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sets the editor's expression by typing it.
async fn type_expression(b: &Browser, expr: &str) {
    b.clear("#expr").await;
    b.type_into("#expr", expr).await;
    b.js(
        "document.getElementById('completions').hidden = true",
        json!([]),
    )
    .await;
}

/// Waits for the editor's count of `expr` and returns it.
async fn shown_count(b: &Browser, expr: &str) -> u64 {
    let v = b
        .wait_for(
            &format!("the count of {expr}"),
            "const c = document.getElementById('count');
             return (c.dataset.state === 'done' && c.dataset.count) || null",
        )
        .await;
    v.as_str().unwrap().parse().unwrap()
}

async fn sign_in(b: &Browser, s: &Server, key: &str, role: &str) {
    b.goto(&format!("{}/", s.base)).await;
    b.wait_for(
        "the sign-in form",
        "return !document.getElementById('sign-in').hidden",
    )
    .await;
    b.type_into("#api-key", key).await;
    b.click("#sign-in-form button[type=submit]").await;
    let shown = b
        .wait_for(
            "the role",
            "return document.getElementById('who').hidden ? null : document.getElementById('role').textContent",
        )
        .await;
    assert_eq!(shown, role);
    b.wait_for(
        "the field catalog",
        "return document.querySelectorAll('#breakdown-field option').length > 0",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let started = Instant::now();
    let shots = screenshots_dir();
    let s = Server::start();
    for (name, expr) in [
        ("nl", r#"country = "NL""#),
        ("runners", r#"interests HAS "running""#),
        ("de", r#"country = "DE""#),
    ] {
        let saved = s
            .call(
                "PUT",
                &format!("/v1/segments/{name}"),
                &s.analyst,
                Some(json!({ "expr": expr })),
            )
            .await;
        assert_eq!(saved["name"], name, "{saved}");
    }
    // A diff sync's first `adds` creates destination `nl-hashes`.
    let url = format!("{}/v1/segments/nl/export", s.base);
    let adds = s
        .http
        .post(&url)
        .header("Authorization", format!("Bearer {}", s.analyst))
        .header("Content-Type", "application/json")
        .body(r#"{"format": "hashes", "mode": "adds"}"#)
        .send()
        .await
        .unwrap();
    assert!(adds.status().is_success());
    let trained = s
        .call(
            "POST",
            "/v1/models/runners-like/train",
            &s.analyst,
            Some(json!({"seed": "runners"})),
        )
        .await;
    assert!(trained["auc"].is_number(), "{trained}");
    let curve = s
        .call("GET", "/v1/models/runners-like/curve", &s.analyst, None)
        .await;
    let points = curve["points"].as_array().unwrap();
    assert_eq!(points.len(), 10, "{curve}");
    assert_eq!(points[0]["threshold"], 90);
    assert!(points[0]["lift"].as_f64().unwrap() > 1.0, "{curve}");
    let last = &points[9];
    assert_eq!(last["threshold"], 0);
    assert_eq!(last["gain"], 1.0);
    assert_eq!(last["population_share"], 1.0);
    assert_eq!(curve["seed"], last["seed"]);

    let b = Browser::start().await;

    // Sign in as an analyst: the role is shown, the key is only in session storage.
    b.goto(&format!("{}/", s.base)).await;
    b.wait_for(
        "the sign-in form",
        "return !document.getElementById('sign-in').hidden",
    )
    .await;
    b.screenshot(&shots, "01-sign-in").await;
    sign_in(&b, &s, &s.analyst, "analyst").await;
    let stored = b
        .js(
            "return [sessionStorage.getItem('cidb.apiKey'), localStorage.length, document.cookie]",
            json!([]),
        )
        .await;
    assert_eq!(stored, json!([s.analyst, 0, ""]));

    // An analyst has no profile lookup at all.
    let lookup = b
        .js(
            "return [document.querySelector('[data-view=lookup]'), document.getElementById('view-lookup'), document.body.innerText.includes('Profile lookup')]",
            json!([]),
        )
        .await;
    assert_eq!(lookup, json!([null, null, false]));

    // A typed expression's count is the API's.
    let expr = r#"country = "NL" AND interests HAS "running""#;
    type_expression(&b, expr).await;
    let api = s
        .call(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            Some(json!({ "expr": expr })),
        )
        .await;
    assert_eq!(shown_count(&b, expr).await, api["count"].as_u64().unwrap());
    assert!(api["count"].as_u64().unwrap() > 0);
    let hash = b.js("return location.hash", json!([])).await;
    assert!(
        hash.as_str().unwrap().starts_with("#expr=country"),
        "{hash}"
    );
    b.screenshot(&shots, "02-editor").await;

    // A pinned evaluation time is sent as `at` and kept in the link.
    let timed = r#"event("page_view", within 365d)"#;
    type_expression(&b, timed).await;
    b.type_into("#at", "2026-06-01T00:00:00Z").await;
    let api = s
        .call(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            Some(json!({ "expr": timed, "at": "2026-06-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(shown_count(&b, timed).await, api["count"].as_u64().unwrap());
    let hash = b.js("return location.hash", json!([])).await;
    assert!(
        hash.as_str().unwrap().contains("&at=2026-06-01T00"),
        "{hash}"
    );
    b.clear("#at").await;
    b.js(
        "document.getElementById('at').dispatchEvent(new Event('input'))",
        json!([]),
    )
    .await;

    // A slow answer leaves the page usable, and a newer expression's answer wins: counts
    // are delayed 3 s, the first one is aborted by the second.
    b.js(
        "const real = window.fetch;
         window.aborted = 0;
         window.fetch = (url, init) => {
           if (!String(url).endsWith('/v1/segments/count')) return real(url, init);
           return new Promise((resolve, reject) => {
             const t = setTimeout(() => real(url, init).then(resolve, reject), 3000);
             init.signal.addEventListener('abort', () => {
               clearTimeout(t);
               window.aborted++;
               reject(new DOMException('stale', 'AbortError'));
             });
           });
         };",
        json!([]),
    )
    .await;
    type_expression(&b, r#"country = "DE""#).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    b.click("[data-view=overlap]").await;
    let busy = b
        .js(
            "return [document.getElementById('view-overlap').hidden, document.getElementById('count-status').textContent]",
            json!([]),
        )
        .await;
    assert_eq!(busy, json!([false, "counting…"]));
    b.click("[data-view=editor]").await;
    b.type_into("#expr", " AND interests HAS \"running\"").await;
    let last = r#"country = "DE" AND interests HAS "running""#;
    let api = s
        .call(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            Some(json!({ "expr": last })),
        )
        .await;
    assert_eq!(shown_count(&b, last).await, api["count"].as_u64().unwrap());
    assert!(b.js("return window.aborted", json!([])).await.as_u64() >= Some(1));
    // A fresh page (the real fetch again), still signed in.
    b.goto(&format!("{}/", s.base)).await;
    b.wait_for(
        "the console again",
        "return document.getElementById('role').textContent === 'analyst' && document.querySelectorAll('#breakdown-field option').length > 0",
    )
    .await;

    // A broken one is underlined at the API's column, and the message names the problem.
    let broken = r#"country = "NL" AND contry = "DE""#;
    type_expression(&b, broken).await;
    let err = s
        .call(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            Some(json!({ "expr": broken })),
        )
        .await;
    let column = err["error"]["position"]["column"].as_u64().unwrap();
    assert_eq!(column, 20);
    let shown = b
        .wait_for(
            "the error underline",
            "const m = document.getElementById('expr-error-mark');
             const e = document.getElementById('expr-error');
             return m ? [m.dataset.column, m.textContent, e.dataset.column, e.textContent] : null",
        )
        .await;
    assert_eq!(shown[0], column.to_string());
    assert_eq!(shown[1], "contry");
    assert_eq!(shown[2], column.to_string());
    let message = shown[3].as_str().unwrap();
    assert!(
        message.contains("column 20") && message.contains("contry"),
        "{message}"
    );
    assert_eq!(
        b.js(
            "return document.getElementById('count').textContent",
            json!([])
        )
        .await,
        "–"
    );
    b.screenshot(&shots, "03-editor-error").await;

    // Completion from the field catalog, by keyboard: `countr` + Tab gives `country `.
    b.clear("#expr").await;
    b.type_into("#expr", "countr").await;
    b.wait_for(
        "completions",
        "const l = document.getElementById('completions');
         return !l.hidden && l.querySelector('[aria-selected=true]')?.textContent.startsWith('country')",
    )
    .await;
    b.type_into("#expr", "\u{E004}").await; // Tab
    b.type_into("#expr", "= \"").await;
    let values = b
        .wait_for(
            "value completions",
            "const l = document.getElementById('completions');
             return !l.hidden && [...l.querySelectorAll('li span:first-child')].map(s => s.textContent)",
        )
        .await;
    assert!(
        values.as_array().unwrap().contains(&json!("nl")),
        "{values}"
    );
    b.type_into("#expr", "\u{E007}").await; // Enter
    assert_eq!(
        b.js("return document.getElementById('expr').value", json!([]))
            .await,
        json!(format!("country = \"{}\"", values[0].as_str().unwrap()))
    );

    // A shared link opens with its expression and counts it.
    let shared = r#"interests HAS "running" AND NOT segment("nl")"#;
    let link = format!(
        "{}/#expr={}",
        s.base,
        shared
            .bytes()
            .map(|c| if c.is_ascii_alphanumeric() {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            })
            .collect::<String>()
    );
    b.goto("about:blank").await;
    b.goto(&link).await;
    b.wait_for(
        "the shared expression",
        "return document.getElementById('expr').value",
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('expr').value", json!([]))
            .await,
        shared
    );
    let api = s
        .call(
            "POST",
            "/v1/segments/count",
            &s.analyst,
            Some(json!({ "expr": shared })),
        )
        .await;
    assert_eq!(
        shown_count(&b, shared).await,
        api["count"].as_u64().unwrap()
    );

    // The breakdown's bars and numbers are the API's.
    b.click("[data-view=breakdown]").await;
    b.wait_for(
        "the breakdown bars",
        "return document.querySelectorAll('#breakdown-chart .bar-row').length > 0",
    )
    .await;
    let field = b
        .js(
            "return document.getElementById('breakdown-field').value",
            json!([]),
        )
        .await;
    assert_eq!(field, "country");
    let api = s
        .call(
            "POST",
            "/v1/segments/breakdown",
            &s.analyst,
            Some(json!({"expr": shared, "field": "country", "top": 10})),
        )
        .await;
    let bars = b
        .js(
            "return [...document.querySelectorAll('#breakdown-chart .bar-row')].map(g =>
               [g.dataset.label, Number(g.dataset.value), g.querySelector('text:last-of-type').textContent,
                Number(g.querySelector('rect').getAttribute('width'))])",
            json!([]),
        )
        .await;
    let (bars, values) = (bars.as_array().unwrap(), api["values"].as_array().unwrap());
    assert!(!values.is_empty());
    assert_eq!(bars.len(), values.len(), "{bars:?} vs {api}");
    let total = api["count"].as_u64().unwrap() as f64;
    for (bar, v) in bars.iter().zip(values) {
        assert_eq!(bar[0], v["value"]);
        assert_eq!(bar[1], v["count"]);
        let n = v["count"].as_u64().unwrap();
        let text = bar[2].as_str().unwrap();
        let share = format!("{:.1} %", n as f64 * 100.0 / total);
        assert!(
            text.contains(&n.to_string()) && text.contains(&share),
            "{text} should show {n} and {share}"
        );
    }
    // Bar lengths follow the counts.
    let widths: Vec<f64> = bars.iter().map(|b| b[3].as_f64().unwrap()).collect();
    assert!(widths.windows(2).all(|w| w[0] >= w[1]), "{widths:?}");
    b.screenshot(&shots, "04-breakdown").await;

    // The overlap heat map shows the API's matrix.
    b.click("[data-view=overlap]").await;
    b.click("#overlap-form button[type=submit]").await;
    let cells = b
        .wait_for(
            "the overlap matrix",
            "const t = document.querySelectorAll('#overlap-chart td');
             return t.length ? [...t].map(td => Number(td.dataset.count)) : null",
        )
        .await;
    let api = s
        .call(
            "POST",
            "/v1/segments/overlap",
            &s.analyst,
            Some(json!({"exprs": ["segment(\"de\")", "segment(\"nl\")", "segment(\"runners\")"]})),
        )
        .await;
    let flat: Vec<Value> = api["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .collect();
    assert_eq!(cells, Value::Array(flat));
    b.screenshot(&shots, "05-overlap").await;

    // Size over time: the point taken when the segment was saved.
    b.click("[data-view=history]").await;
    b.wait_for(
        "the history chart",
        "return document.querySelector('#history-chart svg path') && document.getElementById('history-chart').innerText.includes('1 day recorded')",
    )
    .await;
    b.screenshot(&shots, "06-history").await;

    // The model's report: feature weights and the gain curve.
    b.click("[data-view=models]").await;
    b.wait_for(
        "the model report",
        "return document.querySelectorAll('#model-features .bar-row').length > 0 && document.querySelector('#model-curve svg path')",
    )
    .await;
    b.screenshot(&shots, "07-model").await;
    b.js(
        "document.getElementById('model-curve').scrollIntoView()",
        json!([]),
    )
    .await;
    b.screenshot(&shots, "07-model-curve").await;

    // Audiences: the destinations with their last sync, and a hashed export downloaded.
    b.click("[data-view=audiences]").await;
    let row = b
        .wait_for(
            "the destinations",
            "const r = document.querySelector('#destinations tbody tr');
             return r && r.innerText.includes('nl-hashes') && r.innerText",
        )
        .await;
    assert!(row.as_str().unwrap().contains("never pushed"), "{row}");
    b.click("#export-form button[type=submit]").await;
    let status = b
        .wait_for(
            "the export",
            "const s = document.getElementById('export-status').textContent;
             return s.startsWith('Downloaded') && s",
        )
        .await;
    assert!(status.as_str().unwrap().contains("bytes"), "{status}");
    b.screenshot(&shots, "08-audiences").await;

    // Everything the page loaded came from the server itself.
    let elsewhere = b
        .js(
            "return performance.getEntries().map(e => e.name)
               .filter(n => /^[a-z]+:/.test(n) && !n.startsWith(location.origin))",
            json!([]),
        )
        .await;
    assert_eq!(elsewhere, json!([]), "requests to another host");

    // A phone-sized viewport: nothing scrolls sideways.
    b.click("[data-view=editor]").await;
    b.resize(390, 844).await;
    let overflow = b
        .wait_for(
            "the phone layout",
            "return window.innerWidth <= 420 && [window.innerWidth, document.documentElement.scrollWidth]",
        )
        .await;
    assert!(
        overflow[1].as_u64() <= overflow[0].as_u64(),
        "the page scrolls sideways at 390 px: {overflow}"
    );
    b.screenshot(&shots, "09-phone-editor").await;
    b.resize(1280, 800).await;

    // An admin has the profile lookup, with provenance.
    b.click("#sign-out").await;
    sign_in(&b, &s, &s.admin, "admin").await;
    b.click("[data-view=lookup]").await;
    b.type_into("#lookup-value", "ada@example.com").await;
    b.click("#lookup-form button[type=submit]").await;
    let text = b
        .wait_for(
            "the profile",
            "const r = document.getElementById('lookup-result').innerText;
             return r.includes('ada@example.com') && r.includes('observed') && r",
        )
        .await;
    assert!(text.as_str().unwrap().contains("crm"), "{text}");
    b.screenshot(&shots, "10-admin-lookup").await;

    b.quit().await;
    // Typically 15 s; the bound only catches a hang-like slowdown.
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the browser test took {:?}",
        started.elapsed()
    );
}
