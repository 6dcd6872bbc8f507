//! Index checkpoint file `index.ckpt`.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `CIDBIDX1` |
//! | 8 | 4 | format version (u32 LE) |
//! | 12 | 8 | checkpoint generation (u64 LE) |
//! | 20 | 8 | body length (u64 LE) |
//! | 28 | 4 | CRC-32 of the body (u32 LE) |
//! | 32 | n | body: the identifier links (`Links`: a count, then fixed-size entries), then bincode of `Indexes` (see `codec`) |
//!
//! The links come first because their length is known from their count: an open decodes
//! them on a second thread while this one decodes the indexes.
//!
//! The checkpoint has its own version ([`INDEX_FORMAT`]): indexes are derived data, so a
//! checkpoint of another version is not an error but is rebuilt from the stored profiles.
//!
//! Written to `index.ckpt.tmp`, synced, renamed over `index.ckpt`, and the directory
//! synced, so a crash leaves either the old or the new checkpoint.

use super::Indexes;
use crate::base::error::StorageError;
use crate::identity::Links;
use crate::storage::codec::{decode_body, encode_body};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"CIDBIDX1";
/// Version of the checkpoint body. 1: first layout; 2: adds `Term::Kind` (field catalog);
/// 3: the identifier links follow the indexes; 4: the links come first, and event series
/// no longer hold per-profile totals (derived from the day buckets on first use); 5: a
/// day's event entries are packed (`packed_entries`).
pub(crate) const INDEX_FORMAT: u32 = 5;
const HEADER_LEN: usize = 32;
/// File name inside the data directory.
pub(crate) const CHECKPOINT_FILE: &str = "index.ckpt";

/// Writes a checkpoint atomically, streaming the body to the file (a 1M-person
/// checkpoint is about 190 MB: building it in memory first would add that much to the
/// peak memory of every import that checkpoints), then filling in the header.
pub(crate) fn write_checkpoint(
    dir: &Path,
    generation: u64,
    indexes: &Indexes,
    links: &Links,
) -> Result<(), StorageError> {
    crate::storage::atomic_file::replace_with(&dir.join(CHECKPOINT_FILE), |file| {
        file.write_all(&[0u8; HEADER_LEN])?;
        let mut body = Summing {
            inner: &mut *file,
            len: 0,
            crc: crc32fast::Hasher::new(),
        };
        links.write_to(&mut body)?;
        encode_body(indexes, &mut body)?;
        let (len, crc) = (body.len, body.crc.finalize());
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&INDEX_FORMAT.to_le_bytes());
        header.extend_from_slice(&generation.to_le_bytes());
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&crc.to_le_bytes());
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.flush()
    })
}

/// A writer that passes bytes on while counting them and computing their CRC-32.
struct Summing<W> {
    inner: W,
    len: u64,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Maps `file` read-only. Decoding a 1M-person checkpoint from the map instead of a
/// buffer read whole skips copying its 190 MB and faulting in a buffer that size.
#[allow(unsafe_code)]
fn map_read_only(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: a map is sound while no one changes the file under it. `index.ckpt` is
    // never written in place: a checkpoint is written to a temporary file and renamed
    // over it (`atomic_file`), which leaves a mapped old file as it was, and the data
    // directory's lock keeps other cidb processes out. The map lives only while the
    // checkpoint is checked (its CRC) and decoded into owned indexes and links
    // (`read_checkpoint`). Limits: the lock is advisory, so a program other than cidb
    // that rewrites the file in place meanwhile breaks this, and a disk read error
    // under the map stops the process (SIGBUS) instead of returning an error.
    unsafe { memmap2::Mmap::map(file) }
}

/// Reads the checkpoint: `None` when there is none yet or it has another version (the
/// caller then rebuilds the indexes from the stored profiles).
pub(crate) fn read_checkpoint(dir: &Path) -> Result<Option<(u64, Indexes, Links)>, StorageError> {
    let path = dir.join(CHECKPOINT_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    let corrupted = |detail: String| StorageError::CorruptedFile {
        what: "index checkpoint",
        file: CHECKPOINT_FILE.into(),
        detail,
    };
    let map = map_read_only(&file).map_err(|e| StorageError::io(&path, e))?;
    let Some((header, body)) = map.split_first_chunk::<HEADER_LEN>() else {
        return Err(corrupted("shorter than its header".into()));
    };
    if &header[0..8] != MAGIC {
        return Err(corrupted("bad magic".into()));
    }
    let u32_at = |o: usize| u32::from_le_bytes(header[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(header[o..o + 8].try_into().expect("8 bytes"));
    let version = u32_at(8);
    if version != INDEX_FORMAT {
        tracing::warn!(
            version,
            expected = INDEX_FORMAT,
            "index checkpoint has another version; rebuilding"
        );
        return Ok(None);
    }
    let (generation, len, crc) = (u64_at(12), u64_at(20), u32_at(28));
    if body.len() as u64 != len || crc32fast::hash(body) != crc {
        return Err(corrupted("length or checksum mismatch".into()));
    }
    let links_len = Links::encoded_len(body).map_err(&corrupted)?;
    let (links, mut rest) = body.split_at(links_len);
    let (indexes, links) = std::thread::scope(|scope| {
        let links = scope.spawn(|| Links::read_from(links));
        let indexes = decode_body::<Indexes, _>(&mut rest).and_then(|ix| {
            if rest.is_empty() {
                Ok(ix)
            } else {
                Err(format!("{} trailing bytes", rest.len()))
            }
        });
        (indexes, links.join().expect("links decoding panicked"))
    });
    Ok(Some((
        generation,
        indexes.map_err(&corrupted)?,
        links.map_err(corrupted)?,
    )))
}
