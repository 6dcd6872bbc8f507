//! Suppression lists on an open engine: import, list, delete.

use crate::base::error::Error;
use crate::base::limits::MAX_LISTED_INVALID;
use crate::engine::Engine;
use crate::index::suppression::SuppressionListInfo;
use crate::privacy::lists::{profiles_of, RESERVED_LISTS};
use crate::privacy::suppression::{parse_entry, valid_list_name, EntryKind, SuppressionReport};
use crate::write::state::WriterState;
use std::io::BufRead;

impl Engine {
    /// Imports one entry a line into suppression list `name` (created if new): raw emails
    /// and phones are normalized (phones with `region` when they have no country code)
    /// and SHA-256 hashed; 64-hex digests are taken as they are. Invalid lines are
    /// reported by line number and skipped; the valid ones are added in one atomic write.
    pub fn suppress_import<R: BufRead>(
        &self,
        name: &str,
        input: R,
        region: Option<&str>,
    ) -> Result<SuppressionReport, Error> {
        if !valid_list_name(name) {
            return Err(Error::InvalidArgument(format!(
                "invalid suppression list name {name:?}: use 1-64 of a-z, 0-9, _ and -"
            )));
        }
        let mut report = SuppressionReport {
            list: name.to_string(),
            ..Default::default()
        };
        let mut parsed: Vec<([u8; 32], EntryKind)> = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line_no = i as u64 + 1;
            let line = line
                .map_err(|e| Error::InvalidArgument(format!("line {line_no}: cannot read: {e}")))?;
            report.lines += 1;
            match parse_entry(&line, region) {
                Ok(Some((kind, digests))) => parsed.extend(digests.into_iter().map(|d| (d, kind))),
                Ok(None) => report.blank += 1,
                Err(reason) => {
                    report.invalid_count += 1;
                    if report.invalid.len() < MAX_LISTED_INVALID {
                        report.invalid.push((line_no, reason.to_string()));
                    }
                }
            }
        }
        let mut writer = self.writer.lock().expect("writer lock");
        self.add_to_list_locked(&mut writer, name, parsed, &mut report)?;
        self.audit(
            "suppress_import",
            serde_json::json!({"list": name, "lines": report.lines, "added": report.added,
                "already_present": report.already_present, "invalid": report.invalid_count,
                "profiles": report.profiles}),
            None,
        )?;
        tracing::info!(
            list = name,
            added = report.added,
            "suppression list imported"
        );
        Ok(report)
    }

    /// Adds digests to list `name` (created if new); `_writer` proves the caller holds the
    /// writer lock. Counts new and already present digests into `report`.
    pub(crate) fn add_to_list_locked(
        &self,
        _writer: &mut WriterState,
        name: &str,
        parsed: Vec<([u8; 32], EntryKind)>,
        report: &mut SuppressionReport,
    ) -> Result<(), Error> {
        let mut fresh: Vec<([u8; 32], u8)> = Vec::new();
        {
            let state = self.state.read().expect("state lock");
            let existing = state.suppression.lists.get(name);
            let mut seen = std::collections::HashSet::new();
            for (digest, kind) in parsed {
                if existing.is_some_and(|l| l.digests.contains(&digest)) || !seen.insert(digest) {
                    report.already_present += 1;
                } else {
                    fresh.push((digest, kind.to_byte()));
                }
            }
        }
        self.store.suppression_add(name, &fresh)?;
        let mut state = self.state.write().expect("state lock");
        let crate::write::state::State {
            suppression, links, ..
        } = &mut *state;
        let list = suppression.lists.entry(name.to_string()).or_default();
        for (digest, kind) in &fresh {
            list.digests.insert(*digest);
            list.kinds[usize::from(kind - 1)] += 1;
            profiles_of(&self.store, links, digest, list);
        }
        report.added += fresh.len() as u64;
        report.profiles = list.members.len();
        suppression.recompute_any();
        self.bump_generation(&mut state);
        Ok(())
    }

    /// Removes digests from list `name` (`_writer`: the caller holds the writer lock) and
    /// re-derives the profiles the list matches.
    pub(crate) fn remove_from_list_locked(
        &self,
        _writer: &mut WriterState,
        name: &str,
        digests: &[[u8; 32]],
    ) -> Result<(), Error> {
        let kinds = self.store.suppression_remove_digests(name, digests)?;
        let mut state = self.state.write().expect("state lock");
        let crate::write::state::State {
            suppression, links, ..
        } = &mut *state;
        if let Some(list) = suppression.lists.get_mut(name) {
            for d in digests {
                list.digests.remove(d);
            }
            for kind in kinds {
                let slot = &mut list.kinds[usize::from(kind.clamp(1, 3) - 1)];
                *slot = slot.saturating_sub(1);
            }
            list.members.clear();
            let all: Vec<[u8; 32]> = list.digests.iter().copied().collect();
            for d in &all {
                profiles_of(&self.store, links, d, list);
            }
            if list.digests.is_empty() {
                suppression.lists.remove(name);
            }
        }
        suppression.recompute_any();
        self.bump_generation(&mut state);
        Ok(())
    }

    /// Every suppression list with its counts.
    pub fn suppression_lists(&self) -> Vec<SuppressionListInfo> {
        self.state.read().expect("state lock").suppression.infos()
    }

    /// Deletes a suppression list; `false` when there was none of that name. The
    /// reserved lists (`erased`, `objections`) are refused: they are what erasures and
    /// objections left, and deleting them would bring those people back into audiences.
    pub fn suppress_delete(&self, name: &str) -> Result<bool, Error> {
        if RESERVED_LISTS.contains(&name) {
            return Err(Error::Conflict(format!(
                "the suppression list {name:?} is reserved: it holds erasures and objections and cannot be deleted (withdraw an objection instead)"
            )));
        }
        let _writer = self.writer.lock().expect("writer lock");
        if !self
            .state
            .read()
            .expect("state lock")
            .suppression
            .lists
            .contains_key(name)
        {
            return Ok(false);
        }
        self.store.suppression_remove(name)?;
        let mut state = self.state.write().expect("state lock");
        state.suppression.lists.remove(name);
        state.suppression.recompute_any();
        self.bump_generation(&mut state);
        drop(state);
        self.audit("suppress_delete", serde_json::json!({ "list": name }), None)?;
        tracing::info!(list = name, "suppression list deleted");
        Ok(true)
    }
}
