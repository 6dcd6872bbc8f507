//! How large an expression may be: the parser's [`Limits`] and their defaults, and the
//! longest duration the lexer accepts.

/// Size limits on expressions (enforced by [`parse`](crate::parse); documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest expression, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of parentheses and `NOT`.
    pub max_depth: usize,
    /// Deepest chain of saved segments referring to saved segments.
    pub max_segment_nesting: usize,
}

/// Default [`Limits::max_bytes`]: 64 KiB.
pub const MAX_EXPR_BYTES: usize = 64 * 1024;
/// Default [`Limits::max_depth`].
pub const MAX_EXPR_DEPTH: usize = 64;
/// Default [`Limits::max_segment_nesting`].
pub const MAX_SEGMENT_NESTING: usize = 16;
/// Longest duration (`within 200y`, `within 73000d`): 200 years of 365 days. Longer ones
/// are refused where they are written; far past every event anyway, and the bound keeps
/// `now - duration` far from overflowing.
pub(crate) const MAX_DURATION_DAYS: u32 = 200 * 365;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_EXPR_BYTES,
            max_depth: MAX_EXPR_DEPTH,
            max_segment_nesting: MAX_SEGMENT_NESTING,
        }
    }
}

impl Limits {
    /// Limits with another byte and depth bound.
    pub fn new(max_bytes: usize, max_depth: usize) -> Limits {
        Limits {
            max_bytes,
            max_depth,
            ..Limits::default()
        }
    }
}
