//! Destinations and incremental sync (export.md "Incremental sync").
//!
//! A destination names a platform format, a segment, a policy and a mode. Per destination
//! the engine keeps what was last acknowledged as sent: for each profile, the email and
//! phone hashes it was sent with (`sync/NAME.sent`). A sync compares the current export
//! with that state at the level of hashes, so a merge, a changed email, a withdrawal or
//! an erasure all come out right: `adds` are profiles with a hash not sent before,
//! `removes` are sent hashes that no current member holds. The new state is written as
//! `sync/NAME.pending` and becomes the sent state only when the caller acknowledges, so
//! an unacknowledged sync can be rerun and gives the same files.
//!
//! State file: magic `CIDBSYN1`, version u32 LE (2), generation u64 LE, count u64 LE,
//! then per profile: pid u32 LE, n u16 LE, n × (kind u8: 1 email 2 phone, digest 32);
//! then (version 2) the hashes of erased profiles still to be removed, sealed
//! (XChaCha20-Poly1305, key derived from the database secret, the destination name as
//! associated data): length u64 LE and the sealed bytes of (count u64 LE, count × (kind
//! u8, digest 32)); then CRC-32 of everything before it (u32 LE). Written to a
//! temp file, synced, renamed. Version 1 files (no erased section) are read too.
//!
//! Erasure drops the person from this state; the hashes they were sent with move to the
//! sealed erased section, so the next sync still removes them from the platform without
//! any plain-text trace of them on disk, and they are gone once that sync is
//! acknowledged.

use super::formats::Format;
use super::rows::{FieldStats, ProfileRow};
use crate::base::digest::parse_hex;
use crate::base::error::{Error, StorageError};
use crate::base::time::Millis;
use crate::input::normalize::platform::Platform;
use crate::storage::profile::ProfileId;
use crate::storage::records::{DestinationRecord, PushRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

pub(crate) const MAGIC: &[u8; 8] = b"CIDBSYN1";
pub(crate) const STATE_VERSION: u32 = 2;
/// Purpose of the key that seals the erased section.
pub(crate) const SEAL_PURPOSE: &str = "sync-erased-v1";

/// A named export target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    /// Its name (`[a-z0-9_-]{1,64}`).
    pub name: String,
    /// Output format (implies the platform; `hashes` uses `platform`).
    pub format: Format,
    /// Platform rules (for `hashes`; the format's own platform otherwise).
    pub platform: Platform,
    /// The segment: a saved segment's name or an expression (the query layer evaluates
    /// it).
    pub segment: String,
    /// The policy expression (default `consent("custom_audiences")`).
    pub policy: String,
    /// Never emit removes.
    pub additive_only: bool,
    /// When it was created (ms since the epoch).
    pub created_at: Millis,
    /// Where cidb itself sends the syncs (platforms.md); `None`: files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushTarget>,
}

/// A platform API that cidb pushes a destination's syncs to (platforms.md). Secrets are
/// never kept: only the names of the environment variables that hold them, read when a
/// push runs (by the server: the engine knows no HTTP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "lowercase")]
pub enum PushTarget {
    /// Meta Custom Audiences.
    Meta {
        /// The custom audience's id.
        audience_id: String,
        /// The environment variable holding the access token.
        token_env: String,
        /// The Graph API base URL (`None`: the public endpoint).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_base: Option<String>,
    },
    /// Google Ads Customer Match.
    Google {
        /// The customer id (digits).
        customer_id: String,
        /// The user list id.
        user_list_id: String,
        /// The manager account's customer id, sent as `login-customer-id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login_customer_id: Option<String>,
        /// The environment variable holding the OAuth access token.
        token_env: String,
        /// The environment variable holding the developer token.
        developer_token_env: String,
        /// The Google Ads API base URL (`None`: the public endpoint).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_base: Option<String>,
    },
}

impl PushTarget {
    /// The platform it sends to.
    pub fn platform(&self) -> Platform {
        match self {
            PushTarget::Meta { .. } => Platform::Meta,
            PushTarget::Google { .. } => Platform::Google,
        }
    }

    /// The format whose request bodies it sends.
    pub fn format(&self) -> Format {
        match self {
            PushTarget::Meta { .. } => Format::MetaApi,
            PushTarget::Google { .. } => Format::GoogleApi,
        }
    }

    /// Checks ids and environment variable names; the message names the bad option.
    pub fn check(&self, format: Format) -> Result<(), String> {
        if format != self.format() {
            return Err(format!(
                "--push {} needs --format {}",
                self.platform().name(),
                self.format().name()
            ));
        }
        let env_name = |flag: &str, v: &str| {
            let ok = !v.is_empty()
                && !v.starts_with(|c: char| c.is_ascii_digit())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{flag} must name an environment variable (A-Z, a-z, 0-9, _), not hold a secret"
                ))
            }
        };
        let id = |flag: &str, v: &str| {
            if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
                Ok(())
            } else {
                Err(format!("{flag} must be digits"))
            }
        };
        let base = |v: &Option<String>| match v {
            Some(b) if !(b.starts_with("http://") || b.starts_with("https://")) => {
                Err("--api-base must be an http:// or https:// URL".to_string())
            }
            _ => Ok(()),
        };
        match self {
            PushTarget::Meta {
                audience_id,
                token_env,
                api_base,
            } => {
                id("--audience-id", audience_id)?;
                env_name("--token-env", token_env)?;
                base(api_base)
            }
            PushTarget::Google {
                customer_id,
                user_list_id,
                login_customer_id,
                token_env,
                developer_token_env,
                api_base,
            } => {
                id("--customer-id", customer_id)?;
                id("--user-list-id", user_list_id)?;
                if let Some(l) = login_customer_id {
                    id("--login-customer-id", l)?;
                }
                env_name("--token-env", token_env)?;
                env_name("--developer-token-env", developer_token_env)?;
                base(api_base)
            }
        }
    }

    fn to_record(&self) -> PushRecord {
        match self.clone() {
            PushTarget::Meta {
                audience_id,
                token_env,
                api_base,
            } => PushRecord {
                platform: "meta".into(),
                api_base,
                audience_id: Some(audience_id),
                customer_id: None,
                user_list_id: None,
                login_customer_id: None,
                token_env,
                developer_token_env: None,
            },
            PushTarget::Google {
                customer_id,
                user_list_id,
                login_customer_id,
                token_env,
                developer_token_env,
                api_base,
            } => PushRecord {
                platform: "google".into(),
                api_base,
                audience_id: None,
                customer_id: Some(customer_id),
                user_list_id: Some(user_list_id),
                login_customer_id,
                token_env,
                developer_token_env: Some(developer_token_env),
            },
        }
    }

    fn from_record(r: PushRecord) -> Result<PushTarget, String> {
        let need = |v: Option<String>, what: &str| v.ok_or(format!("push target without {what}"));
        match r.platform.as_str() {
            "meta" => Ok(PushTarget::Meta {
                audience_id: need(r.audience_id, "audience_id")?,
                token_env: r.token_env,
                api_base: r.api_base,
            }),
            "google" => Ok(PushTarget::Google {
                customer_id: need(r.customer_id, "customer_id")?,
                user_list_id: need(r.user_list_id, "user_list_id")?,
                login_customer_id: r.login_customer_id,
                token_env: r.token_env,
                developer_token_env: need(r.developer_token_env, "developer_token_env")?,
                api_base: r.api_base,
            }),
            other => Err(format!("unknown push platform {other:?}")),
        }
    }
}

/// One push, as the audit trail records it (who: the current actor): counts and the
/// outcome, never a token.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PushAudit {
    /// The destination.
    pub destination: String,
    /// The platform (`meta`, `google`).
    pub platform: String,
    /// Profiles added.
    pub adds: u64,
    /// Hashes removed.
    pub removes: u64,
    /// Requests accepted.
    pub requests: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Whether the sync was acknowledged.
    pub acknowledged: bool,
    /// `ok` or `failed`.
    pub outcome: String,
    /// The platform's message when it failed.
    pub error: Option<String>,
}

/// What a sync wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// The destination.
    pub destination: String,
    /// Profiles exported now (after policy and suppression).
    pub members: u64,
    /// Members outside the policy.
    pub removed_by_policy: u64,
    /// Members on a suppression list.
    pub removed_by_suppression: u64,
    /// Members without a valid email or phone.
    pub skipped_no_identifier: u64,
    /// Profiles in `adds` (new, or with a hash not sent before).
    pub adds: u64,
    /// Rows in the adds file.
    pub add_rows: u64,
    /// Request bodies in the adds file.
    pub add_batches: u64,
    /// Hashes sent before that no current member holds.
    pub removes: u64,
    /// Rows in the removes file.
    pub remove_rows: u64,
    /// Request bodies in the removes file.
    pub remove_batches: u64,
    /// The adds file.
    pub adds_file: PathBuf,
    /// The removes file (written empty in additive-only mode).
    pub removes_file: PathBuf,
    /// The generation this sync will have once acknowledged.
    pub generation: u64,
    /// SHA-256 (hex) of the pending state this sync wrote: what
    /// [`crate::Engine::sync_ack_exactly`] checks (empty for a preview).
    pub pending_digest: String,
    /// Valid and invalid values per field.
    pub fields: FieldStats,
}

/// The result of acknowledging a sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AckReport {
    /// The destination.
    pub destination: String,
    /// The generation now recorded as sent.
    pub generation: u64,
    /// Profiles recorded as sent.
    pub profiles: u64,
}

/// Identifier hashes per profile, as sent (or about to be).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SentState {
    pub(crate) generation: u64,
    /// pid → sorted (kind, digest); kind 1 = email, 2 = phone.
    pub(crate) profiles: BTreeMap<ProfileId, Vec<(u8, [u8; 32])>>,
    /// Hashes of erased profiles, sent before, to remove at the next sync.
    pub(crate) erased: Vec<(u8, [u8; 32])>,
}

impl SentState {
    pub(crate) fn hashes(&self) -> HashSet<[u8; 32]> {
        self.profiles
            .values()
            .flat_map(|v| v.iter().map(|(_, d)| *d))
            .collect()
    }

    pub(crate) fn encode(&self, seal: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&(self.profiles.len() as u64).to_le_bytes());
        for (pid, ids) in &self.profiles {
            out.extend_from_slice(&pid.to_le_bytes());
            out.extend_from_slice(&(ids.len() as u16).to_le_bytes());
            for (kind, digest) in ids {
                out.push(*kind);
                out.extend_from_slice(digest);
            }
        }
        let mut erased = Vec::with_capacity(8 + self.erased.len() * 33);
        erased.extend_from_slice(&(self.erased.len() as u64).to_le_bytes());
        for (kind, digest) in &self.erased {
            erased.push(*kind);
            erased.extend_from_slice(digest);
        }
        let sealed = seal(&erased);
        out.extend_from_slice(&(sealed.len() as u64).to_le_bytes());
        out.extend_from_slice(&sealed);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(
        bytes: &[u8],
        open: impl Fn(&[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<SentState, String> {
        let body_len = bytes.len().checked_sub(4).ok_or("too short")?;
        let (body, crc) = bytes.split_at(body_len);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err("checksum mismatch".into());
        }
        let mut r = body;
        let mut take = |n: usize| -> Result<&[u8], String> {
            if r.len() < n {
                return Err("truncated".into());
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(8)? != MAGIC {
            return Err("bad magic".into());
        }
        let version = u32::from_le_bytes(take(4)?.try_into().expect("4"));
        if !(1..=STATE_VERSION).contains(&version) {
            return Err(format!("unknown version {version}"));
        }
        let generation = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let count = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let mut profiles = BTreeMap::new();
        for _ in 0..count {
            let pid = u32::from_le_bytes(take(4)?.try_into().expect("4"));
            let n = u16::from_le_bytes(take(2)?.try_into().expect("2"));
            let mut ids = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                let kind = take(1)?[0];
                ids.push((kind, take(32)?.try_into().expect("32")));
            }
            profiles.insert(pid, ids);
        }
        let mut erased = Vec::new();
        if version >= 2 {
            let len = u64::from_le_bytes(take(8)?.try_into().expect("8"));
            let plain = open(take(usize::try_from(len).map_err(|_| "too long")?)?)?;
            let (count, entries) = plain
                .split_first_chunk::<8>()
                .ok_or("erased section truncated")?;
            let count = u64::from_le_bytes(*count);
            if Some(entries.len() as u64) != count.checked_mul(33) {
                return Err("erased section length mismatch".into());
            }
            for e in entries.chunks_exact(33) {
                erased.push((e[0], e[1..].try_into().expect("32")));
            }
        }
        Ok(SentState {
            generation,
            profiles,
            erased,
        })
    }
}

pub(crate) fn row_digests(row: &ProfileRow) -> Vec<(u8, [u8; 32])> {
    let mut v: Vec<(u8, [u8; 32])> = row
        .emails
        .iter()
        .filter_map(|h| parse_hex(h).map(|d| (1, d)))
        .chain(
            row.phones
                .iter()
                .filter_map(|h| parse_hex(h).map(|d| (2, d))),
        )
        .collect();
    v.sort_unstable();
    v
}

/// Checks a destination name: `[a-z0-9_-]{1,64}`.
pub fn valid_destination_name(name: &str) -> bool {
    crate::base::names::valid_name(name)
}

/// A state file's path relative to the data directory (what errors show).
pub(crate) fn state_file_name(name: &str, pending: bool) -> String {
    format!("sync/{name}.{}", if pending { "pending" } else { "sent" })
}

/// Which destinations have an operation running (sync, ack, delete, replace, or an
/// erasure rewriting their state). Operations on one destination run one at a time;
/// a user's operation that finds it busy fails at once with [`Error::Busy`], an erasure
/// waits. Lock order: writer → destination → state (ARCHITECTURE.md).
#[derive(Debug, Default)]
pub(crate) struct DestinationLocks {
    held: std::sync::Mutex<HashSet<String>>,
    released: std::sync::Condvar,
}

/// One destination held; released on drop.
pub(crate) struct DestinationGuard<'a> {
    locks: &'a DestinationLocks,
    name: String,
}

impl DestinationLocks {
    /// Holds `name`, or says it is busy.
    pub(crate) fn try_hold(&self, name: &str) -> Result<DestinationGuard<'_>, Error> {
        let mut held = self.held.lock().expect("destination locks");
        if !held.insert(name.to_string()) {
            return Err(Error::Busy {
                what: "destination",
                name: name.to_string(),
            });
        }
        Ok(DestinationGuard {
            locks: self,
            name: name.to_string(),
        })
    }

    /// Holds `name`, waiting for the operation running on it.
    pub(crate) fn hold(&self, name: &str) -> DestinationGuard<'_> {
        let mut held = self.held.lock().expect("destination locks");
        while held.contains(name) {
            held = self.released.wait(held).expect("destination locks");
        }
        held.insert(name.to_string());
        DestinationGuard {
            locks: self,
            name: name.to_string(),
        }
    }
}

impl Drop for DestinationGuard<'_> {
    fn drop(&mut self) {
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.remove(&self.name);
        self.locks.released.notify_all();
    }
}

/// The file extension of a format's output.
pub(crate) fn extension(format: Format) -> &'static str {
    match format {
        Format::MetaApi | Format::GoogleApi => "jsonl",
        Format::MetaCsv | Format::GoogleCsv => "csv",
        Format::Hashes => "txt",
    }
}

impl Destination {
    /// The stored form.
    pub(crate) fn to_record(&self) -> DestinationRecord {
        DestinationRecord {
            name: self.name.clone(),
            format: self.format.name().to_string(),
            platform: self.platform.name().to_string(),
            segment: self.segment.clone(),
            policy: self.policy.clone(),
            additive_only: self.additive_only,
            created_at: self.created_at,
            push: self.push.as_ref().map(PushTarget::to_record),
        }
    }

    /// The destination a stored record holds.
    pub(crate) fn from_record(record: DestinationRecord) -> Result<Destination, StorageError> {
        let corrupted = |detail: String| StorageError::Corrupted {
            what: "destination",
            key: record.name.as_bytes().to_vec(),
            detail,
        };
        let push = match record.push.clone() {
            Some(p) => Some(PushTarget::from_record(p).map_err(corrupted)?),
            None => None,
        };
        Ok(Destination {
            push,
            format: record.format.parse().map_err(corrupted)?,
            platform: record.platform.parse().map_err(corrupted)?,
            name: record.name,
            segment: record.segment,
            policy: record.policy,
            additive_only: record.additive_only,
            created_at: record.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_detects_damage() {
        let mut s = SentState {
            generation: 3,
            ..Default::default()
        };
        s.erased.push((1, [9u8; 32]));
        s.profiles.insert(7, vec![(1, [1u8; 32]), (2, [2u8; 32])]);
        s.profiles.insert(9, vec![]);
        // A stand-in cipher: the test is about the layout.
        let seal = |p: &[u8]| p.iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>();
        let open = |p: &[u8]| Ok(p.iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>());
        let bytes = s.encode(seal);
        assert_eq!(SentState::decode(&bytes, open).unwrap(), s);
        assert!(
            !bytes.windows(32).any(|w| w == [9u8; 32]),
            "the erased section is sealed"
        );
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(SentState::decode(&bad, open).is_err());
        assert!(SentState::decode(&bytes[..10], open).is_err());
    }
}
