//! The identity graph's lookup table: keyed identifier hash → the live profile holding that
//! identifier.
//!
//! Links are derived data, a pure function of the live profiles (each attached identifier
//! of each live profile links to it, and nothing else links), so they live in memory next
//! to the indexes, are saved in the index checkpoint and are recovered like the indexes:
//! the entries of profiles changed since the checkpoint are dropped and re-read from the
//! stored profiles. Keeping them out of sled saves a sled write per identifier on ingest
//! and a sled read per identifier on resolution, and keeps even keyed hashes of erased
//! identifiers out of sled's log.

use crate::storage::profile::ProfileId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A link key (defined with the digests, so records can carry them): the first 16 bytes
/// of the identifier's keyed hash (HMAC-SHA-256 with the database secret). 128 bits make
/// an accidental collision negligible (≈ 2⁻⁶⁴ at 2³² identifiers).
pub(crate) use crate::base::digest::LinkKey;

/// Bytes of one serialized link: key, then pid (u32 LE).
const ENTRY_LEN: usize = 20;

/// Identifier links of the live profiles.
///
/// A canonical identifier (the stored value) is held by one live profile at most, so
/// its key has one holder. An alias form (a phone's digits, Google's Gmail form) is not
/// an identity: `a.b@gmail.com` and `ab@gmail.com` are two people's emails yet one
/// mailbox to Google, and one person may hold both. So an alias key may have several
/// holders: the first is in `map`, the others in `shared` (rare, so the common case
/// stays one compact entry).
#[derive(Debug, Clone, Default)]
pub(crate) struct Links {
    map: HashMap<LinkKey, ProfileId, BuildHasherDefault<KeyHasher>>,
    /// Further holders of keys held by more than one profile (alias forms only).
    shared: HashMap<LinkKey, Vec<ProfileId>, BuildHasherDefault<KeyHasher>>,
}

impl PartialEq for Links {
    fn eq(&self, other: &Links) -> bool {
        self.len() == other.len() && self.pairs().all(|(k, p)| other.holds(&k, p))
    }
}

impl Links {
    /// The profile an identifier links to (for a canonical key, its only holder; for an
    /// alias key, one of them: use [`Links::holders`]).
    pub(crate) fn get(&self, key: &LinkKey) -> Option<ProfileId> {
        self.map.get(key).copied()
    }

    /// Every profile linked by `key`.
    pub(crate) fn holders(&self, key: &LinkKey) -> impl Iterator<Item = ProfileId> + '_ {
        self.map
            .get(key)
            .copied()
            .into_iter()
            .chain(self.shared.get(key).into_iter().flatten().copied())
    }

    fn holds(&self, key: &LinkKey, pid: ProfileId) -> bool {
        self.holders(key).any(|p| p == pid)
    }

    /// Adds `pid` as a holder of `key` (idempotent).
    pub(crate) fn insert(&mut self, key: LinkKey, pid: ProfileId) {
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(pid);
            }
            std::collections::hash_map::Entry::Occupied(o) if *o.get() == pid => {}
            std::collections::hash_map::Entry::Occupied(_) => {
                let more = self.shared.entry(key).or_default();
                if !more.contains(&pid) {
                    more.push(pid);
                }
            }
        }
    }

    /// Removes `pid` as a holder of `key`.
    pub(crate) fn remove(&mut self, key: &LinkKey, pid: ProfileId) {
        if self.map.get(key) == Some(&pid) {
            match self.shared.get_mut(key) {
                Some(more) => {
                    let next = more.remove(0);
                    if more.is_empty() {
                        self.shared.remove(key);
                    }
                    self.map.insert(*key, next);
                }
                None => {
                    self.map.remove(key);
                }
            }
        } else if let Some(more) = self.shared.get_mut(key) {
            more.retain(|p| *p != pid);
            if more.is_empty() {
                self.shared.remove(key);
            }
        }
    }

    /// Number of links (key, profile pairs).
    pub(crate) fn len(&self) -> usize {
        self.map.len() + self.shared.values().map(Vec::len).sum::<usize>()
    }

    /// Every (key, profile) pair.
    fn pairs(&self) -> impl Iterator<Item = (LinkKey, ProfileId)> + '_ {
        self.map.iter().map(|(k, p)| (*k, *p)).chain(
            self.shared
                .iter()
                .flat_map(|(k, more)| more.iter().map(move |p| (*k, *p))),
        )
    }

    /// Drops every link to a profile in `pids` (recovery, before re-reading them).
    pub(crate) fn remove_profiles(&mut self, pids: &roaring::RoaringBitmap) {
        for more in self.shared.values_mut() {
            more.retain(|pid| !pids.contains(*pid));
        }
        self.shared.retain(|_, more| !more.is_empty());
        let shared = &mut self.shared;
        self.map.retain(|key, pid| {
            if !pids.contains(*pid) {
                return true;
            }
            // Promote a remaining holder of a shared key.
            match shared.get_mut(key) {
                Some(more) => {
                    *pid = more.remove(0);
                    if more.is_empty() {
                        shared.remove(key);
                    }
                    true
                }
                None => false,
            }
        });
    }

    /// Links present in one table and absent or different in the other, described
    /// without the keys (they are derived from personal data).
    pub(crate) fn differences(&self, rebuilt: &Links) -> Vec<String> {
        let mut out = Vec::new();
        let (mut missing, mut wrong, mut extra) = (0u64, 0u64, 0u64);
        for (key, pid) in rebuilt.pairs() {
            if self.holds(&key, pid) {
                continue;
            }
            if self.map.contains_key(&key) {
                wrong += 1;
            } else {
                missing += 1;
            }
        }
        for (key, pid) in self.pairs() {
            if rebuilt.holds(&key, pid) {
                continue;
            }
            if rebuilt.map.contains_key(&key) {
                // A stale holder beside the right ones.
                wrong += 1;
            } else {
                extra += 1;
            }
        }
        if missing > 0 {
            out.push(format!(
                "identifier links: {missing} identifier(s) of live profiles are not linked"
            ));
        }
        if wrong > 0 {
            out.push(format!(
                "identifier links: {wrong} identifier(s) link to the wrong profile"
            ));
        }
        if extra > 0 {
            out.push(format!(
                "identifier links: {extra} link(s) belong to no live profile's identifier"
            ));
        }
        out
    }

    /// Writes the links to `out`: count (u64 LE), then the entries in table order (the
    /// reader builds a hash table, so order carries nothing; sorting millions of entries
    /// cost a third of a second per checkpoint, on the committer's critical path).
    pub(crate) fn write_to<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<()> {
        out.write_all(&(self.len() as u64).to_le_bytes())?;
        for (key, pid) in self.pairs() {
            out.write_all(&key)?;
            out.write_all(&pid.to_le_bytes())?;
        }
        Ok(())
    }

    /// The length of the table that [`Links::write_to`] wrote at the start of `bytes`.
    pub(crate) fn encoded_len(bytes: &[u8]) -> Result<usize, String> {
        let (count, _) = bytes
            .split_first_chunk::<8>()
            .ok_or("identifier links: missing count")?;
        u64::from_le_bytes(*count)
            .checked_mul(ENTRY_LEN as u64)
            .and_then(|n| n.checked_add(8))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "identifier links: the count does not fit {} bytes",
                    bytes.len()
                )
            })
    }

    /// Reads links written by [`Links::write_to`]; the bytes must be exactly one table.
    pub(crate) fn read_from(bytes: &[u8]) -> Result<Links, String> {
        let (count, body) = bytes
            .split_first_chunk::<8>()
            .ok_or("identifier links: missing count")?;
        let count = u64::from_le_bytes(*count);
        if Some(body.len() as u64) != count.checked_mul(ENTRY_LEN as u64) {
            return Err(format!(
                "identifier links: {count} entries do not fit {} bytes",
                body.len()
            ));
        }
        let mut links = Links {
            map: HashMap::with_capacity_and_hasher(count as usize, Default::default()),
            shared: HashMap::default(),
        };
        for entry in body.chunks_exact(ENTRY_LEN) {
            let (key, pid) = entry.split_at(16);
            links.insert(
                key.try_into().expect("16 bytes"),
                u32::from_le_bytes(pid.try_into().expect("4 bytes")),
            );
        }
        Ok(links)
    }
}

/// Hasher for link keys: they are already uniformly random (keyed hash output), so a
/// multiply-fold of their first 8 bytes spreads them as well as SipHash, much faster.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            // One word of a random key is enough; stop after the first full one.
            if chunk.len() == 8 {
                break;
            }
        }
    }

    fn write_usize(&mut self, _len: usize) {
        // The length prefix of a fixed-size key carries no information.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> LinkKey {
        let mut k = [0u8; 16];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k[12..].copy_from_slice(&(i ^ 0xdead_beef).to_le_bytes());
        k
    }

    #[test]
    fn round_trips_and_rejects_truncation() {
        let mut links = Links::default();
        for i in 0..1000 {
            links.insert(key(i), i / 3);
        }
        let mut bytes = Vec::new();
        links.write_to(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 8 + 1000 * ENTRY_LEN);
        assert_eq!(Links::read_from(&bytes).unwrap(), links);
        assert!(Links::read_from(&bytes[..bytes.len() - 1]).is_err());
        assert!(Links::read_from(&bytes[..4]).is_err());
    }

    #[test]
    fn shared_keys_keep_every_holder() {
        let mut a = Links::default();
        a.insert(key(1), 10);
        a.insert(key(1), 11);
        a.insert(key(1), 11);
        a.insert(key(1), 12);
        assert_eq!(a.len(), 3);
        let mut held: Vec<_> = a.holders(&key(1)).collect();
        held.sort_unstable();
        assert_eq!(held, [10, 11, 12]);
        let mut bytes = Vec::new();
        a.write_to(&mut bytes).unwrap();
        let back = Links::read_from(&bytes).unwrap();
        assert_eq!(back, a);
        assert!(back.differences(&a).is_empty());
        a.remove(&key(1), 10);
        assert_eq!(a.get(&key(1)), Some(11));
        assert_ne!(back, a);
        assert_eq!(back.differences(&a).len(), 1, "a stale holder is reported");
        a.remove_profiles(&[11u32].into_iter().collect());
        assert_eq!(a.holders(&key(1)).collect::<Vec<_>>(), [12]);
        a.remove(&key(1), 12);
        assert_eq!(a.len(), 0);
        assert_eq!(a.get(&key(1)), None);
    }

    #[test]
    fn remove_profiles_and_differences() {
        let mut a = Links::default();
        for i in 0..10 {
            a.insert(key(i), i);
        }
        let mut b = a.clone();
        assert!(a.differences(&b).is_empty());
        b.remove_profiles(&[2u32, 3].into_iter().collect());
        assert_eq!(b.len(), 8);
        assert_eq!(b.get(&key(2)), None);
        assert_eq!(b.get(&key(4)), Some(4));
        b.insert(key(5), 9);
        b.insert(key(77), 1);
        let diff = a.differences(&b);
        assert_eq!(diff.len(), 3, "{diff:?}");
    }
}
