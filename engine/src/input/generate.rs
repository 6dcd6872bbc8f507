//! Deterministic synthetic data: realistic records of `persons` people, each seen by 1-4
//! sources with overlapping identifiers in messy real-world formats (email case and
//! spaces, national and international phone formats, chains where record A links to B
//! only through C), skewed (Zipf-like) distributions for countries, interests, likes,
//! purchases and consent, and a sprinkle of placeholder values that identity rules must
//! block. Used by the demo, the tests and the benchmarks.
//!
//! Event-heavy by default, as real customer data is: a person's event count follows a
//! Zipf-like law over 0-50 (and more when asked) with a mean of
//! [`DEFAULT_EVENTS_PER_PERSON`], over the three years before [`REFERENCE_TIME`], spread
//! over the person's records from sources that see behaviour (shops, CRM, web forms,
//! apps, WiFi).
//!
//! A person's records are spread across the whole file: the file is written in rounds,
//! round `r` holding the `r`-th record of every person that has one, persons in a fresh
//! random order each round. Each person is generated from their own random stream (the
//! seed and their index), so any record can be made again without the others, and
//! [`Generator::write_events_only`] can address persons an earlier run created. All
//! times are before [`REFERENCE_TIME`].

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::io::Write;

/// Generated `observed_at` and event times lie in the two years before this instant
/// (2026-11-01T00:00:00Z), so that benchmarks can pin the evaluation time.
pub const REFERENCE_TIME: i64 = 1_793_491_200_000;
const DAY: i64 = 86_400_000;
/// Mean events per person unless [`Generator::with_events_per_person`] says otherwise.
pub const DEFAULT_EVENTS_PER_PERSON: f64 = 6.5;
/// Events lie in this many days before [`REFERENCE_TIME`].
const EVENT_DAYS: i64 = 3 * 365;
/// The most records a person has.
const MAX_RECORDS: usize = 4;

struct CountryData {
    code: &'static str,
    weight: u32,
    language: &'static str,
    cities: &'static [&'static str],
    first: &'static [&'static str],
    last: &'static [&'static str],
    domains: &'static [&'static str],
}

const COUNTRIES: &[CountryData] = &[
    CountryData {
        code: "NL",
        weight: 30,
        language: "nl",
        cities: &[
            "Amsterdam",
            "Rotterdam",
            "Utrecht",
            "Den Haag",
            "Eindhoven",
            "Groningen",
        ],
        first: &[
            "Daan", "Sem", "Emma", "Julia", "Lucas", "Mila", "Noah", "Tess", "Sanne", "Bram",
        ],
        last: &[
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "Bakker",
            "Visser",
            "Smit",
            "Meijer",
        ],
        domains: &["gmail.com", "hotmail.nl", "ziggo.nl", "kpnmail.nl"],
    },
    CountryData {
        code: "DE",
        weight: 20,
        language: "de",
        cities: &["Berlin", "München", "Hamburg", "Köln", "Frankfurt"],
        first: &[
            "Lukas", "Leon", "Mia", "Hannah", "Jonas", "Lena", "Felix", "Sophie",
        ],
        last: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
        ],
        domains: &["gmail.com", "web.de", "gmx.de", "t-online.de"],
    },
    CountryData {
        code: "GB",
        weight: 15,
        language: "en",
        cities: &["London", "Manchester", "Birmingham", "Leeds", "Glasgow"],
        first: &[
            "Oliver", "George", "Amelia", "Isla", "Harry", "Ava", "Jack", "Emily",
        ],
        last: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "O'Brien",
        ],
        domains: &["gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk"],
    },
    CountryData {
        code: "US",
        weight: 15,
        language: "en",
        cities: &["New York", "San Francisco", "Chicago", "Austin", "Boston"],
        first: &[
            "Liam", "Olivia", "Noah", "Emma", "James", "Sophia", "Mason", "Ava",
        ],
        last: &[
            "Johnson",
            "Miller",
            "Davis",
            "Garcia",
            "Rodriguez",
            "Martinez",
            "Anderson",
        ],
        domains: &["gmail.com", "yahoo.com", "outlook.com", "icloud.com"],
    },
    CountryData {
        code: "FR",
        weight: 8,
        language: "fr",
        cities: &["Paris", "Lyon", "Marseille", "Toulouse"],
        first: &["Gabriel", "Louise", "Raphaël", "Jade", "Léo", "Chloé"],
        last: &["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit"],
        domains: &["gmail.com", "orange.fr", "free.fr"],
    },
    CountryData {
        code: "BE",
        weight: 5,
        language: "nl",
        cities: &["Antwerpen", "Gent", "Brussel", "Leuven"],
        first: &["Arthur", "Olivia", "Louis", "Emma", "Jules"],
        last: &["Peeters", "Janssens", "Maes", "Jacobs", "Willems"],
        domains: &["gmail.com", "telenet.be", "skynet.be"],
    },
    CountryData {
        code: "ES",
        weight: 4,
        language: "es",
        cities: &["Madrid", "Barcelona", "Valencia", "Sevilla"],
        first: &["Hugo", "Lucía", "Martín", "Sofía", "José"],
        last: &["García", "Fernández", "González", "Rodríguez", "López"],
        domains: &["gmail.com", "hotmail.es", "yahoo.es"],
    },
    CountryData {
        code: "IT",
        weight: 3,
        language: "it",
        cities: &["Roma", "Milano", "Napoli", "Torino"],
        first: &["Leonardo", "Sofia", "Francesco", "Giulia", "Alessandro"],
        last: &["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi"],
        domains: &["gmail.com", "libero.it", "alice.it"],
    },
];

const INTERESTS: &[&str] = &[
    "running",
    "travel",
    "fashion",
    "music",
    "cooking",
    "football",
    "cycling",
    "gaming",
    "fitness",
    "photography",
    "yoga",
    "movies",
    "books",
    "hiking",
    "tennis",
    "art",
    "technology",
    "gardening",
    "swimming",
    "skiing",
    "golf",
    "dance",
    "cars",
    "pets",
    "wine",
    "coffee",
    "surfing",
    "climbing",
    "design",
    "history",
];
const BRANDS: &[&str] = &[
    "Nike",
    "Adidas",
    "Puma",
    "Zara",
    "H&M",
    "Levi's",
    "Apple",
    "Samsung",
    "IKEA",
    "Coca-Cola",
    "Spotify",
    "Netflix",
    "Heineken",
    "Philips",
    "Uniqlo",
    "Patagonia",
    "The North Face",
    "Converse",
    "Vans",
    "New Balance",
    "Asics",
    "Lego",
    "Sony",
    "Nintendo",
    "Starbucks",
    "Red Bull",
    "Tesla",
    "BMW",
    "Decathlon",
    "Booking.com",
];
const CATEGORIES: &[&str] = &[
    "jeans",
    "shoes",
    "shirts",
    "jackets",
    "dresses",
    "accessories",
    "sportswear",
    "electronics",
    "home",
    "beauty",
];
const SOURCES: &[&str] = &[
    "crm", "web_form", "facebook", "google", "linkedin", "twitter", "pos", "app", "wifi",
];
const TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];

/// A synthetic person.
struct Person {
    index: u64,
    country: &'static CountryData,
    first: &'static str,
    last: &'static str,
    gender: &'static str,
    birth_date: String,
    city: &'static str,
    zip: String,
    emails: Vec<String>,
    phone: Option<String>,
    crm_id: Option<String>,
    device_id: String,
    interests: Vec<&'static str>,
    likes: Vec<&'static str>,
    tier: Option<&'static str>,
    lifetime_value: f64,
    marketing: bool,
    audiences: bool,
}

/// Generates records; see the module docs.
pub struct Generator {
    /// The random stream of the person (or round) being generated.
    rng: ChaCha8Rng,
    seed: u64,
    persons: u64,
    /// Cumulative probabilities of a person's event count (0, 1, 2, ...).
    event_counts: Vec<f64>,
}

/// What a generator wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Persons generated.
    pub persons: u64,
    /// Records (lines) written.
    pub records: u64,
    /// Events in them.
    pub events: u64,
}

impl Generator {
    /// A generator of `persons` people from `seed`, with the default event load.
    pub fn new(persons: u64, seed: u64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            persons,
            event_counts: Vec::new(),
        }
        .with_events_per_person(DEFAULT_EVENTS_PER_PERSON)
    }

    /// Sets the mean number of events per person (Zipf-like counts from 0 up to
    /// `max(50, 8 × mean)`).
    pub fn with_events_per_person(mut self, mean: f64) -> Self {
        self.event_counts = zipf_counts(mean.max(0.0));
        self
    }

    /// Points the random stream at `person` (or, with `round`, at a round's order), so
    /// every person is the same whichever order they are generated in.
    fn reseed(&mut self, stream: u64, index: u64) {
        let mut z = self.seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        z ^= index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.rng = ChaCha8Rng::seed_from_u64(z);
    }

    /// The records of person `index`, in their own order.
    fn person_records(&mut self, index: u64) -> Vec<Value> {
        self.reseed(1, index);
        let person = self.person(index);
        self.records_of(&person)
    }

    /// Writes every record as JSON Lines; `progress` receives persons done (an estimate
    /// while later rounds run).
    pub fn write_jsonl<W: Write + ?Sized>(
        mut self,
        out: &mut W,
        progress: &mut dyn FnMut(u64),
    ) -> std::io::Result<GenerateSummary> {
        let mut summary = GenerateSummary {
            persons: self.persons,
            ..GenerateSummary::default()
        };
        let mut order: Vec<u64> = (0..self.persons).collect();
        for round in 0..MAX_RECORDS {
            self.reseed(2, round as u64);
            order.shuffle(&mut self.rng);
            for (done, &index) in order.iter().enumerate() {
                if self.record_count(index) > round {
                    let record = self.person_records(index).swap_remove(round);
                    summary.events += record["events"].as_array().map_or(0, |e| e.len() as u64);
                    serde_json::to_writer(&mut *out, &record)?;
                    out.write_all(b"\n")?;
                    summary.records += 1;
                }
                if done % 4096 == 4095 {
                    let total = self.persons * MAX_RECORDS as u64;
                    progress((round as u64 * self.persons + done as u64) * self.persons / total);
                }
            }
        }
        progress(self.persons);
        Ok(summary)
    }

    /// How many records person `index` has (1-4), without generating them.
    fn record_count(&mut self, index: u64) -> usize {
        self.reseed(3, index);
        1 + self.zipf(MAX_RECORDS)
    }

    /// Writes `events` events of live traffic as small records (one identifier, one to
    /// three events in the day before [`REFERENCE_TIME`]: page views, e-mail opens, app
    /// opens, purchases) for the persons a [`Generator::write_jsonl`] run with the same
    /// seed and person count created; the active few send most of it.
    pub fn write_events_only<W: Write + ?Sized>(
        mut self,
        events: u64,
        out: &mut W,
        progress: &mut dyn FnMut(u64),
    ) -> std::io::Result<GenerateSummary> {
        let mut summary = GenerateSummary {
            persons: self.persons,
            ..GenerateSummary::default()
        };
        if self.persons == 0 {
            return Ok(summary);
        }
        let mut n = 0u64;
        while summary.events < events {
            self.reseed(4, n);
            n += 1;
            // Activity is skewed: a power of a uniform draw favours a few persons.
            let index = ((self.rng.gen::<f64>().powi(3) * self.persons as f64) as u64)
                .min(self.persons - 1);
            self.reseed(1, index);
            let person = self.person(index);
            self.reseed(4, n + (1 << 40));
            let (source, id_kind, id) = match self.rng.gen_range(0..3) {
                0 => ("web", "email", person.emails[0].clone()),
                1 => ("app", "device_id", person.device_id.clone()),
                _ => ("email", "email", person.emails[0].clone()),
            };
            let count = (1 + self.rng.gen_range(0..3)).min(events - summary.events);
            let mut at = REFERENCE_TIME - self.rng.gen_range(0..DAY);
            let list: Vec<Value> = (0..count)
                .map(|_| {
                    at = (at + self.rng.gen_range(0..600_000)).min(REFERENCE_TIME - 1);
                    let stamp = crate::base::time::format_rfc3339(at);
                    match (source, self.rng.gen_range(0..10)) {
                        (_, 0) => self.purchase(at),
                        ("app", _) => json!({"type": "app_open", "at": stamp}),
                        ("email", _) => json!({"type": "email_open", "at": stamp}),
                        _ => json!({"type": "page_view", "at": stamp}),
                    }
                })
                .collect();
            let record = json!({
                "source": source,
                "observed_at": crate::base::time::format_rfc3339(at),
                "identifiers": {id_kind: id},
                "events": list,
            });
            serde_json::to_writer(&mut *out, &record)?;
            out.write_all(b"\n")?;
            summary.records += 1;
            summary.events += count;
            if summary.records % 4096 == 0 {
                progress(summary.events);
            }
        }
        Ok(summary)
    }

    /// Every record as a JSON string, in output order (for tests and benchmarks).
    pub fn records(self) -> Vec<String> {
        let mut buf = Vec::new();
        self.write_jsonl(&mut buf, &mut |_| {})
            .expect("writing to memory cannot fail");
        String::from_utf8(buf)
            .expect("JSON is UTF-8")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Index from a Zipf-like (1/rank) distribution over `n` items.
    fn zipf(&mut self, n: usize) -> usize {
        let h: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        let mut x = self.rng.gen::<f64>() * h;
        for k in 1..=n {
            x -= 1.0 / k as f64;
            if x <= 0.0 {
                return k - 1;
            }
        }
        n - 1
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())]
    }

    fn person(&mut self, index: u64) -> Person {
        let total: u32 = COUNTRIES.iter().map(|c| c.weight).sum();
        let mut roll = self.rng.gen_range(0..total);
        let country = COUNTRIES
            .iter()
            .find(|c| {
                if roll < c.weight {
                    true
                } else {
                    roll -= c.weight;
                    false
                }
            })
            .expect("weights cover the roll");
        let female = self.rng.gen_bool(0.5);
        let first = self.pick(country.first);
        let last = self.pick(country.last);
        let age = 18 + (self.rng.gen::<f64>().powf(1.6) * 62.0) as i64;
        let birth_day = (REFERENCE_TIME / DAY) - age * 365 - self.rng.gen_range(0..365);
        let birth_date = crate::base::time::format_date(birth_day as i32);
        let ascii = |s: &str| -> String {
            s.chars()
                .filter_map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' => Some(c.to_ascii_lowercase()),
                    'ü' => Some('u'),
                    'é' | 'ë' => Some('e'),
                    'í' => Some('i'),
                    'ó' => Some('o'),
                    'á' => Some('a'),
                    _ => None,
                })
                .collect()
        };
        let domain = self.pick(country.domains);
        let mut emails = vec![format!(
            "{}.{}{}@{}",
            ascii(first),
            ascii(last),
            index,
            domain
        )];
        if self.rng.gen_bool(0.3) {
            emails.push(format!(
                "{}{}@work{}.example",
                ascii(first),
                index,
                index % 97
            ));
        }
        let phone = self.rng.gen_bool(0.7).then(|| self.phone(country.code));
        let n_interests = self.rng.gen_range(0..5);
        let mut interests: Vec<&str> = (0..n_interests)
            .map(|_| INTERESTS[self.zipf(INTERESTS.len())])
            .collect();
        interests.sort_unstable();
        interests.dedup();
        let n_likes = self.rng.gen_range(0..6);
        let mut likes: Vec<&str> = (0..n_likes)
            .map(|_| BRANDS[self.zipf(BRANDS.len())])
            .collect();
        likes.sort_unstable();
        likes.dedup();
        Person {
            index,
            country,
            first,
            last,
            gender: if female { "female" } else { "male" },
            birth_date,
            city: self.pick(country.cities),
            zip: self.zip(country.code),
            emails,
            phone,
            crm_id: self.rng.gen_bool(0.5).then(|| format!("C{index:08}")),
            device_id: format!("dev-{:016x}", self.rng.gen::<u64>()),
            interests,
            likes,
            tier: self
                .rng
                .gen_bool(0.4)
                .then(|| TIERS[self.zipf(TIERS.len())]),
            lifetime_value: (self.rng.gen::<f64>().powi(3) * 5000.0 * 100.0).round() / 100.0,
            marketing: self.rng.gen_bool(0.6),
            audiences: self.rng.gen_bool(0.55),
        }
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.rng.gen_range(0..10u8)))
            .collect()
    }

    /// A valid mobile number in national or international format, messily spaced.
    fn phone(&mut self, country: &str) -> String {
        let (national, cc) = match country {
            "NL" => (
                format!("06{}{}", self.rng.gen_range(1..6), self.digits(7)),
                "31",
            ),
            "DE" => (format!("0171{}", self.digits(7)), "49"),
            "GB" => (
                format!("07{}{}", self.pick(&[4, 5, 8, 9]), self.digits(8)),
                "44",
            ),
            "US" => (
                format!(
                    "{}{}{}",
                    self.pick(&["415", "212", "312", "646", "303", "512", "617"]),
                    self.rng.gen_range(2..10),
                    self.digits(6)
                ),
                "1",
            ),
            "FR" => (
                format!("06{}{}", self.rng.gen_range(1..5), self.digits(7)),
                "33",
            ),
            "BE" => (format!("047{}", self.digits(7)), "32"),
            "ES" => (format!("6{}", self.digits(8)), "34"),
            _ => (
                format!("3{}{}", self.rng.gen_range(2..5), self.digits(8)),
                "39",
            ),
        };
        let trunk = national.strip_prefix('0').unwrap_or(&national).to_string();
        match self.rng.gen_range(0..5) {
            0 => format!("+{cc} {trunk}"),
            1 if cc != "1" => format!("00{cc}{trunk}"),
            2 if national.len() > 6 => format!("{} {}", &national[..4], &national[4..]),
            3 if national.len() > 6 => {
                format!("{}-{}-{}", &national[..3], &national[3..6], &national[6..])
            }
            _ => national,
        }
    }

    fn zip(&mut self, country: &str) -> String {
        match country {
            "NL" => format!(
                "{} {}{}",
                self.rng.gen_range(1000..9999),
                char::from(b'A' + self.rng.gen_range(0..26u8)),
                char::from(b'A' + self.rng.gen_range(0..26u8))
            ),
            "GB" => format!(
                "SW{} {}AA",
                self.rng.gen_range(1..20),
                self.rng.gen_range(1..9)
            ),
            "US" => format!("{:05}", self.rng.gen_range(10000..99999)),
            "BE" => format!("{}", self.rng.gen_range(1000..9999)),
            _ => format!("{:05}", self.rng.gen_range(10000..99999)),
        }
    }

    /// A messy rendering of an email: random case, stray spaces.
    fn messy_email(&mut self, email: &str) -> String {
        let mut s: String = match self.rng.gen_range(0..4) {
            0 => email.to_uppercase(),
            1 => email
                .split('.')
                .map(|p| {
                    let mut c = p.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                })
                .collect::<Vec<String>>()
                .join("."),
            _ => email.to_string(),
        };
        if self.rng.gen_bool(0.2) {
            s = format!(" {s} ");
        }
        s
    }

    fn time_before_reference(&mut self, max_days: i64) -> i64 {
        REFERENCE_TIME - self.rng.gen_range(0..max_days * DAY)
    }

    fn records_of(&mut self, p: &Person) -> Vec<Value> {
        let n = self.record_count(p.index);
        self.reseed(1, p.index + (1 << 48));
        let mut sources: Vec<&str> = SOURCES.to_vec();
        sources.shuffle(&mut self.rng);
        sources.truncate(n);
        // Identifier plans: record 0 carries the primary email; with three or more records
        // and a second email, record 1 carries only the second email (+ phone) and record
        // 2 links them (chain: 0 and 1 meet only through 2).
        let chain = n >= 3 && p.emails.len() > 1;
        let mut out = Vec::with_capacity(n);
        for (k, source) in sources.iter().enumerate() {
            let mut ids = Map::new();
            let email = if chain && k == 1 {
                &p.emails[1]
            } else {
                &p.emails[0]
            };
            let messy = self.messy_email(email);
            ids.insert("email".into(), json!(messy));
            if chain && k == 2 {
                let second = self.messy_email(&p.emails[1]);
                ids.insert("email".into(), json!([messy, second]));
            }
            if let Some(phone) = &p.phone {
                if k > 0 && self.rng.gen_bool(0.6) {
                    ids.insert("phone".into(), json!(phone));
                }
            }
            let mut attrs = Map::new();
            let mut scopes: Option<Vec<&str>> = None;
            match *source {
                "crm" | "pos" => {
                    if let Some(c) = &p.crm_id {
                        ids.insert("crm_id".into(), json!(c));
                    }
                    attrs.insert("first_name".into(), json!(p.first));
                    attrs.insert("last_name".into(), json!(p.last));
                    attrs.insert("country".into(), json!(p.country.code));
                    attrs.insert("city".into(), json!(p.city));
                    attrs.insert("zip".into(), json!(p.zip));
                    if let Some(t) = p.tier {
                        attrs.insert("loyalty_tier".into(), json!(t));
                    }
                    attrs.insert("lifetime_value".into(), json!(p.lifetime_value));
                }
                "facebook" | "google" | "linkedin" | "twitter" => {
                    ids.insert(
                        format!("{source}_id"),
                        json!(format!("{}{}", &source[..2], 10_000_000 + p.index)),
                    );
                    attrs.insert("first_name".into(), json!(p.first));
                    attrs.insert("last_name".into(), json!(p.last));
                    attrs.insert("gender".into(), json!(p.gender));
                    attrs.insert("birth_date".into(), json!(p.birth_date));
                    attrs.insert("likes".into(), json!(p.likes));
                    attrs.insert("country".into(), json!(p.country.code));
                    attrs.insert("city".into(), json!(p.city));
                    scopes = Some(match *source {
                        "facebook" if self.rng.gen_bool(0.5) => vec![
                            "public_profile",
                            "email",
                            "user_likes",
                            "user_birthday",
                            "user_gender",
                            "user_location",
                        ],
                        "facebook" => vec!["public_profile", "email"],
                        "google" => vec!["openid", "email", "profile", "user.birthday.read"],
                        "linkedin" => vec!["openid", "profile", "email"],
                        _ => vec!["users.read", "users.email", "like.read"],
                    });
                }
                "app" | "wifi" => {
                    ids.insert("device_id".into(), json!(p.device_id));
                    attrs.insert("language".into(), json!(p.country.language));
                }
                _ => {
                    attrs.insert("first_name".into(), json!(p.first));
                    attrs.insert("country".into(), json!(p.country.code));
                    attrs.insert("interests".into(), json!(p.interests));
                    attrs.insert("newsletter".into(), json!(p.marketing));
                }
            }
            if k == 0 {
                attrs.insert("interests".into(), json!(p.interests));
            }
            if k == 0 || ids.contains_key("phone") {
                // National phone formats need the record's country to resolve.
                attrs.insert("country".into(), json!(p.country.code));
            }
            if self.rng.gen_bool(0.01) {
                ids.insert(
                    "phone".into(),
                    json!(self.pick(&["0000000000", "n/a", "1111111111"])),
                );
            }
            let observed_at = self.time_before_reference(730);
            let mut record = json!({
                "source": source,
                "observed_at": crate::base::time::format_rfc3339(observed_at),
                "identifiers": ids,
                "attributes": attrs,
            });
            if matches!(*source, "crm" | "web_form" | "app") || k == 0 {
                let withdrew = self.rng.gen_bool(0.05);
                record["consent"] = json!({
                    "marketing": p.marketing && !withdrew,
                    "custom_audiences": p.audiences && !withdrew,
                });
            }
            if let Some(s) = scopes {
                record["scopes"] = json!(s);
            }
            out.push(record);
        }
        self.add_events(&mut out);
        out
    }

    /// Draws the person's event count and spreads the events over their records from
    /// sources that see behaviour (none when they have no such record).
    fn add_events(&mut self, records: &mut [Value]) {
        let u: f64 = self.rng.gen();
        let count = self.event_counts.partition_point(|c| *c < u);
        let mut capable: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| event_kinds(r["source"].as_str().unwrap_or("")).is_some())
            .map(|(i, _)| i)
            .collect();
        if capable.is_empty() {
            // Someone known only from a social login still browses the brand's site: the
            // site's events arrive with the first record.
            capable.push(0);
        }
        let mut lists: Vec<Vec<Value>> = vec![Vec::new(); records.len()];
        for _ in 0..count {
            let at = self.pick(&capable);
            let kinds =
                event_kinds(records[at]["source"].as_str().unwrap_or("")).unwrap_or(WEB_EVENTS);
            let kind = kinds[self.zipf(kinds.len())];
            let when = REFERENCE_TIME - self.rng.gen_range(1..EVENT_DAYS * DAY);
            let event = if kind == "purchase" {
                self.purchase(when)
            } else {
                json!({"type": kind, "at": crate::base::time::format_rfc3339(when)})
            };
            lists[at].push(event);
        }
        for (record, list) in records.iter_mut().zip(lists) {
            if !list.is_empty() {
                record["events"] = Value::Array(list);
            }
        }
    }

    fn purchase(&mut self, at: i64) -> Value {
        let category = CATEGORIES[self.zipf(CATEGORIES.len())];
        let value = (self.rng.gen_range(5.0..250.0f64) * 100.0).round() / 100.0;
        json!({
            "type": "purchase",
            "at": crate::base::time::format_rfc3339(at),
            "category": category,
            "value": value,
        })
    }
}

/// Events of the brand's web site.
const WEB_EVENTS: &[&str] = &["page_view", "purchase", "add_to_cart"];

/// The event types a source sees, most frequent first (`None`: it sees no behaviour).
fn event_kinds(source: &str) -> Option<&'static [&'static str]> {
    match source {
        "pos" => Some(&["purchase", "store_visit"]),
        "crm" => Some(&["email_open", "purchase", "email_click"]),
        "web_form" => Some(WEB_EVENTS),
        "app" => Some(&["app_open", "page_view", "purchase"]),
        "wifi" => Some(&["store_visit"]),
        _ => None,
    }
}

/// Cumulative probabilities of an event count `k` in `0..=cap` with weight
/// `1 / (k + 1)^s`, where `s` is found so that the mean is `mean` (`cap` is
/// `max(50, 8 × mean)`).
fn zipf_counts(mean: f64) -> Vec<f64> {
    let cap = (8.0 * mean).max(50.0) as usize;
    let table = |s: f64| -> (Vec<f64>, f64) {
        let weights: Vec<f64> = (0..=cap).map(|k| 1.0 / ((k + 1) as f64).powf(s)).collect();
        let total: f64 = weights.iter().sum();
        let mean = weights
            .iter()
            .enumerate()
            .map(|(k, w)| k as f64 * w)
            .sum::<f64>()
            / total;
        (weights.iter().map(|w| w / total).collect(), mean)
    };
    // The mean falls as the exponent grows: bisect for it.
    let (mut low, mut high) = (0.0f64, 8.0f64);
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if table(mid).1 > mean {
            low = mid;
        } else {
            high = mid;
        }
    }
    let (probabilities, _) = table(high);
    let mut cumulative = 0.0;
    probabilities
        .iter()
        .map(|p| {
            cumulative += p;
            cumulative
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_parseable() {
        let a = Generator::new(3000, 7).records();
        let b = Generator::new(3000, 7).records();
        assert_eq!(a, b);
        assert!(a.len() > 300);
        let config = crate::input::config::Config::default();
        let mut phones = 0;
        for line in &a {
            let parsed = crate::input::record::parse_json_record(line, &config, 0)
                .expect("generated records are valid");
            phones += parsed
                .record
                .identifiers
                .iter()
                .filter(|i| i.kind == "phone")
                .count();
            for w in &parsed.warnings {
                assert!(w.reason.contains("blocked"), "{line}: {w:?}");
            }
        }
        assert!(phones > 50);
    }

    /// Event-heavy by default (issue: a mean of at least 6 per person, Zipf-like, over
    /// three years), a person's records far apart, and the events-only stream addresses
    /// persons of the full run.
    #[test]
    fn events_records_spread_and_live_traffic() {
        let persons = 4_000;
        let mut buf = Vec::new();
        let summary = Generator::new(persons, 11)
            .write_jsonl(&mut buf, &mut |_| {})
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mean = summary.events as f64 / persons as f64;
        assert!((6.0..7.5).contains(&mean), "mean {mean} events a person");
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len() as u64, summary.records);
        let counted: u64 = records
            .iter()
            .map(|r| r["events"].as_array().map_or(0, |e| e.len() as u64))
            .sum();
        assert_eq!(counted, summary.events);
        // Times within three years before the reference.
        for r in records.iter().take(500) {
            for e in r["events"].as_array().into_iter().flatten() {
                let at = crate::base::time::parse_rfc3339(e["at"].as_str().unwrap()).unwrap();
                assert!(at < REFERENCE_TIME && at > REFERENCE_TIME - EVENT_DAYS * DAY - DAY);
            }
        }
        // A heavy tail: some persons far above the mean, many with none or few.
        let lens: Vec<usize> = records
            .iter()
            .map(|r| r["events"].as_array().map_or(0, Vec::len))
            .collect();
        assert!(lens.iter().any(|n| *n >= 30), "a heavy tail");
        // Records of one person (by primary email) are far apart on average.
        let mut first_seen: std::collections::HashMap<String, usize> = Default::default();
        let mut gaps = Vec::new();
        for (line, r) in records.iter().enumerate() {
            let email = match &r["identifiers"]["email"] {
                Value::String(e) => e.trim().to_lowercase(),
                Value::Array(a) => a[0].as_str().unwrap().trim().to_lowercase(),
                _ => continue,
            };
            if let Some(first) = first_seen.get(&email) {
                gaps.push(line - first);
            } else {
                first_seen.insert(email, line);
            }
        }
        let mean_gap = gaps.iter().sum::<usize>() as f64 / gaps.len() as f64;
        assert!(mean_gap > records.len() as f64 / 5.0, "mean gap {mean_gap}");
        // Live traffic: exactly the events asked for, for persons of the run.
        let mut live = Vec::new();
        let stream = Generator::new(persons, 11)
            .write_events_only(5_000, &mut live, &mut |_| {})
            .unwrap();
        assert_eq!(stream.events, 5_000);
        let live = String::from_utf8(live).unwrap();
        let emails: std::collections::HashSet<String> = first_seen.keys().cloned().collect();
        let mut matched = 0;
        for line in live.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            assert!(r["events"]
                .as_array()
                .is_some_and(|e| (1..=3).contains(&e.len())));
            if let Some(e) = r["identifiers"]["email"].as_str() {
                assert!(emails.contains(e), "{e} is a person of the full run");
                matched += 1;
            }
        }
        assert!(matched > 0);
        // Deterministic.
        let mut again = Vec::new();
        Generator::new(persons, 11)
            .write_events_only(5_000, &mut again, &mut |_| {})
            .unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), live);
    }
}
