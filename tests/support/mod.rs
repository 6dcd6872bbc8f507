//! Helpers shared by the test binaries (`tests.rs`, `crash.rs`, `crash_ops.rs`, ...):
//! sizes and seeds of long runs come from environment variables with quick defaults.

#![allow(dead_code)] // each test binary uses its own subset

/// The number in environment variable `name`, or `default` when it is unset or not a
/// number.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed in environment variable `name`, or one from the clock (print it, so that a
/// failing run can be repeated).
pub fn env_seed(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// Opens the sled tree of the closed data directory `dir` directly (waiting while sled's
/// flusher of a just-dropped engine still holds the lock).
pub fn raw_sled(dir: &std::path::Path) -> sled::Db {
    (0..100)
        .find_map(|_| {
            sled::open(dir.join("sled")).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                None
            })
        })
        .expect("sled opens once the engine has shut down")
}
