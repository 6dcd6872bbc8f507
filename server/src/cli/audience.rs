//! Commands of the export stage: export, destination, sync, suppress, normalize.

use super::segments::{lift, segments};
use super::{output, Global};
use crate::api::export::{
    AckReport, Destination, DestinationList, ExportReport, ListedDestination, SuppressionList,
    SuppressionLists, SuppressionReport, SyncReport,
};
use crate::api::Deleted;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use engine::export::{ExportOptions, Format, Platform};
use engine::Engine;
use query::{segment_or_expr, DestinationSpec, Segments, DEFAULT_POLICY};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A saved segment's name or a segment expression.
    pub segment_or_expr: String,
    /// Output format: meta-api, meta-csv, google-api, google-csv or hashes.
    #[arg(long)]
    pub format: Format,
    /// Output file ("-" for standard output).
    #[arg(long)]
    pub out: PathBuf,
    /// Who may be exported (a segment expression).
    #[arg(long, default_value = DEFAULT_POLICY)]
    pub policy: String,
    /// Normalization rules for `--format hashes`: meta or google.
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Worker threads (0 = number of cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Warn when fewer profiles than this are exported.
    #[arg(long, default_value_t = engine::export::DEFAULT_MIN_AUDIENCE)]
    pub min_audience: u64,
}

#[derive(Debug, Subcommand)]
pub enum DestinationCommand {
    /// Create (or replace) a destination: a format, a segment, a policy and a mode.
    Create {
        /// Name: 1-64 of a-z, 0-9, `_` and `-`.
        name: String,
        /// Output format: meta-api, meta-csv, google-api, google-csv or hashes.
        #[arg(long)]
        format: Format,
        /// A saved segment's name or a segment expression.
        #[arg(long)]
        segment: String,
        /// Who may be sent (a segment expression).
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: String,
        /// Normalization rules for `--format hashes`: meta or google.
        #[arg(long)]
        platform: Option<Platform>,
        /// Never emit removes (for platforms that refuse to shrink small audiences).
        #[arg(long)]
        additive_only: bool,
        #[command(flatten)]
        push: Box<PushArgs>,
    },
    /// List destinations with the number of profiles last acknowledged as sent.
    List,
    /// Delete a destination and its sync state.
    Delete {
        /// The destination's name.
        name: String,
    },
}

/// `destination create` options of a destination that cidb pushes itself
/// (platforms.md). Secrets are given as the names of environment variables.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Send syncs to this platform's API (`cidb sync DEST --push`): meta or google.
    #[arg(long)]
    pub push: Option<Platform>,
    /// Meta: the custom audience's id.
    #[arg(long, requires = "push")]
    pub audience_id: Option<String>,
    /// Google: the customer id.
    #[arg(long, requires = "push")]
    pub customer_id: Option<String>,
    /// Google: the user list id.
    #[arg(long, requires = "push")]
    pub user_list_id: Option<String>,
    /// Google: the manager account's customer id (`login-customer-id`).
    #[arg(long, requires = "push")]
    pub login_customer_id: Option<String>,
    /// The environment variable holding the access token (its name, not the token).
    #[arg(long, requires = "push")]
    pub token_env: Option<String>,
    /// Google: the environment variable holding the developer token.
    #[arg(long, requires = "push")]
    pub developer_token_env: Option<String>,
    /// The API base URL (default: the platform's public endpoint).
    #[arg(long, requires = "push")]
    pub api_base: Option<String>,
}

impl PushArgs {
    /// The push target, or `None` without `--push`.
    pub fn target(self) -> anyhow::Result<Option<engine::export::PushTarget>> {
        let need = |v: Option<String>, flag: &str, platform: &str| {
            v.with_context(|| format!("--push {platform} needs {flag}"))
        };
        let refuse = |v: &Option<String>, flag: &str, platform: &str| {
            if v.is_some() {
                bail!("{flag} does not apply to --push {platform}");
            }
            Ok(())
        };
        Ok(match self.push {
            None => None,
            Some(Platform::Meta) => {
                refuse(&self.customer_id, "--customer-id", "meta")?;
                refuse(&self.user_list_id, "--user-list-id", "meta")?;
                refuse(&self.login_customer_id, "--login-customer-id", "meta")?;
                refuse(&self.developer_token_env, "--developer-token-env", "meta")?;
                Some(engine::export::PushTarget::Meta {
                    audience_id: need(self.audience_id, "--audience-id", "meta")?,
                    token_env: need(self.token_env, "--token-env", "meta")?,
                    api_base: self.api_base,
                })
            }
            Some(Platform::Google) => {
                refuse(&self.audience_id, "--audience-id", "google")?;
                Some(engine::export::PushTarget::Google {
                    customer_id: need(self.customer_id, "--customer-id", "google")?,
                    user_list_id: need(self.user_list_id, "--user-list-id", "google")?,
                    login_customer_id: self.login_customer_id,
                    token_env: need(self.token_env, "--token-env", "google")?,
                    developer_token_env: need(
                        self.developer_token_env,
                        "--developer-token-env",
                        "google",
                    )?,
                    api_base: self.api_base,
                })
            }
        })
    }
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The destination's name.
    pub destination: String,
    /// Write `adds.*` and `removes.*` into this directory (recorded as pending).
    #[arg(long, group = "mode", required = true)]
    pub out: Option<PathBuf>,
    /// Record the pending sync as sent (after the upload succeeded).
    #[arg(long, group = "mode")]
    pub ack: bool,
    /// Send the adds and removes to the destination's platform API and acknowledge them
    /// once every request was accepted (a destination created with `--push`).
    #[arg(long, group = "mode")]
    pub push: bool,
}

#[derive(Debug, Subcommand)]
pub enum SuppressCommand {
    /// Add entries (one a line: email, phone or SHA-256 hex) to a list, creating it.
    Import {
        /// List name: 1-64 of a-z, 0-9, `_` and `-`.
        name: String,
        /// File with one entry a line ("-" for standard input).
        file: PathBuf,
        /// Region (ISO alpha-2) for phones without a country code; default: the
        /// database's default region.
        #[arg(long)]
        region: Option<String>,
    },
    /// List suppression lists with their entry and matched-profile counts.
    List,
    /// Delete a suppression list.
    Delete {
        /// The list's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct NormalizeArgs {
    /// JSON Lines input ("-" or absent: standard input); output goes to standard output.
    pub file: Option<PathBuf>,
}

fn create_out(path: &PathBuf) -> anyhow::Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::new(std::io::stdout().lock())));
    }
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

fn open_in(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn BufRead>> {
    match path {
        None => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) => Ok(Box::new(BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ))),
    }
}

/// Parses and plans `src` now so that a bad expression is shown against its own text.
fn check_expr(db: &Engine, s: &Segments<'_>, src: &str) -> anyhow::Result<()> {
    s.count(src).map(|_| ()).map_err(|e| lift(db, src, e))
}

pub fn export(global: &Global, args: ExportArgs) -> anyhow::Result<()> {
    let db = global.open_for_one_export()?;
    let s = segments(&db, None);
    let segment = segment_or_expr(&s, &args.segment_or_expr)
        .map_err(|e| lift(&db, &args.segment_or_expr, e))?;
    check_expr(&db, &s, &segment)?;
    check_expr(&db, &s, &args.policy)?;
    let mut options = ExportOptions::new(args.format)
        .with_threads(args.threads)
        .with_min_audience(args.min_audience);
    if let Some(p) = args.platform {
        options = options.with_platform(p);
    }
    let mut out = create_out(&args.out)?;
    let report = s
        .export(&segment, Some(&args.policy), &options, &mut out)
        .map_err(|e| lift(&db, &segment, e))?;
    out.flush()?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if global.json {
        output::json(&ExportReport::from(&report))
    } else {
        eprintln!(
            "{} profiles exported as {} ({} rows, {} batches) to {}; {} members: {} removed by policy, {} suppressed, {} without an email or phone",
            report.profiles,
            report.format,
            report.rows,
            report.batches,
            args.out.display(),
            report.members,
            report.removed_by_policy,
            report.removed_by_suppression,
            report.skipped_no_identifier
        );
        for (field, c) in &report.fields {
            eprintln!(
                "  {field:<12} valid {:>9}  invalid {:>9}",
                c.valid, c.invalid
            );
        }
        Ok(())
    }
}

pub fn destination(global: &Global, cmd: DestinationCommand) -> anyhow::Result<()> {
    let db = global.open()?;
    let s = segments(&db, None);
    match cmd {
        DestinationCommand::Create {
            name,
            format,
            segment,
            policy,
            platform,
            additive_only,
            push,
        } => {
            let push = (*push).target()?;
            if let Some(p) = &push {
                p.check(format).map_err(anyhow::Error::msg)?;
            }
            let expr = segment_or_expr(&s, &segment).map_err(|e| lift(&db, &segment, e))?;
            check_expr(&db, &s, &expr)?;
            check_expr(&db, &s, &policy)?;
            let dest = s
                .create_destination(&DestinationSpec {
                    name,
                    format,
                    platform,
                    segment,
                    policy: Some(policy),
                    additive_only,
                    push,
                })
                .map_err(|e| lift(&db, &expr, e))?;
            if global.json {
                output::json(&Destination::from(&dest))
            } else {
                println!("destination {} created ({})", dest.name, dest.format.name());
                Ok(())
            }
        }
        DestinationCommand::List => {
            let mut destinations = Vec::new();
            for d in db.destinations()? {
                let sent_profiles = db.destination_sent(&d.name)?.len();
                destinations.push(ListedDestination {
                    destination: Destination::from(&d),
                    sent_profiles,
                });
            }
            if global.json {
                output::json(&crate::api::sorted(&DestinationList { destinations })?)
            } else {
                for d in db.destinations()? {
                    println!(
                        "{}\t{}\t{}\tpolicy {}{}{}",
                        d.name,
                        d.format.name(),
                        d.segment,
                        d.policy,
                        if d.additive_only {
                            "\tadditive-only"
                        } else {
                            ""
                        },
                        match &d.push {
                            Some(p) => format!("\tpush {}", p.platform().name()),
                            None => String::new(),
                        }
                    );
                }
                Ok(())
            }
        }
        DestinationCommand::Delete { name } => {
            if !db.destination_delete(&name)? {
                bail!("no destination named {name:?}");
            }
            if global.json {
                output::json(&Deleted { deleted: name })
            } else {
                println!("destination {name} deleted");
                Ok(())
            }
        }
    }
}

pub fn sync(global: &Global, args: SyncArgs) -> anyhow::Result<()> {
    // A sync runs in this process once: no row cache.
    let db = global.open_for_one_export()?;
    if args.ack {
        let report = db.sync_ack(&args.destination)?;
        return if global.json {
            output::json(&AckReport::from(&report))
        } else {
            println!(
                "sync {} of {} acknowledged: {} profiles recorded as sent",
                report.generation, report.destination, report.profiles
            );
            Ok(())
        };
    }
    if args.push {
        let s = segments(&db, None);
        let report = crate::push::push(&db, &s, &args.destination).map_err(|f| {
            if global.json {
                // The partial report, then the error on standard error.
                let _ = output::json(&*f.report);
            }
            anyhow::anyhow!("{f}")
        })?;
        return if global.json {
            output::json(&report)
        } else {
            println!(
                "{}: {} adds and {} removes pushed to {} in {} requests ({} retries); acknowledged",
                report.destination,
                report.adds,
                report.removes,
                report.platform,
                report.requests,
                report.retries
            );
            Ok(())
        };
    }
    let out = args.out.expect("clap requires --out, --ack or --push");
    let s = segments(&db, None);
    let report = s
        .sync(&args.destination, &out)
        .map_err(|e| lift(&db, &args.destination, e))?;
    if global.json {
        output::json(&SyncReport::from(&report))
    } else {
        println!(
            "{} adds ({} rows) -> {}\n{} removes ({} rows) -> {}\nrun `cidb sync {} --ack` after uploading",
            report.adds,
            report.add_rows,
            report.adds_file.display(),
            report.removes,
            report.remove_rows,
            report.removes_file.display(),
            report.destination
        );
        Ok(())
    }
}

pub fn suppress(global: &Global, cmd: SuppressCommand) -> anyhow::Result<()> {
    let db = global.open()?;
    match cmd {
        SuppressCommand::Import { name, file, region } => {
            let region = region.or_else(|| db.config().default_region.clone());
            let input = open_in(Some(&file))?;
            let report = db.suppress_import(&name, input, region.as_deref())?;
            if global.json {
                output::json(&SuppressionReport::from(&report))
            } else {
                println!(
                    "{}: {} added, {} already listed, {} blank, {} invalid; matches {} profiles",
                    report.list,
                    report.added,
                    report.already_present,
                    report.blank,
                    report.invalid_count,
                    report.profiles
                );
                for (line, why) in &report.invalid {
                    eprintln!("  line {line}: {why}");
                }
                Ok(())
            }
        }
        SuppressCommand::List => {
            let lists = db.suppression_lists();
            if global.json {
                let lists = lists.iter().map(SuppressionList::from).collect();
                output::json(&crate::api::sorted(&SuppressionLists { lists })?)
            } else {
                for l in lists {
                    println!(
                        "{}\t{} entries ({} emails, {} phones, {} hashed)\t{} profiles",
                        l.name, l.entries, l.emails, l.phones, l.hashed, l.profiles
                    );
                }
                Ok(())
            }
        }
        SuppressCommand::Delete { name } => {
            if !db.suppress_delete(&name)? {
                bail!("no suppression list named {name:?}");
            }
            if global.json {
                output::json(&Deleted { deleted: name })
            } else {
                println!("suppression list {name} deleted");
                Ok(())
            }
        }
    }
}

/// `cidb normalize`: needs no database.
pub fn normalize(global: &Global, args: NormalizeArgs) -> anyhow::Result<()> {
    let input = open_in(args.file.as_ref())?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let today = engine::day_of(engine::now_millis());
    let default_region = global.default_region.as_deref();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("line {}: cannot read", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value = engine::export::normalize_line(&line, default_region, today)
            .map_err(|e| anyhow::anyhow!("line {}: {e}", i + 1))?;
        match writeln!(out, "{value}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
