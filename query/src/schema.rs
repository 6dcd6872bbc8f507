//! Field types: the well-known attributes of `records.md`, the virtual `age`, and whatever
//! kinds the engine's field catalog has seen in live profiles.

use crate::error::{ErrorKind, QueryError};
use crate::parser::Name;
use engine::{Indexes, ValueKind};

/// The attribute `age` is computed from.
pub(crate) const BIRTH_DATE: &str = "birth_date";

/// What a field name refers to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    /// The virtual `age`: whole years since `birth_date`.
    Age,
    /// A stored attribute and the kinds of value it may hold.
    Attribute(Vec<ValueKind>),
}

/// Kinds of the well-known attributes (`records.md`), valid even before any data exists.
fn well_known(name: &str) -> &'static [ValueKind] {
    use ValueKind::*;
    match name {
        "first_name" | "last_name" | "gender" | "country" | "city" | "zip" | "language"
        | "loyalty_tier" => &[Text],
        "birth_date" => &[Date],
        "education" | "work" | "interests" | "likes" => &[List],
        "lifetime_value" => &[Number],
        "newsletter" => &[Bool],
        _ => &[],
    }
}

/// Resolves a field name; unknown names are an error at the name's span.
pub(crate) fn resolve(ix: &Indexes, name: &Name) -> Result<Field, QueryError> {
    if name.text == "age" {
        return Ok(Field::Age);
    }
    let mut kinds = well_known(&name.text).to_vec();
    for k in ix.field_kinds(&name.text) {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if kinds.is_empty() {
        return Err(QueryError::new(
            ErrorKind::UnknownField(name.text.clone()),
            name.span,
        ));
    }
    Ok(Field::Attribute(kinds))
}

/// How a set of kinds reads in a message.
pub(crate) fn describe(kinds: &[ValueKind]) -> String {
    kinds
        .iter()
        .map(|k| match k {
            ValueKind::Text => "text",
            ValueKind::Number => "a number",
            ValueKind::Bool => "a boolean",
            ValueKind::Date => "a date",
            ValueKind::List => "a list",
        })
        .collect::<Vec<_>>()
        .join(" or ")
}
