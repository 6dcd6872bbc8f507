//! What a batch that is still being committed leaves for the next batch's identity
//! resolution, so the importer can resolve batch N+1 while batch N is written.
//!
//! The resolver reads profiles and links through the [`Overlay`] of the previous batch
//! before the store, so it sees that batch's result whether or not it has reached sled
//! yet. Stored event chunks and merge-log entries are not in the overlay and resolution
//! never reads them: a merge moves them when its batch is prepared, on the committer
//! thread, after the previous batch has committed.

use crate::base::digest::LinkKey;
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

/// The profiles and links a batch changed, as it left them.
#[derive(Default)]
pub(crate) struct Overlay {
    pub(crate) slots: HashMap<ProfileId, OverlaySlot>,
    pub(crate) links: HashMap<LinkKey, ProfileId>,
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
