//! The state the write path shares with readers, and the writer's own: indexes, links and
//! suppression membership behind the state lock; counters and dirty profiles behind the
//! writer lock; figures published for readers that never wait (ARCHITECTURE.md
//! "Concurrency and lock order").

use crate::identity::Links;
use crate::index::suppression::SuppressionLists;
use crate::index::Indexes;
use crate::model::Models;
use crate::storage::Counters;
use roaring::RoaringBitmap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLockReadGuard;

/// Counts that [`Engine::stats`] and [`Engine::profile_count`] read without taking the
/// writer lock (see the lock order in ARCHITECTURE.md).
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Live profiles.
    pub(crate) profiles: AtomicU64,
    /// Profiles changed since the last checkpoint.
    pub(crate) dirty: AtomicU64,
    /// The state's generation ([`State::generation`]), stored under the state's write lock
    /// before it is released, so a change whose call returned is always seen here.
    pub(crate) generation: AtomicU64,
}

impl Published {
    /// Publishes the writer's figures; call with the writer lock held, after the state
    /// readers see was updated.
    pub(crate) fn set(&self, profiles: u64, dirty: u64) {
        self.profiles.store(profiles, Ordering::Release);
        self.dirty.store(dirty, Ordering::Release);
    }
}

pub(crate) struct State {
    pub(crate) indexes: Indexes,
    /// Identifier → live profile.
    pub(crate) links: Links,
    /// Suppression lists and the profiles they match.
    pub(crate) suppression: SuppressionLists,
    /// Bumped by every change a reader can see (caches key on it), only through
    /// `Engine::bump_generation`, which publishes it.
    pub(crate) generation: u64,
    pub(crate) counters: Counters,
    /// Models and the percentiles of the live profiles.
    pub(crate) models: Models,
}

pub(crate) struct WriterState {
    pub(crate) counters: Counters,
    /// Profiles changed since the last checkpoint.
    pub(crate) dirty: RoaringBitmap,
}

/// A consistent read view of the indexes; writers wait while one is held, so keep it short.
pub struct Snapshot<'a> {
    pub(crate) guard: RwLockReadGuard<'a, State>,
}

impl Snapshot<'_> {
    /// The indexes.
    pub fn indexes(&self) -> &Indexes {
        &self.guard.indexes
    }

    /// A number that changes whenever the state a snapshot shows changes (within this
    /// process), so results derived from a snapshot can be cached against it.
    pub fn generation(&self) -> u64 {
        self.guard.generation
    }

    /// Profiles with an identifier on any suppression list (`None`), or on the list
    /// `name` (`None` when no such list exists).
    pub fn suppressed(&self, name: Option<&str>) -> Option<&RoaringBitmap> {
        self.guard.suppression.members(name)
    }

    /// The percentile (0-100) of every live profile in model `name` (`None` when there is
    /// no such model).
    pub fn model_scores(&self, name: &str) -> Option<std::sync::Arc<crate::model::ScoreIndex>> {
        self.guard.models.get(name).map(|m| m.scores.clone())
    }

    /// The model `name`.
    pub fn model(&self, name: &str) -> Option<std::sync::Arc<crate::model::Model>> {
        self.guard.models.get(name).map(|m| m.model.clone())
    }

    /// The names of every model.
    pub fn model_names(&self) -> Vec<String> {
        self.guard.models.iter().map(|(n, _)| n.clone()).collect()
    }
}
