//! `keys.bin`: the per-profile encryption keys and the identifier-hash secret, in fixed
//! slots that are overwritten in place. Destroying a slot makes every version of that
//! profile's data in sled's log unreadable; this is how erasure defeats sled keeping
//! deleted values around.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `CIDBKEY1` |
//! | 8 | 4 | key file layout version (u32 LE, 1; independent of the sled format) |
//! | 12 | 32 | HMAC secret for identifier keys |
//! | 44 | 20 | reserved (zero) |
//! | 64 + 32·pid | 32 | key of profile `pid`; all zero = no key (never issued or destroyed) |

use crate::base::error::StorageError;
use rand::{RngCore, SeedableRng};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CIDBKEY1";
const HEADER_LEN: u64 = 64;
/// Version of this file's layout.
const KEY_FILE_LAYOUT: u32 = 1;
const SLOT: u64 = 32;
/// File name inside the data directory.
pub(crate) const KEY_FILE: &str = "keys.bin";

/// A 256-bit key.
pub(crate) type Key = [u8; 32];

/// The key file, with every slot cached in memory.
pub(crate) struct KeyFile {
    file: File,
    path: PathBuf,
    secret: Key,
    slots: Vec<Key>,
}

impl KeyFile {
    /// Opens or creates the key file.
    pub(crate) fn open(dir: &Path) -> Result<KeyFile, StorageError> {
        let path = dir.join(KEY_FILE);
        let io = |e| StorageError::io(&path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        if bytes.is_empty() {
            let mut header = [0u8; HEADER_LEN as usize];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&KEY_FILE_LAYOUT.to_le_bytes());
            rand::rngs::OsRng.fill_bytes(&mut header[12..44]);
            file.write_all_at(&header, 0).map_err(io)?;
            file.sync_all().map_err(io)?;
            bytes = header.to_vec();
        }
        if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
            return Err(StorageError::Corrupted {
                what: "key file",
                key: path.display().to_string().into_bytes(),
                detail: "bad header".into(),
            });
        }
        let secret: Key = bytes[12..44].try_into().expect("32 bytes");
        let slots = bytes[HEADER_LEN as usize..]
            .chunks_exact(SLOT as usize)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        Ok(KeyFile {
            file,
            path,
            secret,
            slots,
        })
    }

    /// The HMAC secret for identifier keys.
    pub(crate) fn secret(&self) -> &Key {
        &self.secret
    }

    /// The key of `pid`, if it has one.
    pub(crate) fn get(&self, pid: u32) -> Option<&Key> {
        self.slots.get(pid as usize).filter(|k| **k != [0u8; 32])
    }

    /// Issues fresh keys for new profiles and writes them (not yet synced); runs of
    /// consecutive ids are written with one call.
    pub(crate) fn issue(&mut self, pids: &[u32]) -> Result<(), StorageError> {
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut start = 0;
        while start < pids.len() {
            let mut end = start + 1;
            while end < pids.len() && pids[end] == pids[end - 1] + 1 {
                end += 1;
            }
            let mut run = vec![0u8; (end - start) * SLOT as usize];
            rng.fill_bytes(&mut run);
            let first = pids[start];
            let last = pids[end - 1] as usize;
            if self.slots.len() <= last {
                self.slots.resize(last + 1, [0u8; 32]);
            }
            for (i, key) in run.chunks_exact(SLOT as usize).enumerate() {
                self.slots[first as usize + i] = key.try_into().expect("32 bytes");
            }
            self.file
                .write_all_at(&run, HEADER_LEN + SLOT * u64::from(first))
                .map_err(|e| StorageError::io(&self.path, e))?;
            start = end;
        }
        Ok(())
    }

    /// Overwrites the key of each pid with zeros (not yet synced).
    pub(crate) fn destroy(&mut self, pids: &[u32]) -> Result<(), StorageError> {
        for &pid in pids {
            if (pid as usize) < self.slots.len() {
                self.write_slot(pid, [0u8; 32])?;
            }
        }
        Ok(())
    }

    fn write_slot(&mut self, pid: u32, key: Key) -> Result<(), StorageError> {
        let idx = pid as usize;
        if self.slots.len() <= idx {
            self.slots.resize(idx + 1, [0u8; 32]);
        }
        self.slots[idx] = key;
        self.file
            .write_all_at(&key, HEADER_LEN + SLOT * u64::from(pid))
            .map_err(|e| StorageError::io(&self.path, e))
    }

    /// Makes written slots durable.
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        self.file
            .sync_data()
            .map_err(|e| StorageError::io(&self.path, e))
    }
}
