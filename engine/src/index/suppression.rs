//! Suppression membership: the digests of every suppression list and the live profiles
//! each matches, kept with the indexes so readers see it in the same snapshot. What a list
//! entry is and how lists are imported is `crate::privacy`.

use crate::storage::profile::ProfileId;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One list in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct List {
    pub(crate) digests: HashSet<[u8; 32]>,
    pub(crate) kinds: [u64; 3],
    pub(crate) members: RoaringBitmap,
}

/// A list as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionListInfo {
    /// Its name.
    pub name: String,
    /// Digests held.
    pub entries: u64,
    /// Entries imported as raw emails.
    pub emails: u64,
    /// Entries imported as raw phones.
    pub phones: u64,
    /// Entries imported already hashed.
    pub hashed: u64,
    /// Live profiles it currently matches.
    pub profiles: u64,
}

/// Every list, with the profiles each matches.
#[derive(Debug, Clone, Default)]
pub(crate) struct SuppressionLists {
    pub(crate) lists: BTreeMap<String, List>,
    any: RoaringBitmap,
}

impl SuppressionLists {
    /// Whether there are no lists (then ingest skips all suppression work).
    pub(crate) fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Profiles on any list, or on `name` (`None` when that list does not exist).
    pub(crate) fn members(&self, name: Option<&str>) -> Option<&RoaringBitmap> {
        match name {
            None => Some(&self.any),
            Some(n) => self.lists.get(n).map(|l| &l.members),
        }
    }

    /// Re-derives membership of changed profiles from their identifier forms (`None`:
    /// no longer live).
    pub(crate) fn refresh_profiles(&mut self, changed: &[(ProfileId, Option<Vec<[u8; 32]>>)]) {
        if self.lists.is_empty() {
            return;
        }
        for (pid, forms) in changed {
            for list in self.lists.values_mut() {
                let on = forms
                    .as_ref()
                    .is_some_and(|f| f.iter().any(|d| list.digests.contains(d)));
                if on {
                    list.members.insert(*pid);
                } else {
                    list.members.remove(*pid);
                }
            }
        }
        self.recompute_any();
    }

    pub(crate) fn recompute_any(&mut self) {
        self.any = self
            .lists
            .values()
            .map(|l| &l.members)
            .fold(RoaringBitmap::new(), |a, b| a | b);
    }

    /// Reports on every list.
    pub(crate) fn infos(&self) -> Vec<SuppressionListInfo> {
        self.lists
            .iter()
            .map(|(name, l)| SuppressionListInfo {
                name: name.clone(),
                entries: l.digests.len() as u64,
                emails: l.kinds[0],
                phones: l.kinds[1],
                hashed: l.kinds[2],
                profiles: l.members.len(),
            })
            .collect()
    }
}
