//! The grouping pass of a file import: which records of a JSON Lines file can touch the
//! same profile, so that they are applied next to each other.
//!
//! Records of one person are often far apart in a file (the CRM's rows, then the shop's,
//! then the app's). Applied in file order, each later one reads, unseals and rewrites
//! the profile an earlier batch stored, and sled keeps the old versions until it cleans
//! its segments. Grouped, a person's records mostly fall into one batch, whose overlay
//! folds them before the profile is written once.
//!
//! **Exact.** The pass links two records when they share a candidate link key (of
//! [`candidate_identifiers`], a superset of the identifiers the parse gives) or an
//! existing profile that holds one of their keys. Each group is therefore a union of the
//! sets of records that can meet in one profile. The order keeps each group's records in
//! file order, so every profile sees its records in the order the file gives, and "the
//! later ingest wins" breaks ties as in file order. Groups share nothing, so their
//! order changes no profile: only profile ids and ingest sequence numbers differ from a
//! file-order import. The import holds the writer lock from this pass on, so no other
//! write can link two groups in between.
//!
//! **Order.** Groups that reach existing profiles come first, by the smallest such
//! profile id, so that a batch touches a narrow range of stored keys (an events-only
//! stream onto a large database). New groups follow in the order of their first record.

use super::{cut_lines, line_input, ImportError, Input, CHUNK_LINES};
use crate::base::digest::LinkKey;
use crate::base::limits::MAX_LINE_BYTES;
use crate::input::record::RejectReason;
use crate::storage::profile::ProfileId;
use crate::storage::AppliedLines;
use crossbeam_channel::{bounded, Sender};
use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where one non-blank line of the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// 1-based line number.
    pub(crate) line: u64,
    offset: u64,
    /// Length without the line break.
    len: u64,
}

impl Span {
    /// What the import hands the parsers for this line, as a file-order import would.
    fn read(
        &self,
        file: &std::fs::File,
        buf: &mut Vec<u8>,
    ) -> Result<Result<String, RejectReason>, ImportError> {
        if self.len > MAX_LINE_BYTES as u64 {
            return Ok(line_input(&[], Some(self.len)).expect("an over-long line is refused"));
        }
        buf.resize(self.len as usize, 0);
        file.read_exact_at(buf, self.offset)
            .map_err(super::io_error)?;
        Ok(line_input(buf, None).unwrap_or_else(|| {
            Err(RejectReason {
                field: None,
                message: "the line changed during the import (blank now)".into(),
            })
        }))
    }
}

/// What the grouping pass learns of one record's text: its candidate link keys, and the
/// existing profiles that hold any of them.
#[derive(Debug, Default)]
pub(crate) struct Linked {
    pub(crate) keys: Vec<LinkKey>,
    pub(crate) holders: Vec<ProfileId>,
}

/// Reads the file once and returns its non-blank lines (except those `applied` names) in
/// the order to apply them. `reader` starts at byte `base` of the file. `link` gives the
/// [`Linked`] of a chunk of record texts; it runs on `threads` threads. `scanned` counts
/// the bytes read; `on_scanned` sees it grow (on the calling thread).
pub(crate) fn group_lines<R: BufRead + Send>(
    reader: R,
    base: u64,
    threads: usize,
    applied: &AppliedLines,
    link: &(dyn Fn(&[&str]) -> Vec<Linked> + Sync),
    scanned: &AtomicU64,
    on_scanned: &mut dyn FnMut(u64),
) -> Result<Vec<Span>, ImportError> {
    type Chunk = Vec<(Span, Option<String>)>;
    std::thread::scope(|scope| {
        let (raw_tx, raw_rx) = bounded::<Chunk>(threads * 4);
        let (out_tx, out_rx) = bounded::<(Vec<Span>, Vec<Linked>)>(threads * 4);
        let reader = scope.spawn(move || {
            let mut chunk: Chunk = Vec::with_capacity(CHUNK_LINES);
            let mut stopped = false;
            cut_lines(reader, |line| {
                scanned.store(line.end, Ordering::Relaxed);
                if applied.contains(line.number) {
                    return true;
                }
                let Some(input) = line_input(line.bytes, line.too_long) else {
                    return true;
                };
                let span = Span {
                    line: line.number,
                    offset: base + line.offset,
                    len: line.len(),
                };
                chunk.push((span, input.ok()));
                if chunk.len() == CHUNK_LINES && raw_tx.send(std::mem::take(&mut chunk)).is_err() {
                    stopped = true;
                    return false;
                }
                true
            })?;
            if !stopped && !chunk.is_empty() {
                let _ = raw_tx.send(chunk);
            }
            Ok::<_, ImportError>(())
        });
        for _ in 0..threads {
            let (rx, tx) = (raw_rx.clone(), out_tx.clone());
            scope.spawn(move || {
                for chunk in rx {
                    let (spans, texts): (Vec<Span>, Vec<Option<String>>) =
                        chunk.into_iter().unzip();
                    let known: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
                    let mut found = link(&known).into_iter();
                    let linked = texts
                        .iter()
                        .map(|t| match t {
                            Some(_) => found.next().unwrap_or_default(),
                            None => Linked::default(),
                        })
                        .collect();
                    if tx.send((spans, linked)).is_err() {
                        break;
                    }
                }
            });
        }
        drop((raw_rx, out_tx));
        let mut groups = Groups::default();
        for (spans, linked) in out_rx {
            for (span, linked) in spans.into_iter().zip(linked) {
                groups.add(span, &linked);
            }
            on_scanned(scanned.load(Ordering::Relaxed));
        }
        reader.join().expect("grouping reader panicked")?;
        Ok(groups.order())
    })
}

/// Union-find over records, their candidate link keys and the profiles holding them.
#[derive(Default)]
struct Groups {
    /// Nodes: records and profiles. A root's parent is itself.
    parent: Vec<u32>,
    /// The record node of each span, in arrival order.
    records: Vec<(Span, u32)>,
    /// The first node that named each key (the key's first 8 bytes: two keys that share
    /// them only merge two groups, which keeps the order exact).
    key_nodes: foldhash::HashMap<u64, u32>,
    /// The node of each existing profile that a record reached.
    profile_nodes: foldhash::HashMap<ProfileId, u32>,
}

impl Groups {
    fn node(&mut self) -> u32 {
        let n = self.parent.len() as u32;
        self.parent.push(n);
        n
    }

    fn find(&mut self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            let up = self.parent[self.parent[n as usize] as usize];
            self.parent[n as usize] = up;
            n = up;
        }
        n
    }

    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            // The smaller node stays the root: deterministic, whatever the arrival order.
            let (root, child) = if a < b { (a, b) } else { (b, a) };
            self.parent[child as usize] = root;
        }
    }

    fn add(&mut self, span: Span, linked: &Linked) {
        let record = self.node();
        self.records.push((span, record));
        for key in &linked.keys {
            let short = u64::from_le_bytes(key[..8].try_into().expect("8 of 16 bytes"));
            match self.key_nodes.get(&short) {
                Some(&other) => self.union(record, other),
                None => {
                    self.key_nodes.insert(short, record);
                }
            }
        }
        for &pid in &linked.holders {
            let node = match self.profile_nodes.get(&pid) {
                Some(&n) => n,
                None => {
                    let n = self.node();
                    self.profile_nodes.insert(pid, n);
                    n
                }
            };
            self.union(record, node);
        }
    }

    /// The spans in application order: groups by (smallest existing profile, first
    /// line), each group's lines in file order.
    fn order(mut self) -> Vec<Span> {
        self.key_nodes = Default::default();
        // Each root's sort key: the smallest profile it reaches (below 2^32), else 2^32
        // plus its first line; u64::MAX until known.
        let mut rank = vec![u64::MAX; self.parent.len()];
        let profiles: Vec<(ProfileId, u32)> = self.profile_nodes.drain().collect();
        for (pid, node) in profiles {
            let root = self.find(node) as usize;
            rank[root] = rank[root].min(u64::from(pid));
        }
        let mut records = std::mem::take(&mut self.records);
        records.sort_unstable_by_key(|(span, _)| span.line);
        let mut keyed: Vec<(u64, Span)> = records
            .into_iter()
            .map(|(span, node)| {
                let root = self.find(node) as usize;
                if rank[root] == u64::MAX {
                    rank[root] = (1 << 32) + span.line;
                }
                (rank[root], span)
            })
            .collect();
        drop((rank, std::mem::take(&mut self.parent)));
        keyed.sort_unstable_by_key(|(key, span)| (*key, span.line));
        keyed.into_iter().map(|(_, span)| span).collect()
    }
}

/// Sends the spans' lines to the parsers in chunks, in the given order.
pub(crate) fn read_grouped(
    file: &std::fs::File,
    spans: &[Span],
    tx: Sender<Input>,
    bytes: &AtomicU64,
) -> Result<(), ImportError> {
    let mut buf = Vec::new();
    let mut done = 0u64;
    for chunk in spans.chunks(CHUNK_LINES) {
        let mut lines = Vec::with_capacity(chunk.len());
        for span in chunk {
            lines.push((span.line, span.read(file, &mut buf)?));
            done += span.len + 1;
        }
        bytes.store(done, Ordering::Relaxed);
        if tx.send(Input::Json(lines)).is_err() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(line: u64) -> Span {
        Span {
            line,
            offset: line * 10,
            len: 5,
        }
    }

    fn keys(ks: &[u8]) -> Linked {
        Linked {
            keys: ks.iter().map(|&k| [k; 16]).collect(),
            holders: Vec::new(),
        }
    }

    fn lines(groups: Groups) -> Vec<u64> {
        groups.order().iter().map(|s| s.line).collect()
    }

    #[test]
    fn records_sharing_keys_are_grouped_in_file_order_by_first_line() {
        let mut g = Groups::default();
        // 1:a 2:b 3:c 4:a,b 5:d 6:c 7:e (arriving out of order)
        for (line, ks) in [
            (5, &[4][..]),
            (1, &[1]),
            (7, &[5]),
            (2, &[2]),
            (4, &[1, 2]),
            (3, &[3]),
            (6, &[3]),
        ] {
            g.add(span(line), &keys(ks));
        }
        assert_eq!(lines(g), [1, 2, 4, 3, 6, 5, 7]);
    }

    #[test]
    fn groups_reaching_stored_profiles_come_first_by_profile() {
        let mut g = Groups::default();
        let with = |ks: &[u8], holders: &[ProfileId]| Linked {
            holders: holders.to_vec(),
            ..keys(ks)
        };
        g.add(span(1), &with(&[1], &[]));
        g.add(span(2), &with(&[2], &[9]));
        g.add(span(3), &with(&[3], &[4]));
        g.add(span(4), &with(&[4], &[9]));
        g.add(span(5), &with(&[1], &[]));
        // Line 4 reaches profile 9 through no key it shares with line 2: still one group.
        assert_eq!(lines(g), [3, 2, 4, 1, 5]);
    }

    #[test]
    fn a_record_without_keys_is_a_group_of_its_own() {
        let mut g = Groups::default();
        g.add(span(2), &keys(&[]));
        g.add(span(1), &keys(&[7]));
        g.add(span(3), &keys(&[7]));
        assert_eq!(lines(g), [1, 3, 2]);
    }
}
