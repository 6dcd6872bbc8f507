//! The rule for names users give to lists and destinations (they become sled keys and
//! file names): 1-64 of `a-z`, `0-9`, `_` and `-`.

use crate::base::limits::MAX_NAME;

/// Whether `name` is 1-64 of `a-z`, `0-9`, `_` and `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
