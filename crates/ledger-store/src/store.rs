//! The store itself: opening a log directory, group commit, reads and the full chain check.
//!
//! One `Store` owns the sled database of one directory and is its only writer: `append` takes
//! `&mut self`, so the in-memory head is the stored head. Every method blocks on disk; call them
//! from a dedicated thread, never from async code.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ledger_proto::event::v1::{event::Payload, Event, RequestRecord};
use prost::Message;
use uuid::Uuid;

use crate::backend::{GroupWrite, LogBackend, StoredEntry};
use crate::chain::{self, ChainBreak, ChainBreakKind, Head, RecordedEvent};
use crate::checkpoint::{self, CheckpointFile, CheckpointFound, StoredCheckpoint};
use crate::fingerprints::{self, FingerprintFile, FingerprintSnapshot, IdSetSnapshot};
use crate::keys;
use crate::offline::{ChainWalk, OfflineLog};
use crate::segment::{self, Segments};
use crate::tail::{self, Tail};

/// The largest encoded event the store accepts, in bytes.
///
/// sled 0.34 writes any page larger than a quarter of a segment (128 KiB by default) to a
/// separate blob file, which it never fsyncs, and which our `fdatasync` of the data file would
/// not cover. A leaf page holds at most 17 keys, so with events of at most 4 KiB (the largest
/// event of the scheme is well under 2 KiB) every page stays in the data file that is synced.
pub const EVENT_BYTES_MAX: usize = 4 * 1024;

/// The longest stream name the store accepts, in bytes. Stream names (`company/0403019261`)
/// are keys of the `s` records and separators in sled's index pages; this bound keeps those
/// pages, like the leaves, far below sled's blob threshold (see [`EVENT_BYTES_MAX`]).
pub const STREAM_BYTES_MAX: usize = 256;

/// The name of sled 0.34's data file inside the log directory, which we `fdatasync`.
pub(crate) const DATA_FILE_NAME: &str = "db";
/// The name of sled 0.34's configuration file, synced once at open.
pub(crate) const CONF_FILE_NAME: &str = "conf";

/// Fault injection for the crash tests, read only by builds with debug assertions: with
/// `VOUCHER_LEDGER_TEST_FAIL_FDATASYNC_AFTER=N`, the store's `fdatasync`s after the first N
/// (counted from its opening) fail with an injected I/O error instead of syncing, as on a
/// failing or full disk, and the store stops the process as it would then. Release builds
/// never read the variable.
pub const FAIL_FDATASYNC_AFTER_VARIABLE: &str = "VOUCHER_LEDGER_TEST_FAIL_FDATASYNC_AFTER";

/// Unexpected failures of the store: the world (disk, sled, damaged records) or a caller that
/// asked for something the log cannot hold. Nothing is written when `append` returns one.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the event log storage failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("cannot open or sync {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("there is no event log at {}", path.display())]
    LogMissing { path: PathBuf },
    /// The log does not hold together: at open, the head does not name the last entry; on a
    /// read, an entry fails the chain check. The server reports it as data loss.
    #[error(transparent)]
    ChainBroken(#[from] ChainBreak),
    #[error("the request record of {request_id} does not decode")]
    RequestRecordUndecodable {
        request_id: Uuid,
        #[source]
        source: prost::DecodeError,
    },
    #[error("the request record of {request_id} has a {length}-byte digest instead of 32")]
    RequestDigestMalformed { request_id: Uuid, length: usize },
    #[error("the version of stream {stream} is {length} bytes instead of 8")]
    StreamVersionMalformed { stream: String, length: usize },
    /// A group record (see the `tail` module) that does not have its form: the log cannot
    /// say which requests it recorded.
    #[error("the group record under key {} is malformed", hex::encode(key))]
    GroupRecordMalformed { key: Vec<u8> },
    #[error("the request record of {request_id} in its group record does not decode")]
    RequestRecordInGroupUndecodable { request_id: Uuid },
    /// A backup goes into a new folder, or an empty one, never over another store.
    #[error("backup folder {} exists and is not empty", path.display())]
    BackupTargetNotEmpty { path: PathBuf },
    /// The copy, read back, does not end at the head of the log it was copied from.
    #[error("the backup in {} ends at {found} instead of {expected}", path.display())]
    BackupIncomplete {
        path: PathBuf,
        expected: Head,
        found: Head,
    },
    /// The engine must answer a known request id from its record, never append it again.
    #[error("request {request_id} is already recorded")]
    RequestAlreadyRecorded { request_id: Uuid },
    #[error("command {request_id} has {event_count} events, more than a request record counts")]
    CommandTooLarge {
        request_id: Uuid,
        event_count: usize,
    },
    #[error("an event of command {request_id} is {event_bytes} bytes, over {EVENT_BYTES_MAX}")]
    EventTooLarge {
        request_id: Uuid,
        event_bytes: usize,
    },
    #[error(
        "stream name of {stream_bytes} bytes in command {request_id}, more than {STREAM_BYTES_MAX}"
    )]
    StreamNameTooLong {
        request_id: Uuid,
        stream_bytes: usize,
    },
    /// A log kept by a [`LogBackend`] (PostgreSQL) failed: the connection, the server, or
    /// rows that do not have the layout's form.
    #[error("the {backend} event log failed to {operation}: {source}")]
    Backend {
        backend: &'static str,
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process is the log's writer now (it took the writer's lock and a new epoch), or
    /// the stored head moved: this process must not append.
    #[error("this process is no longer the writer of the event log: {why}")]
    NotTheWriter { why: String },
    /// What only the sled store does (an online backup, indexing an old log by name), asked of
    /// a log kept elsewhere.
    #[error("{operation} is not available for an event log kept in {backend}")]
    NotOnThisBackend {
        operation: &'static str,
        backend: String,
    },
}

/// Where a log's records live: sled's tree in the data folder, or a [`LogBackend`]'s rows.
#[derive(Clone)]
pub(crate) enum Log {
    Sled(sled::Db, Segments),
    External(Arc<dyn LogBackend>),
}

impl Log {
    /// The stored head record, unchecked; `None` when there is none or it is malformed.
    pub(crate) fn stored_head(&self) -> Result<Option<Head>, StoreError> {
        match self {
            Log::Sled(db, _) => Ok(db
                .get(keys::HEAD_KEY)?
                .and_then(|record| keys::decode_head(&record))),
            Log::External(backend) => backend.stored_head(),
        }
    }

    /// The stored head checked against the last entry (see `chain::check_head`).
    fn checked_head(&self) -> Result<Head, StoreError> {
        match self {
            Log::Sled(db, segments) => {
                let last_entry = last_entry(db, segments)?;
                let stored_record = db.get(keys::HEAD_KEY)?;
                Ok(chain::check_head(stored_record.as_deref(), last_entry)?)
            }
            Log::External(backend) => {
                let last_entry = backend.last_entry()?;
                let stored_record = backend.stored_head()?.map(keys::encode_head);
                Ok(chain::check_head(
                    stored_record.as_ref().map(|record| &record[..]),
                    last_entry,
                )?)
            }
        }
    }

    /// Without the store's [`Tail`]: the `n` keys, then the group records not yet folded.
    fn positions_naming(&self, id: Uuid) -> Result<Vec<u64>, StoreError> {
        match self {
            Log::Sled(db, _) => {
                let mut positions = positions_naming(db, id)?;
                positions.extend(tail::positions_naming_in_groups(db, id)?);
                positions.sort_unstable();
                positions.dedup();
                Ok(positions)
            }
            Log::External(backend) => backend.positions_naming(id),
        }
    }

    /// The position and stored hash of the entry at `position`, its form checked, or `None`
    /// when there is none or it is malformed (position 0 is the empty log's head).
    fn entry_head(&self, position: u64) -> Result<Option<Head>, StoreError> {
        match self {
            Log::Sled(db, segments) => {
                Ok(entry_hash(db, segments, position)?.map(|hash| Head { position, hash }))
            }
            Log::External(backend) => Ok(backend
                .entries(position, position, 1)?
                .into_iter()
                .find(|entry| entry.position == position)
                .map(|entry| Head {
                    position,
                    hash: entry.hash,
                })),
        }
    }

    fn request_record(&self, request_id: Uuid) -> Result<Option<RequestRecord>, StoreError> {
        match self {
            Log::Sled(db, _) => {
                let Some(value) = db.get(keys::request_key(request_id))? else {
                    return Ok(None);
                };
                RequestRecord::decode(value.as_ref())
                    .map(Some)
                    .map_err(|source| StoreError::RequestRecordUndecodable { request_id, source })
            }
            Log::External(backend) => backend.request(request_id),
        }
    }

    fn contains_request(&self, request_id: Uuid) -> Result<bool, StoreError> {
        match self {
            Log::Sled(db, _) => Ok(db.contains_key(keys::request_key(request_id))?),
            Log::External(backend) => Ok(backend.request(request_id)?.is_some()),
        }
    }

    fn backend_name(&self) -> String {
        match self {
            Log::Sled(..) => "sled".to_owned(),
            Log::External(backend) => backend.describe(),
        }
    }
}

/// How a [`Store`] behaves; `StoreOptions::default()` is what the server uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Flush sled and `fdatasync` its data file before `append` returns (default `true`).
    /// `false` is only for bulk loads and benchmarks, which then call [`Store::sync`]: without
    /// it, an appended group may be lost by a crash after it was returned.
    pub flush_every_append: bool,
    /// Leave the reading of the recorded ids into the fingerprint sets to
    /// [`Store::load_indexes`] (default `false`: it starts at open). The engine starts it once
    /// the state is recovered: on two cores the read, which covers the whole database, would
    /// otherwise compete with loading the checkpoint and delay serving. Until then every
    /// lookup goes to sled, which is exact.
    pub defer_index_loading: bool,
    /// Entries per segment file of the sealed past (see the `segment` module): each time the
    /// fingerprints are saved with a checkpoint, every whole run of this many entries at or
    /// below its head leaves sled for a segment file. Default [`SEGMENT_LEN_EVENTS_DEFAULT`];
    /// the server takes it from its `segment_len_events` setting, which the crash tests make
    /// small.
    pub segment_len_events: u64,
}

/// Entries per segment by default: about 70 MB of file each, a few dozen files after twenty
/// years of the scheme (100 000–150 000 events a year), and a seal of a few seconds on the
/// checkpoint thread.
pub const SEGMENT_LEN_EVENTS_DEFAULT: u64 = 200_000;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_every_append: true,
            defer_index_loading: false,
            segment_len_events: SEGMENT_LEN_EVENTS_DEFAULT,
        }
    }
}

/// An event before the store gives it a place in the log.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The stream, such as `company/0403019261`; not empty, at most [`STREAM_BYTES_MAX`] bytes.
    pub stream: String,
    pub event_id: Uuid,
    /// Must be the request id of the command that carries the event.
    pub request_id: Uuid,
    pub principal: String,
    /// RFC 3339 UTC.
    pub recorded_at: String,
    /// ISO 8601 calendar date.
    pub business_date: String,
    pub payload: Payload,
    /// The id of what the event is about, when the engine will need to find it again by that
    /// id (a redemption, which a reversal names): the store keeps an index from each id to the
    /// positions of the events naming it (see [`Store::positions_naming`]).
    pub names: Option<Uuid>,
}

/// An accepted command: its request record and the events it wrote (possibly none).
#[derive(Clone, Debug, PartialEq)]
pub struct NewCommand {
    pub request_id: Uuid,
    /// SHA-256 of the canonical encoding of the command and its principal.
    pub request_digest: [u8; 32],
    /// RFC 3339 UTC.
    pub recorded_at: String,
    pub events: Vec<NewEvent>,
}

/// The durable record of an accepted command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRequest {
    pub request_digest: [u8; 32],
    /// Position of the first event the command wrote; the head + 1 at that time if it wrote none.
    pub first_position: u64,
    pub event_count: u32,
    pub recorded_at: String,
}

/// A group checked, encoded and positioned by [`Store::prepare_append`], waiting for
/// [`Committer::commit`] to write it.
#[derive(Debug)]
pub struct PreparedAppend {
    /// `None` when there was nothing to write.
    batch: Option<Pending>,
    recorded: Vec<Vec<RecordedEvent>>,
}

/// What a prepared group writes, in the form its log takes.
#[derive(Debug)]
enum Pending {
    /// The batch, and the request records (encoded) and names that go into its group record
    /// rather than keys of their own (see the `tail` module).
    Sled {
        batch: sled::Batch,
        /// Each request's id, its encoded record, and the heads before and after its events.
        requests: Vec<tail::GroupRequest>,
        names: Vec<(Uuid, u64)>,
    },
    External(GroupWrite),
}

impl Pending {
    fn new(log: &Log, previous_head: Head) -> Pending {
        match log {
            Log::Sled(..) => Pending::Sled {
                batch: sled::Batch::default(),
                requests: Vec::new(),
                names: Vec::new(),
            },
            Log::External(_) => Pending::External(GroupWrite {
                previous_head,
                head: previous_head,
                entries: Vec::new(),
                requests: Vec::new(),
                stream_versions: Vec::new(),
                names: Vec::new(),
            }),
        }
    }

    fn name(&mut self, id: Uuid, position: u64) {
        match self {
            Pending::Sled { names, .. } => names.push((id, position)),
            Pending::External(write) => write.names.push((id, position)),
        }
    }

    fn entry(&mut self, recorded: &RecordedEvent) {
        match self {
            Pending::Sled { batch, .. } => batch.insert(
                &keys::entry_key(recorded.position)[..],
                chain::encode_entry(&recorded.event_bytes, &recorded.hash),
            ),
            Pending::External(write) => write.entries.push(StoredEntry {
                position: recorded.position,
                hash: recorded.hash,
                stream: recorded.event.stream.clone(),
                stream_version: recorded.event.stream_version,
                event_bytes: recorded.event_bytes.clone(),
            }),
        }
    }

    fn request(&mut self, request_id: Uuid, record: RequestRecord, head_after: u64) {
        match self {
            Pending::Sled { requests, .. } => requests.push(tail::GroupRequest {
                request_id,
                head_before: record.first_position - 1,
                head_after,
                record: record.encode_to_vec(),
            }),
            Pending::External(write) => write.requests.push((request_id, record)),
        }
    }

    fn stream_version(&mut self, stream: &str, version: u64) {
        match self {
            Pending::Sled { batch, .. } => {
                batch.insert(keys::stream_key(stream), &version.to_be_bytes()[..])
            }
            Pending::External(write) => write.stream_versions.push((stream.to_owned(), version)),
        }
    }

    fn head(&mut self, head: Head) {
        match self {
            Pending::Sled { batch, .. } => {
                batch.insert(keys::HEAD_KEY, &keys::encode_head(head)[..])
            }
            Pending::External(write) => write.head = head,
        }
    }

    /// The group records (see the `tail` and `fingerprints` modules): the group's request
    /// records and names, cut into records of a few commands each, and what a start adds to
    /// the saved fingerprints. A backend's log has none; it keeps request records and names in
    /// rows of their own.
    fn group(&mut self) {
        let Pending::Sled {
            batch,
            requests,
            names,
        } = self
        else {
            return;
        };
        for (key, value) in tail::group_records(requests, names) {
            batch.insert(key, value);
        }
    }
}

impl PreparedAppend {
    /// The events the group will have once committed, per command, in order.
    pub fn recorded(&self) -> &[Vec<RecordedEvent>] {
        &self.recorded
    }
}

/// Applies prepared batches to sled and makes them durable, or hands them to the log's
/// backend as one transaction; cheap to clone and `Send`, so a thread of its own can sync one
/// group while the writer decides the next.
#[derive(Clone)]
pub struct Committer {
    target: CommitTarget,
}

#[derive(Clone)]
enum CommitTarget {
    Sled(SledCommitter),
    External(Arc<dyn LogBackend>),
}

#[derive(Clone)]
struct SledCommitter {
    db: sled::Db,
    data_file: Arc<File>,
    data_path: PathBuf,
    syncs_before_injected_failure: Arc<AtomicU64>,
}

impl fmt::Debug for Committer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = formatter.debug_struct("Committer");
        match &self.target {
            CommitTarget::Sled(sled) => debug.field("data_path", &sled.data_path),
            CommitTarget::External(backend) => debug.field("backend", &backend.describe()),
        };
        debug.finish_non_exhaustive()
    }
}

impl Committer {
    /// Writes a prepared group in one sled batch, then (with `flush`) flushes sled and
    /// `fdatasync`s its data file, and only then returns the group's recorded events. A failed
    /// write, flush or sync stops the process (see `stop_after_failed_write`). On a log kept
    /// by a backend, the group is one transaction, durable when it returns (`flush` changes
    /// nothing); a refused or failed commit, whose outcome may be unknown, stops the process
    /// the same way.
    pub fn commit(&self, prepared: PreparedAppend, flush: bool) -> Vec<Vec<RecordedEvent>> {
        let Some(batch) = prepared.batch else {
            return prepared.recorded;
        };
        match (&self.target, batch) {
            (CommitTarget::Sled(sled), Pending::Sled { batch, .. }) => {
                if let Err(error) = sled.db.apply_batch(batch) {
                    stop_after_failed_write("apply_batch", &sled.data_path, &error);
                }
                if flush {
                    sled.sync();
                }
            }
            (CommitTarget::External(backend), Pending::External(write)) => {
                if let Err(error) = backend.commit(&write) {
                    stop_after_failed_write("commit", Path::new(&backend.describe()), &error);
                }
            }
            _ => unreachable!("a group is prepared for the log it is committed to"),
        }
        prepared.recorded
    }

    /// Flushes sled, then `fdatasync`s its data file; stops the process if either fails. A log
    /// kept by a backend has nothing to sync: each commit was durable when it returned.
    pub fn sync(&self) {
        if let CommitTarget::Sled(sled) = &self.target {
            sled.sync();
        }
    }
}

impl Committer {
    /// [`Committer::commit`], except that a log kept by a backend whose commit failed (the
    /// connection lost, its outcome unknown, or this process fenced out) returns the error
    /// instead of stopping the process: an engine that can reconnect (issue 19, see
    /// `ledger_engine::reconnect`) stops answering, then recovers from the log on a new
    /// connection. Nothing of the group may be assumed written or not. sled's failures still
    /// stop the process (see `stop_after_failed_write`).
    pub fn try_commit(
        &self,
        prepared: PreparedAppend,
        flush: bool,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        if let (CommitTarget::External(backend), Some(Pending::External(write))) =
            (&self.target, &prepared.batch)
        {
            backend.commit(write)?;
            return Ok(prepared.recorded);
        }
        Ok(self.commit(prepared, flush))
    }
}

/// A flush and `fdatasync` slower than this is logged, with the time of each: an operator's
/// first clue when callers wait, and what tells sled's own writing from the disk's.
const SYNC_SLOW_MILLIS: u128 = 500;

impl SledCommitter {
    fn sync(&self) {
        let started = std::time::Instant::now();
        if let Err(error) = self.db.flush() {
            stop_after_failed_write("flush", &self.data_path, &error);
        }
        let flushed = started.elapsed();
        let synced = if self.sync_failure_injected() {
            Err(io::Error::other(format!(
                "injected fdatasync failure ({FAIL_FDATASYNC_AFTER_VARIABLE})"
            )))
        } else {
            self.data_file.sync_data()
        };
        if let Err(error) = synced {
            stop_after_failed_write("fdatasync", &self.data_path, &error);
        }
        let elapsed = started.elapsed();
        if elapsed.as_millis() >= SYNC_SLOW_MILLIS {
            tracing::warn!(
                flush_ms = flushed.as_millis() as u64,
                fdatasync_ms = (elapsed - flushed).as_millis() as u64,
                "slow commit: sled's flush and the data file's fdatasync"
            );
        }
    }

    /// Whether this `fdatasync` is to fail (see [`FAIL_FDATASYNC_AFTER_VARIABLE`]).
    fn sync_failure_injected(&self) -> bool {
        let left = self.syncs_before_injected_failure.load(Ordering::Relaxed);
        if left == u64::MAX {
            return false;
        }
        if left == 0 {
            return true;
        }
        self.syncs_before_injected_failure
            .store(left - 1, Ordering::Relaxed);
        false
    }
}

/// The event log of one directory, open for appending. See the crate documentation.
pub struct Store {
    pub(crate) log: Log,
    /// sled's data file, kept open to `fdatasync` it after every flush (absent for a log kept
    /// by a backend).
    data_file: Option<Arc<File>>,
    data_path: PathBuf,
    pub(crate) head: Head,
    /// The head when the log was opened: the fingerprints read by [`Store::load_indexes`] are
    /// those of the ids in the log then; every id recorded since is added as it is written.
    head_at_open: Head,
    options: StoreOptions,
    /// `fdatasync`s left before the injected failures begin; `u64::MAX` when none is injected
    /// (see [`FAIL_FDATASYNC_AFTER_VARIABLE`]).
    syncs_before_injected_failure: Arc<AtomicU64>,
    /// Where the checkpoint is kept (see the `checkpoint` module).
    checkpoint_file: CheckpointFile,
    /// Which request ids may have a record: see [`IdFilter`].
    requests: IdFilter,
    /// Which ids may be in the index by name, the same way.
    names: IdFilter,
    /// The thread that reads both filters' ids of the open.
    id_loader: IdLoader,
    /// The request records and names of the group records not yet folded (see `tail`).
    tail: Tail,
    /// Every stream's version, as stored: a group reads and bumps them here instead of in sled.
    /// Streams are companies, providers and budget years, so this grows with the entities of
    /// the scheme, not with its history.
    stream_versions: HashMap<String, u64>,
}

/// The ids under one key prefix (recorded request ids, indexed names), as 64-bit fingerprints,
/// so that the common case of a lookup (an idempotency check of a new request id, a new
/// redemption id) costs no sled read: a fingerprint that is absent proves
/// the record is absent; one that is present sends the lookup to sled, which answers exactly
/// (a retry, or in about one case in 2^64 per recorded id, another request id).
///
/// The ids already in the log are read by a thread of its own at open ([`IdLoader`]), so that a
/// start does not wait for them; until it is done, every id may be held (each lookup goes to
/// sled, as without the filter). They come from the fingerprints saved at the last checkpoint
/// and the group records after it (see the `fingerprints` module), or, when those cannot be
/// used, from every request record and every key of the index by name. Request ids come from
/// clients, so the sets keep std's randomly keyed SipHash: a caller who chose ids to collide
/// could not slow the table down. About 16 bytes per recorded request.
#[derive(Debug, Default)]
struct IdFilter {
    /// Added since the log was opened.
    fingerprints: HashSet<u64>,
    /// Those in the log when it was opened, once read.
    at_open: Arc<OnceLock<HashSet<u64>>>,
}

/// The thread reading the ids of the open into both filters, and what tells it to stop: it
/// holds a handle on sled, whose file lock must be let go when the store is dropped (a restart
/// opens it right after).
#[derive(Debug, Default)]
struct IdLoader {
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// Where the ids of the open came from, once read.
    source: Arc<OnceLock<IdSource>>,
}

/// Where the fingerprints of the ids in the log at open were read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSource {
    /// The fingerprints saved with the last checkpoint and the group records after them.
    Saved,
    /// Every request record and every key of the index by name.
    WholeLog,
    /// A log kept by a backend: its rows.
    Backend,
}

impl Drop for IdLoader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl IdLoader {
    /// Starts `read` on a thread of its own, unless it was started before.
    fn start(&mut self, read: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        if self.thread.is_some() {
            return;
        }
        let stop = Arc::clone(&self.stop);
        match std::thread::Builder::new()
            .name("ledger-index-load".into())
            .spawn(move || read(stop))
        {
            Ok(thread) => self.thread = Some(thread),
            Err(error) => {
                tracing::warn!(%error, "index thread cannot be started; lookups go to the store")
            }
        }
    }
}

/// Every id under `prefix` of `db` (each key read by `id_of`) as fingerprints; `None` when the
/// read failed (logged) or was told to stop.
fn read_fingerprints(
    db: &sled::Db,
    prefix: u8,
    id_of: fn(&[u8]) -> Option<Uuid>,
    stop: &AtomicBool,
) -> Option<HashSet<u64>> {
    let mut fingerprints = HashSet::new();
    for item in db.scan_prefix([prefix]) {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        match item {
            Ok((key, _)) => {
                if let Some(id) = id_of(&key) {
                    fingerprints.insert(IdFilter::fingerprint(id));
                }
            }
            Err(error) => {
                // Never set: every lookup keeps going to sled, which stays exact.
                tracing::warn!(%error, prefix = %char::from(prefix), "index not read; lookups go to the store");
                return None;
            }
        }
    }
    Some(fingerprints)
}

/// The id of a key of the index by name.
fn name_id_of(key: &[u8]) -> Option<Uuid> {
    keys::name_of(key).map(|(id, _)| id)
}

impl IdFilter {
    fn fingerprint(request_id: Uuid) -> u64 {
        let bytes = request_id.as_bytes();
        let mut high = [0u8; 8];
        let mut low = [0u8; 8];
        high.copy_from_slice(&bytes[..8]);
        low.copy_from_slice(&bytes[8..]);
        u64::from_le_bytes(high) ^ u64::from_le_bytes(low).rotate_left(29)
    }

    /// What the writer hands to the thread that saves the fingerprints.
    fn snapshot(&self) -> IdSetSnapshot {
        IdSetSnapshot {
            at_open: Arc::clone(&self.at_open),
            since_open: self.fingerprints.clone(),
        }
    }

    fn may_hold(&self, request_id: Uuid) -> bool {
        let fingerprint = IdFilter::fingerprint(request_id);
        self.fingerprints.contains(&fingerprint)
            || self
                .at_open
                .get()
                .is_none_or(|at_open| at_open.contains(&fingerprint))
    }

    fn insert(&mut self, request_id: Uuid) {
        self.fingerprints.insert(IdFilter::fingerprint(request_id));
    }
}

impl Store {
    /// Creates the log in `dir`, or reopens it, with the default options.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_options(dir, StoreOptions::default())
    }

    /// Creates or reopens the log in `dir`. Refuses, with [`StoreError::ChainBroken`], a log
    /// whose stored head does not name its last entry; [`verify_log_at`] then finds the first
    /// bad position. The rest of the chain is not checked here: that is [`Store::verify`].
    pub fn open_with_options(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let db = open_sled(dir)?;
        let data_path = dir.join(DATA_FILE_NAME);
        // Read and write access: some platforms refuse to sync a file opened read-only.
        let data_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data_path)
            .map_err(|source| StoreError::Io {
                path: data_path.clone(),
                source,
            })?;
        // The files sled created or recovered, and their names in the directory, become
        // durable before anything is appended; a failure here stops the start, not a write.
        sync_once(&data_file, &data_path)?;
        let conf_path = dir.join(CONF_FILE_NAME);
        sync_path(&conf_path)?;
        sync_directory(dir)?;
        // And the folder's own name, in its parent: the server creates the data folder when it
        // is missing, and a new folder whose parent was never synced vanishes, with every
        // acknowledged event in it, at a power cut (the power-loss test lost a whole new log
        // this way). The folders above are the operator's, made once. (A relative `dir` of one
        // component has the empty path as its parent: the current directory.)
        if let Some(parent) = dir.parent() {
            if parent.as_os_str().is_empty() {
                sync_directory(Path::new("."))?;
            } else {
                sync_directory(parent)?;
            }
        }

        let segments = Segments::open(dir, false)?;
        if segments.remove_sealed_from(&db)? {
            db.flush()?;
            sync_once(&data_file, &data_path)?;
        }
        let last_entry = last_entry(&db, &segments)?;
        let stored_record = db.get(keys::HEAD_KEY)?;
        let head = chain::check_head(stored_record.as_deref(), last_entry)?;
        let stream_versions = load_stream_versions(&db)?;
        // The records of the groups not yet folded: about one checkpoint interval's, read
        // before serving so that every retry of them is answered exactly.
        let tail = tail::read_tail(&db)?;
        if checkpoint::remove_legacy_records(&db)? {
            // Written by a version that kept checkpoints in sled: the next one is a file, and
            // until then a start replays from position 1. Their pages go back to sled.
            db.flush()?;
            sync_once(&data_file, &data_path)?;
            tracing::info!(path = %dir.display(), "checkpoint records of an earlier version removed from the log's database");
        }
        if head.position == 0 && db.get(keys::NAME_INDEX_KEY)?.is_none() {
            // A new log: every event it will hold goes through the index by name.
            db.insert(keys::NAME_INDEX_KEY, &[keys::NAME_INDEX_VERSION][..])?;
            db.flush()?;
            sync_once(&data_file, &data_path)?;
        }
        tracing::info!(
            path = %dir.display(),
            position = head.position,
            hash = %hex::encode(head.hash),
            streams = stream_versions.len(),
            segments = segments.all().len(),
            sealed_through = segments.sealed_through(),
            "event log opened"
        );
        let defer_index_loading = options.defer_index_loading;
        let mut store = Store {
            log: Log::Sled(db, segments),
            data_file: Some(Arc::new(data_file)),
            data_path,
            head,
            head_at_open: head,
            options,
            syncs_before_injected_failure: Arc::new(
                AtomicU64::new(syncs_before_injected_failure()),
            ),
            checkpoint_file: CheckpointFile::in_data_dir(dir),
            requests: IdFilter::default(),
            names: IdFilter::default(),
            id_loader: IdLoader::default(),
            tail,
            stream_versions,
        };
        // Their ids are in no `r` or `n` key yet, which a read of the whole log goes by.
        store.remember_tail_ids();
        if !defer_index_loading {
            store.load_indexes();
        }
        Ok(store)
    }

    /// Adds the ids of the tail's records to the fingerprints added since open.
    fn remember_tail_ids(&mut self) {
        for request_id in self.tail.request_ids() {
            self.requests.insert(request_id);
        }
        for id in self.tail.named_ids() {
            self.names.insert(id);
        }
    }

    /// Forgets, from memory, the records that the save of the fingerprints at `position`
    /// folded into their own keys ([`FingerprintFile::save`]): reads of them now go to sled.
    /// Call it once that save returned `Ok`.
    pub fn forget_folded(&mut self, position: u64) {
        self.tail.forget_folded(position);
    }

    /// The request records held in memory, in group records not yet folded.
    pub fn unfolded_requests(&self) -> usize {
        self.tail.len()
    }

    /// Opens a log kept by `backend` (see [`LogBackend`]): its head checked against its last
    /// entry as [`Store::open`] does, the checkpoint file kept in the local folder
    /// `checkpoint_dir` (created when missing), which is a cache of this process's.
    pub fn open_backend(
        backend: Arc<dyn LogBackend>,
        checkpoint_dir: &Path,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(checkpoint_dir).map_err(|source| StoreError::Io {
            path: checkpoint_dir.to_path_buf(),
            source,
        })?;
        let log = Log::External(backend);
        let head = log.checked_head()?;
        let stream_versions = match &log {
            Log::External(backend) => backend.stream_versions()?,
            Log::Sled(db, _) => load_stream_versions(db)?,
        };
        tracing::info!(
            backend = %log.backend_name(),
            position = head.position,
            hash = %hex::encode(head.hash),
            streams = stream_versions.len(),
            "event log opened"
        );
        let defer_index_loading = options.defer_index_loading;
        let mut store = Store {
            log,
            data_file: None,
            data_path: checkpoint_dir.to_path_buf(),
            head,
            head_at_open: head,
            options,
            syncs_before_injected_failure: Arc::new(AtomicU64::new(u64::MAX)),
            checkpoint_file: CheckpointFile::in_data_dir(checkpoint_dir),
            requests: IdFilter::default(),
            names: IdFilter::default(),
            id_loader: IdLoader::default(),
            tail: Tail::default(),
            stream_versions,
        };
        if !defer_index_loading {
            store.load_indexes();
        }
        Ok(store)
    }

    /// The sled database of a store that keeps its log in sled, or why `operation` is not
    /// available on this one.
    pub(crate) fn sled_db(&self, operation: &'static str) -> Result<&sled::Db, StoreError> {
        match &self.log {
            Log::Sled(db, _) => Ok(db),
            Log::External(backend) => Err(StoreError::NotOnThisBackend {
                operation,
                backend: backend.describe(),
            }),
        }
    }

    /// Starts reading the recorded request ids and indexed names into their fingerprint sets,
    /// for a store opened with [`StoreOptions::defer_index_loading`]; does nothing when they
    /// are being read or were read. On sled, from the fingerprints saved at the last
    /// checkpoint and the group records after it when they cover the log (see the
    /// `fingerprints` module), else from every request record and every key of the index by
    /// name; on a backend, from its rows.
    pub fn load_indexes(&mut self) {
        let requests = Arc::clone(&self.requests.at_open);
        let names = Arc::clone(&self.names.at_open);
        let source = Arc::clone(&self.id_loader.source);
        match &self.log {
            Log::Sled(db, segments) => {
                let db = db.clone();
                let segments = segments.clone();
                let dir = self.checkpoint_file.path().parent().map(Path::to_path_buf);
                // Not the head now: the writer may have appended since the open, and those
                // ids are among the ones added since (`IdFilter::fingerprints`).
                let head = self.head_at_open;
                self.id_loader.start(move |stop| {
                    let started = std::time::Instant::now();
                    let saved = dir.and_then(|dir| {
                        fingerprints::load_saved(&dir, &db, &segments, head, IdFilter::fingerprint)
                    });
                    let (read_requests, read_names, from) = match saved {
                        Some((saved_requests, saved_names)) => {
                            (Some(saved_requests), Some(saved_names), IdSource::Saved)
                        }
                        None => (
                            read_fingerprints(
                                &db,
                                keys::REQUEST_PREFIX,
                                keys::request_id_of,
                                &stop,
                            ),
                            read_fingerprints(&db, keys::NAME_PREFIX, name_id_of, &stop),
                            IdSource::WholeLog,
                        ),
                    };
                    let (Some(read_requests), Some(read_names)) = (read_requests, read_names)
                    else {
                        return;
                    };
                    tracing::info!(
                        source = ?from,
                        requests = read_requests.len(),
                        names = read_names.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "fingerprints of the recorded ids loaded"
                    );
                    let _ = requests.set(read_requests);
                    let _ = names.set(read_names);
                    let _ = source.set(from);
                });
            }
            Log::External(backend) => {
                let backend = Arc::clone(backend);
                self.id_loader.start(move |_| {
                    for (set, which) in [
                        (&requests, crate::IdKind::Requests),
                        (&names, crate::IdKind::Names),
                    ] {
                        // Read as they come, never all the ids at once.
                        let mut fingerprints = HashSet::new();
                        match backend.for_each_id(which, &mut |id| {
                            fingerprints.insert(IdFilter::fingerprint(id));
                        }) {
                            Ok(()) => {
                                let _ = set.set(fingerprints);
                                let _ = source.set(IdSource::Backend);
                            }
                            Err(error) => {
                                tracing::warn!(%error, "index not read; lookups go to the store")
                            }
                        }
                    }
                });
            }
        }
    }

    /// The fingerprints at the head, for [`FingerprintFile::save`]; `None` on a log kept by a
    /// backend, which has no group records to add to them at a start. Call it between two
    /// groups: everything prepared is committed, so they are those of the durable head.
    pub fn fingerprint_snapshot(&self) -> Option<FingerprintSnapshot> {
        match self.log {
            Log::Sled(..) => Some(FingerprintSnapshot {
                head: self.head,
                requests: self.requests.snapshot(),
                names: self.names.snapshot(),
            }),
            Log::External(_) => None,
        }
    }

    /// Where [`Store::fingerprint_snapshot`]s are saved; `None` on a log kept by a backend.
    pub fn fingerprint_file(&self) -> Option<FingerprintFile> {
        match &self.log {
            Log::Sled(db, segments) => Some(FingerprintFile::new(
                self.checkpoint_file
                    .path()
                    .parent()
                    .unwrap_or(Path::new(".")),
                db.clone(),
                segments.clone(),
                self.options.segment_len_events,
            )),
            Log::External(_) => None,
        }
    }

    /// The last position written and its hash.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The version of `stream` after its last event; 0 for a stream with no event.
    pub fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        Ok(self.stream_versions.get(stream).copied().unwrap_or(0))
    }

    /// Whether the ids already in the log at open (recorded requests, names) have been read into
    /// memory: until then their lookups go to sled, exact but slower (see `IdFilter`).
    pub fn indexes_loaded(&self) -> bool {
        self.requests.at_open.get().is_some() && self.names.at_open.get().is_some()
    }

    /// Where the ids of the open were read from, once they are loaded (see
    /// [`Store::indexes_loaded`]).
    pub fn indexes_source(&self) -> Option<IdSource> {
        self.id_loader.source.get().copied()
    }

    /// The positions of the events that name `id` (see [`NewEvent::names`]), ascending, as far
    /// as they are committed; empty for an id never named, which is answered from memory.
    pub fn positions_naming(&self, id: Uuid) -> Result<Vec<u64>, StoreError> {
        if !self.names.may_hold(id) {
            return Ok(Vec::new());
        }
        let Log::Sled(db, _) = &self.log else {
            return self.log.positions_naming(id);
        };
        let mut positions = positions_naming(db, id)?;
        positions.extend_from_slice(self.tail.positions_naming(id));
        positions.sort_unstable();
        positions.dedup();
        Ok(positions)
    }

    /// Whether the index by name covers every event of the log. A log written before the
    /// index existed does not, until [`Store::index_names`] has been given its names. A log
    /// kept by a backend always does: the index is as old as that layout.
    pub fn names_indexed(&self) -> Result<bool, StoreError> {
        let Log::Sled(db, _) = &self.log else {
            return Ok(true);
        };
        Ok(db.get(keys::NAME_INDEX_KEY)?.as_deref() == Some(&[keys::NAME_INDEX_VERSION][..]))
    }

    /// Adds `(id, position)` pairs of events already in the log to the index by name, then
    /// records that the index is complete, flushed and synced: for a log written before the
    /// index existed, whose names the caller found by reading it.
    pub fn index_names(&mut self, names: Vec<(Uuid, u64)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, position) in &names {
            batch.insert(&keys::name_key(*id, *position)[..], &[][..]);
        }
        batch.insert(keys::NAME_INDEX_KEY, &[keys::NAME_INDEX_VERSION][..]);
        if let Err(error) = self.sled_db("index the log by name")?.apply_batch(batch) {
            stop_after_failed_write("apply_batch", &self.data_path, &error);
        }
        for (id, _) in names {
            self.names.insert(id);
        }
        self.sync();
        Ok(())
    }

    /// The record of an accepted command, if `request_id` was recorded. A request id never
    /// recorded (the common case) is answered from memory, without a read.
    pub fn request(&self, request_id: Uuid) -> Result<Option<StoredRequest>, StoreError> {
        if !self.requests.may_hold(request_id) {
            return Ok(None);
        }
        let record = match self.tail.request(request_id) {
            Some(record) => record.clone(),
            None => match self.log.request_record(request_id)? {
                Some(record) => record,
                None => return Ok(None),
            },
        };
        let request_digest = record.request_digest.as_slice().try_into().map_err(|_| {
            StoreError::RequestDigestMalformed {
                request_id,
                length: record.request_digest.len(),
            }
        })?;
        Ok(Some(StoredRequest {
            request_digest,
            first_position: record.first_position,
            event_count: record.event_count,
            recorded_at: record.recorded_at,
        }))
    }

    /// Group commit. Writes every command of `group` in one sled batch, in order: gives the
    /// events positions head + 1, head + 2, … and their stream versions, fills those into each
    /// `Event`, encodes and chains them, records each command's request (its first position is
    /// the head + 1 at that point when it wrote no event) and the new head. Then, unless the
    /// options say otherwise, flushes sled and `fdatasync`s its data file, and only then
    /// returns the recorded events of each command, in order.
    ///
    /// A refused group (`StoreError`) writes nothing. A failed write, flush or sync stops the
    /// process (see `stop_after_failed_write`).
    pub fn append(
        &mut self,
        group: Vec<NewCommand>,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        self.append_with_checkpoint(group, None)
    }

    /// A checkpoint, then [`Store::append`]: `checkpoint` is the caller's encoded state as of
    /// the current head, before this group (see the `checkpoint` module); it is durable before
    /// the group is written. With an empty group, writes the checkpoint alone. The head must be
    /// durable: every earlier append committed (as it is after `append`).
    pub fn append_with_checkpoint(
        &mut self,
        group: Vec<NewCommand>,
        checkpoint: Option<&[u8]>,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        if let Some(bytes) = checkpoint {
            self.checkpoint_file.save(&self.head, bytes)?;
        }
        let prepared = self.prepare_append(group)?;
        let flush = self.options.flush_every_append;
        Ok(self.committer().commit(prepared, flush))
    }

    /// Where the checkpoint is written, for a thread that encodes one (see
    /// [`CheckpointFile::save`]): the checkpoint must reflect a durable position of this log.
    pub fn checkpoint_file(&self) -> CheckpointFile {
        self.checkpoint_file.clone()
    }

    /// The first half of an append, for a writer that overlaps deciding a group with making
    /// the previous one durable: checks and encodes `group` into one sled batch, gives the events
    /// their positions, and moves the store's head, stream versions and request index past the
    /// group as if it were written. Nothing reaches sled until [`Committer::commit`] applies the
    /// batch; until then, reads through sled do not see the group, so the caller must commit
    /// every prepared batch, in the order they were prepared, before it trusts a read again
    /// (and must not prepare a group that repeats a request id of one not yet committed).
    /// A refused group (`StoreError`) changes nothing.
    pub fn prepare_append(&mut self, group: Vec<NewCommand>) -> Result<PreparedAppend, StoreError> {
        let mut batch = Pending::new(&self.log, self.head);
        if group.is_empty() {
            return Ok(PreparedAppend {
                batch: None,
                recorded: Vec::new(),
            });
        }
        let mut stream_versions: HashMap<String, u64> = HashMap::new();
        let mut request_ids: HashSet<Uuid> = HashSet::with_capacity(group.len());
        // The group's records, for the store's tail once it is prepared (sled only).
        let mut recorded_requests: Vec<(Uuid, RequestRecord)> = Vec::with_capacity(group.len());
        let mut named: Vec<(Uuid, u64)> = Vec::new();
        let mut head = self.head;
        let mut recorded_group = Vec::with_capacity(group.len());

        for command in group {
            let request_id = command.request_id;
            if !request_ids.insert(request_id)
                || (self.requests.may_hold(request_id)
                    && (self.tail.request(request_id).is_some()
                        || self.log.contains_request(request_id)?))
            {
                return Err(StoreError::RequestAlreadyRecorded { request_id });
            }
            let event_count =
                u32::try_from(command.events.len()).map_err(|_| StoreError::CommandTooLarge {
                    request_id,
                    event_count: command.events.len(),
                })?;
            let first_position = head.position + 1;
            let mut recorded_command = Vec::with_capacity(command.events.len());

            for new_event in command.events {
                assert_eq!(
                    new_event.request_id, request_id,
                    "an event must carry the request id of its command"
                );
                assert!(
                    !new_event.stream.is_empty(),
                    "an event must name its stream"
                );
                if new_event.stream.len() > STREAM_BYTES_MAX {
                    return Err(StoreError::StreamNameTooLong {
                        request_id,
                        stream_bytes: new_event.stream.len(),
                    });
                }
                let stream_version = match stream_versions.get_mut(new_event.stream.as_str()) {
                    Some(version) => {
                        *version += 1;
                        *version
                    }
                    None => {
                        let version = self
                            .stream_versions
                            .get(new_event.stream.as_str())
                            .map_or(1, |stored| stored + 1);
                        stream_versions.insert(new_event.stream.clone(), version);
                        version
                    }
                };

                let position = head.position + 1;
                // Positions must run on from the head with no gap, whatever the group holds.
                assert_eq!(
                    position,
                    first_position + recorded_command.len() as u64,
                    "positions must be gap-free"
                );
                let event = Event {
                    position,
                    stream: new_event.stream,
                    stream_version,
                    event_id: new_event.event_id.to_string(),
                    request_id: new_event.request_id.to_string(),
                    principal: new_event.principal,
                    recorded_at: new_event.recorded_at,
                    business_date: new_event.business_date,
                    payload: Some(new_event.payload),
                };
                let event_bytes = event.encode_to_vec();
                if event_bytes.len() > EVENT_BYTES_MAX {
                    return Err(StoreError::EventTooLarge {
                        request_id,
                        event_bytes: event_bytes.len(),
                    });
                }
                debug_assert_eq!(
                    Event::decode(event_bytes.as_slice()).ok().as_ref(),
                    Some(&event),
                    "an event must decode to itself"
                );
                if let Some(id) = new_event.names {
                    batch.name(id, position);
                    named.push((id, position));
                }
                let hash = chain::chain_hash(&head.hash, position, &event_bytes);
                let recorded = RecordedEvent {
                    position,
                    hash,
                    prev_hash: head.hash,
                    event,
                    event_bytes,
                };
                batch.entry(&recorded);
                recorded_command.push(recorded);
                head = Head { position, hash };
            }

            assert_eq!(head.position, first_position - 1 + u64::from(event_count));
            let record = RequestRecord {
                request_digest: command.request_digest.to_vec(),
                first_position,
                event_count,
                recorded_at: command.recorded_at,
            };
            if matches!(self.log, Log::Sled(..)) {
                recorded_requests.push((request_id, record.clone()));
            }
            batch.request(request_id, record, head.position);
            recorded_group.push(recorded_command);
        }

        let event_total: usize = recorded_group.iter().map(Vec::len).sum();
        assert_eq!(
            head.position,
            self.head.position + event_total as u64,
            "the group must extend the head by exactly its events"
        );
        for (stream, version) in &stream_versions {
            batch.stream_version(stream, *version);
        }
        batch.head(head);
        batch.group();

        // The batch is prepared: the in-memory indexes follow it, since the next group is
        // decided against the log as it will be once this one is committed.
        for request_id in request_ids {
            self.requests.insert(request_id);
        }
        for (request_id, record) in recorded_requests {
            // The head before its own events: what the fold of its group record goes by.
            let head_before = record.first_position - 1;
            self.tail.insert_request(request_id, record, head_before);
        }
        for (id, position) in named {
            self.names.insert(id);
            if matches!(self.log, Log::Sled(..)) {
                self.tail.insert_name(id, position);
            }
        }
        for (stream, version) in stream_versions {
            self.stream_versions.insert(stream, version);
        }
        self.head = head;
        Ok(PreparedAppend {
            batch: Some(batch),
            recorded: recorded_group,
        })
    }

    /// What makes prepared appends durable, for another thread than the one that prepares.
    pub fn committer(&self) -> Committer {
        let target = match (&self.log, &self.data_file) {
            (Log::Sled(db, _), Some(data_file)) => CommitTarget::Sled(SledCommitter {
                db: db.clone(),
                data_file: Arc::clone(data_file),
                data_path: self.data_path.clone(),
                syncs_before_injected_failure: Arc::clone(&self.syncs_before_injected_failure),
            }),
            (Log::External(backend), _) => CommitTarget::External(Arc::clone(backend)),
            (Log::Sled(..), None) => unreachable!("a sled store keeps its data file open"),
        };
        Committer { target }
    }

    /// Makes everything appended so far durable: flushes sled, then `fdatasync`s its data file.
    /// Stops the process if either fails. `append` calls it unless the options say otherwise.
    pub fn sync(&self) {
        self.committer().sync();
    }

    /// Whether [`Store::append`] flushes and syncs before it returns (see [`StoreOptions`]).
    pub fn flushes_every_append(&self) -> bool {
        self.options.flush_every_append
    }

    /// At most `limit` events from `from_position` on (position 0 reads from 1), ascending, up
    /// to the head. Each entry is checked against the chain from the stored hash of the entry
    /// before `from_position`; a failed check is [`StoreError::ChainBroken`].
    pub fn read_range(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from_position = from_position.max(1);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let last_position = self
            .head
            .position
            .min(from_position.saturating_add(limit as u64 - 1));
        LogIter::new(&self.log, from_position, last_position).collect()
    }

    /// Every event from position 1 to the current head, one at a time, for replay; each entry is
    /// checked against the chain. The iterator ends after its first error.
    pub fn read_all(&self) -> LogIter {
        LogIter::new(&self.log, 1, self.head.position)
    }

    /// The latest checkpoint, if there is one whose bytes match their digest and whose position
    /// and hash are still those of the log. A checkpoint failing a check is reported in the log
    /// and ignored: the caller then replays from position 1.
    pub fn load_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.check_checkpoint(self.checkpoint_file.read()?)
    }

    /// [`Store::load_checkpoint`] of a checkpoint file the caller read already (with
    /// [`CheckpointFile::read`], for example while the store was being opened): the same
    /// checks, the same answer.
    pub fn check_checkpoint(
        &self,
        found: CheckpointFound,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let stored = match found {
            CheckpointFound::Absent => return Ok(None),
            CheckpointFound::Intact(stored) => stored,
            CheckpointFound::Damaged { position, why } => {
                tracing::warn!(
                    position,
                    why,
                    "checkpoint ignored; replaying from position 1"
                );
                return Ok(None);
            }
        };
        let unusable = |why: &str| {
            tracing::warn!(
                position = stored.head.position,
                why,
                "checkpoint ignored; replaying from position 1"
            );
            Ok(None)
        };
        if stored.head.position > self.head.position {
            return unusable("checkpoint is ahead of the log");
        }
        let hash_in_log = if stored.head.position == 0 {
            Some(Head::EMPTY.hash)
        } else {
            self.log
                .entry_head(stored.head.position)?
                .map(|head| head.hash)
        };
        if hash_in_log != Some(stored.head.hash) {
            return unusable("log has another hash at the checkpoint's position");
        }
        Ok(Some(stored))
    }

    /// A read-only handle on the log that other threads can use while this one appends.
    pub fn reader(&self) -> LogReader {
        LogReader {
            log: self.log.clone(),
        }
    }

    /// Recomputes the whole chain from position 1; see [`verify_log_at`] for what is checked.
    pub fn verify(&self) -> Result<Result<Head, ChainBreak>, StoreError> {
        ChainWalk::new(&self.log).finish()
    }
}

/// The `fdatasync`s that succeed before the injected failures, from the environment of a build
/// with debug assertions; `u64::MAX` (no failure) otherwise.
fn syncs_before_injected_failure() -> u64 {
    if !cfg!(debug_assertions) {
        return u64::MAX;
    }
    let Some(after) = std::env::var(FAIL_FDATASYNC_AFTER_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
    else {
        return u64::MAX;
    };
    tracing::warn!(
        after,
        "test fault injection: fdatasync will fail after {after} syncs"
    );
    after.min(u64::MAX - 1)
}

/// sled's configuration for a log in `dir`. Its periodic background flush is off: every append
/// flushes and `fdatasync`s explicitly, and a background flusher would only keep the database
/// (and its file lock) alive for a while after the store is dropped. Its page cache is capped
/// at [`SLED_CACHE_BYTES_MAX`] instead of sled's default of 1 GiB.
pub(crate) fn sled_config(dir: &Path) -> sled::Config {
    sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .cache_capacity(SLED_CACHE_BYTES_MAX)
}

/// sled's page cache, in bytes of pages as sled counts them (their size on disk). The writer
/// appends at the end of the log and reads back only what a retry or a reversal names, so a
/// small cache serves it; sled's default (1 GiB) let the process grow with the history. sled's
/// memory for its cache is several times this figure: restarted on ten simulated years, the
/// server alone peaked at 1 236 MiB while serving with 128 MiB here and at 823 MiB with 16 MiB,
/// at the same rates (`bench --history 10`, BENCHMARKS.md, 2026-12-01).
pub const SLED_CACHE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Opens sled in `dir` after removing the snapshot sled was writing when the process died, if
/// any.
///
/// sled 0.34 writes a snapshot of its page table, when it opens a log that grew, to
/// `snap.<lsn>.generating`, syncs it, then renames it `snap.<lsn>`. But when it opens a
/// database it takes the last of *every* file whose name starts with `snap.`, the unfinished
/// one included, and refuses to open when that one fails its CRC ("corrupt snapshot file
/// found"). A SIGKILL in the middle of writing a snapshot thus left a log that would not open
/// (the 500-cycle crash campaign hit it). A `.generating` file is never a snapshot sled
/// finished (the rename comes after the sync), and the snapshot before it is still there (old
/// ones are removed after the rename), so removing it loses nothing: sled starts from the
/// previous snapshot and replays its log from there.
pub(crate) fn open_sled(dir: &Path) -> Result<sled::Db, StoreError> {
    // A switch to a rewritten database cut short by a crash is finished before sled reads the
    // folder (see the `rewrite` module).
    crate::rewrite::finish_interrupted_switch(dir)?;
    discard_unfinished_snapshots(dir)?;
    // A reopen right after this process closed the folder may find sled's lock still held by
    // the old handle's threads for a moment: wait for it, bounded (see `reopen`).
    Ok(crate::reopen::open_retrying(dir, || {
        sled_config(dir).open()
    })?)
}

fn discard_unfinished_snapshots(dir: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A new log: sled creates the folder.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let path = entry.path();
            tracing::warn!(
                path = %path.display(),
                "removing an unfinished sled snapshot left by a crash"
            );
            std::fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
        }
    }
    Ok(())
}

/// Recomputes the whole chain of the log in `dir` without opening it for appending, so that it
/// works on a log that [`Store::open`] refuses: the offline `verify` command of the server.
///
/// Checks that the entries are positions 1..=N with no gap, that each decodes, that each hash
/// is `chain_hash` of the one before, that the position inside each `Event` is its key, and that
/// the stored head is the last entry (a truncated tail is caught here). Returns the head, or the
/// first break. Fails with `LogMissing` when `dir` holds no sled database, and with
/// `Sled` while a server holds the log open.
pub fn verify_log_at(dir: &Path) -> Result<Result<Head, ChainBreak>, StoreError> {
    OfflineLog::open(dir)?.verify()
}

/// The position and stored hash of the last entry, without checking its hash against the one
/// before: sled's last, or the last segment's when sled holds none; `Head::EMPTY` when there
/// is no entry.
pub(crate) fn last_entry(db: &sled::Db, segments: &Segments) -> Result<Head, StoreError> {
    let Some(item) = db.scan_prefix([keys::ENTRY_PREFIX]).next_back() else {
        return match segments.all().last() {
            Some(segment) => segment.last_head(),
            None => Ok(Head::EMPTY),
        };
    };
    let (key, value) = item?;
    stored_entry_head(&key, &value).map_err(StoreError::ChainBroken)
}

/// The stored hash of the entry at `position` (32 zero bytes at position 0), its form checked;
/// `None` when there is no such entry or it is malformed.
pub(crate) fn entry_hash(
    db: &sled::Db,
    segments: &Segments,
    position: u64,
) -> Result<Option<[u8; 32]>, StoreError> {
    if position == 0 {
        return Ok(Some(Head::EMPTY.hash));
    }
    let key = keys::entry_key(position);
    Ok(stored_entry(db, segments, position)?
        .and_then(|value| stored_entry_head(&key, &value).ok())
        .map(|head| head.hash))
}

/// The position and stored hash of one entry, its key and hash field checked for form only.
fn stored_entry_head(key: &[u8], value: &[u8]) -> Result<Head, ChainBreak> {
    let Some(position) = keys::entry_position(key) else {
        return Err(ChainBreak {
            position: 0,
            kind: ChainBreakKind::KeyMalformed {
                key_length: key.len(),
            },
        });
    };
    let (_, hash) = chain::decode_entry(value).map_err(|kind| ChainBreak { position, kind })?;
    Ok(Head { position, hash })
}

/// The positions under `id` in the index by name, ascending.
fn positions_naming(db: &sled::Db, id: Uuid) -> Result<Vec<u64>, StoreError> {
    let mut positions = Vec::new();
    for item in db.scan_prefix(keys::name_prefix(id)) {
        let (key, _) = item?;
        if let Some((_, position)) = keys::name_of(&key) {
            positions.push(position);
        }
    }
    Ok(positions)
}

/// Every stream's stored version, read once at open.
fn load_stream_versions(db: &sled::Db) -> Result<HashMap<String, u64>, StoreError> {
    let mut versions = HashMap::new();
    for item in db.scan_prefix([keys::STREAM_PREFIX]) {
        let (key, value) = item?;
        let stream = String::from_utf8_lossy(&key[1..]).into_owned();
        let version: [u8; 8] =
            value
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::StreamVersionMalformed {
                    stream: stream.clone(),
                    length: value.len(),
                })?;
        versions.insert(stream, u64::from_be_bytes(version));
    }
    Ok(versions)
}

/// Stops the process after a write to the log that may or may not have reached the disk.
///
/// Never retry. When `fsync` fails, Linux may already have dropped the dirty pages and cleared
/// the error, so a second `fsync` can succeed although the data never reached the drive; and
/// after a failed sled write its in-memory tree may hold part of a batch, which a later flush
/// could make durable under a head that does not match. What is on the disk can only be known
/// by recovering from the files, so the process stops, nothing more is acknowledged, and the
/// restart reopens the log from what is durable.
fn stop_after_failed_write(operation: &'static str, path: &Path, error: &dyn fmt::Display) -> ! {
    tracing::error!(
        operation,
        path = %path.display(),
        %error,
        "write to the event log failed, stopping the process"
    );
    std::process::abort()
}

pub(crate) fn sync_once(file: &File, path: &Path) -> Result<(), StoreError> {
    file.sync_all().map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn sync_path(path: &Path) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    sync_once(&file, path)
}

/// Makes the names of the files sled created durable. Directories can only be synced this way
/// on Unix; elsewhere this does nothing.
pub(crate) fn sync_directory(dir: &Path) -> Result<(), StoreError> {
    if cfg!(unix) {
        let directory = File::open(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        sync_once(&directory, dir)?;
    }
    Ok(())
}

/// The events of positions `next_position..=last_position`, read one at a time and each checked
/// against the chain. Ends after the last position or after the first error.
pub struct LogIter {
    entries: EntrySource,
    next_position: u64,
    last_position: u64,
    prev_hash: [u8; 32],
    /// An error found before the first entry (the entry before the range), yielded first.
    pending_error: Option<StoreError>,
    finished: bool,
}

impl LogIter {
    pub(crate) fn new(log: &Log, from_position: u64, last_position: u64) -> LogIter {
        let entries = EntrySource::new(log, from_position, last_position);
        let mut log_iter = LogIter {
            entries,
            next_position: from_position,
            last_position,
            prev_hash: [0u8; 32],
            pending_error: None,
            finished: from_position > last_position,
        };
        if !log_iter.finished && from_position > 1 {
            match previous_hash(log, from_position) {
                Ok(prev_hash) => log_iter.prev_hash = prev_hash,
                Err(error) => log_iter.pending_error = Some(error),
            }
        }
        log_iter
    }

    fn finish_with(&mut self, error: StoreError) -> Option<Result<RecordedEvent, StoreError>> {
        self.finished = true;
        Some(Err(error))
    }
}

/// The stored hash of the entry before `position`, which a read starting at `position` chains
/// from.
fn previous_hash(log: &Log, position: u64) -> Result<[u8; 32], StoreError> {
    let previous = position - 1;
    if let Log::External(backend) = log {
        return match backend.entries(previous, previous, 1)?.into_iter().next() {
            Some(entry) if entry.position == previous => Ok(entry.hash),
            _ => Err(StoreError::ChainBroken(ChainBreak {
                position: previous,
                kind: ChainBreakKind::EntryMissing,
            })),
        };
    }
    let Log::Sled(db, segments) = log else {
        unreachable!("handled above")
    };
    let Some(value) = stored_entry(db, segments, previous)? else {
        return Err(StoreError::ChainBroken(ChainBreak {
            position: previous,
            kind: ChainBreakKind::EntryMissing,
        }));
    };
    let head = stored_entry_head(&keys::entry_key(previous), &value)?;
    Ok(head.hash)
}

/// The stored entry at `position`, from its segment or from sled, unchecked.
fn stored_entry(
    db: &sled::Db,
    segments: &Segments,
    position: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(segment) = segments.find(position) {
        return Ok(Some(segment.entry(position)?));
    }
    match db.get(keys::entry_key(position))? {
        Some(value) => Ok(Some(value.to_vec())),
        // Sealed since the look in the segments: the segment is published before sled's copy
        // is removed.
        None => segments
            .find(position)
            .map(|segment| segment.entry(position))
            .transpose(),
    }
}

/// Entries read in position order as sled keys and values: straight from sled's range, or
/// from a backend a page at a time, each turned into the key and value sled would hold, so that
/// one chain check (`chain::check_entry`) serves both.
#[allow(
    clippy::large_enum_variant,
    reason = "sled's iterator is the common case; boxing it would allocate at every read"
)]
pub(crate) enum EntrySource {
    /// The segments, then sled (see `segment::LogEntries`).
    Sled(segment::LogEntries),
    External {
        backend: Arc<dyn LogBackend>,
        next_position: u64,
        last_position: u64,
        page: std::collections::VecDeque<StoredEntry>,
        finished: bool,
    },
}

/// Entries read from a backend in one query: a page large enough that a replay is not a
/// round trip per event, small enough to stay a few megabytes (events are at most 4 KiB).
const BACKEND_PAGE_LEN: usize = 1000;

impl EntrySource {
    pub(crate) fn new(log: &Log, from_position: u64, last_position: u64) -> EntrySource {
        match log {
            Log::Sled(db, segments) => EntrySource::Sled(segment::LogEntries::new(
                db,
                segments,
                from_position,
                last_position,
                false,
            )),
            Log::External(backend) => EntrySource::External {
                backend: Arc::clone(backend),
                next_position: from_position,
                last_position,
                page: std::collections::VecDeque::new(),
                finished: from_position > last_position,
            },
        }
    }
}

impl Iterator for EntrySource {
    type Item = Result<(sled::IVec, sled::IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EntrySource::Sled(entries) => entries.next(),
            EntrySource::External {
                backend,
                next_position,
                last_position,
                page,
                finished,
            } => {
                if page.is_empty() && !*finished {
                    match backend.entries(*next_position, *last_position, BACKEND_PAGE_LEN) {
                        Ok(entries) => {
                            if entries.len() < BACKEND_PAGE_LEN {
                                *finished = true;
                            }
                            if let Some(last) = entries.last() {
                                *next_position = last.position.saturating_add(1);
                            }
                            page.extend(entries);
                        }
                        Err(error) => {
                            *finished = true;
                            return Some(Err(error));
                        }
                    }
                }
                let entry = page.pop_front()?;
                Some(Ok((
                    sled::IVec::from(&keys::entry_key(entry.position)[..]),
                    sled::IVec::from(chain::encode_entry(&entry.event_bytes, &entry.hash)),
                )))
            }
        }
    }
}

impl Iterator for LogIter {
    type Item = Result<RecordedEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if let Some(error) = self.pending_error.take() {
            return self.finish_with(error);
        }
        if self.next_position > self.last_position {
            self.finished = true;
            return None;
        }
        let (key, value) = match self.entries.next() {
            Some(Ok(item)) => item,
            Some(Err(error)) => return self.finish_with(error),
            None => {
                return self.finish_with(StoreError::ChainBroken(ChainBreak {
                    position: self.next_position,
                    kind: ChainBreakKind::EntryMissing,
                }))
            }
        };
        match chain::check_entry(self.next_position, &self.prev_hash, &key, &value) {
            Ok(recorded) => {
                self.prev_hash = recorded.hash;
                self.next_position += 1;
                Some(Ok(recorded))
            }
            Err(chain_break) => self.finish_with(StoreError::ChainBroken(chain_break)),
        }
    }
}

// By hand: sled's own `Debug` for a database walks and prints the whole tree.
impl fmt::Debug for Store {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Store")
            .field("data_path", &self.data_path)
            .field("head", &self.head)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for LogIter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LogIter")
            .field("next_position", &self.next_position)
            .field("last_position", &self.last_position)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// A read-only handle on an open log, for reads off the writer's thread (point-in-time
/// reports, audits). It sees every group once its batch is applied.
#[derive(Clone)]
pub struct LogReader {
    pub(crate) log: Log,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader").finish_non_exhaustive()
    }
}

impl LogReader {
    /// The positions of the events naming `id`, ascending, as far as they are committed (see
    /// [`Store::positions_naming`]); this reads sled every time.
    pub fn positions_naming(&self, id: Uuid) -> Result<Vec<u64>, StoreError> {
        self.log.positions_naming(id)
    }

    /// The event at `position`, checked against the chain from the entry before it.
    pub fn read_at(&self, position: u64) -> Result<RecordedEvent, StoreError> {
        match LogIter::new(&self.log, position.max(1), position).next() {
            Some(result) => result,
            None => Err(StoreError::ChainBroken(ChainBreak {
                position,
                kind: ChainBreakKind::EntryMissing,
            })),
        }
    }

    /// The stored head.
    pub fn head(&self) -> Result<Head, StoreError> {
        Ok(self.log.stored_head()?.unwrap_or(Head::EMPTY))
    }

    /// Events `from_position..=last_position`, each checked against the chain.
    pub fn iter(&self, from_position: u64, last_position: u64) -> LogIter {
        LogIter::new(&self.log, from_position.max(1), last_position)
    }
}
