//! API keys as shown: `cidb keys create|list|revoke --json`. The stored form
//! (`crate::keys::StoredKey`) is not part of the API.

use crate::keys;
use serde::Serialize;

/// A key's role, as shown (`admin`, `ingest`, `analyst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Only `POST /v1/records`.
    Ingest,
    /// Counts, samples, breakdowns, saved segments, hashed exports.
    Analyst,
}

impl From<keys::Role> for Role {
    fn from(r: keys::Role) -> Self {
        match r {
            keys::Role::Admin => Role::Admin,
            keys::Role::Ingest => Role::Ingest,
            keys::Role::Analyst => Role::Analyst,
        }
    }
}

/// A freshly created key: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewKey {
    /// The key to put in `Authorization: Bearer`.
    pub key: String,
    /// Its id.
    pub id: String,
    /// Its role.
    pub role: Role,
}

impl From<&keys::NewKey> for NewKey {
    fn from(k: &keys::NewKey) -> Self {
        let keys::NewKey { key, id, role } = k;
        NewKey {
            key: key.clone(),
            id: id.clone(),
            role: Role::from(*role),
        }
    }
}

/// `cidb keys list --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyList {
    /// Every key (never the key itself).
    pub keys: Vec<KeyInfo>,
}

/// A stored key as listed (fields in alphabetical order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    /// Created (RFC 3339).
    pub created_at: String,
    /// Its id.
    pub id: String,
    /// Its role.
    pub role: Role,
}

impl From<&keys::StoredKey> for KeyInfo {
    fn from(k: &keys::StoredKey) -> Self {
        // The digest is never shown.
        let keys::StoredKey {
            id,
            role,
            sha256: _,
            created_at,
        } = k;
        KeyInfo {
            created_at: engine::format_rfc3339(*created_at),
            id: id.clone(),
            role: Role::from(*role),
        }
    }
}

/// `{"revoked": id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revoked {
    /// The key's id.
    pub revoked: String,
}

super::answers!(NewKey, KeyList, Revoked);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_has_the_readme_fields_and_no_digest() {
        // README: `cidb keys create --json` → {"key", "id", "role"}.
        let new = keys::NewKey {
            key: "cidb_0a_ff".into(),
            id: "0a".into(),
            role: keys::Role::Analyst,
        };
        assert_eq!(
            serde_json::to_string(&NewKey::from(&new)).unwrap(),
            r#"{"key":"cidb_0a_ff","id":"0a","role":"analyst"}"#
        );
        let stored = keys::StoredKey {
            id: "0a".into(),
            role: keys::Role::Ingest,
            sha256: "secret digest".into(),
            created_at: 0,
        };
        let listed = serde_json::to_string(&KeyList {
            keys: vec![KeyInfo::from(&stored)],
        })
        .unwrap();
        assert_eq!(
            listed,
            r#"{"keys":[{"created_at":"1970-01-01T00:00:00Z","id":"0a","role":"ingest"}]}"#
        );
    }
}
