//! sled key layout. One tree; the first byte names the structure. Key components are
//! big-endian so sled's lexicographic order is numeric order.
//!
//! | key | value |
//! |---|---|
//! | `M` name | meta: `format` → u32 LE; `counters` → codec(`Counters`); `repack` → empty (values of a format before 6 may remain; the next compaction packs them); `fold_floor` → u64 LE (the first ingest sequence after an upgrade to format 7) |
//! | `P` pid:u32 BE | profile slot: `0x03` folded:u64 LE nonce:24 ciphertext (live, encrypted with the profile key; the event chunks of sequence above `folded` are not yet counted in it), `0x01` nonce:24 ciphertext (live, written before format 7: chunks from the meta `fold_floor` on are not counted in it) or `0x02` into:u32 LE (merged) |
//! | `I` hmac:32 | format 1 only (identifier links; removed when a format-1 directory is opened) |
//! | `E` pid:u32 BE seq:u64 BE | nonce:24 ciphertext of codec(`Vec<StoredEvent>`) — one record's events |
//! | `L` pid:u32 BE seq:u64 BE | nonce:24 ciphertext of codec(`MergeLogEntry`) — merges into this profile |
//! | `D` batch:u64 BE | roaring bitmap (portable format) of the profiles a batch changed since the index checkpoint |
//! | `U` batch:u64 BE | roaring bitmap of profiles that may have event chunks their slot does not count: written by each batch that stores events-only chunks, replaced at each index checkpoint by one holding the current set, under batch `u64::MAX` |
//! | `J` batch:u64 BE first-pid:u32 BE | event journal block: the events-only chunks of one batch, sealed as under their `E` keys (see `journal`) |
//! | `K` batch:u64 BE | roaring bitmap of the profiles with chunks in batch `batch`'s journal blocks |
//! | `C` name | codec(catalog entry) — saved segments and other catalog items |
//! | `O` id:u64 BE | JSON objection (digests, time, channel; see `objections`) |
//! | `A` seq:u64 BE | JSON audit entry (see `audit`) |
//! | `B` seq:u64 BE | roaring bitmap of the profiles an audited export included |
//! | `S` list 0x00 digest:32 | entry kind (1 email, 2 phone, 3 hashed) — suppression list entry |
//! | `F` pid:u32 BE | empty — an erasure committed whose key destruction and file clean-up may not have finished (finished on open) |

pub(crate) const META: u8 = b'M';
pub(crate) const PROFILE: u8 = b'P';
pub(crate) const IDENTIFIER: u8 = b'I';
pub(crate) const EVENTS: u8 = b'E';
pub(crate) const MERGE_LOG: u8 = b'L';
pub(crate) const DIRTY: u8 = b'D';
pub(crate) const UNCOUNTED: u8 = b'U';
pub(crate) const JOURNAL: u8 = b'J';
pub(crate) const JOURNAL_SET: u8 = b'K';
pub(crate) const CATALOG: u8 = b'C';
pub(crate) const SUPPRESSION: u8 = b'S';
pub(crate) const AUDIT: u8 = b'A';
pub(crate) const OBJECTION: u8 = b'O';
pub(crate) const AUDIT_BITMAP: u8 = b'B';
pub(crate) const ERASURE: u8 = b'F';

/// Profile slot tags.
pub(crate) const SLOT_LIVE: u8 = 1;
pub(crate) const SLOT_MERGED: u8 = 2;
/// A live slot that says up to which ingest sequence its event chunks are counted in it.
pub(crate) const SLOT_LIVE_FOLDED: u8 = 3;

/// The meta key holding the first ingest sequence after an upgrade to format 7: event
/// chunks from it on are not counted in a live slot written before (tag `0x01`).
pub(crate) const FOLD_FLOOR: &str = "fold_floor";

/// The meta key naming a directory whose older values the next compaction packs.
pub(crate) const REPACK: &str = "repack";

pub(crate) fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn profile(pid: u32) -> [u8; 5] {
    prefixed_pid(PROFILE, pid)
}

pub(crate) fn dirty(batch: u64) -> [u8; 9] {
    let mut k = [DIRTY, 0, 0, 0, 0, 0, 0, 0, 0];
    k[1..].copy_from_slice(&batch.to_be_bytes());
    k
}

pub(crate) fn uncounted(batch: u64) -> [u8; 9] {
    let mut k = dirty(batch);
    k[0] = UNCOUNTED;
    k
}

pub(crate) fn prefixed_pid(tag: u8, pid: u32) -> [u8; 5] {
    let mut k = [tag, 0, 0, 0, 0];
    k[1..].copy_from_slice(&pid.to_be_bytes());
    k
}

pub(crate) fn pid_seq(tag: u8, pid: u32, seq: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = tag;
    k[1..5].copy_from_slice(&pid.to_be_bytes());
    k[5..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn catalog(name: &str) -> Vec<u8> {
    let mut k = vec![CATALOG];
    k.extend_from_slice(name.as_bytes());
    k
}

/// The pid of a `P`, `D`, `E` or `L` key.
pub(crate) fn pid_of(key: &[u8]) -> Option<u32> {
    key.get(1..5)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
}

/// The seq of an `E` or `L` key.
pub(crate) fn seq_of(key: &[u8]) -> Option<u64> {
    key.get(5..13)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// Prefix of a suppression list's entries.
pub(crate) fn suppression_prefix(list: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(list.len() + 34);
    k.push(SUPPRESSION);
    k.extend_from_slice(list.as_bytes());
    k.push(0);
    k
}

/// A suppression entry key.
pub(crate) fn suppression(list: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut k = suppression_prefix(list);
    k.extend_from_slice(digest);
    k
}

/// An audit key (`A` or `B`) for sequence `seq`.
pub(crate) fn audit(tag: u8, seq: u64) -> [u8; 9] {
    let mut k = [tag, 0, 0, 0, 0, 0, 0, 0, 0];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}
