//! API keys: `cidb_<id>_<secret>`, shown once when created. The database keeps only the
//! SHA-256 of the whole key, with its id and role, as a stored record of the catalog
//! (`engine::ApiKeyRecord`, key `apikey/<id>`).

use anyhow::{bail, Context};
use engine::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::str::FromStr;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Only `POST /v1/records`.
    Ingest,
    /// Counts, samples of ids, breakdowns, explain, saved segments, hashed exports; never
    /// raw emails, phones or names.
    Analyst,
}

impl Role {
    /// Its name, as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::Analyst => "analyst",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "ingest" => Ok(Role::Ingest),
            "analyst" => Ok(Role::Analyst),
            other => Err(format!(
                "unknown role {other:?} (expected admin, ingest or analyst)"
            )),
        }
    }
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Public id (also inside the key).
    pub id: String,
    /// Role.
    pub role: Role,
    /// Hex SHA-256 of the whole key.
    pub sha256: String,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
}

impl StoredKey {
    fn to_record(&self) -> engine::ApiKeyRecord {
        engine::ApiKeyRecord {
            id: self.id.clone(),
            role: self.role.name().to_string(),
            sha256: engine::export::hash::parse_hex(&self.sha256)
                .expect("created from a SHA-256 hex digest"),
            created_at: self.created_at,
        }
    }

    fn from_record(record: engine::ApiKeyRecord) -> anyhow::Result<StoredKey> {
        let role = record
            .role
            .parse()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("stored API key {:?}", record.id))?;
        Ok(StoredKey {
            id: record.id,
            role,
            sha256: engine::export::hash::to_hex(&record.sha256),
            created_at: record.created_at,
        })
    }
}

/// A freshly created key: the only time the secret is known (shown as
/// `api::keys::NewKey`).
#[derive(Debug)]
pub struct NewKey {
    /// The key to put in `Authorization: Bearer`.
    pub key: String,
    /// Its id.
    pub id: String,
    /// Its role.
    pub role: Role,
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a key with `role`.
pub fn create(engine: &Engine, role: Role) -> anyhow::Result<NewKey> {
    let id = random_hex(6);
    let key = format!("cidb_{id}_{}", random_hex(24));
    let stored = StoredKey {
        id: id.clone(),
        role,
        sha256: sha256_hex(&key),
        created_at: engine::now_millis(),
    };
    engine.put_api_key(&stored.to_record())?;
    Ok(NewKey { key, id, role })
}

/// Every stored key.
pub fn list(engine: &Engine) -> anyhow::Result<Vec<StoredKey>> {
    engine
        .api_keys()?
        .into_iter()
        .map(StoredKey::from_record)
        .collect()
}

/// Revokes a key by id.
pub fn revoke(engine: &Engine, id: &str) -> anyhow::Result<()> {
    if !engine.delete_api_key(id)? {
        bail!("no API key with id {id:?}");
    }
    Ok(())
}

/// The stored key a presented key proves, if any.
pub fn verify(engine: &Engine, presented: &str) -> anyhow::Result<Option<StoredKey>> {
    let Some(id) = presented
        .strip_prefix("cidb_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
    else {
        return Ok(None);
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(record) = engine.api_key(id)? else {
        return Ok(None);
    };
    let stored = StoredKey::from_record(record)?;
    // Both sides are SHA-256 of high-entropy secrets: comparing them leaks nothing useful.
    Ok((stored.sha256 == sha256_hex(presented)).then_some(stored))
}
