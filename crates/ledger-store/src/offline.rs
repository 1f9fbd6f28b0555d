//! A log directory opened to be read and checked, never appended to: what the auditors' offline
//! commands (`verify`, `export`) work on, a stopped server's folder or a backup.
//!
//! Unlike [`Store::open`](crate::Store::open), opening refuses nothing but a missing or locked
//! database, so a damaged log can still be walked to its first bad position. Nothing here
//! writes: sled 0.34 has no read-only mode, so the database is opened, read and dropped without
//! a single insert. The one file opening may remove is a sled snapshot cut short by a crash
//! (`snap.*.generating`), without which sled cannot open the folder (see `store::open_sled`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::LogBackend;
use crate::chain::{self, ChainBreak, Head, RecordedEvent};
use crate::checkpoint::{CheckpointFile, CheckpointFound};
use crate::keys;
use crate::segment::{LogEntries, Segments};
use crate::store::{
    open_sled, EntrySource, Log, LogReader, StoreError, StoredRequest, DATA_FILE_NAME,
};
use ledger_proto::event::v1::RequestRecord;
use prost::Message;
use uuid::Uuid;

/// A stopped ledger's log directory, or a backup of one, open for reading.
pub struct OfflineLog {
    log: Log,
    path: PathBuf,
}

impl OfflineLog {
    /// Opens the log in `dir` without checking it. Fails with `LogMissing` when `dir` holds no
    /// sled database, and with `Sled` while a server holds it open (sled locks its folder).
    pub fn open(dir: &Path) -> Result<OfflineLog, StoreError> {
        let data_path = dir.join(DATA_FILE_NAME);
        let exists = data_path.try_exists().map_err(|source| StoreError::Io {
            path: data_path.clone(),
            source,
        })?;
        if !exists {
            return Err(StoreError::LogMissing {
                path: dir.to_path_buf(),
            });
        }
        Ok(OfflineLog {
            // Leniently: a damaged segment file is a finding of the walk, at its place.
            log: Log::Sled(open_sled(dir)?, Segments::open(dir, true)?),
            path: dir.to_path_buf(),
        })
    }

    /// A log kept by `backend`, read the same way; the checkpoint is the one in the local
    /// folder `checkpoint_dir`, if any (see [`crate::LogBackend`]).
    pub fn open_backend(backend: Arc<dyn LogBackend>, checkpoint_dir: &Path) -> OfflineLog {
        OfflineLog {
            log: Log::External(backend),
            path: checkpoint_dir.to_path_buf(),
        }
    }

    /// Every entry from position 1, in order, each checked against the one before it (see
    /// [`ChainWalk`]); then [`ChainWalk::finish`] checks the head record.
    pub fn walk(&self) -> ChainWalk {
        ChainWalk::new(&self.log)
    }

    /// Recomputes the whole chain; see [`crate::verify_log_at`].
    pub fn verify(&self) -> Result<Result<Head, ChainBreak>, StoreError> {
        self.walk().finish()
    }

    /// The stored head record, unchecked; `None` when there is none or it is malformed.
    pub fn stored_head(&self) -> Result<Option<Head>, StoreError> {
        self.log.stored_head()
    }

    /// Reads by position, each entry checked against the chain from the one before the range.
    pub fn reader(&self) -> LogReader {
        LogReader {
            log: self.log.clone(),
        }
    }

    /// The stored checkpoint, checked against its own digest but not against the log: the
    /// caller compares `head` with the hash the log has at that position.
    pub fn checkpoint(&self) -> Result<CheckpointFound, StoreError> {
        CheckpointFile::in_data_dir(&self.path).read()
    }

    /// Every request record: those under their own keys in request-id order, then those of
    /// the group records not yet folded (see the `tail` module); the id and the record, or why
    /// the record cannot be read (a damaged record is a finding of `verify`, not an error of
    /// the store).
    pub fn requests(&self) -> RequestRecords<'_> {
        match &self.log {
            Log::Sled(db, _) => Box::new(
                db.scan_prefix([keys::REQUEST_PREFIX])
                    .map(|item| {
                        let (key, value) = item?;
                        Ok(request_record(&key, &value))
                    })
                    .chain(requests_in_group_records(db)),
            ),
            Log::External(backend) => match backend.requests() {
                Ok(records) => Box::new(records.into_iter().map(|(request_id, record)| {
                    let key = keys::request_key(request_id);
                    Ok(request_record(&key, &record.encode_to_vec()))
                })),
                Err(error) => Box::new(std::iter::once(Err(error))),
            },
        }
    }
}

/// The request records still in group records (see the `tail` module) and not under their own
/// key, each with the key it will have once folded; a malformed group record is a damaged
/// record under its own key.
fn requests_in_group_records(
    db: &sled::Db,
) -> impl Iterator<Item = Result<Result<(Uuid, StoredRequest), DamagedRequestRecord>, StoreError>> {
    let records = db.clone();
    db.scan_prefix([keys::GROUP_PREFIX])
        .flat_map(move |item| -> Vec<Result<_, StoreError>> {
            let (key, value) = match item {
                Ok(item) => item,
                Err(error) => return vec![Err(error.into())],
            };
            let Some(group) = crate::tail::decode_group_record(&value) else {
                return vec![Ok(Err(DamagedRequestRecord {
                    key: key.to_vec(),
                    why: "a group record that does not have its form".to_owned(),
                }))];
            };
            group
                .requests
                .into_iter()
                .filter_map(|(request_id, bytes)| {
                    let bytes = bytes?;
                    let key = keys::request_key(request_id);
                    // Under its own key too when a fold stopped half way: listed once.
                    match records.contains_key(key) {
                        Ok(true) => None,
                        Ok(false) => Some(Ok(request_record(&key, &bytes))),
                        Err(error) => Some(Err(error.into())),
                    }
                })
                .collect()
        })
}

/// Every request record, or why one cannot be read, or why the records cannot be listed.
pub type RequestRecords<'a> = Box<
    dyn Iterator<Item = Result<Result<(Uuid, StoredRequest), DamagedRequestRecord>, StoreError>>
        + 'a,
>;

/// A request record that cannot be read: its key (`r` ‖ 16 bytes expected) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedRequestRecord {
    pub key: Vec<u8>,
    pub why: String,
}

fn request_record(key: &[u8], value: &[u8]) -> Result<(Uuid, StoredRequest), DamagedRequestRecord> {
    let damaged = |why: String| DamagedRequestRecord {
        key: key.to_vec(),
        why,
    };
    let id_bytes: [u8; 16] = key
        .get(1..)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| damaged(format!("a key of {} bytes instead of 17", key.len())))?;
    let request_id = Uuid::from_bytes(id_bytes);
    let record = RequestRecord::decode(value)
        .map_err(|error| damaged(format!("the record does not decode: {error}")))?;
    let request_digest = record.request_digest.as_slice().try_into().map_err(|_| {
        damaged(format!(
            "a {}-byte digest instead of 32",
            record.request_digest.len()
        ))
    })?;
    Ok((
        request_id,
        StoredRequest {
            request_digest,
            first_position: record.first_position,
            event_count: record.event_count,
            recorded_at: record.recorded_at,
        },
    ))
}

impl fmt::Debug for OfflineLog {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OfflineLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The entries of a log from position 1 in key order, each checked with the chain's rules:
/// the key names the next position (a gap or a renumbering breaks), the hash is recomputed over
/// the exact bytes, and the event says it is at its key's position. Yields
/// [`StoreError::ChainBroken`] at the first break and then ends.
pub struct ChainWalk {
    entries: EntrySource,
    log: Log,
    last_entry: Head,
    finished: bool,
}

impl ChainWalk {
    pub(crate) fn new(log: &Log) -> ChainWalk {
        let entries = match log {
            // Each segment's digest is checked once its entries are walked.
            Log::Sled(db, segments) => {
                EntrySource::Sled(LogEntries::new(db, segments, 1, u64::MAX, true))
            }
            Log::External(_) => EntrySource::new(log, 1, u64::MAX),
        };
        ChainWalk {
            entries,
            log: log.clone(),
            last_entry: Head::EMPTY,
            finished: false,
        }
    }

    /// The last entry walked so far (`Head::EMPTY` before the first).
    pub fn last_entry(&self) -> Head {
        self.last_entry
    }

    /// After the walk: whether the stored head record names the last entry, which catches a
    /// truncated tail (the head is ahead) and entries added without the head. Walks the rest
    /// first if the caller stopped early.
    pub fn finish(mut self) -> Result<Result<Head, ChainBreak>, StoreError> {
        for recorded in self.by_ref() {
            match recorded {
                Ok(_) => {}
                Err(StoreError::ChainBroken(chain_break)) => return Ok(Err(chain_break)),
                Err(other) => return Err(other),
            }
        }
        let stored_record = match &self.log {
            Log::Sled(db, _) => db.get(keys::HEAD_KEY)?.map(|record| record.to_vec()),
            Log::External(backend) => backend
                .stored_head()?
                .map(|head| keys::encode_head(head).to_vec()),
        };
        Ok(chain::check_head(stored_record.as_deref(), self.last_entry))
    }
}

impl Iterator for ChainWalk {
    type Item = Result<RecordedEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let (key, value) = match self.entries.next() {
            None => {
                self.finished = true;
                return None;
            }
            Some(Err(error)) => {
                self.finished = true;
                return Some(Err(error));
            }
            Some(Ok(item)) => item,
        };
        let expected_position = self.last_entry.position + 1;
        match chain::check_entry(expected_position, &self.last_entry.hash, &key, &value) {
            Ok(recorded) => {
                self.last_entry = Head {
                    position: recorded.position,
                    hash: recorded.hash,
                };
                Some(Ok(recorded))
            }
            Err(chain_break) => {
                self.finished = true;
                Some(Err(StoreError::ChainBroken(chain_break)))
            }
        }
    }
}

impl fmt::Debug for ChainWalk {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ChainWalk")
            .field("last_entry", &self.last_entry)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
