//! Checkpoints written with a group, read back after a reopen, and ignored when they no longer
//! match their bytes or the log.

use ledger_store::{Head, Store, CHECKPOINT_CHUNK_BYTES};

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
        let db = crate::common::open_sled_retrying(dir.path());
        let key = [b'c', 0, 0, 0, 1];
        let mut chunk = db.get(key).expect("read").expect("chunk 1").to_vec();
        chunk[10] ^= 0xff;
        db.insert(key, chunk).expect("write");
        db.flush().expect("flush");
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
        // Rewrite the meta record to claim another hash at position 2.
        let db = crate::common::open_sled_retrying(dir.path());
        let mut meta = db.get(b"k").expect("read").expect("meta").to_vec();
        meta[8] ^= 0xff;
        db.insert(b"k", meta).expect("write");
        db.flush().expect("flush");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.load_checkpoint().expect("readable"), None);
    assert_ne!(store.head(), Head::EMPTY);
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
