//! Crash test for the writes beside ingest: erasure (`forget`), suppression import, sync
//! and acknowledgement. A child process runs one kind of operation in a loop on a shared
//! database and acknowledges each one on stdout; the parent kills it with SIGKILL at a
//! random moment, reopens, and checks:
//!
//! - `check` is clean (it also finds keys left for erased or merged profiles);
//! - every acknowledged erasure is complete: no profile, nobody's sent state holds it,
//!   and its unique name is in no file of the data directory's index checkpoint; the
//!   erasure in flight is either absent or complete;
//! - every acknowledged suppression entry is on its list;
//! - the destination's sync state still reads, and a further sync and ack work.
//!
//! Some rounds stop the child at a named crash point (`CIDB_CRASH_AT`) instead: between
//! an erasure's batch and its key destruction, after the key, and between a sync and the
//! rename of its acknowledgement — the windows a random kill rarely hits.
//!
//! First, a child dies right after an idempotent ingest committed (before answering); the
//! retry with the same key must answer the first report and store nothing twice.
//!
//! A child dies between storing a trained model and installing it; the reopened database
//! scores from the stored model and `check` is clean.
//!
//! A child compacting the storage dies after its copy, between its renames and at a random
//! moment, or is opened concurrently; every reopen finds the same data and no leftover
//! directory. The same for the first compaction of a format-3 directory
//! (`tests/fixtures/format3.tgz`), which packs its older values: the request to pack
//! (`Mrepack`) stays until the packed copy is swapped in.
//!
//! Then a child is killed during a resumable import of a file; the rerun must resume
//! after the last committed batch (every record and event once).
//!
//! Rounds: `CIDB_CRASH_ROUNDS` (default 6). Seed: `CIDB_CRASH_SEED` (default: time).

mod support;

use cidb::export::Format;
use cidb::query::{DestinationSpec, Segments};
use cidb::{Engine, ForgetOptions, Lookup};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const PEOPLE: u64 = 400;
const DESTINATION: &str = "crash-dest";

fn email(k: u64) -> String {
    format!("p{k}@ops.example")
}

/// A name that exists only in this person's profile (and so in the index dictionary).
fn unique_name(k: u64) -> String {
    format!("Zqxname{k}w")
}

fn populate(db: &Engine) {
    let records: Vec<String> = (0..PEOPLE)
        .map(|k| {
            serde_json::json!({
                "source": "crm",
                "identifiers": { "email": email(k), "phone": format!("+316{:08}", k) },
                "attributes": { "first_name": unique_name(k), "country": "NL" },
                "consent": { "custom_audiences": true },
            })
            .to_string()
        })
        .collect();
    db.ingest_json(&records).unwrap();
    let s = Segments::new(db);
    s.create_destination(&DestinationSpec {
        name: DESTINATION.into(),
        format: Format::MetaCsv,
        platform: None,
        segment: r#"country = "NL""#.into(),
        policy: None,
        additive_only: false,
        push: None,
    })
    .unwrap();
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn sync_and_ack(db: &Engine, out: &std::path::Path, tag: &str) {
    Segments::new(db).sync(DESTINATION, out).unwrap();
    say(format!("synced {tag}"));
    db.sync_ack(DESTINATION).unwrap();
    say(format!("acked {tag}"));
}

/// The request an idempotent ingest sends (and retries).
fn idempotent_batch() -> (Vec<String>, cidb::IdempotencyKey) {
    let records = (0..50)
        .map(|k| {
            serde_json::json!({
                "source": "app",
                "identifiers": { "email": format!("i{k}@ops.example") },
                "events": [{ "type": "open", "at": "2026-01-01T00:00:00Z" }],
            })
            .to_string()
        })
        .collect();
    let key = cidb::IdempotencyKey {
        key: [3; 32],
        request: [4; 32],
    };
    (records, key)
}

/// This test binary as a child running `mode` on `dir` from person `start` (see `child`);
/// its standard error is dropped.
fn child_command(dir: &std::path::Path, mode: &str, start: u64) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env("CIDB_OPS_CHILD", dir)
        .env("CIDB_OPS_MODE", mode)
        .env("CIDB_OPS_START", start.to_string())
        .stderr(Stdio::null());
    command
}

/// Runs a child in `mode` that must abort at crash point `point`; notes it if it did not.
fn crash_child_at(dir: &std::path::Path, mode: &str, point: &str, problems: &mut Vec<String>) {
    let status = child_command(dir, mode, 0)
        .env("CIDB_CRASH_AT", point)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    if status.success() {
        problems.push(format!("the child was meant to die at {point}"));
    }
}

/// A child that dies right after an idempotent ingest committed, before it could answer:
/// the retry must get the first answer and store nothing twice.
fn idempotent_retry_after_a_crash(dir: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    crash_child_at(dir, "idempotent", "ingest.after_commit", &mut problems);
    let db = Engine::open(dir).unwrap();
    let events = db.stats().events;
    let (records, key) = idempotent_batch();
    match db.ingest_json_idempotent(&records, &key).unwrap() {
        cidb::IdempotentIngest::Replayed { report, .. } if report.accepted == 50 => {}
        other => problems.push(format!("retry after the crash: {other:?}")),
    }
    if db.stats().events != events {
        problems.push("the retry stored the events again".into());
    }
    problems
}

/// Varied people for the model round: the seed (`tier = "gold"`) is more often in NL and
/// likes running.
fn model_people() -> Vec<String> {
    (0..1_200u64)
        .map(|k| {
            let gold = k % 3 == 0;
            let country = if (gold && k % 4 != 1) || k % 7 == 0 {
                "NL"
            } else {
                "DE"
            };
            let interests = if gold || k % 5 == 0 {
                vec!["running"]
            } else {
                vec!["chess"]
            };
            serde_json::json!({
                "source": "crm",
                "identifiers": { "email": format!("m{k}@model.example") },
                "attributes": { "tier": if gold { "gold" } else { "basic" },
                                "country": country, "interests": interests },
            })
            .to_string()
        })
        .collect()
}

/// A child that dies between storing a trained model and installing it: on reopen the
/// model is there, scored from the stored record, and `check` (which recomputes every
/// score) is clean; a retrain after it works.
fn model_training_after_a_crash(dir: &std::path::Path) -> Vec<String> {
    {
        let db = Engine::open(dir).unwrap();
        db.ingest_json(&model_people()).unwrap();
    }
    let mut problems = Vec::new();
    crash_child_at(dir, "model", "model.after_store", &mut problems);
    let db = Engine::open(dir).unwrap();
    problems.extend(db.check().unwrap().problems);
    let s = Segments::new(&db);
    match s.count(r#"score("crash_m") >= 0"#) {
        Ok(n) if n == db.stats().profiles => {}
        other => problems.push(format!("scores after reopening: {other:?}")),
    }
    let retrain = cidb::TrainRequest {
        seed: r#"tier = "gold""#.into(),
        ..Default::default()
    };
    if let Err(e) = s.train_model("crash_m", &retrain) {
        problems.push(format!("retraining after the crash: {e}"));
    }
    problems.extend(db.check().unwrap().problems);
    problems
}

/// What compaction must not change: statistics (but the disk bytes), every person's
/// profile as looked up, the export's file, and a clean `check`.
fn fingerprint(dir: &std::path::Path) -> (String, Vec<String>) {
    let emails: Vec<String> = (0..PEOPLE).map(email).collect();
    fingerprint_with(dir, &emails, Format::Hashes)
}

/// Statistics (but the disk bytes), the profiles of `emails` as looked up, the export of
/// everyone in `format`, and the problems `check` finds.
fn fingerprint_with(
    dir: &std::path::Path,
    emails: &[String],
    format: Format,
) -> (String, Vec<String>) {
    let db = Engine::open(dir).expect("opens after compaction");
    let mut stats = db.stats();
    stats.disk_bytes = 0;
    let mut seen = vec![format!("{stats:?}")];
    for e in emails {
        let view = db.lookup(&Lookup::Email(e.clone())).unwrap();
        seen.push(format!("{:?}", view.map(|v| v.profile)));
    }
    let mut out = Vec::new();
    Segments::new(&db)
        .export(
            "ALL",
            Some("ALL"),
            &cidb::export::ExportOptions::new(format).with_min_audience(1),
            &mut out,
        )
        .unwrap();
    seen.push(String::from_utf8(out).unwrap());
    (seen.join("\n"), db.check().unwrap().problems)
}

/// Whether the sled meta key `Mrepack` (older values for the next compaction to pack) is set
/// in the closed data directory `dir`.
fn repack_pending(dir: &std::path::Path) -> bool {
    support::raw_sled(dir).get(b"Mrepack").unwrap().is_some()
}

/// The first compaction of a directory written in format 3 (`tests/fixtures/format3.tgz`)
/// packs its older values; killed at its crash points and at random moments, each reopen
/// finds the same data and a clean `check`, and the request to pack (`Mrepack`) stays
/// until a packed copy is swapped in.
fn repacking_compaction_after_a_crash(dir: &std::path::Path, rng: &mut impl Rng) -> Vec<String> {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format3.tgz");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("tar runs");
    assert!(status.success());
    let data = dir.join("db");
    let (before, mut problems) = fingerprint_with(&data, &[], Format::MetaApi);
    if !repack_pending(&data) {
        problems.push("opening a format-3 directory did not ask for a repack".into());
    }
    // `pending`: whether `Mrepack` must still be set (`None`: either, after a random kill).
    let check = |problems: &mut Vec<String>, when: &str, pending: Option<bool>| {
        let (after, found) = fingerprint_with(&data, &[], Format::MetaApi);
        problems.extend(found);
        if after != before {
            problems.push(format!("the data changed after {when}"));
        }
        let now = repack_pending(&data);
        if pending.is_some_and(|p| p != now) {
            problems.push(format!("after {when}, Mrepack set: {now}"));
        }
    };
    crash_child_at(&data, "compact", "compact.copied", &mut problems);
    check(&mut problems, "a crash at compact.copied", Some(true));
    for _ in 0..2 {
        let mut child = child_command(&data, "compact", 0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
        let _ = child.kill();
        child.wait().unwrap();
        check(&mut problems, "a kill during a repacking compaction", None);
    }
    // Between the renames: the packed copy is moved in on the next open.
    crash_child_at(&data, "compact", "compact.moved_old", &mut problems);
    check(&mut problems, "a crash at compact.moved_old", Some(false));
    problems
}

/// Compaction killed at its two crash points (after the copy, between the renames) and at
/// a random moment: each reopen finds the same data, a clean `check` and no leftover
/// directory; a finished compaction changes nothing either.
fn compaction_after_a_crash(dir: &std::path::Path, rng: &mut impl Rng) -> Vec<String> {
    {
        let db = Engine::open(dir).unwrap();
        populate(&db);
        // Rewrite every profile a few times, so there is something to compact.
        for round in 0..4 {
            let records: Vec<String> = (0..PEOPLE)
                .map(|k| {
                    serde_json::json!({"source": "web", "identifiers": {"email": email(k)},
                        "attributes": {"city": format!("City{round}")}})
                    .to_string()
                })
                .collect();
            db.ingest_json(&records).unwrap();
        }
    }
    let (before, mut problems) = fingerprint(dir);
    let leftovers = |problems: &mut Vec<String>, when: &str| {
        for name in ["sled.compact", "sled.old"] {
            if dir.join(name).exists() {
                problems.push(format!("{name} left after reopening ({when})"));
            }
        }
    };
    for point in ["compact.copied", "compact.moved_old"] {
        crash_child_at(dir, "compact", point, &mut problems);
        let (after, found) = fingerprint(dir);
        problems.extend(found);
        if after != before {
            problems.push(format!("the data changed after a crash at {point}"));
        }
        leftovers(&mut problems, point);
    }
    for _ in 0..2 {
        let mut child = child_command(dir, "compact", 0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        let _ = child.kill();
        child.wait().unwrap();
        let (after, found) = fingerprint(dir);
        problems.extend(found);
        if after != before {
            problems.push("the data changed after a kill during compaction".into());
        }
        leftovers(&mut problems, "random kill");
    }
    // Opens by another process while it compacts wait for it (or find it locked) and
    // never see the swap half done.
    for _ in 0..2 {
        let mut child = child_command(dir, "compact", 0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            match Engine::open(dir) {
                Ok(db) => drop(db),
                Err(cidb::OpenError::Locked { .. }) => {}
                Err(e) => problems.push(format!("open during a compaction: {e}")),
            }
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..30)));
        }
        let (after, found) = fingerprint(dir);
        problems.extend(found);
        if after != before {
            problems.push("the data changed when opened during a compaction".into());
        }
        leftovers(&mut problems, "open during compaction");
    }
    let sled_bytes = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir.join("sled"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let report = Engine::compact(dir).unwrap();
    let (after, found) = fingerprint(dir);
    problems.extend(found);
    if after != before {
        problems.push("a finished compaction changed the data".into());
    }
    // (Sizes are compared by the engine's unit test: this database fits in one segment.)
    if report.keys == 0 || report.live_bytes == 0 {
        problems.push(format!("compaction report: {report:?}"));
    }
    if sled_bytes(dir) > report.bytes_after + (1 << 20) {
        problems.push("the storage grew after the reported compaction".into());
    }
    problems
}

/// Lines of the file the import rounds import (each with one event).
const IMPORT_LINES: u64 = 2_000;
const IMPORT_PEOPLE: u64 = IMPORT_LINES / 2;

fn import_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.with_extension("import.jsonl");
    if !path.exists() {
        // Each person's two records are half the file apart: the grouped import applies
        // them next to each other, out of file order.
        let lines: Vec<String> = (0..IMPORT_LINES)
            .map(|k| {
                serde_json::json!({
                    "source": "shop",
                    "identifiers": { "email": format!("f{}@ops.example", k % IMPORT_PEOPLE) },
                    "events": [{ "type": "purchase", "at": "2026-02-01T00:00:00Z", "value": 1 }],
                })
                .to_string()
            })
            .collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
    }
    path
}

fn import_config() -> cidb::Config {
    cidb::Config::default().with_import_batch_records(100)
}

/// Imports the file resumably, reporting each committed batch.
fn import_resumably(
    db: &Engine,
    path: &std::path::Path,
    on_batch: &mut dyn FnMut(u64),
) -> cidb::IngestReport {
    let mut file = std::fs::File::open(path).unwrap();
    let key = cidb::input_fingerprint(&mut file, b"jsonl").unwrap();
    let options = cidb::ImportOptions::default().resumable(key);
    db.import_jsonl_file(&file, &options, &mut |p| {
        if p.records > 0 {
            on_batch(p.records)
        }
    })
    .unwrap()
}

/// A child killed during a (grouped) import of a file; the rerun of the same import must
/// leave out the lines of the committed batches: every record once, every event once.
fn import_resumes_after_a_crash(dir: &std::path::Path, rng: &mut impl Rng) -> Vec<String> {
    let path = import_file(dir);
    let mut child = child_command(dir, "import", 0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let want = rng.gen_range(1..6);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..want {
        if lines.next().is_none() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
    let _ = child.kill();
    child.wait().unwrap();
    let db = Engine::open_with(dir, import_config()).unwrap();
    let before = db.stats().events;
    let report = import_resumably(&db, &path, &mut |_| {});
    let mut problems = db.check().unwrap().problems;
    let present = (0..IMPORT_PEOPLE)
        .filter(|k| {
            db.lookup(&Lookup::Email(format!("f{k}@ops.example")))
                .unwrap()
                .is_some()
        })
        .count() as u64;
    if present != IMPORT_PEOPLE {
        problems.push(format!(
            "{present} of {IMPORT_PEOPLE} imported people present"
        ));
    }
    let imported_events: u64 = (0..IMPORT_PEOPLE)
        .filter_map(|k| {
            db.lookup(&Lookup::Email(format!("f{k}@ops.example")))
                .unwrap()
        })
        .map(|v| v.events.iter().map(|c| c.events.len() as u64).sum::<u64>())
        .sum();
    if imported_events != IMPORT_LINES {
        problems.push(format!(
            "{imported_events} events for {IMPORT_LINES} imported records (resumed after {:?}, {} events before the rerun)",
            report.resumed_after_line, before
        ));
    }
    let skipped = report.resumed_skipped_lines.unwrap_or(0);
    if report.records + skipped != IMPORT_LINES {
        problems.push(format!(
            "the rerun read {} lines and left out {skipped} applied before, of {IMPORT_LINES}",
            report.records
        ));
    }
    // Completed: a later import of the same file starts from the beginning again.
    drop(db);
    let db = Engine::open_with(dir, import_config()).unwrap();
    let again = import_resumably(&db, &path, &mut |_| {});
    if again.resumed_after_line.is_some() || again.records != IMPORT_LINES {
        problems.push(format!(
            "a completed import left its progress behind: {:?}, {} records",
            again.resumed_after_line, again.records
        ));
    }
    problems
}

fn child(dir: &str, mode: &str, start: u64) {
    if mode == "import" {
        let db = Engine::open_with(dir, import_config()).expect("child opens the database");
        let path = import_file(std::path::Path::new(dir));
        import_resumably(&db, &path, &mut |records| {
            say(format!("imported {records}"))
        });
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if mode == "compact" {
        Engine::compact(dir).expect("child compacts");
        return;
    }
    let db = Engine::open(dir).expect("child opens the database");
    if mode == "model" {
        let seed = cidb::TrainRequest {
            seed: r#"tier = "gold""#.into(),
            ..Default::default()
        };
        Segments::new(&db).train_model("crash_m", &seed).unwrap();
        return;
    }
    if mode == "idempotent" {
        let (records, key) = idempotent_batch();
        db.ingest_json_idempotent(&records, &key).unwrap();
        return;
    }
    let out = tempfile::tempdir().unwrap();
    for k in start..PEOPLE {
        match mode {
            "forget" => {
                say(format!("forgetting {k}"));
                db.forget(&Lookup::Email(email(k)), &ForgetOptions::default())
                    .unwrap();
                say(format!("forgot {k}"));
            }
            "suppress" => {
                let line = format!("s{k}@list.example\n");
                db.suppress_import("crashlist", line.as_bytes(), None)
                    .unwrap();
                say(format!("suppressed {k}"));
            }
            _ => sync_and_ack(&db, out.path(), &k.to_string()),
        }
    }
    // Out of work: wait to be killed.
    std::thread::sleep(Duration::from_secs(60));
}

/// Prints a check's outcome; a failed one ends the test.
fn must_pass(name: &str, problems: Vec<String>) {
    if problems.is_empty() {
        println!("{name}: ok");
        return;
    }
    println!("{name}: FAILED");
    for p in &problems {
        println!("  {p}");
    }
    println!("0 passed, 1 failed");
    std::process::exit(1);
}

fn main() {
    if let Ok(dir) = std::env::var("CIDB_OPS_CHILD") {
        let mode = std::env::var("CIDB_OPS_MODE").unwrap();
        let start = std::env::var("CIDB_OPS_START").unwrap().parse().unwrap();
        child(&dir, &mode, start);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // cargo's test listing
    }
    let rounds: u64 = support::env_number("CIDB_CRASH_ROUNDS", 6);
    let seed = support::env_seed("CIDB_CRASH_SEED");
    println!("crash ops test: {rounds} rounds, CIDB_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Engine::open(dir.path()).unwrap();
        populate(&db);
        let out = tempfile::tempdir().unwrap();
        Segments::new(&db).sync(DESTINATION, out.path()).unwrap();
        db.sync_ack(DESTINATION).unwrap();
    }
    must_pass(
        "idempotent retry after a crash",
        idempotent_retry_after_a_crash(dir.path()),
    );
    let model_dir = tempfile::tempdir().unwrap();
    must_pass(
        "model training after a crash",
        model_training_after_a_crash(model_dir.path()),
    );
    let compact_dir = tempfile::tempdir().unwrap();
    must_pass(
        "compaction after a crash",
        compaction_after_a_crash(compact_dir.path(), &mut rng),
    );
    let repack_dir = tempfile::tempdir().unwrap();
    must_pass(
        "repacking compaction after a crash",
        repacking_compaction_after_a_crash(repack_dir.path(), &mut rng),
    );
    let import_dir = tempfile::tempdir().unwrap();
    must_pass(
        "import resumed after a crash",
        import_resumes_after_a_crash(import_dir.path(), &mut rng),
    );
    // Modes in turn; the crash points come in every second cycle.
    let plan: [(&str, Option<&str>); 6] = [
        ("forget", None),
        ("suppress", None),
        ("sync", None),
        ("forget", Some("forget.after_batch")),
        ("forget", Some("forget.after_key")),
        ("sync", Some("ack.before_rename")),
    ];
    let mut forgotten: Vec<u64> = Vec::new();
    let mut next_forget = 0u64;
    let mut suppressed: Vec<u64> = Vec::new();
    let mut next_suppress = 0u64;
    let mut failed = 0;
    for round in 0..rounds {
        let (mode, point) = plan[(round % plan.len() as u64) as usize];
        let start = match mode {
            "forget" => next_forget,
            "suppress" => next_suppress,
            _ => 0,
        };
        let mut command = child_command(dir.path(), mode, start);
        if let Some(point) = point {
            command.env("CIDB_CRASH_AT", point);
        }
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let want = rng.gen_range(1..6);
        let mut in_flight = None;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut got = 0;
        while got < want {
            let Some(Ok(line)) = lines.next() else { break };
            let (what, n) = line.split_once(' ').unwrap();
            let n: u64 = n.parse().unwrap_or(0);
            match what {
                "forgetting" => in_flight = Some(n),
                "forgot" => {
                    forgotten.push(n);
                    in_flight = None;
                    got += 1;
                }
                "suppressed" => {
                    suppressed.push(n);
                    got += 1;
                }
                _ => got += 1,
            }
        }
        if point.is_none() {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..30)));
        }
        let _ = child.kill(); // SIGKILL (a crash point may have aborted it already)
        child.wait().unwrap();
        // Lines written before the kill that the loop above did not read.
        for line in lines.map_while(Result::ok) {
            match line.split_once(' ') {
                Some(("forgetting", n)) => in_flight = n.parse().ok(),
                Some(("forgot", n)) => {
                    forgotten.push(n.parse().unwrap());
                    in_flight = None;
                }
                Some(("suppressed", n)) => suppressed.push(n.parse().unwrap()),
                _ => {}
            }
        }

        let db = Engine::open(dir.path()).expect("reopen after kill");
        let mut problems = db.check().unwrap().problems;
        if let Some(k) = in_flight {
            if db.lookup(&Lookup::Email(email(k))).unwrap().is_none() {
                forgotten.push(k); // committed but killed before saying so
            }
        }
        let sent = db.destination_sent(DESTINATION).unwrap();
        let checkpoint = std::fs::read(dir.path().join("index.ckpt")).unwrap_or_default();
        for &k in &forgotten {
            if db.lookup(&Lookup::Email(email(k))).unwrap().is_some() {
                problems.push(format!("erased person {k} is still there"));
            }
            let name = unique_name(k).to_lowercase();
            if checkpoint.windows(name.len()).any(|w| w == name.as_bytes()) {
                problems.push(format!("erased person {k}'s name is in index.ckpt"));
            }
        }
        let audited = db
            .audit_log(None, 100_000)
            .unwrap()
            .iter()
            .filter(|e| e.action == "forget")
            .count();
        if audited != forgotten.len() {
            problems.push(format!(
                "{audited} erasures audited, {} done (each exactly once, also when finished on open)",
                forgotten.len()
            ));
        }
        let live = Segments::new(&db).evaluate("ALL").unwrap().into_bitmap();
        if !(&sent - &live).is_empty() {
            problems.push(format!(
                "the sent state holds {} profile(s) that are not live",
                (&sent - &live).len()
            ));
        }
        let lists = db.suppression_lists();
        let entries = lists
            .iter()
            .find(|l| l.name == "crashlist")
            .map_or(0, |l| l.entries);
        if entries < suppressed.len() as u64 {
            problems.push(format!(
                "suppression list holds {entries} entries, {} acknowledged",
                suppressed.len()
            ));
        }
        let out = tempfile::tempdir().unwrap();
        match Segments::new(&db).sync(DESTINATION, out.path()) {
            Ok(_) => {
                if let Err(e) = db.sync_ack(DESTINATION) {
                    problems.push(format!("ack after reopen: {e}"));
                }
            }
            Err(e) => problems.push(format!("sync after reopen: {e}")),
        }
        next_forget = forgotten.iter().max().map_or(0, |k| k + 1);
        next_suppress = suppressed.iter().max().map_or(0, |k| k + 1);
        drop(db);
        let label = point.unwrap_or("random kill");
        if problems.is_empty() {
            println!("round {round} ({mode}, {label}): ok");
        } else {
            failed += 1;
            println!("round {round} ({mode}, {label}): FAILED");
            for p in problems.iter().take(20) {
                println!("  {p}");
            }
        }
    }
    println!("{} passed, {} failed", rounds - failed, failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
