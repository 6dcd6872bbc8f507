//! Identifier kinds: the identifier types that records.md names, each with the rules that
//! depend on it (how it is normalized, which forms platforms hash, how it is exported).
//! Any other `[a-z0-9_]{1,32}` type is a custom opaque id and has no kind.

/// An identifier type records.md names. Code that treats emails or phones specially
/// matches on this instead of on type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentifierKind {
    /// `email`: normalized like an address, aliases for Google's form.
    Email,
    /// `phone`: E.164, a digits-only alias for Meta's form.
    Phone,
    /// `crm_id`: the brand's own id (exported as `extern_id`).
    CrmId,
    /// `facebook_id`.
    FacebookId,
    /// `google_id`.
    GoogleId,
    /// `linkedin_id`.
    LinkedinId,
    /// `twitter_id`.
    TwitterId,
    /// `device_id`.
    DeviceId,
}

impl IdentifierKind {
    /// Every named kind, in the order records.md lists them.
    pub const ALL: [IdentifierKind; 8] = [
        IdentifierKind::Email,
        IdentifierKind::Phone,
        IdentifierKind::FacebookId,
        IdentifierKind::GoogleId,
        IdentifierKind::LinkedinId,
        IdentifierKind::TwitterId,
        IdentifierKind::CrmId,
        IdentifierKind::DeviceId,
    ];

    /// The type name in records, keys and JSON (`email`, `crm_id`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            IdentifierKind::Email => "email",
            IdentifierKind::Phone => "phone",
            IdentifierKind::CrmId => "crm_id",
            IdentifierKind::FacebookId => "facebook_id",
            IdentifierKind::GoogleId => "google_id",
            IdentifierKind::LinkedinId => "linkedin_id",
            IdentifierKind::TwitterId => "twitter_id",
            IdentifierKind::DeviceId => "device_id",
        }
    }

    /// The kind of the type named `type_name`; `None` for a custom opaque type.
    pub fn of(type_name: &str) -> Option<IdentifierKind> {
        IdentifierKind::ALL
            .into_iter()
            .find(|k| k.name() == type_name)
    }
}

impl std::fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_custom_types_have_no_kind() {
        for kind in IdentifierKind::ALL {
            assert_eq!(IdentifierKind::of(kind.name()), Some(kind));
        }
        assert_eq!(IdentifierKind::of("loyalty_id"), None);
        assert_eq!(IdentifierKind::of("Email"), None);
    }
}
