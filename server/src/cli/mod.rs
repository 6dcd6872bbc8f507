//! Command-line interface: argument definitions and dispatch.

mod audience;
mod data;
mod models;
mod output;
mod privacy;
mod segments;
mod serve;
mod tables;

pub use segments::ExprError;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// cidb: an embedded customer identity database.
#[derive(Debug, Parser)]
#[command(name = "cidb", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Data directory of the database.
    #[arg(long, global = true, env = "CIDB_DATA", default_value = "./cidb-data")]
    pub data: PathBuf,
    /// Print one machine-readable JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Default phone region (ISO alpha-2) for records without a country.
    #[arg(long, global = true, env = "CIDB_DEFAULT_REGION")]
    pub default_region: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write realistic synthetic records (JSON Lines) for demos, tests and benchmarks.
    Generate(data::GenerateArgs),
    /// Import a JSON Lines or CSV file, printing the ingest report.
    Import(data::ImportArgs),
    /// Show live profiles, records, merges and index sizes.
    Stats,
    /// Rebuild every index from the stored profiles and compare; exits non-zero on any
    /// difference.
    Check,
    /// Rewrite the storage with only its live data, reclaiming the space of rewritten and
    /// erased values (the database must not be open elsewhere; safe to interrupt).
    Compact,
    /// Show a unified profile with the provenance of every value.
    Lookup(data::LookupArgs),
    /// Write the resolved live profiles as flat CSV tables (profiles, list_values,
    /// identifier_types, consent, sources, events) for loading into another database;
    /// values as the indexes compare them, identifier types but never their values.
    DumpTables(tables::DumpTablesArgs),
    /// Evaluate a segment expression: count (default), sample, breakdown, ids or explain.
    /// A bad expression exits with code 2 and shows the error's position.
    Query(segments::QueryArgs),
    /// Manage saved segments (referred to as segment("name") in expressions).
    #[command(subcommand)]
    Segment(segments::SegmentCommand),
    /// Lookalike and propensity models: train one from a seed segment, then use its
    /// percentile scores as score("NAME") in expressions.
    #[command(subcommand)]
    Model(models::ModelCommand),
    /// Time segment counts for benchmark suites: opens the database once, runs each query
    /// of a JSON file N times, prints count, p50, p99 and min in microseconds.
    Bench(segments::BenchArgs),
    /// Export a segment as a hashed audience file (consent policy and suppression lists
    /// applied; raw emails and phones never leave).
    Export(audience::ExportArgs),
    /// Manage destinations (platform format, segment, policy, mode) for incremental sync.
    #[command(subcommand)]
    Destination(audience::DestinationCommand),
    /// Write a destination's adds and removes since the last acknowledged sync
    /// (`--out DIR`), or acknowledge the pending sync after uploading it (`--ack`).
    Sync(audience::SyncArgs),
    /// Manage suppression (objection) lists: suppressed people never appear in exports.
    #[command(subcommand)]
    Suppress(audience::SuppressCommand),
    /// Show how each platform normalizes and hashes values: JSON Lines
    /// {"field", "raw", "country"} in, each line with "valid", "meta" and "google" out.
    Normalize(audience::NormalizeArgs),
    /// Serve the HTTP/JSON API (see the README's route table) until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
    /// Manage API keys for the server (kept hashed; a key is shown only when created).
    #[command(subcommand)]
    Keys(serve::KeysCommand),
    /// First run: generate and import a realistic database; then print an admin key and
    /// example curl commands, and serve.
    Demo(serve::DemoArgs),
    /// Erase a person (right to be forgotten): profile, identifiers, attributes, events,
    /// consent, provenance, merge log, index entries and export state; their data becomes
    /// unreadable in every file of the data directory.
    Forget(privacy::ForgetArgs),
    /// Access request: everything held about a person (values with provenance, consent
    /// history, events, segments they are in, exports that included them), as JSON.
    Access(privacy::AccessArgs),
    /// The audit trail: exports, syncs, erasures and suppression-list changes (who, when,
    /// what, counts).
    Audit(privacy::AuditArgs),
    /// Record a person's objection to marketing use (hashed onto the `objections`
    /// suppression list, with time and channel, without erasing), or list or withdraw.
    Object(privacy::ObjectArgs),
}

/// Runs a parsed command line (audited operations are recorded as done by `cli`).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    engine::audit::with_actor("cli", || dispatch(cli))
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(args) => data::generate(&cli.global, args),
        Command::Import(args) => data::import(&cli.global, args),
        Command::Stats => data::stats(&cli.global),
        Command::Check => data::check(&cli.global),
        Command::Compact => data::compact(&cli.global),
        Command::Lookup(args) => data::lookup(&cli.global, args),
        Command::DumpTables(args) => tables::dump_tables(&cli.global, args),
        Command::Query(args) => segments::query(&cli.global, args),
        Command::Segment(cmd) => segments::segment(&cli.global, cmd),
        Command::Model(cmd) => models::model(&cli.global, cmd),
        Command::Bench(args) => segments::bench(&cli.global, args),
        Command::Export(args) => audience::export(&cli.global, args),
        Command::Destination(cmd) => audience::destination(&cli.global, cmd),
        Command::Sync(args) => audience::sync(&cli.global, args),
        Command::Suppress(cmd) => audience::suppress(&cli.global, cmd),
        Command::Normalize(args) => audience::normalize(&cli.global, args),
        Command::Serve(args) => serve::serve(&cli.global, args),
        Command::Keys(cmd) => serve::keys(&cli.global, cmd),
        Command::Demo(args) => serve::demo(&cli.global, args),
        Command::Forget(args) => privacy::forget(&cli.global, args),
        Command::Access(args) => privacy::access(&cli.global, args),
        Command::Audit(args) => privacy::audit(&cli.global, args),
        Command::Object(args) => privacy::object(&cli.global, args),
    }
}

impl Global {
    /// Opens the database with the global options.
    pub fn open(&self) -> anyhow::Result<engine::Engine> {
        self.open_with(engine::Config::default())
    }

    /// Opens the database for one command that exports once: the export row cache
    /// would only cost memory and time in a process that ends after one export.
    pub fn open_for_one_export(&self) -> anyhow::Result<engine::Engine> {
        self.open_with(engine::Config::default().with_export_cache(false))
    }

    fn open_with(&self, base: engine::Config) -> anyhow::Result<engine::Engine> {
        let mut config = base;
        if let Some(r) = &self.default_region {
            config = config.with_default_region(r);
        }
        engine::Engine::open_with(&self.data, config)
            .map_err(|e| anyhow::anyhow!("cannot open database at {}: {e}", self.data.display()))
    }
}
