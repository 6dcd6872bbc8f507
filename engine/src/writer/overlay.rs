//! What a batch that is still being committed leaves for the next batch's identity
//! resolution, so the importer can resolve batch N+1 while batch N is written.
//!
//! The resolver reads profiles and links through the [`Overlay`] of the previous batch
//! before the store, so it sees that batch's result whether or not it has reached sled
//! yet. Stored event chunks and merge-log entries are not in the overlay: before reading
//! those of a profile the previous batch changed, the resolver waits for its commit
//! ([`InFlight::before_reading`]), which merges of such profiles alone need.

use crate::error::StorageError;
use crate::identity::LinkKey;
use crate::profile::{Profile, ProfileId};
use crate::report::IngestReport;
use crossbeam_channel::Receiver;
use roaring::RoaringBitmap;
use std::cell::RefCell;
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

enum CommitState {
    Running,
    Done(IngestReport),
    /// Failed; the error went to whoever waited first.
    Failed,
}

/// A batch handed to the committer thread and not yet known to be durable.
pub(crate) struct InFlight {
    /// Profiles the batch changes (their stored events and merge log among them).
    changed: RoaringBitmap,
    done: Receiver<Result<IngestReport, StorageError>>,
    state: RefCell<CommitState>,
}

impl InFlight {
    /// Tracks a batch changing `changed`; `done` delivers its commit's outcome.
    pub(crate) fn new(
        changed: RoaringBitmap,
        done: Receiver<Result<IngestReport, StorageError>>,
    ) -> Self {
        InFlight {
            changed,
            done,
            state: RefCell::new(CommitState::Running),
        }
    }

    /// Waits for the commit when the batch changes `pid`, so that sled reads of its
    /// events and merge log are current.
    pub(crate) fn before_reading(&self, pid: ProfileId) -> Result<(), StorageError> {
        if self.changed.contains(pid) {
            self.wait()?;
        }
        Ok(())
    }

    fn wait(&self) -> Result<(), StorageError> {
        let mut state = self.state.borrow_mut();
        match &*state {
            CommitState::Done(_) => Ok(()),
            CommitState::Failed => Err(committer_gone()),
            CommitState::Running => match self.done.recv() {
                Ok(Ok(report)) => {
                    *state = CommitState::Done(report);
                    Ok(())
                }
                Ok(Err(e)) => {
                    *state = CommitState::Failed;
                    Err(e)
                }
                Err(_) => {
                    *state = CommitState::Failed;
                    Err(committer_gone())
                }
            },
        }
    }

    /// Waits for the commit and returns the batch's report.
    pub(crate) fn finish(self) -> Result<IngestReport, StorageError> {
        self.wait()?;
        match self.state.into_inner() {
            CommitState::Done(report) => Ok(report),
            _ => Err(committer_gone()),
        }
    }
}

fn committer_gone() -> StorageError {
    StorageError::Sled("an earlier batch of this import failed to commit".into())
}
