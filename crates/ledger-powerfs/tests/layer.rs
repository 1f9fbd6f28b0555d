//! The power-loss layer on a real FUSE mount: what a cut keeps and what it loses.
//!
//! Each test mounts a fresh disk folder, works through the mount with ordinary file calls,
//! cuts the power and looks at what is left. Where FUSE cannot be mounted (no `/dev/fuse`, not
//! root) each test prints why and passes without checking anything; here and in CI it mounts.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ledger_powerfs::{PowerCut, PowerFs, BLOCK_BYTES, SECTOR_BYTES};
use tempfile::TempDir;

struct Mounted {
    fs: PowerFs,
    _folders: TempDir,
}

impl Mounted {
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.fs.mountpoint().join(name)
    }
}

/// Mounts a fresh filesystem, or says why it cannot and returns `None`.
fn mount(test: &str) -> Option<Mounted> {
    let folders = tempfile::tempdir().expect("temporary folder");
    let disk = folders.path().join("disk");
    let mountpoint = folders.path().join("mnt");
    fs::create_dir(&disk).expect("disk folder");
    fs::create_dir(&mountpoint).expect("mountpoint");
    match PowerFs::mount(&disk, &mountpoint) {
        Ok(fs) => Some(Mounted {
            fs,
            _folders: folders,
        }),
        Err(error) => {
            println!("skipped {test}: cannot mount a FUSE filesystem here ({error})");
            None
        }
    }
}

fn sync_directory(path: &Path) {
    File::open(path)
        .and_then(|directory| directory.sync_all())
        .expect("sync of the directory");
}

#[test]
fn a_synced_write_survives_a_cut() {
    let Some(mut mounted) = mount("a_synced_write_survives_a_cut") else {
        return;
    };
    let path = mounted.path("data");
    let mut file = File::create(&path).expect("create");
    file.write_all(b"durable").expect("write");
    file.sync_data().expect("fdatasync");
    sync_directory(mounted.fs.mountpoint());
    drop(file);

    mounted.fs.cut_power(PowerCut::DiscardAll).expect("cut");

    assert_eq!(fs::read(&path).expect("read after the cut"), b"durable");
}

#[test]
fn an_unsynced_write_is_lost_and_the_synced_content_comes_back() {
    let Some(mut mounted) = mount("an_unsynced_write_is_lost") else {
        return;
    };
    let path = mounted.path("data");
    let mut file = File::create(&path).expect("create");
    file.write_all(&[1; 10_000]).expect("write");
    file.sync_all().expect("fsync");
    sync_directory(mounted.fs.mountpoint());
    // Overwrite a range across two blocks and grow the file, without syncing.
    file.write_all_at(&[2; 5_000], 3_000).expect("overwrite");
    file.write_all_at(&[3; 20_000], 10_000).expect("append");
    assert_eq!(fs::metadata(&path).expect("stat").len(), 30_000);
    drop(file);

    let report = mounted.fs.cut_power(PowerCut::DiscardAll).expect("cut");

    assert_eq!(
        fs::read(&path).expect("read after the cut"),
        vec![1; 10_000]
    );
    assert!(report.blocks_lost >= 7, "{report:?}");
    assert_eq!(report.blocks_kept + report.blocks_torn, 0, "{report:?}");
}

#[test]
fn a_truncation_not_synced_is_undone() {
    let Some(mut mounted) = mount("a_truncation_not_synced_is_undone") else {
        return;
    };
    let path = mounted.path("data");
    let content: Vec<u8> = (0..9_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&path, &content).expect("write");
    File::open(&path).and_then(|f| f.sync_all()).expect("fsync");
    sync_directory(mounted.fs.mountpoint());
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(100))
        .expect("truncate");

    mounted.fs.cut_power(PowerCut::DiscardAll).expect("cut");

    assert_eq!(fs::read(&path).expect("read after the cut"), content);
}

#[test]
fn a_new_file_synced_but_not_its_directory_is_lost() {
    let Some(mut mounted) = mount("a_new_file_synced_but_not_its_directory_is_lost") else {
        return;
    };
    let path = mounted.path("new");
    let mut file = File::create(&path).expect("create");
    file.write_all(b"content").expect("write");
    file.sync_all()
        .expect("fsync of the file, not of its directory");
    drop(file);

    let report = mounted.fs.cut_power(PowerCut::DiscardAll).expect("cut");

    assert!(!path.exists(), "the name was never made durable");
    assert_eq!(report.names_lost, 1, "{report:?}");
}

#[test]
fn a_new_folder_synced_with_its_files_but_not_in_its_parent_is_lost_with_them() {
    let Some(mut mounted) = mount("a_new_folder_synced_but_not_in_its_parent") else {
        return;
    };
    let folder = mounted.path("log");
    fs::create_dir(&folder).expect("mkdir");
    let mut file = File::create(folder.join("db")).expect("create");
    file.write_all(b"acknowledged").expect("write");
    file.sync_all().expect("fsync of the file");
    sync_directory(&folder);
    drop(file);

    mounted
        .fs
        .cut_power(PowerCut::DiscardAll)
        .expect("first cut");

    assert!(
        !folder.exists(),
        "the folder's name in its parent was never synced"
    );

    fs::create_dir(&folder).expect("mkdir again");
    let mut file = File::create(folder.join("db")).expect("create");
    file.write_all(b"acknowledged").expect("write");
    file.sync_all().expect("fsync of the file");
    sync_directory(&folder);
    sync_directory(mounted.fs.mountpoint());
    drop(file);

    mounted
        .fs
        .cut_power(PowerCut::DiscardAll)
        .expect("second cut");

    assert_eq!(
        fs::read(folder.join("db")).expect("the parent was synced too"),
        b"acknowledged"
    );
}

#[test]
fn a_rename_without_a_directory_sync_is_lost_and_with_one_survives() {
    let Some(mut mounted) = mount("a_rename_without_a_directory_sync") else {
        return;
    };
    let directory = mounted.fs.mountpoint().to_path_buf();
    let (old, new) = (mounted.path("snap.generating"), mounted.path("snap"));
    let mut file = File::create(&old).expect("create");
    file.write_all(b"snapshot").expect("write");
    file.sync_all().expect("fsync");
    drop(file);
    sync_directory(&directory);
    fs::rename(&old, &new).expect("rename");

    mounted
        .fs
        .cut_power(PowerCut::DiscardAll)
        .expect("first cut");

    assert!(!new.exists(), "the rename was not made durable");
    assert_eq!(fs::read(&old).expect("the old name is back"), b"snapshot");

    fs::rename(&old, &new).expect("rename again");
    sync_directory(&directory);
    mounted
        .fs
        .cut_power(PowerCut::DiscardAll)
        .expect("second cut");

    assert!(!old.exists());
    assert_eq!(fs::read(&new).expect("renamed for good"), b"snapshot");
}

#[test]
fn a_rename_over_a_file_brings_the_replaced_file_back_after_a_cut() {
    let Some(mut mounted) = mount("a_rename_over_a_file") else {
        return;
    };
    let (conf, temporary) = (mounted.path("conf"), mounted.path("conf.in"));
    for (path, content) in [(&conf, b"old".as_slice()), (&temporary, b"new".as_slice())] {
        let mut file = File::create(path).expect("create");
        file.write_all(content).expect("write");
        file.sync_all().expect("fsync");
    }
    sync_directory(mounted.fs.mountpoint());
    fs::rename(&temporary, &conf).expect("rename over");
    assert_eq!(fs::read(&conf).expect("read"), b"new");

    mounted.fs.cut_power(PowerCut::DiscardAll).expect("cut");

    assert_eq!(fs::read(&conf).expect("read"), b"old");
    assert_eq!(fs::read(&temporary).expect("read"), b"new");
}

#[test]
fn a_removal_without_a_directory_sync_is_undone() {
    let Some(mut mounted) = mount("a_removal_without_a_directory_sync_is_undone") else {
        return;
    };
    let (kept, removed) = (mounted.path("kept"), mounted.path("removed"));
    fs::write(&kept, b"k").expect("write");
    fs::write(&removed, b"r").expect("write");
    for path in [&kept, &removed] {
        File::open(path).and_then(|f| f.sync_all()).expect("fsync");
    }
    sync_directory(mounted.fs.mountpoint());
    fs::remove_file(&removed).expect("remove");
    fs::create_dir(mounted.path("folder")).expect("mkdir");
    assert!(!removed.exists());

    mounted.fs.cut_power(PowerCut::DiscardAll).expect("cut");

    assert_eq!(fs::read(&removed).expect("back"), b"r");
    assert_eq!(fs::read(&kept).expect("kept"), b"k");
    assert!(!mounted.path("folder").exists());
}

#[test]
fn a_torn_write_keeps_the_first_sectors_of_each_block() {
    let Some(mut mounted) = mount("a_torn_write_keeps_the_first_sectors_of_each_block") else {
        return;
    };
    let path = mounted.path("log");
    let block = usize::try_from(BLOCK_BYTES).expect("block size");
    let sector = usize::try_from(SECTOR_BYTES).expect("sector size");
    let mut file = File::create(&path).expect("create");
    file.write_all(&vec![1; block]).expect("write");
    file.sync_data().expect("fdatasync");
    sync_directory(mounted.fs.mountpoint());
    // One write over the first block and into a second one, never synced.
    file.write_all_at(&vec![2; 2 * block], 0).expect("write");
    drop(file);

    let report = mounted
        .fs
        .cut_power(PowerCut::TornSectors { sectors: 2 })
        .expect("cut");

    let after = fs::read(&path).expect("read after the cut");
    let mut expected = vec![2; 2 * sector];
    expected.extend(vec![1; block - 2 * sector]);
    expected.extend(vec![2; 2 * sector]);
    assert_eq!(
        after.len(),
        expected.len(),
        "the kept sectors of the second block lengthen it"
    );
    assert_eq!(after, expected);
    assert_eq!(report.blocks_torn, 2, "{report:?}");
}

#[test]
fn a_reordered_cut_leaves_each_sector_old_or_new() {
    let Some(mut mounted) = mount("a_reordered_cut_leaves_each_sector_old_or_new") else {
        return;
    };
    let path = mounted.path("log");
    let blocks = 64;
    let len = usize::try_from(BLOCK_BYTES).expect("block size") * blocks;
    let mut file = File::create(&path).expect("create");
    file.write_all(&vec![1; len]).expect("write");
    file.sync_data().expect("fdatasync");
    sync_directory(mounted.fs.mountpoint());
    file.write_all_at(&vec![2; len], 0)
        .expect("overwrite, not synced");
    drop(file);

    let report = mounted
        .fs
        .cut_power(PowerCut::Reordered { seed: 42 })
        .expect("cut");

    let after = fs::read(&path).expect("read after the cut");
    assert_eq!(after.len(), len);
    let sector = usize::try_from(SECTOR_BYTES).expect("sector size");
    for chunk in after.chunks(sector) {
        assert!(
            chunk.iter().all(|b| *b == 1) || chunk.iter().all(|b| *b == 2),
            "a sector is old or new, never mixed"
        );
    }
    assert!(
        report.blocks_lost > 0 && report.blocks_kept > 0 && report.blocks_torn > 0,
        "{report:?}"
    );
    assert!(after.contains(&1) && after.contains(&2));
}

#[test]
fn an_in_order_cut_keeps_the_first_unsynced_writes_and_tears_one() {
    let Some(mut mounted) = mount("an_in_order_cut_keeps_the_first_unsynced_writes") else {
        return;
    };
    let path = mounted.path("log");
    let block = usize::try_from(BLOCK_BYTES).expect("block size");
    let sector = usize::try_from(SECTOR_BYTES).expect("sector size");
    let blocks = 32;
    let mut file = File::create(&path).expect("create");
    file.write_all(b"").expect("write");
    file.sync_data().expect("fdatasync");
    sync_directory(mounted.fs.mountpoint());
    // Appends, one block each, never synced: block i holds the byte i + 1.
    for index in 0..blocks {
        file.write_all(&vec![index as u8 + 1; block])
            .expect("append");
    }
    drop(file);

    let report = mounted
        .fs
        .cut_power(PowerCut::InOrder { seed: 7 })
        .expect("cut");

    // What is left is a prefix of the appends: whole blocks, then at most one torn one, cut
    // at a sector boundary.
    let after = fs::read(&path).expect("read after the cut");
    assert_eq!(
        after.len() % sector,
        0,
        "the file ends at a sector boundary"
    );
    for (offset, byte) in after.iter().enumerate() {
        assert_eq!(usize::from(*byte), offset / block + 1, "byte {offset}");
    }
    assert!(report.blocks_torn <= 1, "{report:?}");
    assert_eq!(
        report.blocks_kept + report.blocks_torn + report.blocks_lost,
        blocks as u64
    );
    assert!(
        after.len() < blocks * block,
        "seed 7 cuts the power before the last append"
    );
}
