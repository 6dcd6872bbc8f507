//! Identity rules (records.md "Identity rules"): blocked values, per-type limits and
//! priority. The write path applies them when it resolves records to profiles.

use crate::base::kind::IdentifierKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Guards against over-merging: which values never link, how many values of a type one
/// profile may hold, and which identifier decides when a merge is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdentityRules {
    /// Values (compared trimmed and lower-cased) that never link anything.
    pub blocked_values: Vec<String>,
    /// Also block values made only of zeros and dashes (`^[0-]*$`).
    pub block_zeros_and_dashes: bool,
    /// Also block phones and ids made of one repeated digit.
    pub block_repeated_digit: bool,
    /// At most this many distinct values of a type per profile; types not listed are
    /// unlimited.
    pub limits: BTreeMap<String, usize>,
    /// Identifier types from highest to lowest priority; unlisted types rank last.
    pub priority: Vec<String>,
}

impl Default for IdentityRules {
    fn default() -> Self {
        let limits = [
            (IdentifierKind::CrmId, 1),
            (IdentifierKind::FacebookId, 1),
            (IdentifierKind::GoogleId, 1),
            (IdentifierKind::LinkedinId, 1),
            (IdentifierKind::TwitterId, 1),
            (IdentifierKind::Email, 5),
            (IdentifierKind::Phone, 5),
            (IdentifierKind::DeviceId, 10),
        ];
        IdentityRules {
            blocked_values: [
                "",
                "null",
                "none",
                "undefined",
                "unknown",
                "anonymous",
                "n/a",
                "-1",
            ]
            .map(String::from)
            .to_vec(),
            block_zeros_and_dashes: true,
            block_repeated_digit: true,
            limits: limits.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            priority: [
                IdentifierKind::CrmId,
                IdentifierKind::Email,
                IdentifierKind::Phone,
                IdentifierKind::FacebookId,
                IdentifierKind::GoogleId,
                IdentifierKind::LinkedinId,
                IdentifierKind::TwitterId,
                IdentifierKind::DeviceId,
            ]
            .map(|k| k.name().to_string())
            .to_vec(),
        }
    }
}

impl IdentityRules {
    /// Whether a raw identifier value is blocked (before normalization: `raw` trimmed).
    pub fn is_blocked(&self, kind: &str, raw: &str) -> bool {
        let v = raw.trim().to_lowercase();
        if self.blocked_values.contains(&v) {
            return true;
        }
        if self.block_zeros_and_dashes && v.bytes().all(|b| b == b'0' || b == b'-') {
            return true;
        }
        if self.block_repeated_digit && IdentifierKind::of(kind) != Some(IdentifierKind::Email) {
            let digits: Vec<u8> = v.bytes().filter(u8::is_ascii_digit).collect();
            let only_digits_and_format = v
                .bytes()
                .all(|b| b.is_ascii_digit() || b" +-().".contains(&b));
            if only_digits_and_format && digits.len() > 1 && digits.iter().all(|d| *d == digits[0])
            {
                return true;
            }
        }
        false
    }

    /// The most values of `kind` one profile may hold.
    pub fn limit(&self, kind: &str) -> usize {
        self.limits.get(kind).copied().unwrap_or(usize::MAX)
    }

    /// Rank of `kind` (0 is highest priority).
    pub fn rank(&self, kind: &str) -> usize {
        self.priority
            .iter()
            .position(|p| p == kind)
            .unwrap_or(self.priority.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_values() {
        let r = IdentityRules::default();
        for v in ["", " NULL ", "n/a", "0000", "--", "0-0", "-1", "Unknown"] {
            assert!(r.is_blocked("email", v), "{v}");
        }
        assert!(r.is_blocked("phone", "+1 111 111 1111"));
        assert!(r.is_blocked("phone", "1111111"));
        assert!(r.is_blocked("crm_id", "999999"));
        assert!(!r.is_blocked("crm_id", "C-1001"));
        assert!(!r.is_blocked("email", "a@b.co"));
        assert!(!r.is_blocked("phone", "+31612345678"));
    }

    #[test]
    fn limits_and_rank() {
        let r = IdentityRules::default();
        assert_eq!(r.limit("crm_id"), 1);
        assert_eq!(r.limit("loyalty_card"), usize::MAX);
        assert!(r.rank("crm_id") < r.rank("email"));
        assert!(r.rank("device_id") < r.rank("loyalty_card"));
    }
}
