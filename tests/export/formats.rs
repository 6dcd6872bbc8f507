//! Format layouts, batch limits and the export report.

use super::{export, identifier_hashes, person};
use cidb::export::{
    hash::sha256_hex, ExportOptions, Format, Platform, GOOGLE_MAX_OPERATIONS, META_MAX_ROWS,
    META_SCHEMA,
};
use cidb::Engine;

#[test]
fn api_formats_split_into_bodies_at_the_platform_limits() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    let n = META_MAX_ROWS + 500;
    let records: Vec<String> = (0..n).map(|i| person(i, "NL", Some(true), false)).collect();
    for chunk in records.chunks(5_000) {
        db.ingest_json(chunk).unwrap();
    }
    let (report, out) = export(&db, "ALL", &ExportOptions::new(Format::MetaApi));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((report.rows, report.batches), (n as u64, 2));
    for (k, line) in lines.iter().enumerate() {
        let data = line["payload"]["data"].as_array().unwrap();
        assert!(data.len() <= META_MAX_ROWS);
        assert_eq!(line["payload"]["schema"], serde_json::json!(META_SCHEMA));
        assert_eq!(line["session"]["batch_seq"], k as u64 + 1);
        assert_eq!(line["session"]["last_batch_flag"], k == 1);
        assert_eq!(line["session"]["estimated_num_total"], n as u64);
    }
    assert_eq!(
        lines[0]["payload"]["data"].as_array().unwrap().len(),
        META_MAX_ROWS
    );

    let (report, out) = export(&db, "ALL", &ExportOptions::new(Format::GoogleApi));
    let sizes: Vec<usize> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["operations"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(
        sizes,
        vec![GOOGLE_MAX_OPERATIONS, n - GOOGLE_MAX_OPERATIONS]
    );
    assert_eq!(report.batches, 2);
}

#[test]
fn rows_follow_the_spec_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        r#"{"source":"crm","observed_at":"2026-01-01T00:00:00Z","identifiers":{"email":"Old.Mail@Gmail.com","phone":"+31 6 12345678","crm_id":"CRM-7"},"attributes":{"first_name":"José","last_name":"Van Der Berg","gender":"Mrs.","birth_date":"1985-03-07","city":"Zürich","zip":"1012 AB","country":"NL"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"web","observed_at":"2026-06-01T00:00:00Z","identifiers":{"email":"new@example.com","crm_id":"CRM-7"}}"#,
        r#"{"source":"web","identifiers":{"crm_id":"CRM-8"},"attributes":{"first_name":"Nomail"},"consent":{"custom_audiences":true}}"#,
    ])
    .unwrap();

    let (report, out) = export(
        &db,
        "ALL",
        &ExportOptions::new(Format::MetaApi).with_min_audience(10),
    );
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let data = line["payload"]["data"].as_array().unwrap();
    // Most recent email first with everything else; the older email on a row of its own.
    assert_eq!(data.len(), 2);
    let row = data[0].as_array().unwrap();
    let cell = |i: usize| row[i].as_str().unwrap().to_string();
    assert_eq!(cell(0), sha256_hex("new@example.com"));
    assert_eq!(cell(1), sha256_hex("31612345678"));
    assert_eq!(cell(2), sha256_hex("josé"));
    assert_eq!(cell(3), sha256_hex("vanderberg"));
    assert_eq!(cell(4), sha256_hex("f"));
    assert_eq!(
        (cell(5), cell(6), cell(7)),
        (sha256_hex("1985"), sha256_hex("03"), sha256_hex("07"))
    );
    assert_eq!(cell(8), sha256_hex("zurich"));
    assert_eq!(cell(10), sha256_hex("1012ab"));
    assert_eq!(cell(11), sha256_hex("nl"));
    assert_eq!(cell(12), "crm-7", "EXTERN_ID is lower-cased, not hashed");
    assert_eq!(data[1][0], sha256_hex("old.mail@gmail.com"));
    assert!(data[1].as_array().unwrap()[1..].iter().all(|c| c == ""));
    assert_eq!(
        report.skipped_no_identifier, 1,
        "the profile with only a crm_id"
    );
    assert_eq!(report.profiles, 1);
    assert_eq!(
        report.warnings.len(),
        1,
        "below the minimum audience: {:?}",
        report.warnings
    );

    let (_, out) = export(&db, "ALL", &ExportOptions::new(Format::GoogleApi));
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let ids = &v["operations"][0]["create"]["userIdentifiers"];
    assert_eq!(ids[0]["hashedEmail"], sha256_hex("new@example.com"));
    assert_eq!(
        ids[1]["hashedEmail"],
        sha256_hex("oldmail@gmail.com"),
        "Google's Gmail form"
    );
    assert_eq!(ids[2]["hashedPhoneNumber"], sha256_hex("+31612345678"));
    assert_eq!(
        ids[3]["addressInfo"],
        serde_json::json!({"hashedFirstName": sha256_hex("josé"), "hashedLastName": sha256_hex("van der berg"), "countryCode": "NL", "postalCode": "1012 AB"})
    );

    let (_, out) = export(&db, "ALL", &ExportOptions::new(Format::MetaCsv));
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "email,email,email,phone,phone,phone,fn,ln,gen,doby,dobm,dobd,ct,st,zip,country,extern_id"
    );
    let cells: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(cells.len(), 17);
    assert_eq!(cells[0], sha256_hex("new@example.com"));
    assert_eq!(cells[1], sha256_hex("old.mail@gmail.com"));
    assert_eq!(lines.next(), None, "one row per profile");

    let (_, out) = export(&db, "ALL", &ExportOptions::new(Format::GoogleCsv));
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Email,Phone,First Name,Last Name,Country,Zip"
    );
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &first[4..],
        ["NL", "1012 AB"],
        "country and zip in plain text"
    );

    let (_, out) = export(&db, "ALL", &ExportOptions::new(Format::Hashes));
    let hashes: Vec<&str> = out.lines().collect();
    assert_eq!(
        hashes,
        [
            sha256_hex("new@example.com"),
            sha256_hex("old.mail@gmail.com"),
            sha256_hex("31612345678")
        ],
        "emails, then phones"
    );
    assert_eq!(identifier_hashes(Format::Hashes, &out).len(), 3);
}

#[test]
fn report_counts_invalid_values_per_field() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        r#"{"source":"crm","identifiers":{"email":"a@example.com"},"attributes":{"gender":"x","zip":"1","country":"US","first_name":"n/a"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"crm","identifiers":{"email":"b@example.com"},"attributes":{"gender":"male","zip":"94043","country":"US"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"crm","identifiers":{"email":"c@example.com"},"consent":{"custom_audiences":false}}"#,
    ])
    .unwrap();
    let (report, _) = export(&db, "ALL", &ExportOptions::new(Format::MetaApi));
    assert_eq!(report.members, 3);
    assert_eq!(report.removed_by_policy, 1);
    assert_eq!(report.profiles, 2);
    assert_eq!(
        (
            report.fields["gender"].valid,
            report.fields["gender"].invalid
        ),
        (1, 1)
    );
    assert_eq!(
        (report.fields["zip"].valid, report.fields["zip"].invalid),
        (1, 1)
    );
    assert!(
        !report.fields.contains_key("first_name"),
        "a placeholder is missing, not invalid"
    );
}

#[test]
fn the_row_cache_gives_the_same_bytes_and_never_a_changed_profile() {
    let records: Vec<String> = (0..300)
        .map(|i| person(i, "NL", Some(true), i % 2 == 0))
        .collect();
    let cached_dir = tempfile::tempdir().unwrap();
    let plain_dir = tempfile::tempdir().unwrap();
    let cached = Engine::open(cached_dir.path()).unwrap();
    let plain = Engine::open_with(
        plain_dir.path(),
        cidb::Config::default().with_export_cache(false),
    )
    .unwrap();
    let change = r#"{"source":"web","observed_at":"2030-01-01T00:00:00Z","identifiers":{"email":"person.7@example.com"},"attributes":{"first_name":"Renamed"}}"#;
    for db in [&cached, &plain] {
        db.ingest_json(&records).unwrap();
    }
    for format in Format::ALL {
        let options = ExportOptions::new(format).with_min_audience(0);
        let (_, reference) = export(&plain, "ALL", &options);
        let (_, first) = export(&cached, "ALL", &options);
        let (report, second) = export(&cached, "ALL", &options);
        assert_eq!(first, reference, "{}", format.name());
        assert_eq!(second, reference, "{} from the cache", format.name());
        assert_eq!(report.profiles, 300);
    }
    for db in [&cached, &plain] {
        db.ingest_json(&[change]).unwrap();
    }
    let options = ExportOptions::new(Format::MetaApi);
    let (_, after) = export(&cached, "ALL", &options);
    assert_eq!(after, export(&plain, "ALL", &options).1);
    assert!(
        after.contains(&sha256_hex("renamed")),
        "the changed profile is rebuilt"
    );
    assert!(!after.contains(&sha256_hex("name7")));
}

/// Output that accepts `room` bytes, then fails (a client that went away mid-download).
struct CutOff {
    room: usize,
}

impl std::io::Write for CutOff {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.len() > self.room {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            ));
        }
        self.room -= data.len();
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An export whose output fails part way is still audited (marked incomplete), with
/// the profiles handed out before the failure and the policy applied.
#[test]
fn an_export_cut_off_part_way_is_audited_as_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(
        &(0..3_000)
            .map(|i| person(i, "NL", Some(true), true))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let result = cidb::query::Segments::new(&db).export(
        "ALL",
        None,
        &ExportOptions::new(Format::Hashes),
        &mut CutOff { room: 100_000 },
    );
    assert!(result.is_err(), "the output failed");
    let entries = db.audit_log(None, 10).unwrap();
    let export = entries.iter().rfind(|e| e.action == "export").unwrap();
    assert_eq!(export.details["completed"], false);
    assert_eq!(
        export.details["policy"],
        serde_json::json!(cidb::query::DEFAULT_POLICY)
    );
    assert!(export.details["profiles"].as_u64().unwrap() > 0);
}

/// `hashes` writes only email and phone hashes, so it builds and counts only those: the
/// same bytes and counts whether its rows are built or come from the row cache (filled
/// with whole rows by a `meta-api` export), and the same email and phone counts as
/// `meta-api`.
#[test]
fn a_hashes_export_counts_only_what_it_writes_built_or_cached() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        r#"{"source":"crm","identifiers":{"email":["a@example.com","a2@example.com"],"phone":"+31612345678","crm_id":"A1"},"attributes":{"first_name":"Ann","gender":"f","zip":"1012 AB","country":"NL"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"crm","identifiers":{"email":"b@example.com"},"attributes":{"gender":"x","zip":"1"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"app","identifiers":{"phone":"+14155552671"},"attributes":{"country":"US"},"consent":{"custom_audiences":true}}"#,
    ])
    .unwrap();
    let hashes = ExportOptions::new(Format::Hashes);
    let (built, built_out) = export(&db, "ALL", &hashes);
    let (meta, _) = export(&db, "ALL", &ExportOptions::new(Format::MetaApi));
    let (cached, cached_out) = export(&db, "ALL", &hashes);
    assert_eq!(built_out, cached_out);
    assert_eq!(built.fields, cached.fields);
    assert_eq!(
        built.fields.keys().copied().collect::<Vec<_>>(),
        ["email", "phone"]
    );
    assert_eq!(built.fields["email"], meta.fields["email"]);
    assert_eq!(built.fields["phone"], meta.fields["phone"]);
    assert_eq!(
        (built.fields["email"].valid, built.fields["phone"].valid),
        (3, 2)
    );
    assert!(meta.fields.contains_key("gender"));
    assert_eq!(built_out.lines().count(), 5);

    // Identifier rows are cached too, and forgotten when their profile changes.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Engine::open(fresh_dir.path()).unwrap();
    fresh
        .ingest_json(&[
            r#"{"source":"crm","identifiers":{"email":"c@example.com"},"consent":{"custom_audiences":true}}"#,
        ])
        .unwrap();
    let (_, before) = export(&fresh, "ALL", &hashes);
    assert_eq!(export(&fresh, "ALL", &hashes).1, before);
    fresh
        .ingest_json(&[
            r#"{"source":"web","identifiers":{"email":["c@example.com","c2@example.com"]}}"#,
        ])
        .unwrap();
    let (after, after_out) = export(&fresh, "ALL", &hashes);
    assert_eq!(after.fields["email"].valid, 2);
    assert!(
        after_out.contains(&sha256_hex("c2@example.com")),
        "{after_out}"
    );
}

/// A phone stored in E.164 but shorter than 8 digits (Niue's four-digit numbers) goes
/// through the platform's full phone rules with the person's country (so a `hashes`
/// export reads that profile whole, not its identifiers alone): it is hashed as
/// `meta-api` and `google-api` hash it.
#[test]
fn a_hashes_export_hashes_short_numbers_as_the_platform_formats_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open(dir.path()).unwrap();
    db.ingest_json(&[
        r#"{"source":"crm","identifiers":{"phone":"+683 7012"},"attributes":{"country":"NU"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"crm","identifiers":{"phone":"4002","email":"nu@example.com"},"attributes":{"country":"NU"},"consent":{"custom_audiences":true}}"#,
        r#"{"source":"crm","identifiers":{"phone":"+31612345678"},"consent":{"custom_audiences":true}}"#,
    ])
    .unwrap();
    for platform in [Platform::Meta, Platform::Google] {
        let hashes = ExportOptions::new(Format::Hashes).with_platform(platform);
        let (report, out) = export(&db, "ALL", &hashes);
        assert_eq!(report.fields["phone"].valid, 3, "{platform:?}");
        let api = match platform {
            Platform::Meta => Format::MetaApi,
            Platform::Google => Format::GoogleApi,
        };
        let (_, api_out) = export(&db, "ALL", &ExportOptions::new(api));
        let mut from_hashes = identifier_hashes(Format::Hashes, &out);
        let mut from_api = identifier_hashes(api, &api_out);
        from_hashes.sort();
        from_api.sort();
        assert_eq!(from_hashes, from_api, "{platform:?}");
        let short = match platform {
            Platform::Meta => "6837012",
            Platform::Google => "+6837012",
        };
        assert!(out.contains(&sha256_hex(short)), "{platform:?}: {out}");
        assert!(out.contains(&sha256_hex(match platform {
            Platform::Meta => "6834002",
            Platform::Google => "+6834002",
        })));
    }
}
