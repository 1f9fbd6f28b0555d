//! Checkpoints: the engine's encoded state at some position of the log, so that a restart
//! replays only the tail after it.
//!
//! A checkpoint is opaque bytes to the store, kept in one file of the log directory
//! ([`CHECKPOINT_FILE_NAME`]) with the position and chain hash it reflects and the SHA-256 of its
//! bytes (the `snapshot_file` format). It is written by whoever encoded it, beside the log and
//! not in sled: a checkpoint of a long history is tens of megabytes, which in sled went into the
//! batch of some group, whose flush and `fdatasync` then held up every caller for seconds, and
//! whose old pages sled kept in its file long after. The file is `fdatasync`ed, renamed over
//! the previous one and its folder synced, so a power cut leaves the old checkpoint or the new
//! one, whole. Loading checks the digest and that the log still has that hash at that position;
//! a checkpoint that fails either check is ignored (the caller replays from position 1), never
//! trusted.
//!
//! Logs written before checkpoints were files kept them in sled records (`k` and `c` + index);
//! [`Store::open`](crate::Store::open) removes those, and the first checkpoint after the upgrade
//! is a file.

use std::io;
use std::path::{Path, PathBuf};

use crate::chain::Head;
use crate::snapshot_file::{self, Format};
use crate::store::StoreError;

/// The checkpoint's file, inside the log directory.
pub const CHECKPOINT_FILE_NAME: &str = "checkpoint";

/// The checkpoint file's layout: its body compressed (`VLCKPT02`); a file of the uncompressed
/// layout written before (`VLCKPT01`) is still read, so an upgrade replays no more than a tail.
const FORMAT: &Format = &Format {
    kind: *b"VLCKPT02",
    compressed: true,
    reads_plain: Some(*b"VLCKPT01"),
};

/// The meta record of a checkpoint kept in sled before checkpoints were files.
pub(crate) const LEGACY_META_KEY: &[u8] = b"k";
/// Prefix of a chunk of a checkpoint kept in sled before checkpoints were files.
pub(crate) const LEGACY_CHUNK_PREFIX: u8 = b'c';

/// A checkpoint read back from the store, its digest and its place in the chain checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The position and hash of the last event the checkpoint reflects.
    pub head: Head,
    pub bytes: Vec<u8>,
}

/// What the checkpoint file of a log holds, before anyone compares it with the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointFound {
    /// No checkpoint was ever written.
    Absent,
    /// The file is whole and its bytes match their digest. Whether the log still has
    /// `head.hash` at `head.position` is for the caller to check.
    Intact(StoredCheckpoint),
    /// The file does not hold together: cut short, of another kind, or bytes that do not match
    /// their digest. `position` is the one its header claims, if readable.
    Damaged {
        position: Option<u64>,
        why: &'static str,
    },
}

/// Where the checkpoint of one log directory is written; cheap to clone, so that the thread
/// that encodes a checkpoint also writes it, and the writer never waits for either.
#[derive(Clone, Debug)]
pub struct CheckpointFile {
    path: PathBuf,
}

impl CheckpointFile {
    pub fn in_data_dir(dir: &Path) -> CheckpointFile {
        CheckpointFile {
            path: dir.join(CHECKPOINT_FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the checkpoint with `bytes`, the caller's encoded state at `head`, a durable
    /// position of the log; durable when this returns.
    pub fn save(&self, head: &Head, bytes: &[u8]) -> Result<(), StoreError> {
        snapshot_file::write(&self.path, FORMAT, head, bytes, true)
    }

    /// [`CheckpointFile::save`] of the bytes `encode` writes, a piece at a time: a ten-year
    /// state's checkpoint is never whole in memory. The number of bytes `encode` wrote (the
    /// body before compression).
    pub fn save_streamed(
        &self,
        head: &Head,
        encode: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<u64, StoreError> {
        snapshot_file::write_streamed(&self.path, FORMAT, head, true, encode)
    }

    /// Reads the checkpoint file and checks it against its own digest.
    pub fn read(&self) -> Result<CheckpointFound, StoreError> {
        let read = match snapshot_file::read(&self.path, FORMAT) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(CheckpointFound::Absent)
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        Ok(match read {
            Ok((head, bytes)) => CheckpointFound::Intact(StoredCheckpoint { head, bytes }),
            Err((position, why)) => CheckpointFound::Damaged { position, why },
        })
    }
}

/// Removes the checkpoint records a log written before checkpoints were files kept in sled, in
/// one batch; whether there were any.
pub(crate) fn remove_legacy_records(db: &sled::Db) -> Result<bool, sled::Error> {
    let mut batch = sled::Batch::default();
    let mut found = db.get(LEGACY_META_KEY)?.is_some();
    batch.remove(LEGACY_META_KEY);
    for key in db.scan_prefix([LEGACY_CHUNK_PREFIX]).keys() {
        batch.remove(key?);
        found = true;
    }
    if found {
        db.apply_batch(batch)?;
    }
    Ok(found)
}
