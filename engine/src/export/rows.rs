//! One profile → one hashed audience row for a platform: every field normalized by the
//! platform's rules (`normalize`), hashed where the platform wants hashes, and counted
//! (valid, invalid, missing) for the report.

use crate::base::digest::sha256_hex;
use crate::base::kind::IdentifierKind;
use crate::input::normalize::platform::{normalize, Field, Normalized, Platform};
use crate::storage::profile::ProfileId;
use crate::storage::view::{ProfileView, ScalarView, ViewPart};
use serde::Serialize;
use std::collections::BTreeMap;

/// A profile's exportable values for one platform: hashes (64 lower-case hex) or, for
/// the platform's plain-text fields, normalized text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileRow {
    /// The profile.
    pub pid: ProfileId,
    /// Email hashes, most recently observed first.
    pub emails: Vec<String>,
    /// Phone hashes, most recently observed first.
    pub phones: Vec<String>,
    /// First name hash.
    pub first_name: Option<String>,
    /// Last name hash.
    pub last_name: Option<String>,
    /// Gender hash (Meta).
    pub gender: Option<String>,
    /// Birth year, month and day hashes (Meta).
    pub dob: Option<[String; 3]>,
    /// City hash (Meta).
    pub city: Option<String>,
    /// State hash (Meta).
    pub state: Option<String>,
    /// Zip: hash (Meta) or national format (Google).
    pub zip: Option<String>,
    /// Country: hash (Meta) or upper-case alpha-2 (Google).
    pub country: Option<String>,
    /// External id, never hashed.
    pub external_id: Option<String>,
}

impl ProfileRow {
    /// Whether the row carries a match key (an email or a phone).
    pub fn has_identifier(&self) -> bool {
        !self.emails.is_empty() || !self.phones.is_empty()
    }

    /// The identifier hashes of the row (emails, then phones).
    pub fn identifier_hashes(&self) -> impl Iterator<Item = &String> {
        self.emails.iter().chain(&self.phones)
    }
}

/// Valid, invalid and missing values of one field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FieldCounts {
    /// Values normalized and sent.
    pub valid: u64,
    /// Values present but not acceptable (never sent).
    pub invalid: u64,
}

/// Per-field counts, by field name.
pub type FieldStats = BTreeMap<&'static str, FieldCounts>;

/// One row's counts per field (in `Field::ALL` order), kept on the stack while a row is
/// built and added to a [`FieldStats`] afterwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RowCounts(pub(crate) [(u8, u8); 11]);

impl RowCounts {
    fn count(&mut self, field: Field, valid: bool) {
        let i = Field::ALL
            .iter()
            .position(|f| *f == field)
            .expect("every field is in Field::ALL");
        let c = &mut self.0[i];
        if valid {
            c.0 = c.0.saturating_add(1);
        } else {
            c.1 = c.1.saturating_add(1);
        }
    }

    /// Adds per-field totals (`Field::ALL` order) to `stats`.
    pub(crate) fn add_totals(totals: &[(u64, u64); 11], stats: &mut FieldStats) {
        for (i, field) in Field::ALL.iter().enumerate() {
            let (valid, invalid) = totals[i];
            if valid > 0 || invalid > 0 {
                let c = stats.entry(field.name()).or_default();
                c.valid += valid;
                c.invalid += invalid;
            }
        }
    }

    /// Per-field totals of no rows (for [`RowCounts::add_into`]).
    pub(crate) const TOTALS_ZERO: [(u64, u64); 11] = [(0, 0); 11];

    /// Adds these counts to per-field totals (`Field::ALL` order), which
    /// [`RowCounts::add_totals`] turns into [`FieldStats`] once for many rows.
    pub(crate) fn add_into(&self, totals: &mut [(u64, u64); 11]) {
        for (total, (valid, invalid)) in totals.iter_mut().zip(self.0) {
            total.0 += u64::from(valid);
            total.1 += u64::from(invalid);
        }
    }
}

/// Builds rows for one platform.
pub(crate) struct RowBuilder<'a> {
    pub(crate) platform: Platform,
    pub(crate) default_region: Option<&'a str>,
    pub(crate) today: i32,
    /// Only the email and phone hashes (the `hashes` format writes nothing else): the
    /// other fields are neither normalized nor hashed nor counted.
    pub(crate) identifiers_only: bool,
}

impl RowBuilder<'_> {
    /// The row of `profile`, counting every value into `stats`.
    pub(crate) fn row(&self, profile: &ProfileView<'_>, stats: &mut RowCounts) -> ProfileRow {
        // The person's region: phones not stored in E.164 and the address fields need
        // it; most rows (emails, stored phones) never do.
        let region_cell = std::cell::OnceCell::new();
        let region = || {
            *region_cell.get_or_init(|| {
                text_attr(profile, "country")
                    .and_then(crate::input::normalize::country)
                    .or(self.default_region)
            })
        };
        let mut row = ProfileRow {
            pid: profile.id,
            ..ProfileRow::default()
        };
        let mut ids: smallvec::SmallVec<[_; 4]> = profile.identifiers.iter().collect();
        // Most recently observed first; ties keep the order of attachment (a stable sort).
        ids.sort_by_key(|id| std::cmp::Reverse(id.observed_at));
        for id in ids {
            let (field, out) = match IdentifierKind::of(id.kind) {
                Some(IdentifierKind::Email) => (Field::Email, &mut row.emails),
                Some(IdentifierKind::Phone) => (Field::Phone, &mut row.phones),
                Some(IdentifierKind::CrmId)
                    if row.external_id.is_none() && !self.identifiers_only =>
                {
                    row.external_id = self.value(Field::ExternalId, id.value, region(), stats);
                    continue;
                }
                _ => continue,
            };
            let value = if field == Field::Phone {
                self.stored_phone(id.value, &region, stats)
            } else {
                // Email rules take no region.
                self.value(field, id.value, None, stats)
            };
            if let Some(h) = value {
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
        if self.identifiers_only {
            return row;
        }
        let attr = |name| text_attr(profile, name);
        let region = region();
        if self.platform == Platform::Meta {
            row.gender = attr("gender").and_then(|v| self.value(Field::Gender, v, region, stats));
            row.city = attr("city").and_then(|v| self.value(Field::City, v, region, stats));
            row.state = attr("state").and_then(|v| self.value(Field::State, v, region, stats));
            row.dob = birth_date(profile).and_then(|v| self.dob(&v, region, stats));
        }
        row.first_name =
            attr("first_name").and_then(|v| self.value(Field::FirstName, v, region, stats));
        row.last_name =
            attr("last_name").and_then(|v| self.value(Field::LastName, v, region, stats));
        row.zip = attr("zip").and_then(|v| self.value(Field::Zip, v, region, stats));
        row.country = attr("country").and_then(|v| self.value(Field::Country, v, region, stats));
        row
    }

    /// What a row reads of each profile: a `hashes` row reads the identifiers alone,
    /// unless a phone is not stored in E.164 (its rules then take the person's country).
    pub(crate) fn view_part(&self) -> ViewPart {
        if self.identifiers_only {
            ViewPart::Identifiers {
                needs_scalars: |id| {
                    IdentifierKind::of(id.kind) == Some(IdentifierKind::Phone)
                        && stored_e164_digits(id.value).is_none()
                },
            }
        } else {
            ViewPart::Whole
        }
    }

    /// A stored phone is already a validated E.164 number (ingest normalized it with the
    /// same library), so only the platform's form is left to make; anything else takes
    /// the full rules.
    fn stored_phone<'r>(
        &self,
        e164: &str,
        region: &dyn Fn() -> Option<&'r str>,
        stats: &mut RowCounts,
    ) -> Option<String> {
        let Some(digits) = stored_e164_digits(e164) else {
            return self.value(Field::Phone, e164, region(), stats);
        };
        stats.count(Field::Phone, true);
        Some(match self.platform {
            Platform::Meta => sha256_hex(digits),
            Platform::Google => sha256_hex(e164),
        })
    }

    /// Normalizes (and where the platform wants it, hashes) one value.
    fn value(
        &self,
        field: Field,
        raw: &str,
        region: Option<&str>,
        stats: &mut RowCounts,
    ) -> Option<String> {
        let (valid, value) = match normalize(field, self.platform, raw, region, self.today) {
            Normalized::Value(v) if field.hashed_for(self.platform) => (true, sha256_hex(&v)),
            Normalized::Value(v) | Normalized::Prehashed(v) => (true, v),
            Normalized::Invalid(_) | Normalized::Date(_) => (false, String::new()),
            Normalized::Missing => return None,
        };
        stats.count(field, valid);
        valid.then_some(value)
    }

    fn dob(&self, raw: &str, region: Option<&str>, stats: &mut RowCounts) -> Option<[String; 3]> {
        let result = normalize(Field::BirthDate, self.platform, raw, region, self.today);
        if result == Normalized::Missing {
            return None;
        }
        match result {
            Normalized::Date(d) => {
                stats.count(Field::BirthDate, true);
                // A year alone leaves month and day empty (only `DOBY` is sent).
                Some([
                    sha256_hex(&d.doby()),
                    d.dobm().map(|m| sha256_hex(&m)).unwrap_or_default(),
                    d.dobd().map(|d| sha256_hex(&d)).unwrap_or_default(),
                ])
            }
            _ => {
                stats.count(Field::BirthDate, false);
                None
            }
        }
    }
}

impl RowBuilder<'_> {
    /// Whether the report counts `field` (a name of [`Field::name`]).
    pub(crate) fn counts_field(&self, field: &str) -> bool {
        !self.identifiers_only || field == Field::Email.name() || field == Field::Phone.name()
    }
}

/// The digits of a phone stored as E.164 (`+` and 8 to 15 digits), which export as
/// they are.
fn stored_e164_digits(phone: &str) -> Option<&str> {
    phone
        .strip_prefix('+')
        .filter(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A scalar text attribute.
fn text_attr<'p>(profile: &ProfileView<'p>, name: &str) -> Option<&'p str> {
    match profile.scalar(name) {
        Some(ScalarView::Text(t)) => Some(t),
        _ => None,
    }
}

/// The birth date as `YYYY-MM-DD` (stored as a date, or as text when it was not one).
fn birth_date(profile: &ProfileView<'_>) -> Option<String> {
    match profile.scalar("birth_date") {
        Some(ScalarView::Date(day)) => Some(crate::base::time::format_date(day)),
        Some(ScalarView::Text(t)) => Some(t.to_string()),
        _ => None,
    }
}
