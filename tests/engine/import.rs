//! The importers' batching: a large batch size ramps up over the first batches, and the
//! result is the same as ingesting the records in one call.

use super::assert_clean;
use cidb::{Config, Engine, Generator, ImportOptions};

#[test]
fn large_batches_ramp_up_and_land_like_one_ingest() {
    let records = Generator::new(2_500, 11).records();
    assert!(records.len() > 4_000, "{} records", records.len());
    let dir = tempfile::tempdir().unwrap();
    let db = Engine::open_with(
        dir.path(),
        Config::default().with_import_batch_records(2_048),
    )
    .unwrap();
    let mut committed = Vec::new();
    let report = db
        .import_jsonl(
            records.join("\n").as_bytes(),
            &ImportOptions::default(),
            &mut |p| committed.push(p.records),
        )
        .unwrap();
    let n = records.len() as u64;
    let mut expected: Vec<u64> = [256u64, 768, 1_792]
        .into_iter()
        .chain((1..).map(|k| 1_792 + 2_048 * k))
        .take_while(|&c| c < n)
        .collect();
    expected.push(n);
    assert_eq!(
        committed, expected,
        "1/8, 1/4, 1/2 of the batch size, then full batches"
    );
    assert_eq!(report.records, n);
    assert_clean(&db);

    let (_other_dir, other) = super::fresh();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let whole = other.ingest_json(&refs).unwrap();
    assert_eq!(report.accepted, whole.accepted);
    assert_eq!(report.merged_profiles, whole.merged_profiles);
    assert_clean(&other);
    assert_same_counts(&db, &other);
}

/// Both databases hold as many profiles, identifier links, term bitmaps and event entries.
fn assert_same_counts(a: &Engine, b: &Engine) {
    let (a, b) = (a.stats(), b.stats());
    assert_eq!(a.profiles, b.profiles);
    assert_eq!(a.identifier_links, b.identifier_links);
    assert_eq!(a.indexes.term_bitmaps, b.indexes.term_bitmaps);
    assert_eq!(a.indexes.event_entries, b.indexes.event_entries);
}

/// A batch with many events indexes them on a second thread while the postings and links
/// are updated (`PreparedBatch::apply_derived`); one record at a time, mostly on one thread
/// (a record whose merge moves stored events has three event changes, which a debug build
/// also hands to the second thread). Both must leave the indexes a rebuild from storage
/// gives, merges included.
#[test]
fn a_batch_of_many_events_indexes_like_records_one_at_a_time() {
    let records = Generator::new(1_500, 5).records();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let (_whole_dir, whole) = super::fresh();
    let report = whole.ingest_json(&refs).unwrap();
    assert_eq!(report.rejected_count, 0);
    assert!(report.merged_profiles > 0, "the batch merges profiles");
    // One event change per record with events: about a thousand here, well above the
    // 512 from which they are indexed on a second thread.
    let events = whole.stats().indexes.event_entries;
    assert!(events > 2_000, "{events} event entries in one batch");
    assert_clean(&whole);

    let (_single_dir, single) = super::fresh();
    for record in &refs {
        single.ingest_json(&[record]).unwrap();
    }
    assert_clean(&single);
    assert_same_counts(&whole, &single);
}
