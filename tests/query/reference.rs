//! A naive reference for segment expressions: reads every stored profile one by one and
//! applies the spec's meaning (`segments.md`) directly, without any index.

use cidb::query::{
    age_at, parse, CmpOp, EventOptionKind, Expr, ExprKind, HasMode, Limits, Literal, LiteralValue,
    Predicate,
};
use cidb::{
    day_of, index_text, normalize_country, parse_date, scale_number, Attribute, Engine, Event,
    Lookup, Millis, Profile, Value, MS_PER_DAY,
};
use std::collections::{BTreeMap, BTreeSet};

/// A live profile with its events, as stored.
pub struct StoredProfile {
    pub profile: Profile,
    pub events: Vec<Event>,
}

/// Every live profile, read one by one through lookups by id.
pub fn live_profiles(engine: &Engine) -> Vec<StoredProfile> {
    let mut out = Vec::new();
    for pid in 0..engine.stats().profile_ids as u32 {
        let Some(view) = engine.lookup(&Lookup::Id(pid)).expect("lookup") else {
            continue;
        };
        if view.profile.id != pid {
            continue; // merged into another profile
        }
        let events = view.events.into_iter().flat_map(|c| c.events).collect();
        out.push(StoredProfile {
            profile: view.profile,
            events,
        });
    }
    out
}

/// Evaluates expressions by scanning profiles.
pub struct Reference<'a> {
    pub profiles: &'a [StoredProfile],
    pub at: Millis,
    pub saved: BTreeMap<String, String>,
}

impl Reference<'_> {
    /// Ids of the profiles that match `src`.
    pub fn members(&self, src: &str) -> BTreeSet<u32> {
        let expr = parse(src, &Limits::default()).expect("reference parses");
        self.profiles
            .iter()
            .filter(|p| self.matches(&expr, p))
            .map(|p| p.profile.id)
            .collect()
    }

    fn matches(&self, e: &Expr, p: &StoredProfile) -> bool {
        match &e.kind {
            ExprKind::Or(v) => v.iter().any(|e| self.matches(e, p)),
            ExprKind::And(v) => v.iter().all(|e| self.matches(e, p)),
            ExprKind::Not(e) => !self.matches(e, p),
            ExprKind::All => true,
            ExprKind::Predicate(pred) => self.predicate(pred, p),
        }
    }

    fn predicate(&self, pred: &Predicate, p: &StoredProfile) -> bool {
        let prof = &p.profile;
        match pred {
            Predicate::Compare { field, op, value } => {
                if field.text == "age" {
                    let Some(age) = self.age(prof) else {
                        return false;
                    };
                    let LiteralValue::Num(x) = value.value else {
                        unreachable!()
                    };
                    return op.holds(age as f64, x);
                }
                let attr = prof.attributes.get(field.text.as_str());
                match op {
                    CmpOp::Eq => attr.is_some_and(|a| equals(&field.text, a, value)),
                    CmpOp::Ne => {
                        attr.is_some_and(|a| has_value(a) && !equals(&field.text, a, value))
                    }
                    op => attr.is_some_and(|a| ordered(a, *op, value)),
                }
            }
            Predicate::In { field, values } => values.iter().any(|v| {
                self.predicate(
                    &Predicate::Compare {
                        field: field.clone(),
                        op: CmpOp::Eq,
                        value: v.clone(),
                    },
                    p,
                )
            }),
            Predicate::Between { field, low, high } => [(CmpOp::Ge, low), (CmpOp::Le, high)]
                .into_iter()
                .all(|(op, v)| {
                    self.predicate(
                        &Predicate::Compare {
                            field: field.clone(),
                            op,
                            value: v.clone(),
                        },
                        p,
                    )
                }),
            Predicate::Has {
                field,
                mode,
                values,
            } => {
                let Some(Attribute::List(items)) = prof.attributes.get(field.text.as_str()) else {
                    return false;
                };
                let contains = |v: &Literal| {
                    let LiteralValue::Str(s) = &v.value else {
                        unreachable!()
                    };
                    items.iter().any(|i| index_text(&i.value) == index_text(s))
                };
                match mode {
                    HasMode::All => values.iter().all(contains),
                    HasMode::One | HasMode::Any => values.iter().any(contains),
                }
            }
            Predicate::Exists { field } if field.text == "age" => self.age(prof).is_some(),
            Predicate::Exists { field } => prof
                .attributes
                .get(field.text.as_str())
                .is_some_and(has_value),
            Predicate::Consent(n) => prof
                .consent
                .get(n.text.as_str())
                .and_then(|h| h.last())
                .is_some_and(|c| c.granted),
            Predicate::Identifier(n) => prof.identifiers.iter().any(|i| i.id.kind == n.text),
            Predicate::Source(n) => prof.sources.contains_key(n.text.as_str()),
            Predicate::Suppressed(_) => false,
            // The generated expressions name no model (models have their own tests).
            Predicate::Score { .. } => panic!("the reference has no models"),
            Predicate::Segment(n) => {
                let expr = parse(&self.saved[&n.text], &Limits::default()).expect("saved parses");
                self.matches(&expr, p)
            }
            Predicate::Event { kind, options } => {
                let mut count = 0u64;
                let mut sum = 0.0;
                for ev in &p.events {
                    if ev.kind != index_text(&kind.text) {
                        continue;
                    }
                    let fits = options.iter().all(|o| match &o.kind {
                        EventOptionKind::Category(c) => {
                            ev.category.as_deref() == Some(index_text(&c.text).as_str())
                        }
                        EventOptionKind::Within(n, unit) => {
                            ev.at >= self.at - i64::from(*n) * unit.days() * MS_PER_DAY
                        }
                        EventOptionKind::Since(d) => ev.at >= midnight(&d.text),
                        EventOptionKind::Before(d) => ev.at < midnight(&d.text),
                        EventOptionKind::Count(..) | EventOptionKind::Sum(..) => true,
                    });
                    if fits {
                        count += 1;
                        sum += ev.value.unwrap_or(0.0);
                    }
                }
                count > 0
                    && options.iter().all(|o| match o.kind {
                        EventOptionKind::Count(op, n) => op.holds(count, n),
                        EventOptionKind::Sum(op, x) => op.holds(scale_number(sum), scale_number(x)),
                        _ => true,
                    })
            }
        }
    }

    fn age(&self, prof: &Profile) -> Option<i64> {
        match prof.attributes.get("birth_date") {
            Some(Attribute::Scalar(s)) => match s.value {
                Value::Date(d) => Some(age_at(d, day_of(self.at))),
                _ => None,
            },
            _ => None,
        }
    }
}

fn midnight(date: &str) -> Millis {
    i64::from(parse_date(date).expect("valid date")) * MS_PER_DAY
}

fn has_value(a: &Attribute) -> bool {
    match a {
        Attribute::List(items) => !items.is_empty(),
        Attribute::Scalar(_) => true,
    }
}

/// Strings compare case-insensitively; `country` also accepts names and other codes.
fn text_key(field: &str, s: &str) -> cidb::ShortText {
    if field == "country" {
        if let Some(code) = normalize_country(s) {
            return index_text(code);
        }
    }
    index_text(s)
}

fn equals(field: &str, a: &Attribute, v: &Literal) -> bool {
    match (a, &v.value) {
        (Attribute::List(items), LiteralValue::Str(s)) => items
            .iter()
            .any(|i| index_text(&i.value) == text_key(field, s)),
        (Attribute::List(_), _) => false,
        (Attribute::Scalar(sc), lit) => match (&sc.value, lit) {
            (Value::Text(t), LiteralValue::Str(s)) => index_text(t) == text_key(field, s),
            (Value::Date(d), LiteralValue::Str(s)) => parse_date(s) == Some(*d),
            (Value::Number(n), LiteralValue::Num(x)) => scale_number(*n) == scale_number(*x),
            (Value::Bool(b), LiteralValue::Bool(x)) => b == x,
            _ => false,
        },
    }
}

fn ordered(a: &Attribute, op: CmpOp, v: &Literal) -> bool {
    let Attribute::Scalar(sc) = a else {
        return false;
    };
    match (&sc.value, &v.value) {
        (Value::Number(n), LiteralValue::Num(x)) => op.holds(scale_number(*n), scale_number(*x)),
        (Value::Date(d), LiteralValue::Str(s)) => op.holds(Some(*d), parse_date(s)),
        _ => false,
    }
}
