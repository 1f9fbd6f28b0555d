//! A group's request records and names live in its group record until the fingerprints are
//! saved, which folds them into their own `r` and `n` keys: every lookup answers the same
//! before the fold, after a reopen, and after the fold.

use std::path::Path;

use ledger_store::{OfflineLog, Store, StoreError};

use crate::common::{command, open_sled_retrying, uuid};

/// The id the first command's event names.
const NAMED: u128 = 0xabc;

/// How many request record, index-by-name and group record keys `dir`'s database holds (one
/// open: each open waits for the lock of the one before).
fn keys_under(dir: &Path) -> [usize; 3] {
    let db = open_sled_retrying(dir);
    [b'r', b'n', b'g'].map(|prefix| db.scan_prefix([prefix]).count())
}

/// Request 1 (one event, naming `NAMED`) and request 2 (no event), in one group.
fn one_group(dir: &Path) {
    let mut store = Store::open(dir).expect("open");
    let mut named = command(1, &["company/0403019261"]);
    named.events[0].names = Some(uuid(NAMED));
    store.append(vec![named, command(2, &[])]).expect("append");
}

/// Every lookup the writer and the readers make, answered the same wherever the records are.
fn every_lookup_answers(store: &mut Store) {
    let first = store.request(uuid(1)).expect("readable").expect("recorded");
    assert_eq!((first.first_position, first.event_count), (1, 1));
    assert_eq!(first.request_digest, [1u8; 32]);
    let second = store.request(uuid(2)).expect("readable").expect("recorded");
    assert_eq!((second.first_position, second.event_count), (2, 0));
    assert_eq!(store.request(uuid(3)).expect("readable"), None);
    assert_eq!(
        store.positions_naming(uuid(NAMED)).expect("readable"),
        vec![1]
    );
    assert_eq!(
        store
            .reader()
            .positions_naming(uuid(NAMED))
            .expect("readable"),
        vec![1]
    );
    assert!(store
        .positions_naming(uuid(0x123))
        .expect("readable")
        .is_empty());
    for seed in [1, 2] {
        assert!(matches!(
            store.append(vec![command(seed, &[])]),
            Err(StoreError::RequestAlreadyRecorded { .. })
        ));
    }
}

#[test]
fn a_groups_records_are_in_its_group_record_until_folded_and_answered_after_a_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    one_group(dir.path());
    assert_eq!(
        keys_under(dir.path()),
        [0, 0, 1],
        "no request record or index-by-name key yet, one group record"
    );

    let mut store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.unfolded_requests(),
        2,
        "read back into memory at open"
    );
    every_lookup_answers(&mut store);
    drop(store);

    let offline = OfflineLog::open(dir.path()).expect("open offline");
    let mut listed: Vec<_> = offline
        .requests()
        .map(|item| item.expect("readable").expect("intact").0)
        .collect();
    listed.sort();
    assert_eq!(listed, vec![uuid(1), uuid(2)], "verify sees them");
}

#[test]
fn the_save_of_the_fingerprints_folds_the_records_into_their_own_keys() {
    let dir = tempfile::tempdir().expect("temporary directory");
    one_group(dir.path());
    let mut store = Store::open(dir.path()).expect("reopen");
    let snapshot = store.fingerprint_snapshot().expect("a sled log");
    // The file holds a handle on sled: dropped here, so that the store's drop lets go of it.
    store
        .fingerprint_file()
        .expect("a sled log")
        .save(&snapshot)
        .expect("saved");
    store.forget_folded(snapshot.head().position);
    assert_eq!(store.unfolded_requests(), 0, "forgotten from memory");
    every_lookup_answers(&mut store);
    drop(store);

    assert_eq!(
        keys_under(dir.path()),
        [2, 1, 0],
        "both request records and the name folded, the group record removed"
    );
    let mut store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.unfolded_requests(), 0);
    every_lookup_answers(&mut store);
}

#[test]
fn a_malformed_group_record_stops_the_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    one_group(dir.path());
    {
        let db = open_sled_retrying(dir.path());
        let key = db
            .scan_prefix(b"g")
            .keys()
            .next()
            .expect("one group record")
            .expect("readable");
        db.insert(key, &[2u8, 0, 0, 0, 9][..]).expect("written");
        db.flush().expect("flushed");
    }
    let opened = Store::open(dir.path());
    assert!(
        matches!(opened, Err(StoreError::GroupRecordMalformed { .. })),
        "{opened:?}"
    );
}
