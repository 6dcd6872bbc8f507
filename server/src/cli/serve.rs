//! `cidb serve`, `cidb keys`, `cidb demo`.

use super::{data, output, Global};
use crate::api;
use crate::http::{self, ServeOptions};
use crate::keys::{self, Role};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 32 << 20)]
    pub max_body_bytes: usize,
    /// Longest time a request may take, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Segment evaluations, exports and ingest batches running at once (0: 4 per core).
    #[arg(long, default_value_t = 0)]
    pub max_evaluations: usize,
    /// Milliseconds a request waits for an evaluation slot before a 503.
    #[arg(long, default_value_t = 2_000)]
    pub queue_wait_ms: u64,
    /// Longest segment expression in bytes.
    #[arg(long, default_value_t = query::MAX_EXPR_BYTES)]
    pub max_expr_bytes: usize,
    /// Deepest nesting of parentheses and NOT in an expression.
    #[arg(long, default_value_t = query::MAX_EXPR_DEPTH)]
    pub max_expr_depth: usize,
    /// Milliseconds a client may take to send a request head (the first request's from
    /// connecting, later ones' from their first byte); then the connection is closed.
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Milliseconds a client may take to send a whole request body; then 408.
    #[arg(long, default_value_t = 60_000)]
    pub body_timeout_ms: u64,
    /// Milliseconds a keep-alive connection may wait for its next request, or a client
    /// leave the response unread, before it is disconnected.
    #[arg(long, default_value_t = 30_000)]
    pub idle_timeout_ms: u64,
    /// Milliseconds running requests may take to finish after SIGINT or SIGTERM; then
    /// their connections are dropped and the database is closed.
    #[arg(long, default_value_t = 5_000)]
    pub shutdown_timeout_ms: u64,
    /// Milliseconds a streamed response (an export, a sync's adds or removes) may take in
    /// all; a client that reads more slowly is cut off, so it cannot hold an evaluation
    /// slot or a thread forever.
    #[arg(long, default_value_t = 900_000)]
    pub export_timeout_ms: u64,
    /// Smallest group an analyst's breakdown shows; smaller groups are suppressed (only
    /// their number and total are given). Admin keys see every group.
    #[arg(long, default_value_t = 10)]
    pub min_group_size: u64,
    /// Push every push destination's pending changes this often, in the background, one
    /// at a time (e.g. `30s`, `15m`, `1h`; a plain number is seconds).
    #[arg(long, value_parser = parse_duration)]
    pub sync_every: Option<Duration>,
}

/// `500ms`, `30s`, `15m`, `1h`, `1d`, or seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit (ms, s, m, h, d)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h, d)")),
    };
    if d.is_zero() {
        return Err("the interval must be above zero".into());
    }
    Ok(d)
}

impl ServeArgs {
    fn options(&self) -> ServeOptions {
        let defaults = ServeOptions::default();
        let mut limits = query::Limits::default();
        limits.max_bytes = self.max_expr_bytes;
        limits.max_depth = self.max_expr_depth;
        ServeOptions {
            addr: self.addr,
            max_body_bytes: self.max_body_bytes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_evaluations: match self.max_evaluations {
                0 => defaults.max_evaluations,
                n => n,
            },
            queue_wait: Duration::from_millis(self.queue_wait_ms),
            expr_limits: limits,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
            export_timeout: Duration::from_millis(self.export_timeout_ms),
            min_group_size: self.min_group_size,
            sync_every: self.sync_every,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; the key is shown only now (the database keeps its hash).
    Create {
        /// admin (everything), ingest (POST /v1/records only) or analyst (segments and
        /// hashed exports, never raw personal data).
        #[arg(long)]
        role: Role,
    },
    /// List API keys (ids and roles; never the keys).
    List,
    /// Revoke an API key by id.
    Revoke {
        /// The key's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Persons to generate on first run.
    #[arg(long, default_value_t = 100_000)]
    pub persons: u64,
    #[command(flatten)]
    pub serve: ServeArgs,
}

pub fn serve(global: &Global, args: ServeArgs) -> anyhow::Result<()> {
    let db = global.open()?;
    http::serve(db, args.options())
}

pub fn keys(global: &Global, cmd: KeysCommand) -> anyhow::Result<()> {
    let db = global.open()?;
    match cmd {
        KeysCommand::Create { role } => {
            let key = keys::create(&db, role)?;
            if global.json {
                output::json(&api::keys::NewKey::from(&key))
            } else {
                println!("{}", key.key);
                eprintln!(
                    "id {} role {:?}: store the key now, it is not shown again",
                    key.id, key.role
                );
                Ok(())
            }
        }
        KeysCommand::List => {
            let all = keys::list(&db)?;
            if global.json {
                let keys = all.iter().map(api::keys::KeyInfo::from).collect();
                output::json(&api::keys::KeyList { keys })
            } else {
                for k in all {
                    println!(
                        "{}\t{:?}\t{}",
                        k.id,
                        k.role,
                        engine::format_rfc3339(k.created_at)
                    );
                }
                Ok(())
            }
        }
        KeysCommand::Revoke { id } => {
            keys::revoke(&db, &id)?;
            if global.json {
                output::json(&api::keys::Revoked { revoked: id })
            } else {
                println!("key {id} revoked");
                Ok(())
            }
        }
    }
}

/// Generates and imports a realistic database on first run, prints an admin key and
/// example requests, and serves.
pub fn demo(global: &Global, args: DemoArgs) -> anyhow::Result<()> {
    let fresh = !global.data.join("keys.bin").exists();
    if fresh {
        let file = global.data.with_extension("demo.jsonl");
        eprintln!(
            "generating {} persons into {}",
            args.persons,
            file.display()
        );
        data::generate(
            global,
            data::GenerateArgs {
                persons: args.persons,
                seed: 1,
                out: Some(file.clone()),
                events_per_person: engine::DEFAULT_EVENTS_PER_PERSON,
                events_only: false,
                events: None,
            },
        )?;
        data::import(
            global,
            data::ImportArgs {
                file,
                source: None,
                format: None,
                maps: Vec::new(),
                compact: false,
                in_file_order: false,
            },
        )?;
    }
    let db = global.open()?;
    let key = keys::create(&db, Role::Admin)?;
    println!("admin key: {}", key.key);
    let options = args.serve.options();
    http::serve_announcing(db, options, |addr| print_examples(&key.key, addr))
}

/// Example requests against the demo server at the address it listens on.
fn print_examples(k: &str, addr: SocketAddr) {
    println!("try:");
    println!(
        "  curl -s -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' http://{addr}/v1/segments/count -d '{{\"expr\": \"country = \\\"NL\\\" AND consent(\\\"marketing\\\")\"}}'"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' http://{addr}/v1/segments/breakdown -d '{{\"expr\": \"ALL\", \"field\": \"country\"}}'"
    );
    println!(
        "  curl -s -X PUT -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' http://{addr}/v1/segments/nl -d '{{\"expr\": \"country = \\\"NL\\\"\"}}'"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' http://{addr}/v1/segments/nl/export -d '{{\"format\": \"meta-api\"}}' | head -c 300"
    );
}
