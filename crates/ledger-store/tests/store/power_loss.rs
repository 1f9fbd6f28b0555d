//! The store's syncs against a power cut: a log on `ledger-powerfs`, a filesystem that forgets
//! what was not `fsync`ed (file contents, and names whose directory was not synced). Skipped,
//! with a line saying so, where FUSE cannot be mounted.

use std::fs;

use ledger_powerfs::{PowerCut, PowerFs};
use ledger_store::Store;
use tempfile::TempDir;

use crate::common::command;

/// The folders of a power-loss filesystem and the mounted filesystem (bound in this order, so
/// that it is unmounted before its folders are removed), or `None` (said) where FUSE cannot be
/// mounted.
fn mount(test: &str) -> Option<(TempDir, PowerFs)> {
    let folders = tempfile::tempdir().expect("a temporary folder");
    let (disk, mountpoint) = (folders.path().join("disk"), folders.path().join("mnt"));
    fs::create_dir(&disk).expect("the disk folder");
    fs::create_dir(&mountpoint).expect("the mountpoint");
    match PowerFs::mount(&disk, &mountpoint) {
        Ok(power) => Some((folders, power)),
        Err(error) => {
            println!("skipped {test}: cannot mount a FUSE filesystem here ({error})");
            None
        }
    }
}

#[test]
fn appended_events_of_a_new_log_folder_survive_a_power_cut() {
    let Some((_folders, mut power)) = mount("appended_events_of_a_new_log_folder_survive") else {
        return;
    };
    // A folder the store creates (through sled), as the server does on its first start.
    let dir = power.mountpoint().join("log");
    let head = {
        let mut store = Store::open(&dir).expect("open a new log");
        for seed in 1..=20 {
            store
                .append(vec![command(seed, &["budget/2025"])])
                .expect("append");
        }
        store.head()
    };

    power
        .cut_power(PowerCut::DiscardAll)
        .expect("power cut and remount");

    let store = Store::open(&dir).expect("the log opens after the cut");
    assert_eq!(store.head(), head, "every appended event is still there");
    assert_eq!(
        store.verify().expect("verify runs"),
        Ok(head),
        "and the chain is sound"
    );
}

/// A seal moves entries from sled to a segment file while the log goes on: after a power cut
/// right after it (all unsynced writes lost, or a seeded part of them written back), the log
/// opens at the head it had, every entry reads back and the chain holds.
#[test]
fn sealed_segments_survive_a_power_cut() {
    for cut in [
        PowerCut::DiscardAll,
        PowerCut::InOrder { seed: 1 },
        PowerCut::InOrder { seed: 2 },
        PowerCut::Reordered { seed: 3 },
    ] {
        let Some((_folders, mut power)) = mount("sealed_segments_survive_a_power_cut") else {
            return;
        };
        let dir = power.mountpoint().join("log");
        let options = ledger_store::StoreOptions {
            segment_len_events: 7,
            ..ledger_store::StoreOptions::default()
        };
        let (head, events) = {
            let mut store = Store::open_with_options(&dir, options.clone()).expect("open");
            append_and_seal(&mut store, 1..=30, "saved, and four segments sealed");
            for seed in 31..=33 {
                store
                    .append(vec![command(seed, &["budget/2025"])])
                    .expect("append");
            }
            let events: Vec<_> = store.read_all().map(|event| event.expect("read")).collect();
            (store.head(), events)
        };
        power.cut_power(cut).expect("power cut and remount");
        assert_the_log_after_the_cut(&dir, options, head, &events, cut);
    }
}

/// Appends one command per seed, then saves the fingerprints, which seals every whole segment
/// at or below the head (`sealed` says how many the caller expects).
fn append_and_seal(store: &mut Store, seeds: std::ops::RangeInclusive<u128>, sealed: &str) {
    for seed in seeds {
        store
            .append(vec![command(seed, &["budget/2025"])])
            .expect("append");
    }
    let snapshot = store.fingerprint_snapshot().expect("a sled log");
    store
        .fingerprint_file()
        .expect("a sled log")
        .save(&snapshot)
        .expect(sealed);
}

/// After the cut, the log in `dir` opens at `head`, reads back `events` and verifies.
fn assert_the_log_after_the_cut(
    dir: &std::path::Path,
    options: ledger_store::StoreOptions,
    head: ledger_store::Head,
    events: &[ledger_store::RecordedEvent],
    cut: PowerCut,
) {
    let store = Store::open_with_options(dir, options).expect("the log opens after the cut");
    assert_eq!(
        store.head(),
        head,
        "every appended event is still there ({cut:?})"
    );
    let read: Vec<_> = store.read_all().map(|event| event.expect("read")).collect();
    assert_eq!(read, events, "and reads back the same ({cut:?})");
    assert_eq!(store.verify().expect("verify runs"), Ok(head), "{cut:?}");
}

/// sled's database rewritten after a seal (a clean stop does it): after a power cut right
/// after the rewrite (all unsynced writes lost, or a seeded part of them written back), the
/// log opens at the head it had and every entry reads back, on whichever database the cut left.
#[test]
fn a_rewritten_database_survives_a_power_cut() {
    for cut in [
        PowerCut::DiscardAll,
        PowerCut::InOrder { seed: 4 },
        PowerCut::Reordered { seed: 5 },
    ] {
        let Some((_folders, mut power)) = mount("a_rewritten_database_survives_a_power_cut") else {
            return;
        };
        let dir = power.mountpoint().join("log");
        let options = ledger_store::StoreOptions {
            segment_len_events: 20,
            ..ledger_store::StoreOptions::default()
        };
        let (head, events) = {
            let mut store = Store::open_with_options(&dir, options.clone()).expect("open");
            append_and_seal(&mut store, 1..=50, "saved, and two segments sealed");
            let events: Vec<_> = store.read_all().map(|event| event.expect("read")).collect();
            (store.head(), events)
        };
        ledger_store::rewrite_db(&dir).expect("rewritten");
        power.cut_power(cut).expect("power cut and remount");
        assert_the_log_after_the_cut(&dir, options, head, &events, cut);
    }
}
