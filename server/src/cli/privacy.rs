//! Privacy commands: `forget`.

use super::data::LookupArgs;
use super::{output, Global};
use crate::api::privacy::{
    AccessReport, AuditLog, ConsentAt, ForgetReport, Objection, Objections, Withdrawn,
};
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
        output::json(&ForgetReport::from(&report))
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
    /// Also show each purpose's consent as it stood at this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub consent_at: Option<String>,
}

/// `cidb access`: everything held about a person, as one JSON object.
pub fn access(global: &Global, args: AccessArgs) -> anyhow::Result<()> {
    let how = args.who.lookup()?;
    let db = global.open()?;
    let Some(report) = query::Segments::new(&db).access(&how)? else {
        anyhow::bail!("no profile found");
    };
    // Always JSON (sorted): it is a data export for the person.
    let mut answer = AccessReport::from(&report);
    if let Some(t) = &args.consent_at {
        let at = engine::parse_rfc3339(t)
            .ok_or_else(|| anyhow::anyhow!("--consent-at: not an RFC 3339 time: {t}"))?;
        answer.consent_at = Some(ConsentAt::new(&report.view.profile, at));
    }
    output::json(&crate::api::sorted(&answer)?)
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
        return output::json(&crate::api::sorted(&AuditLog::new(&entries))?);
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

#[derive(Debug, Args)]
pub struct ObjectArgs {
    #[command(flatten)]
    pub who: Option<LookupArgs>,
    /// The channel the objection came through (email, web_form, call_center, ...).
    #[arg(long, default_value = "cli")]
    pub channel: String,
    /// List recorded objections instead.
    #[arg(long, conflicts_with = "withdraw")]
    pub list: bool,
    /// Withdraw the objection with this id instead.
    #[arg(long, value_name = "ID")]
    pub withdraw: Option<u64>,
}

/// `cidb object`: record (by any identifier), list or withdraw objections.
pub fn object(global: &Global, args: ObjectArgs) -> anyhow::Result<()> {
    let db = global.open()?;
    if args.list {
        let all = db.objections()?;
        if global.json {
            return output::json(&crate::api::sorted(&Objections::new(&all))?);
        }
        for o in all {
            println!(
                "{}\t{}\t{}\t{} hashed identifiers",
                o.id,
                engine::format_rfc3339(o.at),
                o.channel,
                o.digests.len()
            );
        }
        return Ok(());
    }
    if let Some(id) = args.withdraw {
        if !db.withdraw_objection(id)? {
            anyhow::bail!("no objection with id {id}");
        }
        return if global.json {
            output::json(&Withdrawn { withdrawn: id })
        } else {
            println!("objection {id} withdrawn");
            Ok(())
        };
    }
    let Some(who) = args.who else {
        anyhow::bail!("give --email, --phone, --id or --identifier (or --list / --withdraw ID)");
    };
    let objection = db.object(&who.lookup()?, &args.channel)?;
    if global.json {
        output::json(&Objection::from(&objection))
    } else {
        println!(
            "objection {} recorded ({} hashed identifiers on list {})",
            objection.id,
            objection.digests.len(),
            engine::OBJECTIONS_LIST
        );
        Ok(())
    }
}
