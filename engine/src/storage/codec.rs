//! The one place that turns engine structures into bytes: bincode 2 (serde) with a fixed
//! configuration, plus the on-disk format version.
//!
//! Every persisted value is `[tag][bincode body]`; the tag lets a later format decode old
//! values without guessing. Tag 1 bodies hold little-endian fixed-width integers, tag 2
//! bodies (written since format 3) variable-width ones; both are read. Key components are
//! big-endian (see `storage::keys`).

use crate::base::error::StorageError;
use serde::{de::DeserializeOwned, Serialize};

/// The on-disk format this build writes.
///
/// Version changes (also in `docs/format.md`):
/// - 1: first format (sled single tree, encrypted profiles, key file, index checkpoint).
/// - 2: identifier links leave sled for the index checkpoint (format 1 is migrated on
///   open).
/// - 3: values are written with tag 2 (variable-width integers: a length prefix takes one
///   byte instead of eight; a 1M-person import's sled directory is 1.0 GB instead of
///   1.8 GB). Tag 1 values stay readable, so a format-2 directory only has its version
///   raised on open.
/// - 4: audit entries, erasure intents, objections, destinations, API keys and saved
///   segments are stored records (`storage::records`: tag, layout byte, bincode body)
///   instead of JSON of API types; opening an older directory rewrites them in one atomic
///   batch with the new version (`storage::migrate`).
/// - 5: profiles, event chunks and merge-log entries are written compressed (tag 3: LZ4
///   block of a tag 2 body) before they are sealed; a 1M-person event-heavy import's
///   profiles take 318 bytes instead of 503 on average. Tag 1 and 2 values stay readable,
///   so an older directory only has its version raised on open.
/// - 6: profiles and event chunks are written packed (tag 4: LZ4 block of the packed form
///   of `storage::packed`: each record's provenance once per profile, known names as
///   one-byte codes, times as LEB128 differences, events in columns). Tag 3 values stay
///   readable, so an older directory only has its version raised on open.
/// - 7: a record that only adds events to a known person writes its event chunk and not
///   its profile; a live slot (tag `0x03`) says up to which sequence the chunks are
///   counted in it, and reading it counts the rest (`Store::slot`). Opening an older
///   directory records the next sequence as `fold_floor` (its live slots count every
///   chunk below it). An older build cannot read such chunks right, so it must refuse.
/// - 8: `U` keys name the profiles that may have chunks their slot does not count; a
///   reader looks for such chunks only for them. Opening a format-7 directory (written
///   by builds that had no `U` keys) finds those profiles once and stores the set.
/// - 9: the chunks of events-only records go to the event journal (`J` blocks, one
///   batch's chunks in a few values, and `K` sets; `storage::journal`) instead of an `E`
///   key each. An older build would not see them, so it must refuse; opening a format-8
///   directory only raises its version.
pub const FORMAT_VERSION: u32 = 9;
/// The oldest on-disk format this build can open.
pub const OLDEST_SUPPORTED_FORMAT: u32 = 1;

/// Tag byte in front of every encoded value (the value-level format version): fixed-width
/// integers (formats 1 and 2).
const VALUE_TAG_V1: u8 = 1;
/// Value tag of variable-width integers (written since format 3).
const VALUE_TAG_V2: u8 = 2;
/// Value tag of an LZ4-compressed tag 2 body (the sealed values of format 5): the body's
/// length (u32 LE), then the LZ4 block.
const VALUE_TAG_LZ4: u8 = 3;
/// Value tag of a packed value (format 6): like tag 3, an LZ4 block of a tag 2 body, but
/// the body is the value's packed form ([`Packable`]).
const VALUE_TAG_PACKED: u8 = 4;
/// The largest body a compressed value may claim (a sealed value is authenticated before
/// it is decoded, so this guards against a bug, not an attacker).
const MAX_DECOMPRESSED: usize = 64 << 20;

/// Bodies of tag 1 values and of the index checkpoint.
fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// Bodies of tag 2 values.
fn varint_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
}

/// [`varint_config`] for reading a value: bincode allocates a byte string's claimed length
/// before reading it, so a damaged length must hit this limit (an error) instead of an
/// allocation that aborts the process.
fn varint_read_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_DECOMPRESSED>()
}

/// [`config`] for reading a value (see [`varint_read_config`]).
fn fixed_read_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_DECOMPRESSED>()
}

/// Encodes `value` with the value tag in front.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends `value`, encoded with the value tag in front, to `out`.
pub(crate) fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    out.push(VALUE_TAG_V2);
    bincode::serde::encode_into_std_write(value, out, varint_config())
        .expect("encoding into a Vec cannot fail");
}

/// A value with a packed stored form (`storage::packed`), written with tag 4.
pub(crate) trait Packable: Sized + DeserializeOwned {
    /// The packed form, borrowing from the value.
    type Packed<'a>: Serialize
    where
        Self: 'a;
    /// The packed form as read back.
    type Unpacked: DeserializeOwned;
    /// The packed form of `self`.
    fn pack(&self) -> Self::Packed<'_>;
    /// The value of a packed form; an error says what in it does not fit.
    fn unpack(packed: Self::Unpacked) -> Result<Self, String>;
}

/// Appends `value` to `out` as a compressed value (tag 3): for the merge-log entries sealed
/// per profile, which compress by about a third.
pub(crate) fn encode_compressed_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    compress_into(VALUE_TAG_LZ4, value, out);
}

/// Appends `value` to `out` packed and compressed (tag 4): for profiles and event chunks.
pub(crate) fn encode_packed_into<T: Packable>(value: &T, out: &mut Vec<u8>) {
    compress_into(VALUE_TAG_PACKED, &value.pack(), out);
}

/// Appends `tag`, the body's length (u32 LE) and the LZ4 block of `value`'s tag 2 body.
fn compress_into<T: Serialize>(tag: u8, value: &T, out: &mut Vec<u8>) {
    thread_local! {
        static PLAIN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    PLAIN.with_borrow_mut(|plain| {
        plain.clear();
        bincode::serde::encode_into_std_write(value, plain, varint_config())
            .expect("encoding into a Vec cannot fail");
        out.push(tag);
        out.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        let start = out.len();
        out.resize(
            start + lz4_flex::block::get_maximum_output_size(plain.len()),
            0,
        );
        let written = lz4_flex::block::compress_into(plain, &mut out[start..])
            .expect("the output holds the maximum compressed size");
        out.truncate(start + written);
    });
}

/// Encodes `value` as formats 1 and 2 did (tag 1, fixed-width integers), for tests that
/// build an older data directory.
#[cfg(test)]
pub(crate) fn encode_fixed_width(value: &impl Serialize, out: &mut Vec<u8>) {
    out.push(VALUE_TAG_V1);
    bincode::serde::encode_into_std_write(value, out, config())
        .expect("encoding into a Vec cannot fail");
}

/// Decodes a value written by [`encode`], naming `what` in the error.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    let corrupted = |detail: String| corrupted(what, detail);
    let decoded = match bytes.first() {
        Some(&VALUE_TAG_LZ4) => {
            let plain = decompress(&bytes[1..]).map_err(corrupted)?;
            return decode_exact(what, &plain, varint_read_config());
        }
        Some(&VALUE_TAG_V2) => bincode::serde::decode_from_slice(&bytes[1..], varint_read_config()),
        Some(&VALUE_TAG_V1) => bincode::serde::decode_from_slice(&bytes[1..], fixed_read_config()),
        Some(tag) => return Err(corrupted(format!("unknown value tag {tag}"))),
        None => return Err(corrupted("empty value".into())),
    };
    let (value, used) = decoded.map_err(|e| corrupted(e.to_string()))?;
    if used + 1 != bytes.len() {
        return Err(corrupted(format!(
            "{} trailing bytes",
            bytes.len() - used - 1
        )));
    }
    Ok(value)
}

/// Whether `bytes` (a value, after unsealing) is in the packed form of format 6.
pub(crate) fn is_packed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&VALUE_TAG_PACKED)
}

/// Decodes a value written by [`encode_packed_into`], or by an older format in its serde
/// form (tags 1-3), naming `what` in the error.
pub(crate) fn decode_packed<T: Packable>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    if bytes.first() != Some(&VALUE_TAG_PACKED) {
        return decode(what, bytes);
    }
    let corrupted = |detail: String| corrupted(what, detail);
    let plain = decompress(&bytes[1..]).map_err(corrupted)?;
    let packed = decode_exact(what, &plain, varint_read_config())?;
    T::unpack(packed).map_err(corrupted)
}

/// Decodes a packed value borrowing its strings: the body is decompressed into `body`
/// (replacing what it held), which the result borrows from. `Ok(None)` when `bytes` is
/// not packed (an older format's value, for [`decode_packed`]).
#[cfg(test)]
pub(crate) fn decode_packed_borrowed<'b, T: serde::Deserialize<'b>>(
    what: &'static str,
    bytes: &[u8],
    body: &'b mut Vec<u8>,
) -> Result<Option<T>, StorageError> {
    if !unpack_body_into(what, bytes, body)? {
        return Ok(None);
    }
    decode_packed_body(what, body).map(Some)
}

/// Decompresses a packed value's body into `body` (replacing what it held) for
/// [`decode_packed_body`] and [`decode_packed_body_prefix`]. `Ok(false)` when `bytes` is not packed.
pub(crate) fn unpack_body_into(
    what: &'static str,
    bytes: &[u8],
    body: &mut Vec<u8>,
) -> Result<bool, StorageError> {
    if bytes.first() != Some(&VALUE_TAG_PACKED) {
        return Ok(false);
    }
    decompress_into(&bytes[1..], body).map_err(|detail| corrupted(what, detail))?;
    Ok(true)
}

/// Decodes a whole packed body (see [`unpack_body_into`]), borrowing its strings.
pub(crate) fn decode_packed_body<'b, T: serde::Deserialize<'b>>(
    what: &'static str,
    body: &'b [u8],
) -> Result<T, StorageError> {
    decode_exact(what, body, varint_read_config())
}

/// Decodes a packed body's leading fields only: `T` is a prefix of the packed form (its
/// first fields, in order), and the bytes after them are not read.
pub(crate) fn decode_packed_body_prefix<'b, T: serde::Deserialize<'b>>(
    what: &'static str,
    body: &'b [u8],
) -> Result<T, StorageError> {
    decode_leading(what, body, varint_read_config()).map(|(value, _)| value)
}

/// The body of a compressed value (after its tag).
fn decompress(compressed: &[u8]) -> Result<Vec<u8>, String> {
    let mut plain = Vec::new();
    decompress_into(compressed, &mut plain)?;
    Ok(plain)
}

/// [`decompress`] into `plain`, replacing what it held.
fn decompress_into(compressed: &[u8], plain: &mut Vec<u8>) -> Result<(), String> {
    let (len, block) = compressed
        .split_first_chunk::<4>()
        .ok_or("short compressed value")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_DECOMPRESSED {
        return Err(format!("compressed value claims {len} bytes"));
    }
    plain.clear();
    plain.resize(len, 0);
    let got = lz4_flex::block::decompress_into(block, plain).map_err(|e| e.to_string())?;
    if got != len {
        return Err(format!("compressed value holds {got} of {len} bytes"));
    }
    Ok(())
}

/// Decodes a whole body (no tag) with `config`; a type with borrowed strings borrows
/// them from `body`.
fn decode_exact<'b, T: serde::Deserialize<'b>>(
    what: &'static str,
    body: &'b [u8],
    config: impl bincode::config::Config,
) -> Result<T, StorageError> {
    let (value, used) = decode_leading(what, body, config)?;
    if used != body.len() {
        return Err(corrupted(
            what,
            format!("{} trailing bytes", body.len() - used),
        ));
    }
    Ok(value)
}

/// Decodes a `T` from the start of `body` with `config`: the value and the bytes it took.
fn decode_leading<'b, T: serde::Deserialize<'b>>(
    what: &'static str,
    body: &'b [u8],
    config: impl bincode::config::Config,
) -> Result<(T, usize), StorageError> {
    bincode::serde::borrow_decode_from_slice(body, config)
        .map_err(|e| corrupted(what, e.to_string()))
}

/// A value of kind `what` that does not decode.
fn corrupted(what: &'static str, detail: String) -> StorageError {
    StorageError::Corrupted {
        what,
        key: Vec::new(),
        detail,
    }
}

/// Encodes a stored record: the value tag, then `layout` (which stored form of the record
/// kind this is), then the body (`storage::records`).
pub(crate) fn encode_record<T: Serialize>(layout: u8, value: &T) -> Vec<u8> {
    let mut out = vec![VALUE_TAG_V2, layout];
    bincode::serde::encode_into_std_write(value, &mut out, varint_config())
        .expect("encoding into a Vec cannot fail");
    out
}

/// The layout byte of a stored record, if `bytes` is one.
pub(crate) fn record_layout(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [VALUE_TAG_V2, layout, ..] => Some(*layout),
        _ => None,
    }
}

/// Decodes a record written by [`encode_record`] with layout `layout`.
pub(crate) fn decode_record<T: DeserializeOwned>(
    what: &'static str,
    layout: u8,
    bytes: &[u8],
) -> Result<T, StorageError> {
    let corrupted = |detail: String| corrupted(what, detail);
    match record_layout(bytes) {
        Some(found) if found == layout => {}
        Some(found) => return Err(corrupted(format!("unknown layout {found}"))),
        None => return Err(corrupted("not a stored record (older format?)".into())),
    }
    let (value, used) = bincode::serde::decode_from_slice(&bytes[2..], varint_read_config())
        .map_err(|e| corrupted(e.to_string()))?;
    if used + 2 != bytes.len() {
        return Err(corrupted(format!(
            "{} trailing bytes",
            bytes.len() - used - 2
        )));
    }
    Ok(value)
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

    #[test]
    fn compressed_values_round_trip_and_are_smaller() {
        let value: Vec<(String, i64)> = (0..40)
            .map(|i| (format!("source-{}", i % 3), 1_700_000_000_000 + i))
            .collect();
        let mut compressed = Vec::new();
        encode_compressed_into(&value, &mut compressed);
        assert_eq!(compressed[0], VALUE_TAG_LZ4);
        assert!(compressed.len() < encode(&value).len() / 2);
        assert_eq!(
            decode::<Vec<(String, i64)>>("test", &compressed).unwrap(),
            value
        );
        // A damaged block or length is an error that names the value, never a panic.
        for cut in [1, 3, 5, compressed.len() - 1] {
            let err = decode::<Vec<(String, i64)>>("test", &compressed[..cut]).unwrap_err();
            assert!(err.to_string().starts_with("corrupted test"), "{err}");
        }
        let mut huge = compressed.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode::<Vec<(String, i64)>>("test", &huge).unwrap_err();
        assert!(err.to_string().contains("claims"), "{err}");
    }

    #[test]
    fn fixed_width_values_of_older_formats_still_decode() {
        let value = (7u32, "x".to_string(), vec![1_700_000_000_000i64, -3]);
        let mut old = Vec::new();
        encode_fixed_width(&value, &mut old);
        let new = encode(&value);
        assert_eq!(new[0], VALUE_TAG_V2);
        assert!(new.len() < old.len(), "{} vs {}", new.len(), old.len());
        assert_eq!(
            decode::<(u32, String, Vec<i64>)>("test", &old).unwrap(),
            value
        );
        assert_eq!(
            decode::<(u32, String, Vec<i64>)>("test", &new).unwrap(),
            value
        );
    }
}
