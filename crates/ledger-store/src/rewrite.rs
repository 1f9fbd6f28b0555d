//! sled's database rewritten into a file of its live records only, at a clean stop, so that
//! the data folder shrinks once the sealed past has left sled.
//!
//! Why: sled 0.34 never gives back the space of removed records. A seal moves 200 000 entries
//! (about 170 MB of sled's file) into a segment file of about 80 MB, and sled's file stays as
//! large as before: the sealed past is paid twice. Rewriting it is a copy of its live records
//! (the tail, the request records, the index by name, the head) into a new database, which is
//! what a backup does; this module does it in place, with no operator, when the server stops
//! after a seal ([`rewrite_db_if_sealed`]), a moment at which nothing is served.
//!
//! The switch from the old database to the new one is not one rename (sled's files are `db`,
//! `conf`, `snap.*` and `blobs/` at the top of the data folder), so it goes under a marker
//! file, and is finished by whoever opens the folder next ([`finish_interrupted_switch`], from
//! `store::open_sled`):
//! 1. the copy is written in `sled-rewrite/` and made durable (every file synced, the folder
//!    synced); a crash before step 2 leaves the old database whole, and the copy is removed;
//! 2. the marker `sled-rewrite.switch`, naming the copy's files, is written and synced
//!    (temporary name, `fsync`, rename, folder `fsync`): from here the copy is the database;
//! 3. sled's files that the copy does not have are removed, the copy's are renamed into the
//!    data folder (replacing `db` and `conf`), the folder synced, `sled-rewrite/` and then the
//!    marker removed. Each part can be done again after a crash: a file already moved is no
//!    longer in `sled-rewrite/`, a file already removed is not found.
//!
//! Never used on a log kept by a backend (PostgreSQL): that one has no sled files.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::keys;
use crate::segment::SEGMENTS_DIR_NAME;
use crate::store::{open_sled, sled_config, sync_directory, sync_path, StoreError};

/// The folder, inside the data folder, where the copy is written.
pub const REWRITE_DIR_NAME: &str = "sled-rewrite";
/// The marker of a switch under way: the names of the copy's files, one a line.
const SWITCH_MARKER_NAME: &str = "sled-rewrite.switch";
/// The last position held in segments when sled was last rewritten (decimal): a rewrite is
/// worth it only after a seal since.
const REWRITTEN_THROUGH_FILE_NAME: &str = "sled-rewritten-through";
/// Records copied per sled batch, as a backup does: a few megabytes of memory at most.
const REWRITE_BATCH_LEN_MAX: usize = 1024;
/// The smallest `db` file worth rewriting at a stop, in bytes: below it a seal freed too little
/// to matter, and a short log that seals often (the crash tests' segments of 25 entries) is
/// not copied at every stop. A quarter of a default segment's entries in sled.
pub const REWRITE_DB_BYTES_MIN: u64 = 64 * 1024 * 1024;

/// What a rewrite did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbRewrite {
    /// Bytes of sled's `db` file before and after.
    pub db_bytes_before: u64,
    pub db_bytes_after: u64,
    /// Live records copied.
    pub records: u64,
    pub elapsed: Duration,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `name`, at the top of a data folder, is one of sled's files.
fn is_sled_file(name: &str) -> bool {
    name == "db" || name == "conf" || name == "blobs" || name.starts_with("snap.")
}

/// The last position the segment files of `data_dir` hold, from their names (`first-last.seg`);
/// 0 when there is none. The files' form is checked when the log is opened, not here.
fn sealed_through_by_names(data_dir: &Path) -> Result<u64, StoreError> {
    let dir = data_dir.join(SEGMENTS_DIR_NAME);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(io_error(&dir)(error)),
    };
    let mut through = 0;
    for entry in entries {
        let entry = entry.map_err(io_error(&dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let last = name
            .strip_suffix(".seg")
            .and_then(|stem| stem.split_once('-'))
            .and_then(|(_, last)| last.parse::<u64>().ok());
        if let Some(last) = last {
            through = through.max(last);
        }
    }
    Ok(through)
}

/// The sealed position recorded at the last rewrite; 0 when none was, or the record is
/// unreadable (which costs one rewrite more, nothing else).
fn rewritten_through(data_dir: &Path) -> u64 {
    fs::read_to_string(data_dir.join(REWRITTEN_THROUGH_FILE_NAME))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

fn file_len(path: &Path) -> Result<u64, StoreError> {
    match fs::metadata(path) {
        Ok(metadata) => Ok(metadata.len()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(io_error(path)(error)),
    }
}

/// Rewrites the sled database of the stopped log in `data_dir` ([`rewrite_db`]) when entries
/// were sealed into segments since it was last rewritten and its `db` file holds at least
/// `db_bytes_min` bytes; `None` when it was not worth it. Nothing may have the log open.
pub fn rewrite_db_if_sealed(
    data_dir: &Path,
    db_bytes_min: u64,
) -> Result<Option<DbRewrite>, StoreError> {
    let sealed_through = sealed_through_by_names(data_dir)?;
    if sealed_through <= rewritten_through(data_dir)
        || file_len(&data_dir.join("db"))? < db_bytes_min
    {
        return Ok(None);
    }
    rewrite_db(data_dir).map(Some)
}

/// Copies every live record of the stopped log's sled database in `data_dir` into a new
/// database and switches the data folder over to it (see the module's documentation for the
/// steps and what a crash at each leaves). Nothing may have the log open.
pub fn rewrite_db(data_dir: &Path) -> Result<DbRewrite, StoreError> {
    let started = Instant::now();
    let staging = data_dir.join(REWRITE_DIR_NAME);
    let db_bytes_before = file_len(&data_dir.join("db"))?;
    // Also finishes a switch cut short and removes a copy left without its marker.
    let old = open_sled(data_dir)?;
    let sealed_through = sealed_through_by_names(data_dir)?;
    let records = {
        let copy = crate::reopen::open_retrying(&staging, || sled_config(&staging).open())?;
        let mut records = 0u64;
        let mut batch = sled::Batch::default();
        let mut batch_len = 0usize;
        let mut head_record = None;
        for item in old.iter() {
            let (key, value) = item?;
            records += 1;
            if key.as_ref() == keys::HEAD_KEY {
                head_record = Some(value);
                continue;
            }
            batch.insert(key, value);
            batch_len += 1;
            if batch_len >= REWRITE_BATCH_LEN_MAX {
                copy.apply_batch(std::mem::take(&mut batch))?;
                batch_len = 0;
            }
        }
        copy.apply_batch(batch)?;
        // The head last, as a backup writes it: a copy cut short has no head.
        if let Some(record) = &head_record {
            copy.insert(keys::HEAD_KEY, record.clone())?;
        }
        copy.flush()?;
        if copy.get(keys::HEAD_KEY)? != head_record || copy.len() as u64 != records {
            return Err(StoreError::Io {
                path: staging.clone(),
                source: io::Error::other("the rewritten database does not hold every record"),
            });
        }
        records
    };
    drop(old);
    // Opened once more, sled writes a snapshot of its page table: the first start on the copy
    // then reads it instead of replaying the copy's whole log.
    drop(crate::reopen::open_retrying(&staging, || {
        sled_config(&staging).open()
    })?);
    let names = sync_copy(&staging)?;

    write_marker(data_dir, &names)?;
    // From here the copy is the database, whatever happens.
    let record = data_dir.join(REWRITTEN_THROUGH_FILE_NAME);
    fs::write(&record, format!("{sealed_through}\n")).map_err(io_error(&record))?;
    switch(data_dir, &names)?;
    let rewrite = DbRewrite {
        db_bytes_before,
        db_bytes_after: file_len(&data_dir.join("db"))?,
        records,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        path = %data_dir.display(),
        db_bytes_before = rewrite.db_bytes_before,
        db_bytes_after = rewrite.db_bytes_after,
        records,
        sealed_through,
        elapsed_ms = rewrite.elapsed.as_millis() as u64,
        "sled's database rewritten with its live records only"
    );
    Ok(rewrite)
}

/// Syncs every file of the copy in `staging` (and `blobs/`), then the folder; the names of its
/// top-level files, sled's snapshot being written (`*.generating`) aside.
fn sync_copy(staging: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(staging).map_err(io_error(staging))? {
        let entry = entry.map_err(io_error(staging))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".generating") {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            for inner in fs::read_dir(&path).map_err(io_error(&path))? {
                let inner = inner.map_err(io_error(&path))?.path();
                sync_path(&inner)?;
            }
            sync_directory(&path)?;
        } else {
            sync_path(&path)?;
        }
        names.push(name);
    }
    sync_directory(staging)?;
    names.sort();
    Ok(names)
}

fn write_marker(data_dir: &Path, names: &[String]) -> Result<(), StoreError> {
    let marker = data_dir.join(SWITCH_MARKER_NAME);
    let unfinished = data_dir.join(format!("{SWITCH_MARKER_NAME}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&unfinished)
        .map_err(io_error(&unfinished))?;
    file.write_all(names.join("\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&unfinished))?;
    fs::rename(&unfinished, &marker).map_err(io_error(&marker))?;
    sync_directory(data_dir)
}

/// Step 3 of the module's documentation: sled's old files out, the copy's in, the marker
/// last. Can run again after a crash at any point of it.
fn switch(data_dir: &Path, names: &[String]) -> Result<(), StoreError> {
    let staging = data_dir.join(REWRITE_DIR_NAME);
    for entry in fs::read_dir(data_dir).map_err(io_error(data_dir))? {
        let entry = entry.map_err(io_error(data_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_sled_file(&name) && !names.contains(&name) {
            remove_any(&entry.path())?;
        }
    }
    for name in names {
        let from = staging.join(name);
        if !from.exists() {
            // Moved before a crash.
            continue;
        }
        let to = data_dir.join(name);
        if to.is_dir() {
            // A rename does not replace a folder that is not empty (`blobs/`).
            remove_any(&to)?;
        }
        fs::rename(&from, &to).map_err(io_error(&to))?;
    }
    sync_directory(data_dir)?;
    remove_any(&staging)?;
    let marker = data_dir.join(SWITCH_MARKER_NAME);
    remove_any(&marker)?;
    sync_directory(data_dir)
}

/// Removes a file or a folder with what it holds; one already gone is no error.
fn remove_any(path: &Path) -> Result<(), StoreError> {
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error(path)(error)),
    }
}

/// Finishes a switch to a rewritten database that a crash cut short (its marker is there), or
/// removes a copy that never got its marker (the old database is whole): called before sled
/// opens the folder. Whether a switch was finished.
pub(crate) fn finish_interrupted_switch(data_dir: &Path) -> Result<bool, StoreError> {
    let marker = data_dir.join(SWITCH_MARKER_NAME);
    match fs::read_to_string(&marker) {
        Ok(text) => {
            let names: Vec<String> = text
                .lines()
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect();
            tracing::warn!(path = %data_dir.display(), "finishing the switch to a rewritten database that a crash cut short");
            switch(data_dir, &names)?;
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let staging: PathBuf = data_dir.join(REWRITE_DIR_NAME);
            if staging.exists() {
                tracing::warn!(path = %staging.display(), "removing a rewrite of the database that a crash cut short");
                remove_any(&staging)?;
            }
            Ok(false)
        }
        Err(error) => Err(io_error(&marker)(error)),
    }
}
