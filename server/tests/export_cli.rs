//! The real `cidb` binary: export, suppress, destination, sync and normalize, with their
//! JSON contracts and exit codes.

use serde_json::Value;
use std::process::{Command, Stdio};

mod common;

use common::{cidb, json_ok};

const RECORDS: &str = r#"{"source":"crm","identifiers":{"email":"A@Example.com","phone":"06 12345678"},"attributes":{"country":"NL","first_name":"Anna"},"consent":{"custom_audiences":true}}
{"source":"crm","identifiers":{"email":"b@example.com"},"attributes":{"country":"NL"},"consent":{"custom_audiences":true}}
{"source":"crm","identifiers":{"email":"c@example.com"},"attributes":{"country":"NL"},"consent":{"custom_audiences":false}}
"#;

/// SHA-256 of an already normalized email, through the binary's own `normalize` (checked
/// against the spec's vector below).
fn sha256_hex(email: &str) -> String {
    let line = format!(r#"{{"field":"email","raw":"{email}"}}"#);
    let v = normalize(&line);
    v["meta"]["sha256"].as_str().unwrap().to_string()
}

fn normalize(input: &str) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("normalize")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn database() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.jsonl");
    std::fs::write(&file, RECORDS).unwrap();
    json_ok(
        &dir.path().join("data"),
        &["import", file.to_str().unwrap(), "--json"],
    );
    dir
}

#[test]
fn normalize_answers_each_line_in_order() {
    let out = Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("normalize")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(
                b"{\"field\": \"phone\", \"raw\": \"06 12345678\", \"country\": \"NL\"}\n{\"field\": \"email\", \"raw\": null, \"id\": 2}\n",
            )?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["meta"]["normalized"], "31612345678");
    assert_eq!(lines[0]["google"]["normalized"], "+31612345678");
    assert_eq!(lines[1]["valid"], false);
    assert_eq!(lines[1]["id"], 2);
    assert_eq!(
        sha256_hex("john.smith@example.com"),
        "8e621e3d0368631d263d07a351fa8d34fba0d17c15fbcdec11a5f58008d022a0"
    );
}

#[test]
fn export_suppress_destination_and_sync() {
    let dir = database();
    let data = dir.path().join("data");
    let out = dir.path().join("audience.jsonl");
    let report = json_ok(
        &data,
        &[
            "export",
            "country = \"NL\"",
            "--format",
            "meta-api",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(report["members"], 3);
    assert_eq!(report["removed_by_policy"], 1);
    assert_eq!(report["profiles"], 2);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(&sha256_hex("a@example.com")));
    assert!(!text.contains("a@example.com"), "no raw value leaves");

    let list = dir.path().join("optout.txt");
    std::fs::write(&list, "b@example.com\n").unwrap();
    let r = json_ok(
        &data,
        &[
            "suppress",
            "import",
            "optout",
            list.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        (r["added"].as_u64(), r["profiles"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        json_ok(&data, &["suppress", "list", "--json"])["lists"][0]["name"],
        "optout"
    );
    let hashes = dir.path().join("h.txt");
    json_ok(
        &data,
        &[
            "export",
            "ALL",
            "--format",
            "hashes",
            "--out",
            hashes.to_str().unwrap(),
            "--json",
        ],
    );
    let h = std::fs::read_to_string(&hashes).unwrap();
    assert!(!h.contains(&sha256_hex("b@example.com")));

    json_ok(
        &data,
        &["segment", "save", "nl", "country = \"NL\"", "--json"],
    );
    let d = json_ok(
        &data,
        &[
            "destination",
            "create",
            "ads",
            "--format",
            "google-csv",
            "--segment",
            "nl",
            "--json",
        ],
    );
    assert_eq!(d["policy"], "consent(\"custom_audiences\")");
    assert_eq!(
        json_ok(&data, &["destination", "list", "--json"])["destinations"][0]["destination"]
            ["name"],
        "ads"
    );
    let sync_dir = dir.path().join("sync1");
    let s = json_ok(
        &data,
        &["sync", "ads", "--out", sync_dir.to_str().unwrap(), "--json"],
    );
    assert_eq!(s["adds"], 1);
    assert!(sync_dir.join("adds.csv").exists() && sync_dir.join("removes.csv").exists());
    let ack = json_ok(&data, &["sync", "ads", "--ack", "--json"]);
    assert_eq!(ack["profiles"], 1);
    let again = cidb(&data, &["sync", "ads", "--ack"]);
    assert!(!again.status.success(), "nothing pending to acknowledge");
    json_ok(&data, &["destination", "delete", "ads", "--json"]);
    json_ok(&data, &["suppress", "delete", "optout", "--json"]);
}

#[test]
fn bad_arguments_fail_clearly() {
    let dir = database();
    let data = dir.path().join("data");
    let out = dir.path().join("x");
    let bad = cidb(
        &data,
        &[
            "export",
            "country =",
            "--format",
            "meta-api",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "a bad expression exits 2");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 1, column"));
    let bad = cidb(
        &data,
        &[
            "export",
            "ALL",
            "--format",
            "tiktok",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown format"));
    let bad = cidb(&data, &["sync", "nope", "--ack"]);
    assert!(!bad.status.success());
}
