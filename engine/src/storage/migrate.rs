//! Upgrades of an older data directory to [`FORMAT_VERSION`], run by `Store::open`. Each
//! upgrade is one atomic sled batch that also records the new version, so a crash leaves
//! either the old directory or the new one, and the next open finishes the job.
//!
//! - format 1 → 2: identifier links leave sled (`I` keys) for the index checkpoint;
//! - format 2 → 3: nothing to rewrite (tag 1 values stay readable);
//! - format 3 → 4: the small records become stored records (`storage::records`);
//! - format 4 → 5: nothing to rewrite (uncompressed values stay readable);
//! - format 5 → 6: nothing to rewrite (values that are not packed stay readable); the
//!   meta key `repack` asks the next compaction to pack them.
//! - format 6 → 7: nothing to rewrite; the meta key `fold_floor` records the next ingest
//!   sequence, below which every event chunk is counted in its profile's stored slot.
//! - format 7 → 8: the profiles whose slots do not count all their event chunks are
//!   found (one pass over the chunk keys and one slot read per profile with chunks) and
//!   stored as a `U` set; older directories have no such profiles.
//! - format 8 → 9: nothing to rewrite; chunks stay under their `E` keys, where they are
//!   still read (only later batches write to the event journal).

use super::codec::FORMAT_VERSION;
use super::keys;
use super::records::{
    ApiKeyRecord, AuditRecord, DestinationRecord, ObjectionRecord, SavedSegmentRecord,
    StoredRecord, API_KEY_PREFIX, DESTINATION_PREFIX, SEGMENT_PREFIX,
};
use crate::base::digest::parse_hex;
use crate::base::error::StorageError;
use serde::Deserialize;

/// Brings a directory of format `found` (older than [`FORMAT_VERSION`]) up to date.
pub(crate) fn upgrade(db: &sled::Db, found: u32) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    if found < 2 {
        // The index checkpoint of format 1 has an older index format too, so the next
        // open rebuilds the links from the stored profiles.
        for item in db.scan_prefix([keys::IDENTIFIER]) {
            batch.remove(item?.0);
        }
    }
    let mut records = 0;
    if found < 4 {
        records = rewrite_records(db, &mut batch)?;
    }
    if found < 6 {
        // Its profiles and event chunks are not packed: the next compaction packs them.
        batch.insert(keys::meta(keys::REPACK), &[][..]);
    }
    if found < 7 {
        batch.insert(
            keys::meta(keys::FOLD_FLOOR),
            &fold_floor(db)?.to_le_bytes()[..],
        );
    }
    if found == 7 {
        let uncounted = profiles_with_uncounted_chunks(db)?;
        if !uncounted.is_empty() {
            batch.insert(
                &keys::uncounted(u64::MAX)[..],
                super::bitmap_bytes(&uncounted),
            );
        }
    }
    batch.insert(keys::meta("format"), &FORMAT_VERSION.to_le_bytes()[..]);
    db.apply_batch(batch)?;
    db.flush()?;
    tracing::info!(
        "upgraded the data directory from format {found} to {FORMAT_VERSION} \
         ({records} stored records rewritten)"
    );
    Ok(())
}

/// The first sequence no stored event chunk has: the counters' next one (every batch
/// writes them with its chunks), or, in a directory without counters, one past the
/// highest chunk sequence stored. Every chunk below it is counted in its profile's slot.
fn fold_floor(db: &sled::Db) -> Result<u64, StorageError> {
    if let Some(v) = db.get(keys::meta("counters"))? {
        let counters: super::Counters = super::codec::decode("counters", &v)?;
        return Ok(counters.next_seq);
    }
    let mut floor = 0;
    for key in db.scan_prefix([keys::EVENTS]).keys() {
        if let Some(seq) = keys::seq_of(&key?) {
            floor = floor.max(seq.saturating_add(1));
        }
    }
    Ok(floor)
}

/// The profiles of a format-7 directory with an event chunk that their live slot does
/// not count: a chunk of sequence above a tag `0x03` slot's `folded`, or from the
/// `fold_floor` on for a tag `0x01` slot.
fn profiles_with_uncounted_chunks(db: &sled::Db) -> Result<roaring::RoaringBitmap, StorageError> {
    let floor = match db.get(keys::meta(keys::FOLD_FLOOR))? {
        Some(v) => u64::from_le_bytes(v.as_ref().try_into().unwrap_or([0xff; 8])),
        None => u64::MAX,
    };
    let uncounted_from = |pid: u32| -> Result<u64, StorageError> {
        Ok(match db.get(keys::profile(pid))? {
            Some(v) if v.first() == Some(&keys::SLOT_LIVE_FOLDED) && v.len() >= 9 => {
                let folded: [u8; 8] = v[1..9].try_into().expect("8 bytes");
                u64::from_le_bytes(folded).saturating_add(1)
            }
            Some(v) if v.first() == Some(&keys::SLOT_LIVE) => floor,
            _ => u64::MAX,
        })
    };
    let mut found = roaring::RoaringBitmap::new();
    // Keys come in (pid, seq) order: the last chunk key of a profile has its highest
    // sequence.
    let mut last: Option<(u32, u64)> = None;
    for key in db.scan_prefix([keys::EVENTS]).keys() {
        let key = key?;
        let (Some(pid), Some(seq)) = (keys::pid_of(&key), keys::seq_of(&key)) else {
            continue;
        };
        if let Some((prev, max)) = last.filter(|(prev, _)| *prev != pid) {
            if max >= uncounted_from(prev)? {
                found.insert(prev);
            }
        }
        last = Some((pid, seq));
    }
    if let Some((pid, max)) = last {
        if max >= uncounted_from(pid)? {
            found.insert(pid);
        }
    }
    Ok(found)
}

/// Rewrites the JSON (and hand-laid) records of formats 1-3 as stored records; returns
/// how many. A record that does not decode stops the upgrade with its key.
fn rewrite_records(db: &sled::Db, batch: &mut sled::Batch) -> Result<usize, StorageError> {
    let mut count = 0;
    let mut put = |key: sled::IVec, value: Vec<u8>| {
        batch.insert(key, value);
        count += 1;
    };
    for item in db.scan_prefix([keys::AUDIT]) {
        let (k, v) = item?;
        put(k.clone(), legacy_audit(&k, &v)?.encode());
    }
    for item in db.scan_prefix([keys::ERASURE]) {
        let (k, v) = item?;
        put(k.clone(), legacy_intent(&k, &v)?.encode());
    }
    for item in db.scan_prefix([keys::OBJECTION]) {
        let (k, v) = item?;
        put(k.clone(), legacy_objection(&k, &v)?.encode());
    }
    for item in db.scan_prefix([keys::CATALOG]) {
        let (k, v) = item?;
        let name = String::from_utf8_lossy(&k[1..]).into_owned();
        let value = if let Some(n) = name.strip_prefix(DESTINATION_PREFIX) {
            legacy_destination(n, &k, &v)?.encode()
        } else if name.starts_with(API_KEY_PREFIX) {
            legacy_api_key(&k, &v)?.encode()
        } else if let Some(n) = name.strip_prefix(SEGMENT_PREFIX) {
            legacy_segment(n, &k, &v)?.encode()
        } else {
            continue;
        };
        put(k, value);
    }
    Ok(count)
}

fn corrupted(what: &'static str, key: &[u8], detail: impl ToString) -> StorageError {
    StorageError::Corrupted {
        what,
        key: key.to_vec(),
        detail: detail.to_string(),
    }
}

fn json<'a, T: Deserialize<'a>>(
    what: &'static str,
    key: &[u8],
    v: &'a [u8],
) -> Result<T, StorageError> {
    serde_json::from_slice(v).map_err(|e| corrupted(what, key, e))
}

/// Format 3: JSON `{"seq", "at", "actor", "action", "details"}`.
fn legacy_audit(key: &[u8], v: &[u8]) -> Result<AuditRecord, StorageError> {
    #[derive(Deserialize)]
    struct Entry {
        seq: u64,
        at: i64,
        actor: String,
        action: String,
        details: serde_json::Value,
    }
    let e: Entry = json("audit entry", key, v)?;
    Ok(AuditRecord {
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        action: e.action,
        details: e.details.to_string(),
    })
}

/// Format 3: JSON `{"actor", "at", "details"}` of the erasure's future audit entry.
fn legacy_intent(key: &[u8], v: &[u8]) -> Result<AuditRecord, StorageError> {
    #[derive(Deserialize)]
    struct Intent {
        actor: String,
        at: i64,
        details: serde_json::Value,
    }
    let i: Intent = json("erasure intent", key, v)?;
    Ok(AuditRecord {
        seq: 0,
        at: i.at,
        actor: i.actor,
        action: "forget".into(),
        details: i.details.to_string(),
    })
}

/// Format 3: JSON `{"id", "at", "channel", "profile", "digests": [hex]}`.
fn legacy_objection(key: &[u8], v: &[u8]) -> Result<ObjectionRecord, StorageError> {
    #[derive(Deserialize)]
    struct Objection {
        id: u64,
        at: i64,
        channel: String,
        profile: Option<u32>,
        digests: Vec<String>,
    }
    let o: Objection = json("objection", key, v)?;
    let digests = o
        .digests
        .iter()
        .map(|d| parse_hex(d).ok_or_else(|| corrupted("objection", key, "digest is not hex")))
        .collect::<Result<_, _>>()?;
    Ok(ObjectionRecord {
        id: o.id,
        at: o.at,
        channel: o.channel,
        profile: o.profile,
        digests,
    })
}

/// Formats 1-3: layout byte 1, then JSON of the destination.
fn legacy_destination(name: &str, key: &[u8], v: &[u8]) -> Result<DestinationRecord, StorageError> {
    #[derive(Deserialize)]
    struct Destination {
        format: String,
        platform: String,
        segment: String,
        policy: String,
        additive_only: bool,
        created_at: i64,
    }
    let Some((1, body)) = v.split_first() else {
        return Err(corrupted("destination", key, "unknown layout"));
    };
    let d: Destination = json("destination", key, body)?;
    Ok(DestinationRecord {
        name: name.to_string(),
        format: d.format,
        platform: d.platform,
        segment: d.segment,
        policy: d.policy,
        additive_only: d.additive_only,
        created_at: d.created_at,
        push: None,
    })
}

/// Format 3: JSON `{"id", "role", "sha256": hex, "created_at"}`.
fn legacy_api_key(key: &[u8], v: &[u8]) -> Result<ApiKeyRecord, StorageError> {
    #[derive(Deserialize)]
    struct Key {
        id: String,
        role: String,
        sha256: String,
        created_at: i64,
    }
    let k: Key = json("API key", key, v)?;
    Ok(ApiKeyRecord {
        id: k.id,
        role: k.role,
        sha256: parse_hex(&k.sha256).ok_or_else(|| corrupted("API key", key, "not hex"))?,
        created_at: k.created_at,
    })
}

/// Format 3: version byte 1, created and updated (i64 LE each), the expression (UTF-8).
fn legacy_segment(name: &str, key: &[u8], v: &[u8]) -> Result<SavedSegmentRecord, StorageError> {
    const HEADER: usize = 17;
    if v.len() < HEADER || v[0] != 1 {
        return Err(corrupted("saved segment", key, "unknown layout"));
    }
    let i64_at = |o: usize| i64::from_le_bytes(v[o..o + 8].try_into().expect("8 bytes"));
    let expr = std::str::from_utf8(&v[HEADER..])
        .map_err(|_| corrupted("saved segment", key, "not UTF-8"))?;
    Ok(SavedSegmentRecord {
        name: name.to_string(),
        expr: expr.to_string(),
        created_at: i64_at(1),
        updated_at: i64_at(9),
    })
}
