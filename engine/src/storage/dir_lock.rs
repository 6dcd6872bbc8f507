//! The data directory's lock: an exclusive advisory lock (`flock`) on the file `lock`,
//! held by an open store and by a compaction for as long as they run. sled locks only its
//! own directory, and a compaction swaps that directory: without this lock, a process
//! opening the database between the swap's two renames would find no `sled` directory,
//! let sled create an empty one, and then remove the copy as a leftover.

use crate::base::error::{OpenError, StorageError};
use fs2::FileExt;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// The lock file inside the data directory.
const LOCK_FILE: &str = "lock";
/// How long [`lock`] waits for another holder (one that is closing) to let go.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the lock of the existing data directory `dir`, waiting briefly for a holder that
/// is closing; [`OpenError::Locked`] when another store or compaction keeps it.
pub(crate) fn lock(dir: &Path) -> Result<DirLock, OpenError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io(&path, e))?;
    let started = Instant::now();
    loop {
        match file.try_lock_exclusive() {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(e) if e.kind() != fs2::lock_contended_error().kind() => {
                return Err(StorageError::io(&path, e).into())
            }
            Err(_) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => {
                return Err(OpenError::Locked {
                    path: dir.to_path_buf(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        assert!(matches!(lock(dir.path()), Err(OpenError::Locked { .. })));
        drop(first);
        lock(dir.path()).unwrap();
    }
}
