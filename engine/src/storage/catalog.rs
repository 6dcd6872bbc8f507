//! The catalog (`C` name): named records of the layers above storage (destinations, API
//! keys, saved segments), each a stored record (`records`).

use super::records::{self, AuditRecord, ObjectionRecord, StoredRecord};
use super::{keys, Store};
use crate::base::error::StorageError;

impl Store {
    /// Reads a catalog entry.
    pub(crate) fn catalog_get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(keys::catalog(name))?.map(|v| v.to_vec()))
    }

    /// Writes (or with `None` removes) a catalog entry durably.
    pub(crate) fn catalog_put(&self, name: &str, value: Option<&[u8]>) -> Result<(), StorageError> {
        match value {
            Some(v) => self.db.insert(keys::catalog(name), v)?,
            None => self.db.remove(keys::catalog(name))?,
        };
        self.db.flush()?;
        Ok(())
    }

    /// Every catalog entry.
    pub(crate) fn catalog_list(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::CATALOG]) {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k[1..]).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    /// Decodes every stored record (audit entries, erasure intents, objections and the
    /// catalog's destinations, API keys and saved segments); one problem per record that
    /// does not decode as its current layout.
    pub(crate) fn verify_records(&self) -> Result<Vec<String>, StorageError> {
        fn each<R: StoredRecord>(
            db: &sled::Db,
            prefix: &[u8],
            problems: &mut Vec<String>,
        ) -> Result<(), StorageError> {
            for item in db.scan_prefix(prefix) {
                let (k, v) = item?;
                if let Err(e) = R::decode(&k, &v) {
                    problems.push(e.to_string());
                }
            }
            Ok(())
        }
        let mut problems = Vec::new();
        each::<AuditRecord>(&self.db, &[keys::AUDIT], &mut problems)?;
        each::<AuditRecord>(&self.db, &[keys::ERASURE], &mut problems)?;
        each::<ObjectionRecord>(&self.db, &[keys::OBJECTION], &mut problems)?;
        let catalog = |prefix: &str| keys::catalog(prefix);
        each::<records::DestinationRecord>(
            &self.db,
            &catalog(records::DESTINATION_PREFIX),
            &mut problems,
        )?;
        each::<records::ApiKeyRecord>(&self.db, &catalog(records::API_KEY_PREFIX), &mut problems)?;
        each::<records::SavedSegmentRecord>(
            &self.db,
            &catalog(records::SEGMENT_PREFIX),
            &mut problems,
        )?;
        each::<records::SegmentHistoryRecord>(
            &self.db,
            &catalog(records::SEGMENT_HISTORY_PREFIX),
            &mut problems,
        )?;
        Ok(problems)
    }

    /// Reads the stored record `name` of the catalog.
    pub(crate) fn record<R: StoredRecord>(&self, name: &str) -> Result<Option<R>, StorageError> {
        let key = keys::catalog(name);
        self.db.get(&key)?.map(|v| R::decode(&key, &v)).transpose()
    }

    /// Writes (or with `None` removes) the stored record `name` of the catalog durably.
    pub(crate) fn put_record<R: StoredRecord>(
        &self,
        name: &str,
        record: Option<&R>,
    ) -> Result<(), StorageError> {
        self.catalog_put(name, record.map(R::encode).as_deref())
    }

    /// Every stored record of the catalog whose name starts with `prefix`, by name.
    pub(crate) fn records<R: StoredRecord>(&self, prefix: &str) -> Result<Vec<R>, StorageError> {
        let start = keys::catalog(prefix);
        let mut out = Vec::new();
        for item in self.db.scan_prefix(&start) {
            let (k, v) = item?;
            out.push(R::decode(&k, &v)?);
        }
        Ok(out)
    }
}
