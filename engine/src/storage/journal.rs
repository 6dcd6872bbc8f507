//! The event journal: where a batch stores the event chunks of records that only added
//! events to a profile whose slot it does not rewrite (the events-only records of a live
//! stream, see `write::plan`).
//!
//! sled 0.34 spends about 15 µs on each inserted key (it walks the tree, copies the leaf,
//! logs the change and splits leaves of more than 16 entries), so a stream that stored
//! each chunk under its own `E` key spent most of its time in sled. The journal stores a
//! batch's chunks in a few large values instead: `J` batch first-pid keys, each a block of
//! entries sorted by (profile, sequence), cut at about [`BLOCK_BYTES`] and never between
//! two chunks of one profile. Each chunk is sealed exactly as under its `E` key (the
//! profile's key, the `E` key as associated data), so erasure and merges work the same:
//! a destroyed key makes the chunk unreadable wherever it is.
//!
//! `K` batch holds the set of profiles with chunks in that batch's blocks. A merge or an
//! erasure that takes a profile's chunks away removes it from every set (and drops a
//! batch whose set becomes empty, blocks included); what remains in a block for a
//! profile outside its batch's set is garbage that no read returns. The sets are read
//! once at open and kept in memory ([`JournalSets`]). A compaction writes every live entry
//! under its own `E` key (in key order, so cheaply) and leaves the journal empty
//! ([`as_event_keys`]).

use super::keys;
use crate::base::error::StorageError;
use crate::storage::profile::ProfileId;
use roaring::RoaringBitmap;
use std::collections::BTreeMap;

/// A block is cut once it holds at least this many bytes (sled keeps values up to a
/// segment's fraction inline; larger ones go to separate blob files).
pub(crate) const BLOCK_BYTES: usize = 16 * 1024;

/// The first byte of a block: its layout.
const BLOCK_LAYOUT: u8 = 1;

/// Bytes of an entry's header: pid u32, seq u64, length u32 (all little-endian).
const ENTRY_HEADER: usize = 16;

/// A block as written: its sled key and value.
pub(crate) type Block = (Vec<u8>, Vec<u8>);

/// The journal entries one batch writes.
#[derive(Default)]
pub(crate) struct JournalEntries {
    entries: Vec<(ProfileId, u64, Vec<u8>)>,
}

impl JournalEntries {
    /// Adds a chunk sealed with [`super::Store::sealed_events`].
    pub(crate) fn push(&mut self, pid: ProfileId, seq: u64, sealed: Vec<u8>) {
        self.entries.push((pid, seq, sealed));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The blocks of batch `batch` and the set of profiles they hold.
    pub(crate) fn into_blocks(mut self, batch: u64) -> (Vec<Block>, RoaringBitmap) {
        self.entries
            .sort_unstable_by_key(|(pid, seq, _)| (*pid, *seq));
        let pids: RoaringBitmap = self.entries.iter().map(|(pid, _, _)| *pid).collect();
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < self.entries.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < self.entries.len() {
                let pid = self.entries[end].0;
                // One profile's entries stay together: a read looks in one block.
                while end < self.entries.len() && self.entries[end].0 == pid {
                    bytes += ENTRY_HEADER + self.entries[end].2.len();
                    end += 1;
                }
                if bytes >= BLOCK_BYTES {
                    break;
                }
            }
            let part = &self.entries[start..end];
            let entries = part.iter().map(|(pid, seq, sealed)| Entry {
                pid: *pid,
                seq: *seq,
                sealed,
            });
            blocks.push((
                block_key(batch, part[0].0).to_vec(),
                encode_block(entries, bytes),
            ));
            start = end;
        }
        (blocks, pids)
    }
}

/// The key of batch `batch`'s block whose first entry is of profile `first_pid`.
pub(crate) fn block_key(batch: u64, first_pid: ProfileId) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = keys::JOURNAL;
    k[1..9].copy_from_slice(&batch.to_be_bytes());
    k[9..].copy_from_slice(&first_pid.to_be_bytes());
    k
}

/// The key of batch `batch`'s set of profiles.
pub(crate) fn set_key(batch: u64) -> [u8; 9] {
    let mut k = [keys::JOURNAL_SET, 0, 0, 0, 0, 0, 0, 0, 0];
    k[1..].copy_from_slice(&batch.to_be_bytes());
    k
}

/// The batch named by a `J` or `K` key.
pub(crate) fn batch_of(key: &[u8]) -> Option<u64> {
    key.get(1..9)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// A block of `entries` (in order; `bytes` is a capacity hint).
pub(crate) fn encode_block<'e>(
    entries: impl ExactSizeIterator<Item = Entry<'e>>,
    bytes: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + bytes);
    out.push(BLOCK_LAYOUT);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for Entry { pid, seq, sealed } in entries {
        out.extend_from_slice(&pid.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        out.extend_from_slice(sealed);
    }
    out
}

/// One entry of a block: the profile, the chunk's sequence and its sealed bytes.
pub(crate) struct Entry<'b> {
    pub(crate) pid: ProfileId,
    pub(crate) seq: u64,
    pub(crate) sealed: &'b [u8],
}

/// The entries of the block stored under `key`; a block that does not parse is a
/// corrupted value named by its key and the byte offset where it went wrong.
pub(crate) fn entries<'b>(key: &[u8], block: &'b [u8]) -> Result<Vec<Entry<'b>>, StorageError> {
    let corrupted = |at: usize, detail: &str| StorageError::Corrupted {
        what: "event journal block",
        key: key.to_vec(),
        detail: format!("at byte {at}: {detail}"),
    };
    match block.first() {
        Some(&BLOCK_LAYOUT) => {}
        Some(other) => return Err(corrupted(0, &format!("unknown layout {other}"))),
        None => return Err(corrupted(0, "empty")),
    }
    let count = block
        .get(1..5)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| corrupted(1, "no entry count"))?;
    let mut out = Vec::with_capacity(count.min(block.len() / ENTRY_HEADER));
    let mut at = 5;
    for _ in 0..count {
        let header = block
            .get(at..at + ENTRY_HEADER)
            .ok_or_else(|| corrupted(at, "entry header past the end"))?;
        let pid = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
        let seq = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes")) as usize;
        let body = at + ENTRY_HEADER;
        let sealed = body
            .checked_add(len)
            .and_then(|end| block.get(body..end))
            .ok_or_else(|| corrupted(at, "entry longer than the block"))?;
        out.push(Entry { pid, seq, sealed });
        at = body + len;
    }
    if at != block.len() {
        return Err(corrupted(at, "bytes after the last entry"));
    }
    Ok(out)
}

/// Every live journal entry of `db` (one whose batch's set names its profile) as the `E`
/// key and value it would have had, in key order: what a compaction writes instead of the
/// journal. Garbage entries (of profiles moved away) are left out.
pub(crate) fn as_event_keys(db: &sled::Db) -> Result<Vec<Block>, StorageError> {
    let mut sets = BTreeMap::new();
    for item in db.scan_prefix([keys::JOURNAL_SET]) {
        let (key, value) = item?;
        let set =
            RoaringBitmap::deserialize_from(&value[..]).map_err(|e| StorageError::Corrupted {
                what: "set of profiles in the event journal",
                key: key.to_vec(),
                detail: e.to_string(),
            })?;
        sets.insert(batch_of(&key), set);
    }
    let mut out = Vec::new();
    for item in db.scan_prefix([keys::JOURNAL]) {
        let (key, block) = item?;
        let Some(set) = sets.get(&batch_of(&key)) else {
            continue;
        };
        for e in entries(&key, &block)? {
            if set.contains(e.pid) {
                let event_key = keys::pid_seq(keys::EVENTS, e.pid, e.seq);
                out.push((event_key.to_vec(), e.sealed.to_vec()));
            }
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The journal's sets in memory: per batch, the profiles with chunks in its blocks, and
/// their union (most reads are of profiles outside it and look no further).
#[derive(Default)]
pub(crate) struct JournalSets {
    by_batch: BTreeMap<u64, RoaringBitmap>,
    all: RoaringBitmap,
}

impl JournalSets {
    /// Adds a set read from its `K` key.
    pub(crate) fn insert(&mut self, batch: u64, pids: RoaringBitmap) {
        self.all |= &pids;
        self.by_batch.insert(batch, pids);
    }

    /// The batches with chunks of `pid`, ascending.
    pub(crate) fn batches_of(&self, pid: ProfileId) -> Vec<u64> {
        if !self.all.contains(pid) {
            return Vec::new();
        }
        self.by_batch
            .iter()
            .filter(|(_, set)| set.contains(pid))
            .map(|(batch, _)| *batch)
            .collect()
    }

    /// The set of batch `batch`.
    pub(crate) fn set(&self, batch: u64) -> Option<&RoaringBitmap> {
        self.by_batch.get(&batch)
    }

    /// The sets that change when `dropped` leave the journal: (batch, its new set; empty
    /// when the batch no longer holds anything).
    pub(crate) fn without(&self, dropped: &RoaringBitmap) -> Vec<(u64, RoaringBitmap)> {
        if self.all.is_disjoint(dropped) {
            return Vec::new();
        }
        self.by_batch
            .iter()
            .filter(|(_, set)| !set.is_disjoint(dropped))
            .map(|(batch, set)| (*batch, set - dropped))
            .collect()
    }

    /// Applies a committed change: `dropped` left every set, then `added` came in.
    pub(crate) fn apply(&mut self, dropped: &RoaringBitmap, added: Option<&(u64, RoaringBitmap)>) {
        if !self.all.is_disjoint(dropped) {
            self.by_batch.retain(|_, set| {
                *set -= dropped;
                !set.is_empty()
            });
            self.all -= dropped;
        }
        if let Some((batch, pids)) = added {
            self.insert(*batch, pids.clone());
        }
    }

    /// Each batch's set.
    pub(crate) fn sets(&self) -> impl Iterator<Item = (&u64, &RoaringBitmap)> {
        self.by_batch.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(n: u32, per: u64, len: usize) -> JournalEntries {
        let mut j = JournalEntries::default();
        // Pushed out of order: the blocks are sorted.
        for pid in (0..n).rev() {
            for seq in 0..per {
                j.push(pid, 100 * u64::from(pid) + seq, vec![pid as u8; len]);
            }
        }
        j
    }

    #[test]
    fn blocks_hold_every_entry_in_order_and_never_split_a_profile() {
        let (blocks, pids) = entries_of(300, 3, 50).into_blocks(7);
        assert!(blocks.len() > 1, "{} blocks", blocks.len());
        assert_eq!(pids.len(), 300);
        let mut seen = Vec::new();
        for (key, value) in &blocks {
            assert_eq!(batch_of(key), Some(7));
            let got = entries(key, value).unwrap();
            assert_eq!(
                key[9..13],
                got[0].pid.to_be_bytes(),
                "a block is keyed by its first profile"
            );
            for e in got {
                assert_eq!(e.sealed, vec![e.pid as u8; 50].as_slice());
                seen.push((e.pid, e.seq));
            }
        }
        let mut want: Vec<(u32, u64)> = (0..300)
            .flat_map(|pid| (0..3).map(move |s| (pid, 100 * u64::from(pid) + s)))
            .collect();
        want.sort();
        assert_eq!(seen, want);
        // Each profile's entries are in one block.
        for pid in 0..300u32 {
            let holding = blocks
                .iter()
                .filter(|(k, v)| entries(k, v).unwrap().iter().any(|e| e.pid == pid))
                .count();
            assert_eq!(holding, 1, "profile {pid}");
        }
    }

    #[test]
    fn a_damaged_block_is_an_error_naming_its_key_and_offset() {
        let (blocks, _) = entries_of(3, 1, 10).into_blocks(1);
        let (key, value) = &blocks[0];
        for cut in [0, 1, 4, 5, 20, value.len() - 1] {
            let err = entries(key, &value[..cut])
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains("event journal block"), "{err}");
            assert!(err.contains("at byte"), "{err}");
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(entries(key, &longer).is_err());
        let mut layout = value.clone();
        layout[0] = 9;
        assert!(entries(key, &layout)
            .err()
            .unwrap()
            .to_string()
            .contains("unknown layout 9"));
    }

    #[test]
    fn sets_follow_additions_and_drops() {
        let mut sets = JournalSets::default();
        sets.insert(1, [1, 2, 3].into_iter().collect());
        sets.apply(
            &RoaringBitmap::new(),
            Some(&(2, [3, 4].into_iter().collect())),
        );
        assert_eq!(sets.batches_of(3), vec![1, 2]);
        assert_eq!(sets.batches_of(9), Vec::<u64>::new());
        let dropped: RoaringBitmap = [3, 4].into_iter().collect();
        let changes = sets.without(&dropped);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().any(|(b, s)| *b == 2 && s.is_empty()));
        sets.apply(&dropped, None);
        assert_eq!(sets.batches_of(3), Vec::<u64>::new());
        assert_eq!(sets.batches_of(1), vec![1]);
        assert_eq!(sets.sets().count(), 1);
        assert!(sets.without(&dropped).is_empty());
    }
}
