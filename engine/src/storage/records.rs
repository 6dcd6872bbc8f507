//! The stored forms of the engine's small records: audit entries (and erasure intents),
//! objections, destinations, API keys, saved segments and their daily counts. Each is its
//! own struct, kept apart from the types the API returns, and is encoded by the codec with a layout byte
//! (`codec::encode_record`), so a field renamed in an API type never changes the disk
//! format, and a changed stored form gets a new layout instead of a guess.
//!
//! Layouts (docs/format.md "Records"): every record below is layout 1, since format 4.
//! Formats 1-3 kept these records as JSON (segments: a hand-made binary header); the
//! migration to format 4 (`storage::migrate`) rewrites them.

use crate::base::error::StorageError;
use crate::base::time::Millis;
use crate::storage::codec;
use serde::{Deserialize, Serialize};

/// A record kind with its current layout.
pub(crate) trait StoredRecord: Serialize + serde::de::DeserializeOwned {
    /// What it is, for error messages.
    const WHAT: &'static str;
    /// The layout this build writes and reads.
    const LAYOUT: u8;

    /// Encodes the record with the codec's tag and the layout byte.
    fn encode(&self) -> Vec<u8> {
        codec::encode_record(Self::LAYOUT, self)
    }

    /// Decodes a record written by [`StoredRecord::encode`]; `key` names it in errors.
    fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, StorageError> {
        codec::decode_record(Self::WHAT, Self::LAYOUT, bytes).map_err(|e| e.at_key(key))
    }
}

/// An audit entry (sled `A` seq) or an erasure intent (sled `F` pid, `seq` 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AuditRecord {
    /// Sequence number (0 in an intent: assigned when it is appended).
    pub(crate) seq: u64,
    /// When (ms since the epoch).
    pub(crate) at: Millis,
    /// Who: `key:<id>`, `cli` or `embedded`.
    pub(crate) actor: String,
    /// What: `export`, `sync`, `forget`, ...
    pub(crate) action: String,
    /// Details as JSON text (ids, names and counts; never personal values).
    pub(crate) details: String,
}

impl StoredRecord for AuditRecord {
    const WHAT: &'static str = "audit entry";
    const LAYOUT: u8 = 1;
}

/// An objection (sled `O` id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ObjectionRecord {
    /// Its id.
    pub(crate) id: u64,
    /// When it was recorded (ms since the epoch).
    pub(crate) at: Millis,
    /// The channel it came through.
    pub(crate) channel: String,
    /// The profile it was found on, if any.
    pub(crate) profile: Option<u32>,
    /// SHA-256 digests put on the `objections` list.
    pub(crate) digests: Vec<[u8; 32]>,
}

impl StoredRecord for ObjectionRecord {
    const WHAT: &'static str = "objection";
    const LAYOUT: u8 = 1;
}

/// A destination (catalog `destination/NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DestinationRecord {
    /// Its name.
    pub(crate) name: String,
    /// The output format's name (`meta-api`, ...).
    pub(crate) format: String,
    /// The platform's name (`meta`, `google`).
    pub(crate) platform: String,
    /// The saved segment it syncs.
    pub(crate) segment: String,
    /// The consent policy expression.
    pub(crate) policy: String,
    /// Whether removals are never sent.
    pub(crate) additive_only: bool,
    /// When it was created (ms since the epoch).
    pub(crate) created_at: Millis,
    /// Where cidb itself sends the syncs (platforms.md), if anywhere.
    pub(crate) push: Option<PushRecord>,
}

/// A destination's push target, stored: the names of environment variables, never
/// their values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PushRecord {
    /// `meta` or `google`.
    pub(crate) platform: String,
    /// The API's base URL (`None`: the public endpoint).
    pub(crate) api_base: Option<String>,
    /// Meta's custom audience id.
    pub(crate) audience_id: Option<String>,
    /// Google's customer id.
    pub(crate) customer_id: Option<String>,
    /// Google's user list id.
    pub(crate) user_list_id: Option<String>,
    /// Google's manager (login) customer id.
    pub(crate) login_customer_id: Option<String>,
    /// The environment variable holding the access token.
    pub(crate) token_env: String,
    /// The environment variable holding Google's developer token.
    pub(crate) developer_token_env: Option<String>,
}

impl StoredRecord for DestinationRecord {
    const WHAT: &'static str = "destination";
    const LAYOUT: u8 = 1;
}

/// An API key of the server (catalog `apikey/ID`): never the key, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public id (also inside the key).
    pub id: String,
    /// Role name (`admin`, `ingest`, `analyst`).
    pub role: String,
    /// SHA-256 of the whole key.
    pub sha256: [u8; 32],
    /// Creation time (ms since the epoch).
    pub created_at: Millis,
}

impl StoredRecord for ApiKeyRecord {
    const WHAT: &'static str = "API key";
    const LAYOUT: u8 = 1;
}

/// A saved segment (catalog `segment/NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSegmentRecord {
    /// Its name.
    pub name: String,
    /// Its expression, as saved.
    pub expr: String,
    /// When it was first saved (ms since the epoch).
    pub created_at: Millis,
    /// When it was last replaced (ms since the epoch).
    pub updated_at: Millis,
}

impl StoredRecord for SavedSegmentRecord {
    const WHAT: &'static str = "saved segment";
    const LAYOUT: u8 = 1;
}

/// The daily member counts of a saved segment (catalog `segment-history/NAME`): one
/// point a day, the last [`SEGMENT_HISTORY_DAYS`] kept. Counts only, never members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHistoryRecord {
    /// The saved segment's name.
    pub name: String,
    /// `(day number, members)`, oldest first, one point a day.
    pub points: Vec<(i32, u64)>,
}

/// Days of history a saved segment keeps.
pub const SEGMENT_HISTORY_DAYS: usize = 400;

impl StoredRecord for SegmentHistoryRecord {
    const WHAT: &'static str = "segment history";
    const LAYOUT: u8 = 1;
}

/// Catalog key prefixes of the records kept in the catalog.
pub(crate) const DESTINATION_PREFIX: &str = "destination/";
/// See [`DESTINATION_PREFIX`].
pub(crate) const API_KEY_PREFIX: &str = "apikey/";
/// See [`DESTINATION_PREFIX`].
pub(crate) const SEGMENT_PREFIX: &str = "segment/";
/// See [`DESTINATION_PREFIX`].
pub(crate) const SEGMENT_HISTORY_PREFIX: &str = "segment-history/";
