//! Retained snapshots: encoded projections kept at regular positions of the log, so that a
//! report `as_of` an earlier position replays at most the events after the nearest snapshot
//! at or before it, instead of the whole log from position 1.
//!
//! They are derived data, never the record. Each file names the position and the chain hash
//! of the log it was taken from and carries a SHA-256 of its body; a file that is missing,
//! torn, damaged or of another log (its hash is not the log's at its position, as after a
//! restore from an older backup) is skipped and the next older one used, and at worst the
//! report replays from position 1, as it did before they existed. So they are written without
//! `fsync` (a power cut may lose or tear the newest one, which costs a longer replay, nothing
//! more) and live in a folder of their own beside sled's files rather than in sled: sled keeps
//! the pages of a rewritten or removed value in its file for a long time, while a removed file
//! gives its space back at once.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::snapshot_file::{self, Format};
use crate::{Head, LogReader, StoreError};

/// The folder of the retained snapshots, inside the log directory.
pub const RETAINED_DIR_NAME: &str = "projections";

/// The layout of every retained snapshot file (and year point): its body compressed
/// (`VLPSNAP2`); the uncompressed files written before (`VLPSNAP1`) are still read.
const FORMAT: &Format = &Format {
    kind: *b"VLPSNAP2",
    compressed: true,
    reads_plain: Some(*b"VLPSNAP1"),
};

const FILE_PREFIX: &str = "p-";
const FILE_SUFFIX: &str = ".snap";

/// The retained snapshots of one log directory.
#[derive(Clone, Debug)]
pub struct RetainedSnapshots {
    dir: PathBuf,
}

/// A retained snapshot that passed every check: `body` is exactly what was saved at `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainedSnapshot {
    pub head: Head,
    pub body: Vec<u8>,
}

impl RetainedSnapshots {
    /// The snapshots of the log in `data_dir`; nothing is read or created yet.
    pub fn in_data_dir(data_dir: &Path) -> RetainedSnapshots {
        RetainedSnapshots {
            dir: data_dir.join(RETAINED_DIR_NAME),
        }
    }

    /// Snapshots kept in `dir` the same way (the engine's year points use two such folders).
    pub fn in_dir(dir: PathBuf) -> RetainedSnapshots {
        RetainedSnapshots { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves `body`, the encoding of the projections at `head`, replacing a snapshot at the
    /// same position. Written to a temporary name and renamed, so that a reader never sees
    /// half a file while the process runs (after a power cut, see the module's doc).
    pub fn save(&self, head: &Head, body: &[u8]) -> Result<(), StoreError> {
        self.save_streamed(head, &mut |out| out.write_all(body))
    }

    /// [`RetainedSnapshots::save`] of the bytes `encode` writes, a piece at a time, never
    /// whole in memory.
    pub fn save_streamed(
        &self,
        head: &Head,
        encode: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        fs::create_dir_all(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })?;
        // Not durable: see the module's documentation.
        snapshot_file::write_streamed(&self.path_of(head.position), FORMAT, head, false, encode)
            .map(|_| ())
    }

    /// The positions of the saved snapshots, ascending, without reading them. A missing
    /// folder (a log that never had one) has none.
    pub fn positions(&self) -> Result<Vec<u64>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut positions: Vec<u64> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| position_of_name(&entry.file_name().to_string_lossy()))
            .collect();
        positions.sort_unstable();
        Ok(positions)
    }

    /// The newest snapshot at or before `position` that is intact and of this log, if any.
    /// A file failing a check is reported in the log and passed over, never trusted.
    pub fn latest_at_or_before(
        &self,
        position: u64,
        reader: &LogReader,
    ) -> Result<Option<RetainedSnapshot>, StoreError> {
        for saved in self.positions()?.into_iter().rev() {
            if saved > position {
                continue;
            }
            if let Some(snapshot) = self.read_checked(saved, reader)? {
                return Ok(Some(snapshot));
            }
        }
        Ok(None)
    }

    /// The snapshot saved at exactly `position`, if it is there, intact and of this log.
    pub fn at(
        &self,
        position: u64,
        reader: &LogReader,
    ) -> Result<Option<RetainedSnapshot>, StoreError> {
        self.read_checked(position, reader)
    }

    /// The snapshot saved at `saved`, checked: `None` (reported in the log) when it cannot be
    /// read, is damaged, names another position or is of another log.
    fn read_checked(
        &self,
        saved: u64,
        reader: &LogReader,
    ) -> Result<Option<RetainedSnapshot>, StoreError> {
        let path = self.path_of(saved);
        let read = match snapshot_file::read(&path, FORMAT) {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "retained snapshot cannot be read; using an older one");
                return Ok(None);
            }
        };
        let snapshot = match read {
            Ok((head, body)) if head.position == saved => RetainedSnapshot { head, body },
            Ok(_) => {
                tracing::warn!(path = %path.display(), "retained snapshot names another position than its file; using an older one");
                return Ok(None);
            }
            Err((_, why)) => {
                tracing::warn!(path = %path.display(), why, "retained snapshot is damaged; using an older one");
                return Ok(None);
            }
        };
        if saved > 0 && reader.read_at(saved)?.hash != snapshot.head.hash {
            tracing::warn!(path = %path.display(), position = saved, "retained snapshot is of another log (the hash at its position differs); using an older one");
            return Ok(None);
        }
        Ok(Some(snapshot))
    }

    /// Removes the snapshot saved at `position`, if there is one.
    pub fn remove(&self, position: u64) -> Result<(), StoreError> {
        let path = self.path_of(position);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Thins the snapshots older than `recent_events` positions before the newest: of those,
    /// only the first of each stretch of `coarse_interval_events` positions (1 to the interval,
    /// the next, …) is kept. Each snapshot is the whole projections, which grow with the log,
    /// so keeping one per `RETAINED_INTERVAL_EVENTS` made the folder grow with the square of
    /// the log (about 370 MB after 1.4 million events); with a spacing `coarse_interval_events`
    /// for the past, it grows that many times slower, and a report as of an old position
    /// replays at most about one coarse interval.
    /// The snapshots removed, ascending.
    pub fn thin(
        &self,
        recent_events: u64,
        coarse_interval_events: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let positions = self.positions()?;
        let removed = thinned(&positions, recent_events, coarse_interval_events);
        for position in &removed {
            self.remove(*position)?;
        }
        Ok(removed)
    }

    fn path_of(&self, position: u64) -> PathBuf {
        // Zero-padded, so that the files also sort by position in a listing.
        self.dir
            .join(format!("{FILE_PREFIX}{position:020}{FILE_SUFFIX}"))
    }
}

/// The positions of `positions` (ascending) that [`RetainedSnapshots::thin`] removes.
fn thinned(positions: &[u64], recent_events: u64, coarse_interval_events: u64) -> Vec<u64> {
    let Some(newest) = positions.last() else {
        return Vec::new();
    };
    let recent_from = newest.saturating_sub(recent_events);
    let stretch = |position: u64| position.saturating_sub(1) / coarse_interval_events.max(1);
    let mut removed = Vec::new();
    let mut kept_stretch = None;
    for &position in positions {
        if position >= recent_from {
            break;
        }
        if kept_stretch == Some(stretch(position)) {
            removed.push(position);
        } else {
            kept_stretch = Some(stretch(position));
        }
    }
    removed
}

fn position_of_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_gives_its_position_and_nothing_else_does() {
        assert_eq!(
            position_of_name("p-00000000000000050000.snap"),
            Some(50_000)
        );
        assert_eq!(position_of_name("p-00000000000000050000.tmp"), None);
        assert_eq!(position_of_name("p-50000.snap"), None);
        assert_eq!(position_of_name("p-0000000000000005000x.snap"), None);
        assert_eq!(position_of_name("checkpoint"), None);
    }

    #[test]
    fn thinning_keeps_the_recent_snapshots_and_one_per_coarse_stretch_before() {
        let every_100k: Vec<u64> = (1..=13).map(|n| n * 100_000).chain([1_394_420]).collect();
        // Recent: within 400 000 of the newest (994 420 on); before: the first of each stretch
        // of 400 000 (1–400 000, 400 001–800 000, …).
        assert_eq!(
            thinned(&every_100k, 400_000, 400_000),
            vec![200_000, 300_000, 400_000, 600_000, 700_000, 800_000]
        );
        // Snapshots at checkpoint positions, two in a stretch (an older version's spacing).
        assert_eq!(
            thinned(
                &[50_037, 100_064, 399_999, 400_000, 400_001, 900_000],
                100,
                400_000
            ),
            vec![100_064, 399_999, 400_000]
        );
        assert_eq!(thinned(&[], 400_000, 400_000), Vec::<u64>::new());
        assert_eq!(
            thinned(&[100_000, 200_000], 400_000, 400_000),
            Vec::<u64>::new(),
            "all recent"
        );
    }

    #[test]
    fn thinning_a_folder_removes_those_files_only() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let snapshots = RetainedSnapshots::in_data_dir(dir.path());
        for position in [100_000u64, 200_000, 300_000, 900_000] {
            let head = Head {
                position,
                hash: [7; 32],
            };
            snapshots.save(&head, b"projections").expect("saved");
        }
        assert_eq!(
            snapshots.thin(400_000, 400_000).expect("thinned"),
            vec![200_000, 300_000]
        );
        assert_eq!(
            snapshots.positions().expect("listed"),
            vec![100_000, 900_000]
        );
    }

    #[test]
    fn a_log_folder_without_snapshots_lists_none() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let snapshots = RetainedSnapshots::in_data_dir(dir.path());
        assert_eq!(snapshots.positions().expect("listed"), Vec::<u64>::new());
        snapshots.remove(3).expect("removing a missing one is fine");
    }
}
