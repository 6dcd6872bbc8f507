//! The five output formats of export.md "Formats", as streaming writers: rows go in in
//! profile-id order, bytes come out with the platforms' batch limits applied.

use super::rows::ProfileRow;
use crate::input::normalize::platform::Platform;
use serde_json::{json, Value as Json};
use std::io::{self, Write};
use std::str::FromStr;

/// Most rows in one Meta API request body.
pub const META_MAX_ROWS: usize = 10_000;
/// Most operations in one Google API request body.
pub const GOOGLE_MAX_OPERATIONS: usize = 10_000;
/// Most identifiers per person in one Google operation.
pub const GOOGLE_MAX_IDENTIFIERS: usize = 20;
/// Emails and phones in a `meta-csv` row.
const META_CSV_SLOTS: usize = 3;

/// Meta's schema for `meta-api` rows.
pub const META_SCHEMA: [&str; 13] = [
    "EMAIL",
    "PHONE",
    "FN",
    "LN",
    "GEN",
    "DOBY",
    "DOBM",
    "DOBD",
    "CT",
    "ST",
    "ZIP",
    "COUNTRY",
    "EXTERN_ID",
];

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// JSON Lines of `POST /{audience_id}/users` bodies.
    #[serde(rename = "meta-api")]
    MetaApi,
    /// CSV for manual upload to Meta.
    #[serde(rename = "meta-csv")]
    MetaCsv,
    /// JSON Lines of Google `AddOfflineUserDataJobOperations` bodies.
    #[serde(rename = "google-api")]
    GoogleApi,
    /// CSV for manual upload to Google.
    #[serde(rename = "google-csv")]
    GoogleCsv,
    /// One hash a line, emails then phones.
    #[serde(rename = "hashes")]
    Hashes,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::MetaApi,
        Format::MetaCsv,
        Format::GoogleApi,
        Format::GoogleCsv,
        Format::Hashes,
    ];

    /// Its name (`meta-api`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Format::MetaApi => "meta-api",
            Format::MetaCsv => "meta-csv",
            Format::GoogleApi => "google-api",
            Format::GoogleCsv => "google-csv",
            Format::Hashes => "hashes",
        }
    }

    /// The platform whose normalization the format uses (`hashes`: Meta unless chosen).
    pub fn platform(self) -> Platform {
        match self {
            Format::GoogleApi | Format::GoogleCsv => Platform::Google,
            _ => Platform::Meta,
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("unknown format {s:?} (expected meta-api, meta-csv, google-api, google-csv or hashes)")
            })
    }
}

/// Whether rows are added to or removed from the audience (sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Meta `POST`, Google `create`.
    Add,
    /// Meta `DELETE`, Google `remove`.
    Remove,
}

/// What a writer wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows (lines of a CSV or of `hashes`, rows or operations of an API body).
    pub rows: u64,
    /// API request bodies (1 for a CSV or `hashes` file with rows).
    pub batches: u64,
}

/// A streaming writer of one format.
pub(crate) trait AudienceWriter {
    /// Adds one profile's row.
    fn push(&mut self, row: &ProfileRow) -> io::Result<()>;
    /// Writes whatever is buffered.
    fn finish(self: Box<Self>) -> io::Result<Written>;
}

/// Options of the API formats.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchOptions {
    pub(crate) direction: Direction,
    pub(crate) session_id: u64,
    pub(crate) estimated_total: u64,
}

/// The writer of `format` over `out`.
pub(crate) fn writer<'w>(
    format: Format,
    out: &'w mut dyn Write,
    options: BatchOptions,
) -> io::Result<Box<dyn AudienceWriter + 'w>> {
    Ok(match format {
        Format::MetaApi => Box::new(MetaApi {
            out,
            options,
            batch: Vec::new(),
            batch_rows: 0,
            held: None,
            spare: Vec::new(),
            seq: 0,
            written: Written::default(),
        }),
        Format::MetaCsv => Box::new(Csv::new(out, MetaCsvLayout)?),
        Format::GoogleApi => Box::new(GoogleApi {
            out,
            options,
            operations: Vec::new(),
            written: Written::default(),
        }),
        Format::GoogleCsv => Box::new(Csv::new(out, GoogleCsvLayout)?),
        Format::Hashes => Box::new(Hashes {
            out,
            phones: Vec::new(),
            written: Written::default(),
        }),
    })
}

fn cell(v: &Option<String>) -> String {
    // Only the CSV layouts need owned cells.
    v.clone().unwrap_or_default()
}

/// `meta-api`: each body holds at most [`META_MAX_ROWS`] rows; a body is held back until
/// the next row arrives, so the last one can carry `last_batch_flag: true`. Rows are
/// written as JSON directly (hashes need no escaping; other cells are escaped by
/// `serde_json`).
struct MetaApi<'w> {
    out: &'w mut dyn Write,
    options: BatchOptions,
    /// The rows of the body being filled, as `[..],[..]`.
    batch: Vec<u8>,
    batch_rows: usize,
    /// A full body waiting for the next row (or the end).
    held: Option<(Vec<u8>, usize)>,
    /// The buffer of the last body written, reused for the next one (a body is about
    /// 9 MB: a fresh one each time cost page faults).
    spare: Vec<u8>,
    seq: u64,
    written: Written,
}

impl MetaApi<'_> {
    fn row(&mut self, cells: [&str; 13]) -> io::Result<()> {
        if self.batch_rows == META_MAX_ROWS {
            let mut next = std::mem::take(&mut self.spare);
            next.clear();
            next.reserve(self.batch.len());
            let full = (std::mem::replace(&mut self.batch, next), self.batch_rows);
            self.batch_rows = 0;
            if let Some((prev, rows)) = self.held.replace(full) {
                self.emit(&prev, rows, false)?;
                self.spare = prev;
            }
        }
        if self.batch_rows > 0 {
            self.batch.push(b',');
        }
        self.batch.push(b'[');
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                self.batch.push(b',');
            }
            json_string(&mut self.batch, c);
        }
        self.batch.push(b']');
        self.batch_rows += 1;
        Ok(())
    }

    fn emit(&mut self, data: &[u8], rows: usize, last: bool) -> io::Result<()> {
        self.seq += 1;
        self.written.rows += rows as u64;
        self.written.batches += 1;
        let schema = serde_json::to_string(&META_SCHEMA).expect("strings serialize");
        write!(
            self.out,
            r#"{{"payload":{{"schema":{schema},"is_raw":true,"data":["#
        )?;
        self.out.write_all(data)?;
        writeln!(
            self.out,
            r#"]}},"session":{{"session_id":{},"batch_seq":{},"last_batch_flag":{last},"estimated_num_total":{}}}}}"#,
            self.options.session_id, self.seq, self.options.estimated_total
        )
    }
}

/// Appends `s` as a JSON string.
fn json_string(out: &mut Vec<u8>, s: &str) {
    /// Whether `b` needs no escaping and is not a quote: letters, digits, `-`, `+`, space.
    fn plain(b: u8) -> bool {
        b.wrapping_sub(b'0') < 10
            || (b | 0x20).wrapping_sub(b'a') < 26
            || b == b'-'
            || b == b'+'
            || b == b' '
    }
    // A fold without an early exit, which the compiler vectorizes: most cells are
    // 64-character hashes, and this check ran on every one of them.
    if s.bytes().fold(true, |ok, b| ok & plain(b)) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    }
}

impl AudienceWriter for MetaApi<'_> {
    fn push(&mut self, r: &ProfileRow) -> io::Result<()> {
        fn c(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or("")
        }
        let email = r.emails.first().map_or("", String::as_str);
        let phone = r.phones.first().map_or("", String::as_str);
        let cells = match self.options.direction {
            Direction::Add => {
                let dob = |i: usize| r.dob.as_ref().map_or("", |d| d[i].as_str());
                [
                    email,
                    phone,
                    c(&r.first_name),
                    c(&r.last_name),
                    c(&r.gender),
                    dob(0),
                    dob(1),
                    dob(2),
                    c(&r.city),
                    c(&r.state),
                    c(&r.zip),
                    c(&r.country),
                    c(&r.external_id),
                ]
            }
            // Removals carry only the identifiers.
            Direction::Remove => {
                let mut v = [""; 13];
                (v[0], v[1]) = (email, phone);
                v
            }
        };
        self.row(cells)?;
        for e in r.emails.iter().skip(1) {
            let mut v = [""; 13];
            v[0] = e;
            self.row(v)?;
        }
        for p in r.phones.iter().skip(1) {
            let mut v = [""; 13];
            v[1] = p;
            self.row(v)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Written> {
        let (batch, rows) = (std::mem::take(&mut self.batch), self.batch_rows);
        if let Some((prev, prev_rows)) = self.held.take() {
            self.emit(&prev, prev_rows, rows == 0)?;
        }
        if rows > 0 {
            self.emit(&batch, rows, true)?;
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

/// `google-api`: `create` (or `remove`) operations, at most [`GOOGLE_MAX_OPERATIONS`] a
/// body and [`GOOGLE_MAX_IDENTIFIERS`] identifiers a person.
struct GoogleApi<'w> {
    out: &'w mut dyn Write,
    options: BatchOptions,
    operations: Vec<Json>,
    written: Written,
}

impl GoogleApi<'_> {
    fn flush_body(&mut self) -> io::Result<()> {
        if self.operations.is_empty() {
            return Ok(());
        }
        let operations = std::mem::take(&mut self.operations);
        self.written.rows += operations.len() as u64;
        self.written.batches += 1;
        serde_json::to_writer(&mut *self.out, &json!({ "operations": operations }))?;
        self.out.write_all(b"\n")
    }
}

impl AudienceWriter for GoogleApi<'_> {
    fn push(&mut self, r: &ProfileRow) -> io::Result<()> {
        let mut ids: Vec<Json> = Vec::new();
        ids.extend(r.emails.iter().map(|h| json!({ "hashedEmail": h })));
        ids.extend(r.phones.iter().map(|h| json!({ "hashedPhoneNumber": h })));
        if self.options.direction == Direction::Add {
            if let (Some(f), Some(l), Some(c), Some(z)) =
                (&r.first_name, &r.last_name, &r.country, &r.zip)
            {
                ids.push(json!({ "addressInfo": {
                    "hashedFirstName": f, "hashedLastName": l, "countryCode": c, "postalCode": z
                }}));
            }
            if let Some(x) = &r.external_id {
                ids.push(json!({ "thirdPartyUserId": x }));
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        ids.truncate(GOOGLE_MAX_IDENTIFIERS);
        let verb = match self.options.direction {
            Direction::Add => "create",
            Direction::Remove => "remove",
        };
        self.operations
            .push(json!({ verb: { "userIdentifiers": ids } }));
        if self.operations.len() == GOOGLE_MAX_OPERATIONS {
            self.flush_body()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Written> {
        self.flush_body()?;
        self.out.flush()?;
        Ok(self.written)
    }
}

/// A CSV layout: header and the rows of one profile.
trait CsvLayout {
    fn header(&self) -> Vec<&'static str>;
    fn rows(&self, r: &ProfileRow) -> Vec<Vec<String>>;
}

struct MetaCsvLayout;

impl CsvLayout for MetaCsvLayout {
    fn header(&self) -> Vec<&'static str> {
        vec![
            "email",
            "email",
            "email",
            "phone",
            "phone",
            "phone",
            "fn",
            "ln",
            "gen",
            "doby",
            "dobm",
            "dobd",
            "ct",
            "st",
            "zip",
            "country",
            "extern_id",
        ]
    }

    fn rows(&self, r: &ProfileRow) -> Vec<Vec<String>> {
        let slot = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        let mut row: Vec<String> = (0..META_CSV_SLOTS).map(|i| slot(&r.emails, i)).collect();
        row.extend((0..META_CSV_SLOTS).map(|i| slot(&r.phones, i)));
        let [y, m, d] = r.dob.clone().unwrap_or_default();
        row.extend([
            cell(&r.first_name),
            cell(&r.last_name),
            cell(&r.gender),
            y,
            m,
            d,
            cell(&r.city),
            cell(&r.state),
            cell(&r.zip),
            cell(&r.country),
            cell(&r.external_id),
        ]);
        vec![row]
    }
}

struct GoogleCsvLayout;

impl CsvLayout for GoogleCsvLayout {
    fn header(&self) -> Vec<&'static str> {
        vec![
            "Email",
            "Phone",
            "First Name",
            "Last Name",
            "Country",
            "Zip",
        ]
    }

    fn rows(&self, r: &ProfileRow) -> Vec<Vec<String>> {
        let mut rows = vec![vec![
            r.emails.first().cloned().unwrap_or_default(),
            r.phones.first().cloned().unwrap_or_default(),
            cell(&r.first_name),
            cell(&r.last_name),
            cell(&r.country),
            cell(&r.zip),
        ]];
        // Further identifiers of the same person: one row each, holding only it.
        for e in r.emails.iter().skip(1) {
            rows.push(vec![
                e.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        for p in r.phones.iter().skip(1) {
            rows.push(vec![
                String::new(),
                p.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        rows
    }
}

struct Csv<'w, L> {
    out: csv::Writer<&'w mut dyn Write>,
    layout: L,
    written: Written,
}

impl<'w, L: CsvLayout> Csv<'w, L> {
    fn new(out: &'w mut dyn Write, layout: L) -> io::Result<Self> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(layout.header())?;
        Ok(Csv {
            out,
            layout,
            written: Written::default(),
        })
    }
}

impl<L: CsvLayout> AudienceWriter for Csv<'_, L> {
    fn push(&mut self, r: &ProfileRow) -> io::Result<()> {
        for row in self.layout.rows(r) {
            self.out.write_record(&row)?;
            self.written.rows += 1;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Written> {
        self.out.flush()?;
        self.written.batches = u64::from(self.written.rows > 0);
        Ok(self.written)
    }
}

/// `hashes`: email hashes as they come, phone hashes held (32 bytes each) and written
/// after the last email.
struct Hashes<'w> {
    out: &'w mut dyn Write,
    phones: Vec<[u8; 32]>,
    written: Written,
}

impl AudienceWriter for Hashes<'_> {
    fn push(&mut self, r: &ProfileRow) -> io::Result<()> {
        for e in &r.emails {
            self.out.write_all(e.as_bytes())?;
            self.out.write_all(b"\n")?;
            self.written.rows += 1;
        }
        self.phones.extend(
            r.phones
                .iter()
                .filter_map(|p| crate::base::digest::parse_hex(p)),
        );
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Written> {
        for p in std::mem::take(&mut self.phones) {
            self.out
                .write_all(crate::base::digest::to_hex(&p).as_bytes())?;
            self.out.write_all(b"\n")?;
            self.written.rows += 1;
        }
        self.out.flush()?;
        self.written.batches = u64::from(self.written.rows > 0);
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::json_string;
    use proptest::prelude::*;

    proptest! {
        /// Every cell is written as serde_json writes it, whichever path it takes.
        #[test]
        fn a_cell_is_written_as_serde_json_writes_it(
            s in prop_oneof![
                "[0-9a-f]{64}",
                "[A-Za-z0-9 +-]{0,20}",
                any::<String>(),
                "[a-z\"\\\\/\\x00-\\x1f]{0,10}",
            ]
        ) {
            let mut out = Vec::new();
            json_string(&mut out, &s);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }
}
