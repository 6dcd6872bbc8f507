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
