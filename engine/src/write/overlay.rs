//! What a batch that is still being committed leaves for the next batch's identity
//! resolution, so the importer can resolve batch N+1 while batch N is written.
//!
//! The resolver reads profiles and links through the [`Overlay`] of the previous batch
//! before the store, so it sees that batch's result whether or not it has reached sled
//! yet. Stored event chunks and merge-log entries are not in the overlay and resolution
//! never reads them: a merge moves them when its batch is prepared, on the committer
//! thread, after the previous batch has committed. The one exception is what a record
//! that only added events changes in its profile (its [`Delta`]): the batch stores the
//! chunk without rewriting the profile, and a reader counts it in (`Store::slot`), so
//! the overlay keeps those deltas for a reader that finds the chunk not yet in sled.

use crate::base::digest::LinkKey;
use crate::base::time::Millis;
use crate::input::record::ShortText;
use crate::storage::profile::{Profile, ProfileId};
use std::collections::HashMap;
use std::sync::Arc;

/// A profile slot as a batch left it.
pub(crate) enum OverlaySlot {
    /// Live, with its data after the batch (shared with the batch being committed).
    Live(Arc<Profile>),
    /// Merged into another profile.
    Merged(ProfileId),
    /// No longer stored.
    Gone,
}

/// What a record that only added events to a known profile changes in it: its stored
/// event chunk without the events (`Profile::count_record`).
#[derive(Debug, Clone)]
pub(crate) struct Delta {
    /// The record's ingest sequence (its chunk's key).
    pub(crate) seq: u64,
    pub(crate) source: ShortText,
    pub(crate) observed_at: Millis,
    pub(crate) events: usize,
}

impl Delta {
    /// Counts the record in `profile`.
    pub(crate) fn apply(&self, profile: &mut Profile) {
        profile.count_record(&self.source, self.observed_at, self.events);
    }
}

/// The profiles and links a batch changed, as it left them.
#[derive(Default)]
pub(crate) struct Overlay {
    pub(crate) slots: HashMap<ProfileId, OverlaySlot>,
    pub(crate) links: HashMap<LinkKey, ProfileId>,
    /// Records that only added events to profiles the batch did not rewrite.
    pub(crate) deltas: HashMap<ProfileId, Vec<Delta>>,
}

impl Overlay {
    /// The slot of `pid` if the batch changed it. A live profile is moved out: the next
    /// batch stages it and reads it from its own staging from then on.
    pub(crate) fn take(&mut self, pid: ProfileId) -> Option<OverlaySlot> {
        match self.slots.get(&pid)? {
            OverlaySlot::Live(_) => self.slots.remove(&pid),
            OverlaySlot::Merged(into) => Some(OverlaySlot::Merged(*into)),
            OverlaySlot::Gone => Some(OverlaySlot::Gone),
        }
    }

    /// The profile the batch linked `key` to.
    pub(crate) fn link(&self, key: &LinkKey) -> Option<ProfileId> {
        self.links.get(key).copied()
    }
}
