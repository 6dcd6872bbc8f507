//! The export pipeline: member ids in order → parallel workers read each profile,
//! normalize and hash it (crossbeam channels, bounded) → rows put back in profile-id
//! order → one consumer. Memory is bounded by the channel depth whatever the segment size.

use super::cache::{PackedRow, RowCache};
use super::rows::{FieldStats, ProfileRow, RowBuilder, RowCounts};
use crate::base::error::StorageError;
use crate::storage::profile::ProfileId;
use crate::storage::Store;
use crossbeam_channel::bounded;
use roaring::RoaringBitmap;
use std::collections::BTreeMap;

/// Profiles per work item.
const CHUNK: usize = 512;

/// What a worker sends back for one chunk.
type Done = (
    u64,
    Result<(Vec<ProfileRow>, FieldStats, u64), StorageError>,
);

/// Builds the rows of `pids` with `threads` workers and hands them to `sink` in id order.
/// Returns the per-field counts and the number of profiles no longer live (merged or
/// erased since the members were selected).
pub(crate) fn rows_in_order(
    store: &Store,
    cache: &RowCache,
    builder: &RowBuilder<'_>,
    pids: &RoaringBitmap,
    threads: usize,
    sink: &mut dyn FnMut(ProfileRow) -> std::io::Result<()>,
) -> Result<Result<(FieldStats, u64), std::io::Error>, StorageError> {
    let threads = threads.max(1);
    let mut stats = FieldStats::new();
    let mut vanished = 0u64;
    let mut sink_error = None;
    std::thread::scope(|scope| -> Result<(), StorageError> {
        let (work_tx, work_rx) = bounded::<(u64, Vec<ProfileId>)>(threads * 2);
        let (done_tx, done_rx) = bounded::<Done>(threads * 2);
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut seq = 0u64;
            for pid in pids {
                chunk.push(pid);
                if chunk.len() == CHUNK {
                    if work_tx.send((seq, std::mem::take(&mut chunk))).is_err() {
                        return;
                    }
                    seq += 1;
                }
            }
            if !chunk.is_empty() {
                let _ = work_tx.send((seq, chunk));
            }
        });
        for _ in 0..threads {
            let (rx, tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                for (seq, chunk) in rx {
                    let result = build_chunk(store, cache, builder, &chunk);
                    if tx.send((seq, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(work_rx);
        let mut pending: BTreeMap<u64, (Vec<ProfileRow>, FieldStats, u64)> = BTreeMap::new();
        let mut next = 0u64;
        for (seq, result) in &done_rx {
            pending.insert(seq, result?);
            while let Some((rows, chunk_stats, gone)) = pending.remove(&next) {
                next += 1;
                vanished += gone;
                for (field, c) in chunk_stats {
                    let total = stats.entry(field).or_default();
                    total.valid += c.valid;
                    total.invalid += c.invalid;
                }
                if sink_error.is_none() {
                    for row in rows {
                        if let Err(e) = sink(row) {
                            sink_error = Some(e);
                            break;
                        }
                    }
                }
            }
            if sink_error.is_some() {
                // Dropping the receiver stops the workers and the producer.
                break;
            }
        }
        Ok(())
    })?;
    Ok(match sink_error {
        Some(e) => Err(e),
        None => Ok((stats, vanished)),
    })
}

fn build_chunk(
    store: &Store,
    cache: &RowCache,
    builder: &RowBuilder<'_>,
    chunk: &[ProfileId],
) -> Result<(Vec<ProfileRow>, FieldStats, u64), StorageError> {
    let mut stats = FieldStats::new();
    let (cached, epoch) = cache.get(
        builder.platform,
        builder.identifiers_only,
        builder.today,
        chunk,
        &mut stats,
    );
    let missing: Vec<ProfileId> = chunk
        .iter()
        .zip(&cached)
        .filter(|(_, c)| c.is_none())
        .map(|(p, _)| *p)
        .collect();
    let mut built = Vec::with_capacity(missing.len());
    let mut fresh = Vec::with_capacity(missing.len());
    let mut totals = RowCounts::TOTALS_ZERO;
    store.visit_live_views(&missing, builder.view_part(), &mut |profile| {
        let mut counts = RowCounts::default();
        let row = builder.row(profile, &mut counts);
        if cache.enabled() {
            if let Some(packed) = PackedRow::pack(&row, &counts) {
                fresh.push((row.pid, packed));
            }
        }
        counts.add_into(&mut totals);
        built.push(row);
    })?;
    RowCounts::add_totals(&totals, &mut stats);
    // Cached rows are whole: count only the fields this export writes.
    stats.retain(|field, _| builder.counts_field(field));
    cache.put(builder.platform, builder.identifiers_only, epoch, fresh);
    let vanished = (missing.len() - built.len()) as u64;
    // Merge in id order: cached rows where there were some, built ones elsewhere.
    let mut built = built.into_iter().peekable();
    let mut rows = Vec::with_capacity(chunk.len());
    for (pid, c) in chunk.iter().zip(cached) {
        match c {
            Some(row) => rows.push(row),
            None => {
                if let Some(row) = built.next_if(|r| r.pid == *pid) {
                    rows.push(row);
                }
            }
        }
    }
    Ok((rows, stats, vanished))
}
