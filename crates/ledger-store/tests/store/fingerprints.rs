//! The fingerprints of the recorded ids saved beside the checkpoint: a reopen reads them and the
//! group records after them instead of the whole database, and falls back to the whole
//! database whenever they do not cover the log.

use std::path::Path;
use std::time::{Duration, Instant};

use ledger_store::{IdSource, Store, StoreError, StoreOptions, FINGERPRINTS_FILE_NAME};

use crate::common::{command, open_sled_retrying, uuid};

/// A named id of the history below.
const NAMED: u128 = 0xabc;
/// A named id written after the fingerprints were saved.
const NAMED_AFTER: u128 = 0xdef;

/// Opens the log as the engine does, starts loading the ids and waits until they are loaded.
fn reopen_and_load(dir: &Path) -> Store {
    let options = StoreOptions {
        defer_index_loading: true,
        ..StoreOptions::default()
    };
    let mut store = Store::open_with_options(dir, options).expect("reopen");
    load_and_wait(&mut store);
    store
}

/// Starts loading the ids of the open and waits until they are loaded.
fn load_and_wait(store: &mut Store) {
    store.load_indexes();
    let waited = Instant::now();
    while !store.indexes_loaded() {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the indexes are never loaded"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Requests 1 to 3 (the first names `NAMED`), the fingerprints saved at their head, then three
/// groups after it: a command that wrote no event, two commands in one group (one names
/// `NAMED_AFTER`), and one more command. The store is closed.
fn history_with_saved_fingerprints(dir: &Path) -> u64 {
    let mut store = reopen_and_load(dir);
    let mut with_name = command(1, &["company/0403019261"]);
    with_name.events[0].names = Some(uuid(NAMED));
    store
        .append(vec![with_name, command(2, &["budget/2025"])])
        .expect("append");
    store
        .append(vec![command(3, &["budget/2025"])])
        .expect("append");
    let snapshot = store.fingerprint_snapshot().expect("a sled log");
    let file = store.fingerprint_file().expect("a sled log");
    assert!(file.save(&snapshot).expect("saved"), "the ids were loaded");
    let saved_at = snapshot.head().position;

    store.append(vec![command(4, &[])]).expect("append");
    let mut with_name = command(6, &["company/0403019261"]);
    with_name.events[0].names = Some(uuid(NAMED_AFTER));
    store
        .append(vec![command(5, &["budget/2025"]), with_name])
        .expect("append");
    store
        .append(vec![command(7, &["provider/AG-0012"])])
        .expect("append");
    saved_at
}

/// Every id of the history is found, an id never recorded is not, and a recorded id is refused.
fn every_recorded_id_is_found(store: &mut Store) {
    for seed in 1..=7 {
        assert!(
            store.request(uuid(seed)).expect("readable").is_some(),
            "request {seed} found"
        );
    }
    assert_eq!(store.request(uuid(8)).expect("readable"), None);
    assert_eq!(
        store.positions_naming(uuid(NAMED)).expect("readable"),
        vec![1]
    );
    assert_eq!(
        store.positions_naming(uuid(NAMED_AFTER)).expect("readable"),
        vec![5]
    );
    assert!(store
        .positions_naming(uuid(0x123))
        .expect("readable")
        .is_empty());
    for seed in [2, 4, 7] {
        assert!(matches!(
            store.append(vec![command(seed, &[])]),
            Err(StoreError::RequestAlreadyRecorded { .. })
        ));
    }
}

#[test]
fn a_reopen_reads_the_saved_fingerprints_and_the_groups_after_them() {
    let dir = tempfile::tempdir().expect("temporary directory");
    history_with_saved_fingerprints(dir.path());
    let mut store = reopen_and_load(dir.path());
    assert_eq!(store.indexes_source(), Some(IdSource::Saved));
    every_recorded_id_is_found(&mut store);
}

/// The engine serves as soon as it has recovered, so its writer may append before the thread
/// reading the ids of the open gets to the group records: those groups are not the log the
/// saved fingerprints must cover (their ids are added as they are written), and the saved ones
/// are still read, not every recorded id. The loader reads as of the open's head: a group
/// appended before `load_indexes` is called stands for one the writer appended while the thread
/// read. Refusing: with the group after the saved head removed, the saved ones are passed over
/// (`saved_fingerprints_followed_by_a_gap_in_the_group_records_are_passed_over`).
#[test]
fn groups_written_after_the_open_leave_the_saved_fingerprints_in_use() {
    let dir = tempfile::tempdir().expect("temporary directory");
    history_with_saved_fingerprints(dir.path());
    let options = StoreOptions {
        defer_index_loading: true,
        ..StoreOptions::default()
    };
    let mut store = Store::open_with_options(dir.path(), options).expect("reopen");
    let opened_at = store.head().position;
    store
        .append(vec![command(9, &["budget/2025"])])
        .expect("append");
    assert!(store.head().position > opened_at, "a group after the open");
    load_and_wait(&mut store);
    assert_eq!(store.indexes_source(), Some(IdSource::Saved));
    every_recorded_id_is_found(&mut store);
    assert!(store.request(uuid(9)).expect("readable").is_some());
    assert!(matches!(
        store.append(vec![command(9, &[])]),
        Err(StoreError::RequestAlreadyRecorded { .. })
    ));
}

#[test]
fn without_saved_fingerprints_a_reopen_reads_the_whole_log() {
    let dir = tempfile::tempdir().expect("temporary directory");
    history_with_saved_fingerprints(dir.path());
    std::fs::remove_file(dir.path().join(FINGERPRINTS_FILE_NAME)).expect("removed");
    let mut store = reopen_and_load(dir.path());
    assert_eq!(store.indexes_source(), Some(IdSource::WholeLog));
    every_recorded_id_is_found(&mut store);
}

#[test]
fn damaged_saved_fingerprints_are_passed_over() {
    let dir = tempfile::tempdir().expect("temporary directory");
    history_with_saved_fingerprints(dir.path());
    let path = dir.path().join(FINGERPRINTS_FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).expect("written");
    let mut store = reopen_and_load(dir.path());
    assert_eq!(store.indexes_source(), Some(IdSource::WholeLog));
    every_recorded_id_is_found(&mut store);
}

/// A group written without its group record (as by a version before them, which wrote its
/// request records and names under their own keys) leaves a gap after the saved fingerprints:
/// they do not cover the log and are passed over.
#[test]
fn saved_fingerprints_followed_by_a_gap_in_the_group_records_are_passed_over() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let saved_at = history_with_saved_fingerprints(dir.path());
    {
        let db = open_sled_retrying(dir.path());
        let groups: Vec<_> = db
            .scan_prefix(b"g")
            .keys()
            .map(|key| key.expect("readable"))
            .collect();
        assert_eq!(groups.len(), 3, "the three groups after the saved head");
        let first_after = &groups[0];
        assert_eq!(first_after[1..9], saved_at.to_be_bytes());
        // The second group (requests 5 and 6, at positions 4 and 5, the second naming
        // `NAMED_AFTER`) as that version wrote it.
        write_as_before_group_records(&db, &[(5, 4), (6, 5)], &[(NAMED_AFTER, 5)]);
        db.remove(&groups[1]).expect("removed");
        db.flush().expect("flushed");
    }
    let mut store = reopen_and_load(dir.path());
    assert_eq!(store.indexes_source(), Some(IdSource::WholeLog));
    every_recorded_id_is_found(&mut store);
}

/// The request records (`r` ‖ id → `RequestRecord`) and index-by-name keys (`n` ‖ id ‖
/// position) of requests `(seed, first position)` of one event each and of names
/// `(seed, position)`, as a version before group records wrote them.
fn write_as_before_group_records(db: &sled::Db, requests: &[(u128, u64)], names: &[(u128, u64)]) {
    use ledger_proto::event::v1::RequestRecord;
    use prost::Message;

    for (seed, first_position) in requests {
        let mut key = vec![b'r'];
        key.extend_from_slice(uuid(*seed).as_bytes());
        let record = RequestRecord {
            request_digest: vec![*seed as u8; 32],
            first_position: *first_position,
            event_count: 1,
            recorded_at: "2025-09-30T10:15:00Z".to_owned(),
        };
        db.insert(key, record.encode_to_vec()).expect("written");
    }
    for (seed, position) in names {
        let mut key = vec![b'n'];
        key.extend_from_slice(uuid(*seed).as_bytes());
        key.extend_from_slice(&position.to_be_bytes());
        db.insert(key, &[][..]).expect("written");
    }
}

/// Saved fingerprints of a longer log with the same beginning (the folder was restored from a
/// backup taken before they were saved) are ahead of the log and passed over.
#[test]
fn saved_fingerprints_ahead_of_the_log_are_passed_over() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let shorter = tempfile::tempdir().expect("temporary directory");
    {
        let mut store = Store::open(shorter.path()).expect("open");
        store
            .append(vec![command(1, &["budget/2025"])])
            .expect("append");
    }
    history_with_saved_fingerprints(dir.path());
    std::fs::copy(
        dir.path().join(FINGERPRINTS_FILE_NAME),
        shorter.path().join(FINGERPRINTS_FILE_NAME),
    )
    .expect("copied");
    let store = reopen_and_load(shorter.path());
    assert_eq!(store.indexes_source(), Some(IdSource::WholeLog));
    assert!(store.request(uuid(1)).expect("readable").is_some());
    assert_eq!(store.request(uuid(2)).expect("readable"), None);
}

/// Once saved, the group records before the saved head are removed: nothing reads them again,
/// and they would grow with the history.
#[test]
fn saving_removes_the_group_records_before_the_saved_head() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let saved_at = history_with_saved_fingerprints(dir.path());
    let db = open_sled_retrying(dir.path());
    let before: Vec<u64> = db
        .scan_prefix(b"g")
        .keys()
        .map(|key| {
            let key = key.expect("readable");
            u64::from_be_bytes(key[1..9].try_into().expect("8 bytes"))
        })
        .collect();
    assert_eq!(before, vec![saved_at, saved_at, saved_at + 2]);
}
