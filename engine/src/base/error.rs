//! Typed errors, one per operation family, and the superset [`Error`].

use std::path::PathBuf;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory holds a format this build does not know.
    #[error("database at {path} has on-disk format version {found}; this build reads versions {oldest}..={current}")]
    UnknownFormat {
        /// The data directory.
        path: PathBuf,
        /// The version found on disk.
        found: u32,
        /// The oldest version this build reads.
        oldest: u32,
        /// The version this build writes.
        current: u32,
    },
    /// Another process (or engine in this process) holds the database.
    #[error("database at {path} is locked: another process or handle has it open")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// Underlying storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A failure of the storage layer (sled, the key file, the index checkpoint).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O error on a named file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// sled reported an error.
    #[error("sled: {0}")]
    Sled(String),
    /// A file of the data directory did not decode or authenticate.
    #[error("corrupted {what} in {file} (relative to the data directory): {detail}")]
    CorruptedFile {
        /// Which structure is corrupt.
        what: &'static str,
        /// The file, relative to the data directory.
        file: String,
        /// What was wrong.
        detail: String,
    },
    /// The ingest commit thread stopped (it panicked or was torn down) before it said
    /// whether a batch committed; reopen to see what is durable.
    #[error("the commit thread stopped before finishing a batch")]
    CommitThreadStopped,
    /// Stored bytes did not decode or authenticate.
    #[error("corrupted {what} (key {key:02x?}): {detail}")]
    Corrupted {
        /// Which structure is corrupt.
        what: &'static str,
        /// The key (or file offset) where it was found.
        key: Vec<u8>,
        /// What was wrong.
        detail: String,
    },
}

impl StorageError {
    /// The same error, naming `key` when it is a [`StorageError::Corrupted`] without one.
    pub(crate) fn at_key(self, at: &[u8]) -> StorageError {
        match self {
            StorageError::Corrupted { what, key, detail } if key.is_empty() => {
                StorageError::Corrupted {
                    what,
                    key: at.to_vec(),
                    detail,
                }
            }
            other => other,
        }
    }
}

/// Why an ingest batch failed as a whole (per-record problems go into the report instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The batch is larger than [`crate::base::limits::MAX_BATCH_RECORDS`].
    #[error("batch of {got} records exceeds the limit of {limit}")]
    BatchTooLarge {
        /// Records in the batch.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// Storage failed; nothing of the batch was applied.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reading an import file failed (per-line problems go into the report instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV header is unusable.
    #[error("CSV header: {0}")]
    CsvHeader(String),
    /// Applying a batch failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Any error of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`StorageError`].
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// See [`IngestError`].
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// See [`ImportError`].
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A caller-supplied argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A named item does not exist.
    #[error("no {what} named {name:?}")]
    NotFound {
        /// What kind of item (`destination`, `suppression list`, ...).
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The operation conflicts with the state of an item (reserved, or nothing to do).
    #[error("{0}")]
    Conflict(String),
    /// An erasure committed (the person is gone from the profiles, the indexes and the
    /// links), but rewriting the files that hold derived copies failed; it is finished on
    /// the next open.
    #[error("profile {profile} is erased; finishing the erasure (key, checkpoint, sync states, audit bitmaps) failed and is retried on the next open: {source}")]
    ErasureIncomplete {
        /// The erased profile.
        profile: u32,
        /// What failed.
        source: StorageError,
    },
    /// Another operation holds the item right now; retry later.
    #[error("{what} {name:?} is busy with another operation; retry shortly")]
    Busy {
        /// What kind of item.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// Writing an export's output failed.
    #[error("writing the export output: {0}")]
    Output(#[source] std::io::Error),
}

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError::Sled(e.to_string())
    }
}

impl StorageError {
    /// Wraps an I/O error with the file it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }
}
