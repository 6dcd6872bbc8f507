//! The export row cache: each exported profile's row, packed (digests as 32 bytes, not
//! 64 hex characters), per platform, kept in memory until the profile changes. The
//! `hashes` format builds rows of email and phone hashes only; those are kept in tables
//! of their own, and a `hashes` export also uses the whole rows of other formats. Reading,
//! decrypting, decoding, normalizing and hashing a profile costs about 16 µs; unpacking a
//! cached row about 1 µs, so repeated exports and syncs of a large, mostly unchanged
//! audience are an order of magnitude faster.
//!
//! The writer invalidates every profile whose slot a batch or an erasure rewrites, under
//! the same lock that publishes the change, so a cached row is never older than the
//! snapshot the export selected its members from. (A record that only added events does
//! not rewrite its profile's slot: a row holds no events nor counts.) Rows depend on the current day (birth dates in the future
//! are invalid), so the cache starts over when the day changes. Memory: about 300–400
//! bytes per cached profile per platform; `Config::with_export_cache(false)` turns it off.

use super::rows::{FieldStats, ProfileRow, RowCounts};
use crate::base::digest::{parse_hex, to_hex};
use crate::input::normalize::platform::Platform;
use crate::storage::profile::ProfileId;
use std::collections::HashMap;
use std::sync::RwLock;

/// The optional fields of a row, in packing order.
const OPTIONAL: usize = 11;

/// A row with its digests as bytes.
pub(crate) struct PackedRow {
    emails: u8,
    phones: u8,
    /// Bit i: optional field i present.
    present: u16,
    /// Bit i: optional field i is a digest (else plain text).
    hashed: u16,
    digests: Box<[[u8; 32]]>,
    plain: Box<[Box<str>]>,
    /// The counts the row contributed.
    stats: RowCounts,
}

fn is_lower_hex_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl PackedRow {
    fn optional(row: &ProfileRow) -> [Option<&str>; OPTIONAL] {
        let dob = |i: usize| row.dob.as_ref().map(|d| d[i].as_str());
        [
            row.first_name.as_deref(),
            row.last_name.as_deref(),
            row.gender.as_deref(),
            dob(0),
            dob(1),
            dob(2),
            row.city.as_deref(),
            row.state.as_deref(),
            row.zip.as_deref(),
            row.country.as_deref(),
            row.external_id.as_deref(),
        ]
    }

    /// Packs a row and the per-field counts it contributed.
    pub(crate) fn pack(row: &ProfileRow, stats: &RowCounts) -> Option<PackedRow> {
        let mut digests = Vec::new();
        for h in row.emails.iter().chain(&row.phones) {
            digests.push(parse_hex(h).filter(|_| is_lower_hex_digest(h))?);
        }
        let (mut present, mut hashed, mut plain) = (0u16, 0u16, Vec::new());
        for (i, value) in Self::optional(row).into_iter().enumerate() {
            let Some(v) = value else { continue };
            present |= 1 << i;
            if is_lower_hex_digest(v) {
                hashed |= 1 << i;
                digests.push(parse_hex(v)?);
            } else {
                plain.push(Box::from(v));
            }
        }
        Some(PackedRow {
            emails: u8::try_from(row.emails.len()).ok()?,
            phones: u8::try_from(row.phones.len()).ok()?,
            present,
            hashed,
            digests: digests.into_boxed_slice(),
            plain: plain.into_boxed_slice(),
            stats: *stats,
        })
    }

    /// The row again, adding its counts to `totals` (per field, `Field::ALL` order).
    pub(crate) fn unpack(&self, pid: ProfileId, totals: &mut [(u64, u64); 11]) -> ProfileRow {
        let (e, p) = (usize::from(self.emails), usize::from(self.phones));
        let mut row = ProfileRow {
            pid,
            emails: self.digests[..e].iter().map(to_hex).collect(),
            phones: self.digests[e..e + p].iter().map(to_hex).collect(),
            ..ProfileRow::default()
        };
        let mut next_digest = e + p;
        let mut next_plain = 0;
        let mut values: [Option<String>; OPTIONAL] = Default::default();
        for (i, slot) in values.iter_mut().enumerate() {
            if self.present & (1 << i) == 0 {
                continue;
            }
            *slot = Some(if self.hashed & (1 << i) != 0 {
                next_digest += 1;
                to_hex(&self.digests[next_digest - 1])
            } else {
                next_plain += 1;
                self.plain[next_plain - 1].to_string()
            });
        }
        let [first_name, last_name, gender, doby, dobm, dobd, city, state, zip, country, external_id] =
            values;
        row.first_name = first_name;
        row.last_name = last_name;
        row.gender = gender;
        row.dob = match (doby, dobm, dobd) {
            (Some(y), Some(m), Some(d)) => Some([y, m, d]),
            _ => None,
        };
        row.city = city;
        row.state = state;
        row.zip = zip;
        row.country = country;
        row.external_id = external_id;
        for (total, (valid, invalid)) in totals.iter_mut().zip(self.stats.0) {
            total.0 += u64::from(valid);
            total.1 += u64::from(invalid);
        }
        row
    }
}

#[derive(Default)]
struct Tables {
    day: i32,
    /// Bumped by every invalidation: rows built from profiles read before it are not
    /// cached (they may predate the change).
    epoch: u64,
    meta: HashMap<ProfileId, PackedRow>,
    google: HashMap<ProfileId, PackedRow>,
    /// Rows of email and phone hashes only (the `hashes` format's), which the other
    /// formats cannot use; a `hashes` export also uses the whole rows above.
    meta_identifiers: HashMap<ProfileId, PackedRow>,
    google_identifiers: HashMap<ProfileId, PackedRow>,
}

impl Tables {
    fn table(&self, platform: Platform, identifiers_only: bool) -> &HashMap<ProfileId, PackedRow> {
        match (platform, identifiers_only) {
            (Platform::Meta, false) => &self.meta,
            (Platform::Google, false) => &self.google,
            (Platform::Meta, true) => &self.meta_identifiers,
            (Platform::Google, true) => &self.google_identifiers,
        }
    }

    fn table_mut(
        &mut self,
        platform: Platform,
        identifiers_only: bool,
    ) -> &mut HashMap<ProfileId, PackedRow> {
        match (platform, identifiers_only) {
            (Platform::Meta, false) => &mut self.meta,
            (Platform::Google, false) => &mut self.google,
            (Platform::Meta, true) => &mut self.meta_identifiers,
            (Platform::Google, true) => &mut self.google_identifiers,
        }
    }

    /// The rows a build of `platform` (`identifiers_only` or whole) can use: its own
    /// table, and for identifiers only also the whole rows.
    fn usable(
        &self,
        platform: Platform,
        identifiers_only: bool,
    ) -> [Option<&HashMap<ProfileId, PackedRow>>; 2] {
        [
            Some(self.table(platform, identifiers_only)),
            identifiers_only.then(|| self.table(platform, false)),
        ]
    }
}

/// Packed rows per platform.
pub(crate) struct RowCache {
    enabled: bool,
    tables: RwLock<Tables>,
}

impl RowCache {
    pub(crate) fn new(enabled: bool) -> RowCache {
        RowCache {
            enabled,
            tables: RwLock::new(Tables::default()),
        }
    }

    /// Whether rows are cached at all.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether at least half of `members` rows could be in the cache for `platform` today
    /// (a size comparison, not a lookup of each).
    pub(crate) fn mostly_cached(
        &self,
        platform: Platform,
        identifiers_only: bool,
        day: i32,
        members: u64,
    ) -> bool {
        if !self.enabled || members == 0 {
            return false;
        }
        let t = self.tables.read().expect("row cache lock");
        let len = t
            .usable(platform, identifiers_only)
            .into_iter()
            .flatten()
            .map(HashMap::len)
            .max()
            .unwrap_or(0);
        t.day == day && len as u64 * 2 >= members
    }

    /// Forgets the rows of changed profiles.
    pub(crate) fn invalidate(&self, pids: impl IntoIterator<Item = ProfileId>) {
        if !self.enabled {
            return;
        }
        let mut t = self.tables.write().expect("row cache lock");
        t.epoch += 1;
        for pid in pids {
            t.meta.remove(&pid);
            t.google.remove(&pid);
            t.meta_identifiers.remove(&pid);
            t.google_identifiers.remove(&pid);
        }
    }

    /// The cached rows of `chunk` (in order; `None` where not cached), adding their counts
    /// to `stats`, and the epoch to hand back to [`RowCache::put`].
    pub(crate) fn get(
        &self,
        platform: Platform,
        identifiers_only: bool,
        day: i32,
        chunk: &[ProfileId],
        stats: &mut FieldStats,
    ) -> (Vec<Option<ProfileRow>>, u64) {
        if self.enabled {
            let t = self.tables.read().expect("row cache lock");
            if t.day == day {
                let tables = t.usable(platform, identifiers_only);
                let mut counts = [(0u64, 0u64); 11];
                let rows = chunk
                    .iter()
                    .map(|pid| {
                        let row = tables.iter().flatten().find_map(|table| table.get(pid));
                        row.map(|r| r.unpack(*pid, &mut counts))
                    })
                    .collect();
                RowCounts::add_totals(&counts, stats);
                return (rows, t.epoch);
            }
            drop(t);
            let mut t = self.tables.write().expect("row cache lock");
            if t.day != day {
                let epoch = t.epoch + 1;
                *t = Tables {
                    day,
                    epoch,
                    ..Tables::default()
                };
            }
            let epoch = t.epoch;
            return (chunk.iter().map(|_| None).collect(), epoch);
        }
        (chunk.iter().map(|_| None).collect(), 0)
    }

    /// Caches rows built from profiles read after [`RowCache::get`] returned `epoch`
    /// (dropped when anything was invalidated since).
    pub(crate) fn put(
        &self,
        platform: Platform,
        identifiers_only: bool,
        epoch: u64,
        rows: Vec<(ProfileId, PackedRow)>,
    ) {
        if !self.enabled || rows.is_empty() {
            return;
        }
        let mut t = self.tables.write().expect("row cache lock");
        if t.epoch != epoch {
            return;
        }
        t.table_mut(platform, identifiers_only).extend(rows);
    }
}
