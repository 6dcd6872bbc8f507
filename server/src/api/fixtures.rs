//! Engine values for the conversion tests.

/// A profile with a value of every kind, an event and a merge.
pub fn view() -> engine::ProfileView {
    let provenance = engine::Provenance {
        source: "crm".into(),
        observed_at: 1_000,
    };
    let mut profile = engine::Profile::new(7);
    profile.identifiers.push(engine::StoredIdentifier {
        id: engine::Identifier {
            kind: "email".into(),
            value: "ann@example.com".into(),
        },
        provenance: provenance.clone(),
    });
    for (name, value) in [
        ("city", engine::Value::Text("Delft".into())),
        ("ltv", engine::Value::Number(12.5)),
        ("vip", engine::Value::Bool(true)),
        ("birth_date", engine::Value::Date(2716)),
        ("tags", engine::Value::List(vec!["a".into()])),
    ] {
        profile.attributes.insert(
            name.into(),
            engine::Attribute::Scalar(engine::Scalar {
                value,
                provenance: provenance.clone(),
                seq: 2,
            }),
        );
    }
    profile.attributes.insert(
        "interests".into(),
        engine::Attribute::List(vec![engine::ListItem {
            value: "running".into(),
            provenance: smallvec_of(provenance.clone()),
        }]),
    );
    profile.consent.insert(
        "marketing".into(),
        vec![engine::ConsentChange {
            granted: true,
            provenance: provenance.clone(),
            seq: 2,
        }],
    );
    profile.sources.insert(
        "crm".into(),
        engine::SourceSeen {
            records: 2,
            first_seen: 900,
            last_seen: 1_000,
        },
    );
    profile.merged_from.push(8);
    profile.records = 2;
    profile.events = 1;
    engine::ProfileView {
        profile,
        events: vec![engine::EventChunk {
            source: "shop".into(),
            observed_at: 1_000,
            events: vec![engine::Event {
                kind: "purchase".into(),
                at: 999,
                category: Some("jeans".into()),
                value: Some(59.95),
            }],
        }],
        merges: vec![engine::MergeLogEntry {
            survivor: 7,
            absorbed: 8,
            linked_by: engine::Identifier {
                kind: "email".into(),
                value: "ann@example.com".into(),
            },
            source: "crm".into(),
            observed_at: 1_000,
            seq: 3,
        }],
    }
}

fn smallvec_of(p: engine::Provenance) -> engine::ProvenanceList {
    std::iter::once(p).collect()
}
