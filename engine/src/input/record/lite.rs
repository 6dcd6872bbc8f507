//! JSON as the record parser reads it: like `serde_json::Value`, but an object is a vector
//! of pairs instead of a tree map (a record has a handful of keys, so a map per object
//! costs more than it saves), and strings borrow from the input line unless they hold
//! escapes. Parsing a line into this and validating it allocates a fraction of what
//! going through `serde_json::Value` did.
//!
//! Object semantics follow `serde_json::Value` exactly, so both paths validate alike: a
//! key given twice keeps its last value, and [`Object::into_sorted`] yields the keys in
//! sorted order (a `serde_json::Map` iterates sorted).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value as Json};
use std::borrow::Cow;
use std::fmt;

/// A JSON value, borrowing strings from the input where it can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lite<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Lite<'a>>),
    /// Pairs in input order; duplicates possible until [`Object::into_sorted`] or
    /// [`Object::take`] resolves them.
    Object(Object<'a>),
}

/// A JSON object's pairs.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object<'a> {
    pairs: Vec<(Cow<'a, str>, Lite<'a>)>,
}

impl<'a> Object<'a> {
    /// Removes `key` and returns its value (the last one given, as `serde_json` keeps).
    pub(crate) fn take(&mut self, key: &str) -> Option<Lite<'a>> {
        let mut found = None;
        let mut i = 0;
        while i < self.pairs.len() {
            if self.pairs[i].0 == key {
                found = Some(self.pairs.remove(i).1);
            } else {
                i += 1;
            }
        }
        found
    }

    /// The pairs sorted by key, each key once with its last value.
    pub(crate) fn into_sorted(self) -> Vec<(Cow<'a, str>, Lite<'a>)> {
        let mut pairs = self.pairs;
        // Stable: equal keys stay in input order, so the last of a run is the last given.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Cow<'a, str>, Lite<'a>)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        out
    }

    /// The smallest key left.
    pub(crate) fn first_key(&self) -> Option<&str> {
        self.pairs.iter().map(|(k, _)| k.as_ref()).min()
    }
}

impl<'a> Lite<'a> {
    /// Parses one JSON text.
    pub(crate) fn parse(text: &'a str) -> serde_json::Result<Lite<'a>> {
        serde_json::from_str(text)
    }
}

impl From<Json> for Lite<'static> {
    fn from(json: Json) -> Self {
        match json {
            Json::Null => Lite::Null,
            Json::Bool(b) => Lite::Bool(b),
            Json::Number(n) => Lite::Number(n),
            Json::String(s) => Lite::String(Cow::Owned(s)),
            Json::Array(items) => Lite::Array(items.into_iter().map(Lite::from).collect()),
            Json::Object(map) => Lite::Object(Object {
                pairs: map
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Lite::from(v)))
                    .collect(),
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Lite<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LiteVisitor)
    }
}

struct LiteVisitor;

impl<'de> Visitor<'de> for LiteVisitor {
    type Value = Lite<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Lite<'de>, E> {
        Ok(Lite::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Lite<'de>, E> {
        Ok(Lite::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Lite<'de>, E> {
        Ok(Lite::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Lite<'de>, E> {
        // As `serde_json::Value` does: a non-finite float (not valid JSON) becomes null.
        Ok(Number::from_f64(v).map_or(Lite::Null, Lite::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Lite<'de>, E> {
        Ok(Lite::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Lite<'de>, E> {
        Ok(Lite::String(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Lite<'de>, E> {
        Ok(Lite::String(Cow::Owned(v)))
    }

    fn visit_none<E>(self) -> Result<Lite<'de>, E> {
        Ok(Lite::Null)
    }

    fn visit_unit<E>(self) -> Result<Lite<'de>, E> {
        Ok(Lite::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Lite<'de>, D::Error> {
        Deserialize::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lite<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Lite::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lite<'de>, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<Key<'de>>()? {
            pairs.push((key.0, map.next_value()?));
        }
        Ok(Lite::Object(Object { pairs }))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The parts of a record line that decide its identifiers, parsed without building the
/// rest: the last `identifiers` value and the last `attributes.country` value (the values
/// [`Object::take`] gives). Everything else is checked as JSON and skipped. For the
/// grouping pass of a file import, which reads every line before the real parse.
#[derive(Debug, Default)]
pub(crate) struct IdentityPart<'a> {
    pub(crate) identifiers: Option<Lite<'a>>,
    pub(crate) country: Option<Lite<'a>>,
}

impl<'a> IdentityPart<'a> {
    /// Parses a line; `None` if it is not JSON or not an object (the parse rejects it).
    pub(crate) fn parse(text: &'a str) -> Option<IdentityPart<'a>> {
        serde_json::from_str(text).ok()
    }
}

/// The object keys [`IdentityPart`] looks at.
enum PartKey {
    Identifiers,
    Attributes,
    Country,
    Other,
}

impl<'de> Deserialize<'de> for PartKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = PartKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, key: &str) -> Result<PartKey, E> {
                Ok(match key {
                    "identifiers" => PartKey::Identifiers,
                    "attributes" => PartKey::Attributes,
                    "country" => PartKey::Country,
                    _ => PartKey::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for IdentityPart<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PartVisitor;
        impl<'de> Visitor<'de> for PartVisitor {
            type Value = IdentityPart<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut part = IdentityPart::default();
                each_key(map, |key, map| {
                    match key {
                        PartKey::Identifiers => part.identifiers = Some(map.next_value()?),
                        PartKey::Attributes => part.country = map.next_value::<CountryOf>()?.0,
                        PartKey::Country | PartKey::Other => return Ok(false),
                    }
                    Ok(true)
                })?;
                Ok(part)
            }
        }
        deserializer.deserialize_map(PartVisitor)
    }
}

/// Walks a map's keys in order: `take` reads the value of a key it wants (and says
/// `true`); the values of the others are checked as JSON and skipped.
fn each_key<'de, A: MapAccess<'de>>(
    mut map: A,
    mut take: impl FnMut(PartKey, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<PartKey>()? {
        if !take(key, &mut map)? {
            map.next_value::<serde::de::IgnoredAny>()?;
        }
    }
    Ok(())
}

/// The last `country` of an `attributes` value (`None` when it is not an object).
struct CountryOf<'a>(Option<Lite<'a>>);

impl<'de> Deserialize<'de> for CountryOf<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountryVisitor;
        impl<'de> Visitor<'de> for CountryVisitor {
            type Value = CountryOf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut country = None;
                each_key(map, |key, map| {
                    let PartKey::Country = key else {
                        return Ok(false);
                    };
                    country = Some(map.next_value()?);
                    Ok(true)
                })?;
                Ok(CountryOf(country))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(CountryOf(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(CountryOf(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(CountryOf(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(CountryOf(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(CountryOf(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(CountryOf(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(CountryOf(None))
            }
        }
        deserializer.deserialize_any(CountryVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_serde_json_value() {
        let text = r#"{"b":[1,-2,3.5,"x\"y",null,true],"a":{"k":"v","k":"w"},"c":1e400}"#;
        let lite = Lite::parse(text);
        let value = serde_json::from_str::<Json>(text).map(Lite::from);
        // 1e400 overflows to infinity: both reject it the same way.
        assert_eq!(
            lite.map_err(|e| e.to_string()),
            value.map_err(|e| e.to_string())
        );
        let text = r#"{"b":[1,-2,3.5,"x\"y",null,true],"a":{"k":"v","k":"w"}}"#;
        let Lite::Object(obj) = Lite::parse(text).unwrap() else {
            panic!("an object")
        };
        let Lite::Object(from_value) = Lite::from(serde_json::from_str::<Json>(text).unwrap())
        else {
            panic!("an object")
        };
        let (sorted, from_value) = (obj.into_sorted(), from_value.into_sorted());
        assert_eq!(sorted[1], from_value[1], "arrays, numbers, escapes");
        assert_eq!(sorted[0].0, "a");
        let Lite::Object(inner) = &sorted[0].1 else {
            panic!("an object")
        };
        assert_eq!(
            inner.clone().into_sorted(),
            vec![(Cow::Borrowed("k"), Lite::String(Cow::Borrowed("w")))],
            "the last of a duplicated key wins"
        );
    }

    #[test]
    fn take_returns_the_last_duplicate_and_removes_all() {
        let Lite::Object(mut obj) = Lite::parse(r#"{"k":1,"x":2,"k":3}"#).unwrap() else {
            panic!("an object")
        };
        assert_eq!(obj.take("k"), Some(Lite::Number(3.into())));
        assert_eq!(obj.take("k"), None);
        assert_eq!(obj.first_key(), Some("x"));
    }
}
