//! Printing results: one JSON object with `--json`, readable text otherwise.

use crate::api::Answer;

/// Prints `value` (an `api` answer) as one JSON line (a closed pipe, as with `| head`, is
/// not an error).
pub fn json<T: Answer>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let line = serde_json::to_string(value)?;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal or `quiet`).
pub fn progress_bar(total: Option<u64>, quiet: bool, unit: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    match total {
        Some(total) => {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{bar:40}} {{percent:>3}}% {{msg}} ({{per_sec}}, eta {{eta}}) {unit}"
                ))
                .expect("valid template"),
            );
            bar
        }
        None => indicatif::ProgressBar::new_spinner(),
    }
}
