//! Online backup: a copy of every record of the log into a new sled database, made durable
//! before it is reported done.
//!
//! The copy is consistent only if nothing is appended while it runs: the engine calls
//! [`Store::backup_to`] on its writer thread between two groups. The head record is written
//! last, in its own batch, so a copy interrupted half-way has entries but no head, which
//! [`Store::open`] and `verify` both refuse: a partial backup is never mistaken for a whole one.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::chain::{self, Head};
use crate::checkpoint::{CheckpointFile, CheckpointFound};
use crate::keys;
use crate::segment::{self, Segments};
use crate::store::{
    last_entry, sled_config, sync_directory, sync_path, Log, Store, StoreError, CONF_FILE_NAME,
    DATA_FILE_NAME,
};

/// Records copied per sled batch: large enough that the copy runs at disk speed, small enough
/// that one batch (at most 4 KiB a record) stays a few megabytes of memory.
const BACKUP_BATCH_LEN_MAX: usize = 1024;

/// What a backup wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// The folder of the copy.
    pub path: PathBuf,
    /// The head of the copy, which is the head of the log when it was taken.
    pub head: Head,
    /// Records copied: entries, request records, stream versions, the head.
    pub records: u64,
    /// Bytes of keys and values copied, and of segment files.
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Store {
    /// Copies the segment files of the sealed past (each synced), then every record of sled
    /// (entries, request records, stream versions, and last the head) into a new sled
    /// database in `target`, which must not exist or must be an empty
    /// folder; then flushes it, `fdatasync`s its data file and its configuration, copies the
    /// checkpoint file (synced) and syncs the folder. The copy is a log that [`Store::open`] and
    /// `verify` accept, with this log's head.
    ///
    /// Blocks for as long as the copy takes and must not run concurrently with `append`:
    /// `&self` keeps this store from appending, and the engine calls it between two groups.
    pub fn backup_to(&self, target: &Path) -> Result<BackupReport, StoreError> {
        let started = Instant::now();
        let db = self.sled_db("an online backup (use the database's own, pg_basebackup)")?;
        let Log::Sled(_, segments) = &self.log else {
            unreachable!("sled_db refuses a log kept by a backend")
        };
        prepare_target(target)?;
        // No seal may move a range from sled to a segment while the copy runs: it would be
        // in neither the segments copied nor the records copied after them.
        let _sealing = segments
            .sealing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let segment_bytes = segment::copy_segments(segments, target)?;
        let copy = sled_config(target).open()?;

        let mut records = 0u64;
        let mut bytes = segment_bytes;
        let mut batch = sled::Batch::default();
        let mut batch_len = 0usize;
        let mut head_record = None;
        for item in db.iter() {
            let (key, value) = item?;
            records += 1;
            bytes += (key.len() + value.len()) as u64;
            if key.as_ref() == keys::HEAD_KEY {
                head_record = Some(value);
                continue;
            }
            batch.insert(key, value);
            batch_len += 1;
            if batch_len >= BACKUP_BATCH_LEN_MAX {
                copy.apply_batch(std::mem::take(&mut batch))?;
                batch_len = 0;
            }
        }
        copy.apply_batch(batch)?;
        // The head last: until it is there, the copy is refused as a log with no head.
        if let Some(record) = head_record {
            copy.insert(keys::HEAD_KEY, record)?;
        }
        copy.flush()?;

        let copied_segments = Segments::open(target, false)?;
        let found = chain::check_head(
            copy.get(keys::HEAD_KEY)?.as_deref(),
            last_entry(&copy, &copied_segments)?,
        )
        .map_err(StoreError::ChainBroken)?;
        drop(copy);
        if found != self.head {
            return Err(StoreError::BackupIncomplete {
                path: target.to_path_buf(),
                expected: self.head,
                found,
            });
        }
        sync_path(&target.join(DATA_FILE_NAME))?;
        sync_path(&target.join(CONF_FILE_NAME))?;
        // The checkpoint too, so that a server started on the copy replays only the tail. It
        // is copied as it is, checked when loaded like any checkpoint; the retained snapshots
        // are not copied (a report as of an earlier position on the copy replays longer).
        if let CheckpointFound::Intact(checkpoint) = self.checkpoint_file().read()? {
            CheckpointFile::in_data_dir(target).save(&checkpoint.head, &checkpoint.bytes)?;
        }
        sync_directory(target)?;
        if let Some(parent) = target
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_directory(parent)?;
        }
        let report = BackupReport {
            path: target.to_path_buf(),
            head: found,
            records,
            bytes,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            path = %target.display(),
            position = report.head.position,
            records,
            bytes,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "backup written"
        );
        Ok(report)
    }
}

/// Creates `target` (and its parents), or accepts it when it is an empty folder.
fn prepare_target(target: &Path) -> Result<(), StoreError> {
    let io_error = |source| StoreError::Io {
        path: target.to_path_buf(),
        source,
    };
    match fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(StoreError::BackupTargetNotEmpty {
                    path: target.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(target).map_err(io_error)
        }
        Err(error) => Err(io_error(error)),
    }
}
