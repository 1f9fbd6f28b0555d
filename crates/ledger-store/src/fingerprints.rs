//! The fingerprints of the recorded request ids and of the indexed names, saved beside the
//! checkpoint so that a start does not read the whole database to know them.
//!
//! The store keeps each set as 64-bit fingerprints in memory (see `IdFilter` in `store.rs`):
//! an id whose fingerprint is absent was never recorded, so a new request id costs no read.
//! Before this file, a start read every request record and every key of the index by name
//! (one of each per redemption, millions after a few years) to fill those sets. Now:
//! - at every checkpoint the engine hands the sets, as they stand at the checkpoint's head, to
//!   the thread that writes the checkpoint, which saves them in the file [`FINGERPRINTS_FILE_NAME`]
//!   (the `snapshot_file` format: the head they reflect and a SHA-256 of the body);
//! - every group the store writes also writes a group record (`g` ‖ head before ‖ head after ‖
//!   first request id, see `keys`) holding its request records and its names (the `tail`
//!   module);
//! - a start reads the file and adds the group records after its head: a scan of the tail, not
//!   of the database.
//!
//! The file is derived data, checked and never trusted: one that is damaged, of another log (the
//! log has another hash at its position), ahead of the log, or whose tail of group records does
//! not run without a gap from its head to the log's (groups written by a version without group
//! records) is passed over, and the sets are read from the whole database in the background,
//! as before. It is not synced: a file lost at a power cut costs one slower start. Once it is
//! saved, the group records before the saved head are folded into the `r` and `n` keys and
//! removed (`tail::fold_group_records_before`).
//!
//! The body: the number of request fingerprints (u64 LE), then the request fingerprints and
//! then the name fingerprints, each u64 LE, ascending.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use crate::chain::Head;
use crate::keys;
use crate::segment::Segments;
use crate::snapshot_file::{self, Format};
use crate::store::StoreError;

/// The fingerprints' file, inside the log directory.
pub const FINGERPRINTS_FILE_NAME: &str = "fingerprints";

/// The file's layout: its first bytes say what it is and the version of its format. Not
/// compressed: sorted 64-bit hashes do not shrink under zstd.
const FORMAT: &Format = &Format {
    kind: *b"VLIDFP01",
    compressed: false,
    reads_plain: None,
};

/// One set of fingerprints as the store holds it: those read at open (shared with the thread
/// that read them) and those added since.
#[derive(Clone, Debug)]
pub(crate) struct IdSetSnapshot {
    pub(crate) at_open: Arc<OnceLock<HashSet<u64>>>,
    pub(crate) since_open: HashSet<u64>,
}

impl IdSetSnapshot {
    /// Every fingerprint, ascending; `None` when those of the open were never read.
    fn sorted(&self) -> Option<Vec<u64>> {
        let at_open = self.at_open.get()?;
        let mut all: Vec<u64> = at_open.iter().chain(&self.since_open).copied().collect();
        all.sort_unstable();
        all.dedup();
        Some(all)
    }
}

/// The request and name fingerprints of a log at one head, taken by the writer (a copy of the
/// ids added since open; those of the open are shared) for a thread that saves them.
#[derive(Clone, Debug)]
pub struct FingerprintSnapshot {
    pub(crate) head: Head,
    pub(crate) requests: IdSetSnapshot,
    pub(crate) names: IdSetSnapshot,
}

impl FingerprintSnapshot {
    /// The head the fingerprints reflect.
    pub fn head(&self) -> Head {
        self.head
    }
}

/// Where the fingerprints of one log are saved, and the database whose group records before
/// the saved head are then removed; cheap to clone, for the thread that writes checkpoints.
#[derive(Clone)]
pub struct FingerprintFile {
    path: PathBuf,
    db: sled::Db,
    /// Where the sealed past goes after each save (see the `segment` module).
    segments: Segments,
    segment_len_events: u64,
}

impl std::fmt::Debug for FingerprintFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FingerprintFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FingerprintFile {
    pub(crate) fn new(
        dir: &Path,
        db: sled::Db,
        segments: Segments,
        segment_len_events: u64,
    ) -> FingerprintFile {
        FingerprintFile {
            path: dir.join(FINGERPRINTS_FILE_NAME),
            db,
            segments,
            segment_len_events,
        }
    }

    /// Seals the whole segments at or below `head` (a durable position: the checkpoint's), off
    /// the writer's path. A failure is logged and costs only sled's size until the next save:
    /// nothing is removed from sled before its segment is durable.
    fn seal(&self, head: u64) {
        if let Err(error) =
            crate::segment::seal(&self.db, &self.segments, head, self.segment_len_events)
        {
            tracing::warn!(%error, position = head, "entries not sealed into a segment");
        }
    }

    /// Saves `snapshot` (replacing the file), then folds the group records that end at or
    /// before its head into the `r` and `n` keys and removes them (see the `tail` module);
    /// once it returns `Ok`, the store may forget them ([`crate::Store::forget_folded`]).
    /// Whether the file was saved: not when the fingerprints of the open were never read
    /// (they are being read, or could not be), which the next save makes up for; the group
    /// records are folded all the same (a start then reads every recorded id, as without a
    /// file).
    pub fn save(&self, snapshot: &FingerprintSnapshot) -> Result<bool, StoreError> {
        let (Some(requests), Some(names)) = (snapshot.requests.sorted(), snapshot.names.sorted())
        else {
            crate::tail::fold_group_records_before(&self.db, snapshot.head.position)?;
            self.seal(snapshot.head.position);
            return Ok(false);
        };
        let mut body = Vec::with_capacity(8 + 8 * (requests.len() + names.len()));
        body.extend_from_slice(&(requests.len() as u64).to_le_bytes());
        for fingerprint in requests.iter().chain(&names) {
            body.extend_from_slice(&fingerprint.to_le_bytes());
        }
        snapshot_file::write(&self.path, FORMAT, &snapshot.head, &body, false)?;
        crate::tail::fold_group_records_before(&self.db, snapshot.head.position)?;
        self.seal(snapshot.head.position);
        Ok(true)
    }
}

/// The fingerprint sets of the log in `db` (whose head is `head`) from the saved file and the
/// group records after it; `None`, with the reason logged, when the file cannot be used.
pub(crate) fn load_saved(
    dir: &Path,
    db: &sled::Db,
    segments: &Segments,
    head: Head,
    fingerprint: fn(Uuid) -> u64,
) -> Option<(HashSet<u64>, HashSet<u64>)> {
    let path = dir.join(FINGERPRINTS_FILE_NAME);
    let passed_over = |why: &str| {
        tracing::info!(path = %path.display(), why, "saved fingerprints passed over; reading every recorded id");
        None
    };
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return passed_over("no file");
        }
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "saved fingerprints unreadable");
            return None;
        }
    };
    let (saved_head, body) = match snapshot_file::decode(&FORMAT.kind, &bytes) {
        Ok(decoded) => decoded,
        Err((_, why)) => return passed_over(why),
    };
    if saved_head.position > head.position {
        return passed_over("ahead of the log");
    }
    match crate::store::entry_hash(db, segments, saved_head.position) {
        Ok(Some(hash)) if hash == saved_head.hash => {}
        Ok(_) => return passed_over("the log has another hash at their position"),
        Err(error) => {
            tracing::warn!(%error, "saved fingerprints not checked against the log");
            return None;
        }
    }
    let Some((requests, names)) = saved_sets(body) else {
        return passed_over("malformed body");
    };
    let (mut requests, mut names) = (requests, names);
    // The groups written after the saved head, which must run from it to the log's head.
    let mut reached = saved_head.position;
    for item in db.range(keys::group_key_from(saved_head.position)..) {
        let (key, value) = match item {
            Ok(item) => item,
            Err(error) => {
                tracing::warn!(%error, "group records unreadable");
                return None;
            }
        };
        let Some((before, after)) = keys::group_heads_of(&key) else {
            break;
        };
        if after > head.position {
            // Written after the open, by a writer that started while this thread read: its ids
            // are among those added since the open. Keys sort by the head before, then after,
            // so every record from here on is such a group. (Counting them as the log's made
            // every start that served at once read every recorded id again.)
            break;
        }
        if before != reached {
            // A group of the saved head written before it (a group that wrote no event) is
            // in the file already; one after a gap means groups without records.
            if before < reached {
                continue;
            }
            return passed_over("the group records after them have a gap");
        }
        let Some(group) = crate::tail::decode_group_record(&value) else {
            return passed_over("a group record is malformed");
        };
        requests.extend(group.requests.into_iter().map(|(id, _)| fingerprint(id)));
        names.extend(group.names.into_iter().map(|(id, _)| fingerprint(id)));
        reached = after;
    }
    if reached != head.position {
        // Where they stop, so that a log which keeps passing them over can be looked into.
        tracing::info!(
            saved_position = saved_head.position,
            reached,
            head_position = head.position,
            "group records after the saved fingerprints"
        );
        return passed_over("the group records after them end before the head");
    }
    Some((requests, names))
}

fn saved_sets(body: &[u8]) -> Option<(HashSet<u64>, HashSet<u64>)> {
    let (count, fingerprints) = body.split_first_chunk::<8>()?;
    let count = usize::try_from(u64::from_le_bytes(*count)).ok()?;
    if fingerprints.len() % 8 != 0 || fingerprints.len() / 8 < count {
        return None;
    }
    let mut all = fingerprints
        .chunks_exact(8)
        .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
    let requests: HashSet<u64> = all.by_ref().take(count).collect();
    let names: HashSet<u64> = all.collect();
    Some((requests, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_sets_read_back_and_a_short_body_is_refused() {
        let mut body = 2u64.to_le_bytes().to_vec();
        for fingerprint in [5u64, 9, 11] {
            body.extend_from_slice(&fingerprint.to_le_bytes());
        }
        let (requests, names) = saved_sets(&body).expect("well formed");
        assert_eq!(requests, HashSet::from([5, 9]));
        assert_eq!(names, HashSet::from([11]));
        assert_eq!(saved_sets(&body[..body.len() - 1]), None);
        assert_eq!(saved_sets(&body[..12]), None);
    }
}
