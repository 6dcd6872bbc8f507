//! What one profile contributes to the indexes: a pure function of the stored profile, so
//! an index can always be checked against (or rebuilt from) the profiles.

use crate::input::normalize::index_text;
use crate::input::record::{ShortText, Value};
use crate::storage::profile::{Attribute, Profile};
use serde::{Deserialize, Serialize};

/// Numbers are indexed at this fixed precision: `round(x * NUMBER_SCALE)`.
pub const NUMBER_SCALE: f64 = 1000.0;

/// Text inside index keys (see [`ShortText`]): postings build one per term of every
/// changed profile, so inline names and values keep the allocator out of that path.
pub type KeyText = ShortText;

/// A key of an equality bitmap.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Term {
    /// Every live profile.
    Live,
    /// Profiles that have any value for an attribute.
    Exists(KeyText),
    /// Attribute (text, boolean, list element) equals a normalized value.
    Eq(KeyText, KeyText),
    /// Latest consent for the purpose is granted.
    Consent(KeyText),
    /// Profiles with at least one consent record (granted or not) for the purpose.
    ConsentKnown(KeyText),
    /// Profiles with an identifier of this type.
    IdentifierType(KeyText),
    /// Profiles with a record from this source.
    Source(KeyText),
    /// Profiles whose attribute holds a value of this kind (the field catalog that the
    /// query planner type-checks against).
    Kind(KeyText, ValueKind),
}

/// The kind of an attribute value, as the field catalog records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ValueKind {
    /// Text.
    Text,
    /// A number.
    Number,
    /// A boolean.
    Bool,
    /// A `YYYY-MM-DD` date.
    Date,
    /// A list of strings.
    List,
}

impl ValueKind {
    /// The kind of a value.
    pub fn of(value: &Value) -> ValueKind {
        match value {
            Value::Text(_) => ValueKind::Text,
            Value::Number(_) => ValueKind::Number,
            Value::Bool(_) => ValueKind::Bool,
            Value::Date(_) => ValueKind::Date,
            Value::List(_) => ValueKind::List,
        }
    }
}

/// Which bit-sliced index a numeric posting goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NumericKind {
    /// Numbers, at [`NUMBER_SCALE`].
    Number,
    /// Dates, as day numbers.
    Date,
}

/// Key of a bit-sliced index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NumericKey {
    /// Attribute name.
    pub field: KeyText,
    /// Number or date.
    pub kind: NumericKind,
}

/// A profile's index entries, sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Postings {
    /// Equality bitmaps the profile is in.
    pub terms: Vec<Term>,
    /// Bit-sliced values.
    pub numbers: Vec<(NumericKey, i64)>,
}

/// Fixed-precision integer for a number.
pub fn scale_number(x: f64) -> i64 {
    (x * NUMBER_SCALE).round() as i64
}

/// The indexed text of a boolean.
pub fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl Postings {
    /// The postings of a live profile.
    pub fn of(profile: &Profile) -> Postings {
        let list_items: usize = profile
            .attributes
            .values()
            .map(|a| match a {
                Attribute::List(items) => items.len(),
                Attribute::Scalar(_) => 1,
            })
            .sum();
        let mut terms = Vec::with_capacity(
            1 + profile.identifiers.len()
                + profile.sources.len()
                + 2 * profile.consent.len()
                + 2 * profile.attributes.len()
                + list_items,
        );
        terms.push(Term::Live);
        let mut numbers = Vec::new();
        for sid in &profile.identifiers {
            terms.push(Term::IdentifierType(sid.id.kind.as_str().into()));
        }
        for source in profile.sources.keys() {
            terms.push(Term::Source(source.as_str().into()));
        }
        for (purpose, history) in &profile.consent {
            terms.push(Term::ConsentKnown(purpose.as_str().into()));
            if history.last().is_some_and(|c| c.granted) {
                terms.push(Term::Consent(purpose.as_str().into()));
            }
        }
        for (name, attr) in &profile.attributes {
            match attr {
                Attribute::List(items) => {
                    for item in items {
                        terms.push(Term::Eq(name.as_str().into(), index_text(&item.value)));
                    }
                    if !items.is_empty() {
                        terms.push(Term::Exists(name.as_str().into()));
                        terms.push(Term::Kind(name.as_str().into(), ValueKind::List));
                    }
                }
                Attribute::Scalar(s) => {
                    terms.push(Term::Exists(name.as_str().into()));
                    terms.push(Term::Kind(name.as_str().into(), ValueKind::of(&s.value)));
                    match &s.value {
                        Value::Text(t) => terms.push(Term::Eq(name.as_str().into(), index_text(t))),
                        Value::Bool(b) => {
                            terms.push(Term::Eq(name.as_str().into(), bool_text(*b).into()))
                        }
                        Value::Number(x) => {
                            numbers.push((numeric(name, NumericKind::Number), scale_number(*x)))
                        }
                        Value::Date(d) => {
                            numbers.push((numeric(name, NumericKind::Date), i64::from(*d)))
                        }
                        Value::List(_) => {}
                    }
                }
            }
        }
        terms.sort_unstable();
        terms.dedup();
        numbers.sort_unstable();
        Postings { terms, numbers }
    }
}

fn numeric(field: &str, kind: NumericKind) -> NumericKey {
    NumericKey {
        field: field.into(),
        kind,
    }
}

/// Elements of sorted `a` that are not in sorted `b`.
pub fn sorted_minus<'a, T: Ord>(a: &'a [T], b: &[T]) -> Vec<&'a T> {
    let mut out = Vec::new();
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j >= b.len() || b[j] != *x {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_difference() {
        assert_eq!(sorted_minus(&[1, 2, 3, 5], &[2, 5, 6]), vec![&1, &3]);
        assert!(sorted_minus::<i32>(&[], &[1]).is_empty());
    }

    #[test]
    fn number_scale_rounds() {
        assert_eq!(scale_number(79.95), 79_950);
        assert_eq!(scale_number(-0.0004), 0);
    }
}
