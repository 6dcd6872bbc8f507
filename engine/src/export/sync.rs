//! Destinations and incremental sync (export.md "Incremental sync").
//!
//! A destination names a platform format, a segment, a policy and a mode. Per destination
//! the engine keeps what was last acknowledged as sent: for each profile, the email and
//! phone hashes it was sent with (`sync/NAME.sent`). A sync compares the current export
//! with that state at the level of hashes, so a merge, a changed email, a withdrawal or
//! an erasure all come out right: `adds` are profiles with a hash not sent before,
//! `removes` are sent hashes that no current member holds. The new state is written as
//! `sync/NAME.pending` and becomes the sent state only when the caller acknowledges, so
//! an unacknowledged sync can be rerun and gives the same files.
//!
//! State file: magic `CIDBSYN1`, version u32 LE (2), generation u64 LE, count u64 LE,
//! then per profile: pid u32 LE, n u16 LE, n × (kind u8: 1 email 2 phone, digest 32);
//! then (version 2) the hashes of erased profiles still to be removed, sealed
//! (XChaCha20-Poly1305, key derived from the database secret, the destination name as
//! associated data): length u64 LE and the sealed bytes of (count u64 LE, count × (kind
//! u8, digest 32)); then CRC-32 of everything before it (u32 LE). Written to a
//! temp file, synced, renamed. Version 1 files (no erased section) are read too.
//!
//! Erasure drops the person from this state; the hashes they were sent with move to the
//! sealed erased section, so the next sync still removes them from the platform without
//! any plain-text trace of them on disk, and they are gone once that sync is
//! acknowledged.

use super::formats::{writer, BatchOptions, Direction, Format, Written};
use super::pipeline::rows_in_order;
use super::rows::{FieldStats, ProfileRow};
use crate::base::digest::{parse_hex, to_hex};
use crate::base::error::{Error, StorageError};
use crate::base::time::Millis;
use crate::engine::Engine;
use crate::input::normalize::platform::Platform;
use crate::storage::atomic_file;
use crate::storage::profile::ProfileId;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CIDBSYN1";
const STATE_VERSION: u32 = 2;
/// Purpose of the key that seals the erased section.
const SEAL_PURPOSE: &str = "sync-erased-v1";
const CATALOG_PREFIX: &str = "destination/";
/// Catalog value layout version (a byte in front of the JSON).
const DESTINATION_LAYOUT: u8 = 1;

/// A named export target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    /// Its name (`[a-z0-9_-]{1,64}`).
    pub name: String,
    /// Output format (implies the platform; `hashes` uses `platform`).
    pub format: Format,
    /// Platform rules (for `hashes`; the format's own platform otherwise).
    pub platform: Platform,
    /// The segment: a saved segment's name or an expression (the query layer evaluates
    /// it).
    pub segment: String,
    /// The policy expression (default `consent("custom_audiences")`).
    pub policy: String,
    /// Never emit removes.
    pub additive_only: bool,
    /// When it was created (ms since the epoch).
    pub created_at: Millis,
}

/// What a sync wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// The destination.
    pub destination: String,
    /// Profiles exported now (after policy and suppression).
    pub members: u64,
    /// Members outside the policy.
    pub removed_by_policy: u64,
    /// Members on a suppression list.
    pub removed_by_suppression: u64,
    /// Members without a valid email or phone.
    pub skipped_no_identifier: u64,
    /// Profiles in `adds` (new, or with a hash not sent before).
    pub adds: u64,
    /// Rows in the adds file.
    pub add_rows: u64,
    /// Request bodies in the adds file.
    pub add_batches: u64,
    /// Hashes sent before that no current member holds.
    pub removes: u64,
    /// Rows in the removes file.
    pub remove_rows: u64,
    /// Request bodies in the removes file.
    pub remove_batches: u64,
    /// The adds file.
    pub adds_file: PathBuf,
    /// The removes file (written empty in additive-only mode).
    pub removes_file: PathBuf,
    /// The generation this sync will have once acknowledged.
    pub generation: u64,
    /// Valid and invalid values per field.
    pub fields: FieldStats,
}

/// The result of acknowledging a sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AckReport {
    /// The destination.
    pub destination: String,
    /// The generation now recorded as sent.
    pub generation: u64,
    /// Profiles recorded as sent.
    pub profiles: u64,
}

/// Identifier hashes per profile, as sent (or about to be).
#[derive(Debug, Clone, Default, PartialEq)]
struct SentState {
    generation: u64,
    /// pid → sorted (kind, digest); kind 1 = email, 2 = phone.
    profiles: BTreeMap<ProfileId, Vec<(u8, [u8; 32])>>,
    /// Hashes of erased profiles, sent before, to remove at the next sync.
    erased: Vec<(u8, [u8; 32])>,
}

impl SentState {
    fn hashes(&self) -> HashSet<[u8; 32]> {
        self.profiles
            .values()
            .flat_map(|v| v.iter().map(|(_, d)| *d))
            .collect()
    }

    fn encode(&self, seal: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&(self.profiles.len() as u64).to_le_bytes());
        for (pid, ids) in &self.profiles {
            out.extend_from_slice(&pid.to_le_bytes());
            out.extend_from_slice(&(ids.len() as u16).to_le_bytes());
            for (kind, digest) in ids {
                out.push(*kind);
                out.extend_from_slice(digest);
            }
        }
        let mut erased = Vec::with_capacity(8 + self.erased.len() * 33);
        erased.extend_from_slice(&(self.erased.len() as u64).to_le_bytes());
        for (kind, digest) in &self.erased {
            erased.push(*kind);
            erased.extend_from_slice(digest);
        }
        let sealed = seal(&erased);
        out.extend_from_slice(&(sealed.len() as u64).to_le_bytes());
        out.extend_from_slice(&sealed);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(
        bytes: &[u8],
        open: impl Fn(&[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<SentState, String> {
        let body_len = bytes.len().checked_sub(4).ok_or("too short")?;
        let (body, crc) = bytes.split_at(body_len);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err("checksum mismatch".into());
        }
        let mut r = body;
        let mut take = |n: usize| -> Result<&[u8], String> {
            if r.len() < n {
                return Err("truncated".into());
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(8)? != MAGIC {
            return Err("bad magic".into());
        }
        let version = u32::from_le_bytes(take(4)?.try_into().expect("4"));
        if !(1..=STATE_VERSION).contains(&version) {
            return Err(format!("unknown version {version}"));
        }
        let generation = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let count = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let mut profiles = BTreeMap::new();
        for _ in 0..count {
            let pid = u32::from_le_bytes(take(4)?.try_into().expect("4"));
            let n = u16::from_le_bytes(take(2)?.try_into().expect("2"));
            let mut ids = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                let kind = take(1)?[0];
                ids.push((kind, take(32)?.try_into().expect("32")));
            }
            profiles.insert(pid, ids);
        }
        let mut erased = Vec::new();
        if version >= 2 {
            let len = u64::from_le_bytes(take(8)?.try_into().expect("8"));
            let plain = open(take(usize::try_from(len).map_err(|_| "too long")?)?)?;
            let (count, entries) = plain
                .split_first_chunk::<8>()
                .ok_or("erased section truncated")?;
            let count = u64::from_le_bytes(*count);
            if Some(entries.len() as u64) != count.checked_mul(33) {
                return Err("erased section length mismatch".into());
            }
            for e in entries.chunks_exact(33) {
                erased.push((e[0], e[1..].try_into().expect("32")));
            }
        }
        Ok(SentState {
            generation,
            profiles,
            erased,
        })
    }
}

fn row_digests(row: &ProfileRow) -> Vec<(u8, [u8; 32])> {
    let mut v: Vec<(u8, [u8; 32])> = row
        .emails
        .iter()
        .filter_map(|h| parse_hex(h).map(|d| (1, d)))
        .chain(
            row.phones
                .iter()
                .filter_map(|h| parse_hex(h).map(|d| (2, d))),
        )
        .collect();
    v.sort_unstable();
    v
}

/// Checks a destination name: `[a-z0-9_-]{1,64}`.
pub fn valid_destination_name(name: &str) -> bool {
    crate::base::names::valid_name(name)
}

/// A state file's path relative to the data directory (what errors show).
fn state_file_name(name: &str, pending: bool) -> String {
    format!("sync/{name}.{}", if pending { "pending" } else { "sent" })
}

/// Which destinations have an operation running (sync, ack, delete, replace, or an
/// erasure rewriting their state). Operations on one destination run one at a time;
/// a user's operation that finds it busy fails at once with [`Error::Busy`], an erasure
/// waits. Lock order: writer → destination → state (ARCHITECTURE.md).
#[derive(Debug, Default)]
pub(crate) struct DestinationLocks {
    held: std::sync::Mutex<HashSet<String>>,
    released: std::sync::Condvar,
}

/// One destination held; released on drop.
pub(crate) struct DestinationGuard<'a> {
    locks: &'a DestinationLocks,
    name: String,
}

impl DestinationLocks {
    /// Holds `name`, or says it is busy.
    pub(crate) fn try_hold(&self, name: &str) -> Result<DestinationGuard<'_>, Error> {
        let mut held = self.held.lock().expect("destination locks");
        if !held.insert(name.to_string()) {
            return Err(Error::Busy {
                what: "destination",
                name: name.to_string(),
            });
        }
        Ok(DestinationGuard {
            locks: self,
            name: name.to_string(),
        })
    }

    /// Holds `name`, waiting for the operation running on it.
    pub(crate) fn hold(&self, name: &str) -> DestinationGuard<'_> {
        let mut held = self.held.lock().expect("destination locks");
        while held.contains(name) {
            held = self.released.wait(held).expect("destination locks");
        }
        held.insert(name.to_string());
        DestinationGuard {
            locks: self,
            name: name.to_string(),
        }
    }
}

impl Drop for DestinationGuard<'_> {
    fn drop(&mut self) {
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.remove(&self.name);
        self.locks.released.notify_all();
    }
}

/// The file extension of a format's output.
fn extension(format: Format) -> &'static str {
    match format {
        Format::MetaApi | Format::GoogleApi => "jsonl",
        Format::MetaCsv | Format::GoogleCsv => "csv",
        Format::Hashes => "txt",
    }
}

impl Engine {
    fn sync_dir(&self) -> PathBuf {
        self.store.dir().join("sync")
    }

    fn state_path(&self, name: &str, pending: bool) -> PathBuf {
        self.store.dir().join(state_file_name(name, pending))
    }

    fn read_state(&self, name: &str, pending: bool) -> Result<Option<SentState>, StorageError> {
        let path = self.state_path(name, pending);
        match std::fs::read(&path) {
            Ok(bytes) => SentState::decode(&bytes, |sealed| {
                self.store
                    .open_with_secret(SEAL_PURPOSE, name.as_bytes(), sealed)
                    .map_err(|e| e.to_string())
            })
            .map(Some)
            .map_err(|detail| StorageError::CorruptedFile {
                what: "sync state",
                file: state_file_name(name, pending),
                detail,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(path, e)),
        }
    }

    fn write_state(
        &self,
        name: &str,
        state: &SentState,
        pending: bool,
    ) -> Result<(), StorageError> {
        let dir = self.sync_dir();
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let bytes = state.encode(|plain| {
            self.store
                .seal_with_secret(SEAL_PURPOSE, name.as_bytes(), plain)
        });
        atomic_file::replace(&self.state_path(name, pending), &[&bytes])
    }

    /// Creates (or replaces) a destination.
    pub fn destination_put(&self, destination: &Destination) -> Result<(), Error> {
        if !valid_destination_name(&destination.name) {
            return Err(Error::InvalidArgument(format!(
                "invalid destination name {:?}: use 1-64 of a-z, 0-9, _ and -",
                destination.name
            )));
        }
        let _held = self.destination_locks.try_hold(&destination.name)?;
        let mut value = vec![DESTINATION_LAYOUT];
        serde_json::to_writer(&mut value, destination).expect("serializing to a Vec");
        self.catalog_put(
            &format!("{CATALOG_PREFIX}{}", destination.name),
            Some(&value),
        )?;
        Ok(())
    }

    /// A destination by name.
    pub fn destination(&self, name: &str) -> Result<Option<Destination>, Error> {
        match self.catalog_get(&format!("{CATALOG_PREFIX}{name}"))? {
            Some(v) => Ok(Some(decode_destination(name, &v)?)),
            None => Ok(None),
        }
    }

    /// Every destination, by name.
    pub fn destinations(&self) -> Result<Vec<Destination>, Error> {
        let mut out = Vec::new();
        for (key, value) in self.catalog_list()? {
            if let Some(name) = key.strip_prefix(CATALOG_PREFIX) {
                out.push(decode_destination(name, &value)?);
            }
        }
        Ok(out)
    }

    /// Deletes a destination and its sync state; `false` when there was none.
    pub fn destination_delete(&self, name: &str) -> Result<bool, Error> {
        let _held = self.destination_locks.try_hold(name)?;
        if self.destination(name)?.is_none() {
            return Ok(false);
        }
        for pending in [false, true] {
            let path = self.state_path(name, pending);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(path, e).into()),
            }
        }
        self.catalog_put(&format!("{CATALOG_PREFIX}{name}"), None)?;
        Ok(true)
    }

    /// Profiles last acknowledged as sent to a destination.
    pub fn destination_sent(&self, name: &str) -> Result<RoaringBitmap, Error> {
        Ok(self
            .read_state(name, false)?
            .map(|s| s.profiles.keys().copied().collect())
            .unwrap_or_default())
    }

    /// Syncs a destination: `segment` and `policy` are the bitmaps of its segment and
    /// policy (evaluated by the query layer). Writes `adds.EXT` and `removes.EXT` into
    /// `out_dir` and records the result as pending until [`Engine::sync_ack`].
    pub fn sync(
        &self,
        name: &str,
        segment: &RoaringBitmap,
        policy: &RoaringBitmap,
        out_dir: &Path,
    ) -> Result<SyncReport, Error> {
        self.sync_as_evaluated(name, None, segment, policy, out_dir)
    }

    /// Like [`Engine::sync`], for bitmaps evaluated from the definition `evaluated`: if
    /// the destination was replaced since (a different segment or policy), the sync is
    /// refused with [`Error::Conflict`] instead of sending one audience under another's
    /// name.
    pub fn sync_evaluated(
        &self,
        evaluated: &Destination,
        segment: &RoaringBitmap,
        policy: &RoaringBitmap,
        out_dir: &Path,
    ) -> Result<SyncReport, Error> {
        self.sync_as_evaluated(&evaluated.name, Some(evaluated), segment, policy, out_dir)
    }

    fn sync_as_evaluated(
        &self,
        name: &str,
        evaluated: Option<&Destination>,
        segment: &RoaringBitmap,
        policy: &RoaringBitmap,
        out_dir: &Path,
    ) -> Result<SyncReport, Error> {
        let _held = self.destination_locks.try_hold(name)?;
        let dest = self.destination(name)?.ok_or_else(|| Error::NotFound {
            what: "destination",
            name: name.to_string(),
        })?;
        if evaluated.is_some_and(|e| *e != dest) {
            return Err(Error::Conflict(format!(
                "destination {name:?} was replaced while its audience was evaluated; sync again"
            )));
        }
        let sent = self.read_state(name, false)?.unwrap_or_default();
        let generation = sent.generation + 1;
        let selection = self.select(segment, policy);
        let platform = match dest.format {
            Format::Hashes => dest.platform,
            f => f.platform(),
        };
        let ext = extension(dest.format);
        std::fs::create_dir_all(out_dir).map_err(|e| StorageError::io(out_dir, e))?;
        let adds_file = out_dir.join(format!("adds.{ext}"));
        let removes_file = out_dir.join(format!("removes.{ext}"));
        let mut report = SyncReport {
            destination: name.to_string(),
            removed_by_policy: selection.removed_by_policy,
            removed_by_suppression: selection.removed_by_suppression,
            adds_file: adds_file.clone(),
            removes_file: removes_file.clone(),
            generation,
            ..Default::default()
        };

        let create = |p: &Path| {
            File::create(p)
                .map(BufWriter::new)
                .map_err(|e| StorageError::io(p, e))
        };
        let mut adds_out = create(&adds_file)?;
        let options = |direction| BatchOptions {
            direction,
            session_id: generation,
            estimated_total: selection.exported.len(),
        };
        let mut w =
            writer(dest.format, &mut adds_out, options(Direction::Add)).map_err(Error::Output)?;
        let mut current = SentState {
            generation,
            profiles: BTreeMap::new(),
            erased: Vec::new(),
        };
        let mut seen = super::run::SeenHashes::default();
        let mut added = RoaringBitmap::new();
        let builder = self.row_builder(platform);
        let threads = super::ExportOptions::new(dest.format).worker_threads(
            self.export_cache
                .mostly_cached(platform, builder.today, selection.exported.len()),
        );
        let (fields, _) = rows_in_order(
            &self.store,
            &self.export_cache,
            &builder,
            &selection.exported,
            threads,
            &mut |mut row| {
                seen.dedupe(&mut row);
                if !row.has_identifier() {
                    report.skipped_no_identifier += 1;
                    return Ok(());
                }
                report.members += 1;
                let digests = row_digests(&row);
                let known = sent.profiles.get(&row.pid);
                let is_new = known.is_none_or(|k| digests.iter().any(|d| !k.contains(d)));
                current.profiles.insert(row.pid, digests);
                if is_new {
                    report.adds += 1;
                    added.insert(row.pid);
                    w.push(&row)?;
                }
                Ok(())
            },
        )?
        .map_err(Error::Output)?;
        report.fields = fields;
        let Written { rows, batches } = w.finish().map_err(Error::Output)?;
        (report.add_rows, report.add_batches) = (rows, batches);
        adds_out.flush().map_err(Error::Output)?;

        let mut removes_out = create(&removes_file)?;
        let mut w = writer(dest.format, &mut removes_out, options(Direction::Remove))
            .map_err(Error::Output)?;
        if dest.additive_only {
            // Everyone sent stays recorded as sent.
            for (pid, ids) in &sent.profiles {
                let entry = current.profiles.entry(*pid).or_default();
                let merged: BTreeSet<_> = entry.iter().chain(ids).copied().collect();
                *entry = merged.into_iter().collect();
            }
        } else {
            let still = current.hashes();
            let erased = (ProfileId::MAX, sent.erased.clone());
            for (pid, ids) in sent
                .profiles
                .iter()
                .chain(std::iter::once((&erased.0, &erased.1)))
            {
                let gone: Vec<&(u8, [u8; 32])> =
                    ids.iter().filter(|(_, d)| !still.contains(d)).collect();
                if gone.is_empty() {
                    continue;
                }
                report.removes += gone.len() as u64;
                let row = ProfileRow {
                    pid: *pid,
                    emails: gone
                        .iter()
                        .filter(|(k, _)| *k == 1)
                        .map(|(_, d)| to_hex(d))
                        .collect(),
                    phones: gone
                        .iter()
                        .filter(|(k, _)| *k == 2)
                        .map(|(_, d)| to_hex(d))
                        .collect(),
                    ..ProfileRow::default()
                };
                w.push(&row).map_err(Error::Output)?;
            }
        }
        let Written { rows, batches } = w.finish().map_err(Error::Output)?;
        (report.remove_rows, report.remove_batches) = (rows, batches);
        removes_out.flush().map_err(Error::Output)?;
        self.write_state(name, &current, true)?;
        self.audit(
            "sync",
            serde_json::json!({
                "destination": name, "format": dest.format.name(), "generation": generation,
                "segment": dest.segment, "policy": dest.policy,
                "adds": report.adds, "removes": report.removes, "members": report.members,
            }),
            Some(&added),
        )?;
        tracing::info!(
            destination = name,
            adds = report.adds,
            removes = report.removes,
            "sync written; pending acknowledgement"
        );
        Ok(report)
    }

    /// Drops an erased profile from every destination's sent and pending state (the files
    /// are rewritten whole). Returns the number of destinations that had it.
    ///
    /// A state file that does not decode cannot be cleaned, and may hold the person's
    /// hashes: it is removed (the destination's next sync then adds every member again
    /// and cannot compute removes of earlier members), so one corrupt destination never
    /// blocks an erasure.
    pub(crate) fn forget_in_sync_states(&self, pid: ProfileId) -> Result<usize, StorageError> {
        let mut touched = 0;
        // Names from the catalog keys: a destination whose definition does not decode
        // still has state files to clean.
        let names: Vec<String> = self
            .catalog_list()?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(CATALOG_PREFIX).map(str::to_string))
            .collect();
        for name in names {
            let _held = self.destination_locks.hold(&name);
            // A temp file a crash left behind holds a state too.
            for pending in [false, true] {
                let tmp = atomic_file::temp_path(&self.state_path(&name, pending));
                match std::fs::remove_file(&tmp) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io(&tmp, e)),
                }
            }
            let mut had = false;
            for pending in [false, true] {
                let state = match self.read_state(&name, pending) {
                    Ok(state) => state,
                    Err(StorageError::CorruptedFile { detail, .. }) => {
                        tracing::warn!(
                            destination = name.as_str(),
                            pending,
                            detail = detail.as_str(),
                            "corrupt sync state removed during an erasure; the next sync re-adds every member"
                        );
                        let path = self.state_path(&name, pending);
                        std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
                        had = true;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let Some(mut state) = state {
                    if let Some(ids) = state.profiles.remove(&pid) {
                        state.erased.extend(ids);
                        state.erased.sort_unstable();
                        state.erased.dedup();
                        self.write_state(&name, &state, pending)?;
                        had = true;
                    }
                }
            }
            touched += usize::from(had);
        }
        Ok(touched)
    }

    /// Records the pending sync of a destination as sent.
    pub fn sync_ack(&self, name: &str) -> Result<AckReport, Error> {
        let _held = self.destination_locks.try_hold(name)?;
        if self.destination(name)?.is_none() {
            return Err(Error::NotFound {
                what: "destination",
                name: name.to_string(),
            });
        }
        let Some(pending) = self.read_state(name, true)? else {
            return Err(Error::Conflict(format!(
                "destination {name:?} has no sync waiting for acknowledgement"
            )));
        };
        let (from, to) = (self.state_path(name, true), self.state_path(name, false));
        crate::base::crash_point::crash_point("ack.before_rename");
        std::fs::rename(&from, &to).map_err(|e| StorageError::io(&to, e))?;
        atomic_file::sync_parent(&to)?;
        self.audit(
            "sync_ack",
            serde_json::json!({"destination": name, "generation": pending.generation,
                "profiles": pending.profiles.len()}),
            None,
        )?;
        Ok(AckReport {
            destination: name.to_string(),
            generation: pending.generation,
            profiles: pending.profiles.len() as u64,
        })
    }
}

fn decode_destination(name: &str, bytes: &[u8]) -> Result<Destination, StorageError> {
    let corrupted = |detail: String| StorageError::Corrupted {
        what: "destination",
        key: name.as_bytes().to_vec(),
        detail,
    };
    match bytes.split_first() {
        Some((&DESTINATION_LAYOUT, json)) => {
            serde_json::from_slice(json).map_err(|e| corrupted(e.to_string()))
        }
        Some((v, _)) => Err(corrupted(format!("unknown layout {v}"))),
        None => Err(corrupted("empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_detects_damage() {
        let mut s = SentState {
            generation: 3,
            ..Default::default()
        };
        s.erased.push((1, [9u8; 32]));
        s.profiles.insert(7, vec![(1, [1u8; 32]), (2, [2u8; 32])]);
        s.profiles.insert(9, vec![]);
        // A stand-in cipher: the test is about the layout.
        let seal = |p: &[u8]| p.iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>();
        let open = |p: &[u8]| Ok(p.iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>());
        let bytes = s.encode(seal);
        assert_eq!(SentState::decode(&bytes, open).unwrap(), s);
        assert!(
            !bytes.windows(32).any(|w| w == [9u8; 32]),
            "the erased section is sealed"
        );
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(SentState::decode(&bad, open).is_err());
        assert!(SentState::decode(&bytes[..10], open).is_err());
    }
}
