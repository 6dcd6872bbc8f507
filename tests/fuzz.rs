//! Fuzzing with arbitrary bytes and with mutated valid input (proptest, since cargo-fuzz
//! needs a nightly toolchain): the record parser, the CSV and JSON Lines importers (into a
//! real database, which `check` must find clean afterwards) and the expression parser.
//! Nothing may panic; a record is parsed or rejected with a reason, an import reports or
//! fails cleanly, an expression parses (and prints back to itself) or fails with a
//! position inside the text.
//!
//! Cases per target: `CIDB_FUZZ_CASES` (default 256 for the parsers and 128 for the
//! importers: a few seconds each in a debug build). A long run, printing cases and seconds
//! per target: `CIDB_FUZZ_CASES=100000 cargo test --release -p cidb --test fuzz --
//! --nocapture`.

use cidb::query::{parse, Limits, Position, QueryError};
use cidb::{
    parse_json_record, Config, Engine, Generator, ImportOptions, IngestReport, ParsedRecord, Value,
    MAX_ABS_NUMBER, MAX_EVENTS_PER_RECORD, MAX_LIST_ITEMS, MAX_VALUE_BYTES,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use std::sync::OnceLock;
use std::time::Instant;

/// Cases per target: `CIDB_FUZZ_CASES`, or `default` (256 for the parsers, 128 for the
/// importers, which open a real database and take about 20 ms a case in a debug build).
fn cases(default: u32) -> u32 {
    std::env::var("CIDB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` on `cases` inputs from `strategy`, printing the figures (`--nocapture`).
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl FnMut(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        // Inputs that fail are shrunk; no regression files for an external test binary.
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let started = Instant::now();
    let test = std::cell::RefCell::new(test);
    let result = runner.run(&strategy, |input| (test.borrow_mut())(input));
    eprintln!(
        "fuzz {name}: {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Mutations

/// Fragments worth splicing into JSON, CSV or expressions: structure, edge numbers, odd
/// escapes, multi-byte characters, control characters.
const SPLICES: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "1e400",
    "-1e13",
    "1e12",
    "NaN",
    "\"NaN\"",
    "\"inf\"",
    "-0",
    "0.0000001",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "\\uD83D\\uDE00",
    "é",
    "😀",
    "\u{0}",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "|",
    "\"\"",
    "'",
    "(",
    ")",
    "=",
    "!=",
    "<=",
    ">",
    "AND",
    "OR",
    "NOT",
    "ALL",
    "IN",
    "HAS",
    "ANY",
    "EXISTS",
    "BETWEEN",
    "event(",
    "within",
    "30d",
    "5900000y",
    "2147500000d",
    "count",
    "sum",
    ">=",
    "since",
    "\"2026-01-01\"",
    "consent(",
    "segment(",
    "score(\"m\")",
    "suppressed()",
    "age",
    "-",
    "99999999999999999999",
    "1e",
    "\u{feff}",
    "\u{200b}",
    "\u{fffd}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Splice(usize, usize),
    Repeat(usize, usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        1 => (at, any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => (at, any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (at, 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (at, 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        3 => (at, any::<usize>()).prop_map(|(i, s)| Mutation::Splice(i, s)),
        1 => (at, 1usize..8, 2usize..200)
            .prop_map(|(i, n, k)| Mutation::Repeat(i, n, k)),
        1 => at.prop_map(Mutation::Truncate),
    ]
}

/// Applies mutations to bytes (positions taken modulo the current length).
fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let pos = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *m {
            Mutation::Flip(i, b) if len > 0 => bytes[i % len] ^= b.max(1),
            Mutation::Flip(..) => {}
            Mutation::Insert(i, b) => bytes.insert(pos(i), b),
            Mutation::Delete(i, n) => {
                let start = pos(i);
                let end = (start + n).min(len);
                bytes.drain(start..end);
            }
            Mutation::Duplicate(i, n) => {
                let start = pos(i);
                let end = (start + n).min(len);
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Splice(i, s) => {
                let at = pos(i);
                let text = SPLICES[s % SPLICES.len()].as_bytes();
                bytes.splice(at..at, text.iter().copied());
            }
            Mutation::Repeat(i, n, k) => {
                let start = pos(i);
                let end = (start + n).min(len);
                let copy = bytes[start..end].repeat(k);
                bytes.splice(end..end, copy);
            }
            Mutation::Truncate(i) => bytes.truncate(pos(i)),
        }
    }
    bytes
}

/// Bytes: arbitrary, or splices only (denser in meaningful tokens).
fn arbitrary_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..max),
        proptest::collection::vec(proptest::sample::select(SPLICES), 0..max / 4)
            .prop_map(|parts| parts.concat().into_bytes()),
    ]
}

/// A seed from `seeds` with up to `max` mutations.
fn mutated(seeds: &'static [String], max: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(mutation(), 0..max),
    )
        .prop_map(|(seed, ms)| mutate(seed.clone().into_bytes(), &ms))
}

// ---------------------------------------------------------------------------------------
// (a) The record parser

fn generated_records() -> &'static [String] {
    static RECORDS: OnceLock<Vec<String>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let mut records = Generator::new(40, 7).records();
        records.extend(
            [
                r#"{"source":"facebook","observed_at":"2026-11-01T12:00:00Z","identifiers":{"email":["Jane.Doe@Example.com ","jane@work.example"],"phone":"+31 6 1234 5678","facebook_id":"10001234"},"scopes":["email","public_profile","user_likes"],"attributes":{"first_name":"Jane","last_name":"Doe","gender":"female","birth_date":"1990-04-12","country":"NL","city":"Amsterdam","zip":"1011 AB","language":"nl","education":["University of Amsterdam"],"work":["Acme BV"],"interests":["running","travel"],"likes":["Nike"],"loyalty_tier":"gold","lifetime_value":1234.5,"newsletter":true},"consent":{"marketing":true,"custom_audiences":false},"events":[{"type":"purchase","at":"2026-10-01T10:00:00Z","category":"jeans","value":79.95}]}"#,
                r#"{"source":"crm","identifiers":{"crm_id":"C-1","device_id":["d1","d2"]},"attributes":{"lifetime_value":"12.5","x":{"a":1}},"consent":{"ads":false}}"#,
                r#"{"source":"web_form","identifiers":{"phone":"0612345678"},"attributes":{"country":"Netherlands"},"events":[{"type":"visit","at":"2026-01-01T00:00:00+02:00"}]}"#,
            ]
            .map(str::to_string),
        );
        records
    })
}

/// What a parsed record must satisfy whatever the input.
fn check_parsed(p: &ParsedRecord) -> Result<(), TestCaseError> {
    let r = &p.record;
    prop_assert!(!r.identifiers.is_empty());
    prop_assert!(r.events.len() <= MAX_EVENTS_PER_RECORD);
    for (name, value) in &r.attributes {
        prop_assert!(!name.is_empty());
        match value {
            Value::Text(t) => prop_assert!(t.len() <= MAX_VALUE_BYTES),
            Value::Number(n) => prop_assert!(n.is_finite() && n.abs() <= MAX_ABS_NUMBER),
            Value::List(items) => {
                prop_assert!(items.len() <= MAX_LIST_ITEMS);
                prop_assert!(items.iter().all(|t| t.len() <= MAX_VALUE_BYTES));
            }
            Value::Bool(_) | Value::Date(_) => {}
        }
        if name == "lifetime_value" {
            prop_assert!(matches!(value, Value::Number(_)), "{value:?}");
        }
    }
    for e in &r.events {
        prop_assert!(e
            .value
            .is_none_or(|v| v.is_finite() && v.abs() <= MAX_ABS_NUMBER));
    }
    Ok(())
}

fn parse_record(bytes: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(bytes);
    for config in [
        Config::default(),
        Config::default().with_default_region("NL"),
    ] {
        match parse_json_record(&text, &config, 0) {
            Ok(p) => check_parsed(&p)?,
            Err(reason) => prop_assert!(!reason.message.is_empty()),
        }
    }
    Ok(())
}

#[test]
fn record_parser_on_arbitrary_bytes() {
    fuzz(
        "record parser, arbitrary bytes",
        cases(256),
        arbitrary_bytes(512),
        |b| parse_record(&b),
    );
}

#[test]
fn record_parser_on_mutated_records() {
    fuzz(
        "record parser, mutated records",
        cases(256),
        mutated(generated_records(), 8),
        |b| parse_record(&b),
    );
}

// ---------------------------------------------------------------------------------------
// (b) The importers, into a real database

/// A database for one fuzz target, in memory-backed storage when there is some (every
/// import flushes).
fn scratch_db() -> Scratch {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap_or_else(|_| tempfile::tempdir().unwrap())
    } else {
        tempfile::tempdir().unwrap()
    };
    // Small batches and frequent checkpoints, so imports cross batch boundaries and
    // checkpoints are taken between cases.
    let config = Config::default()
        .with_import_batch_records(3)
        .with_checkpoint_min_dirty(50);
    let engine = Engine::open_with(dir.path(), config).expect("open");
    Scratch { engine, _dir: dir }
}

/// A database and its directory (fields drop in order: the engine closes first).
struct Scratch {
    engine: Engine,
    _dir: tempfile::TempDir,
}

fn generated_csv() -> &'static [String] {
    static CSV: OnceLock<Vec<String>> = OnceLock::new();
    CSV.get_or_init(|| {
        let rows: Vec<String> = generated_records()
            .iter()
            .filter_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                let cell = |v: Option<&serde_json::Value>| match v {
                    Some(serde_json::Value::String(s)) => format!("\"{}\"", s.replace('"', "\"\"")),
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .filter_map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join("|"),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let ids = &v["identifiers"];
                let attrs = &v["attributes"];
                Some(
                    [
                        cell(v.get("source")),
                        cell(ids.get("email")),
                        cell(ids.get("phone")),
                        cell(ids.get("crm_id")),
                        cell(attrs.get("first_name")),
                        cell(attrs.get("country")),
                        cell(attrs.get("lifetime_value")),
                        cell(attrs.get("likes")),
                        cell(v["consent"].get("marketing")),
                    ]
                    .join(","),
                )
            })
            .collect();
        let header = "source,email,phone,crm_id,first_name,country,lifetime_value,likes,consent.marketing";
        let mut files: Vec<String> = rows
            .chunks(6)
            .map(|chunk| format!("{header}\r\n{}\r\n", chunk.join("\r\n")))
            .collect();
        files.extend(
            [
                "email,phone,country,interests,consent.marketing,lifetime_value\nAnn@X.com,06 12345678,NL,running|travel,yes,10.5\nnobody,,NL,,,\nbob@x.com,,DE,,no,1e5\n",
                "E-mail,id.loyalty,zip,observed_at\n\"a@b.co\",\"L\"\"1\",0123,2026-01-01T00:00:00Z\n\n\"multi\nline@x.com\",L2,\"10\n11\",\n",
                "\u{feff}email,first_name,birth_date\nc@x.com,Cé,1990-02-28\nc@x.com,,\"1990-13-01\"\n",
            ]
            .map(str::to_string),
        );
        files
    })
}

fn check_report(report: &IngestReport, input: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(report.records, report.accepted + report.rejected_count);
    // Lines end at `\n`, `\r\n` or a lone `\r` (CSV records end there too).
    let breaks = input
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' || (b == b'\n' && (i == 0 || input[i - 1] != b'\r')))
        .count();
    let lines = breaks as u64 + 1;
    for r in &report.rejected {
        prop_assert!(
            r.line >= 1 && r.line <= lines,
            "line {} of {}",
            r.line,
            lines
        );
        prop_assert!(!r.reason.is_empty());
    }
    Ok(())
}

fn import_csv(db: &Engine, input: &[u8], options: &ImportOptions) -> Result<(), TestCaseError> {
    match db.import_csv(input, options, &mut |_| {}) {
        Ok(report) => check_report(&report, input),
        Err(cidb::ImportError::CsvHeader(message)) => {
            prop_assert!(!message.is_empty());
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("import failed: {other}"))),
    }
}

fn csv_options(pick: u8) -> ImportOptions {
    match pick % 3 {
        0 => ImportOptions::default(),
        1 => ImportOptions::default().with_source("crm"),
        _ => ImportOptions::default()
            .with_source("pos")
            .with_csv_rename("E-mail", "email")
            .with_csv_rename("first_name", "id.fname"),
    }
}

/// Cases imported into one database before it is checked a last time and replaced (so a
/// long run's checks do not grow with everything imported before).
const CASES_PER_DB: u32 = 2048;

/// Imports every case into a database that is checked every 64 cases, and replaced by a
/// fresh one every `CASES_PER_DB` cases and at the end after a last check.
fn fuzz_import(
    name: &str,
    strategy: impl Strategy<Value = (Vec<u8>, u8)>,
    import: fn(&Engine, &[u8], u8) -> Result<(), TestCaseError>,
) {
    let mut db = scratch_db();
    let (mut n, mut profiles) = (0u32, 0u64);
    fuzz(name, cases(128), strategy, |(input, pick)| {
        import(&db.engine, &input, pick)?;
        n += 1;
        if n % 64 == 0 {
            assert_clean(&db.engine)?;
        }
        if n % CASES_PER_DB == 0 {
            profiles += db.engine.stats().profiles;
            db = scratch_db();
        }
        Ok(())
    });
    assert_clean(&db.engine).unwrap();
    profiles += db.engine.stats().profiles;
    eprintln!("fuzz {name}: {profiles} live profiles at the end of each database, in all");
}

fn assert_clean(db: &Engine) -> Result<(), TestCaseError> {
    let report = db.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(report.is_clean(), "{:#?}", report.problems);
    Ok(())
}

#[test]
fn csv_import_on_arbitrary_bytes() {
    fuzz_import(
        "CSV import, arbitrary bytes",
        (
            prop_oneof![
                arbitrary_bytes(512),
                // A usable header, then anything.
                arbitrary_bytes(512)
                    .prop_map(|b| [b"email,source,first_name\n".to_vec(), b].concat()),
            ],
            any::<u8>(),
        ),
        |db, input, pick| import_csv(db, input, &csv_options(pick)),
    );
}

#[test]
fn csv_import_on_mutated_csv() {
    fuzz_import(
        "CSV import, mutated CSV",
        (mutated(generated_csv(), 8), any::<u8>()),
        |db, input, pick| import_csv(db, input, &csv_options(pick)),
    );
}

#[test]
fn jsonl_import_on_mutated_lines() {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        generated_records()
            .chunks(5)
            .map(|c| c.join("\n"))
            .collect()
    });
    fuzz_import(
        "JSON Lines import, mutated files",
        (mutated(files, 8), any::<u8>()),
        |db, input, pick| {
            let options = match pick % 2 {
                0 => ImportOptions::default(),
                _ => ImportOptions::default().with_source("app"),
            };
            let report = db
                .import_jsonl(input, &options, &mut |_| {})
                .map_err(|e| TestCaseError::fail(format!("import failed: {e}")))?;
            check_report(&report, input)
        },
    );
}

// ---------------------------------------------------------------------------------------
// (c) The expression parser

fn expressions() -> &'static [String] {
    static EXPRS: OnceLock<Vec<String>> = OnceLock::new();
    EXPRS.get_or_init(|| {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/queries.json"))
                .expect("benches/queries.json"),
        )
        .expect("queries.json is JSON");
        let mut exprs: Vec<String> = json["queries"]
            .as_array()
            .expect("a list of queries")
            .iter()
            .filter_map(|q| q["expr"].as_str().map(str::to_string))
            .collect();
        exprs.extend(
            [
                r#"f IN ("a", "b\"c") OR d BETWEEN "2020-01-01" AND "2021-01-01""#,
                r#"l HAS ALL ("x", "y") AND NOT (b = false OR f EXISTS)"#,
                r#"event("purchase", category = "jeans", within 12w, since "2026-01-01", before "2026-06-01", count >= 2, sum > 9.5)"#,
                r#"identifier("email") AND source("crm") AND suppressed() AND NOT suppressed("optout")"#,
                "f != 1.5 AND f < -2 AND f <= 3e2 AND f > 4 AND f >= 5 AND g <> 6",
                "a = \"\\u00e9\\n\\t\" AND\n  b = 1",
                r#"score("buyers") >= 95 AND NOT score("churn") BETWEEN 0 AND 10.5"#,
            ]
            .map(str::to_string),
        );
        exprs
    })
}

fn parse_expr(bytes: &[u8]) -> Result<(), TestCaseError> {
    let src = String::from_utf8_lossy(bytes);
    for limits in [Limits::default(), Limits::new(96, 4)] {
        match parse(&src, &limits) {
            Ok(expr) => {
                // What the parser accepts, it prints back to the same tree.
                let printed = expr.to_string();
                let again = parse(&printed, &Limits::default())
                    .map_err(|e| TestCaseError::fail(format!("{printed:?} does not parse: {e}")))?;
                prop_assert_eq!(again.to_string(), printed);
            }
            Err(e) => check_error(&e, &src)?,
        }
    }
    Ok(())
}

fn check_error(e: &QueryError, src: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        e.span.start <= e.span.end && e.span.end <= src.len(),
        "span {:?} outside {} bytes: {e}",
        e.span,
        src.len()
    );
    prop_assert_eq!(e.position, Position::of(src, e.span.start));
    prop_assert!(e.position.line >= 1 && e.position.column >= 1);
    let _ = e.render(src);
    Ok(())
}

#[test]
fn expression_parser_on_arbitrary_bytes() {
    fuzz(
        "expression parser, arbitrary bytes",
        cases(256),
        arbitrary_bytes(256),
        |b| parse_expr(&b),
    );
}

#[test]
fn expression_parser_on_mutated_expressions() {
    fuzz(
        "expression parser, mutated expressions",
        cases(256),
        mutated(expressions(), 8),
        |b| parse_expr(&b),
    );
}
