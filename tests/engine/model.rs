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
struct Rec {
    ids: Vec<(&'static str, String)>,
    observed_at: i64,
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

fn rec() -> impl Strategy<Value = Rec> {
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
        proptest::collection::vec(
            (
                0..50i64,
                prop_oneof![Just("jeans"), Just("shoes")],
                0..100u32,
            ),
            0..3,
        ),
        proptest::option::of(-5..50i32),
    )
        .prop_map(
            |(ids, observed_at, city, interests, marketing, events, score)| Rec {
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

fn to_json(r: &Rec) -> String {
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
        "source": "crm",
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

fn cases() -> u32 {
    std::env::var("CIDB_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
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
