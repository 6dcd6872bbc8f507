//! Errors: [`QueryError`] for a bad expression (kind + byte span + line/column), and
//! [`Error`] for every query operation.

use crate::span::Span;
use engine::StorageError;
use std::fmt;

/// What is wrong with an expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A character that starts no token.
    #[error("unexpected character `{0}`")]
    UnexpectedChar(char),
    /// A string without its closing quote.
    #[error("unterminated string")]
    UnterminatedString,
    /// An unknown escape in a string.
    #[error("invalid escape `{0}` (use \\\" \\\\ \\n \\t or \\uXXXX)")]
    InvalidEscape(String),
    /// A malformed number or duration.
    #[error("invalid number or duration `{0}` (durations: 30d, 12w, 6m, 1y)")]
    InvalidNumber(String),
    /// The parser wanted something else here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What would have been valid.
        expected: String,
        /// What was there.
        found: String,
    },
    /// A field name that is not lower case.
    #[error("field names are lower case: `{0}`")]
    FieldCase(String),
    /// An unknown field.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// A value or operator that does not fit the field's type.
    #[error("type mismatch: {0}")]
    TypeMismatch(String),
    /// A string that should be a `YYYY-MM-DD` date.
    #[error("invalid date `{0}` (expected YYYY-MM-DD)")]
    InvalidDate(String),
    /// An event option given twice.
    #[error("`{0}` given twice")]
    DuplicateOption(&'static str),
    /// An invalid argument (empty event type, count not a whole number, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A reference to a saved segment that does not exist.
    #[error("unknown saved segment `{0}`")]
    UnknownSegment(String),
    /// Saved segments that refer to each other in a cycle.
    #[error("saved segments form a cycle: {}", .0.join(" -> "))]
    SegmentCycle(Vec<String>),
    /// Saved segments nested deeper than the limit.
    #[error("saved segments nested deeper than {0}")]
    SegmentsTooDeep(usize),
    /// A suppression list that does not exist.
    #[error("unknown suppression list `{0}`")]
    UnknownSuppressionList(String),
    /// A model that does not exist.
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    /// The expression is longer than the limit.
    #[error("expression is {len} bytes; the limit is {limit}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The expression nests deeper than the limit.
    #[error("expression nests deeper than {0} levels")]
    TooDeep(usize),
    /// A duration longer than the limit (`within 5900000y`).
    #[error(
        "duration `{0}` is longer than the limit of {max} days (200 years)",
        max = crate::limits::MAX_DURATION_DAYS
    )]
    DurationTooLong(String),
}

/// Line and column (1-based; the column counts characters) of a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `src`.
    pub fn of(src: &str, offset: usize) -> Position {
        let offset = offset.min(src.len());
        let before = &src[..floor_char_boundary(src, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A bad expression: what, where (byte span and line/column), and, when the problem is
/// inside a saved segment's definition, which segment.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Where, as bytes of the expression text (of `segment`'s text when that is set).
    pub span: Span,
    /// Line and column of `span.start`.
    pub position: Position,
    /// The saved segment whose definition holds the problem, if not the expression itself.
    pub segment: Option<String>,
}

impl QueryError {
    pub(crate) fn new(kind: ErrorKind, span: Span) -> QueryError {
        QueryError {
            kind,
            span,
            position: Position::default(),
            segment: None,
        }
    }

    /// Fills in the line and column against the text the span refers to.
    pub(crate) fn locate(mut self, src: &str) -> QueryError {
        if self.position == Position::default() {
            self.position = Position::of(src, self.span.start);
        }
        self
    }

    /// The message with the offending line and a caret under the span, for terminals.
    /// `src` is the text the span refers to.
    pub fn render(&self, src: &str) -> String {
        let mut out = self.to_string();
        let line_start = src[..floor_char_boundary(src, self.span.start.min(src.len()))]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line_end = src[line_start..]
            .find('\n')
            .map_or(src.len(), |i| line_start + i);
        let line = &src[line_start..line_end];
        let lead = self.position.column.saturating_sub(1);
        let width = src
            .get(self.span.start.min(line_end)..self.span.end.min(line_end))
            .map_or(1, |s| s.chars().count().max(1));
        out.push_str(&format!(
            "\n  | {line}\n  | {}{}",
            " ".repeat(lead),
            "^".repeat(width)
        ));
        out
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.kind, self.position.line, self.position.column
        )?;
        if let Some(s) = &self.segment {
            write!(f, " of saved segment `{s}`")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}

/// Errors of query operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The expression is invalid.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No saved segment has that name.
    #[error("saved segment `{0}` not found")]
    SegmentNotFound(String),
    /// A segment name outside `[A-Za-z0-9_.-]{1,64}`.
    #[error("invalid segment name `{0}`: use 1-64 letters, digits, `_`, `-` or `.`")]
    InvalidSegmentName(String),
    /// Deleting a segment that others refer to.
    #[error("saved segment `{name}` is used by {}", .used_by.join(", "))]
    SegmentInUse {
        /// The segment.
        name: String,
        /// The segments that refer to it.
        used_by: Vec<String>,
    },
    /// Deleting a model that saved segments use.
    #[error("model `{name}` is used by saved segment(s) {}", .used_by.join(", "))]
    ModelInUse {
        /// The model.
        name: String,
        /// The saved segments that use it.
        used_by: Vec<String>,
    },
    /// A field that cannot be used where it was given (a breakdown of a number, say).
    #[error("{0}")]
    InvalidField(String),
    /// A request outside the documented limits (sample size, overlap width, ...).
    #[error("{0}")]
    Limit(String),
    /// The engine refused or failed (export, sync, destinations).
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let src = "a = \"é\"\n  AND b";
        assert_eq!(Position::of(src, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(src, 8), Position { line: 1, column: 8 });
        assert_eq!(Position::of(src, 11), Position { line: 2, column: 3 });
    }

    #[test]
    fn render_underlines_the_span() {
        let e = QueryError::new(ErrorKind::UnknownField("cuntry".into()), Span::new(9, 15))
            .locate("x = 1 OR cuntry = \"NL\"");
        assert_eq!(
            e.render("x = 1 OR cuntry = \"NL\""),
            "unknown field `cuntry` at line 1, column 10\n  | x = 1 OR cuntry = \"NL\"\n  |          ^^^^^^"
        );
    }
}
