//! Destinations and incremental sync on an open engine: state files, diffs, acknowledgement.

use crate::base::digest::to_hex;
use crate::base::error::{Error, StorageError};
use crate::engine::Engine;
use crate::export::formats::{writer, BatchOptions, Direction, Format, Written};
use crate::export::pipeline::rows_in_order;
use crate::export::rows::ProfileRow;
use crate::export::sync::{
    extension, row_digests, state_file_name, valid_destination_name, AckReport, Destination,
    PushAudit, SentState, SyncReport, SEAL_PURPOSE,
};
use crate::storage::atomic_file;
use crate::storage::profile::ProfileId;
use crate::storage::records::{DestinationRecord, DESTINATION_PREFIX};
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
    ) -> Result<String, StorageError> {
        let dir = self.sync_dir();
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let bytes = state.encode(|plain| {
            self.store
                .seal_with_secret(SEAL_PURPOSE, name.as_bytes(), plain)
        });
        atomic_file::replace(&self.state_path(name, pending), &[&bytes])?;
        // Sealing draws a fresh nonce, so the digest names this one write.
        Ok(to_hex(&crate::base::digest::sha256_bytes(&bytes)))
    }

    /// Creates (or replaces) a destination.
    pub fn destination_put(&self, destination: &Destination) -> Result<(), Error> {
        if !valid_destination_name(&destination.name) {
            return Err(Error::InvalidArgument(format!(
                "invalid destination name {:?}: use 1-64 of a-z, 0-9, _ and -",
                destination.name
            )));
        }
        if let Some(push) = &destination.push {
            push.check(destination.format)
                .map_err(Error::InvalidArgument)?;
        }
        let _held = self.destination_locks.try_hold(&destination.name)?;
        self.store.put_record(
            &format!("{DESTINATION_PREFIX}{}", destination.name),
            Some(&destination.to_record()),
        )?;
        Ok(())
    }

    /// A destination by name.
    pub fn destination(&self, name: &str) -> Result<Option<Destination>, Error> {
        match self.store.record(&format!("{DESTINATION_PREFIX}{name}"))? {
            Some(record) => Ok(Some(Destination::from_record(record)?)),
            None => Ok(None),
        }
    }

    /// Every destination, by name.
    pub fn destinations(&self) -> Result<Vec<Destination>, Error> {
        let records = self.store.records(DESTINATION_PREFIX)?;
        let destinations = records.into_iter().map(Destination::from_record);
        Ok(destinations.collect::<Result<_, _>>()?)
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
        self.store
            .put_record::<DestinationRecord>(&format!("{DESTINATION_PREFIX}{name}"), None)?;
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
        self.sync_as_evaluated(name, None, segment, policy, Some(out_dir))
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
        self.sync_as_evaluated(
            &evaluated.name,
            Some(evaluated),
            segment,
            policy,
            Some(out_dir),
        )
    }

    /// What [`Engine::sync_evaluated`] would find (`adds`, `removes` and the other
    /// counts), writing nothing: no files, no pending state, no audit entry. A scheduled
    /// push uses it to skip destinations without pending changes.
    pub fn sync_preview_evaluated(
        &self,
        evaluated: &Destination,
        segment: &RoaringBitmap,
        policy: &RoaringBitmap,
    ) -> Result<SyncReport, Error> {
        self.sync_as_evaluated(&evaluated.name, Some(evaluated), segment, policy, None)
    }

    /// `out_dir` `None`: a preview that writes nothing.
    fn sync_as_evaluated(
        &self,
        name: &str,
        evaluated: Option<&Destination>,
        segment: &RoaringBitmap,
        policy: &RoaringBitmap,
        out_dir: Option<&Path>,
    ) -> Result<SyncReport, Error> {
        let preview = out_dir.is_none();
        let out_dir = out_dir.unwrap_or(Path::new(""));
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
        if !preview {
            std::fs::create_dir_all(out_dir).map_err(|e| StorageError::io(out_dir, e))?;
        }
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

        let create = |p: &Path| -> Result<Box<dyn Write>, StorageError> {
            if preview {
                return Ok(Box::new(std::io::sink()));
            }
            File::create(p)
                .map(|f| Box::new(BufWriter::new(f)) as Box<dyn Write>)
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
        let mut seen = crate::export::run::SeenHashes::with_capacity(selection.exported.len());
        let mut added = RoaringBitmap::new();
        let builder = self.row_builder(dest.format, platform);
        let threads = crate::export::ExportOptions::new(dest.format).worker_threads(
            self.export_cache.mostly_cached(
                platform,
                builder.identifiers_only,
                builder.today,
                selection.exported.len(),
            ),
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
        if preview {
            return Ok(report);
        }
        report.pending_digest = self.write_state(name, &current, true)?;
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
            .store
            .catalog_list()?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(DESTINATION_PREFIX).map(str::to_string))
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

    /// Records a push to a destination in the audit trail (the server sends it: the
    /// engine knows no HTTP).
    pub fn audit_push(&self, push: &PushAudit) -> Result<(), Error> {
        self.audit(
            "sync_push",
            serde_json::to_value(push).expect("a push audit serializes"),
            None,
        )?;
        Ok(())
    }

    /// Acknowledges the pending sync of `name` only if it is still the one whose
    /// [`SyncReport::pending_digest`] is `pending_digest`: a push acknowledges exactly
    /// what it sent, never a sync written (or an erasure applied) since. Otherwise
    /// [`Error::Conflict`], and the sync stays pending.
    pub fn sync_ack_exactly(&self, name: &str, pending_digest: &str) -> Result<AckReport, Error> {
        self.ack(name, Some(pending_digest))
    }

    /// Records the pending sync of a destination as sent.
    pub fn sync_ack(&self, name: &str) -> Result<AckReport, Error> {
        self.ack(name, None)
    }

    fn ack(&self, name: &str, expected: Option<&str>) -> Result<AckReport, Error> {
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
        if let Some(expected) = expected {
            let bytes = std::fs::read(&from).map_err(|e| StorageError::io(&from, e))?;
            if to_hex(&crate::base::digest::sha256_bytes(&bytes)) != expected {
                return Err(Error::Conflict(format!(
                    "the pending sync of destination {name:?} changed after it was sent \
                     (another sync, or an erasure); it stays pending: send it again"
                )));
            }
        }
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
