//! The packed stored form of profiles and event chunks (format 6, value tag 4; the codec
//! compresses it with LZ4 and the store seals it like any value).
//!
//! A profile repeats the provenance of one record (source, `observed_at`, ingest sequence)
//! in every value that record gave, and names (identifier types, attributes, purposes,
//! sources) that LZ4 cannot shorten inside one small value. The packed form lists each
//! record's provenance once, in an *origins* table, and lets every value refer to it by
//! position; known names take a one-byte code (`known_names`); times are LEB128
//! differences (six bytes for a time, where bincode's variable-width integers take nine).
//! An event chunk keeps its events in columns (types, times, categories, values).
//!
//! Packing is lossless: unpacking gives back an equal value (property-tested below).

use super::codec::Packable;
use super::known_names::StoredName;
use super::view::{IdentifierView, ProfileView, ScalarView};
use super::EventChunk;
use crate::base::leb128::{self, Reader};
use crate::base::time::{DayNumber, Millis};
use crate::input::record::{Event, Identifier, ShortText, Value};
use crate::storage::profile::{
    Attribute, ConsentChange, ListItem, Profile, ProfileId, Provenance, Scalar, SourceSeen,
    StoredIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smallvec::SmallVec;
use std::collections::{BTreeMap, HashMap};

/// The packed form of a [`Profile`]. `S` is the string type (`&str` when packing,
/// [`ShortText`] when unpacking), `V` the attribute value type likewise.
#[derive(Serialize, Deserialize)]
pub(crate) struct PackedProfile<S, V> {
    id: ProfileId,
    /// Sources that origins refer to: the keys of the profile's `sources` first, in order,
    /// then any other.
    source_names: Vec<StoredName<S>>,
    /// Records of each source of the profile's `sources`.
    source_records: Vec<u64>,
    /// LEB128: each source's `first_seen` and `last_seen`; then per origin its source (a
    /// position in `source_names`) times two, plus one if an ingest sequence follows,
    /// `observed_at`, and that sequence. Times are zig-zag differences from the time
    /// before them.
    times: ByteBuf,
    identifiers: Vec<(StoredName<S>, S, u32)>,
    attributes: Vec<(StoredName<S>, PackedAttribute<S, V>)>,
    consent: Vec<PackedConsent<S>>,
    merged_from: Vec<ProfileId>,
    records: u64,
    events: u64,
}

/// A purpose's consent changes: granted, and the origin's position.
type PackedConsent<S> = (StoredName<S>, Vec<(bool, u32)>);

/// An attribute whose provenance is a position in the origins table.
#[derive(Serialize, Deserialize)]
enum PackedAttribute<S, V> {
    Scalar(V, u32),
    List(Vec<(S, SmallVec<[u32; 1]>)>),
}

/// One origin: the source (a position in `source_names`), `observed_at` and the ingest
/// sequence where a scalar or consent change needs it.
type Origin = (u32, Millis, Option<u64>);

/// Times in a byte string, each the zig-zag LEB128 difference from the one before it (the
/// first from 0): six bytes for a time in milliseconds, fewer for one close to the last.
#[derive(Default)]
struct TimeChain {
    previous: Millis,
}

impl TimeChain {
    fn put(&mut self, out: &mut Vec<u8>, t: Millis) {
        leb128::put_signed(out, t.wrapping_sub(self.previous));
        self.previous = t;
    }

    fn read(&mut self, r: &mut Reader) -> Result<Millis, String> {
        self.previous = self.previous.wrapping_add(r.signed()?);
        Ok(self.previous)
    }
}

/// The origins table while packing.
struct Origins<'a> {
    names: Vec<&'a str>,
    entries: Vec<Origin>,
    /// Positions in `entries` by source and time, built once `entries` is too long to
    /// search (a profile of many records); a typical profile has a handful of origins.
    by_time: Option<OriginIndex>,
}

/// Positions of origins by source and time.
type OriginIndex = HashMap<(u32, Millis), SmallVec<[u32; 1]>, foldhash::fast::RandomState>;

/// Origins searched one by one before [`Origins`] indexes them.
const ORIGINS_SEARCHED: usize = 16;

impl<'a> Origins<'a> {
    fn new(names: Vec<&'a str>) -> Self {
        Origins {
            names,
            entries: Vec::new(),
            by_time: None,
        }
    }

    fn name(&mut self, source: &'a str) -> u32 {
        let at = match self.names.iter().position(|n| *n == source) {
            Some(at) => at,
            None => {
                self.names.push(source);
                self.names.len() - 1
            }
        };
        at as u32
    }

    /// The position of the origin of `p` with sequence `seq` (`None`: any sequence),
    /// added if there is none.
    fn position(&mut self, p: &'a Provenance, seq: Option<u64>) -> u32 {
        let name = self.name(&p.source);
        let fits =
            |e: &Origin| e.0 == name && e.1 == p.observed_at && (seq.is_none() || e.2 == seq);
        let found = match &self.by_time {
            None => self.entries.iter().position(fits).map(|i| i as u32),
            Some(by_time) => by_time.get(&(name, p.observed_at)).and_then(|at| {
                at.iter()
                    .copied()
                    .find(|&i| fits(&self.entries[i as usize]))
            }),
        };
        if let Some(i) = found {
            return i;
        }
        let i = self.entries.len() as u32;
        self.entries.push((name, p.observed_at, seq));
        if let Some(by_time) = &mut self.by_time {
            by_time.entry((name, p.observed_at)).or_default().push(i);
        } else if self.entries.len() > ORIGINS_SEARCHED {
            let mut by_time = OriginIndex::default();
            for (at, e) in self.entries.iter().enumerate() {
                by_time.entry((e.0, e.1)).or_default().push(at as u32);
            }
            self.by_time = Some(by_time);
        }
        i
    }
}

impl Packable for Profile {
    type Packed<'a> = PackedProfile<&'a str, &'a Value>;
    type Unpacked = PackedProfile<ShortText, Value>;

    fn pack(&self) -> Self::Packed<'_> {
        let mut origins = Origins::new(self.sources.keys().map(|s| s.as_str()).collect());
        // Values with a sequence first, so values without one share their origins.
        let mut scalar_origins = Vec::new();
        for attribute in self.attributes.values() {
            if let Attribute::Scalar(s) = attribute {
                scalar_origins.push(origins.position(&s.provenance, Some(s.seq)));
            }
        }
        let consent = self
            .consent
            .iter()
            .map(|(purpose, changes)| {
                let changes = changes
                    .iter()
                    .map(|c| (c.granted, origins.position(&c.provenance, Some(c.seq))))
                    .collect();
                (StoredName::of(purpose), changes)
            })
            .collect();
        let mut scalar_origins = scalar_origins.into_iter();
        let attributes = self
            .attributes
            .iter()
            .map(|(name, attribute)| {
                let packed = match attribute {
                    Attribute::Scalar(s) => PackedAttribute::Scalar(
                        &s.value,
                        scalar_origins.next().expect("one origin per scalar"),
                    ),
                    Attribute::List(items) => PackedAttribute::List(
                        items
                            .iter()
                            .map(|item| {
                                let from = item
                                    .provenance
                                    .iter()
                                    .map(|p| origins.position(p, None))
                                    .collect();
                                (item.value.as_str(), from)
                            })
                            .collect(),
                    ),
                };
                (StoredName::of(name), packed)
            })
            .collect();
        let identifiers = self
            .identifiers
            .iter()
            .map(|i| {
                (
                    StoredName::of(&i.id.kind),
                    i.id.value.as_str(),
                    origins.position(&i.provenance, None),
                )
            })
            .collect();
        let mut times = Vec::with_capacity(16 * (self.sources.len() + origins.entries.len()));
        let mut chain = TimeChain::default();
        for seen in self.sources.values() {
            chain.put(&mut times, seen.first_seen);
            chain.put(&mut times, seen.last_seen);
        }
        for &(name, at, seq) in &origins.entries {
            leb128::put(&mut times, u64::from(name) << 1 | u64::from(seq.is_some()));
            chain.put(&mut times, at);
            if let Some(seq) = seq {
                leb128::put(&mut times, seq);
            }
        }
        PackedProfile {
            id: self.id,
            source_names: origins.names.iter().map(|n| StoredName::of(n)).collect(),
            source_records: self.sources.values().map(|s| s.records).collect(),
            times: ByteBuf::from(times),
            identifiers,
            attributes,
            consent,
            merged_from: self.merged_from.clone(),
            records: self.records,
            events: self.events,
        }
    }

    fn unpack(p: Self::Unpacked) -> Result<Self, String> {
        let names = p
            .source_names
            .into_iter()
            .map(StoredName::into_name)
            .collect::<Result<Vec<_>, _>>()?;
        if p.source_records.len() > names.len() {
            return Err("more sources than source names".into());
        }
        let mut r = Reader::new(&p.times, "profile origins");
        let mut chain = TimeChain::default();
        let mut sources = BTreeMap::new();
        for (name, &records) in names.iter().zip(&p.source_records) {
            let first_seen = chain.read(&mut r)?;
            let last_seen = chain.read(&mut r)?;
            let seen = SourceSeen {
                records,
                first_seen,
                last_seen,
            };
            sources.insert(name.clone(), seen);
        }
        let mut entries: Vec<(Provenance, Option<u64>)> = Vec::new();
        while !r.is_done() {
            let name_and_flag = r.leb()?;
            let name = name_and_flag >> 1;
            let source = usize::try_from(name)
                .ok()
                .and_then(|n| names.get(n))
                .ok_or_else(|| format!("origin source {name} out of range"))?
                .clone();
            let observed_at = chain.read(&mut r)?;
            let seq = match name_and_flag & 1 {
                1 => Some(r.leb()?),
                _ => None,
            };
            entries.push((
                Provenance {
                    source,
                    observed_at,
                },
                seq,
            ));
        }
        let origin = |i: u32| {
            entries
                .get(i as usize)
                .ok_or_else(|| format!("origin {i} out of range"))
        };
        let with_seq = |i: u32| -> Result<(Provenance, u64), String> {
            let (p, seq) = origin(i)?;
            let seq = seq.ok_or_else(|| format!("origin {i} has no sequence"))?;
            Ok((p.clone(), seq))
        };
        let identifiers = p
            .identifiers
            .into_iter()
            .map(|(kind, value, from)| {
                Ok(StoredIdentifier {
                    id: Identifier {
                        kind: kind.into_name()?,
                        value: value.into(),
                    },
                    provenance: origin(from)?.0.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        let attributes = p
            .attributes
            .into_iter()
            .map(|(name, attribute)| {
                let attribute = match attribute {
                    PackedAttribute::Scalar(value, from) => {
                        let (provenance, seq) = with_seq(from)?;
                        Attribute::Scalar(Scalar {
                            value,
                            provenance,
                            seq,
                        })
                    }
                    PackedAttribute::List(items) => Attribute::List(
                        items
                            .into_iter()
                            .map(|(value, from)| {
                                let provenance = from
                                    .into_iter()
                                    .map(|i| Ok(origin(i)?.0.clone()))
                                    .collect::<Result<_, String>>()?;
                                Ok(ListItem { value, provenance })
                            })
                            .collect::<Result<_, String>>()?,
                    ),
                };
                Ok((name.into_name()?, attribute))
            })
            .collect::<Result<_, String>>()?;
        let consent = p
            .consent
            .into_iter()
            .map(|(purpose, changes)| {
                let changes = changes
                    .into_iter()
                    .map(|(granted, from)| {
                        let (provenance, seq) = with_seq(from)?;
                        Ok(ConsentChange {
                            granted,
                            provenance,
                            seq,
                        })
                    })
                    .collect::<Result<_, String>>()?;
                Ok((purpose.into_name()?, changes))
            })
            .collect::<Result<_, String>>()?;
        Ok(Profile {
            id: p.id,
            identifiers,
            attributes,
            consent,
            sources,
            merged_from: p.merged_from,
            records: p.records,
            events: p.events,
        })
    }
}

/// An attribute value as stored, its text borrowed from the unsealed bytes (the serde
/// form of [`Value`], for [`profile_view`]).
#[derive(Deserialize)]
#[allow(
    dead_code,
    reason = "the variants decode the stored form; the view reads text and dates only"
)]
pub(crate) enum ValueRef<'a> {
    Text(&'a str),
    Number(f64),
    Bool(bool),
    Date(DayNumber),
    List(#[serde(borrow)] Vec<&'a str>),
}

/// A packed profile decoded with its strings and times borrowed and its short lists
/// inline: the bytes of [`PackedProfile`], field for field, read without an allocation
/// for a typical profile. (bincode writes a struct's fields one after the other with no
/// frame, so the leading fields nest as a struct of their own.)
#[derive(Deserialize)]
pub(crate) struct BorrowedProfile<'a> {
    #[serde(borrow)]
    leading: BorrowedIdentities<'a>,
    #[serde(borrow)]
    attributes: SmallVec<[(StoredName<&'a str>, BorrowedAttribute<'a>); 12]>,
    #[serde(borrow)]
    consent: SmallVec<[BorrowedConsent<'a>; 3]>,
    _merged_from: SmallVec<[ProfileId; 2]>,
    _records: u64,
    _events: u64,
}

/// [`PackedAttribute`] as [`BorrowedProfile`] reads it.
#[derive(Deserialize)]
enum BorrowedAttribute<'a> {
    Scalar(#[serde(borrow)] ValueRef<'a>, u32),
    List(ListOrigins),
}

/// [`PackedConsent`] as [`BorrowedProfile`] reads it.
type BorrowedConsent<'a> = (StoredName<&'a str>, SmallVec<[(bool, u32); 2]>);

/// A list attribute as [`BorrowedProfile`] reads it: its items (value, origins) are
/// decoded and checked for form, but only their largest origin is kept (a view holds no
/// list, and checks that every origin exists). Keeping the items inline made the decoded
/// profile a few kilobytes that serde moved several times: 12 % of an export's CPU.
struct ListOrigins {
    largest: Option<u32>,
}

impl<'de> Deserialize<'de> for ListOrigins {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = ListOrigins;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("list items (value, origins)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ListOrigins, A::Error> {
                let mut largest = None;
                while let Some((_, origins)) =
                    seq.next_element::<(&'de str, SmallVec<[u32; 1]>)>()?
                {
                    largest = origins.into_iter().chain(largest).max();
                }
                Ok(ListOrigins { largest })
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

/// The leading fields of a packed profile, up to and including its identifiers, decoded
/// as [`BorrowedProfile`] decodes them: what an export of identifier hashes reads.
#[derive(Deserialize)]
pub(crate) struct BorrowedIdentities<'a> {
    id: ProfileId,
    #[serde(borrow)]
    source_names: SmallVec<[StoredName<&'a str>; 4]>,
    source_records: SmallVec<[u64; 4]>,
    #[serde(borrow)]
    times: &'a [u8],
    #[serde(borrow)]
    identifiers: SmallVec<[(StoredName<&'a str>, &'a str, u32); 4]>,
}

/// Each origin's `observed_at`, and whether it has an ingest sequence.
type OriginTimes = SmallVec<[(Millis, bool); 8]>;

/// Reads the origins table and views the identifiers: the part of [`profile_view`] that
/// [`identities_view`] shares.
fn origins_and_identifiers<'a>(
    p: &BorrowedIdentities<'a>,
) -> Result<(OriginTimes, SmallVec<[IdentifierView<'a>; 4]>), String> {
    let BorrowedIdentities {
        source_names,
        source_records,
        times,
        identifiers,
        ..
    } = p;
    let names = source_names
        .iter()
        .map(StoredName::as_name)
        .collect::<Result<SmallVec<[&str; 8]>, _>>()?;
    if source_records.len() > names.len() {
        return Err("more sources than source names".into());
    }
    let mut r = Reader::new(times, "profile origins");
    let mut chain = TimeChain::default();
    for _ in 0..2 * source_records.len() {
        chain.read(&mut r)?;
    }
    let mut origins = OriginTimes::new();
    while !r.is_done() {
        let name_and_flag = r.leb()?;
        let name = name_and_flag >> 1;
        if usize::try_from(name).map_or(true, |n| n >= names.len()) {
            return Err(format!("origin source {name} out of range"));
        }
        let observed_at = chain.read(&mut r)?;
        let has_seq = name_and_flag & 1 == 1;
        if has_seq {
            r.leb()?;
        }
        origins.push((observed_at, has_seq));
    }
    let identifiers = identifiers
        .iter()
        .map(|(kind, value, from)| {
            Ok(IdentifierView {
                kind: kind.as_name()?,
                value,
                observed_at: origin_of(&origins, *from)?.0,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((origins, identifiers))
}

/// Origin `i` of the table.
fn origin_of(origins: &OriginTimes, i: u32) -> Result<(Millis, bool), String> {
    origins
        .get(i as usize)
        .copied()
        .ok_or_else(|| format!("origin {i} out of range"))
}

/// The view of a profile's identifiers alone (no scalars), from its leading fields. Bytes
/// after the identifiers are not read, so damage there goes unseen; a full read
/// ([`profile_view`], `cidb check`) reports it.
pub(crate) fn identities_view(p: BorrowedIdentities<'_>) -> Result<ProfileView<'_>, String> {
    let (_, identifiers) = origins_and_identifiers(&p)?;
    Ok(ProfileView {
        id: p.id,
        identifiers,
        scalars: SmallVec::new(),
    })
}

/// The export view of a packed profile, without unpacking it. It fails where
/// [`Packable::unpack`] of the same bytes fails (a name code or an origin that does not
/// exist), so a damaged value is an error whichever way it is read whole
/// ([`identities_view`] reads only the leading fields).
pub(crate) fn profile_view(p: BorrowedProfile<'_>) -> Result<ProfileView<'_>, String> {
    let (origins, identifiers) = origins_and_identifiers(&p.leading)?;
    let origin = |i: u32| origin_of(&origins, i);
    let with_seq = |i: u32| match origin(i)? {
        (at, true) => Ok(at),
        _ => Err(format!("origin {i} has no sequence")),
    };
    // Every attribute by name, `None` for a list.
    let mut attributes: SmallVec<[(&str, Option<ScalarView>); 16]> = SmallVec::new();
    for (name, attribute) in &p.attributes {
        let name = name.as_name()?;
        match attribute {
            BorrowedAttribute::Scalar(value, from) => {
                with_seq(*from)?;
                let value = match *value {
                    ValueRef::Text(t) => ScalarView::Text(t),
                    ValueRef::Date(d) => ScalarView::Date(d),
                    _ => ScalarView::Other,
                };
                attributes.push((name, Some(value)));
            }
            BorrowedAttribute::List(items) => {
                if let Some(from) = items.largest {
                    origin(from)?;
                }
                attributes.push((name, None));
            }
        }
    }
    if !attributes.windows(2).all(|w| w[0].0 < w[1].0) {
        // Only damaged bytes get here (attributes are packed from a map, in name order):
        // as unpacking into a map does, names are sorted and the last of equal ones stays.
        attributes.sort_by(|a, b| a.0.cmp(b.0));
        let mut unique: SmallVec<[(&str, Option<ScalarView>); 16]> = SmallVec::new();
        for attribute in attributes {
            match unique.last_mut() {
                Some(last) if last.0 == attribute.0 => *last = attribute,
                _ => unique.push(attribute),
            }
        }
        attributes = unique;
    }
    let scalars = attributes
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
    for (purpose, changes) in &p.consent {
        purpose.as_name()?;
        for (_, from) in changes {
            with_seq(*from)?;
        }
    }
    Ok(ProfileView {
        id: p.leading.id,
        identifiers,
        scalars,
    })
}

/// The packed form of an [`EventChunk`]: the events in columns.
#[derive(Serialize, Deserialize)]
pub(crate) struct PackedEvents<S> {
    source: StoredName<S>,
    /// LEB128 zig-zag: `observed_at`, then each event's time as the difference from the
    /// time before it.
    times: ByteBuf,
    kinds: Vec<StoredName<S>>,
    categories: Vec<Option<S>>,
    values: Vec<Option<f64>>,
}

impl Packable for EventChunk {
    type Packed<'a> = PackedEvents<&'a str>;
    type Unpacked = PackedEvents<ShortText>;

    fn pack(&self) -> Self::Packed<'_> {
        let mut times = Vec::with_capacity(6 * (1 + self.events.len()));
        let mut chain = TimeChain::default();
        for t in std::iter::once(self.observed_at).chain(self.events.iter().map(|e| e.at)) {
            chain.put(&mut times, t);
        }
        PackedEvents {
            source: StoredName::of(&self.source),
            times: ByteBuf::from(times),
            kinds: self
                .events
                .iter()
                .map(|e| StoredName::of(&e.kind))
                .collect(),
            categories: self.events.iter().map(|e| e.category.as_deref()).collect(),
            values: self.events.iter().map(|e| e.value).collect(),
        }
    }

    fn unpack(p: Self::Unpacked) -> Result<Self, String> {
        let n = p.kinds.len();
        if p.categories.len() != n || p.values.len() != n {
            return Err(format!(
                "event columns differ in length ({n} types, {} categories, {} values)",
                p.categories.len(),
                p.values.len()
            ));
        }
        let mut r = Reader::new(&p.times, "event times");
        let mut chain = TimeChain::default();
        let observed_at = chain.read(&mut r)?;
        let mut events = Vec::with_capacity(n);
        for ((kind, category), value) in p.kinds.into_iter().zip(p.categories).zip(p.values) {
            events.push(Event {
                kind: kind.into_name()?,
                at: chain.read(&mut r)?,
                category,
                value,
            });
        }
        if !r.is_done() {
            return Err(format!("more event times than the {n} events"));
        }
        Ok(EventChunk {
            source: p.source.into_name()?,
            observed_at,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::codec;
    use proptest::prelude::*;

    /// Known and other names, so both stored forms occur.
    const NAMES: &[&str] = &[
        "email",
        "crm",
        "pos",
        "first_name",
        "marketing",
        "x_custom",
        "a",
    ];

    fn name() -> impl Strategy<Value = ShortText> {
        prop::sample::select(NAMES).prop_map(ShortText::from)
    }

    fn time() -> impl Strategy<Value = Millis> {
        prop_oneof![
            1_600_000_000_000i64..1_800_000_000_000,
            any::<i64>(),
            Just(i64::MIN),
            Just(i64::MAX),
        ]
    }

    /// A few records' provenance, which the values share as real profiles do.
    fn origins(most: usize) -> impl Strategy<Value = Vec<(Provenance, u64)>> {
        prop::collection::vec(
            (name(), time(), any::<u64>()).prop_map(|(source, observed_at, seq)| {
                (
                    Provenance {
                        source,
                        observed_at,
                    },
                    seq,
                )
            }),
            1..most,
        )
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-zA-Z ]{0,30}".prop_map(|s| Value::Text(s.into())),
            any::<f64>().prop_map(Value::Number),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::Date),
            prop::collection::vec("[a-z]{0,8}".prop_map(ShortText::from), 0..3)
                .prop_map(Value::List),
        ]
    }

    /// A profile of a few records (most real profiles).
    fn profile() -> impl Strategy<Value = Profile> {
        profile_of(5, 4)
    }

    prop_compose! {
        /// A profile whose values come from up to `most_origins - 1` records (past 16,
        /// packing indexes its origins), with up to `most_values - 1` values of each kind.
        fn profile_of(most_origins: usize, most_values: usize)(origins in origins(most_origins))(
            pick in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 3 * most_values),
            id in any::<ProfileId>(),
            sources in prop::collection::btree_map(name(), (any::<u64>(), time(), time()), 0..4),
            identifiers in prop::collection::vec((name(), "[a-z0-9@.+]{1,40}"), 0..most_values),
            scalars in prop::collection::btree_map("[a-z]{1,2}", value(), 0..most_values),
            lists in prop::collection::btree_map("[a-z]{1,3}_list", prop::collection::vec("[a-z]{1,8}", 1..4), 0..2),
            consent in prop::collection::btree_map(name(), prop::collection::vec(any::<bool>(), 1..most_values), 0..3),
            merged_from in prop::collection::vec(any::<ProfileId>(), 0..3),
            records in any::<u64>(),
            events in any::<u64>(),
            origins in Just(origins),
        ) -> Profile {
            let mut picks = pick.iter().cycle();
            let mut next = || picks.next().expect("cycle").0.get(&origins).clone();
            let mut attributes = BTreeMap::new();
            for (name, value) in scalars {
                let name = ShortText::from(name);
                let (provenance, seq) = next();
                attributes.insert(name, Attribute::Scalar(Scalar { value, provenance, seq }));
            }
            for (name, items) in lists {
                let items = items
                    .into_iter()
                    .map(|v| ListItem {
                        provenance: (0..1 + v.len() % 2).map(|_| next().0).collect(),
                        value: v.into(),
                    })
                    .collect();
                attributes.insert(name.into(), Attribute::List(items));
            }
            Profile {
                id,
                identifiers: identifiers
                    .into_iter()
                    .map(|(kind, value)| StoredIdentifier {
                        id: Identifier { kind, value },
                        provenance: next().0,
                    })
                    .collect(),
                attributes,
                consent: consent
                    .into_iter()
                    .map(|(purpose, changes)| {
                        let changes = changes
                            .into_iter()
                            .map(|granted| {
                                let (provenance, seq) = next();
                                ConsentChange { granted, provenance, seq }
                            })
                            .collect();
                        (purpose, changes)
                    })
                    .collect(),
                sources: sources
                    .into_iter()
                    .map(|(name, (records, first_seen, last_seen))| {
                        (name, SourceSeen { records, first_seen, last_seen })
                    })
                    .collect(),
                merged_from,
                records,
                events,
            }
        }
    }

    fn event_chunk() -> impl Strategy<Value = EventChunk> {
        let event = (
            name(),
            time(),
            prop::option::of("[a-z]{0,10}"),
            any::<Option<f64>>(),
        )
            .prop_map(|(kind, at, category, value)| Event {
                kind,
                at,
                category: category.map(ShortText::from),
                value,
            });
        (name(), time(), prop::collection::vec(event, 0..8)).prop_map(
            |(source, observed_at, events)| EventChunk {
                source,
                observed_at,
                events,
            },
        )
    }

    /// The serde bytes of a value: equal bit for bit (a NaN is not `==` to itself).
    fn bits<T: Serialize>(value: &T) -> Vec<u8> {
        codec::encode(value)
    }

    /// A tag 4 value holding `body` as its packed body.
    fn packed_value_of_body(body: &[u8]) -> Vec<u8> {
        let mut out = vec![4];
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&lz4_flex::block::compress(body));
        out
    }

    /// The packed body (after tag, length and LZ4) of `value`.
    fn body_of<T: Packable>(value: &T) -> Vec<u8> {
        let mut packed = Vec::new();
        codec::encode_packed_into(value, &mut packed);
        assert_eq!(packed[0], 4);
        lz4_flex::block::decompress(&packed[5..], packed.len() * 255).unwrap()
    }

    proptest! {
        #[test]
        fn profiles_read_back_bit_for_bit(p in profile()) {
            let mut packed = Vec::new();
            codec::encode_packed_into(&p, &mut packed);
            let back: Profile = codec::decode_packed("profile", &packed).unwrap();
            prop_assert_eq!(bits(&back), bits(&p));
            // A value of an older format (tag 3, the serde form) still reads.
            let mut older = Vec::new();
            codec::encode_compressed_into(&p, &mut older);
            let back: Profile = codec::decode_packed("profile", &older).unwrap();
            prop_assert_eq!(bits(&back), bits(&p));
        }

        #[test]
        fn profiles_of_many_records_read_back_bit_for_bit(p in profile_of(60, 40)) {
            let mut packed = Vec::new();
            codec::encode_packed_into(&p, &mut packed);
            let back: Profile = codec::decode_packed("profile", &packed).unwrap();
            prop_assert_eq!(bits(&back), bits(&p));
        }

        /// The export view read straight from the packed bytes is the view of the
        /// unpacked profile.
        #[test]
        fn a_packed_profile_views_as_it_unpacks(p in profile_of(30, 8)) {
            let mut packed = Vec::new();
            codec::encode_packed_into(&p, &mut packed);
            let mut body = Vec::new();
            let borrowed = codec::decode_packed_borrowed("profile", &packed, &mut body)
                .unwrap()
                .expect("a packed value");
            let view = format!("{:?}", profile_view(borrowed).unwrap());
            prop_assert_eq!(view, format!("{:?}", ProfileView::of(&p)));
            // Its leading fields alone view as its identifiers.
            prop_assert!(codec::unpack_body_into("profile", &packed, &mut body).unwrap());
            let leading = codec::decode_packed_body_prefix("profile", &body).unwrap();
            let mut expected = ProfileView::of(&p);
            expected.scalars.clear();
            prop_assert_eq!(
                format!("{:?}", identities_view(leading).unwrap()),
                format!("{expected:?}")
            );
            // An older form is not packed: the scan decodes it whole.
            let mut older = Vec::new();
            codec::encode_compressed_into(&p, &mut older);
            let mut unused = Vec::new();
            let none = codec::decode_packed_borrowed::<BorrowedProfile>("profile", &older, &mut unused);
            prop_assert!(none.unwrap().is_none());
        }

        /// Damaged bytes view as they unpack: an error where unpacking fails, else the
        /// view of what unpacking gives.
        #[test]
        fn a_damaged_profile_views_as_it_unpacks(
            p in profile(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut damaged = body_of(&p);
            for (at, byte) in &flips {
                let i = at.index(damaged.len());
                damaged[i] = *byte;
            }
            let value = packed_value_of_body(&damaged);
            let unpacked = codec::decode_packed::<Profile>("profile", &value);
            let mut body = Vec::new();
            let viewed = codec::decode_packed_borrowed::<BorrowedProfile>("profile", &value, &mut body)
                .map_err(|e| e.to_string())
                .and_then(|b| profile_view(b.expect("a packed value")))
                .map(|view| format!("{view:?}"));
            match (unpacked, viewed) {
                (Ok(unpacked), Ok(view)) => prop_assert_eq!(
                    view,
                    format!("{:?}", ProfileView::of(&unpacked))
                ),
                (Err(_), Err(_)) => {}
                (unpacked, viewed) => prop_assert!(
                    false,
                    "unpacking gave {:?}, viewing {:?}",
                    unpacked.map(|_| ()),
                    viewed.map(|_| ())
                ),
            }
        }

        #[test]
        fn event_chunks_read_back_bit_for_bit(c in event_chunk()) {
            let mut packed = Vec::new();
            codec::encode_packed_into(&c, &mut packed);
            let back: EventChunk = codec::decode_packed("event chunk", &packed).unwrap();
            prop_assert_eq!(bits(&back), bits(&c));
        }

        #[test]
        fn damaged_bodies_are_an_error_not_a_panic(
            p in profile(),
            c in event_chunk(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            for mut body in [body_of(&p), body_of(&c)] {
                for (at, byte) in &flips {
                    let i = at.index(body.len());
                    body[i] = *byte;
                }
                let short = &body[..cut.index(body.len() + 1)];
                for damaged in [&body[..], short] {
                    let value = packed_value_of_body(damaged);
                    let _ = codec::decode_packed::<Profile>("profile", &value);
                    let _ = codec::decode_packed::<EventChunk>("event chunk", &value);
                }
            }
        }
    }

    /// A profile as three records (two of them from one source) leave it.
    fn typical_profile() -> Profile {
        let prov = |source: &str, observed_at| Provenance {
            source: source.into(),
            observed_at,
        };
        let google = prov("google", 1_785_020_986_531);
        let app = prov("app", 1_787_962_529_166);
        let scalar = |value: Value, provenance: &Provenance, seq| {
            Attribute::Scalar(Scalar {
                value,
                provenance: provenance.clone(),
                seq,
            })
        };
        let mut p = Profile::new(42);
        for (kind, value, from) in [
            ("email", "sophie.fischer970401@t-online.de", &google),
            ("google_id", "go10970401", &google),
            ("device_id", "dev-2b520e3ef2dc7802", &app),
        ] {
            p.identifiers.push(StoredIdentifier {
                id: Identifier {
                    kind: kind.into(),
                    value: value.into(),
                },
                provenance: from.clone(),
            });
        }
        p.attributes
            .insert("birth_date".into(), scalar(Value::Date(6688), &google, 7));
        p.attributes.insert(
            "first_name".into(),
            scalar(Value::Text("Sophie".into()), &google, 7),
        );
        p.attributes.insert(
            "last_name".into(),
            scalar(Value::Text("Fischer".into()), &google, 7),
        );
        p.attributes.insert(
            "language".into(),
            scalar(Value::Text("de".into()), &app, 1_498_112),
        );
        for purpose in ["marketing", "custom_audiences"] {
            let changes = [(&google, 7), (&app, 1_498_112)]
                .into_iter()
                .map(|(from, seq)| ConsentChange {
                    granted: true,
                    provenance: from.clone(),
                    seq,
                })
                .collect();
            p.consent.insert(purpose.into(), changes);
        }
        for from in [&google, &app] {
            let seen = SourceSeen {
                records: 1,
                first_seen: from.observed_at,
                last_seen: from.observed_at,
            };
            p.sources.insert(from.source.clone(), seen);
        }
        p.records = 2;
        p
    }

    #[test]
    fn a_typical_profile_packs_to_under_two_thirds_of_its_older_form() {
        let p = typical_profile();
        let mut packed = Vec::new();
        codec::encode_packed_into(&p, &mut packed);
        let mut older = Vec::new();
        codec::encode_compressed_into(&p, &mut older);
        assert!(
            packed.len() * 3 < older.len() * 2,
            "packed {} bytes, older form {}",
            packed.len(),
            older.len()
        );
        let back: Profile = codec::decode_packed("profile", &packed).unwrap();
        assert_eq!(back, p);
    }

    /// The identifiers' view reads the leading fields only: bytes after them, which a
    /// whole read rejects, are not looked at.
    #[test]
    fn the_identifiers_view_does_not_read_past_the_identifiers() {
        let p = typical_profile();
        let mut body = body_of(&p);
        body.push(0);
        let value = packed_value_of_body(&body);
        let mut plain = Vec::new();
        assert!(codec::unpack_body_into("profile", &value, &mut plain).unwrap());
        let whole = codec::decode_packed_body::<BorrowedProfile>("profile", &plain);
        let error = whole.err().expect("a whole read rejects trailing bytes");
        assert!(error.to_string().contains("trailing bytes"), "{error}");
        let leading = codec::decode_packed_body_prefix("profile", &plain).unwrap();
        let view = identities_view(leading).unwrap();
        let mut expected = ProfileView::of(&p);
        expected.scalars.clear();
        assert_eq!(format!("{view:?}"), format!("{expected:?}"));
        assert!(!view.identifiers.is_empty());
    }

    #[test]
    fn a_huge_claimed_length_is_an_error_not_an_allocation() {
        // A profile body (id 0, no source names, no records) and an event chunk body (a
        // known source) whose `times` claim u64::MAX bytes, then 2^44 (found by review:
        // bincode allocated the claimed length first, and 2^44 aborted the process).
        for huge in [u64::MAX, 1 << 44] {
            let mut profile = vec![0, 0, 0, 253];
            profile.extend_from_slice(&huge.to_le_bytes());
            let mut chunk = vec![1, 0, 253];
            chunk.extend_from_slice(&huge.to_le_bytes());
            let err = codec::decode_packed::<Profile>("profile", &packed_value_of_body(&profile))
                .unwrap_err();
            assert!(err.to_string().starts_with("corrupted profile"), "{err}");
            let err =
                codec::decode_packed::<EventChunk>("event chunk", &packed_value_of_body(&chunk))
                    .unwrap_err();
            assert!(
                err.to_string().starts_with("corrupted event chunk"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_value_referring_to_a_missing_origin_is_an_error() {
        let p = typical_profile();
        let mut body = body_of(&p);
        // Remove the origins table: every value then refers to an origin that is not there.
        let packed: PackedProfile<ShortText, Value> =
            bincode::serde::decode_from_slice(&body, bincode::config::standard())
                .unwrap()
                .0;
        let mut emptied = packed;
        emptied.times = ByteBuf::from(Vec::new());
        emptied.source_records.clear();
        body.clear();
        bincode::serde::encode_into_std_write(&emptied, &mut body, bincode::config::standard())
            .unwrap();
        let err = codec::decode_packed::<Profile>("profile", &packed_value_of_body(&body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("origin 0 out of range"), "{err}");
    }

    /// Damaged bytes that repeat an attribute name view as unpacking reads them: the
    /// last of equal names stands (found by review: the property test above did not
    /// tell first from last).
    #[test]
    fn a_repeated_attribute_name_keeps_the_last_value() {
        let mut p = Profile::new(1);
        let provenance = Provenance {
            source: "crm".into(),
            observed_at: 5,
        };
        for (name, text) in [("zza", "FIRST"), ("zzb", "SECND"), ("zzc", "THIRD")] {
            let scalar = Scalar {
                value: Value::Text(text.into()),
                provenance: provenance.clone(),
                seq: 1,
            };
            p.attributes.insert(name.into(), Attribute::Scalar(scalar));
        }
        for (from, to, expected) in [
            (b"zzb", b"zza", "SECND"),
            (b"zzc", b"zza", "THIRD"),
            (b"zza", b"zzc", "THIRD"),
        ] {
            let mut body = body_of(&p);
            let at = body.windows(3).position(|w| w == from).unwrap();
            body[at..at + 3].copy_from_slice(to);
            let value = packed_value_of_body(&body);
            let unpacked: Profile = codec::decode_packed("profile", &value).unwrap();
            let mut buffer = Vec::new();
            let borrowed =
                codec::decode_packed_borrowed::<BorrowedProfile>("profile", &value, &mut buffer)
                    .unwrap()
                    .unwrap();
            let view = profile_view(borrowed).unwrap();
            let name = std::str::from_utf8(to).unwrap();
            assert_eq!(view.scalar(name), Some(ScalarView::Text(expected)));
            assert_eq!(
                format!("{view:?}"),
                format!("{:?}", ProfileView::of(&unpacked))
            );
        }
    }
}
