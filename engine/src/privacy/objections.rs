//! Objections (GDPR Art. 21): a person objects to marketing use through some channel.
//! The objection is kept as hashed identifiers on the suppression list `objections` (so
//! it covers them even before they are in the database), with its time and channel,
//! without erasing anything; it can be listed and withdrawn.
//!
//! sled keys: `O` id:u64 BE → JSON of [`Objection`] (digests only, never values).

use crate::base::digest::{parse_hex, to_hex};
use crate::base::time::Millis;
use crate::storage::profile::ProfileId;
use crate::storage::records::ObjectionRecord;
use serde::{Deserialize, Serialize};

/// The suppression list objections go to.
pub const OBJECTIONS_LIST: &str = "objections";

/// One recorded objection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objection {
    /// Its id.
    pub id: u64,
    /// When it was recorded (ms since the epoch).
    pub at: Millis,
    /// The channel it came through (`email`, `web_form`, `call_center`, ...).
    pub channel: String,
    /// The profile it was found on, if any.
    pub profile: Option<ProfileId>,
    /// SHA-256 digests (hex) of the identifier forms it covers.
    pub digests: Vec<String>,
}

impl Objection {
    /// The stored form.
    pub(crate) fn to_record(&self) -> ObjectionRecord {
        ObjectionRecord {
            id: self.id,
            at: self.at,
            channel: self.channel.clone(),
            profile: self.profile,
            digests: self.digests.iter().filter_map(|d| parse_hex(d)).collect(),
        }
    }

    /// The objection a stored record holds.
    pub(crate) fn from_record(record: ObjectionRecord) -> Objection {
        Objection {
            id: record.id,
            at: record.at,
            channel: record.channel,
            profile: record.profile,
            digests: record.digests.iter().map(to_hex).collect(),
        }
    }
}
