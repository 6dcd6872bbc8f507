//! Compaction: rewrites the sled directory with only its live keys and values.
//!
//! sled 0.34 is log-structured: every rewrite of a profile leaves the old version in its
//! segment until the segment is less than half live, so a database that has been written
//! heavily (an import that folds two records a person into each profile) holds about twice
//! its live data. Compaction copies every key, in order, into a fresh sled directory
//! (`sled.compact`) and swaps it in. Values are copied as they are stored (still sealed),
//! so it changes nothing a reader sees; the index checkpoint stays valid. The event
//! journal's live entries are written under their own `E` keys (merged into the copy's
//! key order) and its blocks and sets are not copied: the same chunks, in one place. In a directory
//! upgraded from a format before 6 (meta key `repack`), it also packs the profiles and
//! event chunks still in their older form (unsealed with the profile's key, packed, sealed
//! again with a fresh nonce; equal content), and drops the meta key with the copy.
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
use super::keyfile::KeyFile;
use super::profile::Profile;
use super::{
    codec, crypto, dir_lock, journal, keys, open_sled_at, open_sled_locked, EventChunk, SLED_DIR,
};
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
    let repack_key = keys::meta(keys::REPACK);
    let repack = match source.get(&repack_key).map_err(StorageError::from)? {
        Some(_) => Some((KeyFile::open(dir)?, repack_key)),
        None => None,
    };
    let target = open_sled_at(dir, &copy)?;
    let (keys, live_bytes) = copy_all(&source, &target, repack.as_ref())?;
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

/// Copies every key of `source` into `target` in order: one thread reads (and packs older
/// values when `repack` holds the key file and the meta key that asked for it, which is not
/// copied), this one writes.
fn copy_all(
    source: &sled::Db,
    target: &sled::Db,
    repack: Option<&(KeyFile, Vec<u8>)>,
) -> Result<(u64, u64), StorageError> {
    type Chunk = Result<Vec<(sled::IVec, sled::IVec)>, StorageError>;
    // The event journal's live entries go in under their own keys, merged into the
    // copy's key order; its blocks and sets are not copied.
    let mut unjournaled = journal::as_event_keys(source)?.into_iter().peekable();
    std::thread::scope(|scope| {
        let (tx, rx) = bounded::<Chunk>(4);
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(COPY_BATCH);
            for item in source.iter() {
                if let Ok((k, _)) = &item {
                    while let Some((key, value)) =
                        unjournaled.next_if(|(e, _)| e.as_slice() < &k[..])
                    {
                        chunk.push((key.into(), value.into()));
                    }
                    if matches!(k.first(), Some(&(keys::JOURNAL | keys::JOURNAL_SET))) {
                        continue;
                    }
                }
                match item {
                    Ok((k, v)) => match repack {
                        Some((_, meta)) if k == meta.as_slice() => {}
                        Some((keyfile, _)) => {
                            let v = packed(keyfile, &k, v);
                            chunk.push((k, v));
                        }
                        None => chunk.push((k, v)),
                    },
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                }
                if chunk.len() >= COPY_BATCH && tx.send(Ok(std::mem::take(&mut chunk))).is_err() {
                    return;
                }
            }
            chunk.extend(unjournaled.map(|(k, v)| (k.into(), v.into())));
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

/// `value` of `key` with a profile or event chunk in an older form packed (sealed again
/// with the same profile key and a fresh nonce). Anything else, and a value that does not
/// unseal or decode, is returned as it is: compaction keeps data, `check` judges it.
fn packed(keyfile: &KeyFile, key: &[u8], value: sled::IVec) -> sled::IVec {
    let (Some(pid), Some(&tag)) = (keys::pid_of(key), key.first()) else {
        return value;
    };
    let Some(profile_key) = keyfile.get(pid) else {
        return value;
    };
    let sealed_from = match tag {
        keys::PROFILE if value.first() == Some(&keys::SLOT_LIVE) => 1,
        keys::EVENTS => 0,
        _ => return value,
    };
    let Ok(plain) = crypto::open("value", profile_key, key, &value[sealed_from..]) else {
        return value;
    };
    if codec::is_packed(&plain) {
        return value;
    }
    let mut out = value[..sealed_from].to_vec();
    let ok = if tag == keys::PROFILE {
        codec::decode_packed::<Profile>("profile", &plain)
            .map(|p| {
                crypto::seal_with(profile_key, key, &mut out, |buf| {
                    codec::encode_packed_into(&p, buf)
                })
            })
            .is_ok()
    } else {
        codec::decode_packed::<EventChunk>("event chunk", &plain)
            .map(|c| {
                crypto::seal_with(profile_key, key, &mut out, |buf| {
                    codec::encode_packed_into(&c, buf)
                })
            })
            .is_ok()
    };
    if ok {
        out.into()
    } else {
        value
    }
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

    /// Every live profile with its event chunks, decoded; whether each stored value of
    /// them is packed; and their stored bytes.
    type StoredState = (Vec<(Profile, Vec<(u64, EventChunk)>)>, Vec<bool>, usize);

    fn stored_state(dir: &Path) -> StoredState {
        let (store, _) = super::super::Store::open(dir).unwrap();
        let profiles = store
            .live_profiles()
            .map(|p| {
                let p = p.unwrap();
                let events = store.events(p.id).unwrap();
                (p, events)
            })
            .collect();
        let keyfile = store.keys.read().unwrap();
        let (mut packed, mut bytes) = (Vec::new(), 0);
        for item in store.db.iter() {
            let (k, v) = item.unwrap();
            let sealed_from = match k[0] {
                keys::PROFILE if v[0] == keys::SLOT_LIVE => 1,
                keys::EVENTS => 0,
                _ => continue,
            };
            let key = keyfile.get(keys::pid_of(&k).unwrap()).unwrap();
            let plain = crypto::open("value", key, &k, &v[sealed_from..]).unwrap();
            packed.push(codec::is_packed(&plain));
            bytes += v.len();
        }
        (profiles, packed, bytes)
    }

    /// Writes what a format-5 build left: 40 profiles with an event chunk each, their
    /// values in the older form (tag 3), and format 5. Returns them.
    fn older_database(dir: &Path) -> Vec<(Profile, Vec<(u64, EventChunk)>)> {
        use crate::input::record::{Event, Identifier, Value};
        use crate::storage::profile::{
            Attribute, Provenance, Scalar, SourceSeen, StoredIdentifier,
        };
        let (store, _) = super::super::Store::open(dir).unwrap();
        let pids: Vec<u32> = (0..40).collect();
        let mut writer = super::super::BatchWriter::new(&store);
        writer.issue_keys(&pids).unwrap();
        store.apply(writer.finish().unwrap()).unwrap();
        let keyfile = store.keys.read().unwrap();
        let mut batch = sled::Batch::default();
        let mut written = Vec::new();
        for pid in pids {
            let at = 1_767_225_600_000 + i64::from(pid) * 1_000;
            let provenance = Provenance {
                source: "crm".into(),
                observed_at: at,
            };
            let mut profile = Profile::new(pid);
            profile.identifiers.push(StoredIdentifier {
                id: Identifier {
                    kind: "email".into(),
                    value: format!("p{pid}@example.com"),
                },
                provenance: provenance.clone(),
            });
            let name = Attribute::Scalar(Scalar {
                value: Value::Text(format!("Name {pid}").into()),
                provenance,
                seq: u64::from(pid),
            });
            profile.attributes.insert("first_name".into(), name);
            let seen = SourceSeen {
                records: 1,
                first_seen: at,
                last_seen: at,
            };
            profile.sources.insert("crm".into(), seen);
            (profile.records, profile.events) = (1, 1);
            let chunk = EventChunk {
                source: "crm".into(),
                observed_at: at,
                events: vec![Event {
                    kind: "purchase".into(),
                    at: at - 86_400_000,
                    category: Some("jeans".into()),
                    value: Some(f64::from(pid)),
                }],
            };
            let key = keyfile.get(pid).unwrap();
            let slot = keys::profile(pid);
            let mut value = vec![keys::SLOT_LIVE];
            crypto::seal_with(key, &slot, &mut value, |buf| {
                codec::encode_compressed_into(&profile, buf)
            });
            batch.insert(&slot[..], value);
            let events_key = keys::pid_seq(keys::EVENTS, pid, u64::from(pid));
            let mut value = Vec::new();
            crypto::seal_with(key, &events_key, &mut value, |buf| {
                codec::encode_compressed_into(&chunk, buf)
            });
            batch.insert(&events_key[..], value);
            written.push((profile, vec![(u64::from(pid), chunk)]));
        }
        // As a real build's counters say: every chunk's sequence was issued before.
        let counters = super::super::Counters {
            next_pid: 40,
            next_seq: 40,
            records: 40,
            events: 40,
            ..Default::default()
        };
        batch.insert(keys::meta("counters"), codec::encode(&counters));
        batch.insert(keys::meta("format"), &5u32.to_le_bytes()[..]);
        store.db.apply_batch(batch).unwrap();
        store.db.flush().unwrap();
        written
    }

    #[test]
    fn compaction_packs_the_older_values_of_an_upgraded_directory() {
        let dir = tempfile::tempdir().unwrap();
        let expected = older_database(dir.path());
        // Opening upgrades it to the current format and asks for a repack; the values
        // read the same.
        let (got, packed, older_bytes) = stored_state(dir.path());
        assert_eq!(got, expected);
        assert!(packed.iter().all(|p| !*p), "the older form was written");
        let has_repack = |dir: &Path| {
            let db = open_sled_at(dir, &dir.join(SLED_DIR)).unwrap();
            db.get(keys::meta(keys::REPACK)).unwrap().is_some()
        };
        assert!(has_repack(dir.path()));
        compact(dir.path()).unwrap();
        let (got, packed, packed_bytes) = stored_state(dir.path());
        assert_eq!(got, expected);
        assert!(
            packed_bytes < older_bytes,
            "{older_bytes} -> {packed_bytes}"
        );
        assert!(
            !packed.is_empty() && packed.iter().all(|p| *p),
            "{packed:?}"
        );
        assert!(!has_repack(dir.path()));
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
