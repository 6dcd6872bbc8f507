//! The unified profile and the rules that fold records and other profiles into it
//! (records.md "Identity resolution"): latest `observed_at` wins for scalars (ties: the
//! later ingest), lists union, consent latest per purpose with its history kept.

use crate::base::time::Millis;
use crate::input::record::{Identifier, Record, ShortText, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Dense profile id; roaring bitmaps hold these.
pub type ProfileId = u32;

/// The sources of one list value. Nearly every value has one, kept inline (no allocation
/// per list value); serialized like a `Vec`.
pub type ProvenanceList = smallvec::SmallVec<[Provenance; 1]>;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The record's source.
    pub source: ShortText,
    /// The record's `observed_at`.
    pub observed_at: Millis,
}

/// An identifier held by a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredIdentifier {
    /// Type and normalized value.
    pub id: Identifier,
    /// The record that first attached it.
    pub provenance: Provenance,
}

/// A scalar attribute: the winning value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    /// The value (never a list).
    pub value: Value,
    /// Its provenance.
    pub provenance: Provenance,
    /// Ingest sequence of the record, to break `observed_at` ties.
    pub seq: u64,
}

/// One element of a list attribute, with every source that reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListItem {
    /// The element as first given.
    pub value: ShortText,
    /// One entry per source (the latest observation from it).
    pub provenance: ProvenanceList,
}

/// A stored attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Attribute {
    /// Latest observation wins.
    Scalar(Scalar),
    /// Union of all sources' values.
    List(Vec<ListItem>),
}

/// One consent change as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentChange {
    /// Granted or withdrawn.
    pub granted: bool,
    /// Its provenance.
    pub provenance: Provenance,
    /// Ingest sequence, to break ties.
    pub seq: u64,
}

/// Per-source record counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSeen {
    /// Records from this source.
    pub records: u64,
    /// Earliest `observed_at`.
    pub first_seen: Millis,
    /// Latest `observed_at`.
    pub last_seen: Millis,
}

/// A unified profile. Events are stored beside it (see `store`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Its id.
    pub id: ProfileId,
    /// Identifiers, in the order they were attached.
    pub identifiers: Vec<StoredIdentifier>,
    /// Attributes by name.
    pub attributes: BTreeMap<ShortText, Attribute>,
    /// Consent history per purpose, ordered by (`observed_at`, seq).
    pub consent: BTreeMap<ShortText, Vec<ConsentChange>>,
    /// Sources that contributed.
    pub sources: BTreeMap<ShortText, SourceSeen>,
    /// Profiles merged into this one (directly).
    pub merged_from: Vec<ProfileId>,
    /// Records folded into this profile.
    pub records: u64,
    /// Events held.
    pub events: u64,
}

impl Profile {
    /// An empty profile.
    pub fn new(id: ProfileId) -> Self {
        Profile {
            id,
            identifiers: Vec::new(),
            attributes: BTreeMap::new(),
            consent: BTreeMap::new(),
            sources: BTreeMap::new(),
            merged_from: Vec::new(),
            records: 0,
            events: 0,
        }
    }

    /// Distinct values of identifier type `kind`.
    pub fn identifier_count(&self, kind: &str) -> usize {
        self.identifiers
            .iter()
            .filter(|i| i.id.kind == kind)
            .count()
    }

    /// Whether the profile holds `id`.
    pub fn has_identifier(&self, id: &Identifier) -> bool {
        self.identifiers.iter().any(|i| i.id == *id)
    }

    /// The latest consent for `purpose`.
    pub fn consent_granted(&self, purpose: &str) -> Option<bool> {
        self.consent.get(purpose)?.last().map(|c| c.granted)
    }

    /// The consent for `purpose` as it stood at time `at` (ms since the epoch): the last
    /// change observed at or before it; `None` when nothing was known yet.
    pub fn consent_at(&self, purpose: &str, at: Millis) -> Option<bool> {
        self.consent
            .get(purpose)?
            .iter()
            .take_while(|c| c.provenance.observed_at <= at)
            .last()
            .map(|c| c.granted)
    }

    /// Attaches an identifier (the caller has checked limits).
    pub fn attach(&mut self, id: Identifier, provenance: Provenance) {
        if !self.has_identifier(&id) {
            self.identifiers.push(StoredIdentifier { id, provenance });
        }
    }

    /// Folds a record's attributes, consent and source into the profile (identifiers and
    /// events are handled by the writer).
    pub fn apply_record(&mut self, record: &Record, seq: u64) {
        let provenance = Provenance {
            source: record.source.clone(),
            observed_at: record.observed_at,
        };
        for (name, value) in &record.attributes {
            let incoming = match value {
                Value::List(items) => Attribute::List(
                    items
                        .iter()
                        .map(|v| ListItem {
                            value: v.clone(),
                            provenance: smallvec::smallvec![provenance.clone()],
                        })
                        .collect(),
                ),
                v => Attribute::Scalar(Scalar {
                    value: v.clone(),
                    provenance: provenance.clone(),
                    seq,
                }),
            };
            self.fold_attribute(name, incoming, seq);
        }
        for (purpose, granted) in &record.consent {
            let change = ConsentChange {
                granted: *granted,
                provenance: provenance.clone(),
                seq,
            };
            insert_consent(self.consent.entry(purpose.clone()).or_default(), change);
        }
        self.count_record(&record.source, record.observed_at, record.events.len());
    }

    /// Counts one record from `source` observed at `observed_at` carrying `events` events:
    /// all that a record with neither new identifiers, attributes nor consent changes.
    /// An event chunk stored without rewriting its profile (see `Store::slot`) is folded
    /// in with this, so it counts exactly as [`Profile::apply_record`] would have.
    pub fn count_record(&mut self, source: &ShortText, observed_at: Millis, events: usize) {
        let seen = self.sources.entry(source.clone()).or_insert(SourceSeen {
            records: 0,
            first_seen: observed_at,
            last_seen: observed_at,
        });
        seen.records += 1;
        seen.first_seen = seen.first_seen.min(observed_at);
        seen.last_seen = seen.last_seen.max(observed_at);
        self.records += 1;
        self.events += events as u64;
    }

    /// Folds another profile into this one (a merge). The caller moves events and
    /// identifier links.
    pub fn absorb(&mut self, other: Profile) {
        for sid in other.identifiers {
            if !self.has_identifier(&sid.id) {
                self.identifiers.push(sid);
            }
        }
        for (name, attr) in other.attributes {
            let seq = match &attr {
                Attribute::Scalar(s) => s.seq,
                Attribute::List(_) => 0,
            };
            self.fold_attribute(&name, attr, seq);
        }
        for (purpose, changes) in other.consent {
            let mine = self.consent.entry(purpose).or_default();
            for c in changes {
                insert_consent(mine, c);
            }
        }
        for (source, seen) in other.sources {
            match self.sources.get_mut(&source) {
                Some(s) => {
                    s.records += seen.records;
                    s.first_seen = s.first_seen.min(seen.first_seen);
                    s.last_seen = s.last_seen.max(seen.last_seen);
                }
                None => {
                    self.sources.insert(source, seen);
                }
            }
        }
        self.merged_from.push(other.id);
        self.records += other.records;
        self.events += other.events;
    }

    fn fold_attribute(&mut self, name: &ShortText, incoming: Attribute, seq: u64) {
        let Some(existing) = self.attributes.get_mut(name) else {
            self.attributes.insert(name.clone(), incoming);
            return;
        };
        match (existing, incoming) {
            (Attribute::List(items), Attribute::List(new_items)) => {
                for item in new_items {
                    union_item(items, item);
                }
            }
            (existing, incoming) => {
                if order_key(&incoming, seq) >= order_key(existing, u64::MAX) {
                    *existing = incoming;
                }
            }
        }
    }
}

/// (`observed_at`, seq) of an attribute for the latest-wins rule; a list counts as
/// observed at its latest element.
fn order_key(attr: &Attribute, list_seq: u64) -> (Millis, u64) {
    match attr {
        Attribute::Scalar(s) => (s.provenance.observed_at, s.seq),
        Attribute::List(items) => (
            items
                .iter()
                .flat_map(|i| i.provenance.iter().map(|p| p.observed_at))
                .max()
                .unwrap_or(Millis::MIN),
            if list_seq == u64::MAX { 0 } else { list_seq },
        ),
    }
}

fn union_item(items: &mut Vec<ListItem>, item: ListItem) {
    match items
        .iter_mut()
        .find(|i| crate::input::normalize::same_index_text(&i.value, &item.value))
    {
        Some(existing) => {
            for p in item.provenance {
                match existing
                    .provenance
                    .iter_mut()
                    .find(|q| q.source == p.source)
                {
                    Some(q) => q.observed_at = q.observed_at.max(p.observed_at),
                    None => existing.provenance.push(p),
                }
            }
        }
        None => items.push(item),
    }
}

/// Inserts a consent change keeping the history ordered by (`observed_at`, seq); the last
/// entry is the current consent.
fn insert_consent(history: &mut Vec<ConsentChange>, change: ConsentChange) {
    if history.contains(&change) {
        return;
    }
    let key = (change.provenance.observed_at, change.seq);
    let at = history.partition_point(|c| (c.provenance.observed_at, c.seq) <= key);
    history.insert(at, change);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        source: &str,
        at: Millis,
        attrs: Vec<(&str, Value)>,
        consent: Vec<(&str, bool)>,
    ) -> Record {
        Record {
            source: source.into(),
            observed_at: at,
            identifiers: vec![],
            attributes: attrs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            consent: consent.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            events: vec![],
        }
    }

    fn text(p: &Profile, name: &str) -> Value {
        match &p.attributes[name] {
            Attribute::Scalar(s) => s.value.clone(),
            Attribute::List(_) => panic!("list"),
        }
    }

    #[test]
    fn consent_can_be_shown_at_any_past_time() {
        let mut p = Profile::new(1);
        p.apply_record(&record("crm", 100, vec![], vec![("marketing", true)]), 1);
        p.apply_record(&record("web", 300, vec![], vec![("marketing", false)]), 2);
        // Observed earlier but ingested later: it goes into the history in time order.
        p.apply_record(&record("app", 200, vec![], vec![("marketing", true)]), 3);
        assert_eq!(p.consent_at("marketing", 99), None);
        assert_eq!(p.consent_at("marketing", 100), Some(true));
        assert_eq!(p.consent_at("marketing", 250), Some(true));
        assert_eq!(p.consent_at("marketing", 300), Some(false));
        assert_eq!(p.consent_granted("marketing"), Some(false));
        assert_eq!(p.consent["marketing"].len(), 3, "every change is kept");
        assert_eq!(p.consent_at("newsletter", 1_000), None);
    }

    #[test]
    fn latest_observation_wins_and_ties_go_to_later_ingest() {
        let mut p = Profile::new(1);
        p.apply_record(
            &record(
                "crm",
                200,
                vec![("city", Value::Text("Utrecht".into()))],
                vec![],
            ),
            1,
        );
        p.apply_record(
            &record(
                "web",
                100,
                vec![("city", Value::Text("Delft".into()))],
                vec![],
            ),
            2,
        );
        assert_eq!(text(&p, "city"), Value::Text("Utrecht".into()));
        p.apply_record(
            &record(
                "app",
                200,
                vec![("city", Value::Text("Leiden".into()))],
                vec![],
            ),
            3,
        );
        assert_eq!(text(&p, "city"), Value::Text("Leiden".into()));
    }

    #[test]
    fn lists_union_case_insensitively_with_provenance() {
        let mut p = Profile::new(1);
        let l = |v: &[&str]| Value::List(v.iter().map(|s| (*s).into()).collect());
        p.apply_record(
            &record(
                "facebook",
                1,
                vec![("likes", l(&["Nike", "Adidas"]))],
                vec![],
            ),
            1,
        );
        p.apply_record(
            &record("twitter", 2, vec![("likes", l(&["nike", "Puma"]))], vec![]),
            2,
        );
        let Attribute::List(items) = &p.attributes["likes"] else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].provenance.len(), 2);
    }

    #[test]
    fn consent_latest_per_purpose_with_history() {
        let mut p = Profile::new(1);
        p.apply_record(&record("web", 300, vec![], vec![("marketing", false)]), 1);
        p.apply_record(&record("crm", 100, vec![], vec![("marketing", true)]), 2);
        assert_eq!(p.consent_granted("marketing"), Some(false));
        assert_eq!(p.consent["marketing"].len(), 2);
        let mut q = Profile::new(2);
        q.apply_record(&record("app", 400, vec![], vec![("marketing", true)]), 3);
        p.absorb(q);
        assert_eq!(p.consent_granted("marketing"), Some(true));
        assert_eq!(p.consent["marketing"].len(), 3);
        assert_eq!(p.merged_from, vec![2]);
    }

    #[test]
    fn absorb_applies_latest_wins_across_profiles() {
        let mut a = Profile::new(1);
        a.apply_record(
            &record(
                "crm",
                500,
                vec![("tier", Value::Text("gold".into()))],
                vec![],
            ),
            1,
        );
        let mut b = Profile::new(2);
        b.apply_record(
            &record(
                "pos",
                100,
                vec![("tier", Value::Text("silver".into()))],
                vec![],
            ),
            9,
        );
        a.absorb(b);
        assert_eq!(text(&a, "tier"), Value::Text("gold".into()));
        assert_eq!(a.records, 2);
    }
}
