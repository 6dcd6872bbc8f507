//! Helpers shared by the binary's integration tests: run the real `cidb` on a data
//! directory.

#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

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
