//! Scope policy: which fields an OAuth scope of a source covers. When a record carries
//! `scopes`, every identifier type and attribute that no granted scope covers is dropped
//! and reported. Consent and events are not profile fields of the source's API and are
//! never dropped. A source without a policy is not filtered.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Per source: scope → fields (identifier types and attribute names) it covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScopePolicies {
    /// source → scope → fields.
    pub sources: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl ScopePolicies {
    /// No policies at all: nothing is filtered.
    pub fn none() -> Self {
        ScopePolicies {
            sources: BTreeMap::new(),
        }
    }

    /// Replaces (or adds) the policy of one source.
    pub fn set_source(&mut self, source: &str, scopes: &[(&str, &[&str])]) {
        let map = scopes
            .iter()
            .map(|(scope, fields)| {
                (
                    scope.to_string(),
                    fields.iter().map(|f| f.to_string()).collect(),
                )
            })
            .collect();
        self.sources.insert(source.to_string(), map);
    }

    /// The fields covered by `granted` scopes of `source`, or `None` when the source has no
    /// policy.
    pub fn covered(&self, source: &str, granted: &[String]) -> Option<BTreeSet<&str>> {
        let policy = self.sources.get(source)?;
        Some(
            granted
                .iter()
                .filter_map(|s| policy.get(s))
                .flatten()
                .map(String::as_str)
                .collect(),
        )
    }
}

impl Default for ScopePolicies {
    /// Documented defaults for facebook, google, linkedin and twitter (see README).
    fn default() -> Self {
        let mut p = ScopePolicies::none();
        p.set_source(
            "facebook",
            &[
                (
                    "public_profile",
                    &["facebook_id", "first_name", "last_name", "name", "picture"],
                ),
                ("email", &["email"]),
                ("user_birthday", &["birth_date"]),
                ("user_gender", &["gender"]),
                ("user_likes", &["likes"]),
                ("user_location", &["city", "country"]),
                ("user_hometown", &["hometown"]),
                ("user_age_range", &["age_range"]),
                ("user_link", &["profile_url"]),
            ],
        );
        p.set_source(
            "google",
            &[
                ("openid", &["google_id"]),
                ("email", &["email"]),
                (
                    "profile",
                    &[
                        "google_id",
                        "first_name",
                        "last_name",
                        "name",
                        "picture",
                        "language",
                    ],
                ),
                ("user.birthday.read", &["birth_date"]),
                ("user.gender.read", &["gender"]),
                ("user.phonenumbers.read", &["phone"]),
                ("user.addresses.read", &["city", "country", "zip", "state"]),
            ],
        );
        p.set_source(
            "linkedin",
            &[
                ("openid", &["linkedin_id"]),
                (
                    "profile",
                    &[
                        "linkedin_id",
                        "first_name",
                        "last_name",
                        "name",
                        "picture",
                        "language",
                    ],
                ),
                ("email", &["email"]),
                (
                    "r_liteprofile",
                    &["linkedin_id", "first_name", "last_name", "picture"],
                ),
                ("r_emailaddress", &["email"]),
                (
                    "r_basicprofile",
                    &[
                        "linkedin_id",
                        "first_name",
                        "last_name",
                        "picture",
                        "work",
                        "education",
                    ],
                ),
            ],
        );
        p.set_source(
            "twitter",
            &[
                (
                    "users.read",
                    &[
                        "twitter_id",
                        "name",
                        "first_name",
                        "last_name",
                        "city",
                        "picture",
                        "profile_url",
                    ],
                ),
                ("users.email", &["email"]),
                ("like.read", &["likes"]),
                ("follows.read", &["follows"]),
            ],
        );
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facebook_likes_need_user_likes() {
        let p = ScopePolicies::default();
        let covered = p.covered("facebook", &["public_profile".into()]).unwrap();
        assert!(covered.contains("first_name"));
        assert!(!covered.contains("likes"));
        let covered = p
            .covered("facebook", &["user_likes".into(), "user_birthday".into()])
            .unwrap();
        assert!(covered.contains("likes") && covered.contains("birth_date"));
        assert!(p.covered("crm", &[]).is_none());
    }
}
