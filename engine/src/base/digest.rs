//! SHA-256 digests and their lower-case hex form (the form both platforms take), and the
//! link key type: the base every layer hashes with.

use sha2::{Digest, Sha256};

/// A link key: the first 16 bytes of an identifier form's keyed hash (see
/// `identity::links`).
pub(crate) type LinkKey = [u8; 16];

/// The SHA-256 digest of `s` (UTF-8) as 64 lower-case hex characters.
pub fn sha256_hex(s: &str) -> String {
    to_hex(&sha256(s))
}

/// The raw digest.
pub fn sha256(s: &str) -> [u8; 32] {
    sha256_bytes(s.as_bytes())
}

/// The raw digest of bytes.
pub(crate) fn sha256_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// 64 hex characters → digest bytes.
pub fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Digest bytes → 64 lower-case hex characters.
pub fn to_hex(digest: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
}

const HEX: &[u8; 16] = b"0123456789abcdef";
