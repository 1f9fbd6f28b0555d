//! sled's database rewritten after a seal (the `rewrite` module): the folder shrinks, every
//! record reads back through every path, a rewrite is done only when a seal happened since the
//! last, and a rewrite or a switch cut short by a crash is undone or finished at the next open.

use std::path::Path;

use ledger_store::{
    rewrite_db, rewrite_db_if_sealed, OfflineLog, RecordedEvent, Store, StoreOptions,
    REWRITE_DIR_NAME,
};

use crate::common::{uuid, write_log};

/// Small segments, so that a short log seals most of itself.
fn options() -> StoreOptions {
    StoreOptions {
        segment_len_events: 500,
        ..StoreOptions::default()
    }
}

/// Opens the log and seals what lies at or below its head, as the save of the fingerprints
/// with a checkpoint does; then closes it.
fn seal(dir: &Path) {
    let store = Store::open_with_options(dir, options()).expect("open");
    let snapshot = store.fingerprint_snapshot().expect("a sled log");
    store
        .fingerprint_file()
        .expect("a sled log")
        .save(&snapshot)
        .expect("saved");
}

fn db_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("db"))
        .expect("sled's file")
        .len()
}

/// Every read path gives back `expected`, and every command's request record answers.
fn everything_reads_back(dir: &Path, expected: &[RecordedEvent]) {
    let store = Store::open_with_options(dir, options()).expect("open");
    assert_eq!(store.head().position, expected.len() as u64);
    let all: Vec<RecordedEvent> = store.read_all().map(|event| event.expect("read")).collect();
    assert_eq!(all, expected, "read_all");
    for event in expected.iter().step_by(97) {
        assert_eq!(
            &store.reader().read_at(event.position).expect("read_at"),
            event
        );
    }
    // `write_log` gives command `index + 1` the position `index + 1`: an idempotent retry of
    // any of them finds its first answer.
    for seed in [1u64, 250, 1_000, expected.len() as u64] {
        let record = store
            .request(uuid(u128::from(seed)))
            .expect("read")
            .expect("the request record is still there");
        assert_eq!(record.first_position, seed);
    }
    assert_eq!(store.verify().expect("verify runs"), Ok(store.head()));
    drop(store);
    let offline = OfflineLog::open(dir).expect("offline");
    let walked: Vec<RecordedEvent> = offline.walk().map(|event| event.expect("walk")).collect();
    assert_eq!(walked, expected, "the walk of verify and export");
}

#[test]
fn a_rewrite_after_a_seal_shrinks_sled_and_keeps_every_record() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 2_100);
    seal(dir.path());
    let before = db_bytes(dir.path());

    let rewrite = rewrite_db_if_sealed(dir.path(), 0)
        .expect("rewrite runs")
        .expect("entries were sealed since the last rewrite");
    assert_eq!(rewrite.db_bytes_before, before);
    assert!(
        rewrite.db_bytes_after < rewrite.db_bytes_before,
        "sled's file shrinks: {rewrite:?}"
    );
    assert_eq!(db_bytes(dir.path()), rewrite.db_bytes_after);
    assert!(!dir.path().join(REWRITE_DIR_NAME).exists(), "no copy left");
    everything_reads_back(dir.path(), &expected);

    assert_eq!(
        rewrite_db_if_sealed(dir.path(), 0).expect("runs"),
        None,
        "nothing sealed since"
    );
    // The log goes on after the rewrite.
    let mut store = Store::open_with_options(dir.path(), options()).expect("open");
    let more = store
        .append(vec![crate::common::command(5_000, &["budget/2025"])])
        .expect("append");
    assert_eq!(more[0][0].position, 2_101);
}

#[test]
fn no_rewrite_without_a_seal_since_the_last_or_below_the_size() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 1_200);
    assert_eq!(
        rewrite_db_if_sealed(dir.path(), 0).expect("runs"),
        None,
        "nothing ever sealed"
    );
    seal(dir.path());
    assert_eq!(
        rewrite_db_if_sealed(dir.path(), u64::MAX).expect("runs"),
        None,
        "sealed, but sled's file is below the size worth a rewrite"
    );
    assert!(rewrite_db_if_sealed(dir.path(), 0).expect("runs").is_some());
}

/// A rewrite cut short before its marker: the copy is removed at the next open, and the old
/// database, untouched, is the log.
#[test]
fn a_rewrite_cut_short_before_its_marker_is_removed_at_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(dir.path(), 1_200);
    seal(dir.path());
    let staging = dir.path().join(REWRITE_DIR_NAME);
    std::fs::create_dir(&staging).expect("copy folder");
    std::fs::write(staging.join("db"), b"half a database").expect("half a copy");

    everything_reads_back(dir.path(), &expected);
    assert!(!staging.exists(), "the unfinished copy removed");
}

/// A switch cut short after its marker, at every step: the next open finishes it and the log
/// is whole, on the rewritten database.
#[test]
fn a_switch_cut_short_after_its_marker_is_finished_at_open() {
    // The folder as the copy left it, and the same folder rewritten: what the switch takes
    // from the first to the second.
    let source = tempfile::tempdir().expect("temporary directory");
    let expected = write_log(source.path(), 1_200);
    seal(source.path());
    let rewritten = tempfile::tempdir().expect("temporary directory");
    copy_folder(source.path(), rewritten.path());
    rewrite_db(rewritten.path()).expect("rewritten");
    let copy_names: Vec<String> = sled_file_names(rewritten.path());

    // Cut after the marker, after the old files' removal, and after part of the moves.
    for moved in [None, Some(0usize), Some(1)] {
        let crashed = tempfile::tempdir().expect("temporary directory");
        copy_folder(source.path(), crashed.path());
        let staging = crashed.path().join(REWRITE_DIR_NAME);
        std::fs::create_dir(&staging).expect("copy folder");
        for name in &copy_names {
            copy_any(&rewritten.path().join(name), &staging.join(name));
        }
        std::fs::write(
            crashed.path().join("sled-rewrite.switch"),
            copy_names.join("\n"),
        )
        .expect("marker");
        if let Some(moved) = moved {
            for name in sled_file_names(crashed.path()) {
                if !copy_names.contains(&name) {
                    remove_any(&crashed.path().join(&name));
                }
            }
            for name in copy_names.iter().take(moved) {
                let to = crashed.path().join(name);
                remove_any(&to);
                std::fs::rename(staging.join(name), to).expect("moved");
            }
        }

        everything_reads_back(crashed.path(), &expected);
        assert!(!staging.exists(), "the copy moved in ({moved:?})");
        assert!(!crashed.path().join("sled-rewrite.switch").exists());
        assert_eq!(
            db_bytes(crashed.path()),
            db_bytes(rewritten.path()),
            "the rewritten database is the log ({moved:?})"
        );
    }
}

/// The names of sled's files at the top of a data folder.
fn sled_file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listed")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| {
            name == "db" || name == "conf" || name == "blobs" || name.starts_with("snap.")
        })
        .collect();
    names.sort();
    names
}

fn copy_any(from: &Path, to: &Path) {
    if from.is_dir() {
        copy_folder(from, to);
    } else {
        std::fs::copy(from, to).expect("copied");
    }
}

fn remove_any(path: &Path) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).expect("removed");
    } else if path.exists() {
        std::fs::remove_file(path).expect("removed");
    }
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("listed") {
        let entry = entry.expect("entry");
        copy_any(&entry.path(), &to.join(entry.file_name()));
    }
}
