//! The error object: `{"error": {"code", "message", ...}}`, the body of every HTTP error
//! answer and, for a bad expression, the line `--json` prints on stderr. Fields in
//! alphabetical order (it was a JSON object before it was a type); the optional members
//! appear only on the errors that have them.

use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: Error,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Error {
    /// Machine-readable code (`invalid_expression`, `not_found`, ...).
    pub code: String,
    /// `internal`: the id the server log has the error under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// `timeout`: whether the request writes (and may still commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub may_still_commit: Option<bool>,
    /// What happened.
    pub message: String,
    /// `malformed_json` and `invalid_expression`: where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// `invalid_expression`: the saved segment the error is in (`null`: the expression
    /// itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<Option<String>>,
}

/// A position in a request body or an expression (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Column (characters).
    pub column: usize,
    /// Line.
    pub line: usize,
    /// An expression's byte offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

impl Error {
    /// An error with only a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            code: code.into(),
            error_id: None,
            may_still_commit: None,
            message: message.into(),
            position: None,
            segment: None,
        }
    }

    /// A bad expression: its message, position and the saved segment it is in.
    pub fn expression(e: &query::QueryError) -> Self {
        let query::QueryError {
            kind,
            span,
            position,
            segment,
        } = e;
        Error {
            position: Some(Position {
                column: position.column,
                line: position.line,
                offset: Some(span.start),
            }),
            segment: Some(segment.clone()),
            ..Error::new("invalid_expression", kind.to_string())
        }
    }
}

super::answers!(ErrorBody);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_error_has_its_position_and_segment() {
        let e = query::parse("country = ", &query::Limits::default()).unwrap_err();
        let body = ErrorBody {
            error: Error::expression(&e),
        };
        // Golden h-error.json (README: `position`: `line`, `column`, `offset`, and
        // `segment`).
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"invalid_expression","message":"expected a value (string, number, date, true or false), found end of expression","position":{"column":11,"line":1,"offset":10},"segment":null}}"#
        );
    }

    #[test]
    fn optional_members_appear_only_when_set() {
        let mut e = Error::new("timeout", "too slow");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"timeout","message":"too slow"}"#
        );
        e.may_still_commit = Some(true);
        e.error_id = Some("00ff".into());
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"timeout","error_id":"00ff","may_still_commit":true,"message":"too slow"}"#
        );
    }
}
