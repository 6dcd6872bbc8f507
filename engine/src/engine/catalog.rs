//! The catalog records that the layers above the engine keep in its database: saved
//! segments and their daily counts (the `query` crate and the server) and API keys (the
//! server). Each is a stored record with a layout byte (`storage::records`), never JSON
//! of an API type.

use crate::base::error::StorageError;
use crate::engine::Engine;
use crate::storage::records::{
    ApiKeyRecord, SavedSegmentRecord, SegmentHistoryRecord, StoredRecord, API_KEY_PREFIX,
    SEGMENT_HISTORY_PREFIX, SEGMENT_PREFIX,
};

impl Engine {
    /// The saved segment `name`.
    pub fn saved_segment(&self, name: &str) -> Result<Option<SavedSegmentRecord>, StorageError> {
        self.store.record(&format!("{SEGMENT_PREFIX}{name}"))
    }

    /// Every saved segment, by name.
    pub fn saved_segments(&self) -> Result<Vec<SavedSegmentRecord>, StorageError> {
        self.store.records(SEGMENT_PREFIX)
    }

    /// Saves (or replaces) a segment durably. Moves the generation on (expressions that
    /// refer to the segment may now mean something else: answers cached against the
    /// generation must not be served).
    pub fn put_saved_segment(&self, segment: &SavedSegmentRecord) -> Result<(), StorageError> {
        self.segments_changed(|| {
            self.store
                .put_record(&format!("{SEGMENT_PREFIX}{}", segment.name), Some(segment))
        })
    }

    /// Removes the saved segment `name` durably; `false` when there was none. Moves the
    /// generation on, like [`Engine::put_saved_segment`].
    pub fn delete_saved_segment(&self, name: &str) -> Result<bool, StorageError> {
        self.segments_changed(|| {
            self.delete_record::<SavedSegmentRecord>(&format!("{SEGMENT_PREFIX}{name}"))
        })
    }

    /// Runs a change of the saved segments under the writer lock, then moves the
    /// generation on (also after a failure: the change may have been made). A reader that
    /// planned with the old definition cached its answer against the old generation; one
    /// that sees the new generation reads the new definition (it is stored first).
    fn segments_changed<T>(
        &self,
        change: impl FnOnce() -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let _writer = self.writer.lock().expect("writer lock");
        let result = change();
        let mut state = self.state.write().expect("state lock");
        self.bump_generation(&mut state);
        result
    }

    /// The daily counts of the saved segment `name` (`None`: none recorded yet).
    pub fn segment_history(
        &self,
        name: &str,
    ) -> Result<Option<SegmentHistoryRecord>, StorageError> {
        self.store
            .record(&format!("{SEGMENT_HISTORY_PREFIX}{name}"))
    }

    /// Stores (or replaces) the daily counts of a saved segment durably.
    pub fn put_segment_history(&self, history: &SegmentHistoryRecord) -> Result<(), StorageError> {
        self.store.put_record(
            &format!("{SEGMENT_HISTORY_PREFIX}{}", history.name),
            Some(history),
        )
    }

    /// Removes the daily counts of the saved segment `name`; `false` when there were none.
    pub fn delete_segment_history(&self, name: &str) -> Result<bool, StorageError> {
        self.delete_record::<SegmentHistoryRecord>(&format!("{SEGMENT_HISTORY_PREFIX}{name}"))
    }

    /// The API key with id `id` (its SHA-256, never the key).
    pub fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StorageError> {
        self.store.record(&format!("{API_KEY_PREFIX}{id}"))
    }

    /// Every API key, by id.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StorageError> {
        self.store.records(API_KEY_PREFIX)
    }

    /// Stores an API key durably.
    pub fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StorageError> {
        self.store
            .put_record(&format!("{API_KEY_PREFIX}{}", key.id), Some(key))
    }

    /// Removes the API key `id` durably; `false` when there was none.
    pub fn delete_api_key(&self, id: &str) -> Result<bool, StorageError> {
        self.delete_record::<ApiKeyRecord>(&format!("{API_KEY_PREFIX}{id}"))
    }

    fn delete_record<R: StoredRecord>(&self, name: &str) -> Result<bool, StorageError> {
        if self.store.catalog_get(name)?.is_none() {
            return Ok(false);
        }
        self.store.put_record::<R>(name, None)?;
        Ok(true)
    }
}
