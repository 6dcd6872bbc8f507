//! Deterministic synthetic data: realistic records of `persons` people, each seen by 1-4
//! sources with overlapping identifiers in messy real-world formats (email case and
//! spaces, national and international phone formats, chains where record A links to B
//! only through C), skewed (Zipf-like) distributions for countries, interests, likes,
//! purchases and consent, and a sprinkle of placeholder values that identity rules must
//! block. Used by the demo, the tests and the benchmarks.
//!
//! Records of a block of persons are shuffled together, so links arrive out of order and
//! merges happen. All times are before [`REFERENCE_TIME`].

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::io::Write;

/// Generated `observed_at` and event times lie in the two years before this instant
/// (2026-11-01T00:00:00Z), so that benchmarks can pin the evaluation time.
pub const REFERENCE_TIME: i64 = 1_793_491_200_000;
const PERSONS_PER_BLOCK: usize = 4096;
const DAY: i64 = 86_400_000;

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
    rng: ChaCha8Rng,
    persons: u64,
}

/// What a generator wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Persons generated.
    pub persons: u64,
    /// Records (lines) written.
    pub records: u64,
}

impl Generator {
    /// A generator of `persons` people from `seed`.
    pub fn new(persons: u64, seed: u64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            persons,
        }
    }

    /// Writes every record as JSON Lines; `progress` receives persons done.
    pub fn write_jsonl<W: Write>(
        mut self,
        out: &mut W,
        progress: &mut dyn FnMut(u64),
    ) -> std::io::Result<GenerateSummary> {
        let mut summary = GenerateSummary::default();
        let mut start = 0u64;
        while start < self.persons {
            let end = (start + PERSONS_PER_BLOCK as u64).min(self.persons);
            let mut block: Vec<Value> = Vec::new();
            for i in start..end {
                let person = self.person(i);
                block.extend(self.records_of(&person));
            }
            block.shuffle(&mut self.rng);
            for record in &block {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")?;
            }
            summary.records += block.len() as u64;
            summary.persons = end;
            progress(end);
            start = end;
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
                format!("07{}{}", self.pick(&[4, 5, 7, 8, 9]), self.digits(8)),
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
        let n = 1 + self.zipf(4);
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
            let events = self.events_for(source);
            if !events.is_empty() {
                record["events"] = Value::Array(events);
            }
            out.push(record);
        }
        out
    }

    fn events_for(&mut self, source: &str) -> Vec<Value> {
        let (kind, max) = match source {
            "pos" | "crm" | "web_form" => ("purchase", 6),
            "app" => ("app_open", 8),
            "wifi" => ("store_visit", 5),
            _ => return Vec::new(),
        };
        let n = self.rng.gen_range(0..=max) * self.rng.gen_range(0..2);
        (0..n)
            .map(|_| {
                let at = crate::base::time::format_rfc3339(self.time_before_reference(730));
                if kind == "purchase" {
                    let category = CATEGORIES[self.zipf(CATEGORIES.len())];
                    let value = (self.rng.gen_range(5.0..250.0f64) * 100.0).round() / 100.0;
                    json!({"type": kind, "at": at, "category": category, "value": value})
                } else {
                    json!({"type": kind, "at": at})
                }
            })
            .collect()
    }
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
}
