//! Reopening a log this process has just closed: sled 0.34 releases its file lock a moment
//! after the last handle is dropped (its threads hold the data file until they wind down), so
//! an immediate reopen in the same process can fail with the lock's `WouldBlock`. That is a
//! race of our own making, not a second owner: the tests reopen logs all the time, and `bench`
//! does so in the product.
//!
//! [`open_retrying`] waits it out, for at most [`REOPEN_LOCK_WAIT_MS`], and only when both hold:
//! the error is sled's file-lock `WouldBlock`, and this process has opened the same folder
//! before. A folder locked by another process (a running server while `verify` is asked to
//! read it) is refused at once, as before.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Longest wait for sled's file lock on a folder this process opened before, in milliseconds.
/// sled's threads let go of a dropped database within milliseconds; five seconds covers a
/// 2-core machine busy with a parallel build many times over and still fails a real deadlock
/// (a handle that was never dropped) quickly.
pub const REOPEN_LOCK_WAIT_MS: u64 = 5_000;

/// Pause between two attempts while waiting for the lock, in milliseconds.
const REOPEN_RETRY_INTERVAL_MS: u64 = 10;

/// The folders this process has opened with sled, canonicalized.
fn opened_folders() -> &'static Mutex<HashSet<PathBuf>> {
    static OPENED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    OPENED.get_or_init(|| Mutex::new(HashSet::new()))
}

fn opened_before(dir: &Path) -> bool {
    let Ok(canonical) = dir.canonicalize() else {
        return false;
    };
    opened_folders()
        .lock()
        .map(|opened| opened.contains(&canonical))
        .unwrap_or(false)
}

fn remember_opened(dir: &Path) {
    if let Ok(canonical) = dir.canonicalize() {
        if let Ok(mut opened) = opened_folders().lock() {
            opened.insert(canonical);
        }
    }
}

/// Whether `error` is sled 0.34's refusal to take the folder's file lock because someone holds
/// it. sled wraps the `WouldBlock` of `try_lock_exclusive` in an error of kind `Other` whose
/// text names both ("could not acquire lock on … WouldBlock …"), so the text is all there is.
pub(crate) fn is_lock_would_block(error: &sled::Error) -> bool {
    match error {
        sled::Error::Io(io_error) => {
            let text = io_error.to_string();
            io_error.kind() == std::io::ErrorKind::WouldBlock
                || (text.contains("could not acquire lock") && text.contains("WouldBlock"))
        }
        _ => false,
    }
}

/// Calls `open` until it succeeds, fails otherwise than on the lock, the folder turns out not
/// to be one this process opened before, or [`REOPEN_LOCK_WAIT_MS`] have passed.
pub(crate) fn open_retrying(
    dir: &Path,
    mut open: impl FnMut() -> sled::Result<sled::Db>,
) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + Duration::from_millis(REOPEN_LOCK_WAIT_MS);
    let mut attempts = 1u32;
    loop {
        match open() {
            Ok(db) => {
                if attempts > 1 {
                    tracing::debug!(
                        path = %dir.display(),
                        attempts,
                        "sled released the folder's lock after a reopen in the same process"
                    );
                }
                remember_opened(dir);
                return Ok(db);
            }
            Err(error)
                if is_lock_would_block(&error)
                    && Instant::now() < deadline
                    && opened_before(dir) =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(REOPEN_RETRY_INTERVAL_MS));
            }
            Err(error) => return Err(error),
        }
    }
}
