//! The checkpoint form of a day's event entries (index format 5): one byte string per day
//! instead of 16 bytes an entry (`ms_of_day` u32, `pid` u32, `value` f64). Most events
//! carry no value and a day holds few profiles' events, so an entry takes about 7 bytes.
//!
//! Layout: a flags byte (bit 0: every value is +0.0, and no value follows), then per entry
//! in order: `pid` and `ms_of_day` as unsigned LEB128, then unless bit 0 is set, the value:
//! a tag byte `0` (+0.0), `1` followed by the zig-zag LEB128 of `value × 1000` (a value
//! that is exactly that integer divided by 1000, as event values at the index's 1/1000
//! grid are) or `2` followed by the 8 bytes of the `f64` (little-endian). Entry order is
//! kept, so a bucket reads back equal. A bucket keeps these bytes until its entries are
//! first used ([`Entries`]).

use super::events::Entry;
use crate::base::leb128::{self, Reader};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::OnceLock;

const ALL_ZERO: u8 = 1;
const VALUE_ZERO: u8 = 0;
const VALUE_MILLIS: u8 = 1;
const VALUE_RAW: u8 = 2;
/// Largest `|value × 1000|` stored as an integer (exact in an `f64`).
const MAX_MILLIS: f64 = (1u64 << 52) as f64;

/// A day's event entries as a bucket holds them: read from the checkpoint packed and
/// unpacked on first use, so an open neither unpacks nor allocates millions of entries
/// (a quarter of a 1M-person open's time), and a checkpoint writes the packed bytes of
/// the days nothing changed again as they are.
#[derive(Clone, Default)]
pub struct Entries {
    /// The checkpoint's bytes, while they still hold exactly these entries.
    packed: Option<Box<[u8]>>,
    /// How many entries the packed bytes hold, once counted (`stats` counts every day's
    /// entries: counting the bytes needs no unpacking).
    packed_len: OnceLock<usize>,
    /// The entries, once unpacked (or built by the writer).
    unpacked: OnceLock<Vec<Entry>>,
}

impl Entries {
    /// The entries (unpacking them on first use; a leaf of the lock order: a concurrent
    /// reader of the same day waits for the unpacking, microseconds).
    pub fn get(&self) -> &[Entry] {
        self.unpacked.get_or_init(|| self.unpack())
    }

    /// The packed bytes' entries. They were written by [`pack`] and the checkpoint's
    /// CRC-32 matched when they were read, so they unpack; should they not, the day
    /// reads as empty, loudly, and `cidb check` (which compares the indexes with a
    /// rebuild) reports the difference.
    fn unpack(&self) -> Vec<Entry> {
        match self.packed.as_deref().map(unpack) {
            Some(Ok(entries)) => entries,
            Some(Err(error)) => {
                tracing::error!(%error, "a day's packed event entries do not unpack; run `cidb check`");
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// How many entries the day holds (without unpacking them).
    pub fn len(&self) -> usize {
        match (self.unpacked.get(), &self.packed) {
            (Some(entries), _) => entries.len(),
            (None, Some(bytes)) => *self.packed_len.get_or_init(|| {
                let mut n = 0;
                // Bytes that do not unpack read as no entries (`unpack`).
                decode(bytes, |_| n += 1).map_or(0, |()| n)
            }),
            (None, None) => 0,
        }
    }

    /// Hands each entry to `visit`, in order, without keeping them unpacked (deriving a
    /// series' totals reads every day once: unpacking them all would hold them twice).
    pub fn for_each(&self, visit: impl FnMut(&Entry)) {
        match self.unpacked.get() {
            Some(entries) => entries.iter().for_each(visit),
            None => self.unpack().iter().for_each(visit),
        }
    }

    /// The entries, to change (the packed bytes are dropped: they no longer hold them).
    pub fn get_mut(&mut self) -> &mut Vec<Entry> {
        if self.unpacked.get().is_none() {
            self.unpacked = OnceLock::from(self.unpack());
        }
        self.packed = None;
        self.packed_len = OnceLock::new();
        self.unpacked.get_mut().expect("unpacked above")
    }
}

impl From<Vec<Entry>> for Entries {
    fn from(entries: Vec<Entry>) -> Self {
        Entries {
            packed: None,
            packed_len: OnceLock::new(),
            unpacked: OnceLock::from(entries),
        }
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.get()).finish()
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.packed {
            Some(bytes) => serde_bytes::Bytes::new(bytes).serialize(serializer),
            None => serde_bytes::Bytes::new(&pack(self.get())).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Entries {
    /// Keeps the bytes packed. (Checking here that they unpack cost a tenth of a 1M-person
    /// open; the checkpoint's CRC-32 already vouches for them.)
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(deserializer)?;
        Ok(Entries {
            packed: Some(bytes.into_vec().into_boxed_slice()),
            packed_len: OnceLock::new(),
            unpacked: OnceLock::new(),
        })
    }
}

/// The packed bytes of `entries`.
pub(crate) fn pack(entries: &[Entry]) -> Vec<u8> {
    let all_zero = entries.iter().all(|e| e.value.to_bits() == 0);
    let mut out = Vec::with_capacity(1 + entries.len() * 8);
    out.push(if all_zero { ALL_ZERO } else { 0 });
    for e in entries {
        leb128::put(&mut out, u64::from(e.pid));
        leb128::put(&mut out, u64::from(e.ms_of_day));
        if all_zero {
            continue;
        }
        if e.value.to_bits() == 0 {
            out.push(VALUE_ZERO);
        } else if let Some(millis) = exact_millis(e.value) {
            out.push(VALUE_MILLIS);
            leb128::put_signed(&mut out, millis);
        } else {
            out.push(VALUE_RAW);
            out.extend_from_slice(&e.value.to_le_bytes());
        }
    }
    out
}

/// `value × 1000` when that is an integer that divides back to exactly `value`.
fn exact_millis(value: f64) -> Option<i64> {
    let scaled = (value * 1000.0).round();
    if scaled.is_nan() || scaled.abs() > MAX_MILLIS {
        return None;
    }
    let millis = scaled as i64;
    // The reader's own expression, so -0.0 (which reads back as +0.0) stays raw.
    ((millis as f64 / 1000.0).to_bits() == value.to_bits()).then_some(millis)
}

/// The entries of packed `bytes`; an error names the byte offset where they stop making sense.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::with_capacity(bytes.len() / 7);
    decode(bytes, |e| out.push(e))?;
    Ok(out)
}

/// Hands each entry of packed `bytes` to `push`, in order.
fn decode(bytes: &[u8], mut push: impl FnMut(Entry)) -> Result<(), String> {
    let mut r = Reader::new(bytes, "packed event entries");
    let flags = r.byte()?;
    if flags & !ALL_ZERO != 0 {
        return Err(format!(
            "unknown flags {flags:#04x} in packed event entries"
        ));
    }
    while !r.is_done() {
        let pid = r.u32()?;
        let ms_of_day = r.u32()?;
        let value = if flags & ALL_ZERO != 0 {
            0.0
        } else {
            match r.byte()? {
                VALUE_ZERO => 0.0,
                VALUE_MILLIS => {
                    let millis = r.signed()?;
                    millis as f64 / 1000.0
                }
                VALUE_RAW => {
                    let raw = r.take(8)?;
                    f64::from_le_bytes(raw.try_into().expect("8 bytes"))
                }
                tag => {
                    return Err(format!(
                        "unknown value tag {tag} at byte {}",
                        r.offset() - 1
                    ))
                }
            }
        };
        push(Entry {
            ms_of_day,
            pid,
            value,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry((pid, ms_of_day, value): (u32, u32, f64)) -> Entry {
        Entry {
            ms_of_day,
            pid,
            value,
        }
    }

    /// Bytes that do not unpack read as a day without entries, whichever way they are
    /// read (they cannot come from `pack`; the checkpoint's CRC-32 guards the file).
    #[test]
    fn a_day_that_does_not_unpack_reads_as_empty_every_way() {
        let bad = Entries {
            packed: Some(Box::new([0, 5, 7, 9])),
            packed_len: OnceLock::new(),
            unpacked: OnceLock::new(),
        };
        assert!(unpack(&[0, 5, 7, 9]).is_err());
        assert_eq!(bad.len(), 0);
        let mut visited = 0;
        bad.for_each(|_| visited += 1);
        assert_eq!(visited, 0);
        assert!(bad.get().is_empty());
    }

    proptest! {
        /// A day read from a checkpoint stays packed: it is written back byte for byte
        /// without being unpacked, reads as the entries written, and once changed is
        /// written with the change.
        #[test]
        fn a_day_read_packed_is_written_back_as_read(
            raw in proptest::collection::vec((any::<u32>(), 0u32..86_400_000, -5.0f64..5.0), 0..100),
            extra in (any::<u32>(), 0u32..86_400_000, -5.0f64..5.0),
        ) {
            let entries: Vec<Entry> = raw.into_iter().map(entry).collect();
            let bytes = crate::storage::codec::encode(&Entries::from(entries.clone()));
            let read: Entries = crate::storage::codec::decode("entries", &bytes).unwrap();
            prop_assert!(read.unpacked.get().is_none(), "not unpacked by reading");
            prop_assert_eq!(read.len(), entries.len());
            let mut visited = Vec::new();
            read.for_each(|e| visited.push(*e));
            prop_assert_eq!(&visited, &entries);
            prop_assert!(read.unpacked.get().is_none(), "not unpacked by counting or visiting");
            prop_assert_eq!(crate::storage::codec::encode(&read), bytes.clone());
            prop_assert!(read.unpacked.get().is_none(), "not unpacked by writing");
            prop_assert_eq!(read.get(), &entries[..]);
            prop_assert_eq!(crate::storage::codec::encode(&read), bytes.clone());

            let mut changed: Entries = crate::storage::codec::decode("entries", &bytes).unwrap();
            changed.get_mut().push(entry(extra));
            let mut expected = entries;
            expected.push(entry(extra));
            let again: Entries =
                crate::storage::codec::decode("entries", &crate::storage::codec::encode(&changed)).unwrap();
            prop_assert_eq!(again.get(), &expected[..]);
            prop_assert_eq!(again, Entries::from(expected));
        }
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            (-1_000_000_000i64..1_000_000_000).prop_map(|m| m as f64 / 1000.0),
            any::<f64>(),
            (-100.0f64..100.0),
        ]
    }

    proptest! {
        /// Any entries read back bit for bit and in order; a day without values takes a
        /// few bytes an entry.
        #[test]
        fn entries_read_back_bit_for_bit(
            raw in proptest::collection::vec((any::<u32>(), 0u32..86_400_000, value()), 0..200),
            zero_day in any::<bool>(),
        ) {
            let entries: Vec<Entry> = raw
                .into_iter()
                .map(|(pid, ms_of_day, value)| Entry {
                    ms_of_day,
                    pid,
                    value: if zero_day { 0.0 } else { value },
                })
                .collect();
            let packed = pack(&entries);
            let back = unpack(&packed).unwrap();
            prop_assert_eq!(back.len(), entries.len());
            for (a, b) in entries.iter().zip(&back) {
                prop_assert_eq!((a.pid, a.ms_of_day, a.value.to_bits()), (b.pid, b.ms_of_day, b.value.to_bits()));
            }
            if zero_day {
                prop_assert!(packed.len() <= 1 + entries.len() * 9);
            }
        }

        /// Damaged bytes give an error, never a panic.
        #[test]
        fn damaged_bytes_are_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = unpack(&bytes);
        }
    }

    #[test]
    fn a_typical_day_is_about_seven_bytes_an_entry() {
        let entries: Vec<Entry> = (0..1000u32)
            .map(|i| Entry {
                ms_of_day: 40_000_000 + i * 17,
                pid: 900_000 + i * 97,
                value: 0.0,
            })
            .collect();
        assert_eq!(pack(&entries).len(), 1 + 1000 * 7);
        let truncated = &pack(&entries)[..500];
        assert!(unpack(truncated).unwrap_err().contains("end early"));
        // A number of more than 64 bits, with and without bytes after it.
        let mut wide = vec![ALL_ZERO];
        wide.extend([0xff; 9]);
        wide.push(0x02);
        assert!(unpack(&wide).unwrap_err().contains("over-long"));
        wide.extend([0; 12]);
        assert!(unpack(&wide).unwrap_err().contains("over-long"));
    }
}
