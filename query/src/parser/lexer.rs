//! Tokens of the segment language, each with its byte span.

use super::ast::{CmpOp, DurationUnit};
use crate::error::{ErrorKind, QueryError};
use crate::limits::MAX_DURATION_DAYS;
use crate::span::Span;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: keyword, function name or field (case preserved).
    Word(String),
    /// A string literal, unescaped.
    Str(String),
    /// A number literal.
    Num(f64),
    /// An integer with a unit: `30d`.
    Duration(u32, DurationUnit),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// A comparison operator.
    Cmp(CmpOp),
    /// End of input.
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(s) => format!("string \"{}\"", s.escape_debug()),
            Tok::Num(n) => format!("number {n}"),
            Tok::Duration(n, u) => format!("duration {n}{}", u.suffix()),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Cmp(op) => format!("`{}`", op.symbol()),
            Tok::End => "end of expression".into(),
        }
    }
}

/// Splits `src` into tokens (the last one is [`Tok::End`]).
pub(crate) fn tokenize(src: &str) -> Result<Vec<(Tok, Span)>, QueryError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                out.push((Tok::LParen, Span::new(start, i)));
            }
            b')' => {
                i += 1;
                out.push((Tok::RParen, Span::new(start, i)));
            }
            b',' => {
                i += 1;
                out.push((Tok::Comma, Span::new(start, i)));
            }
            b'=' | b'!' | b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    (b'=', Some(b'=')) => (CmpOp::Eq, 2),
                    (b'=', _) => (CmpOp::Eq, 1),
                    (b'!', Some(b'=')) => (CmpOp::Ne, 2),
                    (b'<', Some(b'=')) => (CmpOp::Le, 2),
                    (b'<', Some(b'>')) => (CmpOp::Ne, 2),
                    (b'<', _) => (CmpOp::Lt, 1),
                    (b'>', Some(b'=')) => (CmpOp::Ge, 2),
                    (b'>', _) => (CmpOp::Gt, 1),
                    _ => {
                        return Err(QueryError::new(
                            ErrorKind::UnexpectedChar('!'),
                            Span::new(start, start + 1),
                        ))
                    }
                };
                i += len;
                out.push((Tok::Cmp(op), Span::new(start, i)));
            }
            b'"' => {
                let (s, end) = string(src, start)?;
                i = end;
                out.push((Tok::Str(s), Span::new(start, i)));
            }
            b'-' | b'0'..=b'9' => {
                let (tok, end) = number(src, start)?;
                i = end;
                out.push((tok, Span::new(start, i)));
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                out.push((Tok::Word(src[start..i].to_string()), Span::new(start, i)));
            }
            _ => {
                let ch = src[start..].chars().next().expect("in bounds");
                return Err(QueryError::new(
                    ErrorKind::UnexpectedChar(ch),
                    Span::new(start, start + ch.len_utf8()),
                ));
            }
        }
    }
    out.push((Tok::End, Span::new(src.len(), src.len())));
    Ok(out)
}

/// Reads a string literal starting at the opening quote; returns it and the end offset.
fn string(src: &str, start: usize) -> Result<(String, usize), QueryError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        let at = start + 1 + off;
        match ch {
            '"' => return Ok((out, at + 1)),
            '\\' => {
                let Some((_, esc)) = chars.next() else { break };
                match esc {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                        let code = (hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                            .then(|| u32::from_str_radix(&hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                        match code {
                            Some(c) => out.push(c),
                            None => {
                                return Err(QueryError::new(
                                    ErrorKind::InvalidEscape(format!("\\u{hex}")),
                                    Span::new(at, (at + 2 + hex.len()).min(src.len())),
                                ))
                            }
                        }
                    }
                    other => {
                        return Err(QueryError::new(
                            ErrorKind::InvalidEscape(format!("\\{other}")),
                            Span::new(at, at + 1 + other.len_utf8()),
                        ))
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(QueryError::new(
        ErrorKind::UnterminatedString,
        Span::new(start, src.len()),
    ))
}

/// Reads a number (`-12`, `3.5`, `1e3`) or a duration (`30d`).
fn number(src: &str, start: usize) -> Result<(Tok, usize), QueryError> {
    let bytes = src.as_bytes();
    let mut i = start;
    if bytes[i] == b'-' {
        i += 1;
    }
    let digits_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_end = i;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    // A word character right after the number: a duration, or garbage.
    let mut word_end = i;
    while word_end < bytes.len()
        && (bytes[word_end] == b'_' || bytes[word_end].is_ascii_alphanumeric())
    {
        word_end += 1;
    }
    let text = &src[start..word_end];
    if word_end > i {
        let unit = (word_end == int_end + 1 && i == int_end && start == digits_start)
            .then(|| DurationUnit::from_suffix(bytes[int_end]))
            .flatten();
        let Some(unit) = unit else {
            return Err(QueryError::new(
                ErrorKind::InvalidNumber(text.to_string()),
                Span::new(start, word_end),
            ));
        };
        // Digits only here; too many for a u64 is too long as well.
        let days = src[digits_start..int_end]
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit.days().unsigned_abs()));
        return match days {
            Some(days) if days <= u64::from(MAX_DURATION_DAYS) => {
                let n = (days / unit.days().unsigned_abs()) as u32;
                Ok((Tok::Duration(n, unit), word_end))
            }
            _ => Err(QueryError::new(
                ErrorKind::DurationTooLong(text.to_string()),
                Span::new(start, word_end),
            )),
        };
    }
    if int_end == digits_start {
        return Err(QueryError::new(
            ErrorKind::InvalidNumber(text.to_string()),
            Span::new(start, word_end.max(start + 1)),
        ));
    }
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok((Tok::Num(n), i)),
        _ => Err(QueryError::new(
            ErrorKind::InvalidNumber(text.to_string()),
            Span::new(start, i),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn reads_every_token_kind() {
        assert_eq!(
            toks(r#"a_1 = "x\"y\u0041" != 2.5e1 -3 30d ( , ) <= >= < > <>"#),
            vec![
                Tok::Word("a_1".into()),
                Tok::Cmp(CmpOp::Eq),
                Tok::Str("x\"yA".into()),
                Tok::Cmp(CmpOp::Ne),
                Tok::Num(25.0),
                Tok::Num(-3.0),
                Tok::Duration(30, DurationUnit::Days),
                Tok::LParen,
                Tok::Comma,
                Tok::RParen,
                Tok::Cmp(CmpOp::Le),
                Tok::Cmp(CmpOp::Ge),
                Tok::Cmp(CmpOp::Lt),
                Tok::Cmp(CmpOp::Gt),
                Tok::Cmp(CmpOp::Ne),
                Tok::End,
            ]
        );
    }

    #[test]
    fn spans_are_byte_offsets() {
        let t = tokenize("é = \"ü\"");
        assert!(t.is_err(), "é is not a word character");
        let t = tokenize("a = \"ü\" b").unwrap();
        assert_eq!(t[2].1, Span::new(4, 8));
        assert_eq!(t[3].1, Span::new(9, 10));
    }
}
