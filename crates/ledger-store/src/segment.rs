//! The sealed past of the log: immutable, checksummed segment files in `segments/` of the data
//! folder, each holding a contiguous range of entries moved out of sled.
//!
//! Why: sled stores a ~350-byte entry in about 845 bytes and its open time grows with its size.
//! The past below the last checkpoint never changes, so it is written once, in order, into a
//! plain file, and sled keeps only the recent tail and the small mutable records (head, stream
//! versions, request records, the index by name, group records).
//!
//! A segment holds the entries exactly as sled held them (the encoded `LogEntry`, same event
//! bytes, same chain hash), so every read, `verify`, `export` and a rebuild are byte-identical
//! whichever side an entry is on. Layout, integers big-endian:
//!
//! | part    | bytes                                                                     |
//! |---------|---------------------------------------------------------------------------|
//! | header  | `VLSEG001` ‖ first position (u64) ‖ last position (u64) ‖ hash before first (32) |
//! | entries | each encoded `LogEntry`, back to back                                      |
//! | offsets | (count + 1) × u64: where each entry starts, then where the last one ends   |
//! | footer  | where the offsets start (u64) ‖ SHA-256 of every byte before the footer ‖ `VLSEGEND` |
//!
//! Sealing ([`seal`]) runs on the checkpoint thread, off the writer's path: it reads the range
//! from sled checking the chain, writes `<name>.tmp`, syncs it, renames it, syncs the folder,
//! publishes the segment to readers, and only then removes the range from sled. A crash between
//! the rename and the removal leaves both copies: at open the segment wins and the sled copy is
//! removed. Opening checks each segment's form (header, footer, offsets) and that the segments
//! run from position 1 with no gap; the entries are checked by the chain at every read, and the
//! footer's digest of the whole file by `verify` ([`Segment::check_digest`]).
//!
//! Reads use `FileExt::read_exact_at` (no mmap: `unsafe_code` is forbidden): an entry by
//! position costs two reads (its offsets, then its bytes), a sequential read fetches the
//! offsets and bytes of many entries at once ([`SegmentCursor`]). A segment's file is opened
//! when it is read and kept in a small cache of open files ([`OpenFiles`]), so that the number
//! of file descriptors does not grow with the history: twenty years hold thousands of segments
//! when they are short, and a process's descriptors are limited.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};

use crate::chain::{self, ChainBreak, ChainBreakKind, Head};
use crate::keys;
use crate::store::{sync_directory, StoreError};

/// The folder of the segments inside the data folder.
pub const SEGMENTS_DIR_NAME: &str = "segments";

const HEADER_MAGIC: &[u8; 8] = b"VLSEG001";
const FOOTER_MAGIC: &[u8; 8] = b"VLSEGEND";
/// Magic, first and last position, the hash before the first entry.
const HEADER_LEN: u64 = 8 + 8 + 8 + 32;
/// Where the offsets start, the digest, the magic.
const FOOTER_LEN: u64 = 8 + 32 + 8;
const SEGMENT_SUFFIX: &str = ".seg";
const UNFINISHED_SUFFIX: &str = ".seg.tmp";

/// Entries a sequential read fetches per read of a segment: about a megabyte of entries, few
/// enough reads that a rebuild runs at disk speed, little enough memory.
const CURSOR_ENTRIES_PER_READ: u64 = 4096;
/// Entries removed from sled per batch once sealed, each batch flushed on its own: about a
/// megabyte of removed entries per flush. A seal that removed its 200 000 entries at once left
/// them all to the next flush, the committer's as often as not, which then took seconds (the
/// batched phase of the ten-year bench stalled 4.9 s); a batch this size keeps any one flush
/// close to an ordinary group's.
const REMOVE_BATCH_LEN_MAX: usize = 1024;
/// Bytes of a segment written between two `fdatasync`s of its file while it is sealed: the
/// kernel then never holds tens of megabytes of the segment dirty, which an `fdatasync` of
/// sled's file by the committer (ext4 commits its journal for the whole file system) would
/// otherwise wait behind.
const SEAL_SYNC_BYTES_MAX: u64 = 4 << 20;
/// Segment files kept open at once, per data folder: the recent segments a reader or a seal
/// goes back to, and a walk's current one. More are opened again when read.
const OPEN_FILES_LEN_MAX: usize = 16;

/// The segment files open at the moment, most recently used first, at most
/// [`OPEN_FILES_LEN_MAX`]: a file dropped from the cache closes when its last reader is done.
#[derive(Debug, Default)]
pub(crate) struct OpenFiles {
    /// By the segment's first position.
    open: Mutex<std::collections::VecDeque<(u64, Arc<File>)>>,
}

impl OpenFiles {
    /// The open file of the segment that starts at `first`, at `path`: from the cache, or
    /// opened and put first in it.
    fn get(&self, first: u64, path: &Path) -> Result<Arc<File>, StoreError> {
        {
            let mut open = self
                .open
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(index) = open.iter().position(|(at, _)| *at == first) {
                let found = open.remove(index).map(|(_, file)| file);
                if let Some(file) = found {
                    open.push_front((first, file.clone()));
                    return Ok(file);
                }
            }
        }
        // Opened outside the lock: other readers go on meanwhile.
        let file = Arc::new(File::open(path).map_err(io_error(path))?);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        open.retain(|(at, _)| *at != first);
        open.push_front((first, file.clone()));
        open.truncate(OPEN_FILES_LEN_MAX);
        Ok(file)
    }
}

/// One segment file, checked for form when opened.
#[derive(Debug)]
pub(crate) struct Segment {
    path: PathBuf,
    /// The folder's cache of open segment files, through which this one is read.
    files: Arc<OpenFiles>,
    pub(crate) first: u64,
    pub(crate) last: u64,
    /// The chain hash of the entry before `first` (32 zero bytes before position 1).
    pub(crate) hash_before: [u8; 32],
    offsets_start: u64,
    file_len: u64,
}

/// The file name of the segment of `first..=last`: zero-padded, so that names sort as ranges.
fn segment_name(first: u64, last: u64) -> String {
    format!("{first:020}-{last:020}{SEGMENT_SUFFIX}")
}

/// The range a segment's file name says it holds.
fn range_of_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    let (first, last) = stem.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

impl Segment {
    /// Opens the segment at `path` (named for `first..=last`) and checks its form: the header
    /// and footer, their agreement with the name and the file's length, and the first and last
    /// offsets. `Ok(Err(why))` when the file is not a whole segment.
    fn open(
        path: &Path,
        first: u64,
        last: u64,
        files: &Arc<OpenFiles>,
    ) -> Result<Result<Segment, String>, StoreError> {
        let file = files.get(first, path)?;
        let file_len = file.metadata().map_err(io_error(path))?.len();
        if last < first {
            return Ok(Err(
                "its name gives a last position before the first".to_owned()
            ));
        }
        let count = last - first + 1;
        let Some(least_len) = count
            .checked_add(1)
            .and_then(|offsets| offsets.checked_mul(8))
            .and_then(|bytes| bytes.checked_add(HEADER_LEN + FOOTER_LEN))
        else {
            return Ok(Err("its name gives a range too long".to_owned()));
        };
        if file_len < least_len {
            return Ok(Err(format!(
                "{file_len} bytes, fewer than the {least_len} its range needs"
            )));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut header, 0).map_err(io_error(path))?;
        let mut footer = [0u8; FOOTER_LEN as usize];
        file.read_exact_at(&mut footer, file_len - FOOTER_LEN)
            .map_err(io_error(path))?;
        if &header[..8] != HEADER_MAGIC {
            return Ok(Err(
                "the header does not start with the segment magic".to_owned()
            ));
        }
        if &footer[40..] != FOOTER_MAGIC {
            return Ok(Err(
                "the footer does not end with the segment magic".to_owned()
            ));
        }
        if (u64_at(&header, 8), u64_at(&header, 16)) != (first, last) {
            return Ok(Err(format!(
                "the header says positions {}..={}, the name {first}..={last}",
                u64_at(&header, 8),
                u64_at(&header, 16)
            )));
        }
        let offsets_start = u64_at(&footer, 0);
        if offsets_start.checked_add((count + 1) * 8 + FOOTER_LEN) != Some(file_len) {
            return Ok(Err(format!(
                "the offsets start at {offsets_start}, which does not fit a file of {file_len} bytes"
            )));
        }
        let mut hash_before = [0u8; 32];
        hash_before.copy_from_slice(&header[24..56]);
        let segment = Segment {
            path: path.to_path_buf(),
            files: files.clone(),
            first,
            last,
            hash_before,
            offsets_start,
            file_len,
        };
        let bounds = (segment.offsets(first, 0)?, segment.offsets(last, 0)?);
        if bounds.0.first() != Some(&HEADER_LEN) || bounds.1.last() != Some(&offsets_start) {
            return Ok(Err(
                "the offsets do not run from the header to the offsets".to_owned()
            ));
        }
        Ok(Ok(segment))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The segment's file, open.
    fn file(&self) -> Result<Arc<File>, StoreError> {
        self.files.get(self.first, &self.path)
    }

    /// The offsets of `position` and the `more` positions after it, plus where the last of them
    /// ends: `more + 2` numbers.
    fn offsets(&self, position: u64, more: u64) -> Result<Vec<u64>, StoreError> {
        debug_assert!(position >= self.first && position + more <= self.last);
        let index = position - self.first;
        let mut bytes = vec![0u8; ((more + 2) * 8) as usize];
        self.file()?
            .read_exact_at(&mut bytes, self.offsets_start + index * 8)
            .map_err(io_error(&self.path))?;
        Ok(bytes.chunks_exact(8).map(|word| u64_at(word, 0)).collect())
    }

    /// The bytes between two offsets, which must run forward inside the entries.
    fn bytes_between(&self, start: u64, end: u64, position: u64) -> Result<Vec<u8>, StoreError> {
        if start > end || start < HEADER_LEN || end > self.offsets_start {
            return Err(self.damaged(
                position,
                format!("its offsets {start}..{end} for position {position} are out of order"),
            ));
        }
        let mut bytes = vec![0u8; (end - start) as usize];
        self.file()?
            .read_exact_at(&mut bytes, start)
            .map_err(io_error(&self.path))?;
        Ok(bytes)
    }

    /// The stored entry (encoded `LogEntry`) at `position`, unchecked.
    pub(crate) fn entry(&self, position: u64) -> Result<Vec<u8>, StoreError> {
        let offsets = self.offsets(position, 0)?;
        self.bytes_between(offsets[0], offsets[1], position)
    }

    /// The position and stored hash of the last entry, its form checked.
    pub(crate) fn last_head(&self) -> Result<Head, StoreError> {
        let value = self.entry(self.last)?;
        let (_, hash) = chain::decode_entry(&value).map_err(|kind| ChainBreak {
            position: self.last,
            kind,
        })?;
        Ok(Head {
            position: self.last,
            hash,
        })
    }

    fn damaged(&self, position: u64, why: String) -> StoreError {
        StoreError::ChainBroken(damaged_break(position, &self.path, why))
    }

    /// Recomputes the SHA-256 of the file before its footer and compares it with the footer's:
    /// what `verify` adds to the chain check of the entries, so that the header and the
    /// offsets are covered too. `Ok(Err(why))` when they differ.
    pub(crate) fn check_digest(&self) -> Result<Result<(), String>, StoreError> {
        let mut hasher = Sha256::new();
        let body_len = self.file_len - FOOTER_LEN;
        let mut buffer = vec![0u8; 1 << 20];
        let mut at = 0u64;
        let file = self.file()?;
        while at < body_len {
            let length = (body_len - at).min(buffer.len() as u64) as usize;
            file.read_exact_at(&mut buffer[..length], at)
                .map_err(io_error(&self.path))?;
            hasher.update(&buffer[..length]);
            at += length as u64;
        }
        let mut stored = [0u8; 32];
        file.read_exact_at(&mut stored, body_len + 8)
            .map_err(io_error(&self.path))?;
        let computed: [u8; 32] = hasher.finalize().into();
        if computed != stored {
            return Ok(Err(format!(
                "its digest is {}, its footer says {}",
                hex::encode(computed),
                hex::encode(stored)
            )));
        }
        Ok(Ok(()))
    }
}

/// The break a damaged segment file is reported as, at the first position it should hold.
pub(crate) fn damaged_break(position: u64, path: &Path, why: String) -> ChainBreak {
    ChainBreak {
        position,
        kind: ChainBreakKind::SegmentDamaged {
            file: path.display().to_string(),
            why,
        },
    }
}

/// A segment file that did not open as one, in a folder opened leniently (for `verify`).
#[derive(Clone, Debug)]
pub(crate) struct DamagedSegment {
    pub(crate) first: u64,
    pub(crate) path: PathBuf,
    pub(crate) why: String,
}

/// The segments of one data folder, shared by the store, its readers and the checkpoint
/// thread that seals; cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Segments {
    dir: PathBuf,
    /// In position order, contiguous from position 1.
    list: Arc<RwLock<Vec<Arc<Segment>>>>,
    /// Held while a seal publishes a segment, and by a backup for its whole copy, so that a
    /// backup never sees a range in neither place (it may see part of one in both, which an
    /// open resolves).
    pub(crate) sealing: Arc<Mutex<()>>,
    /// Files that are not whole segments, when opened leniently; none otherwise.
    pub(crate) damaged: Arc<Vec<DamagedSegment>>,
    /// The segment files open at the moment, few whatever the number of segments.
    files: Arc<OpenFiles>,
}

impl Segments {
    /// The segments of the data folder `data_dir`. Unfinished files (`*.seg.tmp`, a seal cut
    /// short) are removed, except when `lenient`. A file that is not a whole segment, or
    /// segments that do not run from position 1 with no gap, are refused with
    /// [`StoreError::ChainBroken`] naming the file; `lenient` keeps them in
    /// [`Segments::damaged`] instead, for a walk that reports them where they break.
    pub(crate) fn open(data_dir: &Path, lenient: bool) -> Result<Segments, StoreError> {
        let dir = data_dir.join(SEGMENTS_DIR_NAME);
        let mut found: Vec<(u64, u64, PathBuf)> = Vec::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io_error(&dir))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let path = entry.path();
                    if name.ends_with(UNFINISHED_SUFFIX) {
                        if !lenient {
                            tracing::warn!(path = %path.display(), "removing a segment left unfinished by a crash");
                            fs::remove_file(&path).map_err(io_error(&path))?;
                        }
                        continue;
                    }
                    match range_of_name(&name) {
                        Some((first, last)) => found.push((first, last, path)),
                        None => {
                            tracing::warn!(path = %path.display(), "file in the segments folder ignored: not a segment's name")
                        }
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&dir)(error)),
        }
        found.sort_unstable_by_key(|(first, _, _)| *first);
        let mut list: Vec<Arc<Segment>> = Vec::with_capacity(found.len());
        let files = Arc::new(OpenFiles::default());
        let mut damaged = Vec::new();
        let mut expected_first = 1u64;
        for (first, last, path) in found {
            let why = if first != expected_first {
                Some(format!(
                    "it starts at {first}, where {expected_first} was expected"
                ))
            } else {
                match Segment::open(&path, first, last, &files)? {
                    Ok(segment) => {
                        // Each segment names the hash it chains from: the last of the one
                        // before, or zeros at position 1.
                        let chains_from = match list.last() {
                            Some(before) => Segment::last_head(before)?.hash,
                            None => Head::EMPTY.hash,
                        };
                        if segment.hash_before == chains_from {
                            list.push(Arc::new(segment));
                            expected_first = last.saturating_add(1);
                            None
                        } else {
                            Some(format!(
                                "it chains from hash {}, the entry before it has {}",
                                hex::encode(segment.hash_before),
                                hex::encode(chains_from)
                            ))
                        }
                    }
                    Err(why) => Some(why),
                }
            };
            if let Some(why) = why {
                if !lenient {
                    return Err(StoreError::ChainBroken(damaged_break(first, &path, why)));
                }
                tracing::warn!(path = %path.display(), why, "segment file damaged");
                damaged.push(DamagedSegment { first, path, why });
                // What follows a damaged segment cannot be placed in the chain by this walk.
                break;
            }
        }
        Ok(Segments {
            dir,
            list: Arc::new(RwLock::new(list)),
            sealing: Arc::new(Mutex::new(())),
            damaged: Arc::new(damaged),
            files,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every segment, in position order.
    pub(crate) fn all(&self) -> Vec<Arc<Segment>> {
        self.list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The last position held in segments; 0 when there is none.
    pub(crate) fn sealed_through(&self) -> u64 {
        self.list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .last()
            .map_or(0, |segment| segment.last)
    }

    /// The segment that holds `position`, if any.
    pub(crate) fn find(&self, position: u64) -> Option<Arc<Segment>> {
        let list = self
            .list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = list.partition_point(|segment| segment.last < position);
        list.get(index)
            .filter(|segment| segment.first <= position)
            .cloned()
    }

    /// The damaged segment file that should hold `position`, when opened leniently.
    pub(crate) fn damaged_at(&self, position: u64) -> Option<&DamagedSegment> {
        self.damaged
            .iter()
            .find(|damaged| damaged.first <= position)
    }

    fn publish(&self, segment: Segment) {
        let mut list = self
            .list
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        debug_assert_eq!(
            list.last().map_or(0, |last| last.last) + 1,
            segment.first,
            "segments are published in order, with no gap"
        );
        list.push(Arc::new(segment));
    }

    /// Removes from sled the entries that segments hold too: a seal that crashed after its
    /// rename, before the removal. The segment wins; it was synced before anything was removed.
    /// Whether anything was removed (the caller then flushes and syncs).
    pub(crate) fn remove_sealed_from(&self, db: &sled::Db) -> Result<bool, StoreError> {
        let through = self.sealed_through();
        if through == 0 {
            return Ok(false);
        }
        let Some(first) = db
            .range(keys::entry_key(1)..=keys::entry_key(through))
            .next()
            .transpose()?
        else {
            return Ok(false);
        };
        let from = keys::entry_position(&first.0).unwrap_or(1);
        tracing::info!(
            from,
            through,
            "removing entries from sled that a segment holds (a seal cut short)"
        );
        remove_range(db, from, through)?;
        Ok(true)
    }
}

/// Removes the entries `from..=through` from sled, in batches of [`REMOVE_BATCH_LEN_MAX`],
/// each flushed before the next is applied, so that no flush (this thread's or the
/// committer's) carries more than one batch of removals. A crash between two batches leaves
/// the rest to [`Segments::remove_sealed_from`] at the next open: the segment is durable before
/// the first removal.
fn remove_range(db: &sled::Db, from: u64, through: u64) -> Result<(), StoreError> {
    let mut next = from;
    while next <= through {
        let mut batch = sled::Batch::default();
        let mut batch_len = 0usize;
        let mut last_removed = None;
        for item in db.range(keys::entry_key(next)..=keys::entry_key(through)) {
            let (key, _) = item?;
            last_removed = keys::entry_position(&key);
            batch.remove(key);
            batch_len += 1;
            if batch_len >= REMOVE_BATCH_LEN_MAX {
                break;
            }
        }
        let Some(last_removed) = last_removed else {
            return Ok(());
        };
        db.apply_batch(batch)?;
        db.flush()?;
        next = last_removed.saturating_add(1);
    }
    Ok(())
}

/// Reads a segment's entries in order, many at a time.
#[derive(Debug)]
pub(crate) struct SegmentCursor {
    segment: Arc<Segment>,
    next: u64,
    /// The last position to read: the segment's, or the reader's when it ends before.
    end: u64,
    /// The entries fetched and not yet taken, front first.
    fetched: std::collections::VecDeque<Vec<u8>>,
}

impl SegmentCursor {
    pub(crate) fn new(segment: Arc<Segment>, from: u64, end: u64) -> SegmentCursor {
        let end = end.min(segment.last);
        SegmentCursor {
            segment,
            next: from,
            end,
            fetched: std::collections::VecDeque::new(),
        }
    }

    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// The next entry's position and stored bytes, or `None` past the segment's last.
    pub(crate) fn next_entry(&mut self) -> Option<Result<(u64, Vec<u8>), StoreError>> {
        if self.fetched.is_empty() {
            if self.next > self.end {
                return None;
            }
            if let Err(error) = self.fetch() {
                self.next = self.end.saturating_add(1);
                return Some(Err(error));
            }
        }
        let entry = self.fetched.pop_front()?;
        let position = self.next - self.fetched.len() as u64 - 1;
        Some(Ok((position, entry)))
    }

    fn fetch(&mut self) -> Result<(), StoreError> {
        let segment = &self.segment;
        let more = (self.end - self.next).min(CURSOR_ENTRIES_PER_READ - 1);
        let offsets = segment.offsets(self.next, more)?;
        let start = offsets[0];
        let end = offsets[offsets.len() - 1];
        let bytes = segment.bytes_between(start, end, self.next)?;
        for (index, pair) in offsets.windows(2).enumerate() {
            let position = self.next + index as u64;
            if pair[0] > pair[1] || pair[0] < start || pair[1] > end {
                return Err(segment.damaged(
                    position,
                    format!("its offsets for position {position} are out of order"),
                ));
            }
            let from = (pair[0] - start) as usize;
            let to = (pair[1] - start) as usize;
            self.fetched.push_back(bytes[from..to].to_vec());
        }
        self.next += more + 1;
        Ok(())
    }
}

/// Seals every whole segment of `segment_len_events` entries that lies at or below `through`
/// (a durable position) and after the last segment: reads each range from sled, checking its
/// chain, writes and syncs its file, publishes it, then removes the range from sled a batch
/// and a flush at a time. The number of segments sealed. Runs beside the writer (on the
/// checkpoint thread), which only appends above `through`.
pub(crate) fn seal(
    db: &sled::Db,
    segments: &Segments,
    through: u64,
    segment_len_events: u64,
) -> Result<usize, StoreError> {
    let mut sealed = 0;
    let segment_len_events = segment_len_events.max(1);
    loop {
        let first = segments.sealed_through() + 1;
        let last = first + segment_len_events - 1;
        if last > through {
            return Ok(sealed);
        }
        let hash_before = if first == 1 {
            Head::EMPTY.hash
        } else {
            match segments.find(first - 1) {
                Some(segment) => segment.last_head()?.hash,
                None => unreachable!("the segment before the next one is published"),
            }
        };
        let started = std::time::Instant::now();
        let segment = write_segment(db, segments, first, last, hash_before)?;
        let bytes = segment.file_len;
        {
            // Published under the lock a backup holds, so that a backup sees the range in the
            // segment it copies. The removal that follows needs no lock: a backup taken
            // meanwhile copies part of the range twice (in the segment and in sled), and an
            // open of the copy removes sled's part as it does after a seal cut short.
            let _sealing = segments
                .sealing
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            segments.publish(segment);
        }
        remove_range(db, first, last)?;
        tracing::info!(
            first,
            last,
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "entries sealed into a segment"
        );
        sealed += 1;
    }
}

/// Writes the segment of `first..=last` from sled's entries, each checked against the chain,
/// durably: a temporary file synced, renamed, the folder synced. The segment, opened.
fn write_segment(
    db: &sled::Db,
    segments: &Segments,
    first: u64,
    last: u64,
    hash_before: [u8; 32],
) -> Result<Segment, StoreError> {
    let dir = segments.dir();
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let name = segment_name(first, last);
    let path = dir.join(&name);
    let unfinished = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&unfinished)
            .map_err(io_error(&unfinished))?;
        let mut out = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            written: 0,
        };
        let write_error = io_error(&unfinished);
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(HEADER_MAGIC);
        header.extend_from_slice(&first.to_be_bytes());
        header.extend_from_slice(&last.to_be_bytes());
        header.extend_from_slice(&hash_before);
        out.write_all(&header).map_err(write_error)?;
        let mut offsets = Vec::with_capacity((last - first + 2) as usize);
        let mut prev_hash = hash_before;
        let mut expected = first;
        let mut synced_through = 0u64;
        for item in db.range(keys::entry_key(first)..=keys::entry_key(last)) {
            let (key, value) = item?;
            // The sealed past is what the chain says it is: a damaged entry is never sealed.
            let recorded = chain::check_entry(expected, &prev_hash, &key, &value)?;
            prev_hash = recorded.hash;
            offsets.push(out.written);
            out.write_all(&value).map_err(io_error(&unfinished))?;
            expected += 1;
            if out.written - synced_through >= SEAL_SYNC_BYTES_MAX {
                out.inner.flush().map_err(io_error(&unfinished))?;
                out.inner
                    .get_ref()
                    .sync_data()
                    .map_err(io_error(&unfinished))?;
                synced_through = out.written;
            }
        }
        if expected != last + 1 {
            return Err(StoreError::ChainBroken(ChainBreak {
                position: expected,
                kind: ChainBreakKind::EntryMissing,
            }));
        }
        let offsets_start = out.written;
        offsets.push(offsets_start);
        for offset in &offsets {
            out.write_all(&offset.to_be_bytes())
                .map_err(io_error(&unfinished))?;
        }
        let digest: [u8; 32] = out.hasher.clone().finalize().into();
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&offsets_start.to_be_bytes());
        footer.extend_from_slice(&digest);
        footer.extend_from_slice(FOOTER_MAGIC);
        out.write_all(&footer).map_err(io_error(&unfinished))?;
        let file = out
            .inner
            .into_inner()
            .map_err(|error| io_error(&unfinished)(error.into_error()))?;
        file.sync_all().map_err(io_error(&unfinished))?;
        Ok(())
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&unfinished);
        return Err(error);
    }
    fs::rename(&unfinished, &path).map_err(io_error(&path))?;
    sync_directory(dir)?;
    if let Some(parent) = dir.parent() {
        // The folder itself is new at the first seal.
        sync_directory(parent)?;
    }
    match Segment::open(&path, first, last, &segments.files)? {
        Ok(segment) => Ok(segment),
        Err(why) => Err(StoreError::ChainBroken(damaged_break(first, &path, why))),
    }
}

/// Copies every segment file into `target_data_dir/segments/`, each synced, then the folder:
/// for a backup, which holds the sealing lock meanwhile. Bytes copied.
pub(crate) fn copy_segments(
    segments: &Segments,
    target_data_dir: &Path,
) -> Result<u64, StoreError> {
    let all = segments.all();
    if all.is_empty() {
        return Ok(0);
    }
    let target = target_data_dir.join(SEGMENTS_DIR_NAME);
    fs::create_dir_all(&target).map_err(io_error(&target))?;
    let mut bytes = 0;
    for segment in all {
        let name = segment
            .path()
            .file_name()
            .map(|name| name.to_os_string())
            .unwrap_or_default();
        let copy = target.join(name);
        bytes += fs::copy(segment.path(), &copy).map_err(io_error(&copy))?;
        File::open(&copy)
            .and_then(|file| file.sync_all())
            .map_err(io_error(&copy))?;
    }
    sync_directory(&target)?;
    Ok(bytes)
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The entries of a sled log in position order, from its segments and then from sled, as the
/// key and value sled holds (or held) for each, so that one chain check serves both sides.
///
/// A seal may move a range out of sled while this reads: it publishes the segment before it
/// removes the range, so an entry missing from sled is looked for in the segments again before
/// the miss is reported.
pub(crate) struct LogEntries {
    db: sled::Db,
    segments: Segments,
    next: u64,
    last: u64,
    cursor: Option<SegmentCursor>,
    sled_entries: Option<sled::Iter>,
    /// Check each segment's digest once its entries are read (`verify`).
    check_digests: bool,
    finished: bool,
}

impl LogEntries {
    pub(crate) fn new(
        db: &sled::Db,
        segments: &Segments,
        from: u64,
        last: u64,
        check_digests: bool,
    ) -> LogEntries {
        LogEntries {
            db: db.clone(),
            segments: segments.clone(),
            next: from.max(1),
            last,
            cursor: None,
            sled_entries: None,
            check_digests,
            finished: from > last,
        }
    }

    fn finish_with(
        &mut self,
        error: StoreError,
    ) -> Option<Result<(sled::IVec, sled::IVec), StoreError>> {
        self.finished = true;
        Some(Err(error))
    }

    /// The damaged segment file where `position` should be, as the error a read reports.
    fn damaged_at(&self, position: u64) -> Option<StoreError> {
        self.segments.damaged_at(position).map(|damaged| {
            StoreError::ChainBroken(damaged_break(
                damaged.first,
                &damaged.path,
                damaged.why.clone(),
            ))
        })
    }
}

impl Iterator for LogEntries {
    type Item = Result<(sled::IVec, sled::IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.finished || self.next > self.last {
                return None;
            }
            if let Some(cursor) = &mut self.cursor {
                match cursor.next_entry() {
                    Some(Ok((position, bytes))) => {
                        self.next = position + 1;
                        return Some(Ok((
                            sled::IVec::from(&keys::entry_key(position)[..]),
                            sled::IVec::from(bytes),
                        )));
                    }
                    Some(Err(error)) => return self.finish_with(error),
                    None => {
                        if self.check_digests && cursor.end == cursor.segment.last {
                            let segment = Arc::clone(cursor.segment());
                            match segment.check_digest() {
                                Ok(Ok(())) => {}
                                Ok(Err(why)) => {
                                    return self.finish_with(StoreError::ChainBroken(
                                        damaged_break(segment.first, segment.path(), why),
                                    ))
                                }
                                Err(error) => return self.finish_with(error),
                            }
                        }
                        self.cursor = None;
                        continue;
                    }
                }
            }
            if let Some(segment) = self.segments.find(self.next) {
                self.cursor = Some(SegmentCursor::new(segment, self.next, self.last));
                self.sled_entries = None;
                continue;
            }
            let (next, last) = (self.next, self.last);
            let entries = self.sled_entries.get_or_insert_with(|| {
                self.db.range(keys::entry_key(next)..=keys::entry_key(last))
            });
            match entries.next() {
                Some(Ok((key, value))) => {
                    if keys::entry_position(&key) == Some(self.next) {
                        self.next += 1;
                        return Some(Ok((key, value)));
                    }
                    if self.segments.find(self.next).is_some() {
                        // Sealed while this read: read on from the segment.
                        continue;
                    }
                    if let Some(error) = self.damaged_at(self.next) {
                        return self.finish_with(error);
                    }
                    // A gap, which the chain check reports.
                    self.finished = true;
                    return Some(Ok((key, value)));
                }
                Some(Err(error)) => return self.finish_with(error.into()),
                None => {
                    if self.segments.find(self.next).is_some() {
                        continue;
                    }
                    if let Some(error) = self.damaged_at(self.next) {
                        return self.finish_with(error);
                    }
                    self.finished = true;
                    return None;
                }
            }
        }
    }
}
