//! The sealed past in segment files: sealing, reading every position back through every read
//! path, a seal cut short by a crash, a damaged segment, and a backup that carries segments.

use std::path::{Path, PathBuf};

use ledger_store::{
    verify_log_at, ChainBreakKind, OfflineLog, RecordedEvent, Store, StoreError, StoreOptions,
    SEGMENTS_DIR_NAME,
};

use crate::common::{open_sled_retrying, write_log};

/// Small segments, so that a short log seals several.
const SEGMENT_LEN_EVENTS: u64 = 7;

fn options() -> StoreOptions {
    StoreOptions {
        segment_len_events: SEGMENT_LEN_EVENTS,
        ..StoreOptions::default()
    }
}

/// Opens the log with small segments and seals what lies at or below its head, as the save of
/// the fingerprints with a checkpoint does.
fn open_and_seal(dir: &Path) -> Store {
    open_and_seal_with(dir, options())
}

fn open_and_seal_with(dir: &Path, options: StoreOptions) -> Store {
    let store = Store::open_with_options(dir, options).expect("open");
    let snapshot = store.fingerprint_snapshot().expect("a sled log");
    store
        .fingerprint_file()
        .expect("a sled log")
        .save(&snapshot)
        .expect("saved");
    store
}

/// The segment files of a data folder, by name.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir.join(SEGMENTS_DIR_NAME)) {
        Ok(entries) => entries.map(|entry| entry.expect("listed").path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// The positions of the entries sled holds, read behind the store's back.
fn positions_in_sled(dir: &Path) -> Vec<u64> {
    let db = open_sled_retrying(dir);
    db.scan_prefix(b"e")
        .map(|item| {
            let (key, _) = item.expect("read");
            u64::from_be_bytes(key[1..].try_into().expect("an entry key"))
        })
        .collect()
}

/// Every read path gives back `expected`, byte for byte.
fn every_read_gives_back(store: &Store, expected: &[RecordedEvent]) {
    let head = store.head();
    assert_eq!(head.position, expected.len() as u64);
    let all: Vec<RecordedEvent> = store.read_all().map(|event| event.expect("read")).collect();
    assert_eq!(all, expected, "read_all");
    let reader = store.reader();
    for event in expected {
        assert_eq!(
            &reader.read_at(event.position).expect("read_at"),
            event,
            "read_at {}",
            event.position
        );
    }
    // Ranges that start and end inside segments, across their borders and into sled.
    for from in 1..=head.position {
        let range = store.read_range(from, 9).expect("read_range");
        let end = (from + 9).min(head.position + 1);
        assert_eq!(range, expected[(from - 1) as usize..(end - 1) as usize]);
    }
    assert_eq!(store.verify().expect("verify"), Ok(head));
}

#[test]
fn sealed_entries_leave_sled_and_read_back_from_every_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 33);
    let store = open_and_seal(dir.path());
    every_read_gives_back(&store, &expected);
    drop(store);

    assert_eq!(
        segment_files(dir.path()).len(),
        4,
        "33 entries make four whole segments of 7"
    );
    assert_eq!(
        positions_in_sled(dir.path()),
        (29..=33).collect::<Vec<u64>>(),
        "sled keeps only the tail"
    );
    let mut store = Store::open_with_options(dir.path(), options()).expect("reopen");
    every_read_gives_back(&store, &expected);
    // The log goes on from the segments: a new entry chains from the sealed past's last.
    let more = store
        .append(vec![crate::common::command(1000, &["budget/2025"])])
        .expect("append");
    assert_eq!(more[0][0].position, 34);
    drop(store);
    let offline = OfflineLog::open(dir.path()).expect("offline");
    assert_eq!(
        offline.verify().expect("verify").map(|head| head.position),
        Ok(34)
    );
    let walked: Vec<RecordedEvent> = offline.walk().map(|event| event.expect("walk")).collect();
    assert_eq!(walked[..33], expected[..], "the walk of verify and export");
}

/// The number of files this process has open.
fn open_file_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("the process's open files")
        .count()
}

#[test]
fn a_history_of_many_segments_keeps_few_files_open() {
    // A segment per entry: 300 segments, more than the cache of open segment files holds many
    // times over. A start once opened every segment and kept it open, so that a long history
    // of short segments ran out of file descriptors.
    const ENTRIES: u64 = 300;
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), ENTRIES);
    let one_per_segment = StoreOptions {
        segment_len_events: 1,
        ..StoreOptions::default()
    };
    drop(open_and_seal_with(dir.path(), one_per_segment.clone()));
    assert_eq!(segment_files(dir.path()).len(), ENTRIES as usize);

    let before = open_file_count();
    let store = Store::open_with_options(dir.path(), one_per_segment).expect("reopen");
    every_read_gives_back(&store, &expected);
    let during = open_file_count();
    // Other tests of this binary open files at the same time; far fewer than 300 together.
    assert!(
        during < before + (ENTRIES as usize) / 2,
        "{during} files open after reading 300 segments, {before} before the open"
    );
    drop(store);
    let offline = OfflineLog::open(dir.path()).expect("offline");
    assert_eq!(
        offline.verify().expect("verify").map(|head| head.position),
        Ok(ENTRIES)
    );
}

#[test]
fn a_log_with_everything_sealed_opens_at_its_head() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 14);
    drop(open_and_seal(dir.path()));
    assert!(positions_in_sled(dir.path()).is_empty(), "all in segments");
    let store = Store::open_with_options(dir.path(), options()).expect("reopen");
    assert_eq!(store.head().hash, expected[13].hash);
    every_read_gives_back(&store, &expected);
}

#[test]
fn an_unsealed_log_seals_nothing_below_a_whole_segment() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 6);
    let store = open_and_seal(dir.path());
    every_read_gives_back(&store, &expected);
    drop(store);
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(positions_in_sled(dir.path()).len(), 6);
}

/// A crash after the segment's rename and before sled's copy was removed leaves both copies
/// (and perhaps an unfinished file of the next seal): the segment wins, sled's copy goes.
#[test]
fn a_seal_cut_short_after_its_rename_is_finished_at_open() {
    let sealed = tempfile::tempdir().expect("temporary directory");
    let crashed = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(sealed.path(), 20);
    copy_folder(sealed.path(), crashed.path());
    drop(open_and_seal(sealed.path()));
    // The crashed folder: sled as before the seal, the segments as after it.
    copy_folder(
        &sealed.path().join(SEGMENTS_DIR_NAME),
        &crashed.path().join(SEGMENTS_DIR_NAME),
    );
    std::fs::write(
        crashed
            .path()
            .join(SEGMENTS_DIR_NAME)
            .join("00000000000000000015-00000000000000000021.seg.tmp"),
        b"half a segment",
    )
    .expect("unfinished file");
    assert_eq!(positions_in_sled(crashed.path()).len(), 20, "both copies");

    let store = Store::open_with_options(crashed.path(), options()).expect("open");
    every_read_gives_back(&store, &expected);
    drop(store);
    assert_eq!(
        positions_in_sled(crashed.path()),
        (15..=20).collect::<Vec<u64>>(),
        "the copies of the sealed range removed from sled"
    );
    assert_eq!(
        segment_files(crashed.path()).len(),
        2,
        "the unfinished file removed"
    );
}

/// A seal removes its range from sled a batch (of 1 024 entries) and a flush at a time: a crash
/// between two batches leaves the front of the range removed and the rest in sled, which the
/// next open removes, the segment holding it all.
#[test]
fn a_seal_cut_short_between_two_removal_batches_is_finished_at_open() {
    let sealed = tempfile::tempdir().expect("temporary directory");
    let crashed = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(sealed.path(), 20);
    copy_folder(sealed.path(), crashed.path());
    drop(open_and_seal(sealed.path()));
    copy_folder(
        &sealed.path().join(SEGMENTS_DIR_NAME),
        &crashed.path().join(SEGMENTS_DIR_NAME),
    );
    {
        // The first batch of the second segment's removal went through, not the rest.
        let db = open_sled_retrying(crashed.path());
        for position in 1..=10u64 {
            let mut key = vec![b'e'];
            key.extend_from_slice(&position.to_be_bytes());
            db.remove(key).expect("removed");
        }
        db.flush().expect("flushed");
    }
    assert_eq!(
        positions_in_sled(crashed.path()),
        (11..=20).collect::<Vec<u64>>(),
        "part of the sealed range still in sled"
    );

    let store = Store::open_with_options(crashed.path(), options()).expect("open");
    every_read_gives_back(&store, &expected);
    drop(store);
    assert_eq!(
        positions_in_sled(crashed.path()),
        (15..=20).collect::<Vec<u64>>(),
        "the rest of the sealed range removed from sled"
    );
}

/// A segment longer than one removal batch: the seal removes its range in several batches,
/// every one of them, and every read path gives the log back.
#[test]
fn a_segment_longer_than_a_removal_batch_leaves_sled_whole() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 2_600);
    let options = StoreOptions {
        segment_len_events: 2_500,
        ..StoreOptions::default()
    };
    let store = open_and_seal_with(dir.path(), options.clone());
    let all: Vec<RecordedEvent> = store.read_all().map(|event| event.expect("read")).collect();
    assert_eq!(all, expected, "read_all");
    drop(store);
    assert_eq!(segment_files(dir.path()).len(), 1, "one segment of 2 500");
    assert_eq!(
        positions_in_sled(dir.path()),
        (2_501..=2_600).collect::<Vec<u64>>(),
        "three batches removed, sled keeps only the tail"
    );
    let store = Store::open_with_options(dir.path(), options).expect("reopen");
    assert_eq!(store.verify().expect("verify runs"), Ok(store.head()));
}

/// A byte changed inside an entry of a segment: the read of that position breaks there, and
/// `verify` says where.
#[test]
fn a_changed_byte_in_a_segment_breaks_the_chain_at_its_entry() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 20);
    drop(open_and_seal(dir.path()));
    let second = segment_files(dir.path())[1].clone();
    let mut bytes = std::fs::read(&second).expect("read");
    // Inside the entries of the second segment (positions 8..=14), past its 56-byte header:
    // the last byte of its first entry (its end is the second offset), inside its hash field.
    let first_entry_end = u64::from_be_bytes(
        bytes[bytes.len() - 48 - 8 * 8 + 8..bytes.len() - 48 - 8 * 8 + 16]
            .try_into()
            .expect("8 bytes"),
    ) as usize;
    bytes[first_entry_end - 1] ^= 0x01;
    std::fs::write(&second, &bytes).expect("write");

    let chain_break = verify_log_at(dir.path())
        .expect("verify runs")
        .expect_err("a break");
    assert_eq!(chain_break.position, 8, "{chain_break}");
    assert!(
        matches!(chain_break.kind, ChainBreakKind::HashMismatch { .. }),
        "{chain_break}"
    );
    let store = Store::open_with_options(dir.path(), options()).expect("opens: form intact");
    match store.reader().read_at(8) {
        Err(StoreError::ChainBroken(chain_break)) => assert_eq!(chain_break.position, 8),
        other => panic!("a break at 8, not {other:?}"),
    }
    assert!(
        store.reader().read_at(7).is_ok(),
        "the segment before is intact"
    );
}

/// A segment cut short: the store refuses to open, naming the file, and `verify` reports it at
/// the first position it should hold.
#[test]
fn a_truncated_segment_is_refused_and_verify_names_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 20);
    drop(open_and_seal(dir.path()));
    let second = segment_files(dir.path())[1].clone();
    let bytes = std::fs::read(&second).expect("read");
    std::fs::write(&second, &bytes[..bytes.len() - 10]).expect("truncate");

    match Store::open_with_options(dir.path(), options()) {
        Err(StoreError::ChainBroken(chain_break)) => {
            assert_eq!(chain_break.position, 8);
            assert!(
                matches!(&chain_break.kind, ChainBreakKind::SegmentDamaged { file, .. } if file.ends_with(".seg")),
                "{chain_break}"
            );
        }
        other => panic!("refused, not {other:?}"),
    }
    let chain_break = verify_log_at(dir.path())
        .expect("verify runs")
        .expect_err("a break");
    assert_eq!(chain_break.position, 8, "{chain_break}");
    assert!(
        matches!(chain_break.kind, ChainBreakKind::SegmentDamaged { .. }),
        "{chain_break}"
    );
}

/// A changed byte that the chain does not cover (the header's reserved hash is checked at
/// open; the offsets here) is found by the digest that `verify` checks.
#[test]
fn verify_checks_each_segments_digest() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 14);
    drop(open_and_seal(dir.path()));
    let first = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).expect("read");
    // The digest itself, in the footer.
    let at = bytes.len() - 20;
    bytes[at] ^= 0x01;
    std::fs::write(&first, &bytes).expect("write");

    let chain_break = verify_log_at(dir.path())
        .expect("verify runs")
        .expect_err("a break");
    assert_eq!(chain_break.position, 1, "{chain_break}");
    assert!(
        matches!(&chain_break.kind, ChainBreakKind::SegmentDamaged { why, .. } if why.contains("digest")),
        "{chain_break}"
    );
    // The entries themselves are intact: reads still check out.
    let store = Store::open_with_options(dir.path(), options()).expect("opens");
    assert_eq!(store.read_range(1, 14).expect("read"), expected);
}

#[test]
fn a_backup_carries_the_segments_and_a_restored_backup_opens() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 25);
    let store = open_and_seal(dir.path());
    let report = store
        .backup_to(&target.path().join("copy"))
        .expect("backup");
    assert_eq!(report.head, store.head());
    drop(store);
    let copy = target.path().join("copy");
    assert_eq!(segment_files(&copy).len(), 3, "the segments copied");
    assert_eq!(
        verify_log_at(&copy)
            .expect("verify runs")
            .map(|head| head.position),
        Ok(25)
    );
    let restored = Store::open_with_options(&copy, options()).expect("the copy opens");
    every_read_gives_back(&restored, &expected);
}

/// A copy of a folder's files (not recursive beyond one level of folders).
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
