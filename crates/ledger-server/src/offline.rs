//! Commands that work on a stopped ledger's data folder (or a backup of one), without serving:
//! [`verify`](verify::verify) proves the log whole and the checkpoint a consequence of it,
//! [`export`](export::export) writes the events as JSON Lines or the yearly reports as CSV,
//! and [`rebuild`] replays the whole log into fresh projections and checks them against the
//! stored checkpoint.
//!
//! `verify` and `export` never write to the folder: they open the log with
//! [`ledger_store::OfflineLog`], read and drop it (sled 0.34 has no read-only mode; nothing is
//! inserted). `rebuild` writes a new checkpoint at the head. Each needs the server stopped:
//! sled locks its folder.

pub mod export;
pub mod import;
mod meaning;
pub mod verify;

use std::path::Path;

pub use export::{export, export_log, ExportFormat, ExportReport};
pub use import::{import, ImportError, ImportReport};
pub use verify::{verify, verify_log, ExpectedHead, VerifyReport};

/// The log the offline commands read: the sled folder `data_dir`, or with `postgres` (a
/// connection string) the PostgreSQL database, read only, with `data_dir`'s checkpoint if it
/// holds one (issue 19: the same chain, so the same checks).
pub fn open_log(
    data_dir: &Path,
    postgres: Option<&str>,
) -> Result<ledger_store::OfflineLog, OfflineError> {
    match postgres {
        None => ledger_store::OfflineLog::open(data_dir)
            .map_err(|error| OfflineError::store(data_dir, error)),
        Some(connection) => {
            let backend = ledger_store_pg::PgLog::open_reader(connection)
                .map_err(|error| OfflineError::store(data_dir, error.into()))?
                .into_backend();
            Ok(ledger_store::OfflineLog::open_backend(backend, data_dir))
        }
    }
}

/// The store `import` writes into: the PostgreSQL database `connection` as its writer (the
/// writer's lock taken: no ledger may serve on it meanwhile), with `checkpoint_dir` as the
/// store's local folder (nothing is written there); or a new sled folder `data_dir`.
pub fn open_import_target(
    postgres: Option<(&str, &Path)>,
    data_dir: Option<&Path>,
) -> Result<ledger_store::Store, OfflineError> {
    match (postgres, data_dir) {
        (Some((connection, checkpoint_dir)), _) => {
            let log =
                ledger_store_pg::PgLog::open_writer(connection, ledger_store_pg::WhenLocked::Fail)
                    .map_err(|error| OfflineError::store(checkpoint_dir, error.into()))?;
            ledger_store::Store::open_backend(
                log.into_backend(),
                checkpoint_dir,
                ledger_store::StoreOptions::default(),
            )
            .map_err(|error| OfflineError::store(checkpoint_dir, error))
        }
        (None, Some(data_dir)) => ledger_store::Store::open(data_dir)
            .map_err(|error| OfflineError::store(data_dir, error)),
        (None, None) => unreachable!("the command line names a target"),
    }
}

/// `rebuild --postgres` (issue 19): the log read from PostgreSQL as its writer (the writer's
/// lock taken, so that no ledger appends meanwhile: a serving writer makes it refuse), the
/// checkpoint compared and written again in `data_dir`, as on sled. The lock is let go at
/// the end; the next writer bumps the epoch as always.
fn rebuild_postgres(
    data_dir: &Path,
    connection: &str,
) -> Result<ledger_engine::RebuildReport, OfflineError> {
    let log = ledger_store_pg::PgLog::open_writer(connection, ledger_store_pg::WhenLocked::Fail)
        .map_err(|error| OfflineError::store(data_dir, error.into()))?;
    let store = ledger_store::Store::open_backend(
        log.into_backend(),
        data_dir,
        ledger_store::StoreOptions::default(),
    )
    .map_err(|error| OfflineError::store(data_dir, error))?;
    Ok(ledger_engine::recovery::rebuild_store(
        store,
        data_dir,
        ledger_engine::recovery::RetainedSpacing::SERVICE,
        ledger_engine::year_points::YEAR_POINT_INTERVAL_EVENTS,
    )?)
}

/// What `voucher-ledger rebuild` prints, and whether it found the checkpoint sound.
#[derive(Debug)]
pub struct RebuildOutcome {
    pub summary: String,
    /// False when the rebuild from position 1 differs from the stored checkpoint.
    pub sound: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("no ledger in {0}")]
    Missing(String),
    #[error(transparent)]
    Start(#[from] ledger_engine::StartError),
    #[error("data folder {0} is locked by another process: is a server running on it? (stop it first: sled locks its folder)")]
    Locked(String),
    /// The folder cannot be opened or read: most often, a server holds it open.
    #[error("the log in {path} cannot be read (is a server running on it?): {source}")]
    Store {
        path: String,
        source: Box<ledger_store::StoreError>,
    },
    /// The log breaks while it is exported; what was written before stands.
    #[error("{0}")]
    Chain(ledger_store::ChainBreak),
    /// An event cannot be folded into the projections while the reports are rebuilt.
    #[error("the reports cannot be rebuilt: {0}")]
    Replay(ledger_engine::StartError),
    #[error("--from applies to the jsonl export only: the reports always start at position 1")]
    CsvFrom,
    #[error("cannot write the export: {0}")]
    Output(#[from] std::io::Error),
    /// `import` found the target not empty, or the source not a log it can copy as it is.
    #[error(transparent)]
    Import(#[from] ImportError),
}

impl OfflineError {
    fn store(data_dir: &Path, source: ledger_store::StoreError) -> OfflineError {
        match source {
            ledger_store::StoreError::LogMissing { .. } => {
                OfflineError::Missing(data_dir.display().to_string())
            }
            ledger_store::StoreError::ChainBroken(chain_break) => OfflineError::Chain(chain_break),
            source => OfflineError::Store {
                path: data_dir.display().to_string(),
                source: Box::new(source),
            },
        }
    }
}

/// Rebuilds every projection of the ledger in `data_dir` from position 1, compares the result
/// with the checkpoint at its position (byte for byte), and writes a fresh checkpoint at the
/// head. The server must be stopped (sled locks its folder).
pub fn rebuild(data_dir: &Path) -> Result<RebuildOutcome, OfflineError> {
    rebuild_on(data_dir, None)
}

/// [`rebuild`]; with `postgres` (a connection string), of the PostgreSQL ledger whose process
/// keeps its checkpoint and retained snapshots in `data_dir` (see [`rebuild_postgres`]).
pub fn rebuild_on(data_dir: &Path, postgres: Option<&str>) -> Result<RebuildOutcome, OfflineError> {
    let report = match postgres {
        Some(connection) => rebuild_postgres(data_dir, connection)?,
        None => {
            if !data_dir.join("db").exists() {
                return Err(OfflineError::Missing(data_dir.display().to_string()));
            }
            ledger_engine::rebuild(data_dir).map_err(
                |error| match crate::serve::data_dir_problem(&error) {
                    Some(crate::serve::DataDirProblem::Locked) => {
                        OfflineError::Locked(data_dir.display().to_string())
                    }
                    _ => OfflineError::Start(error),
                },
            )?
        }
    };
    let seconds = report.elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        report.events as f64 / seconds
    } else {
        0.0
    };
    let mut lines = vec![format!(
        "rebuilt {} events from position 1 in {seconds:.3} s ({rate:.0} events/s)",
        report.events
    )];
    // What the figure covers: an operator compares it across versions.
    lines.push(
        "(the replay, the comparison with the checkpoint, and every file written: the \
         checkpoint, retained snapshots and year points; not the opening of the log)"
            .to_owned(),
    );
    let sound = match (report.checkpoint_position, report.matches_checkpoint) {
        (Some(position), Some(true)) => {
            lines.push(format!(
                "checkpoint at position {position}: identical to the rebuild, byte for byte"
            ));
            true
        }
        (Some(position), _) => {
            lines.push(format!(
                "checkpoint at position {position}: DIFFERS from the rebuild"
            ));
            false
        }
        (None, _) => {
            lines.push("no usable checkpoint was stored".to_owned());
            true
        }
    };
    lines.push(format!(
        "new checkpoint written at position {} ({} bytes); head hash {}",
        report.head.position,
        report.checkpoint_bytes,
        hex::encode(report.head.hash)
    ));
    lines.push(format!(
        "retained snapshots of the projections saved for as_of reports: {} (in {}/)",
        report.retained_snapshots,
        ledger_store::RETAINED_DIR_NAME
    ));
    Ok(RebuildOutcome {
        summary: lines.join("\n"),
        sound,
    })
}
