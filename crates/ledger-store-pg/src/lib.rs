//! The event log of voucher-ledger kept in PostgreSQL (issue 19): a [`LogBackend`] for
//! `ledger_store::Store`, so that a Region's system of record lives on a proven, replicated
//! database instead of one machine's disk.
//!
//! What it keeps true, on top of what the store keeps (positions from the single writer, the
//! same protobuf bytes and the same SHA-256 chain as sled, checked on every read):
//! - a group is one transaction, committed (and, with `synchronous_commit = on` and a
//!   synchronous standby, on the standby's disk) before the store returns it;
//! - at most one ledger process writes: it holds the session advisory lock
//!   [`WRITER_LOCK_KEY`] and has bumped the head's `epoch`; every group's transaction updates the
//!   one head row only where the epoch is still its own and the head is the one the group
//!   extends (compare-and-set), so a writer that lost its lock, or was overtaken, appends
//!   nothing ([`StoreError::NotTheWriter`]);
//! - a commit whose outcome is unknown (the connection lost during `COMMIT`) is an error; the
//!   engine then answers nothing of that group OK and reconnects (`ledger_engine::reconnect`)
//!   or stops the process, and a retry with the same request id resolves it;
//! - a reading connection found lost is made again (a standby and a reconnected writer read on).
//!
//! - a hot standby follows the log on a connection of its own ([`PgLog::open_following`]) and
//!   asks for the writer's lock at each poll ([`WriterLock::try_take`]); the writer records
//!   where it serves in `ledger_head.writer` ([`PgLog::advertise`]) for standbys to name.
//!
//! What it is not: a replication protocol (PostgreSQL's streaming replication is), nor a
//! connection pool: two connections, the writer's (which holds the lock) and one for reads.
//! Every call blocks (the `postgres` crate's blocking client): the store calls it from the
//! writer's, the committer's and blocking threads, never from async code.
//!
//! Layout ([`SCHEMA_SQL`]): `ledger_log` (position primary key, chain hash, stream, stream
//! version, event bytes), `ledger_requests`, `ledger_streams`, `ledger_names` (the index by
//! name), `ledger_head` (one row: position, hash, writer epoch), and the reporting view
//! `ledger_log_report`.

pub mod cluster;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ledger_proto::event::v1::RequestRecord;
use ledger_store::{GroupWrite, Head, IdKind, LogBackend, StoreError, StoredEntry};
use postgres::{Client, Config, NoTls};
use uuid::Uuid;

/// The key of the session advisory lock held by the writing ledger process ("vouchers" in
/// ASCII): one writer per database, whatever the number of ledger processes started on it.
pub const WRITER_LOCK_KEY: i64 = 0x766f_7563_6865_7273;

/// The key of the transaction advisory lock taken while the schema is created, so that two
/// processes started at once on an empty database do not race on `CREATE TABLE`.
const SCHEMA_LOCK_KEY: i64 = 0x766f_7563_6865_7253;

/// How long a connection attempt may take before it fails, in seconds: a standby or a restart
/// retries, an operator sees the error instead of a hang.
pub const CONNECT_TIMEOUT_SECONDS: u64 = 5;

/// Rows of recorded ids read at a time at a start ([`LogBackend::for_each_id`]): about a
/// megabyte of rows in the client, whatever the number of ids.
pub const ID_CURSOR_ROWS_MAX: i32 = 20_000;

/// The tables and the reporting view, created when missing. The event bytes are the stored
/// protobuf `voucherledger.event.v1.Event`, exactly as sled keeps them; `hash` is
/// `SHA-256(hash(n-1) ‖ n as u64 BE ‖ event)`.
pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS ledger_log (
    position bigint PRIMARY KEY CHECK (position > 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    stream text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version > 0),
    event bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_requests (
    request_id uuid PRIMARY KEY,
    request_digest bytea NOT NULL,
    first_position bigint NOT NULL,
    event_count integer NOT NULL,
    recorded_at text NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_streams (
    stream text PRIMARY KEY,
    version bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_names (
    id uuid NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (id, position)
);
CREATE TABLE IF NOT EXISTS ledger_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position bigint NOT NULL,
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    epoch bigint NOT NULL,
    writer text
);
INSERT INTO ledger_head (singleton, position, hash, epoch)
    VALUES (true, 0, decode(repeat('00', 32), 'hex'), 0)
    ON CONFLICT (singleton) DO NOTHING;
CREATE OR REPLACE VIEW ledger_log_report AS
    SELECT position, stream, stream_version, encode(hash, 'hex') AS hash_hex,
           octet_length(event) AS event_bytes
    FROM ledger_log;
";

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the postgresql connection string is not valid: {0}")]
    ConnectionString(#[source] postgres::Error),
    #[error("cannot connect to postgresql at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: postgres::Error,
    },
    #[error("postgresql failed to {operation}: {source}")]
    Query {
        operation: &'static str,
        #[source]
        source: postgres::Error,
    },
    /// Another ledger process holds [`WRITER_LOCK_KEY`].
    #[error("another ledger process is the writer of {target} (it holds the writer's lock)")]
    WriterLockHeld { target: String },
    #[error("{target} holds no ledger (no ledger_head table)")]
    SchemaMissing { target: String },
    #[error("a row of {table} is malformed: {why}")]
    RowMalformed { table: &'static str, why: String },
}

impl PgError {
    fn query(operation: &'static str) -> impl FnOnce(postgres::Error) -> PgError {
        move |source| PgError::Query { operation, source }
    }
}

impl From<PgError> for StoreError {
    fn from(error: PgError) -> StoreError {
        let operation = match &error {
            PgError::ConnectionString(_) | PgError::Connect { .. } => "connect",
            PgError::Query { operation, .. } => operation,
            PgError::WriterLockHeld { .. } => "become the writer",
            PgError::SchemaMissing { .. } => "open the log",
            PgError::RowMalformed { .. } => "read a row",
        };
        StoreError::Backend {
            backend: "postgresql",
            operation,
            source: Box::new(error),
        }
    }
}

/// A ledger's log in one PostgreSQL database: the writer's connection (with the lock and the
/// epoch) when this process writes, and one connection for reads.
pub struct PgLog {
    /// How to connect again: the reading connection is made again when it was lost.
    config: Config,
    target: String,
    writer: Option<Writer>,
    /// `None` after the connection was lost (made again at the next read), and while the log
    /// is dropped (see `Drop`).
    reader: Mutex<Option<Client>>,
}

struct Writer {
    /// `None` only while the log is dropped (see `Drop`).
    client: Mutex<Option<Client>>,
    epoch: i64,
}

impl Drop for PgLog {
    /// Closes the connections. Each blocking client owns a small tokio runtime, which tokio
    /// refuses to drop on a thread of another runtime (the server drops its last handle on
    /// the log there, at shutdown): there, they are closed on a thread of their own.
    fn drop(&mut self) {
        let reader = self
            .reader
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let writer = self.writer.as_mut().and_then(|writer| {
            writer
                .client
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        });
        let close = move || drop((reader, writer));
        if tokio::runtime::Handle::try_current().is_err() {
            close();
        } else if std::thread::spawn(close).join().is_err() {
            tracing::warn!("closing the postgresql connections failed");
        }
    }
}

impl std::fmt::Debug for PgLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PgLog")
            .field("target", &self.target)
            .field("epoch", &self.writer.as_ref().map(|writer| writer.epoch))
            .finish_non_exhaustive()
    }
}

/// How [`PgLog::open_writer`] behaves when another process holds the writer's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenLocked {
    /// Fail at once with [`PgError::WriterLockHeld`].
    Fail,
    /// Wait until the lock is free (a standby's takeover), trying every `poll_interval`.
    Wait { poll_interval: Duration },
}

impl PgLog {
    /// Connects as the writer: creates the schema when missing, takes the writer's advisory
    /// lock (or fails or waits, as `when_locked` says) and bumps the epoch, which fences every
    /// earlier writer out.
    pub fn open_writer(connection: &str, when_locked: WhenLocked) -> Result<PgLog, PgError> {
        let config = parse(connection)?;
        let target = describe(&config);
        let mut client = connect(&config, &target)?;
        create_schema(&mut client)?;
        loop {
            let locked: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])
                .map_err(PgError::query("take the writer's lock"))?
                .get(0);
            if locked {
                break;
            }
            match when_locked {
                WhenLocked::Fail => return Err(PgError::WriterLockHeld { target }),
                WhenLocked::Wait { poll_interval } => std::thread::sleep(poll_interval),
            }
        }
        let epoch = bump_epoch(&mut client)?;
        let reader = connect(&config, &target)?;
        tracing::info!(target = %target, epoch, "writer of the postgresql event log");
        Ok(PgLog {
            config,
            target,
            writer: Some(Writer {
                client: Mutex::new(Some(client)),
                epoch,
            }),
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Connects to read only (the offline `verify` and `export`): no lock, no epoch, nothing
    /// created; a commit is refused.
    pub fn open_reader(connection: &str) -> Result<PgLog, PgError> {
        let config = parse(connection)?;
        let target = describe(&config);
        let mut reader = connect(&config, &target)?;
        let exists: bool = reader
            .query_one("SELECT to_regclass('ledger_head') IS NOT NULL", &[])
            .map_err(PgError::query("look for the ledger's tables"))?
            .get(0);
        if !exists {
            return Err(PgError::SchemaMissing { target });
        }
        Ok(PgLog {
            config,
            target,
            writer: None,
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Connects to follow the log as a hot standby: creates the schema when missing (a standby
    /// may start before any writer did), takes no lock, and refuses to commit. The writer's
    /// lock is tried with a [`WriterLock`].
    pub fn open_following(connection: &str) -> Result<PgLog, PgError> {
        let config = parse(connection)?;
        let target = describe(&config);
        let mut reader = connect(&config, &target)?;
        create_schema(&mut reader)?;
        Ok(PgLog {
            config,
            target,
            writer: None,
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Records `address`, where this writer serves, in the head row, for standbys to name it
    /// when they refuse a write; only while the epoch is still this writer's.
    pub fn advertise(&self, address: &str) -> Result<(), PgError> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let mut client = writer
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(client) = client.as_mut() else {
            unreachable!("the writer's connection lives as long as the log")
        };
        client
            .execute(
                "UPDATE ledger_head SET writer = $1 WHERE epoch = $2",
                &[&address, &writer.epoch],
            )
            .map_err(PgError::query("record the writer's address"))?;
        Ok(())
    }

    /// As a shared backend for `Store::open_backend` and `OfflineLog::open_backend`.
    pub fn into_backend(self) -> Arc<dyn LogBackend> {
        Arc::new(self)
    }

    /// This writer's epoch; `None` for a reader.
    pub fn epoch(&self) -> Option<i64> {
        self.writer.as_ref().map(|writer| writer.epoch)
    }

    /// The database named without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn reader(&self) -> MutexGuard<'_, Option<Client>> {
        // A panic while a connection was held leaves it usable: postgres rolls back a
        // transaction that was not committed when the client reuses or drops it.
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `read` on the reading connection, connecting again first when it was lost (the
    /// server restarted, failed over, or ended the session): a hot standby and the handles of
    /// a writer that reconnected read on. The blocking client drives a tokio runtime of its
    /// own, which tokio refuses to start on a thread of another runtime (a metrics scrape
    /// reads the head from an async task): there, the read runs on a thread of its own. The
    /// writer's and committer's threads, which do most reads, have no runtime.
    fn read<T: Send>(
        &self,
        operation: &'static str,
        mut read: impl FnMut(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, PgError> {
        let mut read_on_this_thread = || {
            let mut reader = self.reader();
            // A connection that the server or the network dropped while it was idle is seen
            // lost only when used: a read is idempotent, so it is tried once more on a new one.
            for attempt in 1..=2 {
                let client = match reader.as_mut() {
                    Some(client) if !client.is_closed() => client,
                    _ => {
                        let client = connect(&self.config, &self.target)?;
                        tracing::info!(target = %self.target, "reading connection to postgresql made again");
                        reader.insert(client)
                    }
                };
                match read(client) {
                    Ok(value) => return Ok(value),
                    Err(error)
                        if attempt == 1 && (client.is_closed() || connection_lost(&error)) =>
                    {
                        *reader = None;
                        tracing::warn!(target = %self.target, %error, "reading connection to postgresql lost; reading again on a new one");
                    }
                    Err(error) => {
                        if client.is_closed() || connection_lost(&error) {
                            *reader = None;
                        }
                        return Err(PgError::query(operation)(error));
                    }
                }
            }
            unreachable!("the second attempt returns")
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return read_on_this_thread();
        }
        std::thread::scope(|scope| match scope.spawn(read_on_this_thread).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }

    fn commit_group(&self, group: &GroupWrite) -> Result<(), StoreError> {
        let Some(writer) = &self.writer else {
            return Err(StoreError::NotTheWriter {
                why: format!("{} was opened to read only", self.target),
            });
        };
        let mut client = writer
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(client) = client.as_mut() else {
            unreachable!("the writer's connection lives as long as the log")
        };
        let mut transaction = client
            .transaction()
            .map_err(PgError::query("begin a group's transaction"))?;
        let moved = transaction
            .execute(
                "UPDATE ledger_head SET position = $1, hash = $2 \
                 WHERE singleton AND epoch = $3 AND position = $4 AND hash = $5",
                &[
                    &to_i64(group.head.position)?,
                    &&group.head.hash[..],
                    &writer.epoch,
                    &to_i64(group.previous_head.position)?,
                    &&group.previous_head.hash[..],
                ],
            )
            .map_err(PgError::query("move the head"))?;
        if moved != 1 {
            // Dropping the transaction rolls it back: nothing of the group is written.
            let row = transaction
                .query_one("SELECT epoch, position FROM ledger_head", &[])
                .map_err(PgError::query("read the head"))?;
            let (stored_epoch, stored_position): (i64, i64) = (row.get(0), row.get(1));
            return Err(StoreError::NotTheWriter {
                why: format!(
                    "the head is at position {stored_position} with writer epoch {stored_epoch}, \
                     this process expected position {} with epoch {}",
                    group.previous_head.position, writer.epoch
                ),
            });
        }
        if !group.entries.is_empty() {
            let positions = group
                .entries
                .iter()
                .map(|entry| to_i64(entry.position))
                .collect::<Result<Vec<_>, _>>()?;
            let hashes: Vec<&[u8]> = group.entries.iter().map(|entry| &entry.hash[..]).collect();
            let streams: Vec<&str> = group
                .entries
                .iter()
                .map(|entry| entry.stream.as_str())
                .collect();
            let versions = group
                .entries
                .iter()
                .map(|entry| to_i64(entry.stream_version))
                .collect::<Result<Vec<_>, _>>()?;
            let events: Vec<&[u8]> = group
                .entries
                .iter()
                .map(|entry| entry.event_bytes.as_slice())
                .collect();
            transaction
                .execute(
                    "INSERT INTO ledger_log (position, hash, stream, stream_version, event) \
                     SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::bigint[], $5::bytea[])",
                    &[&positions, &hashes, &streams, &versions, &events],
                )
                .map_err(PgError::query("insert the group's events"))?;
        }
        if !group.requests.is_empty() {
            let ids: Vec<Uuid> = group.requests.iter().map(|(id, _)| *id).collect();
            let digests: Vec<&[u8]> = group
                .requests
                .iter()
                .map(|(_, record)| record.request_digest.as_slice())
                .collect();
            let first_positions = group
                .requests
                .iter()
                .map(|(_, record)| to_i64(record.first_position))
                .collect::<Result<Vec<_>, _>>()?;
            let event_counts = group
                .requests
                .iter()
                .map(|(_, record)| {
                    i32::try_from(record.event_count).map_err(|_| PgError::RowMalformed {
                        table: "ledger_requests",
                        why: format!("an event count of {}", record.event_count),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let recorded_at: Vec<&str> = group
                .requests
                .iter()
                .map(|(_, record)| record.recorded_at.as_str())
                .collect();
            transaction
                .execute(
                    "INSERT INTO ledger_requests \
                     (request_id, request_digest, first_position, event_count, recorded_at) \
                     SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::bigint[], $4::integer[], $5::text[])",
                    &[&ids, &digests, &first_positions, &event_counts, &recorded_at],
                )
                .map_err(PgError::query("insert the group's request records"))?;
        }
        if !group.stream_versions.is_empty() {
            let streams: Vec<&str> = group
                .stream_versions
                .iter()
                .map(|(stream, _)| stream.as_str())
                .collect();
            let versions = group
                .stream_versions
                .iter()
                .map(|(_, version)| to_i64(*version))
                .collect::<Result<Vec<_>, _>>()?;
            transaction
                .execute(
                    "INSERT INTO ledger_streams (stream, version) \
                     SELECT * FROM unnest($1::text[], $2::bigint[]) \
                     ON CONFLICT (stream) DO UPDATE SET version = EXCLUDED.version",
                    &[&streams, &versions],
                )
                .map_err(PgError::query("update the stream versions"))?;
        }
        if !group.names.is_empty() {
            let ids: Vec<Uuid> = group.names.iter().map(|(id, _)| *id).collect();
            let positions = group
                .names
                .iter()
                .map(|(_, position)| to_i64(*position))
                .collect::<Result<Vec<_>, _>>()?;
            transaction
                .execute(
                    "INSERT INTO ledger_names (id, position) \
                     SELECT * FROM unnest($1::uuid[], $2::bigint[])",
                    &[&ids, &positions],
                )
                .map_err(PgError::query("index the group's events by name"))?;
        }
        // An error here may come after the server committed (the connection lost while the
        // answer travelled): the outcome is unknown, and the caller stops the process.
        transaction
            .commit()
            .map_err(PgError::query("commit a group (outcome unknown)"))?;
        Ok(())
    }
}

impl LogBackend for PgLog {
    fn describe(&self) -> String {
        format!("postgresql {}", self.target)
    }

    fn stored_head(&self) -> Result<Option<Head>, StoreError> {
        let row = self.read("read the head", |client| {
            client.query_opt("SELECT position, hash FROM ledger_head", &[])
        })?;
        row.map(|row| head_of(row.get(0), row.get(1), "ledger_head"))
            .transpose()
    }

    fn last_entry(&self) -> Result<Head, StoreError> {
        let row = self.read("read the last entry", |client| {
            client.query_opt(
                "SELECT position, hash FROM ledger_log ORDER BY position DESC LIMIT 1",
                &[],
            )
        })?;
        Ok(match row {
            Some(row) => head_of(row.get(0), row.get(1), "ledger_log")?,
            None => Head::EMPTY,
        })
    }

    fn stream_versions(&self) -> Result<HashMap<String, u64>, StoreError> {
        let rows = self.read("read the stream versions", |client| {
            client.query("SELECT stream, version FROM ledger_streams", &[])
        })?;
        rows.into_iter()
            .map(|row| {
                let stream: String = row.get(0);
                let version = to_u64(row.get(1), "ledger_streams")?;
                Ok((stream, version))
            })
            .collect()
    }

    fn request(&self, request_id: Uuid) -> Result<Option<RequestRecord>, StoreError> {
        let row = self.read("read a request record", |client| {
            client.query_opt(
                "SELECT request_digest, first_position, event_count, recorded_at \
                 FROM ledger_requests WHERE request_id = $1",
                &[&request_id],
            )
        })?;
        row.map(|row| request_record_of(&row)).transpose()
    }

    fn request_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        let rows = self.read("read the request ids", |client| {
            client.query("SELECT request_id FROM ledger_requests", &[])
        })?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    fn requests(&self) -> Result<Vec<(Uuid, RequestRecord)>, StoreError> {
        let rows = self.read("read the request records", |client| {
            client.query(
                "SELECT request_digest, first_position, event_count, recorded_at, request_id \
                 FROM ledger_requests ORDER BY request_id",
                &[],
            )
        })?;
        rows.into_iter()
            .map(|row| Ok((row.get(4), request_record_of(&row)?)))
            .collect()
    }

    fn named_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        let rows = self.read("read the index by name", |client| {
            client.query("SELECT DISTINCT id FROM ledger_names", &[])
        })?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    /// On a connection of its own (reads go on meanwhile), through a cursor read
    /// [`ID_CURSOR_ROWS_MAX`] rows at a time: the client holds one chunk, never every id.
    fn for_each_id(&self, which: IdKind, each: &mut dyn FnMut(Uuid)) -> Result<(), StoreError> {
        let query = match which {
            IdKind::Requests => "SELECT request_id FROM ledger_requests",
            IdKind::Names => "SELECT DISTINCT id FROM ledger_names",
        };
        let mut client = connect(&self.config, &self.target)?;
        let read = (|| -> Result<(), postgres::Error> {
            let mut transaction = client.transaction()?;
            let portal = transaction.bind(query, &[])?;
            loop {
                let rows = transaction.query_portal(&portal, ID_CURSOR_ROWS_MAX)?;
                if rows.is_empty() {
                    return Ok(());
                }
                for row in rows {
                    each(row.try_get(0)?);
                }
            }
        })();
        // The blocking client is closed off any runtime thread, as in `Drop for PgLog`.
        if tokio::runtime::Handle::try_current().is_err() {
            drop(client);
        } else if std::thread::spawn(move || drop(client)).join().is_err() {
            tracing::warn!("closing the postgresql connection failed");
        }
        read.map_err(|source| {
            PgError::Query {
                operation: "read the recorded ids",
                source,
            }
            .into()
        })
    }

    fn positions_naming(&self, id: Uuid) -> Result<Vec<u64>, StoreError> {
        let rows = self.read("read the index by name", |client| {
            client.query(
                "SELECT position FROM ledger_names WHERE id = $1 ORDER BY position",
                &[&id],
            )
        })?;
        rows.into_iter()
            .map(|row| to_u64(row.get(0), "ledger_names"))
            .collect()
    }

    fn entries(
        &self,
        from_position: u64,
        last_position: u64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let from_position = i64::try_from(from_position).unwrap_or(i64::MAX);
        let last_position = i64::try_from(last_position).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read("read the log", |client| {
            client.query(
                "SELECT position, hash, stream, stream_version, event FROM ledger_log \
                 WHERE position BETWEEN $1 AND $2 ORDER BY position LIMIT $3",
                &[&from_position, &last_position, &limit],
            )
        })?;
        rows.into_iter()
            .map(|row| {
                let head = head_of(row.get(0), row.get(1), "ledger_log")?;
                Ok(StoredEntry {
                    position: head.position,
                    hash: head.hash,
                    stream: row.get(2),
                    stream_version: to_u64(row.get(3), "ledger_log")?,
                    event_bytes: row.get(4),
                })
            })
            .collect()
    }

    fn commit(&self, group: &GroupWrite) -> Result<(), StoreError> {
        self.commit_group(group)
    }
}

/// A hot standby's way to the writer's role: one connection that asks for the writer's lock
/// without waiting ([`WriterLock::try_take`]) and reads where the writer serves.
pub struct WriterLock {
    config: Config,
    target: String,
    /// `None` once the lock was taken: the connection became the writer's.
    client: Option<Client>,
}

impl std::fmt::Debug for WriterLock {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WriterLock")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl WriterLock {
    /// Connects; takes nothing yet.
    pub fn connect(connection: &str) -> Result<WriterLock, PgError> {
        let config = parse(connection)?;
        let target = describe(&config);
        let client = connect(&config, &target)?;
        Ok(WriterLock {
            config,
            target,
            client: Some(client),
        })
    }

    fn client(&mut self) -> Result<&mut Client, PgError> {
        if self.client.is_none() {
            // A connection lost (the primary restarted or failed over) is made again.
            self.client = Some(connect(&self.config, &self.target)?);
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => unreachable!("connected above"),
        }
    }

    /// Takes the writer's lock if it is free and bumps the epoch: the log of the new writer,
    /// on this connection. `Ok(None)` while another process holds it. After an error the
    /// next call connects again.
    pub fn try_take(&mut self) -> Result<Option<PgLog>, PgError> {
        let locked = self
            .client()?
            .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])
            .map_err(PgError::query("take the writer's lock"));
        let locked: bool = match locked {
            Ok(row) => row.get(0),
            Err(error) => {
                self.client = None;
                return Err(error);
            }
        };
        if !locked {
            return Ok(None);
        }
        let Some(mut client) = self.client.take() else {
            unreachable!("connected above")
        };
        let epoch = bump_epoch(&mut client)?;
        let reader = connect(&self.config, &self.target)?;
        tracing::info!(target = %self.target, epoch, "writer of the postgresql event log");
        Ok(Some(PgLog {
            config: self.config.clone(),
            target: self.target.clone(),
            writer: Some(Writer {
                client: Mutex::new(Some(client)),
                epoch,
            }),
            reader: Mutex::new(Some(reader)),
        }))
    }

    /// Where the writer serves, as it advertised it ([`PgLog::advertise`]); `None` when no
    /// writer recorded one.
    pub fn writer_address(&mut self) -> Result<Option<String>, PgError> {
        let row = self
            .client()?
            .query_opt("SELECT writer FROM ledger_head", &[])
            .map_err(PgError::query("read the writer's address"));
        match row {
            Ok(row) => Ok(row.and_then(|row| row.get(0))),
            Err(error) => {
                self.client = None;
                Err(error)
            }
        }
    }
}

impl Drop for WriterLock {
    /// As for [`PgLog`]: a blocking client is not dropped on a thread of a runtime.
    fn drop(&mut self) {
        let client = self.client.take();
        if tokio::runtime::Handle::try_current().is_err() {
            drop(client);
        } else if std::thread::spawn(move || drop(client)).join().is_err() {
            tracing::warn!("closing the postgresql connection failed");
        }
    }
}

/// Bumps the head's epoch for a process that just took the writer's lock, which fences every
/// earlier writer out; the writer's address is unknown until it advertises it.
fn bump_epoch(client: &mut Client) -> Result<i64, PgError> {
    Ok(client
        .query_one(
            "UPDATE ledger_head SET epoch = epoch + 1, writer = NULL RETURNING epoch",
            &[],
        )
        .map_err(PgError::query("bump the writer epoch"))?
        .get(0))
}

fn parse(connection: &str) -> Result<Config, PgError> {
    let mut config: Config = connection.parse().map_err(PgError::ConnectionString)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECONDS));
    }
    if config.get_application_name().is_none() {
        config.application_name("voucher-ledger");
    }
    Ok(config)
}

/// The hosts, ports, user and database of a configuration, never its password.
fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "host={} port={} user={} dbname={}",
        hosts.join(","),
        ports.join(","),
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

fn connect(config: &Config, target: &str) -> Result<Client, PgError> {
    config.connect(NoTls).map_err(|source| PgError::Connect {
        target: target.to_owned(),
        source,
    })
}

fn create_schema(client: &mut Client) -> Result<(), PgError> {
    let mut transaction = client
        .transaction()
        .map_err(PgError::query("begin creating the schema"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
        .map_err(PgError::query("take the schema lock"))?;
    transaction
        .batch_execute(SCHEMA_SQL)
        .map_err(PgError::query("create the ledger's tables"))?;
    transaction
        .commit()
        .map_err(PgError::query("commit the ledger's tables"))
}

/// Whether `error` means the connection is gone (closed, a network error, or the server ending
/// the session: `57P01` admin shutdown, class `08` connection exception), so that the next
/// read connects again; an error of a query on a working connection keeps it.
fn connection_lost(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        None => true,
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        }
    }
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::from(PgError::RowMalformed {
            table: "ledger_log",
            why: format!("{value} does not fit a bigint"),
        })
    })
}

fn to_u64(value: i64, table: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| {
        StoreError::from(PgError::RowMalformed {
            table,
            why: format!("a negative number, {value}"),
        })
    })
}

fn head_of(position: i64, hash: Vec<u8>, table: &'static str) -> Result<Head, StoreError> {
    let position = to_u64(position, table)?;
    let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| {
        StoreError::from(PgError::RowMalformed {
            table,
            why: format!("a {}-byte hash at position {position}", hash.len()),
        })
    })?;
    Ok(Head { position, hash })
}

fn request_record_of(row: &postgres::Row) -> Result<RequestRecord, StoreError> {
    let event_count: i32 = row.get(2);
    Ok(RequestRecord {
        request_digest: row.get(0),
        first_position: to_u64(row.get(1), "ledger_requests")?,
        event_count: u32::try_from(event_count).map_err(|_| {
            StoreError::from(PgError::RowMalformed {
                table: "ledger_requests",
                why: format!("an event count of {event_count}"),
            })
        })?,
        recorded_at: row.get(3),
    })
}
