//! Appending, closing and reopening: everything written comes back, in place.

use ledger_proto::event::v1::{event::Payload, BudgetOpened};
use ledger_store::{Head, Store, StoreError, StoredRequest, EVENT_BYTES_MAX};

use crate::common::{command, uuid, write_log};

#[test]
fn reopened_log_gives_back_head_events_stream_versions_and_requests() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path()).expect("open a new log");
    let first_group = store
        .append(vec![
            command(1, &["budget/2025", "provider/AG-0012"]),
            command(2, &["budget/2025"]),
        ])
        .expect("append the first group");
    let second_group = store.append(vec![command(3, &[])]).expect("append");
    let third_group = store
        .append(vec![command(
            4,
            &["company/0403019261", "budget/2025", "company/0403019261"],
        )])
        .expect("append the third group");
    let head_before = store.head();
    drop(store);

    let recorded: Vec<_> = [first_group, second_group, third_group]
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let positions: Vec<u64> = recorded.iter().map(|event| event.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5, 6]);

    let store = Store::open(dir.path()).expect("reopen");
    let last = recorded.last().expect("six events");
    assert_eq!(
        head_before,
        Head {
            position: 6,
            hash: last.hash
        }
    );
    assert_eq!(store.head(), head_before);
    assert_eq!(store.read_range(1, 100).expect("read"), recorded);

    assert_eq!(store.stream_version("budget/2025").expect("version"), 3);
    assert_eq!(
        store.stream_version("provider/AG-0012").expect("version"),
        1
    );
    assert_eq!(
        store.stream_version("company/0403019261").expect("version"),
        2
    );
    assert_eq!(
        store.stream_version("company/0000000000").expect("version"),
        0
    );

    let expected_requests = [(1, 1, 2), (2, 3, 1), (3, 4, 0), (4, 4, 3)];
    for (seed, first_position, event_count) in expected_requests {
        assert_eq!(
            store.request(uuid(seed)).expect("request"),
            Some(StoredRequest {
                request_digest: [seed as u8; 32],
                first_position,
                event_count,
                recorded_at: "2025-09-30T10:15:00Z".to_owned(),
            }),
            "request {seed}"
        );
    }
    assert_eq!(store.request(uuid(99)).expect("request"), None);
}

#[test]
fn events_carry_their_place_and_envelope() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path()).expect("open a new log");
    store
        .append(vec![command(1, &["budget/2025"])])
        .expect("append");
    let group = store
        .append(vec![command(2, &["provider/AG-0012", "budget/2025"])])
        .expect("append");

    let recorded = &group[0][1];
    assert_eq!(recorded.position, 3);
    assert_eq!(recorded.prev_hash, group[0][0].hash);
    let event = &recorded.event;
    assert_eq!(event.position, 3);
    assert_eq!(event.stream, "budget/2025");
    assert_eq!(event.stream_version, 2);
    assert_eq!(event.event_id, uuid(0x1_0000 + 201).to_string());
    assert_eq!(event.request_id, uuid(2).to_string());
    assert_eq!(event.principal, "administration");
    assert_eq!(event.business_date, "2025-09-30");
    assert_eq!(
        event.payload,
        Some(Payload::BudgetOpened(BudgetOpened {
            year: 2025,
            allocated_eur: "201.00".to_owned(),
        }))
    );
}

#[test]
fn command_without_events_still_records_its_request() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path()).expect("open a new log");
    let group = store.append(vec![command(7, &[])]).expect("append");
    assert_eq!(group, vec![Vec::new()]);
    assert_eq!(store.head(), Head::EMPTY);
    drop(store);

    let mut store = Store::open(dir.path()).expect("reopen");
    let record = store.request(uuid(7)).expect("request").expect("recorded");
    assert_eq!((record.first_position, record.event_count), (1, 0));

    store
        .append(vec![command(8, &["budget/2025"])])
        .expect("append");
    store.append(vec![command(9, &[])]).expect("append");
    let record = store.request(uuid(9)).expect("request").expect("recorded");
    assert_eq!((record.first_position, record.event_count), (2, 0));
    assert_eq!(store.verify().expect("verify"), Ok(store.head()));
}

#[test]
fn read_range_chains_from_the_entry_before_and_stops_at_the_head() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let recorded = write_log(dir.path(), 6);
    let store = Store::open(dir.path()).expect("reopen");

    let middle = store.read_range(3, 2).expect("read");
    assert_eq!(middle, recorded[2..4].to_vec());
    assert_eq!(middle[0].prev_hash, recorded[1].hash);

    assert_eq!(
        store.read_range(0, 1).expect("read"),
        recorded[..1].to_vec()
    );
    assert_eq!(
        store.read_range(5, 100).expect("read"),
        recorded[4..].to_vec()
    );
    assert_eq!(store.read_range(7, 10).expect("read"), Vec::new());
    assert_eq!(store.read_range(2, 0).expect("read"), Vec::new());
    assert_eq!(
        store.read_range(u64::MAX, usize::MAX).expect("read"),
        Vec::new()
    );
}

#[test]
fn read_all_replays_every_event_in_order() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let recorded = write_log(dir.path(), 5);
    let store = Store::open(dir.path()).expect("reopen");
    let replayed: Vec<_> = store.read_all().collect::<Result<_, _>>().expect("replay");
    assert_eq!(replayed, recorded);
}

#[test]
fn verify_accepts_an_intact_log_and_returns_its_head() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(dir.path()).expect("open a new log");
    assert_eq!(store.verify().expect("verify"), Ok(Head::EMPTY));
    drop(store);

    let recorded = write_log(dir.path(), 10);
    let last = recorded.last().expect("ten events");
    let head = Head {
        position: 10,
        hash: last.hash,
    };
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.verify().expect("verify"), Ok(head));
    drop(store);
    assert_eq!(
        ledger_store::verify_log_at(dir.path()).expect("verify"),
        Ok(head)
    );
}

#[test]
fn a_recorded_request_id_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path()).expect("open a new log");
    store
        .append(vec![command(1, &["budget/2025"])])
        .expect("append");
    let head = store.head();

    let again = store.append(vec![command(2, &["budget/2025"]), command(1, &[])]);
    let refused_id = match again {
        Err(StoreError::RequestAlreadyRecorded { request_id }) => request_id,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refused_id, uuid(1));
    let twice = store.append(vec![command(3, &[]), command(3, &[])]);
    let refused_id = match twice {
        Err(StoreError::RequestAlreadyRecorded { request_id }) => request_id,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refused_id, uuid(3));
    assert_eq!(store.head(), head);
    assert_eq!(store.request(uuid(2)).expect("request"), None);
    assert_eq!(store.request(uuid(3)).expect("request"), None);
    assert_eq!(store.stream_version("budget/2025").expect("version"), 1);
}

#[test]
fn oversized_events_and_stream_names_are_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path()).expect("open a new log");

    let mut large = command(1, &["budget/2025"]);
    large.events[0].payload = Payload::BudgetOpened(BudgetOpened {
        year: 2025,
        allocated_eur: "9".repeat(EVENT_BYTES_MAX),
    });
    let refused = store.append(vec![large]);
    assert!(
        matches!(refused, Err(StoreError::EventTooLarge { .. })),
        "{refused:?}"
    );

    let long_stream = "company/".repeat(40);
    let refused = store.append(vec![command(2, &[long_stream.as_str()])]);
    assert!(
        matches!(refused, Err(StoreError::StreamNameTooLong { .. })),
        "{refused:?}"
    );

    assert_eq!(store.head(), Head::EMPTY);
    assert_eq!(store.request(uuid(1)).expect("request"), None);
}

/// A SIGKILL while sled writes its periodic snapshot leaves `snap.<lsn>.generating`, cut short.
/// sled 0.34 takes it for the latest snapshot and refuses to open; the store removes it first
/// and opens the log as it was (the 500-cycle crash campaign found this).
#[test]
fn an_unfinished_sled_snapshot_left_by_a_crash_does_not_stop_the_log_from_opening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let recorded = write_log(dir.path(), 40);
    let head = Store::open(dir.path()).expect("reopen").head();
    let unfinished = dir.path().join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&unfinished, [0x5a_u8; 100]).expect("write a cut-short snapshot");

    // What sled alone does with it: the reason for the store's clean-up.
    let refused = sled::Config::new().path(dir.path()).open();
    assert!(
        refused.is_err(),
        "sled 0.34 refuses a folder with an unfinished snapshot"
    );
    drop(refused);

    let offline = ledger_store::OfflineLog::open(dir.path()).expect("the offline view opens");
    drop(offline);
    std::fs::write(&unfinished, [0x5a_u8; 100]).expect("write a cut-short snapshot again");
    let store = Store::open(dir.path()).expect("the store opens");
    assert_eq!(store.head(), head);
    assert_eq!(store.read_range(1, 100).expect("read"), recorded);
    assert!(!unfinished.exists(), "the unfinished snapshot is removed");
}

/// sled 0.34 lets go of its file lock a moment after the database is dropped; a reopen in the
/// same process meanwhile failed with `WouldBlock` (the flaky first run of the suite). Here the
/// first handle is dropped 300 ms after the reopen begins: the reopen waits for it.
#[test]
fn a_reopen_in_the_same_process_waits_for_the_lock_of_the_handle_being_dropped() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut first = Store::open(dir.path()).expect("open a new log");
    first
        .append(vec![command(1, &["budget/2025"])])
        .expect("append");
    let head = first.head();
    let dropping = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let reopened = Store::open(dir.path()).expect("the reopen waits for the lock");
    assert_eq!(reopened.head(), head);
    dropping.join().expect("the first handle is dropped");
}

#[test]
fn reopening_at_once_after_every_close_never_fails() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for seed in 1..=30u128 {
        let mut store = Store::open(dir.path()).expect("reopen at once");
        store
            .append(vec![command(seed, &["budget/2025"])])
            .expect("append");
        assert_eq!(store.head().position, seed as u64);
    }
}

/// The wait is bounded: a handle that is never dropped keeps the folder, and the second open
/// fails with sled's lock error after `REOPEN_LOCK_WAIT_MS`, not never.
#[test]
fn a_folder_still_open_in_this_process_is_refused_after_the_bounded_wait() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let held = Store::open(dir.path()).expect("open a new log");
    let started = std::time::Instant::now();
    let error = match Store::open(dir.path()) {
        Ok(_) => panic!("a folder held open cannot be opened twice"),
        Err(error) => error,
    };
    let waited = started.elapsed();
    assert!(
        matches!(error, StoreError::Sled(_)) && error.to_string().contains("lock"),
        "{error}"
    );
    let wait_max = std::time::Duration::from_millis(ledger_store::REOPEN_LOCK_WAIT_MS);
    assert!(waited >= wait_max, "gave up after {waited:?}");
    assert!(waited < wait_max * 4, "waited {waited:?}");
    drop(held);
}

/// The ids already in the log are read into memory in the background after a reopen; once they
/// are, a recorded request id and a named id are still found (through the fingerprints), and an
/// id never recorded is not.
#[test]
fn once_the_indexes_are_loaded_after_a_reopen_recorded_ids_are_still_found() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let named = uuid(0xabc);
    {
        let mut store = Store::open(dir.path()).expect("open a new log");
        let mut with_name = command(1, &["company/0403019261"]);
        with_name.events[0].names = Some(named);
        store
            .append(vec![with_name, command(2, &[])])
            .expect("append");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let waited = std::time::Instant::now();
    while !store.indexes_loaded() {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "the indexes are never loaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for seed in [1, 2] {
        assert!(
            store.request(uuid(seed)).expect("readable").is_some(),
            "request {seed} found after the load"
        );
    }
    assert_eq!(store.request(uuid(3)).expect("readable"), None);
    assert_eq!(store.positions_naming(named).expect("readable"), vec![1]);
    assert!(store
        .positions_naming(uuid(0xdef))
        .expect("readable")
        .is_empty());
}

#[test]
fn with_deferred_index_loading_ids_are_found_before_and_after_the_load() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let named = uuid(0xabc);
    {
        let mut store = Store::open(dir.path()).expect("open a new log");
        let mut with_name = command(1, &["company/0403019261"]);
        with_name.events[0].names = Some(named);
        store
            .append(vec![with_name, command(2, &[])])
            .expect("append");
    }
    let options = ledger_store::StoreOptions {
        defer_index_loading: true,
        ..ledger_store::StoreOptions::default()
    };
    let mut store = Store::open_with_options(dir.path(), options).expect("reopen");
    // Not loaded, and not loading: every lookup goes to sled, and finds what it holds.
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!store.indexes_loaded());
    let check = |store: &Store| {
        for seed in [1, 2] {
            assert!(
                store.request(uuid(seed)).expect("readable").is_some(),
                "request {seed} found"
            );
        }
        assert_eq!(store.request(uuid(3)).expect("readable"), None);
        assert_eq!(store.positions_naming(named).expect("readable"), vec![1]);
    };
    check(&store);
    // An append before the load: its id is refused as recorded after the load too.
    store.append(vec![command(4, &[])]).expect("append");
    store.load_indexes();
    let waited = std::time::Instant::now();
    while !store.indexes_loaded() {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "the indexes are never loaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    check(&store);
    assert!(matches!(
        store.append(vec![command(4, &[])]),
        Err(StoreError::RequestAlreadyRecorded { .. })
    ));
}
