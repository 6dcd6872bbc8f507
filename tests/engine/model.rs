//! Model-based property test: random streams of records, in random batches with reopens in
//! between, against a naive model (union-find over identifiers, latest-wins per group,
//! events following merges). Each batch is either one `ingest_json` call or a JSON Lines
//! import cut into batches of two records, which the engine resolves while the previous
//! batch commits. After every run the indexes must equal a rebuild from the stored
//! profiles (`check`).
//!
//! Cases: `CIDB_MODEL_CASES` (default 24).

use cidb::{Attribute, Config, Engine, IdentityRules, ImportOptions, Lookup, Value};
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub(super) struct Rec {
    source: &'static str,
    pub(super) ids: Vec<(&'static str, String)>,
    pub(super) observed_at: i64,
    city: Option<&'static str>,
    interests: Vec<&'static str>,
    marketing: Option<bool>,
    events: Vec<(i64, &'static str, u32)>,
    score: Option<i32>,
}

const PHONES: &[&str] = &[
    "+31612345678",
    "+31612345679",
    "+14155552671",
    "+442079460958",
    "+4917112345678",
];

/// A record: mostly a full one (identifiers, attributes, consent, events), sometimes
/// live traffic (one or two identifiers and events only, from `web` or `app`), which the
/// engine stores without rewriting a known person's profile.
pub(super) fn rec() -> impl Strategy<Value = Rec> {
    prop_oneof![3 => full_rec(), 2 => events_only_rec()]
}

fn event() -> impl Strategy<Value = (i64, &'static str, u32)> {
    (
        0..50i64,
        prop_oneof![Just("jeans"), Just("shoes")],
        0..100u32,
    )
}

fn events_only_rec() -> impl Strategy<Value = Rec> {
    let id = prop_oneof![
        (0..12u8).prop_map(|i| ("email", format!("p{i}@x.com"))),
        (0..PHONES.len()).prop_map(|i| ("phone", PHONES[i].to_string())),
        (0..6u8).prop_map(|i| ("crm_id", format!("C{i}"))),
    ];
    (
        proptest::collection::vec(id, 1..3),
        prop_oneof![Just("web"), Just("app")],
        0..1000i64,
        proptest::collection::vec(event(), 1..3),
    )
        .prop_map(|(ids, source, observed_at, events)| Rec {
            source,
            ids,
            observed_at,
            city: None,
            interests: Vec::new(),
            marketing: None,
            events,
            score: None,
        })
}

fn full_rec() -> impl Strategy<Value = Rec> {
    let id = prop_oneof![
        (0..12u8).prop_map(|i| ("email", format!("p{i}@x.com"))),
        (0..PHONES.len()).prop_map(|i| ("phone", PHONES[i].to_string())),
        (0..6u8).prop_map(|i| ("crm_id", format!("C{i}"))),
    ];
    (
        proptest::collection::vec(id, 1..4),
        0..1000i64,
        proptest::option::of(prop_oneof![Just("Utrecht"), Just("Delft"), Just("Gent")]),
        proptest::collection::vec(
            prop_oneof![Just("running"), Just("travel"), Just("yoga")],
            0..3,
        ),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec(event(), 0..3),
        proptest::option::of(-5..50i32),
    )
        .prop_map(
            |(ids, observed_at, city, interests, marketing, events, score)| Rec {
                source: "crm",
                ids,
                observed_at,
                city,
                interests,
                marketing,
                events,
                score,
            },
        )
}

pub(super) fn to_json(r: &Rec) -> String {
    let mut ids: HashMap<&str, Vec<String>> = HashMap::new();
    for (k, v) in &r.ids {
        ids.entry(k).or_default().push(v.clone());
    }
    let mut attrs = serde_json::Map::new();
    if let Some(c) = r.city {
        attrs.insert("city".into(), c.into());
    }
    if !r.interests.is_empty() {
        attrs.insert("interests".into(), r.interests.clone().into());
    }
    if let Some(s) = r.score {
        attrs.insert("score".into(), s.into());
    }
    let mut json = serde_json::json!({
        "source": r.source,
        "observed_at": cidb::format_rfc3339(1_700_000_000_000 + r.observed_at * 1000),
        "identifiers": ids,
        "attributes": attrs,
    });
    if let Some(m) = r.marketing {
        json["consent"] = serde_json::json!({ "marketing": m });
    }
    if !r.events.is_empty() {
        json["events"] = r
            .events
            .iter()
            .map(|(day, cat, v)| {
                serde_json::json!({"type":"purchase","at":cidb::format_rfc3339(1_700_000_000_000 + day * 86_400_000),"category":cat,"value":v})
            })
            .collect();
    }
    json.to_string()
}

/// Union-find over identifier strings.
struct Groups(HashMap<String, String>);

impl Groups {
    fn find(&mut self, x: &str) -> String {
        let parent = self
            .0
            .entry(x.to_string())
            .or_insert_with(|| x.to_string())
            .clone();
        if parent == x {
            return parent;
        }
        let root = self.find(&parent);
        self.0.insert(x.to_string(), root.clone());
        root
    }

    fn union(&mut self, a: &str, b: &str) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0.insert(ra, rb);
        }
    }
}

fn unlimited() -> Config {
    let mut rules = IdentityRules::default();
    rules.limits.clear();
    Config::default()
        .with_identity_rules(rules)
        .with_checkpoint_min_dirty(3)
        .with_import_batch_records(2)
        // A batch with one events-only record writes its chunk under its own key, one
        // with more writes to the event journal: the streams mix both.
        .with_journal_min_chunks(2)
}

/// How a batch of the stream reaches the engine.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// One atomic `ingest_json` call.
    Ingest,
    /// A JSON Lines import (committed two records at a time, overlapped).
    Import,
}

fn run(batches: Vec<(Vec<Rec>, bool, Via)>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Engine::open_with(dir.path(), unlimited()).unwrap();
    let mut groups = Groups(HashMap::new());
    let mut all: Vec<Rec> = Vec::new();
    for (batch, reopen, via) in batches {
        let lines: Vec<String> = batch.iter().map(to_json).collect();
        let report = match via {
            Via::Ingest => db.ingest_json(&lines).unwrap(),
            Via::Import => {
                let file = lines.join("\n");
                db.import_jsonl(file.as_bytes(), &ImportOptions::default(), &mut |_| {})
                    .unwrap()
            }
        };
        prop_assert_eq!(report.rejected_count, 0);
        prop_assert_eq!(report.records, batch.len() as u64);
        for r in &batch {
            let key = |(k, v): &(&str, String)| format!("{k}={v}");
            for w in r.ids.windows(2) {
                groups.union(&key(&w[0]), &key(&w[1]));
            }
            groups.find(&key(&r.ids[0]));
        }
        all.extend(batch);
        if reopen {
            drop(db);
            db = Engine::open_with(dir.path(), unlimited()).unwrap();
        }
    }
    let check = db.check().unwrap();
    prop_assert!(check.is_clean(), "{:#?}", check.problems);
    // Same grouping as the model.
    let keys: Vec<String> = groups.0.keys().cloned().collect();
    let mut roots: HashMap<String, u32> = HashMap::new();
    for key in &keys {
        let (kind, value) = key.split_once('=').unwrap();
        let pid = db
            .lookup(&Lookup::Identifier(kind.into(), value.into()))
            .unwrap()
            .expect("identifier linked")
            .profile
            .id;
        let root = groups.find(key);
        match roots.get(&root) {
            Some(p) => prop_assert_eq!(*p, pid, "{} split from its group", key),
            None => {
                prop_assert!(
                    !roots.values().any(|p| *p == pid),
                    "{} merged with another group",
                    key
                );
                roots.insert(root, pid);
            }
        }
    }
    prop_assert_eq!(db.stats().profiles, roots.len() as u64);
    // Every event ends up with its group's profile, whatever merged when.
    for (root, pid) in &roots {
        let expected: usize = all
            .iter()
            .filter(|r| groups.find(&format!("{}={}", r.ids[0].0, r.ids[0].1)) == *root)
            .map(|r| r.events.len())
            .sum();
        let view = db.lookup(&Lookup::Id(*pid)).unwrap().unwrap();
        let stored: usize = view.events.iter().map(|c| c.events.len()).sum();
        prop_assert_eq!(stored, expected, "events of group {}", root);
    }
    // Each record is counted in its group's profile, by source, whatever merged when and
    // whether or not the record rewrote the profile.
    for (root, pid) in &roots {
        let records: Vec<&Rec> = all
            .iter()
            .filter(|r| groups.find(&format!("{}={}", r.ids[0].0, r.ids[0].1)) == *root)
            .collect();
        let profile = db.lookup(&Lookup::Id(*pid)).unwrap().unwrap().profile;
        prop_assert_eq!(profile.records, records.len() as u64, "records of {}", root);
        let events: usize = records.iter().map(|r| r.events.len()).sum();
        prop_assert_eq!(profile.events, events as u64, "events of {}", root);
        let mut sources: std::collections::BTreeMap<&str, (u64, i64, i64)> = Default::default();
        for r in &records {
            let at = 1_700_000_000_000 + r.observed_at * 1000;
            let seen = sources.entry(r.source).or_insert((0, at, at));
            *seen = (seen.0 + 1, seen.1.min(at), seen.2.max(at));
        }
        let stored: std::collections::BTreeMap<&str, (u64, i64, i64)> = profile
            .sources
            .iter()
            .map(|(s, seen)| (s.as_str(), (seen.records, seen.first_seen, seen.last_seen)))
            .collect();
        prop_assert_eq!(stored, sources, "sources of {}", root);
    }
    // Latest observation wins per group (ties: later record).
    for (root, pid) in &roots {
        let winner = all
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.city.is_some() && groups.find(&format!("{}={}", r.ids[0].0, r.ids[0].1)) == *root
            })
            .max_by_key(|(i, r)| (r.observed_at, *i))
            .and_then(|(_, r)| r.city);
        let profile = db.lookup(&Lookup::Id(*pid)).unwrap().unwrap().profile;
        let stored = match profile.attributes.get("city") {
            Some(Attribute::Scalar(s)) => match &s.value {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            },
            _ => None,
        };
        prop_assert_eq!(stored.as_deref(), winner);
    }
    Ok(())
}

pub(super) fn cases() -> u32 {
    crate::support::env_number("CIDB_MODEL_CASES", 24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn random_streams_match_the_model_and_a_rebuild(
        batches in proptest::collection::vec(
            (
                proptest::collection::vec(rec(), 1..8),
                any::<bool>(),
                prop_oneof![Just(Via::Ingest), Just(Via::Import)],
            ),
            1..6,
        )
    ) {
        run(batches)?;
    }
}

// ---------------------------------------------------------------------------------------
// The same model with erasure, objections, suppression lists and reopens between batches,
// and a property of the identity limits.

/// One step of a privacy stream.
#[derive(Debug, Clone)]
enum Step {
    /// A batch of records, one `ingest_json` call or an overlapped import.
    Batch(Vec<Rec>, Via),
    /// Erases the person holding `p{i}@x.com` (default: onto the `erased` list).
    Forget(u8),
    /// An objection by `p{i}@x.com` (the person's emails and phones, or that email alone).
    Object(u8),
    /// Withdraws the oldest objection still recorded.
    Withdraw,
    /// A raw email or phone onto the list `optout`.
    Suppress((&'static str, String)),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let id = prop_oneof![
        (0..12u8).prop_map(|i| ("email", format!("p{i}@x.com"))),
        (0..PHONES.len()).prop_map(|i| ("phone", PHONES[i].to_string())),
    ];
    prop_oneof![
        6 => (
            proptest::collection::vec(rec(), 1..6),
            prop_oneof![Just(Via::Ingest), Just(Via::Import)],
        )
            .prop_map(|(recs, via)| Step::Batch(recs, via)),
        2 => (0..12u8).prop_map(Step::Forget),
        2 => (0..4u8).prop_map(Step::Object),
        2 => Just(Step::Withdraw),
        2 => id.prop_map(Step::Suppress),
        1 => Just(Step::Reopen),
    ]
}

/// A person of the model: identifiers as `kind=value`, events held, and the latest city
/// as (observed_at, ingest order, city).
#[derive(Debug, Clone, Default)]
struct Person {
    ids: std::collections::BTreeSet<String>,
    events: usize,
    city: Option<(i64, usize, &'static str)>,
}

/// SHA-256 digests (hex) of the forms platforms hash: the value, and a phone's digits.
fn digests_of(id: &str) -> Vec<String> {
    use cidb::export::hash::sha256_hex;
    let (kind, value) = id.split_once('=').unwrap();
    match kind {
        "email" => vec![sha256_hex(value)],
        "phone" => vec![sha256_hex(value), sha256_hex(&value[1..])],
        _ => vec![],
    }
}

struct PrivacyModel {
    people: Vec<Person>,
    order: usize,
    /// Digests on the `erased` and `optout` lists.
    listed: std::collections::BTreeSet<String>,
    /// Objections in order: their digests.
    objections: Vec<std::collections::BTreeSet<String>>,
}

impl PrivacyModel {
    fn holder(&self, id: &str) -> Option<usize> {
        self.people.iter().position(|p| p.ids.contains(id))
    }

    fn add(&mut self, r: &Rec) {
        let ids: Vec<String> = r.ids.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut merged = Person::default();
        let mut keep = Vec::new();
        for (i, p) in std::mem::take(&mut self.people).into_iter().enumerate() {
            let _ = i;
            if ids.iter().any(|id| p.ids.contains(id)) {
                merged.ids.extend(p.ids);
                merged.events += p.events;
                merged.city = merged.city.max(p.city);
            } else {
                keep.push(p);
            }
        }
        merged.ids.extend(ids);
        merged.events += r.events.len();
        self.order += 1;
        if let Some(c) = r.city {
            merged.city = merged.city.max(Some((r.observed_at, self.order, c)));
        }
        keep.push(merged);
        self.people = keep;
    }

    fn suppressed_digests(&self) -> std::collections::BTreeSet<String> {
        let mut all = self.listed.clone();
        for o in &self.objections {
            all.extend(o.iter().cloned());
        }
        all
    }
}

fn run_privacy(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Engine::open_with(dir.path(), unlimited()).unwrap();
    let mut model = PrivacyModel {
        people: Vec::new(),
        order: 0,
        listed: Default::default(),
        objections: Vec::new(),
    };
    let mut objection_ids: Vec<u64> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Batch(recs, via) => {
                let lines: Vec<String> = recs.iter().map(to_json).collect();
                let report = match via {
                    Via::Ingest => db.ingest_json(&lines).unwrap(),
                    Via::Import => db
                        .import_jsonl(
                            lines.join("\n").as_bytes(),
                            &ImportOptions::default(),
                            &mut |_| {},
                        )
                        .unwrap(),
                };
                prop_assert_eq!(report.rejected_count, 0);
                for r in recs {
                    model.add(r);
                }
            }
            Step::Forget(i) => {
                let email = format!("p{i}@x.com");
                let report = db
                    .forget(
                        &Lookup::Email(email.clone()),
                        &cidb::ForgetOptions::default(),
                    )
                    .unwrap();
                let held = model.holder(&format!("email={email}"));
                prop_assert_eq!(report.found, held.is_some());
                if let Some(h) = held {
                    let person = model.people.remove(h);
                    for id in &person.ids {
                        model.listed.extend(digests_of(id));
                    }
                }
            }
            Step::Object(i) => {
                let email = format!("email=p{i}@x.com");
                let objection = db
                    .object(&Lookup::Email(format!("p{i}@x.com")), "email")
                    .unwrap();
                let mut covered: std::collections::BTreeSet<String> =
                    digests_of(&email).into_iter().collect();
                if let Some(h) = model.holder(&email) {
                    for id in &model.people[h].ids {
                        covered.extend(digests_of(id));
                    }
                }
                let recorded: std::collections::BTreeSet<String> =
                    objection.digests.iter().cloned().collect();
                prop_assert_eq!(&recorded, &covered, "digests of objection {}", n);
                model.objections.push(covered);
                objection_ids.push(objection.id);
            }
            Step::Withdraw => {
                if !objection_ids.is_empty() {
                    let id = objection_ids.remove(0);
                    prop_assert!(db.withdraw_objection(id).unwrap());
                    model.objections.remove(0);
                }
            }
            Step::Suppress((kind, value)) => {
                let line = format!("{value}\n");
                db.suppress_import("optout", line.as_bytes(), None).unwrap();
                model
                    .listed
                    .extend(digests_of(&format!("{kind}={value}")).into_iter().take(1));
            }
            Step::Reopen => {
                drop(db);
                db = Engine::open_with(dir.path(), unlimited()).unwrap();
            }
        }
        // Grouping: every identifier of a person links to one profile, one per person.
        let mut pids = Vec::new();
        for person in &model.people {
            let mut pid = None;
            for id in &person.ids {
                let (kind, value) = id.split_once('=').unwrap();
                let found = db
                    .lookup(&Lookup::Identifier(kind.into(), value.into()))
                    .unwrap()
                    .map(|v| v.profile.id);
                prop_assert!(found.is_some(), "step {}: {} not linked", n, id);
                prop_assert!(pid.is_none() || pid == found, "step {}: {} split", n, id);
                pid = found;
            }
            pids.push(pid.unwrap());
        }
        let distinct: std::collections::BTreeSet<u32> = pids.iter().copied().collect();
        prop_assert_eq!(distinct.len(), pids.len(), "step {}: two people merged", n);
        prop_assert_eq!(db.stats().profiles, pids.len() as u64, "step {}", n);
        // Events and latest city per person.
        for (person, pid) in model.people.iter().zip(&pids) {
            let view = db.lookup(&Lookup::Id(*pid)).unwrap().unwrap();
            let stored: usize = view.events.iter().map(|c| c.events.len()).sum();
            prop_assert_eq!(stored, person.events, "step {}: events", n);
            let city = match view.profile.attributes.get("city") {
                Some(Attribute::Scalar(s)) => match &s.value {
                    Value::Text(t) => Some(t.to_string()),
                    _ => None,
                },
                _ => None,
            };
            prop_assert_eq!(
                city.as_deref(),
                person.city.map(|c| c.2),
                "step {}: city",
                n
            );
        }
        // Suppression: exactly the people with a listed or objected digest.
        let digests = model.suppressed_digests();
        let expected: roaring::RoaringBitmap = model
            .people
            .iter()
            .zip(&pids)
            .filter(|(p, _)| {
                p.ids
                    .iter()
                    .flat_map(|id| digests_of(id))
                    .any(|d| digests.contains(&d))
            })
            .map(|(_, pid)| *pid)
            .collect();
        let got = db.snapshot().suppressed(None).cloned().unwrap_or_default();
        prop_assert_eq!(got, expected, "step {}: suppressed", n);
    }
    let check = db.check().unwrap();
    prop_assert!(check.is_clean(), "{:#?}", check.problems);
    Ok(())
}

/// Identity limits (the default rules): a record's identifier that would push a profile
/// past a limit is not attached (and says so in a warning), no merge exceeds a limit, and
/// every identifier of every accepted record is either linked or named in a warning.
fn run_limits(batches: Vec<Vec<Rec>>, reopen_after: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        Config::default()
            .with_checkpoint_min_dirty(3)
            .with_import_batch_records(2)
    };
    let mut db = Engine::open_with(dir.path(), config()).unwrap();
    let rules = IdentityRules::default();
    for (n, batch) in batches.iter().enumerate() {
        let lines: Vec<String> = batch.iter().map(to_json).collect();
        let report = db.ingest_json(&lines).unwrap();
        prop_assert_eq!(report.rejected_count, 0);
        for (i, r) in batch.iter().enumerate() {
            for (kind, value) in &r.ids {
                let linked = db
                    .lookup(&Lookup::Identifier((*kind).into(), value.clone()))
                    .unwrap()
                    .is_some();
                let warned = report
                    .warnings
                    .iter()
                    .any(|w| w.line == i as u64 + 1 && w.field == format!("identifiers.{kind}"));
                prop_assert!(
                    linked || warned,
                    "batch {}: {}={} lost silently",
                    n,
                    kind,
                    value
                );
            }
        }
        if n == reopen_after {
            drop(db);
            db = Engine::open_with(dir.path(), config()).unwrap();
        }
    }
    let live = cidb::query::Segments::new(&db)
        .evaluate("ALL")
        .unwrap()
        .into_bitmap();
    for pid in &live {
        let profile = db.lookup(&Lookup::Id(pid)).unwrap().unwrap().profile;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for i in &profile.identifiers {
            *counts.entry(i.id.kind.to_string()).or_default() += 1;
        }
        for (kind, count) in counts {
            prop_assert!(
                count <= rules.limit(&kind),
                "profile {} holds {} {} identifiers (limit {})",
                pid,
                count,
                kind,
                rules.limit(&kind)
            );
        }
    }
    let check = db.check().unwrap();
    prop_assert!(check.is_clean(), "{:#?}", check.problems);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn privacy_streams_match_the_model(steps in proptest::collection::vec(step(), 1..14)) {
        run_privacy(steps)?;
    }

    #[test]
    fn identity_limits_hold_and_lose_nothing_silently(
        batches in proptest::collection::vec(proptest::collection::vec(rec(), 1..8), 1..5),
        reopen_after in 0..5usize,
    ) {
        run_limits(batches, reopen_after)?;
    }
}
