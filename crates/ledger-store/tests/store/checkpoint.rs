//! Checkpoints written before a group, read back after a reopen, and ignored when they no longer
//! match their bytes or the log; the sled records of the checkpoints of earlier versions are
//! removed at open.

use ledger_store::{Head, Store, CHECKPOINT_FILE_NAME};

/// A size of a few kilobytes, which checkpoints once had to be cut into in sled.
const CHECKPOINT_CHUNK_BYTES: usize = 2048;

use crate::common::{command, write_log};

/// Bytes of a checkpoint spanning several chunks, different for each `seed`.
fn checkpoint_bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn a_checkpoint_written_with_a_group_reflects_the_head_before_it_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path(), 3);
    let mut store = Store::open(dir.path()).expect("reopen");
    let head_before = store.head();
    let bytes = checkpoint_bytes(1, 3 * CHECKPOINT_CHUNK_BYTES + 17);
    store
        .append_with_checkpoint(vec![command(100, &["budget/2025"])], Some(&bytes))
        .expect("append");
    assert_eq!(store.head().position, 4);
    drop(store);

    let store = Store::open(dir.path()).expect("reopen");
    let loaded = store
        .load_checkpoint()
        .expect("readable")
        .expect("a checkpoint");
    assert_eq!(
        loaded.head, head_before,
        "the checkpoint reflects the head before its group"
    );
    assert_eq!(loaded.bytes, bytes);
}

#[test]
fn a_smaller_checkpoint_replaces_a_larger_one_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(dir.path()).expect("open");
    let large = checkpoint_bytes(2, 5 * CHECKPOINT_CHUNK_BYTES);
    store
        .append_with_checkpoint(vec![command(1, &["budget/2025"])], Some(&large))
        .expect("append");
    let small = checkpoint_bytes(3, CHECKPOINT_CHUNK_BYTES / 2);
    store
        .append_with_checkpoint(Vec::new(), Some(&small))
        .expect("checkpoint alone");
    let loaded = store
        .load_checkpoint()
        .expect("readable")
        .expect("a checkpoint");
    assert_eq!(loaded.bytes, small);
    assert_eq!(
        loaded.head,
        store.head(),
        "a checkpoint written alone reflects the head"
    );
    assert_eq!(
        store.head().position,
        1,
        "a checkpoint alone writes no event"
    );
}

#[test]
fn no_checkpoint_is_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path(), 2);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.load_checkpoint().expect("readable"), None);
}

#[test]
fn a_damaged_checkpoint_is_ignored_not_trusted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(dir.path()).expect("open");
    let bytes = checkpoint_bytes(4, 2 * CHECKPOINT_CHUNK_BYTES);
    store
        .append_with_checkpoint(vec![command(1, &["budget/2025"])], Some(&bytes))
        .expect("append");
    drop(store);
    {
        let path = dir.path().join(CHECKPOINT_FILE_NAME);
        let mut file = std::fs::read(&path).expect("read");
        // A byte in the middle of the stored body (after the 88-byte header of a compressed
        // checkpoint; the body of two chunks is stored smaller than one).
        let byte = 88 + (file.len() - 88) / 2;
        file[byte] ^= 0xff;
        std::fs::write(&path, file).expect("write");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.load_checkpoint().expect("readable"), None);
}

#[test]
fn a_checkpoint_whose_position_has_another_hash_is_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path(), 2);
    let mut store = Store::open(dir.path()).expect("reopen");
    store
        .append_with_checkpoint(Vec::new(), Some(b"state at 2"))
        .expect("checkpoint");
    drop(store);
    {
        // Rewrite the header to claim another hash at position 2 (kind 8 bytes, position 8).
        let path = dir.path().join(CHECKPOINT_FILE_NAME);
        let mut file = std::fs::read(&path).expect("read");
        file[16] ^= 0xff;
        std::fs::write(&path, file).expect("write");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.load_checkpoint().expect("readable"), None);
    assert_ne!(store.head(), Head::EMPTY);
}

#[test]
fn the_checkpoint_records_of_an_earlier_version_are_removed_at_open_and_not_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path(), 2);
    {
        // What a version that kept checkpoints in sled left: a meta record and chunks.
        let db = crate::common::open_sled_retrying(dir.path());
        db.insert(b"k", vec![0u8; 84]).expect("write");
        db.insert([b'c', 0, 0, 0, 0], vec![1u8; 100])
            .expect("write");
        db.insert([b'c', 0, 0, 0, 1], vec![2u8; 100])
            .expect("write");
        db.flush().expect("flush");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.load_checkpoint().expect("readable"), None);
    drop(store);
    let db = crate::common::open_sled_retrying(dir.path());
    assert_eq!(db.get(b"k").expect("read"), None);
    assert_eq!(db.scan_prefix([b'c']).count(), 0);
    assert_eq!(
        db.scan_prefix([b'e']).count(),
        2,
        "the log itself is untouched"
    );
}

#[test]
fn a_reader_sees_what_the_store_appended() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(dir.path()).expect("open");
    let reader = store.reader();
    assert_eq!(reader.head().expect("head"), Head::EMPTY);
    store
        .append(vec![command(1, &["budget/2025", "budget/2026"])])
        .expect("append");
    assert_eq!(reader.head().expect("head"), store.head());
    let positions: Vec<u64> = reader
        .iter(1, 2)
        .map(|event| event.expect("valid").position)
        .collect();
    assert_eq!(positions, vec![1, 2]);
}
