//! Compaction: rewrites the sled directory with only its live keys and values.
//!
//! sled 0.34 is log-structured: every rewrite of a profile leaves the old version in its
//! segment until the segment is less than half live, so a database that has been written
//! heavily (an import that folds two records a person into each profile) holds about twice
//! its live data. Compaction copies every key, in order, into a fresh sled directory
//! (`sled.compact`) and swaps it in. Values are copied as they are stored (still sealed),
//! so it needs no keys and changes nothing a reader sees; the index checkpoint stays valid.
//!
//! The swap survives a crash at any point, given that the copy is flushed before the first
//! rename:
//!
//! 1. copy into `sled.compact`, flush, close;
//! 2. rename `sled` → `sled.old`;
//! 3. rename `sled.compact` → `sled`;
//! 4. remove `sled.old`.
//!
//! Opening a data directory finishes or undoes an interrupted compaction: with no `sled`, a
//! `sled.compact` is complete (step 2 happened after step 1) and is moved in
//! ([`restore_after_crash`]); once sled is open, leftovers are removed
//! ([`remove_leftovers`]). Both run under the data directory's lock (`dir_lock`), which a
//! compaction holds from before its copy until the old directory is gone: an open elsewhere
//! waits for it or fails as locked, and never sees the swap half done.

use super::atomic_file::sync_parent;
use super::{dir_lock, open_sled_at, open_sled_locked, SLED_DIR};
use crate::base::crash_point::crash_point;
use crate::base::error::{OpenError, StorageError};
use crossbeam_channel::bounded;
use std::path::Path;

/// The copy being written.
const COMPACT_DIR: &str = "sled.compact";
/// The old directory, between the two renames.
const OLD_DIR: &str = "sled.old";
/// Keys copied per write batch.
const COPY_BATCH: usize = 4096;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Keys copied.
    pub keys: u64,
    /// Bytes of keys and values copied (the live data).
    pub live_bytes: u64,
    /// Size of the sled directory before.
    pub bytes_before: u64,
    /// Size of the sled directory after.
    pub bytes_after: u64,
}

/// Compacts the sled directory of the closed data directory `dir`.
pub(crate) fn compact(dir: &Path) -> Result<CompactReport, OpenError> {
    let (live, copy, old) = (dir.join(SLED_DIR), dir.join(COMPACT_DIR), dir.join(OLD_DIR));
    if !live.is_dir() && !copy.is_dir() {
        // Opening would create an empty database where the caller expected one.
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no database here");
        return Err(StorageError::io(&live, missing).into());
    }
    // The directory's lock, from before the copy until `sled.old` is gone: an open
    // elsewhere waits for it, and so never sees the swap half done.
    let _lock = dir_lock::lock(dir)?;
    // Holds sled's lock too (and removed any leftovers) from here until the swap.
    let source = open_sled_locked(dir)?;
    let bytes_before = dir_size(&live)?;
    let target = open_sled_at(dir, &copy)?;
    let (keys, live_bytes) = copy_all(&source, &target)?;
    target.flush().map_err(StorageError::from)?;
    drop(target);
    // Wait for sled's background threads to let go of the copy (reopening also writes the
    // snapshot of its page table, so the first open after compaction is fast), and make
    // sure it is the copy.
    let reopened = open_sled_at(dir, &copy)?;
    if reopened.len() as u64 != keys {
        return Err(StorageError::Sled(format!(
            "the compacted copy in {COMPACT_DIR} holds {} keys, {keys} were copied",
            reopened.len()
        ))
        .into());
    }
    drop(reopened);
    // sled syncs its files' contents, not the directory entries it creates.
    sync_tree(&copy)?;
    crash_point("compact.copied");
    rename(&live, &old)?;
    crash_point("compact.moved_old");
    rename(&copy, &live)?;
    drop(source);
    remove_if_present(&old)?;
    Ok(CompactReport {
        keys,
        live_bytes,
        bytes_before,
        bytes_after: dir_size(&live)?,
    })
}

/// With the directory's lock held, before sled is opened: finishes a compaction that a
/// crash interrupted between its two renames (no `sled`: the copy is complete, since the
/// first rename follows its flush).
pub(crate) fn restore_after_crash(dir: &Path) -> Result<(), StorageError> {
    let (live, copy, old) = (dir.join(SLED_DIR), dir.join(COMPACT_DIR), dir.join(OLD_DIR));
    if !live.exists() {
        if copy.exists() {
            rename(&copy, &live)?;
        } else if old.exists() {
            rename(&old, &live)?;
        }
    }
    Ok(())
}

/// With the directory's lock held (so no compaction is running): removes an unfinished
/// copy and an old directory that a crash left.
pub(crate) fn remove_leftovers(dir: &Path) -> Result<(), StorageError> {
    remove_if_present(&dir.join(COMPACT_DIR))?;
    remove_if_present(&dir.join(OLD_DIR))
}

/// Copies every key of `source` into `target` in order: one thread reads, this one writes.
fn copy_all(source: &sled::Db, target: &sled::Db) -> Result<(u64, u64), StorageError> {
    type Chunk = Result<Vec<(sled::IVec, sled::IVec)>, StorageError>;
    std::thread::scope(|scope| {
        let (tx, rx) = bounded::<Chunk>(4);
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(COPY_BATCH);
            for item in source.iter() {
                match item {
                    Ok(pair) => chunk.push(pair),
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                }
                if chunk.len() == COPY_BATCH && tx.send(Ok(std::mem::take(&mut chunk))).is_err() {
                    return;
                }
            }
            let _ = tx.send(Ok(chunk));
        });
        let (mut keys, mut bytes) = (0u64, 0u64);
        for chunk in rx {
            let mut batch = sled::Batch::default();
            for (k, v) in chunk? {
                keys += 1;
                bytes += (k.len() + v.len()) as u64;
                batch.insert(k, v);
            }
            target.apply_batch(batch)?;
        }
        Ok((keys, bytes))
    })
}

/// Syncs every file and directory under `path`, and `path` itself.
fn sync_tree(path: &Path) -> Result<(), StorageError> {
    let entries = std::fs::read_dir(path).map_err(|e| StorageError::io(path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(path, e))?;
        let child = entry.path();
        if entry
            .file_type()
            .map_err(|e| StorageError::io(&child, e))?
            .is_dir()
        {
            sync_tree(&child)?;
        } else {
            std::fs::File::open(&child)
                .and_then(|f| f.sync_all())
                .map_err(|e| StorageError::io(&child, e))?;
        }
    }
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(path, e))
}

fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::rename(from, to).map_err(|e| StorageError::io(from, e))?;
    sync_parent(to)
}

fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// Bytes of the files under `path`.
fn dir_size(path: &Path) -> Result<u64, StorageError> {
    let mut total = 0;
    let entries = std::fs::read_dir(path).map_err(|e| StorageError::io(path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(path, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| StorageError::io(entry.path(), e))?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(db: &sled::Db, rounds: u32) {
        for round in 0..rounds {
            for k in 0u32..2000 {
                let value = vec![(round % 251) as u8; 200 + (k % 50) as usize];
                db.insert(k.to_be_bytes(), value).unwrap();
            }
        }
        db.flush().unwrap();
    }

    #[test]
    fn compaction_keeps_every_key_and_value_and_shrinks_a_rewritten_tree() {
        let dir = tempfile::tempdir().unwrap();
        let expected: Vec<(sled::IVec, sled::IVec)> = {
            let db = open_sled_at(dir.path(), &dir.path().join(SLED_DIR)).unwrap();
            fill(&db, 20);
            db.iter().map(Result::unwrap).collect()
        };
        let report = compact(dir.path()).unwrap();
        assert_eq!(report.keys, 2000);
        assert!(
            report.bytes_after < report.bytes_before,
            "{} -> {}",
            report.bytes_before,
            report.bytes_after
        );
        assert!(!dir.path().join(COMPACT_DIR).exists() && !dir.path().join(OLD_DIR).exists());
        let db = open_sled_at(dir.path(), &dir.path().join(SLED_DIR)).unwrap();
        let got: Vec<(sled::IVec, sled::IVec)> = db.iter().map(Result::unwrap).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn recovery_moves_a_finished_copy_in_and_drops_an_unfinished_one() {
        let dir = tempfile::tempdir().unwrap();
        let (live, copy, old) = (
            dir.path().join(SLED_DIR),
            dir.path().join(COMPACT_DIR),
            dir.path().join(OLD_DIR),
        );
        // Crash between the renames: the copy is complete and goes in.
        std::fs::create_dir_all(copy.join("marker")).unwrap();
        std::fs::create_dir_all(&old).unwrap();
        restore_after_crash(dir.path()).unwrap();
        assert!(live.join("marker").exists() && !copy.exists() && old.exists());
        // Crash during the copy: the live directory stays, the partial copy goes.
        std::fs::create_dir_all(&copy).unwrap();
        restore_after_crash(dir.path()).unwrap();
        assert!(copy.exists(), "nothing is removed before the lock is held");
        remove_leftovers(dir.path()).unwrap();
        assert!(live.join("marker").exists() && !copy.exists() && !old.exists());
    }
}
