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
