//! Whole-file replacement that a crash cannot leave half written: the new contents go to
//! `NAME.tmp` beside the file, are synced, renamed over it, and the directory is synced.
//! Used by the index checkpoint and the sync state files.

use crate::base::error::StorageError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where [`replace`] writes before it renames: the file's name with `.tmp` appended.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces `path` with `parts`, one after the other, atomically and durably.
pub(crate) fn replace(path: &Path, parts: &[&[u8]]) -> Result<(), StorageError> {
    let tmp = temp_path(path);
    let io = |e| StorageError::io(&tmp, e);
    let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
    for part in parts {
        w.write_all(part).map_err(io)?;
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    sync_parent(path)
}

/// Replaces `path` with what `write` writes into the temporary file (buffered; it may
/// seek, e.g. to fill in a header once the body is written), atomically and durably. A
/// large file is streamed, never held in memory whole.
pub(crate) fn replace_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StorageError> {
    let tmp = temp_path(path);
    let io = |e| StorageError::io(&tmp, e);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
    write(&mut w).map_err(io)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    sync_parent(path)
}

/// Makes a rename or removal in `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sent");
        replace(&path, &[b"first"]).unwrap();
        replace(&path, &[b"sec", b"ond"]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(temp_path(&path), dir.path().join("state.sent.tmp"));
        assert!(!temp_path(&path).exists());
    }
}
