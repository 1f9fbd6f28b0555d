//! The event log of voucher-ledger: an append-only, hash-chained sequence of protobuf `Event`s
//! kept in sled, with the request records that make retries idempotent across restarts.
//!
//! What it keeps true:
//! - positions run 1, 2, 3, … with no gap, and each stream's versions run 1, 2, 3, … too;
//! - every entry carries `hash(n) = SHA-256(hash(n-1) ‖ n as u64 big-endian ‖ event bytes)`,
//!   with 32 zero bytes before position 1, and the stored head names the last entry;
//! - a group of commands is written in one sled batch and is acknowledged (returned) only after
//!   `flush` and an `fdatasync` of sled's data file; a failed write or sync stops the process.
//!
//! What it is not: it knows nothing of the scheme's rules (it stores whatever events it is
//! given, in order), nothing of tonic or async code (the engine calls it from one dedicated
//! thread), and nothing of the clock or of id generation: recorded times and ids arrive inside
//! the commands and events.
//!
//! Storage layout, all in sled's default tree so that one `sled::Batch` is atomic across
//! everything a group writes (the `keys` module encodes them):
//!
//! | key                              | value                                      |
//! |----------------------------------|--------------------------------------------|
//! | `e` ‖ position (u64 BE)          | encoded `LogEntry { event, hash }`         |
//! | `r` ‖ request id (16 UUID bytes) | encoded `RequestRecord`, once folded (below) |
//! | `s` ‖ stream name (UTF-8)        | stream version (u64 BE)                    |
//! | `h`                              | head: position (u64 BE) ‖ 32-byte hash     |
//! | `n` ‖ id (16) ‖ position (u64 BE) | nothing: the index by name (`NewEvent::names`), once folded |
//! | `N`                              | the index by name's version, once it covers the log |
//! | `g` ‖ head before ‖ head after (u64 BE each) ‖ first request id | the group's request records and names (`tail`), until folded |
//!
//! A group's batch holds its entries, its group record, the stream versions and the head: its
//! request records and names go into the group record rather than keys of their own, which are
//! random and cost a sled leaf each. The store keeps them in memory too, and the save of the
//! fingerprints with each checkpoint folds the group records before its head into `r` and `n`
//! keys, in key order, off the writer's path (the `tail` module).
//!
//! The sealed past leaves sled: the entries at or below the last checkpoint, in whole runs of
//! [`StoreOptions::segment_len_events`], move into immutable, checksummed segment files in
//! `segments/` (the `segment` module), sealed on the checkpoint thread, and every read of an
//! entry looks there first. sled keeps the recent tail and the small mutable records. A seal
//! removes its range from sled a batch and a flush at a time; sled 0.34 never gives the space
//! back, so a clean stop after a seal rewrites sled's database with its live records only (the
//! `rewrite` module, [`rewrite_db_if_sealed`]), under a marker that the next open finishes.
//!
//! Beside sled's files, two kinds of derived files, each naming the position and chain hash it
//! reflects and carrying a SHA-256 of its stored body (compressed with zstd), checked before
//! use and never trusted: the
//! checkpoint (`checkpoint`, the engine's state at a durable position, so that a start replays
//! only the tail; written durably) and the retained snapshots of the projections
//! (`projections/`, for reports as of an earlier position; not synced). Versions before them
//! kept the checkpoint in sled (`k`, `c` ‖ chunk index), which `Store::open` removes.
//!
//! In memory, besides the head: every stream's version, and 64-bit fingerprints of the
//! recorded request ids and of the indexed names (read by a background thread at open: from
//! the file `fingerprints` saved with the last checkpoint and the group records after it, or
//! from the whole database when those do not cover the log), so that a new id costs no read. An append is two halves, [`Store::prepare_append`] (encode, chain,
//! position) and [`Committer::commit`] (apply, flush, `fdatasync`), which the engine runs on two
//! threads so that deciding one group overlaps with syncing the one before.
//!
//! Opening: [`Store::open`] refuses a directory whose stored head does not name its last entry
//! (a truncated or extended tail), so the engine never starts on a damaged log. The full chain
//! check is [`Store::verify`]; to find the first bad position of a log that `open` refuses, run
//! [`verify_log_at`] on the directory, which opens sled without that check and appends nothing.
//! [`OfflineLog`] is that read-only view for the auditors' offline commands: a [`ChainWalk`]
//! over every entry, reads by position, and the stored checkpoint.
//!
//! Backup: [`Store::backup_to`] copies the segment files, every record into a new database,
//! and the checkpoint file, between two appends.
//!
//! Backends: the same log can be kept outside sled by a [`LogBackend`] (PostgreSQL, in the
//! crate `ledger-store-pg`), opened with [`Store::open_backend`] or
//! [`OfflineLog::open_backend`]. The store still gives the positions, encodes the events,
//! computes and checks the chain and keeps the fingerprints; the backend writes each group's
//! rows in one transaction ([`LogBackend::commit`]) and reads them back. The checkpoint and the
//! retained snapshots stay files in a local folder. What only sled has (`backup_to`, indexing a
//! log written before the index by name) is refused there with
//! [`StoreError::NotOnThisBackend`].

mod backend;
mod backup;
mod chain;
mod checkpoint;
mod fingerprints;
mod follow;
mod keys;
mod offline;
mod reopen;
mod retained;
mod rewrite;
mod segment;
mod snapshot_file;
mod store;
mod tail;

pub use backend::{GroupWrite, IdKind, LogBackend, StoredEntry};
pub use backup::BackupReport;
pub use chain::{chain_hash, ChainBreak, ChainBreakKind, Head, RecordedEvent};
pub use checkpoint::{CheckpointFile, CheckpointFound, StoredCheckpoint, CHECKPOINT_FILE_NAME};
pub use fingerprints::{FingerprintFile, FingerprintSnapshot, FINGERPRINTS_FILE_NAME};
pub use offline::{ChainWalk, DamagedRequestRecord, OfflineLog};
pub use reopen::REOPEN_LOCK_WAIT_MS;
pub use retained::{RetainedSnapshot, RetainedSnapshots, RETAINED_DIR_NAME};
pub use rewrite::{
    rewrite_db, rewrite_db_if_sealed, DbRewrite, REWRITE_DB_BYTES_MIN, REWRITE_DIR_NAME,
};
pub use segment::SEGMENTS_DIR_NAME;
pub use store::{
    verify_log_at, Committer, IdSource, LogIter, LogReader, NewCommand, NewEvent, PreparedAppend,
    Store, StoreError, StoreOptions, StoredRequest, EVENT_BYTES_MAX, FAIL_FDATASYNC_AFTER_VARIABLE,
    SEGMENT_LEN_EVENTS_DEFAULT, STREAM_BYTES_MAX,
};
