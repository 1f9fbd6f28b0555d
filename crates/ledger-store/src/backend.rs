//! The store interface a log backend other than the built-in sled one implements: what
//! [`Store`](crate::Store), [`LogReader`](crate::LogReader) and
//! [`OfflineLog`](crate::OfflineLog) need from the place the log lives.
//!
//! The store keeps everything that makes the log what it is on its own side, whatever the
//! backend: it gives the positions (from the single writer, never from a database sequence),
//! encodes the events, computes the SHA-256 chain, checks every entry it reads against it, and
//! keeps the request-id and name fingerprints and the stream versions in memory. A backend
//! only keeps rows: it writes one prepared group atomically ([`LogBackend::commit`]) and reads
//! back what was written. The checkpoint and the retained snapshots of the projections stay
//! files in the local data folder whatever the backend: they are caches derived from the log,
//! checked against its hash before use, so each process may keep its own.
//!
//! What it is not: a backend never decides a position, a version or a hash, and never
//! retries a commit whose outcome it does not know: it says so
//! ([`StoreError::CommitOutcomeUnknown`](crate::StoreError)) and the engine stops the process,
//! as after a failed `fdatasync`, or stops answering and reconnects (issue 19,
//! `Committer::try_commit` and `ledger_engine::reconnect`).

use std::collections::HashMap;
use std::fmt;

use ledger_proto::event::v1::RequestRecord;
use uuid::Uuid;

use crate::chain::Head;
use crate::store::StoreError;

/// One entry of the log as a backend keeps it: the exact bytes of the encoded `Event` and the
/// chain hash the store computed for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub position: u64,
    pub hash: [u8; 32],
    /// The stream and its version, as inside the event, for the backend's own indexes and
    /// reporting; the event bytes stay the truth.
    pub stream: String,
    pub stream_version: u64,
    pub event_bytes: Vec<u8>,
}

/// Everything one group writes, prepared by [`Store::prepare_append`](crate::Store): to be
/// written all or nothing by [`LogBackend::commit`].
#[derive(Clone, Debug, PartialEq)]
pub struct GroupWrite {
    /// The head the group extends: the backend writes only if the stored head is still this
    /// one (compare-and-set), so two writers can never both extend the same head.
    pub previous_head: Head,
    /// The head after the group: its last entry.
    pub head: Head,
    pub entries: Vec<StoredEntry>,
    /// The request record of every command of the group, in order.
    pub requests: Vec<(Uuid, RequestRecord)>,
    /// Every stream the group wrote to, with its version after the group.
    pub stream_versions: Vec<(String, u64)>,
    /// The index by name: `(id, position)` of each event naming an id.
    pub names: Vec<(Uuid, u64)>,
}

/// Which ids [`LogBackend::for_each_id`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// The recorded request ids.
    Requests,
    /// The ids of the index by name.
    Names,
}

/// The rows of a log kept outside sled (PostgreSQL in `ledger-store-pg`). Every method blocks;
/// the store calls them from the writer's, the committer's or a blocking thread, never from
/// async code.
pub trait LogBackend: Send + Sync + fmt::Debug {
    /// A short description for logs and errors (never a password).
    fn describe(&self) -> String;

    /// The stored head record, unchecked; `None` when the log has none yet.
    fn stored_head(&self) -> Result<Option<Head>, StoreError>;

    /// The position and stored hash of the last entry; `Head::EMPTY` when there is none.
    fn last_entry(&self) -> Result<Head, StoreError>;

    /// Every stream's version.
    fn stream_versions(&self) -> Result<HashMap<String, u64>, StoreError>;

    /// The record of `request_id`, if it was recorded.
    fn request(&self, request_id: Uuid) -> Result<Option<RequestRecord>, StoreError>;

    /// Every recorded request id, for the store's fingerprints.
    fn request_ids(&self) -> Result<Vec<Uuid>, StoreError>;

    /// Every request record, in request-id order, for the offline `verify`.
    fn requests(&self) -> Result<Vec<(Uuid, RequestRecord)>, StoreError>;

    /// Every id of the index by name, for the store's fingerprints.
    fn named_ids(&self) -> Result<Vec<Uuid>, StoreError>;

    /// Hands every recorded request id (`which` = [`IdKind::Requests`]) or every id of the
    /// index by name ([`IdKind::Names`]) to `each`, as they are read: a start makes its
    /// fingerprints of them without holding them all at once (twenty years of a Region's
    /// requests are tens of millions of ids). The default reads them all first.
    fn for_each_id(&self, which: IdKind, each: &mut dyn FnMut(Uuid)) -> Result<(), StoreError> {
        let ids = match which {
            IdKind::Requests => self.request_ids()?,
            IdKind::Names => self.named_ids()?,
        };
        ids.into_iter().for_each(each);
        Ok(())
    }

    /// The positions of the events naming `id`, ascending.
    fn positions_naming(&self, id: Uuid) -> Result<Vec<u64>, StoreError>;

    /// At most `limit` entries with positions in `from_position..=last_position`, ascending.
    /// The store checks each against the chain (a missing position is a break it reports).
    fn entries(
        &self,
        from_position: u64,
        last_position: u64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError>;

    /// Writes `group` atomically, durable when it returns `Ok`, only if the stored head is
    /// still `group.previous_head` and this process is still the writer. On `Err` nothing may
    /// be assumed about what was written: the caller stops the process.
    fn commit(&self, group: &GroupWrite) -> Result<(), StoreError>;
}
