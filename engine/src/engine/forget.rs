//! Erasure on an open engine: the intent, the erasure itself and finishing interrupted ones.

use crate::base::error::{Error, StorageError};
use crate::engine::{Engine, Lookup};
use crate::index::Postings;
use crate::privacy::audit::AuditEntry;
use crate::privacy::forget::{ForgetOptions, ForgetReport};
use crate::privacy::suppression::{person_digests, SuppressionReport};
use crate::storage::profile::ProfileId;
use crate::storage::records::{AuditRecord, StoredRecord};
use crate::write::state::{State, WriterState};

impl Engine {
    /// Erases the person found by `how` (any identifier, or a profile id; merged ids
    /// redirect). Returns when the erasure is durable and no file of the data directory
    /// holds their values readably.
    pub fn forget(&self, how: &Lookup, options: &ForgetOptions) -> Result<ForgetReport, Error> {
        let mut w = self.writer.lock().expect("writer lock");
        let pid = match how {
            Lookup::Id(pid) => Some(*pid),
            other => {
                let id = self.normalize_lookup(other)?;
                let key = self.store.identifier_key(&id);
                self.state.read().expect("state lock").links.get(&key)
            }
        };
        let Some(profile) = pid.map(|p| self.store.resolve(p)).transpose()?.flatten() else {
            return Ok(ForgetReport::default());
        };
        let pid = profile.id;
        let events = self.store.events(pid)?;
        let mut report = ForgetReport {
            found: true,
            profile: Some(pid),
            identifiers: profile.identifiers.len() as u64,
            events: events.iter().map(|(_, c)| c.events.len() as u64).sum(),
            ..Default::default()
        };

        // The objection first: a crash after it but before the erasure leaves the person
        // suppressed, never the other way round.
        if let Some(list) = &options.suppress_into {
            let digests = person_digests(profile.identifiers.iter().map(|i| &i.id));
            let mut added = SuppressionReport::default();
            self.add_to_list_locked(&mut w, list, digests, &mut added)?;
            report.suppressed = added.added + added.already_present;
            report.suppression_list = Some(list.clone());
        }

        // Stored data and the erasure intent: one atomic batch. Everything after it is
        // finished on open if a crash interrupts it (`finish_erasure`).
        let mut counters = w.counters.clone();
        let batch = counters.batches;
        counters.batches += 1;
        // The intent carries the audit entry, written when the erasure is finished.
        let intent = AuditEntry {
            seq: 0,
            at: crate::base::time::now_millis(),
            actor: crate::privacy::audit::current_actor(),
            action: "forget".into(),
            details: serde_json::json!({
                "profile": pid, "identifiers": report.identifiers, "events": report.events,
                "suppressed": report.suppressed, "suppression_list": report.suppression_list,
            }),
        };
        // Applied under the state lock, as a batch is: a reader that holds it (a lookup)
        // sees the person whole or not at all, never their profile without its events.
        {
            let mut state = self.state.write().expect("state lock");
            self.store
                .erase_profile(pid, batch, &counters, &intent.to_record().encode())?;
            self.store.unmark_uncounted(&std::iter::once(pid).collect());
            w.counters = counters.clone();
            w.dirty.insert(pid);

            // Derived state.
            let State {
                indexes,
                links,
                suppression,
                ..
            } = &mut *state;
            indexes.update(pid, Some(&Postings::of(&profile)), None);
            for (_, chunk) in &events {
                indexes.remove_events(pid, &chunk.events);
            }
            for sid in &profile.identifiers {
                for key in self.store.link_keys(&sid.id) {
                    links.remove(&key, pid);
                }
            }
            suppression.refresh_profiles(&[(pid, None)]);
            let State {
                indexes, models, ..
            } = &mut *state;
            models.rescore(indexes, &std::iter::once(pid).collect());
            self.bump_generation(&mut state);
            self.export_cache.invalidate([pid]);
            state.counters = counters;
        }
        // Durable before the key is destroyed, and after the state lock is released:
        // readers never wait for an fsync.
        self.store.flush()?;
        self.publish_counts(&w);

        report.destinations =
            self.finish_erasure(&mut w, pid)
                .map_err(|source| Error::ErasureIncomplete {
                    profile: pid,
                    source,
                })? as u64;
        tracing::info!(
            profile = pid,
            identifiers = report.identifiers,
            events = report.events,
            "profile erased"
        );
        Ok(report)
    }

    /// What follows an erasure's atomic batch, idempotent: the key is destroyed, the
    /// files that hold derived copies are rewritten (index checkpoint, sync states, audit
    /// bitmaps), then the audit entry the intent carries is written and the intent
    /// removed, in one atomic write (so the erasure is audited exactly once, also when it
    /// is finished on open). Returns the destinations that held the profile.
    pub(crate) fn finish_erasure(
        &self,
        w: &mut WriterState,
        pid: ProfileId,
    ) -> Result<usize, StorageError> {
        crate::base::crash_point::crash_point("forget.after_batch");
        self.store.destroy_keys(&[pid])?;
        crate::base::crash_point::crash_point("forget.after_key");
        self.checkpoint_locked(w)?;
        let destinations = self.forget_in_sync_states(pid)?;
        self.store.audit_forget(pid)?;
        if let Some(intent) = self.store.erasure_intent(pid)? {
            let key = crate::storage::erasure_key(pid);
            let mut entry = match AuditRecord::decode(&key, &intent) {
                Ok(record) => AuditEntry::from_record(record),
                // A damaged intent still ends in an audited erasure.
                Err(_) => AuditEntry {
                    seq: 0,
                    at: crate::base::time::now_millis(),
                    actor: "embedded".into(),
                    action: "forget".into(),
                    details: serde_json::Value::Null,
                },
            };
            if !entry.details.is_object() {
                entry.details = serde_json::json!({ "profile": pid });
            }
            entry.details["destinations"] = destinations.into();
            self.store
                .audit_append(entry.to_record(), None, Some(pid))?;
        }
        Ok(destinations)
    }

    /// Finishes erasures that a crash or a failure interrupted (on open). One that fails
    /// again stays recorded (and `check` reports it) rather than keeping the database
    /// from opening.
    pub(crate) fn finish_interrupted_erasures(&self) -> Result<(), StorageError> {
        let pending = self.store.erasure_intents()?;
        if pending.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock().expect("writer lock");
        for (pid, _) in pending {
            tracing::warn!(profile = pid, "finishing an interrupted erasure");
            if let Err(e) = self.finish_erasure(&mut w, pid) {
                tracing::error!(profile = pid, error = %e, "the erasure could not be finished; retried on the next open");
            }
        }
        Ok(())
    }
}
