//! Sealing values with a profile key (XChaCha20-Poly1305, random 192-bit nonce; the sled
//! key is the associated data, so a ciphertext cannot be moved to another slot), and the
//! keyed hash of identifiers.

use super::keyfile::Key;
use crate::base::error::StorageError;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag after the ciphertext.
const TAG_LEN: usize = 16;

/// Appends `plain` encrypted for the sled key `aad`: `nonce || ciphertext`.
pub(crate) fn seal(key: &Key, aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
    out.reserve(NONCE_LEN + plain.len() + TAG_LEN);
    seal_with(key, aad, out, |buf| buf.extend_from_slice(plain));
}

/// Appends `nonce || ciphertext` of the plaintext that `write` appends to `out`,
/// encrypting it where it was written (the same bytes as [`seal`], without a copy of the
/// plaintext).
pub(crate) fn seal_with(
    key: &Key,
    aad: &[u8],
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>),
) {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    out.extend_from_slice(&nonce);
    let body = out.len();
    write(out);
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[body..])
        .expect("encryption of an in-memory buffer cannot fail");
    out.extend_from_slice(&tag);
}

/// Decrypts a value written by [`seal`].
pub(crate) fn open(
    what: &'static str,
    key: &Key,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, StorageError> {
    let corrupted = |detail: &str| StorageError::Corrupted {
        what,
        key: aad.to_vec(),
        detail: detail.to_string(),
    };
    if sealed.len() < NONCE_LEN {
        return Err(corrupted("too short"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| corrupted("authentication failed (wrong key or damaged bytes)"))
}

/// [`open`] into `plain` (replacing what it held), for scans that reuse one buffer.
pub(crate) fn open_into(
    what: &'static str,
    key: &Key,
    aad: &[u8],
    sealed: &[u8],
    plain: &mut Vec<u8>,
) -> Result<(), StorageError> {
    let corrupted = |detail: &str| StorageError::Corrupted {
        what,
        key: aad.to_vec(),
        detail: detail.to_string(),
    };
    plain.clear();
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(corrupted("too short"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let (cipher, tag) = body.split_at(body.len() - TAG_LEN);
    plain.extend_from_slice(cipher);
    XChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(XNonce::from_slice(nonce), aad, plain, tag.into())
        .map_err(|_| {
            plain.clear();
            corrupted("authentication failed (wrong key or damaged bytes)")
        })
}

/// Keyed hash of identifier forms: HMAC-SHA-256(secret, `tag 0x00 sha256(value)`). Keyed
/// over the plain SHA-256 digest so that a suppression list of digests can be matched to
/// profiles without the values.
///
/// Holds the HMAC state with the secret already absorbed, so each hash costs only its own
/// message (the key schedule is two of a short message's five SHA-256 blocks).
#[derive(Clone)]
pub(crate) struct IdentifierHasher {
    keyed: Hmac<Sha256>,
}

impl IdentifierHasher {
    /// A hasher keyed with the database secret.
    pub(crate) fn new(secret: &Key) -> Self {
        IdentifierHasher {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(secret)
                .expect("HMAC takes any key length"),
        }
    }

    /// The keyed hash of `tag` and a value's SHA-256 digest.
    pub(crate) fn hash(&self, tag: &str, digest: &[u8; 32]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(tag.as_bytes());
        mac.update(&[0]);
        mac.update(digest);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_binds_key_and_slot() {
        let key = [7u8; 32];
        let mut sealed = Vec::new();
        seal(&key, b"P1", b"jane", &mut sealed);
        assert_eq!(open("t", &key, b"P1", &sealed).unwrap(), b"jane");
        assert!(open("t", &key, b"P2", &sealed).is_err());
        assert!(open("t", &[8u8; 32], b"P1", &sealed).is_err());
        assert!(!sealed.windows(4).any(|w| w == b"jane"));
    }

    /// `open_into` gives what `open` gives, for sound, damaged, truncated and misplaced
    /// values alike, whatever the buffer held before.
    #[test]
    fn open_into_agrees_with_open() {
        let key = [7u8; 32];
        let mut sealed = Vec::new();
        seal(&key, b"P1", b"a value of some length", &mut sealed);
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        let cases: Vec<(&[u8], &[u8])> = vec![
            (&sealed, b"P1"),
            (&sealed, b"P2"),
            (&flipped, b"P1"),
            (&sealed[..39], b"P1"),
            (&sealed[..10], b"P1"),
            (&[], b"P1"),
        ];
        let mut plain = b"left over".to_vec();
        for (value, aad) in cases {
            let expected = open("t", &key, aad, value);
            let got = open_into("t", &key, aad, value, &mut plain);
            match expected {
                Ok(expected) => {
                    got.unwrap();
                    assert_eq!(plain, expected);
                }
                Err(_) => {
                    assert!(got.is_err(), "{} bytes for {aad:?}", value.len());
                    assert!(plain.is_empty());
                }
            }
        }
    }

    #[test]
    fn identifier_hash_is_the_hmac_of_tag_and_digest() {
        let secret = [3u8; 32];
        let digest = [5u8; 32];
        let mut message = b"email\0".to_vec();
        message.extend_from_slice(&digest);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).unwrap();
        mac.update(&message);
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        let hasher = IdentifierHasher::new(&secret);
        assert_eq!(hasher.hash("email", &digest), expected);
        assert_eq!(
            hasher.hash("email", &digest),
            expected,
            "the keyed state is reused"
        );
        assert_ne!(hasher.hash("phone", &digest), expected);
    }

    #[test]
    fn sealing_in_place_opens_like_a_copy() {
        let key = [9u8; 32];
        let mut sealed = b"prefix".to_vec();
        seal_with(&key, b"P7", &mut sealed, |buf| {
            buf.extend_from_slice(b"jane doe")
        });
        assert_eq!(&sealed[..6], b"prefix");
        assert_eq!(sealed.len(), 6 + NONCE_LEN + 8 + TAG_LEN);
        assert_eq!(open("t", &key, b"P7", &sealed[6..]).unwrap(), b"jane doe");
        assert!(!sealed.windows(4).any(|w| w == b"jane"));
    }
}
