//! The one place that turns engine structures into bytes: bincode 2 (serde) with a fixed
//! configuration, plus the on-disk format version.
//!
//! Every persisted value is `[FORMAT_TAG][bincode body]`; the tag lets a later format
//! decode old values without guessing. Integers inside bodies are little-endian
//! fixed-width; key components are big-endian (see `store::keys`).

use crate::error::StorageError;
use serde::{de::DeserializeOwned, Serialize};

/// The on-disk format this build writes.
///
/// Version changes (also in `docs/format.md`):
/// - 1: first format (sled single tree, encrypted profiles, key file, index checkpoint).
/// - 2: identifier links leave sled for the index checkpoint (format 1 is migrated on
///   open).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest on-disk format this build can open.
pub const OLDEST_SUPPORTED_FORMAT: u32 = 1;

/// Tag byte in front of every encoded value (the value-level format version).
const VALUE_TAG_V1: u8 = 1;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// Encodes `value` with the value tag in front.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends `value`, encoded with the value tag in front, to `out`.
pub(crate) fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    out.push(VALUE_TAG_V1);
    bincode::serde::encode_into_std_write(value, out, config())
        .expect("encoding into a Vec cannot fail");
}

/// Decodes a value written by [`encode`], naming `what` in the error.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    let corrupted = |detail: String| StorageError::Corrupted {
        what,
        key: Vec::new(),
        detail,
    };
    match bytes.first() {
        Some(&VALUE_TAG_V1) => {
            let (value, used) = bincode::serde::decode_from_slice(&bytes[1..], config())
                .map_err(|e| corrupted(e.to_string()))?;
            if used + 1 != bytes.len() {
                return Err(corrupted(format!(
                    "{} trailing bytes",
                    bytes.len() - used - 1
                )));
            }
            Ok(value)
        }
        Some(tag) => Err(corrupted(format!("unknown value tag {tag}"))),
        None => Err(corrupted("empty value".into())),
    }
}

/// Encodes without the tag, for bodies inside an already-tagged container.
pub(crate) fn encode_body<T: Serialize, W: std::io::Write>(
    value: &T,
    w: &mut W,
) -> std::io::Result<()> {
    bincode::serde::encode_into_std_write(value, w, config())
        .map(|_| ())
        .map_err(std::io::Error::other)
}

/// Decodes a body written by [`encode_body`].
pub(crate) fn decode_body<T: DeserializeOwned, R: std::io::Read>(r: &mut R) -> Result<T, String> {
    bincode::serde::decode_from_std_read(r, config()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_unknown_tag() {
        let bytes = encode(&(7u32, "x".to_string()));
        let back: (u32, String) = decode("test", &bytes).unwrap();
        assert_eq!(back, (7, "x".to_string()));
        let mut bad = bytes.clone();
        bad[0] = 9;
        let err = decode::<(u32, String)>("test", &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupted test (key []): unknown value tag 9"
        );
        let mut long = bytes;
        long.push(0);
        assert!(decode::<(u32, String)>("test", &long).is_err());
    }
}
