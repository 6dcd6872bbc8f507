//! Privacy commands: `forget`.

use super::data::LookupArgs;
use super::{output, Global};
use clap::Args;
use engine::ForgetOptions;

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub who: LookupArgs,
    /// Do not add the person's hashed emails and phones to the `erased` suppression list
    /// (by default they are, so a stale file cannot bring them back into an audience).
    #[arg(long)]
    pub no_suppress: bool,
}

pub fn forget(global: &Global, args: ForgetArgs) -> anyhow::Result<()> {
    let how = args.who.lookup()?;
    let db = global.open()?;
    let mut options = ForgetOptions::default();
    if args.no_suppress {
        options = options.without_suppression();
    }
    let report = db.forget(&how, &options)?;
    if !report.found {
        anyhow::bail!("no profile found");
    }
    db.close()?;
    if global.json {
        output::json(&report)
    } else {
        println!(
            "profile {} erased: {} identifiers, {} events; {} hashed identifiers on list {}; {} destinations updated",
            report.profile.unwrap_or_default(),
            report.identifiers,
            report.events,
            report.suppressed,
            report.suppression_list.as_deref().unwrap_or("(none)"),
            report.destinations
        );
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct AccessArgs {
    #[command(flatten)]
    pub who: LookupArgs,
}

/// `cidb access`: everything held about a person, as one JSON object.
pub fn access(global: &Global, args: AccessArgs) -> anyhow::Result<()> {
    let how = args.who.lookup()?;
    let db = global.open()?;
    let Some(report) = query::Segments::new(&db).access(&how)? else {
        anyhow::bail!("no profile found");
    };
    // Always JSON: it is a data export for the person.
    output::json(&report)
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Show entries after this sequence number.
    #[arg(long)]
    pub after: Option<u64>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// `cidb audit`: exports, syncs, erasures and suppression-list changes, oldest first.
pub fn audit(global: &Global, args: AuditArgs) -> anyhow::Result<()> {
    let db = global.open()?;
    let entries = db.audit_log(args.after, args.limit)?;
    if global.json {
        return output::json(&serde_json::json!({ "entries": entries }));
    }
    for e in entries {
        println!(
            "{:>6}  {}  {:<14} {:<16} {}",
            e.seq,
            engine::format_rfc3339(e.at),
            e.actor,
            e.action,
            e.details
        );
    }
    Ok(())
}
