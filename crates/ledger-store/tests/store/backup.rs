//! Backups: a copy of every record, into a new folder, that opens and verifies as the same log;
//! and the read-only view the offline commands walk.

use ledger_store::{CheckpointFound, Head, OfflineLog, Store, StoreError};

use crate::common::{command, uuid, write_log};

#[test]
fn a_backup_opens_as_the_same_log_with_its_requests_streams_and_checkpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recorded = write_log(dir.path(), 12);
    let mut store = Store::open(dir.path()).expect("reopen");
    store
        .append_with_checkpoint(vec![command(100, &["budget/2025"])], Some(b"state at 12"))
        .expect("append with a checkpoint");
    let target = tempfile::tempdir().expect("temp dir");
    let backup_dir = target.path().join("nested").join("backup");

    let report = store.backup_to(&backup_dir).expect("backup");
    assert_eq!(report.head, store.head());
    assert_eq!(report.path, backup_dir);
    assert!(
        report.records > 13,
        "entries, requests, streams, head, checkpoint"
    );

    let copy = Store::open(&backup_dir).expect("the copy opens");
    assert_eq!(copy.head(), store.head());
    assert_eq!(copy.verify().expect("verify runs"), Ok(store.head()));
    assert_eq!(
        copy.request(uuid(5)).expect("readable"),
        store.request(uuid(5)).expect("readable")
    );
    assert!(copy.request(uuid(5)).expect("readable").is_some());
    assert_eq!(
        copy.stream_version("budget/2025").expect("readable"),
        store.stream_version("budget/2025").expect("readable")
    );
    let copied: Vec<_> = copy.read_range(1, 12).expect("the copied events read back");
    assert_eq!(copied, recorded);
    let checkpoint = copy.load_checkpoint().expect("readable").expect("copied");
    assert_eq!(checkpoint.bytes, b"state at 12");
}

#[test]
fn a_backup_goes_into_an_empty_folder_and_never_over_another_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path(), 3);
    let store = Store::open(dir.path()).expect("reopen");

    let empty = tempfile::tempdir().expect("temp dir");
    let report = store
        .backup_to(empty.path())
        .expect("an empty folder is fine");
    assert_eq!(report.head.position, 3);

    let error = store
        .backup_to(empty.path())
        .expect_err("the folder now holds a store");
    assert!(
        matches!(error, StoreError::BackupTargetNotEmpty { .. }),
        "{error:?}"
    );
    let error = store
        .backup_to(dir.path())
        .expect_err("never over the log itself");
    assert!(
        matches!(error, StoreError::BackupTargetNotEmpty { .. }),
        "{error:?}"
    );
}

#[test]
fn an_empty_log_backs_up_to_an_empty_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open");
    let target = tempfile::tempdir().expect("temp dir");
    let report = store.backup_to(target.path()).expect("backup");
    assert_eq!(report.head, Head::EMPTY);
    assert_eq!(
        Store::open(target.path()).expect("opens").head(),
        Head::EMPTY
    );
}

#[test]
fn the_offline_view_walks_every_entry_and_finds_the_checkpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recorded = write_log(dir.path(), 5);
    let mut store = Store::open(dir.path()).expect("reopen");
    store
        .append_with_checkpoint(Vec::new(), Some(b"state at 5"))
        .expect("checkpoint");
    let head = store.head();
    drop(store);

    let log = OfflineLog::open(dir.path()).expect("opens");
    let mut walk = log.walk();
    let walked: Vec<_> = walk
        .by_ref()
        .collect::<Result<_, _>>()
        .expect("an intact chain");
    assert_eq!(walked, recorded);
    assert_eq!(walk.last_entry(), head);
    assert_eq!(walk.finish().expect("runs"), Ok(head));
    assert_eq!(log.stored_head().expect("readable"), Some(head));
    match log.checkpoint().expect("readable") {
        CheckpointFound::Intact(checkpoint) => {
            assert_eq!(checkpoint.head, head);
            assert_eq!(checkpoint.bytes, b"state at 5");
        }
        other => panic!("expected the checkpoint, found {other:?}"),
    }
    let tail: Vec<_> = log
        .reader()
        .iter(4, 5)
        .collect::<Result<_, _>>()
        .expect("readable");
    assert_eq!(tail, recorded[3..]);
}

#[test]
fn the_offline_view_refuses_a_folder_without_a_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = OfflineLog::open(dir.path()).expect_err("no log there");
    assert!(matches!(error, StoreError::LogMissing { .. }), "{error:?}");
}
