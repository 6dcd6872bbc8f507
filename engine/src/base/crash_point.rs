//! Named crash points for crash tests: when the environment variable `CIDB_CRASH_AT`
//! names a point, the process aborts there (like `kill -9`, nothing is flushed or
//! unwound). Only the tests set it; unset, a point costs one cached comparison.

use std::sync::OnceLock;

/// Aborts the process if `CIDB_CRASH_AT` is `name`.
pub(crate) fn crash_point(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("CIDB_CRASH_AT").ok());
    if at.as_deref() == Some(name) {
        std::process::abort();
    }
}
