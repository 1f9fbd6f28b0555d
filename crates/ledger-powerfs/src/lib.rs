//! A FUSE filesystem for tests that loses, on demand, what was not synced: a disk with a
//! volatile write cache, and a power cut.
//!
//! [`PowerFs::mount`] mounts a passthrough of a *disk* directory: every operation goes to the
//! disk directory's files at once, so reads see every write, as they would through the page
//! cache. What makes it a power-loss simulator is what it remembers beside that: for each file,
//! the content of every 4 KiB block as it was when the file was last `fsync`ed or
//! `fdatasync`ed, and its length then; for each directory, the creations, renames and removals
//! of names in it since it was last synced. [`PowerFs::cut_power`] unmounts (the processes that
//! used the mount must be dead: the test SIGKILLs them first), puts back what was not synced,
//! and mounts again on the same disk, like the machine coming back up:
//!
//! - a file's blocks written since its last sync go back to their synced content, and its
//!   length to its synced length; with [`PowerCut::InOrder`], the disk wrote them back in the
//!   order they were first written and the power went off in one of them: those before it
//!   reached the disk whole, that one only its first 512-byte sectors (a torn write); with
//!   [`PowerCut::Reordered`], each one independently may have reached it whole or torn, as a
//!   cache that writes back in any order would leave it. A block that reached the disk beyond
//!   the synced length makes the file that long;
//! - a name created, renamed or removed since its directory was last synced is undone (a new
//!   file disappears with its content even if the file itself was synced, a renamed file goes
//!   back to its old name, a removed one comes back); with a seeded cut a prefix of
//!   those changes, in the order they were made, may have reached the disk, as a journal
//!   would commit them.
//!
//! The disk directory itself is written straight away and never synced by this crate: it only
//! has to outlive the test process, not a real power cut. Not modelled: hard links, symbolic
//! links, special files and extended attributes (refused with `ENOSYS`/`EPERM`), renames of a
//! directory that has unsynced changes inside it (the changes keep their old paths). It needs
//! `/dev/fuse` and the right to mount (root), and `umount` (util-linux) to unmount;
//! [`PowerFs::mount`] fails otherwise, and tests say so and skip.
//!
//! This crate is for tests only (`publish = false`): nothing in the ledger depends on it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// The unit in which a file's synced content is remembered: a page, what a disk cache holds.
pub const BLOCK_BYTES: u64 = 4096;
/// The unit a torn write is cut at: a drive writes a sector whole or not at all.
pub const SECTOR_BYTES: u64 = 512;
/// How long the kernel may cache names and attributes: every change goes through this process,
/// which answers it, so the kernel's cache stays true; a cut unmounts, which empties it.
const ATTRIBUTE_TTL: Duration = Duration::from_secs(1);
/// How long a cut waits for the mount to stop being busy: sled's threads let go of their
/// files within milliseconds of a drop; a process that is still alive never does.
pub const UNMOUNT_WAIT: Duration = Duration::from_secs(10);
const UNMOUNT_RETRY_INTERVAL: Duration = Duration::from_millis(20);
/// Tries of a mount that meets an aborted connection (see `PowerFs::start`).
const MOUNT_TRIES_MAX: u32 = 3;

/// What reaches the disk of what was not synced when the power is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerCut {
    /// Nothing: every unsynced block and name change is lost.
    DiscardAll,
    /// A disk that writes back in the order the blocks were first written since their last
    /// sync, cut partway (the point drawn from `seed`): the blocks before that point reached
    /// it whole, the block at it only its first sectors (a torn write), the rest nothing. A
    /// prefix of the unsynced name changes of random length is kept.
    InOrder { seed: u64 },
    /// A disk whose cache writes back in any order: each unsynced block (drawn from `seed`) is
    /// lost, kept whole, or kept up to a sector boundary (torn), each with probability 1/3;
    /// a prefix of the unsynced name changes of random length is kept.
    Reordered { seed: u64 },
    /// Each unsynced block keeps its first `sectors` sectors (a torn write of every block);
    /// name changes are lost. For tests of the tearing itself.
    TornSectors { sectors: u64 },
}

/// What a cut put back, for test output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Unsynced blocks put back to their synced content.
    pub blocks_lost: u64,
    /// Unsynced blocks that reached the disk whole.
    pub blocks_kept: u64,
    /// Unsynced blocks of which only the first sectors reached the disk.
    pub blocks_torn: u64,
    /// Name changes undone.
    pub names_lost: u64,
    /// Name changes that reached the disk without their directory being synced.
    pub names_kept: u64,
}

/// A mounted power-loss filesystem. Dropping it unmounts it (a clean shutdown: what is on the
/// disk directory then stays, synced or not).
#[derive(Debug)]
pub struct PowerFs {
    disk: PathBuf,
    trash: PathBuf,
    mountpoint: PathBuf,
    layer: Arc<Mutex<Layer>>,
    session: Option<BackgroundSession>,
}

impl PowerFs {
    /// Mounts a passthrough of `disk` on `mountpoint` (both existing directories). Files
    /// removed through the mount are kept, until their directory is synced, in a sibling
    /// folder `<disk>.trash` (so that a cut can bring them back).
    pub fn mount(disk: &Path, mountpoint: &Path) -> io::Result<PowerFs> {
        let disk = disk.canonicalize()?;
        let mut trash = disk.clone().into_os_string();
        trash.push(".trash");
        let trash = PathBuf::from(trash);
        fs::create_dir_all(&trash)?;
        let mut power_fs = PowerFs {
            layer: Arc::new(Mutex::new(Layer::new(disk.clone(), trash.clone()))),
            disk,
            trash,
            mountpoint: mountpoint.to_path_buf(),
            session: None,
        };
        power_fs.start()?;
        Ok(power_fs)
    }

    /// The directory the filesystem is mounted on.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The directory that plays the disk.
    pub fn disk(&self) -> &Path {
        &self.disk
    }

    fn start(&mut self) -> io::Result<()> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powerfs".to_owned()),
            MountOption::Subtype("powerfs".to_owned()),
        ];
        let filesystem = PassthroughFs {
            layer: Arc::clone(&self.layer),
        };
        // A mount right after an unmount whose connection the kernel aborted can see the
        // abort too (ECONNABORTED): it is tried again, a few times, before it is an error.
        let mut tries_left = MOUNT_TRIES_MAX;
        let session = loop {
            tries_left -= 1;
            match fuser::spawn_mount(filesystem.clone(), &self.mountpoint, &config) {
                Err(error)
                    if error.kind() == io::ErrorKind::ConnectionAborted && tries_left > 0 =>
                {
                    std::thread::sleep(UNMOUNT_RETRY_INTERVAL);
                }
                mounted => break mounted?,
            }
        };
        self.session = Some(session);
        Ok(())
    }

    /// Unmounts and waits for the session's thread. A process that just closed its last file
    /// on the mount (or threads of this one, like sled's after a drop) may keep it busy for a
    /// moment, so a busy unmount is retried, for at most [`UNMOUNT_WAIT`].
    fn stop(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let started = Instant::now();
        loop {
            let output = Command::new("umount")
                .arg(&self.mountpoint)
                .stdin(Stdio::null())
                .output()?;
            if output.status.success() {
                break;
            }
            if started.elapsed() >= UNMOUNT_WAIT {
                self.session = Some(session);
                return Err(io::Error::other(format!(
                    "umount {} failed for {UNMOUNT_WAIT:?}: {}",
                    self.mountpoint.display(),
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            std::thread::sleep(UNMOUNT_RETRY_INTERVAL);
        }
        // Unmounted: the session's loop ends on its own, normally with ENODEV. A kernel that
        // aborted the connection at the unmount (a request of a killed process still pending)
        // ends it with ECONNABORTED instead: the filesystem is unmounted all the same.
        match session.join() {
            Err(error) if error.kind() == io::ErrorKind::ConnectionAborted => Ok(()),
            ended => ended,
        }
    }

    /// Cuts the power: unmounts (every process with a file open on the mount must have been
    /// killed already, or the unmount fails after [`UNMOUNT_WAIT`]), puts back on the disk
    /// directory what was not synced as `cut` says, and mounts again.
    pub fn cut_power(&mut self, cut: PowerCut) -> io::Result<CutReport> {
        self.stop()?;
        let report = {
            let mut layer = lock(&self.layer);
            let report = layer.revert(cut)?;
            *layer = Layer::new(self.disk.clone(), self.trash.clone());
            report
        };
        empty_directory(&self.trash)?;
        self.start()?;
        Ok(report)
    }

    /// Unmounts cleanly, as a shutdown that writes everything back would.
    pub fn unmount(mut self) -> io::Result<()> {
        self.stop()
    }
}

impl Drop for PowerFs {
    fn drop(&mut self) {
        // A clean unmount; a failure here (a process still using the mount) is left to the
        // kernel, which detaches the mount when the session's device closes.
        let _ = self.stop();
    }
}

fn lock(layer: &Mutex<Layer>) -> MutexGuard<'_, Layer> {
    // A panic in a request handler must not turn every later request into a panic too.
    layer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn empty_directory(directory: &Path) -> io::Result<()> {
    for entry in fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// A file's state at its last sync, for the blocks written since.
#[derive(Debug)]
struct Unsynced {
    /// The file's length when it was last synced.
    synced_len: u64,
    /// Block index → when it was first written since the last sync (a number that grows
    /// across all files) and its content at the last sync (shorter than a block, or empty,
    /// where the file ended).
    blocks: BTreeMap<u64, (u64, Vec<u8>)>,
}

/// A change of names not yet made durable by a sync of its directory.
#[derive(Debug)]
enum NameChange {
    Created {
        path: PathBuf,
    },
    MadeDirectory {
        path: PathBuf,
    },
    Removed {
        path: PathBuf,
        kept_at: PathBuf,
    },
    RemovedDirectory {
        path: PathBuf,
    },
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<Replaced>,
    },
}

#[derive(Debug)]
enum Replaced {
    File { kept_at: PathBuf },
    EmptyDirectory,
}

impl NameChange {
    fn touches(&self, directory: &Path) -> bool {
        let in_directory = |path: &Path| path.parent() == Some(directory);
        match self {
            NameChange::Created { path }
            | NameChange::MadeDirectory { path }
            | NameChange::Removed { path, .. }
            | NameChange::RemovedDirectory { path } => in_directory(path),
            NameChange::Renamed { from, to, .. } => in_directory(from) || in_directory(to),
        }
    }

    /// Puts the name back as it was before the change.
    fn undo(&self) -> io::Result<()> {
        match self {
            NameChange::Created { path } => ignore_missing(fs::remove_file(path)),
            NameChange::MadeDirectory { path } => ignore_missing(fs::remove_dir_all(path)),
            NameChange::Removed { path, kept_at } => ignore_missing(fs::rename(kept_at, path)),
            NameChange::RemovedDirectory { path } => ignore_missing(fs::create_dir(path)),
            NameChange::Renamed { from, to, replaced } => {
                ignore_missing(fs::rename(to, from))?;
                match replaced {
                    Some(Replaced::File { kept_at }) => ignore_missing(fs::rename(kept_at, to)),
                    Some(Replaced::EmptyDirectory) => ignore_missing(fs::create_dir(to)),
                    None => Ok(()),
                }
            }
        }
    }

    /// The change is durable: a removed file's kept copy is no longer needed.
    fn settle(&self) -> io::Result<()> {
        match self {
            NameChange::Removed { kept_at, .. }
            | NameChange::Renamed {
                replaced: Some(Replaced::File { kept_at }),
                ..
            } => ignore_missing(fs::remove_file(kept_at)),
            _ => Ok(()),
        }
    }
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A small deterministic generator (xorshift64*), so that a printed seed repeats a cut.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// What happens to one unsynced block at a cut: how many of its bytes reached the disk.
/// `order` is when the block was first written since its file's last sync; `cut_at`, for
/// [`PowerCut::InOrder`], the order of the block the power went off in.
fn bytes_kept(cut: PowerCut, rng: &mut Rng, block_len: u64, order: u64, cut_at: u64) -> u64 {
    let torn = |rng: &mut Rng| {
        let sectors = 1 + rng.below(BLOCK_BYTES / SECTOR_BYTES - 1);
        (sectors * SECTOR_BYTES).min(block_len)
    };
    match cut {
        PowerCut::DiscardAll => 0,
        PowerCut::TornSectors { sectors } => (sectors * SECTOR_BYTES).min(block_len),
        PowerCut::InOrder { .. } if order < cut_at => block_len,
        PowerCut::InOrder { .. } if order == cut_at => torn(rng),
        PowerCut::InOrder { .. } => 0,
        PowerCut::Reordered { .. } => match rng.below(3) {
            0 => 0,
            1 => block_len,
            _ => torn(rng),
        },
    }
}

/// The state of one mount: which inode number is which path, the files open on the disk, and
/// what is not synced.
#[derive(Debug)]
struct Layer {
    trash: PathBuf,
    paths: HashMap<u64, PathBuf>,
    inodes: HashMap<PathBuf, u64>,
    inode_next: u64,
    open_files: HashMap<u64, File>,
    unsynced: HashMap<u64, Unsynced>,
    name_changes: Vec<NameChange>,
    trash_next: u64,
    /// The order number of the next block written for the first time since its last sync.
    write_order_next: u64,
}

impl Layer {
    fn new(disk: PathBuf, trash: PathBuf) -> Layer {
        let mut layer = Layer {
            trash,
            paths: HashMap::new(),
            inodes: HashMap::new(),
            inode_next: INodeNo::ROOT.0 + 1,
            open_files: HashMap::new(),
            unsynced: HashMap::new(),
            name_changes: Vec::new(),
            trash_next: 0,
            write_order_next: 0,
        };
        layer.paths.insert(INodeNo::ROOT.0, disk.clone());
        layer.inodes.insert(disk, INodeNo::ROOT.0);
        layer
    }

    fn path(&self, inode: INodeNo) -> Result<PathBuf, Errno> {
        self.paths.get(&inode.0).cloned().ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn inode_of(&mut self, path: &Path) -> u64 {
        if let Some(inode) = self.inodes.get(path) {
            return *inode;
        }
        let inode = self.inode_next;
        self.inode_next += 1;
        self.paths.insert(inode, path.to_path_buf());
        self.inodes.insert(path.to_path_buf(), inode);
        inode
    }

    fn attributes(&mut self, path: &Path) -> Result<FileAttr, Errno> {
        let metadata = fs::symlink_metadata(path).map_err(errno)?;
        let inode = self.inode_of(path);
        Ok(file_attr(inode, &metadata))
    }

    fn file(&mut self, inode: INodeNo) -> Result<&File, Errno> {
        if !self.open_files.contains_key(&inode.0) {
            let path = self.path(inode)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(errno)?;
            self.open_files.insert(inode.0, file);
        }
        self.open_files.get(&inode.0).ok_or(Errno::EIO)
    }

    /// Remembers the synced content of the blocks that `[offset, end)` is about to change.
    fn remember_blocks(&mut self, inode: INodeNo, offset: u64, end: u64) -> Result<(), Errno> {
        let file = self.file(inode)?.try_clone().map_err(errno)?;
        let len = file.metadata().map_err(errno)?.len();
        let unsynced = self.unsynced.entry(inode.0).or_insert(Unsynced {
            synced_len: len,
            blocks: BTreeMap::new(),
        });
        if end <= offset {
            return Ok(());
        }
        for block in offset / BLOCK_BYTES..end.div_ceil(BLOCK_BYTES) {
            if unsynced.blocks.contains_key(&block) {
                continue;
            }
            let start = block * BLOCK_BYTES;
            let present = len.saturating_sub(start).min(BLOCK_BYTES);
            let mut content = vec![0; usize::try_from(present).map_err(|_| Errno::EFBIG)?];
            file.read_exact_at(&mut content, start).map_err(errno)?;
            unsynced
                .blocks
                .insert(block, (self.write_order_next, content));
            self.write_order_next += 1;
        }
        Ok(())
    }

    fn set_len(&mut self, inode: INodeNo, len: u64) -> Result<(), Errno> {
        let current = self.file(inode)?.metadata().map_err(errno)?.len();
        // Shortening loses the blocks past the new end; lengthening adds zeros, which the
        // synced length alone puts back.
        self.remember_blocks(inode, len, current)?;
        self.file(inode)?.set_len(len).map_err(errno)
    }

    /// Creates a regular file at `path` unless one is there, and remembers the new name.
    /// Whether it was created.
    fn create_file(&mut self, path: &Path, permissions: u32) -> Result<bool, Errno> {
        let existed = fs::symlink_metadata(path).is_ok();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(permissions)
            .open(path)
            .map_err(errno)?;
        if !existed {
            self.name_changes.push(NameChange::Created {
                path: path.to_path_buf(),
            });
        }
        Ok(!existed)
    }

    fn move_to_trash(&mut self, path: &Path) -> Result<PathBuf, Errno> {
        let kept_at = self.trash.join(self.trash_next.to_string());
        self.trash_next += 1;
        fs::rename(path, &kept_at).map_err(errno)?;
        self.moved(path, &kept_at);
        Ok(kept_at)
    }

    /// Follows a rename in the inode table: the inode keeps its number, and so does every
    /// inode below it when it is a directory.
    fn moved(&mut self, from: &Path, to: &Path) {
        let affected: Vec<(PathBuf, u64)> = self
            .inodes
            .iter()
            .filter(|(path, _)| path.starts_with(from))
            .map(|(path, inode)| (path.clone(), *inode))
            .collect();
        for (path, inode) in affected {
            self.inodes.remove(&path);
            let new_path = match path.strip_prefix(from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
                Ok(rest) => to.join(rest),
                Err(_) => continue,
            };
            self.paths.insert(inode, new_path.clone());
            self.inodes.insert(new_path, inode);
        }
    }

    fn forget_path(&mut self, path: &Path) {
        if let Some(inode) = self.inodes.remove(path) {
            self.paths.remove(&inode);
            self.open_files.remove(&inode);
            self.unsynced.remove(&inode);
        }
    }

    fn sync_directory(&mut self, directory: &Path) -> io::Result<()> {
        let (settled, pending): (Vec<NameChange>, Vec<NameChange>) =
            std::mem::take(&mut self.name_changes)
                .into_iter()
                .partition(|change| change.touches(directory));
        self.name_changes = pending;
        for change in settled {
            change.settle()?;
        }
        Ok(())
    }

    /// Puts the disk back to what a power cut would leave: file contents first (at the paths
    /// the files have now, kept copies of removed files included), then names, newest first.
    fn revert(&mut self, cut: PowerCut) -> io::Result<CutReport> {
        let seed = match cut {
            PowerCut::InOrder { seed } | PowerCut::Reordered { seed } => seed,
            _ => 1,
        };
        let mut rng = Rng(seed | 1);
        let mut report = CutReport::default();
        let mut unsynced: Vec<(u64, Unsynced)> = self.unsynced.drain().collect();
        // In order: the power goes off while the disk writes one of the unsynced blocks (or
        // after the last one).
        let mut orders: Vec<u64> = unsynced
            .iter()
            .flat_map(|(_, file_state)| file_state.blocks.values().map(|(order, _)| *order))
            .collect();
        orders.sort_unstable();
        let cut_at = orders
            .get(rng.below(orders.len() as u64 + 1) as usize)
            .copied()
            .unwrap_or(u64::MAX);
        // Same seed, same cut: visit the files in a fixed order.
        unsynced.sort_by_key(|(inode, _)| *inode);
        self.open_files.clear();
        for (inode, file_state) in unsynced {
            let Some(path) = self.paths.get(&inode) else {
                continue;
            };
            let file = match OpenOptions::new().read(true).write(true).open(path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            let len_now = file.metadata()?.len();
            let mut len_after = file_state.synced_len;
            for (block, (order, synced_content)) in &file_state.blocks {
                let start = block * BLOCK_BYTES;
                let block_len = len_now.saturating_sub(start).min(BLOCK_BYTES);
                let kept = bytes_kept(cut, &mut rng, block_len, *order, cut_at);
                match kept {
                    0 => report.blocks_lost += 1,
                    k if k == block_len => report.blocks_kept += 1,
                    _ => report.blocks_torn += 1,
                }
                if kept > 0 {
                    len_after = len_after.max(start + kept);
                }
                // Past what was kept, the block holds its synced bytes again (zeros where the
                // file ended at the sync, in case a later kept block makes it longer).
                let restored_len = (synced_content.len() as u64).max(block_len);
                let restored: Vec<u8> = (kept..restored_len)
                    .map(|index| {
                        usize::try_from(index)
                            .ok()
                            .and_then(|index| synced_content.get(index))
                            .copied()
                            .unwrap_or(0)
                    })
                    .collect();
                file.write_all_at(&restored, start + kept)?;
            }
            file.set_len(len_after)?;
        }
        let changes = std::mem::take(&mut self.name_changes);
        let kept_changes = match cut {
            PowerCut::InOrder { .. } | PowerCut::Reordered { .. } => {
                rng.below(changes.len() as u64 + 1) as usize
            }
            _ => 0,
        };
        for change in &changes[..kept_changes] {
            change.settle()?;
            report.names_kept += 1;
        }
        for change in changes[kept_changes..].iter().rev() {
            change.undo()?;
            report.names_lost += 1;
        }
        Ok(report)
    }
}

fn reply_entry(reply: ReplyEntry, result: Result<FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.entry(&ATTRIBUTE_TTL, &attr, Generation(0)),
        Err(error) => reply.error(error),
    }
}

fn errno(error: io::Error) -> Errno {
    error.raw_os_error().map_or(Errno::EIO, Errno::from_i32)
}

fn system_time(seconds: i64, nanoseconds: i64) -> SystemTime {
    let nanoseconds = u32::try_from(nanoseconds).unwrap_or(0);
    match u64::try_from(seconds) {
        Ok(seconds) => UNIX_EPOCH + Duration::new(seconds, nanoseconds),
        Err(_) => UNIX_EPOCH,
    }
}

fn file_attr(inode: u64, metadata: &fs::Metadata) -> FileAttr {
    let kind = FileType::from_std(metadata.file_type()).unwrap_or(FileType::RegularFile);
    FileAttr {
        ino: INodeNo(inode),
        size: metadata.len(),
        blocks: metadata.blocks(),
        atime: system_time(metadata.atime(), metadata.atime_nsec()),
        mtime: system_time(metadata.mtime(), metadata.mtime_nsec()),
        ctime: system_time(metadata.ctime(), metadata.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (metadata.mode() & 0o7777) as u16,
        nlink: u32::try_from(metadata.nlink()).unwrap_or(u32::MAX),
        uid: metadata.uid(),
        gid: metadata.gid(),
        rdev: u32::try_from(metadata.rdev()).unwrap_or(0),
        blksize: BLOCK_BYTES as u32,
        flags: 0,
    }
}

/// The FUSE side: each request locks the layer, does the operation on the disk directory and
/// remembers what it needs to undo.
#[derive(Clone, Debug)]
struct PassthroughFs {
    layer: Arc<Mutex<Layer>>,
}

impl PassthroughFs {
    fn layer(&self) -> MutexGuard<'_, Layer> {
        lock(&self.layer)
    }
}

impl Filesystem for PassthroughFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut layer = self.layer();
        let result = layer
            .child(parent, name)
            .and_then(|path| layer.attributes(&path));
        reply_entry(reply, result);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut layer = self.layer();
        match layer.path(ino).and_then(|path| layer.attributes(&path)) {
            Ok(attr) => reply.attr(&ATTRIBUTE_TTL, &attr),
            Err(error) => reply.error(error),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.path(ino)?;
            if let Some(size) = size {
                layer.set_len(ino, size)?;
            }
            if let Some(mode) = mode {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(errno)?;
            }
            layer.attributes(&path)
        })();
        match result {
            Ok(attr) => reply.attr(&ATTRIBUTE_TTL, &attr),
            Err(error) => reply.error(error),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.child(parent, name)?;
            fs::create_dir(&path).map_err(errno)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & !umask & 0o7777))
                .map_err(errno)?;
            layer
                .name_changes
                .push(NameChange::MadeDirectory { path: path.clone() });
            layer.attributes(&path)
        })();
        reply_entry(reply, result);
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & S_IFMT != S_IFREG {
            reply.error(Errno::ENOSYS);
            return;
        }
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.child(parent, name)?;
            if !layer.create_file(&path, mode & !umask & 0o7777)? {
                return Err(Errno::EEXIST);
            }
            layer.attributes(&path)
        })();
        reply_entry(reply, result);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.child(parent, name)?;
            if flags & O_EXCL != 0 && fs::symlink_metadata(&path).is_ok() {
                return Err(Errno::EEXIST);
            }
            let created = layer.create_file(&path, mode & !umask & 0o7777)?;
            if !created && flags & O_TRUNC != 0 {
                let inode = INodeNo(layer.inode_of(&path));
                layer.set_len(inode, 0)?;
            }
            layer.attributes(&path)
        })();
        match result {
            Ok(attr) => reply.created(
                &ATTRIBUTE_TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(error) => reply.error(error),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.path(ino)?;
            if !path.is_dir() {
                layer.file(ino)?;
                if flags.0 & O_TRUNC != 0 {
                    layer.set_len(ino, 0)?;
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(error) => reply.error(error),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let mut layer = self.layer();
        let result = (|| {
            let file = layer.file(ino)?;
            let mut buffer = vec![0; size as usize];
            let mut filled = 0;
            while filled < buffer.len() {
                match file.read_at(&mut buffer[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(read) => filled += read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(errno(error)),
                }
            }
            buffer.truncate(filled);
            Ok(buffer)
        })();
        match result {
            Ok(data) => reply.data(&data),
            Err(error) => reply.error(error),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut layer = self.layer();
        let result = (|| {
            layer.remember_blocks(ino, offset, offset + data.len() as u64)?;
            layer.file(ino)?.write_all_at(data, offset).map_err(errno)?;
            u32::try_from(data.len()).map_err(|_| Errno::EFBIG)
        })();
        match result {
            Ok(written) => reply.written(written),
            Err(error) => reply.error(error),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // A close writes nothing back: only a sync makes data durable.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // fsync and fdatasync both make the file's content and length durable (its name is
        // its directory's business).
        self.layer().unsynced.remove(&ino.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut layer = self.layer();
        let result = layer
            .path(ino)
            .and_then(|path| layer.sync_directory(&path).map_err(errno));
        match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.child(parent, name)?;
            if fs::symlink_metadata(&path).map_err(errno)?.is_dir() {
                return Err(Errno::EISDIR);
            }
            let kept_at = layer.move_to_trash(&path)?;
            layer
                .name_changes
                .push(NameChange::Removed { path, kept_at });
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.child(parent, name)?;
            fs::remove_dir(&path).map_err(errno)?;
            layer.forget_path(&path);
            layer
                .name_changes
                .push(NameChange::RemovedDirectory { path });
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut layer = self.layer();
        let result = (|| {
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                return Err(Errno::EINVAL);
            }
            let from = layer.child(parent, name)?;
            let to = layer.child(newparent, newname)?;
            fs::symlink_metadata(&from).map_err(errno)?;
            let replaced = match fs::symlink_metadata(&to) {
                Err(_) => None,
                Ok(_) if flags.contains(RenameFlags::RENAME_NOREPLACE) => {
                    return Err(Errno::EEXIST)
                }
                Ok(metadata) if metadata.is_dir() => {
                    fs::remove_dir(&to).map_err(errno)?;
                    layer.forget_path(&to);
                    Some(Replaced::EmptyDirectory)
                }
                Ok(_) => Some(Replaced::File {
                    kept_at: layer.move_to_trash(&to)?,
                }),
            };
            fs::rename(&from, &to).map_err(errno)?;
            layer.moved(&from, &to);
            layer
                .name_changes
                .push(NameChange::Renamed { from, to, replaced });
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut layer = self.layer();
        let result = (|| {
            let path = layer.path(ino)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            let mut children: Vec<_> = fs::read_dir(&path)
                .map_err(errno)?
                .collect::<Result<_, _>>()
                .map_err(errno)?;
            children.sort_by_key(|entry| entry.file_name());
            for child in children {
                let kind = child
                    .file_type()
                    .ok()
                    .and_then(FileType::from_std)
                    .unwrap_or(FileType::RegularFile);
                let inode = layer.inode_of(&child.path());
                entries.push((inode, kind, child.file_name()));
            }
            Ok(entries)
        })();
        match result {
            Ok(entries) => {
                for (index, (inode, kind, name)) in
                    entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(inode), index as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(error) => reply.error(error),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

// The few constants of open(2) and stat(2) needed here, as Linux defines them (this
// crate runs on Linux only: FUSE mounting as done here is Linux's).
const O_EXCL: i32 = 0o200;
const O_TRUNC: i32 = 0o1000;
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_keeps_the_same_blocks() {
        let draws = |seed| {
            let mut rng = Rng(seed | 1);
            (0..64)
                .map(|_| bytes_kept(PowerCut::Reordered { seed }, &mut rng, BLOCK_BYTES, 0, 0))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let kept = draws(7);
        assert!(kept.contains(&0), "some blocks are lost");
        assert!(kept.contains(&BLOCK_BYTES), "some blocks are kept whole");
        assert!(
            kept.iter()
                .any(|k| *k > 0 && *k < BLOCK_BYTES && k % SECTOR_BYTES == 0),
            "some blocks are torn at a sector boundary"
        );
    }

    #[test]
    fn a_torn_block_keeps_whole_sectors_only_within_the_file() {
        let mut rng = Rng(1);
        let cut = PowerCut::TornSectors { sectors: 3 };
        assert_eq!(
            bytes_kept(cut, &mut rng, BLOCK_BYTES, 0, 0),
            3 * SECTOR_BYTES
        );
        assert_eq!(bytes_kept(cut, &mut rng, 700, 0, 0), 700);
        assert_eq!(
            bytes_kept(PowerCut::DiscardAll, &mut rng, BLOCK_BYTES, 0, 0),
            0
        );
    }
}
