//! Text → syntax tree, per the grammar of `segments.md`. Syntax only: field names stay
//! strings and nothing here imports the engine.

mod ast;
mod lexer;

pub use ast::{
    CmpOp, DurationUnit, EventOption, EventOptionKind, Expr, ExprKind, HasMode, Literal,
    LiteralValue, Name, Predicate, ScoreTest,
};

use crate::error::{ErrorKind, QueryError};
use crate::limits::Limits;
use crate::span::Span;
use lexer::{tokenize, Tok};

/// Parses an expression. Errors carry the span and line/column of the problem.
pub fn parse(src: &str, limits: &Limits) -> Result<Expr, QueryError> {
    parse_unlocated(src, limits).map_err(|e| e.locate(src))
}

fn parse_unlocated(src: &str, limits: &Limits) -> Result<Expr, QueryError> {
    if src.len() > limits.max_bytes {
        return Err(QueryError::new(
            ErrorKind::TooLong {
                len: src.len(),
                limit: limits.max_bytes,
            },
            Span::new(limits.max_bytes, src.len()),
        ));
    }
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        max_depth: limits.max_depth,
    };
    let expr = p.or(0)?;
    match p.peek() {
        Tok::End => Ok(expr),
        _ => Err(p.expected("AND, OR or the end of the expression")),
    }
}

/// Functions of the grammar: only a function when `(` follows.
const FUNCTIONS: [&str; 7] = [
    "consent",
    "score",
    "segment",
    "identifier",
    "source",
    "suppressed",
    "event",
];

/// Words that cannot be field names.
const KEYWORDS: [&str; 11] = [
    "and", "or", "not", "in", "between", "has", "any", "all", "exists", "true", "false",
];

struct Parser {
    tokens: Vec<(Tok, Span)>,
    pos: usize,
    max_depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].0
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].0
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].1
    }

    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].1
    }

    fn bump(&mut self) -> (Tok, Span) {
        let t = self.tokens[self.pos].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn expected(&self, what: &str) -> QueryError {
        QueryError::new(
            ErrorKind::Expected {
                expected: what.to_string(),
                found: self.peek().describe(),
            },
            self.span(),
        )
    }

    /// Whether the next token is the keyword `kw` (case-insensitive).
    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        let yes = self.at_keyword(kw);
        if yes {
            self.bump();
        }
        yes
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{}`", kw.to_ascii_uppercase())))
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Span, QueryError> {
        if *self.peek() == tok {
            Ok(self.bump().1)
        } else {
            Err(self.expected(what))
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let first = self.and(depth)?;
        let mut items = vec![first];
        while self.eat_keyword("or") {
            items.push(self.and(depth)?);
        }
        Ok(combine(items, ExprKind::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let first = self.unary(depth)?;
        let mut items = vec![first];
        while self.eat_keyword("and") {
            items.push(self.unary(depth)?);
        }
        Ok(combine(items, ExprKind::And))
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        if depth > self.max_depth {
            return Err(QueryError::new(
                ErrorKind::TooDeep(self.max_depth),
                self.span(),
            ));
        }
        let start = self.span();
        if self.eat_keyword("not") {
            let inner = self.unary(depth + 1)?;
            let span = start.to(inner.span);
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(inner)),
                span,
            });
        }
        if *self.peek() == Tok::LParen {
            self.bump();
            let mut inner = self.or(depth + 1)?;
            let end = self.expect(Tok::RParen, "`)`")?;
            inner.span = start.to(end);
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, QueryError> {
        let (tok, span) = (self.peek().clone(), self.span());
        let Tok::Word(word) = tok else {
            return Err(self.expected("a predicate (a field, a function, NOT, ALL or `(`)"));
        };
        let lower = word.to_ascii_lowercase();
        if lower == "all" {
            self.bump();
            return Ok(Expr {
                kind: ExprKind::All,
                span,
            });
        }
        if FUNCTIONS.contains(&lower.as_str()) && *self.peek_at(1) == Tok::LParen {
            self.bump();
            return self.function(&lower, span);
        }
        if KEYWORDS.contains(&lower.as_str()) {
            return Err(self.expected("a predicate (a field, a function, NOT, ALL or `(`)"));
        }
        if word != lower {
            return Err(QueryError::new(ErrorKind::FieldCase(word), span));
        }
        self.bump();
        let field = Name { text: word, span };
        let pred = self.field_predicate(field)?;
        Ok(Expr {
            kind: ExprKind::Predicate(pred),
            span: span.to(self.prev_span()),
        })
    }

    fn field_predicate(&mut self, field: Name) -> Result<Predicate, QueryError> {
        if let Tok::Cmp(op) = *self.peek() {
            self.bump();
            let value = self.value()?;
            return Ok(Predicate::Compare { field, op, value });
        }
        if self.eat_keyword("in") {
            let values = self.value_list()?;
            return Ok(Predicate::In { field, values });
        }
        if self.eat_keyword("between") {
            let low = self.value()?;
            self.expect_keyword("and")?;
            let high = self.value()?;
            return Ok(Predicate::Between { field, low, high });
        }
        if self.eat_keyword("has") {
            let mode = if self.eat_keyword("any") {
                HasMode::Any
            } else if self.eat_keyword("all") {
                HasMode::All
            } else {
                HasMode::One
            };
            let values = match mode {
                HasMode::One => vec![self.value()?],
                _ => self.value_list()?,
            };
            return Ok(Predicate::Has {
                field,
                mode,
                values,
            });
        }
        if self.eat_keyword("exists") {
            return Ok(Predicate::Exists { field });
        }
        Err(self.expected("an operator (=, !=, <, <=, >, >=, IN, BETWEEN, HAS, EXISTS)"))
    }

    fn value(&mut self) -> Result<Literal, QueryError> {
        let span = self.span();
        let value = match self.peek().clone() {
            Tok::Str(s) => LiteralValue::Str(s),
            Tok::Num(n) => LiteralValue::Num(n),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => LiteralValue::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => LiteralValue::Bool(false),
            _ => return Err(self.expected("a value (string, number, date, true or false)")),
        };
        self.bump();
        Ok(Literal { value, span })
    }

    fn value_list(&mut self) -> Result<Vec<Literal>, QueryError> {
        self.expect(Tok::LParen, "`(`")?;
        let mut values = vec![self.value()?];
        while *self.peek() == Tok::Comma {
            self.bump();
            values.push(self.value()?);
        }
        self.expect(Tok::RParen, "`,` or `)`")?;
        Ok(values)
    }

    fn string_arg(&mut self, what: &str) -> Result<Name, QueryError> {
        match self.peek().clone() {
            Tok::Str(text) => {
                let span = self.bump().1;
                Ok(Name { text, span })
            }
            _ => Err(self.expected(what)),
        }
    }

    fn function(&mut self, name: &str, start: Span) -> Result<Expr, QueryError> {
        self.expect(Tok::LParen, "`(`")?;
        let pred = match name {
            "consent" => Predicate::Consent(self.string_arg("a purpose string")?),
            "segment" => Predicate::Segment(self.string_arg("a segment name string")?),
            "identifier" => Predicate::Identifier(self.string_arg("an identifier type string")?),
            "source" => Predicate::Source(self.string_arg("a source name string")?),
            "score" => {
                let model = self.string_arg("a model name string")?;
                self.expect(Tok::RParen, "`)`")?;
                let test = if self.eat_keyword("between") {
                    let low = self.value()?;
                    self.expect_keyword("and")?;
                    ScoreTest::Between(low, self.value()?)
                } else if let Tok::Cmp(op) = self.peek().clone() {
                    self.bump();
                    ScoreTest::Compare(op, self.value()?)
                } else {
                    return Err(self.expected("a comparison (=, !=, <, <=, >, >=) or BETWEEN"));
                };
                let end = match &test {
                    ScoreTest::Compare(_, v) | ScoreTest::Between(_, v) => v.span,
                };
                return Ok(Expr {
                    kind: ExprKind::Predicate(Predicate::Score { model, test }),
                    span: start.to(end),
                });
            }
            "suppressed" => match self.peek() {
                Tok::RParen => Predicate::Suppressed(None),
                _ => Predicate::Suppressed(Some(
                    self.string_arg("a suppression list name string or `)`")?,
                )),
            },
            _ => {
                let kind = self.string_arg("an event type string")?;
                let mut options = Vec::new();
                while *self.peek() == Tok::Comma {
                    self.bump();
                    options.push(self.event_option()?);
                }
                Predicate::Event { kind, options }
            }
        };
        let end = self.expect(Tok::RParen, "`,` or `)`")?;
        Ok(Expr {
            kind: ExprKind::Predicate(pred),
            span: start.to(end),
        })
    }

    fn event_option(&mut self) -> Result<EventOption, QueryError> {
        let start = self.span();
        let word = match self.peek() {
            Tok::Word(w) => w.to_ascii_lowercase(),
            _ => {
                return Err(
                    self.expected("an event option (category, within, since, before, count, sum)")
                )
            }
        };
        let kind = match word.as_str() {
            "category" => {
                self.bump();
                match self.peek() {
                    Tok::Cmp(CmpOp::Eq) => {
                        self.bump();
                    }
                    _ => return Err(self.expected("`=`")),
                }
                EventOptionKind::Category(self.string_arg("a category string")?)
            }
            "within" => {
                self.bump();
                match *self.peek() {
                    Tok::Duration(n, unit) => {
                        self.bump();
                        EventOptionKind::Within(n, unit)
                    }
                    _ => return Err(self.expected("a duration (30d, 12w, 6m, 1y)")),
                }
            }
            "since" => {
                self.bump();
                EventOptionKind::Since(self.string_arg("a date string \"YYYY-MM-DD\"")?)
            }
            "before" => {
                self.bump();
                EventOptionKind::Before(self.string_arg("a date string \"YYYY-MM-DD\"")?)
            }
            "count" | "sum" => {
                self.bump();
                let Tok::Cmp(op) = *self.peek() else {
                    return Err(self.expected("a comparison operator"));
                };
                self.bump();
                let span = self.span();
                let Tok::Num(n) = *self.peek() else {
                    return Err(self.expected("a number"));
                };
                self.bump();
                if word == "count" {
                    if n < 0.0 || n.fract() != 0.0 || n > u32::MAX as f64 {
                        return Err(QueryError::new(
                            ErrorKind::InvalidArgument(format!(
                                "count needs a whole number from 0, not {n}"
                            )),
                            span,
                        ));
                    }
                    EventOptionKind::Count(op, n as u64)
                } else {
                    EventOptionKind::Sum(op, n)
                }
            }
            _ => {
                return Err(
                    self.expected("an event option (category, within, since, before, count, sum)")
                )
            }
        };
        Ok(EventOption {
            kind,
            span: start.to(self.prev_span()),
        })
    }
}

fn combine(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> ExprKind) -> Expr {
    if items.len() == 1 {
        return items.pop().expect("one item");
    }
    let span = items[0].span.to(items[items.len() - 1].span);
    Expr {
        kind: make(items),
        span,
    }
}

#[cfg(test)]
mod tests;
