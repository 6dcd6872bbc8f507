//! Helpers shared by the binary's integration tests: run the real `cidb` on a data
//! directory.

#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cidb --data DATA ARGS...`.
pub fn cidb(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run cidb")
}

/// Runs a command that must succeed and print one JSON object.
pub fn json_ok(data: &Path, args: &[&str]) -> Value {
    let out = cidb(data, args);
    assert!(
        out.status.success(),
        "cidb {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// Creates an API key of `role`; returns the key.
pub fn create_key(data: &Path, role: &str) -> String {
    let v = json_ok(data, &["keys", "create", "--role", role, "--json"]);
    assert_eq!(v["role"], role);
    assert!(v["id"].is_string());
    v["key"].as_str().unwrap().to_string()
}

/// Starts `cidb serve` on an ephemeral loopback port with `extra` arguments and `env`;
/// returns the child and the base URL it announced.
pub fn serve(data: &Path, extra: &[&str], env: &[(&str, &Path)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cidb"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cidb serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, base)
}

/// Sends SIGTERM to `child` and waits up to `limit` for it to exit; returns its status and
/// how long it took, or `None` (after killing it) if it was still running.
pub fn terminate(child: &mut Child, limit: Duration) -> Option<(ExitStatus, Duration)> {
    let signalled = Instant::now();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status, signalled.elapsed()));
        }
        if signalled.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
