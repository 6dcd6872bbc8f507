//! Objections on an open engine: record, list, withdraw (hashed onto the `objections` list).

use crate::base::digest::to_hex;
use crate::base::error::{Error, StorageError};
use crate::engine::{Engine, Lookup};
use crate::privacy::objections::{Objection, OBJECTIONS_LIST};
use crate::privacy::suppression::{person_digests, SuppressionReport};

impl Engine {
    /// Records an objection by the person `how` finds (their emails and phones), or, for
    /// an email or phone nobody has yet, by that identifier alone.
    pub fn object(&self, how: &Lookup, channel: &str) -> Result<Objection, Error> {
        if channel.is_empty() || channel.len() > 64 {
            return Err(Error::InvalidArgument(
                "the objection's channel must be 1-64 characters".into(),
            ));
        }
        let mut w = self.writer.lock().expect("writer lock");
        let mut ids = Vec::new();
        let mut profile_id = None;
        let found = match how {
            Lookup::Id(pid) => self.store.resolve(*pid)?,
            other => {
                let id = self.normalize_lookup(other)?;
                let key = self.store.identifier_key(&id);
                let pid = self.state.read().expect("state lock").links.get(&key);
                ids.push(id);
                pid.map(|p| self.store.resolve(p)).transpose()?.flatten()
            }
        };
        if let Some(profile) = found {
            profile_id = Some(profile.id);
            ids.extend(profile.identifiers.into_iter().map(|i| i.id));
        }
        let digests = person_digests(&ids);
        if digests.is_empty() {
            return Err(Error::InvalidArgument(
                "no email or phone to record the objection by".into(),
            ));
        }
        let objection = Objection {
            id: self.store.next_objection_id()?,
            at: crate::base::time::now_millis(),
            channel: channel.to_string(),
            profile: profile_id,
            digests: digests.iter().map(|(d, _)| to_hex(d)).collect(),
        };
        self.store.put_objection(&objection.to_record())?;
        let mut report = SuppressionReport::default();
        self.add_to_list_locked(&mut w, OBJECTIONS_LIST, digests, &mut report)?;
        self.audit(
            "object",
            serde_json::json!({"objection": objection.id, "channel": channel,
                "digests": objection.digests.len(), "profile": profile_id}),
            None,
        )?;
        Ok(objection)
    }

    /// Every recorded objection, oldest first.
    pub fn objections(&self) -> Result<Vec<Objection>, StorageError> {
        let records = self.store.objections()?;
        Ok(records.into_iter().map(Objection::from_record).collect())
    }

    /// Withdraws an objection: its digests leave the `objections` list unless another
    /// objection still covers them. `false` when there is no such objection.
    pub fn withdraw_objection(&self, id: u64) -> Result<bool, Error> {
        let mut w = self.writer.lock().expect("writer lock");
        let all = self.store.objections()?;
        let Some(objection) = all.iter().find(|o| o.id == id) else {
            return Ok(false);
        };
        let still: std::collections::HashSet<&[u8; 32]> = all
            .iter()
            .filter(|o| o.id != id)
            .flat_map(|o| &o.digests)
            .collect();
        let release: Vec<[u8; 32]> = objection
            .digests
            .iter()
            .filter(|d| !still.contains(d))
            .copied()
            .collect();
        self.store.remove_objection(id)?;
        self.remove_from_list_locked(&mut w, OBJECTIONS_LIST, &release)?;
        self.audit(
            "withdraw_objection",
            serde_json::json!({"objection": id, "released": release.len()}),
            None,
        )?;
        Ok(true)
    }
}
