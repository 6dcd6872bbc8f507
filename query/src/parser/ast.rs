//! The syntax tree of a segment expression: names are plain strings, every node has its
//! byte span; nothing here knows the engine (the planner resolves names).

use crate::span::Span;
use std::fmt;

/// An expression with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// Expression forms.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Any of (two or more).
    Or(Vec<Expr>),
    /// All of (two or more).
    And(Vec<Expr>),
    /// Live profiles not in the operand.
    Not(Box<Expr>),
    /// Every live profile.
    All,
    /// A predicate.
    Predicate(Predicate),
}

/// A name or string argument with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    /// The text (unescaped for strings).
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// A literal value with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    /// The value.
    pub value: LiteralValue,
    /// Where it is.
    pub span: Span,
}

/// Literal values (a date is a string; the planner reads it where the field is a date).
#[derive(Debug, Clone, PartialEq)]
pub enum LiteralValue {
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl LiteralValue {
    /// The literal's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            LiteralValue::Str(_) => "a string",
            LiteralValue::Num(_) => "a number",
            LiteralValue::Bool(_) => "a boolean",
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Applies the operator.
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
        }
    }
}

/// `HAS`, `HAS ANY`, `HAS ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasMode {
    /// `HAS v`
    One,
    /// `HAS ANY (...)`
    Any,
    /// `HAS ALL (...)`
    All,
}

/// Units of a duration; exact lengths per the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    /// 86,400 s
    Days,
    /// 7 days
    Weeks,
    /// 30 days
    Months,
    /// 365 days
    Years,
}

impl DurationUnit {
    pub(crate) fn from_suffix(b: u8) -> Option<DurationUnit> {
        match b.to_ascii_lowercase() {
            b'd' => Some(DurationUnit::Days),
            b'w' => Some(DurationUnit::Weeks),
            b'm' => Some(DurationUnit::Months),
            b'y' => Some(DurationUnit::Years),
            _ => None,
        }
    }

    /// The suffix as written.
    pub fn suffix(self) -> char {
        match self {
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
            DurationUnit::Months => 'm',
            DurationUnit::Years => 'y',
        }
    }

    /// Length in days.
    pub fn days(self) -> i64 {
        match self {
            DurationUnit::Days => 1,
            DurationUnit::Weeks => 7,
            DurationUnit::Months => 30,
            DurationUnit::Years => 365,
        }
    }

    /// `n` of this unit in milliseconds, saturating (the parser refuses durations over 200
    /// years, but a syntax tree can be built by hand).
    pub fn millis(self, n: u32) -> i64 {
        const MS_PER_DAY: i64 = 86_400_000;
        (i64::from(n) * self.days()).saturating_mul(MS_PER_DAY)
    }
}

/// Predicates.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `field op value`
    Compare {
        /// The field.
        field: Name,
        /// The operator.
        op: CmpOp,
        /// The value.
        value: Literal,
    },
    /// `field IN (values)`
    In {
        /// The field.
        field: Name,
        /// The values (at least one).
        values: Vec<Literal>,
    },
    /// `field BETWEEN low AND high`
    Between {
        /// The field.
        field: Name,
        /// Lower bound (included).
        low: Literal,
        /// Upper bound (included).
        high: Literal,
    },
    /// `field HAS v`, `HAS ANY (...)`, `HAS ALL (...)`
    Has {
        /// The field.
        field: Name,
        /// Which form.
        mode: HasMode,
        /// The values.
        values: Vec<Literal>,
    },
    /// `field EXISTS`
    Exists {
        /// The field.
        field: Name,
    },
    /// `consent("purpose")`
    Consent(Name),
    /// `segment("name")`
    Segment(Name),
    /// `identifier("type")`
    Identifier(Name),
    /// `source("name")`
    Source(Name),
    /// `suppressed()` or `suppressed("list")`
    Suppressed(Option<Name>),
    /// `score("model") op n` or `score("model") BETWEEN a AND b`: a model's percentile
    /// (0-100) of the profile.
    Score {
        /// The model.
        model: Name,
        /// The comparison.
        test: ScoreTest,
    },
    /// `event("type", options...)`
    Event {
        /// The event type.
        kind: Name,
        /// Its options.
        options: Vec<EventOption>,
    },
}

/// What `score("model")` is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreTest {
    /// `op n`
    Compare(CmpOp, Literal),
    /// `BETWEEN low AND high`
    Between(Literal, Literal),
}

/// One option of `event(...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventOption {
    /// Which option.
    pub kind: EventOptionKind,
    /// Where it is.
    pub span: Span,
}

/// Options of `event(...)`.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOptionKind {
    /// `category = "c"`
    Category(Name),
    /// `within N unit`
    Within(u32, DurationUnit),
    /// `since "YYYY-MM-DD"`
    Since(Name),
    /// `before "YYYY-MM-DD"`
    Before(Name),
    /// `count op n`
    Count(CmpOp, u64),
    /// `sum op x`
    Sum(CmpOp, f64),
}

impl EventOptionKind {
    /// The option's keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            EventOptionKind::Category(_) => "category",
            EventOptionKind::Within(..) => "within",
            EventOptionKind::Since(_) => "since",
            EventOptionKind::Before(_) => "before",
            EventOptionKind::Count(..) => "count",
            EventOptionKind::Sum(..) => "sum",
        }
    }
}

impl Expr {
    /// Names of the saved segments the expression refers to, with their spans.
    pub fn segment_refs(&self) -> Vec<&Name> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let ExprKind::Predicate(Predicate::Segment(n)) = &e.kind {
                out.push(n);
            }
        });
        out
    }

    /// Calls `f` on this node and every node below it.
    pub fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Or(v) | ExprKind::And(v) => v.iter().for_each(|e| e.visit(f)),
            ExprKind::Not(e) => e.visit(f),
            ExprKind::All | ExprKind::Predicate(_) => {}
        }
    }
}

impl fmt::Display for Expr {
    /// Prints the expression back in canonical form (keywords upper-case); parsing the
    /// output gives the same tree (spans aside).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Or(v) | ExprKind::And(v) => {
                let and = matches!(self.kind, ExprKind::And(_));
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if and { " AND " } else { " OR " })?;
                    }
                    let wrap = matches!(e.kind, ExprKind::Or(_))
                        || (and && matches!(e.kind, ExprKind::And(_)));
                    if wrap {
                        write!(f, "({e})")?;
                    } else {
                        write!(f, "{e}")?;
                    }
                }
                Ok(())
            }
            ExprKind::Not(e) => {
                f.write_str("NOT ")?;
                match e.kind {
                    ExprKind::Or(_) | ExprKind::And(_) => write!(f, "({e})"),
                    _ => write!(f, "{e}"),
                }
            }
            ExprKind::All => f.write_str("ALL"),
            ExprKind::Predicate(p) => write!(f, "{p}"),
        }
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            LiteralValue::Str(s) => f.write_str(&quote(s)),
            LiteralValue::Num(n) => write!(f, "{n}"),
            LiteralValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

fn list(values: &[Literal]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Compare { field, op, value } => {
                write!(f, "{} {} {value}", field.text, op.symbol())
            }
            Predicate::In { field, values } => write!(f, "{} IN ({})", field.text, list(values)),
            Predicate::Between { field, low, high } => {
                write!(f, "{} BETWEEN {low} AND {high}", field.text)
            }
            Predicate::Has {
                field,
                mode: HasMode::One,
                values,
            } => write!(f, "{} HAS {}", field.text, list(values)),
            Predicate::Has {
                field,
                mode,
                values,
            } => {
                let m = if *mode == HasMode::Any { "ANY" } else { "ALL" };
                write!(f, "{} HAS {m} ({})", field.text, list(values))
            }
            Predicate::Exists { field } => write!(f, "{} EXISTS", field.text),
            Predicate::Consent(n) => write!(f, "consent({})", quote(&n.text)),
            Predicate::Segment(n) => write!(f, "segment({})", quote(&n.text)),
            Predicate::Identifier(n) => write!(f, "identifier({})", quote(&n.text)),
            Predicate::Source(n) => write!(f, "source({})", quote(&n.text)),
            Predicate::Suppressed(None) => f.write_str("suppressed()"),
            Predicate::Score {
                model,
                test: ScoreTest::Compare(op, value),
            } => write!(f, "score({}) {} {value}", quote(&model.text), op.symbol()),
            Predicate::Score {
                model,
                test: ScoreTest::Between(low, high),
            } => write!(f, "score({}) BETWEEN {low} AND {high}", quote(&model.text)),
            Predicate::Suppressed(Some(n)) => write!(f, "suppressed({})", quote(&n.text)),
            Predicate::Event { kind, options } => {
                write!(f, "event({}", quote(&kind.text))?;
                for o in options {
                    match &o.kind {
                        EventOptionKind::Category(c) => {
                            write!(f, ", category = {}", quote(&c.text))?
                        }
                        EventOptionKind::Within(n, u) => write!(f, ", within {n}{}", u.suffix())?,
                        EventOptionKind::Since(d) => write!(f, ", since {}", quote(&d.text))?,
                        EventOptionKind::Before(d) => write!(f, ", before {}", quote(&d.text))?,
                        EventOptionKind::Count(op, n) => write!(f, ", count {} {n}", op.symbol())?,
                        EventOptionKind::Sum(op, x) => write!(f, ", sum {} {x}", op.symbol())?,
                    }
                }
                f.write_str(")")
            }
        }
    }
}
