//! Tests of the export stage through the embedding API: who is exported (policy,
//! suppression), what the five formats contain, incremental sync.

mod formats;
mod properties;
mod suppression;
mod sync;

use cidb::export::{hash::sha256_hex, ExportOptions, ExportReport, Format};
use cidb::query::Segments;
use cidb::Engine;
use std::collections::BTreeSet;

/// A person as the tests ingest them: distinct identifiers per index, so no merges unless
/// a test makes them.
pub fn person(i: usize, country: &str, consent: Option<bool>, phone: bool) -> String {
    let consent = match consent {
        Some(c) => format!(r#","consent":{{"custom_audiences":{c}}}"#),
        None => String::new(),
    };
    let phone = if phone {
        format!(r#","phone":"06 {:08}""#, 10_000_000 + i)
    } else {
        String::new()
    };
    format!(
        r#"{{"source":"crm","identifiers":{{"email":"Person.{i}@Example.com"{phone}}},"attributes":{{"country":"{country}","first_name":"Name{i}"}}{consent}}}"#
    )
}

/// Meta and Google identifier hashes of `person(i, ..)`.
pub fn person_hashes(i: usize, phone: bool, google: bool) -> Vec<String> {
    let mut v = vec![sha256_hex(&format!("person.{i}@example.com"))];
    if phone {
        let digits = format!("316{:08}", 10_000_000 + i);
        v.push(sha256_hex(&if google {
            format!("+{digits}")
        } else {
            digits
        }));
    }
    v
}

/// Runs an export into memory.
pub fn export(db: &Engine, segment: &str, options: &ExportOptions) -> (ExportReport, String) {
    let mut out = Vec::new();
    let report = Segments::new(db)
        .export(segment, None, options, &mut out)
        .expect("export");
    (report, String::from_utf8(out).expect("UTF-8 output"))
}

/// Every identifier hash (email and phone cells) in an output, in the format's layout.
pub fn identifier_hashes(format: Format, output: &str) -> Vec<String> {
    let mut out = Vec::new();
    match format {
        Format::Hashes => out.extend(output.lines().map(str::to_string)),
        Format::MetaApi => {
            for line in output.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                for row in v["payload"]["data"].as_array().expect("data") {
                    for cell in &row.as_array().expect("row")[..2] {
                        out.push(cell.as_str().expect("string").to_string());
                    }
                }
            }
        }
        Format::GoogleApi => {
            for line in output.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                for op in v["operations"].as_array().expect("operations") {
                    let body = op.get("create").or_else(|| op.get("remove")).expect("verb");
                    for id in body["userIdentifiers"].as_array().expect("ids") {
                        for key in ["hashedEmail", "hashedPhoneNumber"] {
                            if let Some(h) = id.get(key) {
                                out.push(h.as_str().expect("string").to_string());
                            }
                        }
                    }
                }
            }
        }
        Format::MetaCsv | Format::GoogleCsv => {
            let columns = if format == Format::MetaCsv { 6 } else { 2 };
            let mut r = csv_reader(output);
            for rec in r.records() {
                let rec = rec.expect("CSV row");
                out.extend(rec.iter().take(columns).map(str::to_string));
            }
        }
    }
    out.retain(|h| !h.is_empty());
    out
}

fn csv_reader(s: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(s.as_bytes())
}

/// Whether `s` is 64 lower-case hex characters.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A set from an iterator of strings.
pub fn set<I: IntoIterator<Item = String>>(i: I) -> BTreeSet<String> {
    i.into_iter().collect()
}
