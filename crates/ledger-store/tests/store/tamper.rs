//! Edits made behind the store's back, straight through sled, and the break `verify` reports.

use std::path::Path;

use ledger_proto::event::v1::{Event, LogEntry};
use ledger_store::{
    chain_hash, verify_log_at, ChainBreak, ChainBreakKind, Head, Store, StoreError,
};
use prost::Message;

use crate::common::write_log;

fn entry_key(position: u64) -> Vec<u8> {
    let mut key = vec![b'e'];
    key.extend_from_slice(&position.to_be_bytes());
    key
}

/// Opens the log directory as a plain sled database, lets `edit` change it, and closes it.
fn tamper(dir: &Path, edit: impl FnOnce(&sled::Db)) {
    let db = crate::common::open_sled_retrying(dir);
    edit(&db);
    db.flush().expect("flush sled");
}

fn read_entry(db: &sled::Db, position: u64) -> LogEntry {
    let value = db.get(entry_key(position)).expect("get").expect("entry");
    LogEntry::decode(value.as_ref()).expect("decode entry")
}

fn break_found_by_verify(dir: &Path) -> ChainBreak {
    verify_log_at(dir)
        .expect("verify runs")
        .expect_err("the chain is broken")
}

#[test]
fn flipped_event_byte_is_caught_at_its_position() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 8);
    tamper(dir.path(), |db| {
        let mut entry = read_entry(db, 4);
        let last = entry.event.len() - 1;
        entry.event[last] ^= 0x01;
        db.insert(entry_key(4), entry.encode_to_vec())
            .expect("insert");
    });

    let chain_break = break_found_by_verify(dir.path());
    assert_eq!(chain_break.position, 4);
    assert!(
        matches!(
            chain_break.kind,
            ChainBreakKind::HashMismatch { .. } | ChainBreakKind::EventUndecodable { .. }
        ),
        "{chain_break:?}"
    );

    // The tail is intact, so the store opens; its own verify and its reads find the break.
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(
        store.verify().expect("verify runs"),
        Err(chain_break.clone())
    );
    let replayed: Vec<_> = store.read_all().collect();
    assert_eq!(replayed.len(), 4);
    assert!(replayed[..3].iter().all(Result::is_ok));
    assert!(
        matches!(&replayed[3], Err(StoreError::ChainBroken(found)) if *found == chain_break),
        "{:?}",
        replayed[3]
    );
    assert!(matches!(
        store.read_range(2, 5),
        Err(StoreError::ChainBroken(_))
    ));
}

#[test]
fn undecodable_entry_is_caught_at_its_position() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 5);
    tamper(dir.path(), |db| {
        db.insert(entry_key(2), vec![0xff, 0xff, 0xff])
            .expect("insert");
    });

    let chain_break = break_found_by_verify(dir.path());
    assert_eq!(chain_break.position, 2);
    assert!(
        matches!(chain_break.kind, ChainBreakKind::EntryUndecodable { .. }),
        "{chain_break:?}"
    );
}

#[test]
fn deleted_middle_entry_is_reported_as_a_gap() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 8);
    tamper(dir.path(), |db| {
        db.remove(entry_key(5)).expect("remove");
    });

    assert_eq!(
        break_found_by_verify(dir.path()),
        ChainBreak {
            position: 5,
            kind: ChainBreakKind::Gap {
                expected: 5,
                found: 6
            },
        }
    );
}

#[test]
fn swapped_entries_are_caught_at_the_first_swapped_position() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 8);
    tamper(dir.path(), |db| {
        let third = db.get(entry_key(3)).expect("get").expect("entry");
        let sixth = db.get(entry_key(6)).expect("get").expect("entry");
        db.insert(entry_key(3), sixth).expect("insert");
        db.insert(entry_key(6), third).expect("insert");
    });

    let chain_break = break_found_by_verify(dir.path());
    assert_eq!(chain_break.position, 3);
    assert!(
        matches!(chain_break.kind, ChainBreakKind::HashMismatch { .. }),
        "{chain_break:?}"
    );
}

#[test]
fn truncated_tail_is_reported_as_a_head_mismatch_and_refused_at_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let recorded = write_log(dir.path(), 8);
    tamper(dir.path(), |db| {
        db.remove(entry_key(8)).expect("remove");
        db.remove(entry_key(7)).expect("remove");
    });

    let expected = ChainBreak {
        position: 7,
        kind: ChainBreakKind::HeadMismatch {
            stored_head: Head {
                position: 8,
                hash: recorded[7].hash,
            },
            last_entry: Head {
                position: 6,
                hash: recorded[5].hash,
            },
        },
    };
    assert_eq!(break_found_by_verify(dir.path()), expected);
    let refused = Store::open(dir.path());
    assert!(
        matches!(&refused, Err(StoreError::ChainBroken(found)) if *found == expected),
        "{refused:?}"
    );
}

#[test]
fn changed_head_hash_is_a_head_mismatch_at_the_last_position() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 3);
    tamper(dir.path(), |db| {
        let mut record = db.get(b"h").expect("get").expect("head").to_vec();
        record[39] ^= 0x80;
        db.insert(b"h", record).expect("insert");
    });

    let chain_break = break_found_by_verify(dir.path());
    assert_eq!(chain_break.position, 3);
    assert!(
        matches!(chain_break.kind, ChainBreakKind::HeadMismatch { .. }),
        "{chain_break:?}"
    );
    assert!(Store::open(dir.path()).is_err());
}

#[test]
fn renumbered_event_with_a_rebuilt_chain_is_a_position_mismatch() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_log(dir.path(), 6);
    tamper(dir.path(), |db| {
        // Change the position inside event 3, then recompute every hash from there on and the
        // head, as a forger who knows the hash function would.
        let mut prev_hash: [u8; 32] = read_entry(db, 2).hash.try_into().expect("32 bytes");
        for position in 3..=6 {
            let mut entry = read_entry(db, position);
            if position == 3 {
                let mut event = Event::decode(entry.event.as_slice()).expect("decode event");
                event.position = 9;
                entry.event = event.encode_to_vec();
            }
            prev_hash = chain_hash(&prev_hash, position, &entry.event);
            entry.hash = prev_hash.to_vec();
            db.insert(entry_key(position), entry.encode_to_vec())
                .expect("insert");
        }
        let mut head = 6u64.to_be_bytes().to_vec();
        head.extend_from_slice(&prev_hash);
        db.insert(b"h", head).expect("insert");
    });

    assert_eq!(
        break_found_by_verify(dir.path()),
        ChainBreak {
            position: 3,
            kind: ChainBreakKind::PositionMismatch { event_position: 9 },
        }
    );
}

#[test]
fn verify_log_at_refuses_a_directory_without_a_log() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("no-log-here");
    let refused = verify_log_at(&missing);
    assert!(
        matches!(refused, Err(StoreError::LogMissing { .. })),
        "{refused:?}"
    );
    assert!(!missing.exists());
}
