//! Erasure (the right to be forgotten): a person's unified profile, identifiers,
//! attributes, events, consent, provenance, merge log, index entries, identifier links and
//! export snapshot entries go, and none of their values stays readable in any file of the
//! data directory:
//!
//! - sled values were sealed with the profile's key; the key's slot in `keys.bin` is
//!   overwritten with zeros, so every version still in sled's log is unreadable;
//! - identifier links and index value dictionaries exist only in memory and in
//!   `index.ckpt`, which is rewritten at once without them;
//! - sync state files are rewritten without the profile (its sent hashes wait, as hashes,
//!   for the next sync to remove them from the platforms).
//!
//! By default the person's identifiers are added, SHA-256 hashed, to the suppression list
//! `erased`, so a stale CRM file cannot bring them back into an audience.

use crate::storage::profile::ProfileId;
use serde::Serialize;

/// The suppression list erasure adds to by default.
pub const ERASED_LIST: &str = "erased";

/// How to erase.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ForgetOptions {
    /// Add the person's hashed identifiers to a suppression list (default: `erased`);
    /// `None` to not suppress them.
    pub suppress_into: Option<String>,
}

impl Default for ForgetOptions {
    fn default() -> Self {
        ForgetOptions {
            suppress_into: Some(ERASED_LIST.to_string()),
        }
    }
}

impl ForgetOptions {
    /// Does not add the identifiers to any suppression list.
    pub fn without_suppression(mut self) -> Self {
        self.suppress_into = None;
        self
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ForgetReport {
    /// Whether a live profile was found (nothing is done otherwise).
    pub found: bool,
    /// The erased profile's id.
    pub profile: Option<ProfileId>,
    /// Identifiers removed.
    pub identifiers: u64,
    /// Events removed.
    pub events: u64,
    /// Hashed identifiers added to the suppression list.
    pub suppressed: u64,
    /// The suppression list they went to.
    pub suppression_list: Option<String>,
    /// Destinations whose sync state held the profile.
    pub destinations: u64,
}
