//! Crash test: a child process ingests batches and acknowledges each one on stdout; the
//! parent kills it with SIGKILL at a random moment (often mid-batch), reopens the
//! database, and checks that (1) `check` is clean, (2) every acknowledged batch is fully
//! present, (3) the batch in flight is all-or-nothing. Rounds accumulate on one database,
//! so later rounds recover from earlier crashes too. Even rounds ingest with
//! `ingest_json`; odd rounds import JSON Lines, which resolves each batch while the one
//! before commits, and acknowledge from the progress callback (called once a batch is
//! durable). Each batch also carries live traffic: records with one known email and a
//! page view only, which the engine stores without rewriting the profile; they too must
//! be all-or-nothing with their batch.
//!
//! Rounds: `CIDB_CRASH_ROUNDS` (default 4). Seed: `CIDB_CRASH_SEED` (default: time).

mod support;

use cidb::{Config, Engine, Lookup};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// New people per batch, then records that only add a page view to a known person.
const PEOPLE_PER_BATCH: u64 = 150;
const EVENTS_ONLY_PER_BATCH: u64 = 50;
const RECORDS_PER_BATCH: u64 = PEOPLE_PER_BATCH + EVENTS_ONLY_PER_BATCH;

fn email(batch: u64, j: u64) -> String {
    format!("b{batch}r{j}@crash.example")
}

/// The batch whose person `j` a batch's `j`th events-only record visits: one or two
/// batches before (an import resolves a batch while the one before commits, so only
/// the older one's people are stored ones there); the first batches visit their own.
fn visited(batch: u64, j: u64) -> u64 {
    batch.saturating_sub(1 + j % 2)
}

/// When batch `batch`'s page views happened (one time per batch, to find them).
fn page_view_at(batch: u64) -> i64 {
    1_772_323_200_000 + batch as i64 * 1_000
}

/// Whether the person `email` holds batch `batch`'s page view.
fn has_page_view(db: &Engine, email: String, batch: u64) -> bool {
    db.lookup(&Lookup::Email(email))
        .unwrap()
        .is_some_and(|view| {
            view.events
                .iter()
                .flat_map(|c| &c.events)
                .any(|e| e.kind == "page_view" && e.at == page_view_at(batch))
        })
}

/// One batch: new people, with events and consent; odd batches merge pairs of people of
/// the batch before; then page views of people of the batch before.
fn batch_records(batch: u64) -> Vec<String> {
    let visits = (0..EVENTS_ONLY_PER_BATCH).map(move |j| {
        serde_json::json!({
            "source": "web",
            "identifiers": { "email": email(visited(batch, j), j) },
            "events": [{ "type": "page_view", "at": cidb::format_rfc3339(page_view_at(batch)) }],
        })
        .to_string()
    });
    (0..PEOPLE_PER_BATCH)
        .map(|j| {
            let mut emails = vec![email(batch, j)];
            let mut device = format!("d{batch}-{j}");
            // Odd batches bridge two people of the batch before (email of j, device of
            // j + 1): a merge of two stored profiles. j + 1 is never bridged itself, so
            // no profile grows past the identifier limits.
            if batch % 2 == 1 && j % 7 == 0 {
                emails.push(email(batch - 1, j));
                device = format!("d{}-{}", batch - 1, j + 1);
            }
            let city = ["Utrecht", "Gent", "Lyon"][(j % 3) as usize];
            serde_json::json!({
                "source": if j % 2 == 0 { "crm" } else { "app" },
                "identifiers": { "email": emails, "device_id": device },
                "attributes": { "city": city, "score": j },
                "consent": { "marketing": j % 3 == 0 },
                "events": [{ "type": "purchase", "at": "2026-01-01T00:00:00Z", "category": "jeans", "value": j }],
            })
            .to_string()
        })
        .chain(visits)
        .collect()
}

fn config() -> Config {
    Config::default()
        .with_checkpoint_min_dirty(500)
        .with_import_batch_records(RECORDS_PER_BATCH as usize)
}

/// Batches per import call in the importing child.
const BATCHES_PER_IMPORT: u64 = 4;

fn acknowledge(batch: u64) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ack {batch}").unwrap();
    out.flush().unwrap();
}

fn child(dir: &str, start: u64, import: bool) {
    let db = Engine::open_with(dir, config()).expect("child opens the database");
    if !import {
        for batch in start.. {
            db.ingest_json(&batch_records(batch)).expect("child ingest");
            acknowledge(batch);
        }
    }
    for first in (start..).step_by(BATCHES_PER_IMPORT as usize) {
        let lines: Vec<String> = (first..first + BATCHES_PER_IMPORT)
            .flat_map(batch_records)
            .collect();
        let file = lines.join("\n");
        db.import_jsonl(
            file.as_bytes(),
            &cidb::ImportOptions::default(),
            &mut |progress| acknowledge(first + progress.records / RECORDS_PER_BATCH - 1),
        )
        .expect("child import");
    }
}

fn main() {
    if let Ok(dir) = std::env::var("CIDB_CRASH_CHILD") {
        let start = std::env::var("CIDB_CRASH_START").unwrap().parse().unwrap();
        child(&dir, start, std::env::var_os("CIDB_CRASH_IMPORT").is_some());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // cargo's test listing
    }
    let rounds: u64 = support::env_number("CIDB_CRASH_ROUNDS", 4);
    let seed = support::env_seed("CIDB_CRASH_SEED");
    println!("crash test: {rounds} rounds, CIDB_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut next_batch = 0u64;
    let mut acked: Vec<u64> = Vec::new();
    let mut failed = 0;
    for round in 0..rounds {
        let mut command = Command::new(std::env::current_exe().unwrap());
        if round % 2 == 1 {
            command.env("CIDB_CRASH_IMPORT", "1");
        }
        let mut child = command
            .env("CIDB_CRASH_CHILD", dir.path())
            .env("CIDB_CRASH_START", next_batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let want = rng.gen_range(1..8);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut got = 0;
        while got < want {
            let Some(Ok(line)) = lines.next() else { break };
            let n: u64 = line.strip_prefix("ack ").unwrap().parse().unwrap();
            acked.push(n);
            got += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..40)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let in_flight = acked.last().map(|n| n + 1).unwrap_or(next_batch);
        let db = Engine::open_with(dir.path(), config()).expect("reopen after kill");
        let report = db.check().unwrap();
        let mut problems = report.problems.clone();
        for &batch in &acked {
            let visits = (0..EVENTS_ONLY_PER_BATCH)
                .filter(|j| has_page_view(&db, email(visited(batch, *j), *j), batch))
                .count() as u64;
            if visits != EVENTS_ONLY_PER_BATCH {
                problems.push(format!(
                    "acknowledged batch {batch}: {visits} of {EVENTS_ONLY_PER_BATCH} page views"
                ));
            }
            for j in 0..PEOPLE_PER_BATCH {
                if db
                    .lookup(&Lookup::Email(email(batch, j)))
                    .unwrap()
                    .is_none()
                {
                    problems.push(format!(
                        "acknowledged batch {batch}: {} missing",
                        email(batch, j)
                    ));
                }
            }
        }
        let present = (0..PEOPLE_PER_BATCH)
            .filter(|j| {
                db.lookup(&Lookup::Email(email(in_flight, *j)))
                    .unwrap()
                    .is_some()
            })
            .count() as u64;
        let visits = (0..EVENTS_ONLY_PER_BATCH)
            .filter(|j| has_page_view(&db, email(visited(in_flight, *j), *j), in_flight))
            .count() as u64;
        let whole = present == PEOPLE_PER_BATCH && visits == EVENTS_ONLY_PER_BATCH;
        if !whole && (present != 0 || visits != 0) {
            problems.push(format!(
                "batch {in_flight} half-applied: {present} of {PEOPLE_PER_BATCH} people, \
                 {visits} of {EVENTS_ONLY_PER_BATCH} page views"
            ));
        }
        if present == PEOPLE_PER_BATCH {
            acked.push(in_flight); // committed but killed before acknowledging
        }
        next_batch = acked.last().map(|n| n + 1).unwrap_or(0);
        drop(db);
        if problems.is_empty() {
            println!(
                "round {round}: ok ({} batches acknowledged, in-flight batch {})",
                acked.len(),
                if present == 0 { "absent" } else { "complete" }
            );
        } else {
            failed += 1;
            println!("round {round}: FAILED");
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
