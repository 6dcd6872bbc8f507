//! A borrowed, read-only view of the parts of a profile that an export row needs (its
//! identifiers with their observation times, and its scalar attributes), and the store's
//! scan that hands one out per live profile without building the [`Profile`].
//!
//! Decoding a whole profile allocates every string, list, map and provenance it holds;
//! an export reads a handful of them from a million profiles. The view borrows its
//! strings from the unsealed bytes (packed values, `storage::packed`), which the scan
//! reuses from one profile to the next. Values of older formats are decoded whole and
//! viewed through [`ProfileView::of`], so every stored form gives the same view.

use super::packed::{identities_view, profile_view};
use super::profile::{Attribute, Profile, ProfileId};
use super::{codec, keys, Store};
use crate::base::error::StorageError;
use crate::base::time::{DayNumber, Millis};
use crate::input::record::Value;
use smallvec::SmallVec;

/// One identifier of a [`ProfileView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdentifierView<'a> {
    /// Identifier type (`email`, `phone`, ...).
    pub(crate) kind: &'a str,
    /// Normalized value.
    pub(crate) value: &'a str,
    /// When the record that attached it was observed.
    pub(crate) observed_at: Millis,
}

/// A scalar attribute's value as an export reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ScalarView<'a> {
    /// Text.
    Text(&'a str),
    /// A date.
    Date(DayNumber),
    /// A number, boolean or list (no export field takes one).
    Other,
}

impl<'a> ScalarView<'a> {
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Text(t) => ScalarView::Text(t),
            Value::Date(d) => ScalarView::Date(*d),
            _ => ScalarView::Other,
        }
    }
}

/// The identifiers and scalar attributes of one live profile, borrowed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProfileView<'a> {
    /// The profile.
    pub(crate) id: ProfileId,
    /// Identifiers, in the order they were attached.
    pub(crate) identifiers: SmallVec<[IdentifierView<'a>; 4]>,
    /// Scalar attributes, in name order.
    pub(crate) scalars: SmallVec<[(&'a str, ScalarView<'a>); 12]>,
}

impl<'a> ProfileView<'a> {
    /// The view of a decoded profile.
    pub(crate) fn of(profile: &'a Profile) -> Self {
        ProfileView {
            id: profile.id,
            identifiers: profile
                .identifiers
                .iter()
                .map(|i| IdentifierView {
                    kind: &i.id.kind,
                    value: &i.id.value,
                    observed_at: i.provenance.observed_at,
                })
                .collect(),
            scalars: profile
                .attributes
                .iter()
                .filter_map(|(name, attribute)| match attribute {
                    Attribute::Scalar(s) => Some((name.as_str(), ScalarView::of(&s.value))),
                    Attribute::List(_) => None,
                })
                .collect(),
        }
    }

    /// The scalar attribute `name`.
    pub(crate) fn scalar(&self, name: &str) -> Option<ScalarView<'a>> {
        self.scalars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| *value)
    }
}

/// How much of each profile a scan views.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ViewPart {
    /// Identifiers and scalar attributes.
    Whole,
    /// Identifiers only (the scalars left empty), read from the leading bytes of the
    /// packed profile; the whole view where `needs_scalars` holds for one of them. The
    /// bytes after the identifiers are not read, so damage there is not seen (values are
    /// authenticated when unsealed, so only a writer's bug could put it there; a whole
    /// read and `cidb check` report it).
    Identifiers {
        needs_scalars: fn(&IdentifierView<'_>) -> bool,
    },
}

/// Buffers a scan reuses from one profile to the next.
#[derive(Default)]
struct ScanBuffers {
    plain: Vec<u8>,
    body: Vec<u8>,
}

impl Store {
    /// Calls `visit` with the view of each live profile among `pids` (ascending), in id
    /// order; ids that are merged away or absent are skipped. Dense ids are read with
    /// one range scan, sparse ones with one lookup each.
    pub(crate) fn visit_live_views(
        &self,
        pids: &[ProfileId],
        part: ViewPart,
        visit: &mut dyn FnMut(&ProfileView<'_>),
    ) -> Result<(), StorageError> {
        /// A range scan reads the unwanted slots in between too: it is used when the id
        /// range is at most this many times the number of ids.
        const DENSE_FACTOR: usize = 4;
        let (Some(&first), Some(&last)) = (pids.first(), pids.last()) else {
            return Ok(());
        };
        let mut buffers = ScanBuffers::default();
        if ((last - first) as usize) < pids.len() * DENSE_FACTOR {
            let mut wanted = pids.iter().peekable();
            for item in self.db.range(keys::profile(first)..=keys::profile(last)) {
                let (key, value) = item?;
                let pid = keys::pid_of(&key).ok_or_else(|| StorageError::Corrupted {
                    what: "profile slot",
                    key: key.to_vec(),
                    detail: "short key".into(),
                })?;
                while wanted.next_if(|&&w| w < pid).is_some() {}
                if wanted.next_if(|&&w| w == pid).is_some() {
                    self.visit_slot(pid, &value, part, &mut buffers, visit)?;
                }
            }
        } else {
            for &pid in pids {
                if let Some(value) = self.db.get(keys::profile(pid))? {
                    self.visit_slot(pid, &value, part, &mut buffers, visit)?;
                }
            }
        }
        Ok(())
    }

    /// Views one stored slot if it is live. A value that does not unseal or decode goes
    /// through [`Store::slot`]'s reading, which tells a slot replaced meanwhile (by a
    /// merge or an erasure) from a damaged one.
    fn visit_slot(
        &self,
        pid: ProfileId,
        value: &[u8],
        part: ViewPart,
        buffers: &mut ScanBuffers,
        visit: &mut dyn FnMut(&ProfileView<'_>),
    ) -> Result<(), StorageError> {
        let ScanBuffers { plain, body } = buffers;
        // A view needs no event chunk counted in (it holds no counts), so the chunks
        // after the slot are not read.
        if self.live_value(pid, value).is_some_and(|live| {
            self.open_sealed_into(pid, live.aad.as_bytes(), live.sealed, plain)
                .is_ok()
        }) {
            if let Ok(true) = codec::unpack_body_into("profile", plain, body) {
                let body = &body[..];
                if let ViewPart::Identifiers { needs_scalars } = part {
                    let leading = codec::decode_packed_body_prefix("profile", body);
                    if let Ok(view) = leading.map_err(|e| e.to_string()).and_then(identities_view) {
                        if !view.identifiers.iter().any(needs_scalars) {
                            visit(&view);
                            return Ok(());
                        }
                    }
                }
                let whole = codec::decode_packed_body("profile", body);
                if let Ok(view) = whole.map_err(|e| e.to_string()).and_then(profile_view) {
                    visit(&view);
                    return Ok(());
                }
            }
        }
        // A redirect, an older stored form, a slot replaced meanwhile, or damage (an
        // unknown tag, a short redirect: an error, as for every read of a slot).
        match self.decode_read_slot(pid, value)? {
            Some(super::DecodedSlot::Live(profile, _)) => visit(&ProfileView::of(&profile)),
            Some(super::DecodedSlot::Merged(_)) | None => {}
        }
        Ok(())
    }

    /// Unseals a profile's value into `plain` (replacing what it held).
    fn open_sealed_into(
        &self,
        pid: ProfileId,
        aad: &[u8],
        sealed: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        self.with_profile_key("profile", pid, aad, |key| {
            super::crypto::open_into("profile", key, aad, sealed, plain)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::record::Identifier;
    use crate::storage::profile::{ListItem, Provenance, Scalar, StoredIdentifier};
    use crate::storage::{crypto, BatchWriter};

    fn profile(pid: ProfileId) -> Profile {
        let at = |s: i64| Provenance {
            source: if pid % 3 == 0 { "crm" } else { "x_shop" }.into(),
            observed_at: 1_767_225_600_000 + i64::from(pid) * 1_000 - s,
        };
        let mut p = Profile::new(pid);
        for (kind, value, back) in [
            ("email", format!("p{pid}@example.com"), 5),
            ("phone", format!("+3161234{pid:04}"), 0),
            ("x_loyalty", format!("L{pid}"), 9),
        ] {
            p.identifiers.push(StoredIdentifier {
                id: Identifier {
                    kind: kind.into(),
                    value,
                },
                provenance: at(back),
            });
        }
        let scalar = |value| {
            Attribute::Scalar(Scalar {
                value,
                provenance: at(1),
                seq: u64::from(pid),
            })
        };
        let attributes = [
            (
                "first_name",
                scalar(Value::Text(format!("Name {pid}").into())),
            ),
            ("birth_date", scalar(Value::Date(6_000 + pid as i32))),
            ("lifetime_value", scalar(Value::Number(f64::from(pid)))),
            ("x_note", scalar(Value::Text("note".into()))),
            (
                "interests",
                Attribute::List(vec![ListItem {
                    value: "running".into(),
                    provenance: smallvec::smallvec![at(2)],
                }]),
            ),
        ];
        for (name, attribute) in attributes {
            p.attributes.insert(name.into(), attribute);
        }
        p
    }

    /// Packed profiles, profiles of the older (tag 3) form, redirects and absent ids:
    /// the scan views every live one among the ids asked for, as the decoded profile
    /// views, and nothing else, whether it scans a range or looks ids up one by one.
    #[test]
    fn the_scan_views_each_live_profile_as_its_decoded_form() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path()).unwrap();
        let pids: Vec<ProfileId> = (0..60).collect();
        let mut writer = BatchWriter::new(&store);
        writer.issue_keys(&pids).unwrap();
        store.apply(writer.finish().unwrap()).unwrap();
        let mut writer = BatchWriter::new(&store);
        let mut older = sled::Batch::default();
        for &pid in &pids {
            match pid {
                40..45 => writer.put_redirect(pid, pid - 40),
                50 => {}
                _ if pid % 2 == 0 => {
                    writer.put_sealed_profile(pid, store.sealed_profile(&profile(pid), 0))
                }
                _ => {
                    let keyfile = store.keys.read().unwrap();
                    let slot = keys::profile(pid);
                    let mut value = vec![keys::SLOT_LIVE];
                    crypto::seal_with(keyfile.get(pid).unwrap(), &slot, &mut value, |buf| {
                        codec::encode_compressed_into(&profile(pid), buf)
                    });
                    older.insert(&slot[..], value);
                }
            }
        }
        store.apply(writer.finish().unwrap()).unwrap();
        store.db.apply_batch(older).unwrap();
        let dense: Vec<ProfileId> = (0..60).filter(|p| p % 5 != 1).collect();
        let sparse: Vec<ProfileId> = (0..60).step_by(7).chain([50, 59]).collect();
        let identifiers = |needs_scalars| ViewPart::Identifiers { needs_scalars };
        let parts = [
            ViewPart::Whole,
            identifiers(|_| false),
            identifiers(|_| true),
            identifiers(|id| id.kind == "phone" && id.value.ends_with('4')),
        ];
        for (asked, part) in [dense, sparse]
            .into_iter()
            .flat_map(|asked| parts.map(|part| (asked.clone(), part)))
        {
            let mut seen = Vec::new();
            store
                .visit_live_views(&asked, part, &mut |view| {
                    let expected = profile(view.id);
                    let mut expected = ProfileView::of(&expected);
                    // Identifiers alone, unless one needs the scalars or the value is of
                    // an older form (odd ids here), which is read whole.
                    if let ViewPart::Identifiers { needs_scalars } = part {
                        if view.id % 2 == 0 && !expected.identifiers.iter().any(needs_scalars) {
                            expected.scalars.clear();
                        }
                    }
                    // (Compared as text: the two views borrow from different places.)
                    assert_eq!(format!("{view:?}"), format!("{expected:?}"), "{part:?}");
                    seen.push(view.id);
                })
                .unwrap();
            let live: Vec<ProfileId> = asked
                .iter()
                .copied()
                .filter(|p| !(40..45).contains(p) && *p != 50)
                .collect();
            assert_eq!(seen, live);
            assert!(seen.iter().any(|p| p % 2 == 1) && seen.iter().any(|p| p % 2 == 0));
        }
    }

    /// A store with live, packed profiles `live`.
    fn store_with(live: &[ProfileId]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path()).unwrap();
        let mut writer = BatchWriter::new(&store);
        writer.issue_keys(live).unwrap();
        store.apply(writer.finish().unwrap()).unwrap();
        let mut writer = BatchWriter::new(&store);
        for &pid in live {
            writer.put_sealed_profile(pid, store.sealed_profile(&profile(pid), 0));
        }
        store.apply(writer.finish().unwrap()).unwrap();
        (dir, store)
    }

    /// A wanted slot with an unknown tag, a short redirect or no bytes is an error, as it
    /// is for `Store::slot` (found by review: the scan skipped them, as if merged away).
    #[test]
    fn a_damaged_slot_asked_for_is_an_error() {
        let (_dir, store) = store_with(&[0, 1, 2, 3]);
        store.db.insert(keys::profile(1), vec![9u8]).unwrap();
        store
            .db
            .insert(keys::profile(2), vec![keys::SLOT_MERGED, 0])
            .unwrap();
        store.db.insert(keys::profile(3), Vec::<u8>::new()).unwrap();
        for pid in 1..4 {
            assert!(store.slot(pid).is_err());
            let identifiers = ViewPart::Identifiers {
                needs_scalars: |_| false,
            };
            for part in [ViewPart::Whole, identifiers] {
                let err = store
                    .visit_live_views(&[pid], part, &mut |_| {})
                    .unwrap_err();
                assert!(err.to_string().contains("profile slot"), "{pid}: {err}");
            }
        }
        // Slots between the ids asked for are not read (a range scan and lookups one by
        // one answer alike).
        let mut seen = Vec::new();
        store
            .visit_live_views(&[0], ViewPart::Whole, &mut |view| seen.push(view.id))
            .unwrap();
        assert_eq!(seen, [0]);
    }

    /// A live value read just before a merge or an erasure replaced it and destroyed its
    /// key: the slot as it is now answers (merged away, or gone), as for `Store::slot`.
    #[test]
    fn a_value_replaced_after_it_was_read_is_skipped() {
        for erase in [false, true] {
            let (_dir, store) = store_with(&[0, 1]);
            let stale = store.db.get(keys::profile(1)).unwrap().unwrap().to_vec();
            if erase {
                store.db.remove(keys::profile(1)).unwrap();
            } else {
                let mut writer = BatchWriter::new(&store);
                writer.put_redirect(1, 0);
                store.apply(writer.finish().unwrap()).unwrap();
            }
            store.destroy_keys(&[1]).unwrap();
            let (_live_dir, live_store) = store_with(&[0, 1]);
            let current = live_store
                .db
                .get(keys::profile(1))
                .unwrap()
                .unwrap()
                .to_vec();
            let identifiers = ViewPart::Identifiers {
                needs_scalars: |_| false,
            };
            for part in [ViewPart::Whole, identifiers] {
                let mut seen = Vec::new();
                let mut buffers = ScanBuffers::default();
                store
                    .visit_slot(1, &stale, part, &mut buffers, &mut |view| {
                        seen.push(view.id)
                    })
                    .unwrap();
                assert!(seen.is_empty(), "erase {erase}: {seen:?}");
                // With the key still there, the same bytes are a live profile.
                live_store
                    .visit_slot(1, &current, part, &mut buffers, &mut |view| {
                        seen.push(view.id)
                    })
                    .unwrap();
                assert_eq!(seen, [1]);
            }
        }
    }

    #[test]
    fn a_view_holds_the_identifiers_in_order_and_the_scalars_only() {
        let p = profile(7);
        let view = ProfileView::of(&p);
        let kinds: Vec<&str> = view.identifiers.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, ["email", "phone", "x_loyalty"]);
        assert_eq!(view.identifiers[1].value, "+31612340007");
        assert_eq!(view.scalar("first_name"), Some(ScalarView::Text("Name 7")));
        assert_eq!(view.scalar("birth_date"), Some(ScalarView::Date(6_007)));
        assert_eq!(view.scalar("lifetime_value"), Some(ScalarView::Other));
        assert_eq!(view.scalar("interests"), None);
    }
}
